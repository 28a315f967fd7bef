//! A store the application supplies: a plain JS object with async methods
//! (the `CustomStore` interface of the .d.ts), so runtimes without IndexedDB
//! or OPFS can keep downloads in whatever they have: a file system, KV, the
//! Cache API, a `Map`.
//!
//! The interface is positional, one file per download: `write(id, offset,
//! bytes)` then `putRecord(id, record)`, in that order, so a record never
//! claims bytes that were not written. Records are opaque bytes to the store.

use super::fetch::WebChunk;
use super::js;
use crate::core::range::ByteRange;
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

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.call("getRecord", &[id.into()]).await?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        // Anything else is handed to the record decoder, which rejects it.
        Ok(Some(
            value
                .dyn_into::<Uint8Array>()
                .map(|r| r.to_vec())
                .unwrap_or_default(),
        ))
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
        let value = self.call("records", &[]).await?;
        if !Array::is_array(&value) {
            return Err(failed(
                "the custom store's records() must return an array of Uint8Arrays".into(),
            ));
        }
        // An entry that is not bytes fails to decode and is skipped, as a damaged record is.
        Ok(Array::from(&value)
            .iter()
            .map(|r| {
                r.dyn_into::<Uint8Array>()
                    .map(|r| r.to_vec())
                    .unwrap_or_default()
            })
            .collect())
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

fn failed(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Failed, message)
}
