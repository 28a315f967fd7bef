//! The OPFS store: one file per download in the origin private file system,
//! written in place with a `FileSystemSyncAccessHandle` (dedicated workers
//! only), and the records in an IndexedDB database of their own.
//!
//! A commit writes the piece at its offset, flushes, and only then saves the
//! record that claims it. On load the record is trusted no further than the
//! file's size. The finished download is the file itself (`getFile()`:
//! disk-backed, no copy). Reading (`list`, `blob`, `remove`) works in any
//! context with OPFS; writing needs a dedicated worker, because the async
//! API can only append by copying the whole file on every open.
//!
//! A sync handle locks its file: it is opened for each commit and closed
//! right after, so a paused download holds no lock another worker or tab
//! would trip over.

use super::chunk::WebChunk;
use super::clock::JsClock;
use super::idb::IdbStore;
use super::js;
use crate::core::clock::Clock;
use crate::core::range::ByteRange;
use crate::core::record::Record;
use crate::core::store::{self, Store};
use crate::core::{StoreError, StoreErrorKind};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, File, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemReadWriteOptions, FileSystemSyncAccessHandle,
    StorageManager,
};

/// The directory of the origin private file system that holds the files.
const DIRECTORY: &str = "resumable-fetch";
/// The IndexedDB database of the records of OPFS downloads.
const RECORDS_DB: &str = "resumable-fetch-opfs";
/// The most directory entries one `sweep` looks at.
const SWEPT_PER_CALL: usize = 100_000;

#[derive(Clone)]
pub struct OpfsStore {
    records: IdbStore,
    dir: FileSystemDirectoryHandle,
}

impl OpfsStore {
    /// Opens the store; `Unavailable` where there is no OPFS (WebKitGTK has
    /// no `navigator.storage`; Firefox's private windows throw).
    pub async fn open() -> Result<Self, StoreError> {
        let storage = js::get(&js::get(&js_sys::global(), "navigator"), "storage")
            .dyn_into::<StorageManager>()
            .map_err(|_| unavailable("this browser has no navigator.storage"))?;
        if !js::get(&storage, "getDirectory").is_function() {
            return Err(unavailable(
                "this browser has no origin private file system",
            ));
        }
        let root: FileSystemDirectoryHandle = JsFuture::from(storage.get_directory())
            .await
            .map_err(|e| unavailable(&js::message(&e)))?
            .unchecked_into();
        let options = FileSystemGetDirectoryOptions::new();
        options.set_create(true);
        let dir = JsFuture::from(root.get_directory_handle_with_options(DIRECTORY, &options))
            .await
            .map_err(|e| js::store_error(&e))?
            .unchecked_into();
        let records = IdbStore::open_named(RECORDS_DB).await?;
        Ok(Self { records, dir })
    }

    /// Whether this context can write OPFS files in place: only dedicated
    /// workers have `createSyncAccessHandle`.
    pub fn can_write() -> bool {
        let handle = js::get(&js_sys::global(), "FileSystemFileHandle");
        js::get(&js::get(&handle, "prototype"), "createSyncAccessHandle").is_function()
    }

    /// `Unavailable` where this context cannot write OPFS files in place.
    pub fn check_writable() -> Result<(), StoreError> {
        if Self::can_write() {
            return Ok(());
        }
        Err(unavailable(
            "writing needs a dedicated worker; on a page, use store 'auto' or 'indexeddb' \
             (a complete OPFS download can be read anywhere)",
        ))
    }

    async fn file(&self, id: &str, create: bool) -> Result<FileSystemFileHandle, StoreError> {
        let options = FileSystemGetFileOptions::new();
        options.set_create(create);
        JsFuture::from(
            self.dir
                .get_file_handle_with_options(&file_name(id), &options),
        )
        .await
        .map(JsCast::unchecked_into)
        .map_err(|e| js::store_error(&e))
    }

