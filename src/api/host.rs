//! The worker side of `{ worker: true }`: the package's `worker.js` calls
//! `serveDownloads()`, which runs downloads for the page's proxies
//! (`remote.rs` has the messages) and sends each reply and event with a
//! snapshot of the download.

use super::protocol::{self, Forwarded, Op};
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
    scope.post_message(&object(&[(protocol::READY, true.into())]))
}

fn post(message: &JsValue) {
    if let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() {
        if let Err(e) = scope.post_message(message) {
            web_sys::console::error_2(&"resumable-fetch: cannot answer the page".into(), &e);
        }
    }
}

async fn answer(message: JsValue) {
    let handle = js::get(&message, protocol::HANDLE)
        .as_f64()
        .map(|h| h as u32);
    let result = perform(&message, handle).await;
    let reply = object(&[(protocol::CALL, js::get(&message, protocol::CALL))]);
    let set = |key: &str, value: &JsValue| {
        let _ = js_sys::Reflect::set(&reply, &key.into(), value);
    };
    match result {
        Ok((value, handle)) => {
            set(protocol::OK, &value);
            if let Some(h) = handle {
                set(protocol::HANDLE, &h.into());
                if let Some(snapshot) = snapshot_of(h) {
                    set(protocol::SNAPSHOT, &snapshot);
                }
            }
        }
        Err(error) => {
            // A value that is no DownloadError reads as INTERNAL on the page.
            set(protocol::ERROR, &error_parts(&error));
            if let Some(snapshot) = handle.and_then(snapshot_of) {
                set(protocol::HANDLE, &handle.into());
                set(protocol::SNAPSHOT, &snapshot);
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
    let name = js::get(message, protocol::OP)
        .as_string()
        .unwrap_or_default();
    let op =
        Op::parse(&name).ok_or_else(|| to_js(Error::Internal(format!("unknown call {name}"))))?;
    if op == Op::Open {
        let url = js::get(message, protocol::URL)
            .as_string()
            .unwrap_or_default();
        let download = Download::open_here(url, js::get(message, protocol::OPTIONS)).await?;
        let handle = NEXT_HANDLE.with(|n| n.replace(n.get().wrapping_add(1)));
        forward_events(&download, handle);
        HOSTED.with(|h| h.borrow_mut().insert(handle, download));
        let opened = object(&[
            (protocol::HANDLE, handle.into()),
            (
                protocol::SNAPSHOT,
                snapshot_of(handle).unwrap_or(JsValue::UNDEFINED),
            ),
        ]);
        return Ok((opened, Some(handle)));
    }
    let download = handle
        .and_then(|h| HOSTED.with(|hosted| hosted.borrow().get(&h).cloned()))
        .ok_or_else(|| to_js(Error::Internal(format!("no download for {name}()"))))?;
    let value = match op {
        Op::Open => return Err(to_js(Error::Internal("open of an open download".into()))),
        Op::Start => JsFuture::from(download.start()).await?,
        Op::Pause => JsFuture::from(download.pause()).await?,
        Op::Cancel => JsFuture::from(download.cancel()).await?,
        Op::Blob => JsFuture::from(download.blob()).await?,
        Op::SetUrl => {
            let url = js::get(message, protocol::ARG)
                .as_string()
                .unwrap_or_default();
            download.set_url(url)?;
            JsValue::UNDEFINED
        }
        Op::Close => {
            if let Some(h) = handle {
                HOSTED.with(|hosted| hosted.borrow_mut().remove(&h));
            }
            return Ok((JsValue::UNDEFINED, None));
        }
    };
    Ok((value, handle))
}

/// Sends the download's progress and restart events to the page.
fn forward_events(download: &Download, handle: u32) {
    let forward = |event: Forwarded| -> Function {
        Closure::<dyn Fn(JsValue)>::new(move |payload: JsValue| {
            let snapshot = snapshot_of(handle).unwrap_or(JsValue::UNDEFINED);
            post(&object(&[
                (protocol::EVENT, event.name().into()),
                (protocol::HANDLE, handle.into()),
                (protocol::PAYLOAD, payload),
                (protocol::SNAPSHOT, snapshot),
            ]));
        })
        .into_js_value()
        .unchecked_into()
    };
    download.set_onprogress(Some(forward(Forwarded::Progress)));
    download.set_onrestart(Some(forward(Forwarded::Restart)));
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
