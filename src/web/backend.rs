//! The store a download uses, chosen from the `store` option.

use super::chunk::WebChunk;
use super::custom::CustomStore;
use super::idb::IdbStore;
use super::opfs::OpfsStore;
use crate::core::memory::MemoryStore;
use crate::core::range::ByteRange;
use crate::core::store::Store;
use crate::core::{Error, StoreError};
use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

thread_local! {
    /// One memory store per page or worker, shared by every download opened
    /// with `store: 'memory'`, so `Download.list()` sees them. Nothing in it
    /// survives a reload.
    static PAGE_MEMORY: MemoryStore<WebChunk> = MemoryStore::new();
}

fn page_memory() -> MemoryStore<WebChunk> {
    PAGE_MEMORY.with(Clone::clone)
}

/// The `store` option.
#[derive(Clone)]
pub enum StoreChoice {
    /// The best persistent store available, else memory.
    Auto,
    Opfs,
    IndexedDb,
    Memory,
    Custom(CustomStore),
}

impl StoreChoice {
    /// A store name, or a custom store object.
    pub fn parse(value: JsValue) -> Result<Self, Error> {
        if value.is_object() {
            return CustomStore::new(value).map(Self::Custom);
        }
        match value.as_string().as_deref() {
            Some("auto") => Ok(Self::Auto),
            Some("opfs") => Ok(Self::Opfs),
            Some("indexeddb") => Ok(Self::IndexedDb),
            Some("memory") => Ok(Self::Memory),
            _ => Err(Error::invalid(
                "store",
                format!(
                    "{} is not one of 'auto', 'opfs', 'indexeddb', 'memory' or a custom store object",
                    super::js::message(&value)
                ),
            )),
        }
    }
}

#[derive(Clone)]
pub enum Backend {
    Opfs(OpfsStore),
    IndexedDb(IdbStore),
    Memory(MemoryStore<WebChunk>),
    Custom(CustomStore),
}

impl Backend {
    /// Opens the chosen store. `Auto` takes OPFS where this context can
    /// write it in place (dedicated workers), else IndexedDB, else memory
    /// (no IndexedDB, or private modes that refuse it).
    pub async fn open(choice: StoreChoice) -> Result<Self, StoreError> {
        match choice {
            StoreChoice::Opfs => Ok(Self::Opfs(OpfsStore::open().await?)),
            StoreChoice::IndexedDb => Ok(Self::IndexedDb(IdbStore::open().await?)),
            StoreChoice::Memory => Ok(Self::Memory(page_memory())),
            StoreChoice::Custom(store) => Ok(Self::Custom(store)),
            StoreChoice::Auto => {
                if OpfsStore::can_write() {
                    if let Ok(opfs) = OpfsStore::open().await {
                        return Ok(Self::Opfs(opfs));
                    }
                }
                Ok(match IdbStore::open().await {
                    Ok(idb) => Self::IndexedDb(idb),
                    Err(_) => Self::Memory(page_memory()),
                })
            }
        }
    }

    /// The stores `Download.list()` and `remove()` look in: the one named,
    /// else every built-in store this page can reach.
    pub async fn all(choice: StoreChoice) -> Vec<Self> {
        match choice {
            StoreChoice::Auto => {
                let mut all = vec![Self::Memory(page_memory())];
                if let Ok(idb) = IdbStore::open().await {
                    all.push(Self::IndexedDb(idb));
                }
                if let Ok(opfs) = OpfsStore::open().await {
                    all.push(Self::Opfs(opfs));
                }
                all
            }
            choice => Self::open(choice).await.into_iter().collect(),
        }
    }

    /// The name `dl.store` reports (a custom store's own `name`, else 'custom').
    pub fn name(&self) -> String {
        match self {
            Self::Opfs(_) => "opfs".into(),
            Self::IndexedDb(_) => "indexeddb".into(),
            Self::Memory(_) => "memory".into(),
            Self::Custom(store) => store.name().into(),
        }
    }

    /// The custom store, whose `lock` hook the one-writer lock calls.
    pub fn custom(&self) -> Option<&CustomStore> {
        match self {
            Self::Custom(store) => Some(store),
            _ => None,
        }
    }

    /// Whether a download can be written here: OPFS only in dedicated
    /// workers. Checked before a run, so no request is made in vain.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            Self::Opfs(_) => OpfsStore::check_writable(),
            _ => Ok(()),
        }
    }

    /// Asks the browser to keep this origin's storage under pressure, for
    /// stores the browser may evict.
    pub fn ask_persistence(&self) {
        if matches!(self, Self::Opfs(_) | Self::IndexedDb(_)) {
            ask_persistence();
        }
    }
}

/// `navigator.storage.persist()`, where there is one (pages, not workers).
/// The answer changes nothing here: without it, downloads still work.
pub fn ask_persistence() {
    let storage = super::js::get(&super::js::get(&js_sys::global(), "navigator"), "storage");
    let Ok(persist) = super::js::get(&storage, "persist").dyn_into::<Function>() else {
        return;
    };
    if let Ok(asked) = persist.call0(&storage) {
        let answer = JsFuture::from(Promise::resolve(&asked));
        wasm_bindgen_futures::spawn_local(async move {
            let _ = answer.await;
        });
    }
}

/// Delegates every store method to the chosen backend.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Backend::Opfs($store) => $call,
            Backend::IndexedDb($store) => $call,
            Backend::Memory($store) => $call,
            Backend::Custom($store) => $call,
        }
    };
}

impl Store for Backend {
    type Chunk = WebChunk;
    type Assembled = Blob;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, s => s.load(id).await)
    }
    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        delegate!(self, s => s.save_record(id, record).await)
    }
    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<WebChunk>,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.write(id, piece, chunks).await)
    }
    fn concurrent_writes(&self) -> bool {
        delegate!(self, s => s.concurrent_writes())
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
    async fn sweep(&self, max_age_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        delegate!(self, s => s.sweep(max_age_ms, now_ms).await)
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
            Backend::Opfs(s) => s.assemble(id, pieces).await,
            Backend::IndexedDb(s) => s.assemble(id, pieces).await,
            Backend::Custom(s) => s.assemble(id, pieces).await,
            Backend::Memory(s) => {
                let chunks = s.assemble(id, pieces).await?;
                WebChunk::blob_of(&chunks).map_err(|e| super::js::store_error(&e))
            }
        }
    }
    fn takes_whole_bodies(&self) -> bool {
        delegate!(self, s => s.takes_whole_bodies())
    }
}