    /// The stored file, or `None` if there is none.
    async fn contents(&self, id: &str) -> Result<Option<File>, StoreError> {
        let handle = match self.file(id, false).await {
            Ok(handle) => handle,
            Err(_) => return Ok(None),
        };
        JsFuture::from(handle.get_file())
            .await
            .map(|file| Some(file.unchecked_into()))
            .map_err(|e| js::store_error(&e))
    }

    /// Runs `work` with the file's sync handle, closed afterwards whatever
    /// happens.
    async fn with_handle<T>(
        &self,
        id: &str,
        work: impl FnOnce(&FileSystemSyncAccessHandle) -> Result<T, JsValue>,
    ) -> Result<T, StoreError> {
        Self::check_writable()?;
        let file = self.file(id, true).await?;
        let opening = CloseIfDropped(Some(file.create_sync_access_handle()));
        let handle: FileSystemSyncAccessHandle = JsFuture::from(opening.promise())
            .await
            .map_err(|e| js::store_error(&e))?
            .unchecked_into();
        opening.disarm();
        let result = work(&handle);
        handle.close();
        result.map_err(|e| js::store_error(&e))
    }
}

/// A sync handle being opened: if the write is dropped while it opens, the
/// handle is closed as soon as it is open, so it cannot lock the file until
/// the worker ends.
struct CloseIfDropped(Option<js_sys::Promise>);

