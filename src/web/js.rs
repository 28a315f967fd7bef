//! Small helpers over JS values shared by the adapters.

use crate::core::{StoreError, StoreErrorKind};
use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

// Built-ins that run an application's code (getters, Proxy traps,
// iterators) and so may throw: caught here, never let through wasm.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = Array, js_name = isArray)]
    fn checked_is_array(value: &JsValue) -> Result<bool, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Array, js_name = from)]
    fn checked_array_from(value: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Object, js_name = keys)]
    fn checked_keys(value: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Object, js_name = entries)]
    fn checked_entries(value: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(js_name = Uint8Array)]
    type CheckedBytes;
    #[wasm_bindgen(catch, constructor, js_class = Uint8Array)]
    fn new(buffer: &JsValue, offset: f64, length: f64) -> Result<CheckedBytes, JsValue>;
}

/// `Array.isArray(value)`; a revoked Proxy (which throws) is no array.
pub fn is_array(value: &JsValue) -> bool {
    checked_is_array(value).unwrap_or(false)
}

/// `Array.from(value)`, or what it threw.
pub fn array_from(value: &JsValue) -> Result<Array, JsValue> {
    checked_array_from(value)
}

/// `Object.keys(value)`, or what it threw (a Proxy's trap).
pub fn keys(value: &JsValue) -> Result<Array, JsValue> {
    checked_keys(value)
}

/// `Object.entries(value)`, or what it threw (a getter, a Proxy's trap).
pub fn entries(value: &JsValue) -> Result<Array, JsValue> {
    checked_entries(value)
}

/// `value[key]` if `value` has it as an own property (inherited ones are
/// not the caller's), or what reading it threw (a getter, a Proxy's trap).
pub fn own(value: &JsValue, key: &str) -> Result<JsValue, JsValue> {
    if !value.is_object() && !value.is_function() {
        return Ok(JsValue::UNDEFINED);
    }
    let key = JsValue::from_str(key);
    let target: &js_sys::Object = value.unchecked_ref();
    if Reflect::get_own_property_descriptor(target, &key)?.is_undefined() {
        return Ok(JsValue::UNDEFINED);
    }
    Reflect::get(value, &key)
}

/// What kind of value this is, for a message, without running any of its
/// code (a getter or a Proxy trap could throw, or lie).
pub fn describe(value: &JsValue) -> String {
    if value.is_null() {
        "null".into()
    } else if value.is_undefined() {
        "undefined".into()
    } else if let Some(s) = value.as_string() {
        format!("the string {s:?}")
    } else if value.is_function() {
        "a function".into()
    } else if value.is_object() {
        "an object".into()
    } else {
        // A number, boolean, symbol or bigint: the engine's own text.
        format!("{value:?}")
    }
}

/// A copy of the bytes of a BufferSource (an `ArrayBuffer`, a `Uint8Array`,
/// any other typed array or a `DataView`); `None` for anything else.
pub fn buffer_source(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Some(bytes.to_vec());
    }
    let (buffer, offset, length) = if js_sys::ArrayBuffer::is_view(value) {
        (
            get(value, "buffer"),
            get(value, "byteOffset").as_f64()?,
            get(value, "byteLength").as_f64()?,
        )
    } else if value.is_instance_of::<js_sys::ArrayBuffer>() {
        let length = get(value, "byteLength").as_f64()?;
        (value.clone(), 0.0, length)
    } else {
        return None;
    };
    // A detached buffer has no bytes (and a view over it cannot be made).
    if length == 0.0 {
        return Some(Vec::new());
    }
    let bytes = CheckedBytes::new(&buffer, offset, length).ok()?;
    Some(bytes.unchecked_into::<Uint8Array>().to_vec())
}

/// A readable description of a thrown value: `name: message` for errors
/// (and error-like objects). Read with `Reflect.get`, so an error whose
/// getters throw cannot throw again through wasm; anything else is only
/// described.
pub fn message(value: &JsValue) -> String {
    if value.is_object() {
        let name = get(value, "name").as_string().unwrap_or_default();
        let message = get(value, "message").as_string().unwrap_or_default();
        match (name.is_empty(), message.is_empty()) {
            (true, true) => {}
            (_, true) => return name,
            (true, false) => return message,
            (false, false) => return format!("{name}: {message}"),
        }
    }
    value.as_string().unwrap_or_else(|| describe(value))
}

/// The `name` of a thrown `Error` or `DOMException`.
pub fn error_name(value: &JsValue) -> Option<String> {
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

/// `promise.then(on_fulfilled, on_rejected)` with JS functions (or
/// `undefined`), returning the derived promise; `undefined` if `promise`
/// has no callable `then`.
pub fn then(promise: &JsValue, on_fulfilled: &JsValue, on_rejected: &JsValue) -> JsValue {
    match get(promise, "then").dyn_into::<Function>() {
        Ok(then) => then
            .call2(promise, on_fulfilled, on_rejected)
            .unwrap_or(JsValue::UNDEFINED),
        Err(_) => JsValue::UNDEFINED,
    }
}
