//! Time for the core from the global `Date.now` and `setTimeout`, which every
//! runtime has (no `window` needed).

use crate::core::clock::Clock;
use js_sys::{Function, Promise};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue) -> Result<(), JsValue>;
}

#[derive(Clone, Copy, Default)]
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        Sleep::new(ms)
    }

    fn seed(&self) -> u64 {
        (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64 ^ self.now_ms()
    }
}

/// A timer that is cleared when dropped: a stall timer is armed for every
/// chunk of every body, and must not pile up once the chunk has arrived.
struct Sleep {
    timer: JsValue,
    done: JsFuture,
}

impl Sleep {
    fn new(ms: u64) -> Self {
        let mut timer = JsValue::UNDEFINED;
        let promise = Promise::new(&mut |resolve, _reject| {
            // Without setTimeout the sleep never ends; every runtime we support has it.
            timer = set_timeout(&resolve, ms as f64).unwrap_or(JsValue::UNDEFINED);
        });
        Self {
            timer,
            done: JsFuture::from(promise),
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.done).poll(cx).map(|_| ())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let _ = clear_timeout(&self.timer);
    }
}
