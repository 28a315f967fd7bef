//! The store a download uses, chosen from the `store` option.

use super::idb::IdbStore;
use crate::core::memory::MemoryStore;
use crate::core::range::ByteRange;
use crate::core::store::Store;
use crate::core::{Error, StoreError};
use js_sys::{Array, Uint8Array};
use web_sys::Blob;

thread_local! {
    /// One memory store per page or worker, shared by every download opened
    /// with `store: 'memory'`, so `Download.list()` sees them. Nothing in it
    /// survives a reload.
    static PAGE_MEMORY: MemoryStore<Uint8Array> = MemoryStore::new();
}

fn page_memory() -> MemoryStore<Uint8Array> {
    PAGE_MEMORY.with(Clone::clone)
}

/// The `store` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// The best persistent store available, else memory.
    Auto,
    IndexedDb,
    Memory,
}

impl StoreChoice {
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value {
            "auto" => Ok(Self::Auto),
            "indexeddb" => Ok(Self::IndexedDb),
            "memory" => Ok(Self::Memory),
            other => Err(Error::invalid(
                "store",
                format!("{other:?} is not one of 'auto', 'indexeddb', 'memory'"),
            )),
        }
    }
}

#[derive(Clone)]
pub enum Backend {
    IndexedDb(IdbStore),
    Memory(MemoryStore<Uint8Array>),
}

impl Backend {
    /// Opens the chosen store; `Auto` falls back to memory where IndexedDB
    /// cannot be opened (no IndexedDB, private modes that refuse it).
    pub async fn open(choice: StoreChoice) -> Result<Self, StoreError> {
        match choice {
            StoreChoice::IndexedDb => Ok(Self::IndexedDb(IdbStore::open().await?)),
            StoreChoice::Memory => Ok(Self::Memory(page_memory())),
            StoreChoice::Auto => Ok(match IdbStore::open().await {
                Ok(idb) => Self::IndexedDb(idb),
                Err(_) => Self::Memory(page_memory()),
            }),
        }
    }

    /// Every store this page can reach, for `Download.list()` and `remove()`.
    pub async fn all() -> Vec<Self> {
        let mut all = vec![Self::Memory(page_memory())];
        if let Ok(idb) = IdbStore::open().await {
            all.push(Self::IndexedDb(idb));
        }
        all
    }

    /// The name `dl.store` reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::IndexedDb(_) => "indexeddb",
            Self::Memory(_) => "memory",
        }
    }
}

/// Delegates every store method to the chosen backend.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Backend::IndexedDb($store) => $call,
            Backend::Memory($store) => $call,
        }
    };
}

impl Store for Backend {
    type Chunk = Uint8Array;
    type Assembled = Blob;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, s => s.load(id).await)
    }
    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        delegate!(self, s => s.save_record(id, record).await)
    }
    async fn commit(
        &self,
        id: &str,
        offset: u64,
        chunks: Vec<Uint8Array>,
        record: &[u8],
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.commit(id, offset, chunks, record).await)
    }
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        delegate!(self, s => s.reset(id, record).await)
    }
    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.remove(id).await)
    }
    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        delegate!(self, s => s.list().await)
    }
    async fn read(
        &self,
        id: &str,
        piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        delegate!(self, s => s.read(id, piece, part).await)
    }
    async fn assemble(&self, id: &str, pieces: &[ByteRange]) -> Result<Blob, StoreError> {
        match self {
            Backend::IndexedDb(s) => s.assemble(id, pieces).await,
            Backend::Memory(s) => {
                let chunks: Array = s.assemble(id, pieces).await?.into_iter().collect();
                Blob::new_with_u8_array_sequence(&chunks).map_err(|e| super::js::store_error(&e))
            }
        }
    }
}
