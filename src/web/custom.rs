//! A store the application supplies: a plain JS object with async methods
//! (the `CustomStore` interface of the .d.ts), so runtimes without IndexedDB
//! or OPFS can keep downloads in whatever they have: a file system, KV, the
//! Cache API, a `Map`.
//!
//! The interface is positional, one file per download: `write(id, offset,
//! bytes)` then `putRecord(id, record)`, in that order, so a record never
//! claims bytes that were not written. Records are opaque bytes to the store.
//!
//! A record can still outlive its data (a file deleted by hand, a disk that
//! lost the last writes): on load it is trusted no further than the store's
//! `size(id)` where it has one, else than the pieces whose last byte
//! `read()` still finds, as the OPFS store trusts its file's size.
//! A store may also take part in the one-writer lock with `lock(id)`
//! (`DownloadLock` calls it), for other processes sharing its files.

use super::chunk::WebChunk;
use super::js;
use crate::core::range::ByteRange;
use crate::core::record::Record;
use crate::core::store::{self, Store};
use crate::core::{Error, StoreError, StoreErrorKind};
use js_sys::{Array, Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

/// The methods a custom store must have.
const REQUIRED: [&str; 6] = [
    "getRecord",
    "putRecord",
    "records",
    "write",
    "read",
    "delete",
];

/// Bytes read per `read()` call when a store has no `file()` method.
const ASSEMBLE_STEP: u64 = 8 << 20;

#[derive(Clone)]
pub struct CustomStore {
    object: JsValue,
    name: String,
}

impl CustomStore {
    /// Checks that `object` has every required method; a mistake names the
    /// missing one.
    pub fn new(object: JsValue) -> Result<Self, Error> {
        for method in REQUIRED {
            if !js::get(&object, method).is_function() {
                return Err(Error::invalid(
                    "store",
                    format!(
                        "a custom store needs the async methods {}; `{method}` is missing",
                        REQUIRED.join(", ")
                    ),
                ));
            }
        }
        let name = js::get(&object, "name")
            .as_string()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "custom".into());
        Ok(Self { object, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn has(&self, method: &str) -> bool {
        js::get(&self.object, method).is_function()
    }

    /// The store's optional `lock(id)` hook: `Some(release)` when this
    /// process now holds the one-writer lock of `id`, `None` when the store
    /// has no hook, `LOCKED` when it resolves null (another process holds
    /// it). A throw is `STORAGE_FAILED` with the store's message.
    pub async fn lock(&self, id: &str) -> Result<Option<Function>, Error> {
        if !self.has("lock") {
            return Ok(None);
        }
        let value = self
            .call("lock", &[id.into()])
            .await
            .map_err(|e| StoreError::new(StoreErrorKind::Failed, e.message))?;
        if value.is_null() {
            return Err(Error::Locked { id: id.to_string() });
        }
        value.dyn_into::<Function>().map(Some).map_err(|value| {
            invalid(format!(
                "lock() must resolve a release function, or null when another process holds the download; it resolved {}",
                js::describe(&value)
            ))
            .into()
        })
    }

    /// The store's optional `size(id)`: the bytes stored for `id` (0 when
    /// it resolves null or undefined).
    async fn size(&self, id: &str) -> Result<u64, StoreError> {
        let value = self.call("size", &[id.into()]).await?;
        if value.is_null() || value.is_undefined() {
            return Ok(0);
        }
        match value.as_f64() {
            Some(n) if n.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&n) => {
                Ok(n as u64)
            }
            _ => Err(invalid(format!(
                "size() must return a whole number of bytes, or null when nothing is stored; it returned {}",
                js::describe(&value)
            ))),
        }
    }

    /// Trims `record` at its first piece whose last byte `read()` cannot
    /// find: no byte, or a throw (a file store's read of a deleted file
    /// throws). `true` if the record changed. A read of another length, or
    /// of something that is not bytes, is a broken store: `Corrupt`, as
    /// `read_exact` says.
    async fn trim_to_readable(&self, id: &str, record: &mut Record) -> Result<bool, StoreError> {
        let pieces: Vec<ByteRange> = record.pieces.iter().collect();
        for piece in pieces {
            let Some(last) = piece.end.checked_sub(1).filter(|&l| l >= piece.start) else {
                continue;
            };
            let read = self
                .call("read", &[id.into(), (last as f64).into(), 1.into()])
                .await;
            let present = match read.map(|value| js::buffer_source(&value)) {
                Err(_) => false,
                Ok(Some(bytes)) if bytes.is_empty() => false,
                Ok(Some(bytes)) if bytes.len() == 1 => true,
                Ok(Some(bytes)) => {
                    return Err(corrupt(format!(
                        "the custom store's read() returned {} bytes at {last}, not 1",
                        bytes.len()
                    )))
                }
                Ok(None) => {
                    return Err(corrupt(format!(
                        "the custom store's read() returned something other than a Uint8Array for byte {last}"
                    )))
                }
            };
            if !present {
                return Ok(record.limit_to(piece.start));
            }
        }
        Ok(false)
    }

    /// Calls `method(args…)` and awaits its result; a method may return a
    /// value or a promise. Whatever it throws becomes a `StoreError`.
    async fn call(&self, method: &str, args: &[JsValue]) -> Result<JsValue, StoreError> {
        let function: Function = js::get(&self.object, method)
            .dyn_into()
            .map_err(|_| failed(format!("the custom store has no method `{method}`")))?;
        let args: Array = args.iter().collect();
        let returned = function
            .apply(&self.object, &args)
            .map_err(|e| self.error(method, &e))?;
        JsFuture::from(Promise::resolve(&returned))
            .await
            .map_err(|e| self.error(method, &e))
    }

    fn error(&self, method: &str, thrown: &JsValue) -> StoreError {
        let error = js::store_error(thrown);
        StoreError::new(
            error.kind,
            format!("the custom store's {method}() failed: {}", error.message),
        )
    }

    /// Exactly `length` bytes at `offset`, or a `Corrupt` error.
    async fn read_exact(
        &self,
        id: &str,
        offset: u64,
        length: u64,
    ) -> Result<Uint8Array, StoreError> {
        let value = self
            .call(
                "read",
                &[id.into(), (offset as f64).into(), (length as f64).into()],
            )
            .await?;
        let bytes = value.dyn_into::<Uint8Array>().map_err(|_| {
            corrupt(format!("the custom store's read() returned something other than a Uint8Array for bytes {offset}+{length}"))
        })?;
        if u64::from(bytes.length()) != length {
            return Err(corrupt(format!(
                "the custom store's read() returned {} bytes at {offset}, not {length}",
                bytes.length()
            )));
        }
        Ok(bytes)
    }
}

impl Store for CustomStore {
    type Chunk = WebChunk;
    type Assembled = Blob;

    /// The record, claiming no byte the store no longer holds.
    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.call("getRecord", &[id.into()]).await?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let bytes = js::buffer_source(&value).ok_or_else(|| {
            invalid(format!(
                "getRecord must return a Uint8Array, ArrayBuffer, or null; it returned {}",
                js::describe(&value)
            ))
        })?;
        // A record that does not decode is left for the driver to report.
        let Ok(mut record) = Record::decode(&bytes) else {
            return Ok(Some(bytes));
        };
        let trimmed = if self.has("size") {
            let size = self.size(id).await?;
            record.limit_to(size)
        } else {
            self.trim_to_readable(id, &mut record).await?
        };
        Ok(Some(if trimmed { record.encode() } else { bytes }))
    }

    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.call("putRecord", &[id.into(), Uint8Array::from(record).into()])
            .await
            .map(drop)
    }

    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<WebChunk>,
    ) -> Result<(), StoreError> {
        let chunks = WebChunk::arrays(&chunks)
            .await
            .map_err(|e| js::store_error(&e))?;
        // One `write()` per piece.
        let bytes = js::concat(&chunks);
        self.call(
            "write",
            &[id.into(), (piece.start as f64).into(), bytes.into()],
        )
        .await
        .map(drop)
    }

    /// The new record claims nothing; the old bytes are overwritten as the
    /// download goes on.
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.save_record(id, record).await
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.call("delete", &[id.into()]).await.map(drop)
    }

    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        const MUST: &str = "records() must return an array of Uint8Arrays or ArrayBuffers";
        let value = self.call("records", &[]).await?;
        if !js::is_array(&value) {
            return Err(invalid(format!(
                "{MUST}; it returned {}",
                js::describe(&value)
            )));
        }
        // An entry that is bytes but no record fails to decode and is
        // skipped, as a damaged record is; one that is not bytes is the
        // store's mistake.
        js::array_from(&value)
            .map_err(|e| self.error("records", &e))?
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                js::buffer_source(&entry).ok_or_else(|| {
                    invalid(format!("{MUST}; entry {i} is {}", js::describe(&entry)))
                })
            })
            .collect()
    }

    /// The store's optional `sweep(olderThan)`: it knows its own leftovers.
    async fn sweep(&self, max_age_ms: u64, _now_ms: u64) -> Result<(), StoreError> {
        if self.has("sweep") {
            self.call("sweep", &[(max_age_ms as f64).into()]).await?;
        }
        Ok(())
    }

    async fn read(
        &self,
        id: &str,
        _piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        Ok(self.read_exact(id, part.start, part.len()).await?.to_vec())
    }

    /// The store's own `file(id, size)` where it has one (e.g. a disk-backed
    /// Blob); otherwise a Blob built from `read()`s, which holds the file in
    /// memory.
    async fn assemble(&self, id: &str, pieces: &[ByteRange]) -> Result<Blob, StoreError> {
        let size = store::contiguous_length(pieces)?;
        if js::get(&self.object, "file").is_function() {
            let blob: Blob = self
                .call("file", &[id.into(), (size as f64).into()])
                .await?
                .dyn_into()
                .map_err(|_| {
                    corrupt("the custom store's file() returned something other than a Blob".into())
                })?;
            let held = blob.size() as u64;
            if held != size {
                return Err(corrupt(format!(
                    "the custom store's file() returned {held} bytes, not {size}"
                )));
            }
            return Ok(blob);
        }
        let parts = Array::new();
        let mut offset = 0;
        while offset < size {
            let length = ASSEMBLE_STEP.min(size - offset);
            parts.push(&self.read_exact(id, offset, length).await?.into());
            offset += length;
        }
        Blob::new_with_u8_array_sequence(&parts).map_err(|e| js::store_error(&e))
    }
}

fn corrupt(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, message)
}

/// The store broke its contract: `INVALID_ARGUMENT`.
fn invalid(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Invalid, message)
}

fn failed(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Failed, message)
}
