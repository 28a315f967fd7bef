//! Values that cross to JS: a `DownloadError` (also as `{ message, code }`
//! to and from the worker), plain objects, and a stored download's info.

use crate::core::record::Record;
use crate::core::{filename, Error};
use crate::web::js;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

/// A `DownloadError`: a real `Error` named `DownloadError` with a `code`.
pub(super) fn to_js(error: Error) -> JsValue {
    download_error(&error.to_string(), error.code())
}

pub(super) fn download_error(message: &str, code: &str) -> JsValue {
    let js_error = js_sys::Error::new(message);
    js_error.set_name("DownloadError");
    let _ = Reflect::set(&js_error, &"code".into(), &code.into());
    js_error.into()
}

/// A DownloadError as `{ message, code }`, which crosses to and from a
/// worker (a cloned Error loses its `code`); `error_from_parts` undoes it.
pub(super) fn error_parts(error: &JsValue) -> JsValue {
    object(&[
        ("message", js::get(error, "message")),
        ("code", js::get(error, "code")),
    ])
}

/// The DownloadError a worker reported as `{ message, code }`.
pub(super) fn error_from_parts(parts: &JsValue) -> JsValue {
    download_error(
        &js::get(parts, "message").as_string().unwrap_or_default(),
        &js::get(parts, "code")
            .as_string()
            .unwrap_or_else(|| "INTERNAL".into()),
    )
}

pub(super) fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&obj, &(*key).into(), value);
    }
    obj.into()
}

pub(super) fn info(record: &Record, store: &str) -> JsValue {
    object(&[
        ("id", record.id.as_str().into()),
        ("url", record.url.as_str().into()),
        ("received", (record.received() as f64).into()),
        ("total", record.total().map(|t| t as f64).into()),
        (
            "state",
            if record.complete {
                "complete"
            } else {
                "partial"
            }
            .into(),
        ),
        ("store", store.into()),
        (
            "filename",
            filename::choose(None, record.server_filename.as_deref(), &record.url).into(),
        ),
        ("createdAt", (record.created_at as f64).into()),
        ("updatedAt", (record.updated_at as f64).into()),
    ])
}
