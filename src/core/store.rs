//! What the driver needs from storage.
//!
//! The one rule every store keeps: the record never claims a byte that is not
//! durably stored. `commit` stores a piece and then (or in the same
//! transaction) the record that claims it; `reset` writes the record that
//! claims nothing before deleting pieces.

use super::error::StoreError;
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

    /// Stores the piece `chunks` at `offset`, then the record that claims it.
    async fn commit(
        &self,
        id: &str,
        offset: u64,
        chunks: Vec<Self::Chunk>,
        record: &[u8],
    ) -> Result<(), StoreError>;

    /// Writes `record` (which claims no piece) and deletes every piece of `id`.
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError>;

    /// Deletes the record and every piece of `id`.
    async fn remove(&self, id: &str) -> Result<(), StoreError>;

    /// Every stored record.
    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError>;

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
}
