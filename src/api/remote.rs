//! A download run by the package's own dedicated worker (`worker.js`, which
//! calls `serveDownloads()`), so that OPFS sync handles are available and
//! the page's main thread stays free. This side is a proxy: it forwards each
//! call and keeps the last snapshot of the download the worker sent.
//!
//! Messages, page → worker: `{ call, op, handle?, url?, options?, arg? }`.
//! Worker → page: `{ ready: true }` once; `{ call, ok | error, handle?,
//! snapshot? }` in reply; `{ event, handle, payload, snapshot }` for
//! progress and restarts.

use super::protocol::{self, Forwarded, Op};
use super::{absolute_url, error_from_parts, error_parts, object, to_js, Handle, Handlers, Parsed};
use crate::core::small_map::SmallMap;
use crate::core::Error;
use crate::web::{js, StoreChoice};
use js_sys::{Array, Function, Object, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{MessageEvent, Worker};

// The worker script ships at the package's root; this snippet lands in
// `snippets/<crate>/`, two levels below. Bundlers recognise this exact form.
#[wasm_bindgen(inline_js = r#"
export function spawnWorker() {
  return new Worker(new URL('../../worker.js', import.meta.url), { type: 'module', name: 'resumable-fetch' });
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = spawnWorker)]
    fn spawn_worker() -> Result<Worker, JsValue>;
}

thread_local! {
    /// The page's one worker, started by the first `{ worker: true }` download.
    static LINK: RefCell<Option<Rc<Link>>> = const { RefCell::new(None) };
}

/// The connection to the worker: calls awaiting replies, and the proxies
/// that events are for.
struct Link {
    worker: Worker,
    /// Settles when the worker is serving (or failed to start).
    ready: Promise,
    pending: RefCell<SmallMap<u32, Function>>,
    proxies: RefCell<SmallMap<u32, Weak<Remote>>>,
    next_call: Cell<u32>,
}

impl Link {
    fn get() -> Result<Rc<Self>, Error> {
        if let Some(link) = LINK.with(|l| l.borrow().clone()) {
            return Ok(link);
        }
        let worker = spawn_worker().map_err(|e| not_started(&js::message(&e)))?;
        let mut settle = None;
        let ready = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let (resolve_ready, reject_ready) =
            settle.ok_or_else(|| Error::Internal("Promise did not run its executor".into()))?;
        let link = Rc::new(Self {
            worker,
            ready,
            pending: RefCell::new(SmallMap::new()),
            proxies: RefCell::new(SmallMap::new()),
            next_call: Cell::new(1),
        });
        let weak = Rc::downgrade(&link);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            if js::get(&data, protocol::READY).is_truthy() {
                let _ = resolve_ready.call0(&JsValue::NULL);
            } else if let Some(link) = weak.upgrade() {
                link.receive(&data);
            }
        });
        let weak = Rc::downgrade(&link);
        // An `ErrorEvent` for an exception, a plain `Event` when the script failed to load.
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let why = js::get(&event, "message")
                .as_string()
                .unwrap_or_else(|| "its script could not be loaded".into());
            let error = to_js(not_started(&why));
            let _ = reject_ready.call1(&JsValue::NULL, &error);
            // A worker that fails later leaves no call waiting forever.
            if let Some(link) = weak.upgrade() {
                let pending = link.pending.borrow_mut().take_values();
                for settle in pending {
                    let _ = settle.call1(&JsValue::NULL, &failed_reply(&error));
                }
            }
        });
        link.worker
            .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        link.worker
            .set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // Both live as long as the page's worker.
        on_message.forget();
        on_error.forget();
        LINK.with(|l| *l.borrow_mut() = Some(link.clone()));
        Ok(link)
    }

    /// A reply or an event from the worker.
    fn receive(&self, data: &JsValue) {
        let handle = js::get(data, protocol::HANDLE).as_f64().map(|h| h as u32);
        let proxy = handle.and_then(|h| self.proxies.borrow().get(&h).and_then(Weak::upgrade));
        let snapshot = js::get(data, protocol::SNAPSHOT);
        if let (Some(proxy), true) = (&proxy, snapshot.is_object()) {
            *proxy.snapshot.borrow_mut() = snapshot;
        }
        if let Some(call) = js::get(data, protocol::CALL).as_f64() {
            let settle = self.pending.borrow_mut().remove(&(call as u32));
            if let Some(settle) = settle {
                let _ = settle.call1(&JsValue::NULL, data);
            }
            return;
        }
        if let Some(proxy) = proxy {
            let payload = js::get(data, protocol::PAYLOAD);
            let event = js::get(data, protocol::EVENT).as_string();
            match event.as_deref().and_then(Forwarded::parse) {
                Some(Forwarded::Progress) => proxy.handlers.progress(&payload),
                Some(Forwarded::Restart) => proxy.handlers.restart(&payload),
                None => {}
            }
        }
    }

    /// Sends `message` once the worker serves, and resolves with what it
    /// answered (`ok`), or rejects with the DownloadError it reported.
    async fn call(&self, message: Object) -> Result<JsValue, JsValue> {
        JsFuture::from(self.ready.clone()).await?;
        let id = self.next_call.get();
        self.next_call.set(id.wrapping_add(1));
        let _ = Reflect::set(&message, &protocol::CALL.into(), &id.into());
        let mut settle = None;
        let reply = Promise::new(&mut |resolve, _| settle = Some(resolve));
        if let Some(settle) = settle {
            self.pending.borrow_mut().insert(id, settle);
        }
        if let Err(e) = self.worker.post_message(&message) {
            self.pending.borrow_mut().remove(&id);
            return Err(to_js(Error::invalid(
                "options",
                format!("they cannot be sent to the worker: {}", js::message(&e)),
            )));
        }
        let reply = JsFuture::from(reply).await?;
        let error = js::get(&reply, protocol::ERROR);
        if error.is_object() {
            return Err(error_from_parts(&error));
        }
        Ok(js::get(&reply, protocol::OK))
    }
}

