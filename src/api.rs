//! The JavaScript API, as published on npm. It converts JS values to core
//! types, delegates to the core driver running over the web adapters, and
//! turns every failure into a `DownloadError` (a real `Error` with a stable
//! `code`). No download logic lives here.

mod convert;
mod handlers;
mod host;
mod local;
mod options;
mod protocol;
mod remote;
mod types;

use crate::core::driver;
use crate::core::record::Record;
use crate::core::{self, filename, Error, OnServerChange, Options};
use crate::web::lock::{DownloadLock, SweepLock};
use crate::web::{js, Backend, FetchTransport, StoreChoice};
use convert::{error_from_parts, error_parts, info, object, to_js};
use handlers::Handlers;
use js_sys::{Array, Function, Promise};
use local::Local;
use options::{
    absolute_url, option, parse_options, parse_prune, store_selection, Parsed, OPTION_NAMES,
};
use remote::Remote;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::RequestCredentials;

/// A resumable download. Create it with `Download.open`.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Download {
    handle: Rc<dyn Handle>,
}

impl Download {
    /// `Download.open` in this context: the driver runs here, or in the
    /// package's worker with `worker: true`.
    async fn open_here(url: String, options: JsValue) -> Result<Self, JsValue> {
        let parsed = parse_options(&url, &options).map_err(to_js)?;
        let handle: Rc<dyn Handle> = if parsed.worker {
            let options = remote::options_for_worker(&options, &parsed).map_err(to_js)?;
            Remote::open(&parsed.options.url, options).await?
        } else {
            let backend = Backend::open(parsed.choice)
                .await
                .map_err(|e| to_js(e.into()))?;
            Rc::new(
                Local::open(parsed.options, backend, parsed.transport)
                    .await
                    .map_err(to_js)?,
            )
        };
        Ok(Self { handle })
    }
}

/// What the JS class does, whether the engine runs in this context
/// ([`Local`]) or in a worker the package started ([`Remote`]).
trait Handle {
    fn start(self: Rc<Self>) -> Promise;
    fn pause(&self) -> Promise;
    fn cancel(self: Rc<Self>) -> Promise;
    fn set_url(&self, url: &str) -> Result<(), Error>;
    fn blob(self: Rc<Self>) -> Promise;
    fn id(&self) -> String;
    fn url(&self) -> String;
    fn total(&self) -> Option<f64>;
    fn received(&self) -> f64;
    fn state(&self) -> String;
    fn filename(&self) -> String;
    fn store(&self) -> String;
    fn resumable(&self) -> Option<bool>;
    fn handlers(&self) -> &Handlers;
}

#[wasm_bindgen]
impl Download {
    /// Opens a download, resuming it if this store already holds part of it.
    /// No request is made until `start()`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Download>")]
    pub fn open(
        url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "DownloadOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        future_to_promise(async move { Ok(Self::open_here(url, options).await?.into()) })
    }

    /// Downloads until complete (`'complete'`) or paused (`'paused'`); rejects
    /// with a DownloadError. While running, it returns the same promise.
    #[wasm_bindgen(unchecked_return_type = "Promise<'complete' | 'paused'>")]
    pub fn start(&self) -> Promise {
        self.handle.clone().start()
    }

