//! A store in memory: the fallback where nothing persists (and the store of
//! the native tests). Clones share their contents, so a test can "reload" by
//! opening a second download on a clone.

use super::error::{StoreError, StoreErrorKind};
use super::range::ByteRange;
use super::small_map::SmallMap;
use super::store::Store;
use super::transport::Chunk;
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone)]
pub struct MemoryStore<C> {
    inner: Rc<RefCell<Inner<C>>>,
}

struct Inner<C> {
    records: SmallMap<String, Vec<u8>>,
    /// Per download, its pieces' chunks sorted by offset.
    pieces: SmallMap<String, Vec<(u64, Vec<C>)>>,
    /// Bytes of pieces this store may hold; beyond it, `QuotaExceeded`.
    capacity: Option<u64>,
}

impl<C> Default for MemoryStore<C> {
    fn default() -> Self {
        Self {
            inner: Rc::new(RefCell::new(Inner {
                records: SmallMap::new(),
                pieces: SmallMap::new(),
                capacity: None,
            })),
        }
    }
}

impl<C: Chunk> MemoryStore<C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits the bytes of pieces held (`None`: unlimited), to act out a full disk.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.inner.borrow_mut().capacity = bytes;
    }

    /// Bytes of pieces held for every download.
    pub fn used(&self) -> u64 {
        let inner = self.inner.borrow();
        inner
            .pieces
            .values()
            .flatten()
            .map(|(_, chunks)| chunks.iter().map(Chunk::len).sum::<u64>())
            .sum()
    }

    /// Overwrites a stored record as-is (tests use it to plant damaged records).
    pub fn put_raw_record(&self, id: &str, bytes: Vec<u8>) {
        self.inner
            .borrow_mut()
            .records
            .insert(id.to_string(), bytes);
    }

    /// Drops one stored piece behind the record's back (tests use it to act
    /// out storage that lost data).
    pub fn drop_piece(&self, id: &str, offset: u64) -> bool {
        let mut inner = self.inner.borrow_mut();
        let Some(pieces) = inner.pieces.get_mut(id) else {
            return false;
        };
        match find(pieces, offset) {
            Ok(i) => {
                pieces.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

impl<C: Chunk> Store for MemoryStore<C> {
    type Chunk = C;
    type Assembled = Vec<C>;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.borrow().records.get(id).cloned())
    }

    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.put_raw_record(id, record.to_vec());
        Ok(())
    }

    async fn write(&self, id: &str, piece: ByteRange, chunks: Vec<C>) -> Result<(), StoreError> {
        let offset = piece.start;
        let len: u64 = chunks.iter().map(Chunk::len).sum();
        let capacity = self.inner.borrow().capacity;
        if capacity.is_some_and(|cap| self.used() + len > cap) {
            return Err(StoreError::new(
                StoreErrorKind::QuotaExceeded,
                "the memory store is full",
            ));
        }
        let mut inner = self.inner.borrow_mut();
        let pieces = inner.pieces.get_or_default(id.to_string());
        match find(pieces, offset) {
            Ok(i) => pieces[i].1 = chunks,
            Err(i) => pieces.insert(i, (offset, chunks)),
        }
        Ok(())
    }

    /// Each write is done before the next begins: nothing to interleave.
    fn concurrent_writes(&self) -> bool {
        true
    }

    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        inner.records.insert(id.to_string(), record.to_vec());
        inner.pieces.remove(id);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        inner.records.remove(id);
        inner.pieces.remove(id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.inner.borrow().records.values().cloned().collect())
    }

    async fn read(
        &self,
        id: &str,
        piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        for chunk in self.assemble(id, &[piece]).await? {
            let read = chunk.bytes().await;
            bytes.extend(read.map_err(|why| StoreError::new(StoreErrorKind::Failed, why))?);
        }
        let (from, to) = (part.start - piece.start, part.end - piece.start);
        bytes
            .get(from as usize..to as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| StoreError::new(StoreErrorKind::Corrupt, "a read past a stored piece"))
    }

    async fn assemble(&self, id: &str, pieces: &[ByteRange]) -> Result<Vec<C>, StoreError> {
        let inner = self.inner.borrow();
        let stored = inner.pieces.get(id);
        let mut out = Vec::new();
        for piece in pieces {
            let found = stored.and_then(|p| find(p, piece.start).ok().map(|i| &p[i].1));
            let chunks = found.ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("the piece at byte {} is missing", piece.start),
                )
            })?;
            let len: u64 = chunks.iter().map(Chunk::len).sum();
            if len != piece.len() {
                return Err(StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!(
                        "the piece at byte {} holds {len} bytes, not {}",
                        piece.start,
                        piece.len()
                    ),
                ));
            }
            out.extend(chunks.iter().cloned());
        }
        Ok(out)
    }
}

/// Where the piece at `offset` is in `pieces`, or where it would go.
fn find<C>(pieces: &[(u64, Vec<C>)], offset: u64) -> Result<usize, usize> {
    pieces.binary_search_by_key(&offset, |(start, _)| *start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn keeps_the_store_contract() {
        let store = MemoryStore::<Vec<u8>>::new();
        let read = |chunks: Vec<Vec<u8>>| {
            Box::pin(async move { chunks.concat() })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>>>>
        };
        let checked = block_on(super::super::store_contract::check(
            &store,
            "memory",
            &|bytes: &[u8]| bytes.to_vec(),
            &read,
            None,
        ));
        assert_eq!(checked, Ok(()));
        let crashes = block_on(super::super::store_contract::check_crashes(
            &store,
            "memory",
            &|bytes: &[u8]| bytes.to_vec(),
        ));
        assert_eq!(crashes, Ok(()));
    }
}