pub struct Remote {
    link: Rc<Link>,
    handle: u32,
    /// `{ id, url, total, received, state, filename, store, resumable }`.
    snapshot: RefCell<JsValue>,
    run: RefCell<Option<Promise>>,
    asked_persistence: Cell<bool>,
    handlers: Handlers,
}

impl Remote {
    /// Opens the download in the worker (starting the worker if needed).
    pub async fn open(url: &str, options: JsValue) -> Result<Rc<Self>, JsValue> {
        let link = Link::get().map_err(to_js)?;
        let fields = [(protocol::URL, url.into()), (protocol::OPTIONS, options)];
        let message = request(Op::Open, None, &fields);
        let opened = link.call(message).await?;
        let handle = js::get(&opened, protocol::HANDLE)
            .as_f64()
            .ok_or_else(|| to_js(Error::Internal("the worker sent no handle".into())))?
            as u32;
        let remote = Rc::new(Self {
            link: link.clone(),
            handle,
            snapshot: RefCell::new(js::get(&opened, protocol::SNAPSHOT)),
            run: RefCell::new(None),
            asked_persistence: Cell::new(false),
            handlers: Handlers::default(),
        });
        link.proxies
            .borrow_mut()
            .insert(handle, Rc::downgrade(&remote));
        Ok(remote)
    }

    fn request(&self, op: Op, arg: JsValue) -> Promise {
        let link = self.link.clone();
        let message = request(op, Some(self.handle), &[(protocol::ARG, arg)]);
        future_to_promise(async move { link.call(message).await })
    }

    fn field(&self, key: &str) -> JsValue {
        js::get(&self.snapshot.borrow(), key)
    }

    fn set_field(&self, key: &str, value: &JsValue) {
        let _ = Reflect::set(&self.snapshot.borrow(), &key.into(), value);
    }
}

impl Handle for Remote {
    fn start(self: Rc<Self>) -> Promise {
        if let Some(run) = self.run.borrow().clone() {
            return run;
        }
        // Workers have no navigator.storage.persist(): the page asks.
        if !self.asked_persistence.replace(true) {
            crate::web::backend::ask_persistence();
        }
        let previous = self.field("state");
        self.set_field("state", &"running".into());
        let sent = self.request(Op::Start, JsValue::UNDEFINED);
        let remote = self.clone();
        let run = future_to_promise(async move {
            let result = JsFuture::from(sent).await;
            remote.run.borrow_mut().take();
            if result.is_err() && remote.field("state") == "running" {
                // Refused before it ran (e.g. LOCKED): no snapshot came.
                remote.set_field("state", &previous);
            }
            result
        });
        *self.run.borrow_mut() = Some(run.clone());
        run
    }