    /// Stops the download; resolves once what was in flight is stored.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn pause(&self) -> Promise {
        self.handle.pause()
    }

    /// Stops the download and deletes everything stored for it. A pending
    /// `start()` rejects with `ABORTED`. `LOCKED` while another object, tab,
    /// worker or process is writing it.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn cancel(&self) -> Promise {
        self.handle.clone().cancel()
    }

    /// Sends the next requests to `url`, e.g. a fresh signed URL after the
    /// old one expired (403). What is stored is kept if the file there is
    /// the same one.
    #[wasm_bindgen(js_name = setUrl)]
    pub fn set_url(&self, url: String) -> Result<(), JsValue> {
        self.handle.set_url(&url).map_err(to_js)
    }

    /// The downloaded file, backed by the store (not held in memory).
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob>")]
    pub fn blob(&self) -> Promise {
        self.handle.clone().blob()
    }

    /// Saves the completed file: through the save picker where the browser
    /// has one (streamed from the store), else the browser's download.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn save(&self, name: Option<String>) -> Promise {
        let handle = self.handle.clone();
        future_to_promise(async move {
            let blob: web_sys::Blob = JsFuture::from(handle.clone().blob())
                .await?
                .unchecked_into();
            let name = name
                .map(|n| filename::sanitize(&n))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| handle.filename());
            crate::web::save::save(&blob, &name).await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.handle.id()
    }

    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// The file's length once the server has told it.
    #[wasm_bindgen(getter)]
    pub fn total(&self) -> Option<f64> {
        self.handle.total()
    }

    /// Bytes stored so far (progress events also count bytes in flight).
    #[wasm_bindgen(getter)]
    pub fn received(&self) -> f64 {
        self.handle.received()
    }

    #[wasm_bindgen(getter, unchecked_return_type = "DownloadState")]
    pub fn state(&self) -> String {
        self.handle.state()
    }

    #[wasm_bindgen(getter)]
    pub fn filename(&self) -> String {
        self.handle.filename()
    }

    /// 'opfs', 'indexeddb', 'memory', or a custom store's name.
    #[wasm_bindgen(getter)]
    pub fn store(&self) -> String {
        self.handle.store()
    }

    /// Whether the server honours Range requests: `undefined` until it has
    /// answered, `false` once it has shown it ignores them.
    #[wasm_bindgen(getter)]
    pub fn resumable(&self) -> Option<bool> {
        self.handle.resumable()
    }

    #[wasm_bindgen(
        getter,
        unchecked_return_type = "((progress: DownloadProgress) => void) | null"
    )]
    pub fn onprogress(&self) -> Option<Function> {
        self.handle.handlers().onprogress.borrow().clone()
    }

    #[wasm_bindgen(setter)]
    pub fn set_onprogress(
        &self,
        #[wasm_bindgen(unchecked_param_type = "((progress: DownloadProgress) => void) | null")]
        f: Option<Function>,
    ) {
        *self.handle.handlers().onprogress.borrow_mut() = f;
    }

    /// Called when stored bytes were discarded and the download started over.
    #[wasm_bindgen(
        getter,
        unchecked_return_type = "((restart: DownloadRestart) => void) | null"
    )]
    pub fn onrestart(&self) -> Option<Function> {
        self.handle.handlers().onrestart.borrow().clone()
    }

    #[wasm_bindgen(setter)]
    pub fn set_onrestart(
        &self,
        #[wasm_bindgen(unchecked_param_type = "((restart: DownloadRestart) => void) | null")]
        f: Option<Function>,
    ) {
        *self.handle.handlers().onrestart.borrow_mut() = f;
    }

    /// Every download stored in this origin (IndexedDB) and this page
    /// (memory), or in the store given.
    #[wasm_bindgen(unchecked_return_type = "Promise<DownloadInfo[]>")]
    pub fn list(
        #[wasm_bindgen(unchecked_optional_param_type = "StoreSelection")] options: Option<JsValue>,
    ) -> Promise {
        future_to_promise(async move {
            let choice = store_selection(options.as_ref()).map_err(to_js)?;
            let out = Array::new();
            for backend in Backend::all(choice).await {
                for record in driver::list(&backend).await.map_err(to_js)? {
                    out.push(&info(&record, &backend.name()));
                }
            }
            Ok(out.into())
        })
    }

    /// Deletes a download from every built-in store, or from the store
    /// given. `LOCKED` while it is written here, in another tab or worker, or
    /// (through a custom store's `lock`) in another process.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn remove(
        id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "StoreSelection")] options: Option<JsValue>,
    ) -> Promise {
        future_to_promise(async move {
            let choice = store_selection(options.as_ref()).map_err(to_js)?;
            let backends = Backend::all(choice).await;
            let hooks: Vec<_> = backends.iter().filter_map(Backend::custom).collect();
            let _lock = DownloadLock::take(&id, &hooks).await.map_err(to_js)?;
            for backend in backends {
                core::store::Store::remove(&backend, &id)
                    .await
                    .map_err(|e| to_js(e.into()))?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }
}

#[wasm_bindgen]
impl Download {
    /// Deletes the partial downloads not written to for `olderThan`
    /// milliseconds (complete ones are kept), from every built-in store or
    /// the one given. Downloads running here or in another tab are left
    /// alone. Then, when no download runs, it deletes what no record claims
    /// (a removal a crash cut short). Resolves to the downloads it removed.
    #[wasm_bindgen(unchecked_return_type = "Promise<DownloadInfo[]>")]
    pub fn prune(
        #[wasm_bindgen(unchecked_param_type = "PruneOptions")] options: JsValue,
    ) -> Promise {
        future_to_promise(async move {
            let (max_age, choice) = parse_prune(&options).map_err(to_js)?;
            let removed = Array::new();
            for backend in Backend::all(choice).await {
                for record in driver::list(&backend).await.map_err(to_js)? {
                    if prune_one(&backend, &record.id, max_age)
                        .await
                        .map_err(to_js)?
                    {
                        removed.push(&info(&record, &backend.name()));
                    }
                }
                // What no record claims; another time if a download runs.
                if let Some(_sweeping) = SweepLock::take().await.map_err(to_js)? {
                    let now = js_sys::Date::now() as u64;
                    core::store::Store::sweep(&backend, max_age, now)
                        .await
                        .map_err(|e| to_js(e.into()))?;
                }
            }
            Ok(removed.into())
        })
    }
}

/// Removes `id` from `backend` if it is stale once its lock is held (it
/// may have moved on since it was listed); `false` if it was left alone.
async fn prune_one(backend: &Backend, id: &str, max_age: u64) -> Result<bool, Error> {
    let hooks: Vec<_> = backend.custom().into_iter().collect();
    let _lock = match DownloadLock::take(id, &hooks).await {
        Ok(lock) => lock,
        Err(Error::Locked { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    let stored = core::store::Store::load(backend, id).await?;
    let stale = stored
        .and_then(|bytes| Record::decode(&bytes).ok())
        .is_some_and(|record| record.is_stale(js_sys::Date::now() as u64, max_age));
    if stale {
        core::store::Store::remove(backend, id).await?;
    }
    Ok(stale)
}
