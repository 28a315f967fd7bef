//! Saving a finished download as a file of the user's: the save picker
//! (`showSaveFilePicker`) where the browser has one, streamed from the
//! stored Blob so the file is never whole in memory; else `<a download>`
//! with an object URL, the save every browser page supports.

use super::{js, JsClock};
use crate::core::clock::Clock;
use crate::core::Error;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

pub async fn save(blob: &Blob, name: &str) -> Result<(), Error> {
    let global = js_sys::global();
    if let Ok(picker) = js::get(&global, "showSaveFilePicker").dyn_into::<Function>() {
        let options = Object::new();
        let _ = Reflect::set(&options, &"suggestedName".into(), &name.into());
        match awaited(picker.call1(&global, &options)).await {
            Ok(handle) => return write(&handle, blob).await,
            Err(e) if js::error_name(&e).as_deref() == Some("AbortError") => {
                return Err(Error::SaveCancelled)
            }
            // No user activation (SecurityError) or not allowed here: the
            // anchor still works.
            Err(_) => {}
        }
    }
    save_with_anchor(blob, name)
}

/// Streams `blob` into the picked file; `pipeTo` closes it at the end.
async fn write(handle: &JsValue, blob: &Blob) -> Result<(), Error> {
    let failed = |e: JsValue| {
        let mut error = js::store_error(&e);
        error.message = format!("saving the file failed: {}", error.message);
        Error::Storage(error)
    };
    let create = js::get(handle, "createWritable")
        .dyn_into::<Function>()
        .map_err(|_| failed(js_sys::Error::new("the picked file cannot be written").into()))?;
    let writable = awaited(create.call0(handle)).await.map_err(failed)?;
    let stream = blob.stream();
    let pipe_to = js::get(&stream, "pipeTo")
        .dyn_into::<Function>()
        .map_err(|_| failed(js_sys::Error::new("this browser cannot stream a Blob").into()))?;
    awaited(pipe_to.call1(&stream, &writable))
        .await
        .map(drop)
        .map_err(failed)
}

async fn awaited(called: Result<JsValue, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(Promise::resolve(&called?)).await
}

fn save_with_anchor(blob: &Blob, name: &str) -> Result<(), Error> {
    let unsupported = || {
        Error::InvalidState(
            "save() needs a page with a document; in workers and servers use blob()".into(),
        )
    };
    let document = js::get(&js_sys::global(), "document")
        .dyn_into::<web_sys::Document>()
        .map_err(|_| unsupported())?;
    let url = web_sys::Url::create_object_url_with_blob(blob).map_err(|_| unsupported())?;
    let anchor = document
        .create_element("a")
        .ok()
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
        .ok_or_else(unsupported)?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    // The browser reads the URL asynchronously; release it once it surely has.
    wasm_bindgen_futures::spawn_local(async move {
        JsClock.sleep(60_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}
