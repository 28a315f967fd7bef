//! The pace of the network, which decides whether blocks are taken whole:
//! as one body that a store keeping such bodies as they are (IndexedDB's
//! Blobs, [`Store::takes_whole_bodies`]) stores without its bytes passing
//! through the program.

use super::*;

/// When the last block to arrive came at least this fast (a block in this
/// many milliseconds), connections take their next block whole, and of
/// `Options::whole_block_size`, where the store wants that: in a browser the
/// body then never passes through the page (about 1.5× the throughput on a
/// fast network). The price: progress moves a block at a time, and a body
/// that fails part-way keeps nothing, so slower networks stream every block.
pub const WHOLE_BLOCK_MS: u64 = 1_000;

/// Before any block has come, the connections joining the probe give it up
/// to `WHOLE_BLOCK_MS / JUDGE_PARTS` to show the network's speed: if the
/// first `1 / JUDGE_PARTS` of its block comes at the [`WHOLE_BLOCK_MS`]
/// pace, they take their first blocks whole too (on a fast network only the
/// probe's block passes through the program); otherwise they stream, having
/// lost that moment.
const JUDGE_PARTS: u64 = 8;

/// How long the connections joining a probe wait for it to show the pace.
pub(super) const JUDGE_MS: u64 = WHOLE_BLOCK_MS / JUDGE_PARTS;

pub(super) struct Pace {
    block_size: u64,
    /// The last block to arrive came at the whole-block pace.
    fast: Cell<bool>,
    /// Fired when `fast` turns true in the current round.
    turned_fast: RefCell<Signal>,
}

impl Pace {
    pub(super) fn new(block_size: u64) -> Self {
        Self {
            block_size,
            fast: Cell::new(false),
            turned_fast: RefCell::new(Signal::new()),
        }
    }

    /// Whether the next blocks are taken whole (where the store wants that).
    pub(super) fn is_fast(&self) -> bool {
        self.fast.get()
    }

    /// A new round: the signal fired once blocks turn fast in it.
    pub(super) fn new_round(&self) -> Signal {
        let turned_fast = Signal::new();
        *self.turned_fast.borrow_mut() = turned_fast.clone();
        turned_fast
    }

    /// `streamed` bytes of a block have come `elapsed_ms` after it was
    /// asked for: once a `1 / JUDGE_PARTS` of a block has, they can show the
    /// pace is fast.
    pub(super) fn streaming(&self, streamed: u64, elapsed_ms: u64) {
        let judged = streamed.saturating_mul(JUDGE_PARTS) >= self.block_size;
        if judged && !self.fast.get() && self.came_fast(streamed, elapsed_ms) {
            self.set(true);
        }
    }

    /// A block ended with `got` bytes `elapsed_ms` after it was asked for:
    /// complete and at the pace, the next ones are taken whole.
    pub(super) fn block_ended(&self, complete: bool, got: u64, elapsed_ms: u64) {
        self.set(complete && self.came_fast(got, elapsed_ms));
    }

    /// Whether `got` bytes in `elapsed_ms` came at a block per
    /// [`WHOLE_BLOCK_MS`] or faster (u128: no overflow whatever the sizes).
    fn came_fast(&self, got: u64, elapsed_ms: u64) -> bool {
        u128::from(got) * u128::from(WHOLE_BLOCK_MS)
            >= u128::from(self.block_size) * u128::from(elapsed_ms)
    }

    fn set(&self, fast: bool) {
        self.fast.set(fast);
        if fast {
            self.turned_fast.borrow().fire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: u64 = 8 << 20;

    #[test]
    fn a_block_at_a_block_per_second_or_faster_makes_the_next_whole() {
        let pace = Pace::new(BLOCK);
        pace.block_ended(true, BLOCK, WHOLE_BLOCK_MS);
        assert!(pace.is_fast());
        pace.block_ended(true, BLOCK, WHOLE_BLOCK_MS + 1);
        assert!(!pace.is_fast(), "slower than a block per second");
        pace.block_ended(true, BLOCK, 0);
        pace.block_ended(false, BLOCK, 0);
        assert!(!pace.is_fast(), "a block that did not complete");
        pace.block_ended(true, u64::MAX, WHOLE_BLOCK_MS);
        assert!(pace.is_fast(), "no overflow");
        pace.block_ended(true, BLOCK, u64::MAX);
        assert!(!pace.is_fast(), "no overflow");
    }

    #[test]
    fn an_eighth_of_a_block_at_the_pace_turns_the_round_fast() {
        let pace = Pace::new(BLOCK);
        let turned = pace.new_round();
        pace.streaming(BLOCK / JUDGE_PARTS - 1, 0);
        assert!(!pace.is_fast() && !turned.is_fired(), "too little to judge");
        pace.streaming(BLOCK / JUDGE_PARTS, JUDGE_MS + 1);
        assert!(!pace.is_fast(), "slower than the pace");
        pace.streaming(BLOCK / JUDGE_PARTS, JUDGE_MS);
        assert!(pace.is_fast() && turned.is_fired());
        let next = pace.new_round();
        assert!(!next.is_fired(), "each round has its own signal");
    }
}
