//! What is stored: a download is stored as *pieces*, runs of bytes at an
//! offset, usually one block each, shorter where a body was cut off ("keep
//! what arrived"). The record lists them exactly, so a store that keeps one
//! entry per piece (IndexedDB) can assemble the file from the record alone
//! and ignore any entry the record does not claim.

use super::range::ByteRange;

/// Non-overlapping stored pieces, by offset.
///
/// A sorted vector: pieces arrive mostly in order (an insert near the end
/// moves little), every commit encodes the whole list anyway, and it keeps
/// BTreeMap's code out of the wasm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pieces {
    sorted: Vec<ByteRange>,
    bytes: u64,
}

impl Pieces {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a piece; `false` (and no change) if it is empty or overlaps one
    /// already stored.
    pub fn insert(&mut self, piece: ByteRange) -> bool {
        if piece.is_empty() {
            return false;
        }
        // Pieces mostly arrive in order (a decoded record, a file taken front
        // to back): appending after the last one needs no search.
        match self.sorted.last() {
            Some(last) if last.end <= piece.start => self.sorted.push(piece),
            None => self.sorted.push(piece),
            Some(_) if self.overlaps(piece) => return false,
            Some(_) => self.sorted.insert(self.after(piece.start), piece),
        }
        self.bytes += piece.len();
        true
    }

    /// Whether `piece` shares a byte with a stored piece.
    pub fn overlaps(&self, piece: ByteRange) -> bool {
        let before = self.sorted.partition_point(|p| p.start < piece.end);
        before > 0 && self.sorted[before - 1].end > piece.start
    }

    /// The index of the first piece that starts after `offset`.
    fn after(&self, offset: u64) -> usize {
        self.sorted.partition_point(|p| p.start <= offset)
    }

    /// The last piece that starts at or before `offset`.
    pub(crate) fn at_or_before(&self, offset: u64) -> Option<ByteRange> {
        self.after(offset).checked_sub(1).map(|i| self.sorted[i])
    }

    /// The first piece that starts after `offset`.
    pub(crate) fn first_after(&self, offset: u64) -> Option<ByteRange> {
        self.sorted.get(self.after(offset)).copied()
    }

    /// Total bytes stored.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = ByteRange> + '_ {
        self.sorted.iter().copied()
    }

    /// The end of the stored prefix `0..n` (0 when byte 0 is missing).
    pub fn prefix_end(&self) -> u64 {
        let mut end = 0;
        for piece in self.iter() {
            if piece.start != end {
                break;
            }
            end = piece.end;
        }
        end
    }

    /// True when the pieces tile `0..total` exactly.
    pub fn covers(&self, total: u64) -> bool {
        self.bytes == total && self.prefix_end() == total
    }

    /// Forgets every byte at or past `len` (a piece across it is cut);
    /// `true` if anything was forgotten.
    pub fn truncate(&mut self, len: u64) -> bool {
        // Sorted and disjoint, the pieces that end past `len` are a suffix.
        let cut = self
            .sorted
            .split_off(self.sorted.partition_point(|p| p.end <= len));
        for piece in &cut {
            self.bytes -= piece.len();
            if piece.start < len {
                self.insert(ByteRange {
                    start: piece.start,
                    end: len,
                });
            }
        }
        !cut.is_empty()
    }

    /// The last stored byte's end, 0 when empty.
    pub fn end(&self) -> u64 {
        self.sorted.last().map_or(0, |p| p.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn pieces_reject_overlap() {
        let mut p = Pieces::new();
        assert!(p.insert(r(10, 20)));
        assert!(!p.insert(r(15, 25)));
        assert!(!p.insert(r(5, 11)));
        assert!(!p.insert(r(10, 20)));
        assert!(!p.insert(r(12, 13)));
        assert!(!p.insert(r(30, 30)));
        assert!(p.insert(r(20, 30)));
        assert!(p.insert(r(0, 10)));
        assert_eq!(p.bytes(), 30);
        assert_eq!(p.prefix_end(), 30);
        assert!(p.covers(30));
        assert!(!p.covers(31));
    }

    #[test]
    fn pieces_stay_sorted_and_truncate_cuts_the_tail() {
        let mut p = Pieces::new();
        for piece in [r(20, 30), r(0, 10), r(40, 50), r(10, 15)] {
            assert!(p.insert(piece));
        }
        let all: Vec<_> = p.iter().collect();
        assert_eq!(all, [r(0, 10), r(10, 15), r(20, 30), r(40, 50)]);
        assert!(!p.truncate(50));
        assert!(p.truncate(25));
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [r(0, 10), r(10, 15), r(20, 25)]
        );
        assert_eq!((p.bytes(), p.end()), (20, 25));
        assert!(p.truncate(0));
        assert!(p.is_empty() && p.bytes() == 0);
    }

    #[test]
    fn prefix_stops_at_a_gap() {
        let mut p = Pieces::new();
        p.insert(r(0, 5));
        p.insert(r(6, 10));
        assert_eq!(p.prefix_end(), 5);
        assert!(!p.covers(10));
        assert_eq!(p.end(), 10);
    }
}
