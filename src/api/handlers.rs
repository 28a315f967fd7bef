//! The seam to the application's code: its `onprogress` and `onrestart`
//! handlers, called so that one that throws cannot stop a download.

use js_sys::Function;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

/// The application's `onprogress` and `onrestart`.
#[derive(Default)]
pub(super) struct Handlers {
    pub(super) onprogress: RefCell<Option<Function>>,
    pub(super) onrestart: RefCell<Option<Function>>,
}

impl Handlers {
    pub(super) fn progress(&self, event: &JsValue) {
        call_handler(&self.onprogress, event);
    }

    pub(super) fn restart(&self, event: &JsValue) {
        call_handler(&self.onrestart, event);
    }
}

/// Calls the application's handler; one that throws cannot stop the download.
fn call_handler(handler: &RefCell<Option<Function>>, event: &JsValue) {
    let handler = handler.borrow().clone();
    if let Some(handler) = handler {
        if let Err(e) = handler.call1(&JsValue::NULL, event) {
            web_sys::console::error_2(&"resumable-fetch: an event handler threw".into(), &e);
        }
    }
}
