//! Small helpers over JS values shared by the adapters.

use crate::core::{StoreError, StoreErrorKind};
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A readable description of a thrown value: `name: message` for errors.
pub fn message(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        let name = String::from(error.name());
        let message = String::from(error.message());
        return if message.is_empty() {
            name
        } else {
            format!("{name}: {message}")
        };
    }
    if let Some(exception) = value.dyn_ref::<web_sys::DomException>() {
        return format!("{}: {}", exception.name(), exception.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// The `name` of a thrown `Error` or `DOMException`.
pub fn error_name(value: &JsValue) -> Option<String> {
    if let Some(exception) = value.dyn_ref::<web_sys::DomException>() {
        return Some(exception.name());
    }
    get(value, "name").as_string()
}

/// Classifies a storage failure by its `DOMException` name, as
/// indexed_db_futures does (and Node's `ENOSPC` code); anything unknown is
/// `Failed`, never a panic.
pub fn store_error(value: &JsValue) -> StoreError {
    let kind = match error_name(value).as_deref() {
        Some("QuotaExceededError") => StoreErrorKind::QuotaExceeded,
        // A full disk under Node's file system, e.g. in a custom store.
        _ if get(value, "code").as_string().as_deref() == Some("ENOSPC") => {
            StoreErrorKind::QuotaExceeded
        }
        Some("SecurityError" | "InvalidAccessError" | "NotAllowedError") => {
            StoreErrorKind::Unavailable
        }
        _ => StoreErrorKind::Failed,
    };
    StoreError::new(kind, message(value))
}

/// `obj[key]`, or `undefined` when it cannot be read.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Whether this is a browser (a page, or a worker with `importScripts`),
/// rather than Node, Deno or workerd, which have neither.
pub fn is_browser() -> bool {
    let global = js_sys::global();
    !get(&global, "document").is_undefined() || get(&global, "importScripts").is_function()
}

/// Awaits a callback-style event: `arm` receives `resolve` and `reject` to
/// install as handlers (e.g. `onsuccess`, `onerror`).
pub async fn event(arm: impl FnOnce(&Function, &Function)) -> Result<JsValue, JsValue> {
    let mut arm = Some(arm);
    let promise = Promise::new(&mut |resolve, reject| {
        if let Some(arm) = arm.take() {
            arm(&resolve, &reject);
        }
    });
    JsFuture::from(promise).await
}

/// The bytes `start..end` of a Blob (a stored piece or file), read into wasm.
pub async fn blob_bytes(blob: &web_sys::Blob, start: u64, end: u64) -> Result<Vec<u8>, StoreError> {
    let slice = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| store_error(&e))?;
    let buffer = JsFuture::from(slice.array_buffer())
        .await
        .map_err(|e| store_error(&e))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// A new `Uint8Array` of `chunks` in order: a buffer of exactly these bytes,
/// never a view that would carry (or let a store keep) a larger one.
pub fn concat(chunks: &[js_sys::Uint8Array]) -> js_sys::Uint8Array {
    let length = chunks.iter().map(js_sys::Uint8Array::length).sum();
    let out = js_sys::Uint8Array::new_with_length(length);
    let mut at = 0;
    for chunk in chunks {
        out.set(chunk, at);
        at += chunk.length();
    }
    out
}
