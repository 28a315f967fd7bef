//! One writer per download across tabs and workers: a Web Lock named after
//! the download's id, held for as long as a run (or a removal) lasts. The
//! browser releases it if the tab or worker dies. Where there are no Web
//! Locks (Node, edge runtimes) there are no other tabs: the lock is a no-op.

use super::js;
use crate::core::Error;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Held until dropped.
pub struct DownloadLock {
    release: Option<Function>,
}

impl DownloadLock {
    /// Takes the lock of download `id` if nobody holds it, else `LOCKED`.
    pub async fn take(id: &str) -> Result<Self, Error> {
        let locks = js::get(&js::get(&js_sys::global(), "navigator"), "locks");
        let request = js::get(&locks, "request");
        let Some(request) = request.dyn_ref::<Function>() else {
            return Ok(Self { release: None });
        };
        // The lock is held while the promise the callback returns is pending.
        let mut release = None;
        let held = Promise::new(&mut |resolve, _| release = Some(resolve));
        let mut granted = None;
        let answer = Promise::new(&mut |resolve, _| granted = Some(resolve));
        let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
            let got = !lock.is_null();
            if let Some(granted) = &granted {
                let _ = granted.call1(&JsValue::NULL, &got.into());
            }
            if got {
                held.into()
            } else {
                JsValue::UNDEFINED
            }
        });
        let options = Object::new();
        let _ = Reflect::set(&options, &"ifAvailable".into(), &true.into());
        let name = JsValue::from(format!("resumable-fetch:{id}"));
        request
            .call3(&locks, &name, &options, &callback)
            .map_err(|e| {
                Error::Internal(format!(
                    "navigator.locks.request failed: {}",
                    js::message(&e)
                ))
            })?;
        let got: JsValue = JsFuture::from(answer)
            .await
            .map_err(|e| Error::Internal(js::message(&e)))?;
        if got.is_truthy() {
            Ok(Self { release })
        } else {
            Err(Error::Locked { id: id.to_string() })
        }
    }
}

impl Drop for DownloadLock {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.call0(&JsValue::NULL);
        }
    }
}