impl CloseIfDropped {
    fn promise(&self) -> js_sys::Promise {
        self.0
            .clone()
            .unwrap_or_else(|| js_sys::Promise::resolve(&JsValue::UNDEFINED))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CloseIfDropped {
    fn drop(&mut self) {
        if let Some(opening) = self.0.take() {
            let close = Closure::once_into_js(|handle: FileSystemSyncAccessHandle| handle.close());
            js::then(&opening, &close, &JsValue::UNDEFINED);
        }
    }
}

impl Store for OpfsStore {
    type Chunk = WebChunk;
    type Assembled = Blob;

    /// The record, claiming no byte past the end of the file.
    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(bytes) = self.records.load(id).await? else {
            return Ok(None);
        };
        // A record that does not decode is left for the driver to report.
        let Ok(mut record) = Record::decode(&bytes) else {
            return Ok(Some(bytes));
        };
        let size = match self.contents(id).await? {
            Some(file) => file.size() as u64,
            None => 0,
        };
        Ok(Some(if record.limit_to(size) {
            record.encode()
        } else {
            bytes
        }))
    }

    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.records.save_record(id, record).await
    }

    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<WebChunk>,
    ) -> Result<(), StoreError> {
        // The handle's writes take bytes; read any Blob before locking the file.
        let chunks = WebChunk::arrays(&chunks)
            .await
            .map_err(|e| js::store_error(&e))?;
        self.with_handle(id, |handle| {
            let mut at = piece.start;
            for chunk in &chunks {
                let options = FileSystemReadWriteOptions::new();
                options.set_at(at as f64);
                // A byte count, formatted as u64 (the same text as the f64):
                // formatting an f64 anywhere adds ~10 KB gzipped to the wasm.
                let written = handle.write_with_js_u8_array_and_options(chunk, &options)? as u64;
                if written != u64::from(chunk.length()) {
                    return Err(js_sys::Error::new(&format!(
                        "wrote {written} of {} bytes at {at}",
                        chunk.length()
                    ))
                    .into());
                }
                at += u64::from(chunk.length());
            }
            handle.flush()
        })
        .await
    }

    /// The new record claims nothing; then the file is emptied.
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.records.save_record(id, record).await?;
        self.with_handle(id, |handle| handle.truncate_with_f64(0.0))
            .await
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.records.remove(id).await?;
        let mut tries = 0;
        loop {
            let Err(e) = JsFuture::from(self.dir.remove_entry(&file_name(id))).await else {
                return Ok(());
            };
            match js::error_name(&e).as_deref() {
                Some("NotFoundError") => return Ok(()),
                // A sync handle still open: one a dropped write opened is
                // closed as soon as it is (`CloseIfDropped`).
                Some("NoModificationAllowedError") if tries < 10 => {
                    tries += 1;
                    JsClock.sleep(1).await;
                }
                _ => return Err(js::store_error(&e)),
            }
        }
    }

    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.records.list().await
    }

    /// Deletes the files no record names (a `remove` cut short between the
    /// record and the file) that were last written `max_age_ms` or more ago.
    async fn sweep(&self, max_age_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        let named: Vec<String> = self
            .records
            .ids()
            .await?
            .iter()
            .map(|id| file_name(id))
            .collect();
        let iterator = js::get(&self.dir, "keys")
            .dyn_into::<js_sys::Function>()
            .and_then(|keys| keys.call0(&self.dir))
            .map_err(|e| js::store_error(&e))?;
        let next = js::get(&iterator, "next")
            .dyn_into::<js_sys::Function>()
            .map_err(|e| js::store_error(&e))?;
        let mut names = Vec::new();
        // Bounded: a directory of more files than this is swept in parts.
        for _ in 0..SWEPT_PER_CALL {
            let step = next.call0(&iterator).map_err(|e| js::store_error(&e))?;
            let step = JsFuture::from(js_sys::Promise::resolve(&step))
                .await
                .map_err(|e| js::store_error(&e))?;
            if js::get(&step, "done").is_truthy() {
                break;
            }
            if let Some(name) = js::get(&step, "value").as_string() {
                names.push(name);
            }
        }
        for name in names.iter().filter(|name| !named.contains(name)) {
            let options = FileSystemGetFileOptions::new();
            let file = JsFuture::from(self.dir.get_file_handle_with_options(name, &options))
                .await
                .map(JsCast::unchecked_into::<FileSystemFileHandle>);
            // Not a file (or gone meanwhile): not ours to sweep.
            let Ok(file) = file else { continue };
            let contents: File = JsFuture::from(file.get_file())
                .await
                .map_err(|e| js::store_error(&e))?
                .unchecked_into();
            let age = now_ms.saturating_sub(contents.last_modified().max(0.0) as u64);
            if age < max_age_ms {
                continue;
            }
            // Gone meanwhile, or open elsewhere (a writer of an earlier
            // version, which takes no sweep lock): left alone.
            if let Err(e) = JsFuture::from(self.dir.remove_entry(name)).await {
                let name = js::error_name(&e);
                if !matches!(
                    name.as_deref(),
                    Some("NotFoundError" | "NoModificationAllowedError")
                ) {
                    return Err(js::store_error(&e));
                }
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        id: &str,
        _piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        let file = self
            .contents(id)
            .await?
            .ok_or_else(|| corrupt("the file is missing".into()))?;
        // Sizes are whole numbers: u64, as in write(), never f64 in a message.
        let held = file.size() as u64;
        if held < part.end {
            return Err(corrupt(format!(
                "the file holds {held} bytes, fewer than the record claims"
            )));
        }
        js::blob_bytes(&file, part.start, part.end).await
    }

    /// The file itself (or its first `size` bytes): disk-backed, never copied.
    async fn assemble(&self, id: &str, pieces: &[ByteRange]) -> Result<Blob, StoreError> {
        let size = store::contiguous_length(pieces)?;
        let file = match self.contents(id).await? {
            Some(file) => file,
            // An empty download never wrote its file.
            None if size == 0 => return Blob::new().map_err(|e| js::store_error(&e)),
            None => return Err(corrupt("the file is missing".into())),
        };
        let held = file.size() as u64;
        match held.cmp(&size) {
            std::cmp::Ordering::Equal => Ok(file.into()),
            // Left over from before a restart whose truncation did not happen.
            std::cmp::Ordering::Greater => file
                .slice_with_f64_and_f64(0.0, size as f64)
                .map_err(|e| js::store_error(&e)),
            std::cmp::Ordering::Less => {
                Err(corrupt(format!("the file holds {held} bytes, not {size}")))
            }
        }
    }
}

/// A file name for any id (ids are URLs: long, with slashes).
fn file_name(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn unavailable(why: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!("OPFS is unavailable: {why}"),
    )
}

fn corrupt(why: String) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!("the OPFS download is damaged: {why}"),
    )
}
