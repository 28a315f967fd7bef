//! What the driver needs from storage, and the contract every store keeps.
//!
//! **The rule:** a stored record never claims a byte that is not durably
//! stored, whatever step a crash interrupts.
//!
//! - *Order.* The driver `write`s a piece and only once that returned saves
//!   the record that claims it. `write` returns only when the bytes are
//!   durable (synced); `save_record` replaces the record whole (never a torn
//!   mix of two). A crash inside `write` leaves bytes no record claims: they
//!   are ignored, or overwritten by a later write.
//! - *`reset(id, record)`.* Saves `record` (which claims nothing) first, then
//!   may delete the pieces. A crash between leaves unclaimed bytes, never a
//!   claim without bytes. A positional store (one file written at offsets)
//!   may keep the old bytes: it must then never hand out bytes past what the
//!   record claims (`assemble` cuts the file to the download's length).
//! - *`remove(id)`.* Deletes the record first, then the pieces; a crash
//!   between leaves orphan bytes for `sweep` (`Download.prune()`), never a
//!   record without them.
//! - *`load(id)`.* Returns the record as stored, or, where the store can see
//!   that its data is shorter than the record claims (a write lost before it
//!   reached the disk, a data file deleted), the record trimmed to the data
//!   ([`Record::limit_to`]). The driver saves the loaded record again before
//!   its first write, so an old claim never outlives a trim on disk.
//! - *`read(id, piece, part)`.* The stored bytes of `part`; fewer when the
//!   store holds fewer (the driver treats a short read as damage), never
//!   other bytes.
//! - *`assemble(id, pieces)`.* Exactly the bytes of `pieces`, in order: a
//!   piece missing or of another length is `Corrupt`, never a gap, never
//!   bytes past the last piece.
//!
//! The simulator (`tests/sim`) runs the driver over a store that crashes at
//! each of these steps and checks the rule after every step.
//!
//! [`Record::limit_to`]: super::record::Record::limit_to

use super::error::{StoreError, StoreErrorKind};
use super::range::ByteRange;
use super::transport::Chunk;

#[allow(async_fn_in_trait)] // wasm is single-threaded: no Send bound is wanted.
pub trait Store {
    type Chunk: Chunk;
    /// The completed file: a disk-backed `Blob` in browsers, bytes natively.
    type Assembled;

    /// The encoded record of `id`, if one is stored.
    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces the record alone (new validators, "complete").
    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError>;

    /// Stores the piece `chunks`, the bytes of `piece`. No record claims it yet: one
    /// cut short (a reload, a full disk) is never claimed, and is ignored or
    /// overwritten later. Pieces of one download never overlap.
    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<Self::Chunk>,
    ) -> Result<(), StoreError>;

    /// Whether the driver may write several pieces at once (it still saves
    /// records one at a time). IndexedDB gains most of its speed from it
    /// (docs/BENCHMARKS.md); a store that reads and rewrites around a
    /// piece's edges, or an application's store, must not.
    fn concurrent_writes(&self) -> bool {
        false
    }

    /// Writes `record` (which claims no piece) and deletes every piece of `id`.
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError>;

    /// Deletes the record and every piece of `id`.
    async fn remove(&self, id: &str) -> Result<(), StoreError>;

    /// Every stored record.
    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Deletes what no record claims and nothing wrote to for `max_age_ms`
    /// at `now_ms`: the leftovers of a `remove` or a first `write` that a
    /// crash cut short. Called only while no download of this store is
    /// written to anywhere the caller can see (`Download.prune()`).
    async fn sweep(&self, max_age_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        let _ = (max_age_ms, now_ms);
        Ok(())
    }

    /// The bytes `part` of the stored piece `piece` (`part` lies within it),
    /// to compare with the server's when no validator proves the file is
    /// unchanged.
    async fn read(
        &self,
        id: &str,
        piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError>;

    /// The file from exactly these pieces, in order. A piece that is missing
    /// or of another length is a `Corrupt` error, never a silent gap.
    async fn assemble(&self, id: &str, pieces: &[ByteRange])
        -> Result<Self::Assembled, StoreError>;

    /// Whether `commit` is best given a whole body as one chunk where the
    /// transport can keep it out of memory ([`Body::whole`]): a store that
    /// keeps such chunks as they are (IndexedDB's Blob values) saves copying
    /// every byte through the program. The driver asks for whole bodies
    /// only where the network is fast (see `driver::WHOLE_BLOCK_MS`).
    ///
    /// [`Body::whole`]: super::transport::Body::whole
    fn takes_whole_bodies(&self) -> bool {
        false
    }
}

/// The length of a file stored in one piece after another from byte 0, as
/// positional stores (one file per download) hold a complete download. A
/// gap or overlap is a `Corrupt` error.
pub fn contiguous_length(pieces: &[ByteRange]) -> Result<u64, StoreError> {
    let mut end = 0;
    for piece in pieces {
        if piece.start != end {
            return Err(StoreError::new(
                StoreErrorKind::Corrupt,
                format!("the stored pieces do not follow each other at byte {end}"),
            ));
        }
        end = piece.end;
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn contiguous_pieces_have_a_length_and_gaps_are_corrupt() {
        assert_eq!(contiguous_length(&[]).ok(), Some(0));
        assert_eq!(contiguous_length(&[r(0, 5), r(5, 9)]).ok(), Some(9));
        for bad in [
            vec![r(1, 5)],
            vec![r(0, 5), r(6, 9)],
            vec![r(0, 5), r(4, 9)],
        ] {
            let error = contiguous_length(&bad).err().map(|e| e.kind);
            assert_eq!(error, Some(StoreErrorKind::Corrupt), "{bad:?}");
        }
    }
}
