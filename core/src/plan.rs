//! What to fetch next, given the stored [`Pieces`].
//!
//! The plan hands out the lowest missing range that no connection is
//! fetching, cut at block boundaries so that a resumed partial block is
//! completed by one request.

use super::pieces::Pieces;
use super::range::ByteRange;

/// Chooses ranges to fetch for up to N connections.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Ranges some connection is fetching now.
    claims: Vec<ByteRange>,
}

impl Plan {
    /// Claims the lowest missing range that nobody is fetching, at most up to
    /// the next multiple of `block`. With `total` unknown, the file is taken
    /// to go on: the range ends at that boundary.
    pub fn claim(&mut self, pieces: &Pieces, total: Option<u64>, block: u64) -> Option<ByteRange> {
        let block = block.max(1);
        let mut start = 0u64;
        loop {
            if total.is_some_and(|t| start >= t) {
                return None;
            }
            // Skip what is stored or claimed at `start`.
            if let Some(end) = self.covered_until(pieces, start) {
                start = end;
                continue;
            }
            let boundary = (start / block + 1).saturating_mul(block);
            let mut end = total.map_or(boundary, |t| boundary.min(t));
            // Stop before the next stored or claimed byte.
            if let Some(next) = self.next_taken(pieces, start) {
                end = end.min(next);
            }
            let range = ByteRange { start, end };
            self.claims.push(range);
            return Some(range);
        }
    }

    /// Releases a claim, whether or not its bytes were stored: what was not
    /// stored is simply missing again.
    pub fn release(&mut self, range: ByteRange) {
        if let Some(i) = self.claims.iter().position(|c| *c == range) {
            self.claims.swap_remove(i);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.claims.len()
    }

    /// If `at` is inside a stored piece or a claim, where that ends.
    fn covered_until(&self, pieces: &Pieces, at: u64) -> Option<u64> {
        let stored = pieces
            .at_or_before(at)
            .map(|p| p.end)
            .filter(|&end| end > at);
        let claimed = self
            .claims
            .iter()
            .filter(|c| c.start <= at && at < c.end)
            .map(|c| c.end)
            .max();
        stored.max(claimed)
    }

    /// The first stored or claimed byte after `at`.
    fn next_taken(&self, pieces: &Pieces, at: u64) -> Option<u64> {
        let stored = pieces.first_after(at).map(|p| p.start);
        let claimed = self
            .claims
            .iter()
            .map(|c| c.start)
            .filter(|&s| s > at)
            .min();
        match (stored, claimed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn claims_blocks_in_order_for_several_connections() {
        let pieces = Pieces::new();
        let mut plan = Plan::default();
        assert_eq!(plan.claim(&pieces, Some(250), 100), Some(r(0, 100)));
        assert_eq!(plan.claim(&pieces, Some(250), 100), Some(r(100, 200)));
        assert_eq!(plan.claim(&pieces, Some(250), 100), Some(r(200, 250)));
        assert_eq!(plan.claim(&pieces, Some(250), 100), None);
        assert_eq!(plan.in_flight(), 3);
        // A failed block is released and handed out again.
        plan.release(r(100, 200));
        assert_eq!(plan.claim(&pieces, Some(250), 100), Some(r(100, 200)));
    }

    #[test]
    fn completes_a_partial_block_up_to_its_boundary() {
        let mut pieces = Pieces::new();
        pieces.insert(r(0, 100));
        pieces.insert(r(100, 137)); // a body cut off after 37 bytes
        pieces.insert(r(200, 300));
        let mut plan = Plan::default();
        assert_eq!(plan.claim(&pieces, Some(1000), 100), Some(r(137, 200)));
        assert_eq!(plan.claim(&pieces, Some(1000), 100), Some(r(300, 400)));
    }

    #[test]
    fn stops_before_the_next_stored_piece() {
        let mut pieces = Pieces::new();
        pieces.insert(r(50, 60));
        let mut plan = Plan::default();
        assert_eq!(plan.claim(&pieces, Some(100), 100), Some(r(0, 50)));
        assert_eq!(plan.claim(&pieces, Some(100), 100), Some(r(60, 100)));
        assert_eq!(plan.claim(&pieces, Some(100), 100), None);
    }

    #[test]
    fn unknown_total_goes_on_block_by_block() {
        let mut pieces = Pieces::new();
        pieces.insert(r(0, 100));
        let mut plan = Plan::default();
        assert_eq!(plan.claim(&pieces, None, 100), Some(r(100, 200)));
        assert_eq!(plan.claim(&pieces, None, 100), Some(r(200, 300)));
    }

    #[test]
    fn offsets_past_4_gib() {
        let five_gib = 5u64 << 30;
        let mut pieces = Pieces::new();
        pieces.insert(r(0, five_gib - 10));
        let mut plan = Plan::default();
        assert_eq!(
            plan.claim(&pieces, Some(five_gib), 8 << 20),
            Some(r(five_gib - 10, five_gib))
        );
    }

    #[test]
    fn a_larger_block_ends_at_its_own_boundary() {
        let mut pieces = Pieces::new();
        pieces.insert(r(0, 100)); // a block of 100, then blocks of 200
        let mut plan = Plan::default();
        assert_eq!(plan.claim(&pieces, Some(1000), 200), Some(r(100, 200)));
        assert_eq!(plan.claim(&pieces, Some(1000), 200), Some(r(200, 400)));
        assert_eq!(plan.claim(&pieces, Some(1000), 100), Some(r(400, 500)));
    }
}
