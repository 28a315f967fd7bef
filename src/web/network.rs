//! The `online` and `offline` events of the page or worker, which a running
//! download follows: offline it holds still instead of spending its retries
//! on requests that cannot succeed.

use super::js;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

/// Listens while it lives; dropping it removes the listeners.
pub struct NetworkWatch {
    target: EventTarget,
    offline: Closure<dyn FnMut()>,
    online: Closure<dyn FnMut()>,
}

impl NetworkWatch {
    /// `None` where the global scope has no such events (Node, edge runtimes).
    pub fn start(offline: impl FnMut() + 'static, online: impl FnMut() + 'static) -> Option<Self> {
        let global = js_sys::global();
        if !js::get(&global, "addEventListener").is_function() {
            return None;
        }
        let target: EventTarget = global.unchecked_into();
        let watch = Self {
            target,
            offline: Closure::new(offline),
            online: Closure::new(online),
        };
        for (name, f) in [("offline", &watch.offline), ("online", &watch.online)] {
            let _ = watch
                .target
                .add_event_listener_with_callback(name, f.as_ref().unchecked_ref());
        }
        Some(watch)
    }

    /// `navigator.onLine === false`: the browser knows it has no network.
    pub fn is_offline() -> bool {
        let navigator = js::get(&js_sys::global(), "navigator");
        js::get(&navigator, "onLine").as_bool() == Some(false)
    }
}

impl Drop for NetworkWatch {
    fn drop(&mut self) {
        for (name, f) in [("offline", &self.offline), ("online", &self.online)] {
            let _ = self
                .target
                .remove_event_listener_with_callback(name, f.as_ref().unchecked_ref());
        }
    }
}
