//! The worker side of `{ worker: true }`: the package's `worker.js` calls
//! `serveDownloads()`, which runs downloads for the page's proxies
//! (`remote.rs` has the messages) and sends each reply and event with a
//! snapshot of the download.

use super::{error_parts, object, to_js, Download};
use crate::core::small_map::SmallMap;
use crate::core::Error;
use crate::web::js;
use js_sys::Function;
use std::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

thread_local! {
    static HOSTED: RefCell<SmallMap<u32, Download>> = RefCell::new(SmallMap::new());
    static NEXT_HANDLE: Cell<u32> = const { Cell::new(1) };
}

/// Serves the downloads of the page that started this worker. For the
/// package's `worker.js`; applications do not call it.
#[wasm_bindgen(js_name = serveDownloads)]
pub fn serve_downloads() -> Result<(), JsValue> {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().dyn_into().map_err(|_| {
        to_js(Error::InvalidState(
            "serveDownloads() runs in a dedicated worker".into(),
        ))
    })?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        wasm_bindgen_futures::spawn_local(answer(event.data()));
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget(); // serves for the worker's lifetime
    scope.post_message(&object(&[("ready", true.into())]))
}

fn post(message: &JsValue) {
    if let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() {
        if let Err(e) = scope.post_message(message) {
            web_sys::console::error_2(&"resumable-fetch: cannot answer the page".into(), &e);
        }
    }
}

async fn answer(message: JsValue) {
    let handle = js::get(&message, "handle").as_f64().map(|h| h as u32);
    let result = perform(&message, handle).await;
    let reply = object(&[("call", js::get(&message, "call"))]);
    let set = |key: &str, value: &JsValue| {
        let _ = js_sys::Reflect::set(&reply, &key.into(), value);
    };
    match result {
        Ok((value, handle)) => {
            set("ok", &value);
            if let Some(h) = handle {
                set("handle", &h.into());
                if let Some(snapshot) = snapshot_of(h) {
                    set("snapshot", &snapshot);
                }
            }
        }
        Err(error) => {
            // A value that is no DownloadError reads as INTERNAL on the page.
            set("error", &error_parts(&error));
            if let Some(snapshot) = handle.and_then(snapshot_of) {
                set("handle", &handle.into());
                set("snapshot", &snapshot);
            }
        }
    }
    post(&reply);
}

/// Carries out one call; resolves with its value and the download it is about.
async fn perform(
    message: &JsValue,
    handle: Option<u32>,
) -> Result<(JsValue, Option<u32>), JsValue> {
    let op = js::get(message, "op").as_string().unwrap_or_default();
    if op == "open" {
        let url = js::get(message, "url").as_string().unwrap_or_default();
        let download = Download::open_here(url, js::get(message, "options")).await?;
        let handle = NEXT_HANDLE.with(|n| n.replace(n.get().wrapping_add(1)));
        forward_events(&download, handle);
        HOSTED.with(|h| h.borrow_mut().insert(handle, download));
        let opened = object(&[
            ("handle", handle.into()),
            (
                "snapshot",
                snapshot_of(handle).unwrap_or(JsValue::UNDEFINED),
            ),
        ]);
        return Ok((opened, Some(handle)));
    }
    let download = handle
        .and_then(|h| HOSTED.with(|hosted| hosted.borrow().get(&h).cloned()))
        .ok_or_else(|| to_js(Error::Internal(format!("no download for {op}()"))))?;
    let value = match op.as_str() {
        "start" => JsFuture::from(download.start()).await?,
        "pause" => JsFuture::from(download.pause()).await?,
        "cancel" => JsFuture::from(download.cancel()).await?,
        "blob" => JsFuture::from(download.blob()).await?,
        "setUrl" => {
            let url = js::get(message, "arg").as_string().unwrap_or_default();
            download.set_url(url)?;
            JsValue::UNDEFINED
        }
        "close" => {
            if let Some(h) = handle {
                HOSTED.with(|hosted| hosted.borrow_mut().remove(&h));
            }
            return Ok((JsValue::UNDEFINED, None));
        }
        other => return Err(to_js(Error::Internal(format!("unknown call {other}")))),
    };
    Ok((value, handle))
}

/// Sends the download's progress and restart events to the page.
fn forward_events(download: &Download, handle: u32) {
    let forward = |event: &'static str| -> Function {
        Closure::<dyn Fn(JsValue)>::new(move |payload: JsValue| {
            let snapshot = snapshot_of(handle).unwrap_or(JsValue::UNDEFINED);
            post(&object(&[
                ("event", event.into()),
                ("handle", handle.into()),
                ("payload", payload),
                ("snapshot", snapshot),
            ]));
        })
        .into_js_value()
        .unchecked_into()
    };
    download.set_onprogress(Some(forward("progress")));
    download.set_onrestart(Some(forward("restart")));
}

fn snapshot_of(handle: u32) -> Option<JsValue> {
    HOSTED.with(|hosted| {
        hosted.borrow().get(&handle).map(|d| {
            object(&[
                ("id", d.id().into()),
                ("url", d.url().into()),
                ("total", d.total().into()),
                ("received", d.received().into()),
                ("state", d.state().into()),
                ("filename", d.filename().into()),
                ("store", d.store().into()),
                ("resumable", d.resumable().into()),
            ])
        })
    })
}