    fn pause(&self) -> Promise {
        self.request(Op::Pause, JsValue::UNDEFINED)
    }

    fn cancel(self: Rc<Self>) -> Promise {
        self.request(Op::Cancel, JsValue::UNDEFINED)
    }

    fn set_url(&self, url: &str) -> Result<(), Error> {
        let url = absolute_url(url)?;
        self.set_field("url", &url.as_str().into());
        // Calls reach the worker in order: a start() after this uses the new URL.
        let sent = self.request(Op::SetUrl, url.into());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = JsFuture::from(sent).await {
                web_sys::console::error_2(
                    &"resumable-fetch: setUrl failed in the worker".into(),
                    &e,
                );
            }
        });
        Ok(())
    }

    fn blob(self: Rc<Self>) -> Promise {
        self.request(Op::Blob, JsValue::UNDEFINED)
    }

    fn id(&self) -> String {
        self.field("id").as_string().unwrap_or_default()
    }
    fn url(&self) -> String {
        self.field("url").as_string().unwrap_or_default()
    }
    fn total(&self) -> Option<f64> {
        self.field("total").as_f64()
    }
    fn received(&self) -> f64 {
        self.field("received").as_f64().unwrap_or(0.0)
    }
    fn state(&self) -> String {
        self.field("state").as_string().unwrap_or_default()
    }
    fn filename(&self) -> String {
        self.field("filename").as_string().unwrap_or_default()
    }
    fn store(&self) -> String {
        self.field("store").as_string().unwrap_or_default()
    }
    fn resumable(&self) -> Option<bool> {
        self.field("resumable").as_bool()
    }
    fn handlers(&self) -> &Handlers {
        &self.handlers
    }
}

impl Drop for Remote {
    /// The worker lets go of a download whose proxy is gone.
    fn drop(&mut self) {
        self.link.proxies.borrow_mut().remove(&self.handle);
        let link = self.link.clone();
        let message = request(Op::Close, Some(self.handle), &[]);
        wasm_bindgen_futures::spawn_local(async move {
            let _ = link.call(message).await;
        });
    }
}

/// The options of `Download.open` as the worker receives them: cloneable
/// (headers as pairs), without `worker`.
pub(super) fn options_for_worker(options: &JsValue, parsed: &Parsed) -> Result<JsValue, Error> {
    if matches!(parsed.choice, StoreChoice::Custom(_)) {
        return Err(Error::invalid(
            "store",
            "a custom store cannot be used with worker: true (its methods cannot be sent to a worker); run it on this side, or pass 'auto'",
        ));
    }
    // Own properties only, read as parse_options read them.
    let copy = Object::new();
    for key in super::OPTION_NAMES {
        if key == "worker" || key == "headers" {
            continue;
        }
        let value = super::option(options, key)?;
        if !value.is_undefined() {
            let _ = Reflect::set(&copy, &key.into(), &value);
        }
    }
    let headers: Array = parsed
        .options
        .headers
        .iter()
        .map(|(name, value)| JsValue::from(Array::of2(&name.into(), &value.into())))
        .collect();
    let _ = Reflect::set(&copy, &"headers".into(), &headers);
    Ok(copy.into())
}

fn request(op: Op, handle: Option<u32>, fields: &[(&str, JsValue)]) -> Object {
    let message: Object = object(&[(protocol::OP, op.name().into())]).unchecked_into();
    if let Some(handle) = handle {
        let _ = Reflect::set(&message, &protocol::HANDLE.into(), &handle.into());
    }
    for (key, value) in fields {
        let _ = Reflect::set(&message, &(*key).into(), value);
    }
    message
}

/// A reply carrying `error`, for calls the worker can no longer answer.
fn failed_reply(error: &JsValue) -> JsValue {
    object(&[(protocol::ERROR, error_parts(error))])
}

fn not_started(why: &str) -> Error {
    Error::InvalidState(format!(
        "the download worker did not start ({why}); serve the package's worker.js next to resumable_fetch.js, or open the download without worker: true"
    ))
}
