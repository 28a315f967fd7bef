//! The JavaScript API, as published on npm. It converts JS values to core
//! types, delegates to the core driver running over the web adapters, and
//! turns every failure into a `DownloadError` (a real `Error` with a stable
//! `code`). No download logic lives here.

use crate::core::driver::{self, Event, Outcome, RestartReason};
use crate::core::record::Record;
use crate::core::{self, filename, Error, OnServerChange, Options};
use crate::web::lock::DownloadLock;
use crate::web::network::NetworkWatch;
use crate::web::{js, Backend, FetchTransport, JsClock, StoreChoice};
use js_sys::{Array, Function, Object, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::RequestCredentials;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** Where the blocks of a download are stored. 'opfs' writes need a dedicated worker. */
export type StoreKind = 'auto' | 'opfs' | 'indexeddb' | 'memory';

/**
 * A store of your own (a file system, KV, the Cache API, a Map): a plain object
 * whose methods may return values or promises. One file per download, written
 * at byte offsets, plus an opaque record per download. resumable-fetch calls
 * `write` and only then `putRecord` for the bytes that record claims: a store
 * must not make a record durable before the bytes written ahead of it. A thrown
 * error named 'QuotaExceededError' (or with code 'ENOSPC') pauses the download
 * with QUOTA_EXCEEDED.
 */
export interface CustomStore {
  /** What `dl.store` and `Download.list()` report. Default 'custom'. */
  readonly name?: string;
  /** The record last put for `id`, or null/undefined when there is none. */
  getRecord(id: string): Promise<Uint8Array | null | undefined> | Uint8Array | null | undefined;
  /** Replaces the record of `id`. */
  putRecord(id: string, record: Uint8Array): Promise<void> | void;
  /** Every record stored (those of other libraries are not expected here). */
  records(): Promise<Uint8Array[]> | Uint8Array[];
  /** Writes `data` at byte `offset` of the file of `id` (growing it as needed). */
  write(id: string, offset: number, data: Uint8Array): Promise<void> | void;
  /** Exactly `length` bytes at byte `offset` of the file of `id`. */
  read(id: string, offset: number, length: number): Promise<Uint8Array> | Uint8Array;
  /** Deletes the record and the file of `id`; deleting nothing is not an error. */
  delete(id: string): Promise<void> | void;
  /** Optional: the first `size` bytes of the file as a Blob, ideally disk-backed.
   * Without it, `blob()` reads the file into memory. */
  file?(id: string, size: number): Promise<Blob> | Blob;
}

/** Which stores `Download.list()` and `Download.remove()` look in. Default: every built-in one. */
export interface StoreSelection {
  store?: StoreKind | CustomStore;
}

export interface PruneOptions extends StoreSelection {
  /** Partial downloads not written to for this many milliseconds are removed. */
  olderThan: number;
}

export interface DownloadOptions {
  /** The key the download is stored under. Default: the URL without its fragment. */
  id?: string;
  /** Default 'auto': OPFS in a dedicated worker, else IndexedDB where it can be opened, else memory. */
  store?: StoreKind | CustomStore;
  /** Parallel range requests, 1 to 16. Default 3. */
  connections?: number;
  /** Bytes per request and per stored block, 1 KiB to 1 GiB. Default 8 MiB. */
  blockSize?: number;
  /** Extra request headers. Forbidden ones (Cookie, Referer, User-Agent, Range…) are rejected. */
  headers?: Record<string, string> | [string, string][] | Headers;
  credentials?: RequestCredentials;
  referrer?: string;
  /** Consecutive failed attempts tolerated before an error, 0 to 100. Default 5. */
  retries?: number;
  /** A body with no new byte for this long is aborted and retried. Default 30000. */
  stallTimeoutMs?: number;
  /** The name `save()` uses. Default: Content-Disposition, else the URL's last segment. */
  filename?: string;
  /** When the file on the server changed: start over (default) or fail with SERVER_CHANGED. */
  onServerChange?: 'restart' | 'fail';
}

export interface DownloadProgress {
  received: number;
  total: number | undefined;
  bytesPerSecond: number;
  etaSeconds: number | undefined;
}

export interface DownloadRestart {
  reason: 'server-changed' | 'ranges-ignored';
  message: string;
}

/** 'offline': running, but holding still until the network is back. */
export type DownloadState = 'idle' | 'running' | 'offline' | 'paused' | 'complete' | 'failed';

export interface DownloadInfo {
  id: string;
  url: string;
  received: number;
  total: number | undefined;
  state: 'complete' | 'partial';
  /** 'opfs', 'indexeddb', 'memory', or a custom store's name. */
  store: string;
  filename: string;
  /** When the download was first stored, and last written (ms since the epoch). */
  createdAt: number;
  updatedAt: number;
}

export type DownloadErrorCode =
  | 'NETWORK' | 'HTTP_STATUS' | 'CORS_HEADERS_HIDDEN' | 'SERVER_CHANGED' | 'BAD_RESPONSE'
  | 'QUOTA_EXCEEDED' | 'STORAGE_UNAVAILABLE' | 'STORAGE_CORRUPT' | 'STORAGE_FAILED'
  | 'INVALID_ARGUMENT' | 'INVALID_STATE' | 'LOCKED' | 'ABORTED' | 'INTERNAL';

/** Every promise of this API rejects with a DownloadError. */
export interface DownloadError extends Error {
  name: 'DownloadError';
  code: DownloadErrorCode;
}
"#;

type Engine = core::Download<FetchTransport, Backend, JsClock>;

thread_local! {
    /// Downloads running in this page or worker: a second writer is refused.
    static RUNNING: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// A resumable download. Create it with `Download.open`.
#[wasm_bindgen]
pub struct Download {
    inner: Rc<Inner>,
}

struct Inner {
    engine: Engine,
    /// The engine's store too, for its name and `persist()`.
    backend: Backend,
    state: Cell<&'static str>,
    /// The promise of the run in progress, which `start`, `pause` and
    /// `cancel` all wait on.
    run: RefCell<Option<Promise>>,
    cancelled: Cell<bool>,
    /// `navigator.storage.persist()` is asked at the first `start()`.
    asked_persistence: Cell<bool>,
    onprogress: RefCell<Option<Function>>,
    onrestart: RefCell<Option<Function>>,
    /// While running: the page's offline/online events suspend and resume it.
    network: RefCell<Option<NetworkWatch>>,
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
        future_to_promise(async move {
            let (options, choice, transport) = parse_options(&url, &options).map_err(to_js)?;
            let backend = Backend::open(choice).await.map_err(|e| to_js(e.into()))?;
            let engine = Engine::open(transport, backend.clone(), JsClock, options)
                .await
                .map_err(to_js)?;
            if let Some(why) = engine.discarded_record() {
                web_sys::console::warn_1(
                    &format!("resumable-fetch: {why}; the download starts over").into(),
                );
            }
            let state = if engine.is_complete() {
                "complete"
            } else if engine.received() > 0 {
                "paused"
            } else {
                "idle"
            };
            let inner = Inner {
                engine,
                backend,
                state: Cell::new(state),
                run: RefCell::new(None),
                cancelled: Cell::new(false),
                asked_persistence: Cell::new(false),
                onprogress: RefCell::new(None),
                onrestart: RefCell::new(None),
                network: RefCell::new(None),
            };
            Ok(Download {
                inner: Rc::new(inner),
            }
            .into())
        })
    }

    /// Downloads until complete (`'complete'`) or paused (`'paused'`); rejects
    /// with a DownloadError. While running, it returns the same promise.
    #[wasm_bindgen(unchecked_return_type = "Promise<'complete' | 'paused'>")]
    pub fn start(&self) -> Promise {
        if let Some(run) = self.inner.run.borrow().clone() {
            return run;
        }
        let id = self.inner.engine.options().id.clone();
        if !RUNNING.with(|r| r.borrow_mut().insert(id.clone())) {
            return Promise::reject(&to_js(Error::Locked { id }));
        }
        let writable = if self.inner.engine.is_complete() {
            Ok(())
        } else {
            self.inner.backend.check_writable().map_err(Error::from)
        };
        // Running from now: a pause() before the run's first step counts.
        if let Err(e) = writable.and_then(|()| self.inner.engine.begin()) {
            RUNNING.with(|r| r.borrow_mut().remove(&id));
            return Promise::reject(&to_js(e));
        }
        self.inner.state.set("running");
        if !self.inner.asked_persistence.replace(true) {
            self.inner.backend.ask_persistence();
        }
        self.inner.follow_network();
        let inner = self.inner.clone();
        let run = future_to_promise(async move {
            let result = inner.run().await;
            inner.run.borrow_mut().take();
            result
        });
        *self.inner.run.borrow_mut() = Some(run.clone());
        run
    }

    /// Stops the download; resolves once what was in flight is stored.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn pause(&self) -> Promise {
        self.inner.engine.pause();
        let run = self.inner.run.borrow().clone();
        future_to_promise(async move {
            if let Some(run) = run {
                let _ = JsFuture::from(run).await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Stops the download and deletes everything stored for it. A pending
    /// `start()` rejects with `ABORTED`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn cancel(&self) -> Promise {
        self.inner.cancelled.set(true);
        let paused = self.pause();
        let inner = self.inner.clone();
        future_to_promise(async move {
            JsFuture::from(paused).await?;
            inner.cancelled.set(false);
            let id = inner.engine.options().id.clone();
            let _lock = DownloadLock::take(&id).await.map_err(to_js)?;
            inner.engine.remove().await.map_err(to_js)?;
            inner.state.set("idle");
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Sends the next requests to `url`, e.g. a fresh signed URL after the
    /// old one expired (403). What is stored is kept if the file there is
    /// the same one.
    #[wasm_bindgen(js_name = setUrl)]
    pub fn set_url(&self, url: String) -> Result<(), JsValue> {
        let url = absolute_url(&url).map_err(to_js)?;
        self.inner.engine.set_url(&url).map_err(to_js)
    }

    /// The downloaded file, backed by the store (not held in memory).
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob>")]
    pub fn blob(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { Ok(inner.engine.assemble().await.map_err(to_js)?.into()) })
    }

    /// Saves the completed file through the browser's download prompt.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn save(&self, name: Option<String>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let blob = inner.engine.assemble().await.map_err(to_js)?;
            let name = name
                .map(|n| filename::sanitize(&n))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| inner.engine.filename());
            save_blob(&blob, &name).map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.engine.options().id.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.inner.engine.url()
    }

    /// The file's length once the server has told it.
    #[wasm_bindgen(getter)]
    pub fn total(&self) -> Option<f64> {
        self.inner.engine.total().map(|t| t as f64)
    }

    /// Bytes stored so far (progress events also count bytes in flight).
    #[wasm_bindgen(getter)]
    pub fn received(&self) -> f64 {
        self.inner.engine.received() as f64
    }

    #[wasm_bindgen(getter, unchecked_return_type = "DownloadState")]
    pub fn state(&self) -> String {
        self.inner.state.get().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn filename(&self) -> String {
        self.inner.engine.filename()
    }

    /// 'opfs', 'indexeddb', 'memory', or a custom store's name.
    #[wasm_bindgen(getter)]
    pub fn store(&self) -> String {
        self.inner.backend.name()
    }

    /// Whether the server honours Range requests: `undefined` until it has
    /// answered, `false` once it has shown it ignores them.
    #[wasm_bindgen(getter)]
    pub fn resumable(&self) -> Option<bool> {
        self.inner.engine.resumable()
    }

    #[wasm_bindgen(
        getter,
        unchecked_return_type = "((progress: DownloadProgress) => void) | null"
    )]
    pub fn onprogress(&self) -> Option<Function> {
        self.inner.onprogress.borrow().clone()
    }

    #[wasm_bindgen(setter)]
    pub fn set_onprogress(
        &self,
        #[wasm_bindgen(unchecked_param_type = "((progress: DownloadProgress) => void) | null")]
        f: Option<Function>,
    ) {
        *self.inner.onprogress.borrow_mut() = f;
    }

    /// Called when stored bytes were discarded and the download started over.
    #[wasm_bindgen(
        getter,
        unchecked_return_type = "((restart: DownloadRestart) => void) | null"
    )]
    pub fn onrestart(&self) -> Option<Function> {
        self.inner.onrestart.borrow().clone()
    }

    #[wasm_bindgen(setter)]
    pub fn set_onrestart(
        &self,
        #[wasm_bindgen(unchecked_param_type = "((restart: DownloadRestart) => void) | null")]
        f: Option<Function>,
    ) {
        *self.inner.onrestart.borrow_mut() = f;
    }

    /// Every download stored in this origin (IndexedDB) and this page
    /// (memory), or in the store given.
    #[wasm_bindgen(unchecked_return_type = "Promise<DownloadInfo[]>")]
    pub fn list(
        #[wasm_bindgen(unchecked_optional_param_type = "StoreSelection")] options: Option<JsValue>,
    ) -> Promise {
        future_to_promise(async move {
            let choice = store_selection(options).map_err(to_js)?;
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
    /// given. Not while it runs in this page.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn remove(
        id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "StoreSelection")] options: Option<JsValue>,
    ) -> Promise {
        future_to_promise(async move {
            let choice = store_selection(options).map_err(to_js)?;
            if RUNNING.with(|r| r.borrow().contains(&id)) {
                return Err(to_js(Error::Locked { id }));
            }
            let _lock = DownloadLock::take(&id).await.map_err(to_js)?;
            for backend in Backend::all(choice).await {
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
    /// alone. Resolves to what it removed.
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
            }
            Ok(removed.into())
        })
    }
}

/// Removes `id` from `backend` if it is stale once its lock is held (it
/// may have moved on since it was listed); `false` if it was left alone.
async fn prune_one(backend: &Backend, id: &str, max_age: u64) -> Result<bool, Error> {
    if RUNNING.with(|r| r.borrow().contains(id)) {
        return Ok(false);
    }
    let _lock = match DownloadLock::take(id).await {
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

fn parse_prune(options: &JsValue) -> Result<(u64, StoreChoice), Error> {
    if !options.is_object() {
        return Err(Error::invalid(
            "options",
            "prune() needs { olderThan: milliseconds }",
        ));
    }
    only_options(options, &["olderThan", "store"])?;
    let max_age = integer(options, "olderThan")?.ok_or_else(|| {
        Error::invalid(
            "olderThan",
            "it is required: the age in milliseconds past which a partial download is removed",
        )
    })?;
    Ok((max_age, store_selection(Some(options.clone()))?))
}

impl Inner {
    /// The run `start()` began, holding this page's lock on the id.
    async fn run(&self) -> Result<JsValue, JsValue> {
        let result = match DownloadLock::take(&self.engine.options().id).await {
            Ok(lock) => {
                let result = self.engine.run(&|event| self.dispatch(event)).await;
                drop(lock);
                result
            }
            Err(e) => {
                self.engine.abandon();
                Err(e)
            }
        };
        self.network.borrow_mut().take();
        self.engine.resume();
        RUNNING.with(|r| r.borrow_mut().remove(&self.engine.options().id));
        let (state, result) = match result {
            Ok(_) if self.cancelled.get() => ("paused", Err(Error::Aborted)),
            Ok(Outcome::Complete) => ("complete", Ok("complete")),
            Ok(Outcome::Paused) => ("paused", Ok("paused")),
            // Out of space: everything stored is kept, start() continues once there is room.
            Err(e) if e.code() == "QUOTA_EXCEEDED" => ("paused", Err(e)),
            Err(e) => ("failed", Err(e)),
        };
        self.state.set(state);
        result.map(JsValue::from).map_err(to_js)
    }

    /// Suspends the run while the page is offline, from now until it ends.
    fn follow_network(self: &Rc<Self>) {
        let offline = Rc::downgrade(self);
        let online = Rc::downgrade(self);
        *self.network.borrow_mut() = NetworkWatch::start(
            move || {
                if let Some(inner) = offline.upgrade() {
                    inner.engine.suspend();
                    inner.state.set("offline");
                }
            },
            move || {
                if let Some(inner) = online.upgrade() {
                    inner.engine.resume();
                    inner.state.set("running");
                }
            },
        );
        if NetworkWatch::is_offline() {
            self.engine.suspend();
            self.state.set("offline");
        }
    }

    /// Calls the application's handler; one that throws cannot stop the download.
    fn dispatch(&self, event: &Event) {
        let (handler, arg) = match event {
            Event::Progress(p) => (
                self.onprogress.borrow().clone(),
                object(&[
                    ("received", (p.received as f64).into()),
                    ("total", p.total.map(|t| t as f64).into()),
                    ("bytesPerSecond", p.bytes_per_second.into()),
                    ("etaSeconds", p.eta_seconds.into()),
                ]),
            ),
            Event::Restarted(reason) => (
                self.onrestart.borrow().clone(),
                object(&[
                    (
                        "reason",
                        match reason {
                            RestartReason::Changed(_) => "server-changed",
                            RestartReason::RangesIgnored => "ranges-ignored",
                        }
                        .into(),
                    ),
                    ("message", restart_message(reason).into()),
                ]),
            ),
        };
        if let Some(handler) = handler {
            if let Err(e) = handler.call1(&JsValue::NULL, &arg) {
                web_sys::console::error_2(&"resumable-fetch: an event handler threw".into(), &e);
            }
        }
    }
}

fn restart_message(reason: &RestartReason) -> String {
    match reason {
        RestartReason::Changed(change) => {
            format!(
                "the file on the server changed ({change}); downloading it again from the start"
            )
        }
        RestartReason::RangesIgnored => {
            "the server ignored a Range request; downloading the whole file from the start".into()
        }
    }
}

/// A `DownloadError`: a real `Error` named `DownloadError` with a `code`.
fn to_js(error: Error) -> JsValue {
    let js_error = js_sys::Error::new(&error.to_string());
    js_error.set_name("DownloadError");
    let _ = Reflect::set(&js_error, &"code".into(), &error.code().into());
    js_error.into()
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&obj, &(*key).into(), value);
    }
    obj.into()
}

fn info(record: &Record, store: &str) -> JsValue {
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

const OPTION_NAMES: [&str; 12] = [
    "id",
    "store",
    "connections",
    "blockSize",
    "headers",
    "credentials",
    "referrer",
    "retries",
    "stallTimeoutMs",
    "integrity",
    "filename",
    "onServerChange",
];

/// Reads and checks the options object; every mistake names its option.
fn parse_options(
    url: &str,
    options: &JsValue,
) -> Result<(Options, StoreChoice, FetchTransport), Error> {
    let mut parsed = Options::new(&absolute_url(url)?);
    let mut choice = StoreChoice::Auto;
    let mut transport = FetchTransport::default();
    if options.is_undefined() || options.is_null() {
        return Ok((parsed, choice, transport));
    }
    if !options.is_object() {
        return Err(Error::invalid("options", "it must be an object"));
    }
    only_options(options, &OPTION_NAMES)?;
    if let Some(id) = string(options, "id")? {
        parsed.id = id;
    }
    let store = js::get(options, "store");
    if !store.is_undefined() {
        choice = StoreChoice::parse(store)?;
    }
    if let Some(n) = integer(options, "connections")? {
        parsed.connections = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = integer(options, "blockSize")? {
        parsed.block_size = n;
    }
    if let Some(n) = integer(options, "retries")? {
        parsed.retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = integer(options, "stallTimeoutMs")? {
        parsed.stall_timeout_ms = n;
    }
    parsed.headers = headers(&js::get(options, "headers"))?;
    if let Some(credentials) = string(options, "credentials")? {
        transport.credentials = Some(match credentials.as_str() {
            "omit" => RequestCredentials::Omit,
            "same-origin" => RequestCredentials::SameOrigin,
            "include" => RequestCredentials::Include,
            other => {
                return Err(Error::invalid(
                    "credentials",
                    format!("{other:?} is not one of 'omit', 'same-origin', 'include'"),
                ))
            }
        });
    }
    transport.referrer = string(options, "referrer")?;
    if let Some(referrer) = transport.referrer.as_deref().filter(|r| !r.is_empty()) {
        absolute_url(referrer).map_err(|_| {
            Error::invalid("referrer", format!("{referrer:?} is not an http(s) URL"))
        })?;
    }
    if string(options, "integrity")?.is_some() {
        // Never accept a check we would not make.
        return Err(Error::invalid(
            "integrity",
            "integrity checking is not available in this version of resumable-fetch",
        ));
    }
    parsed.filename = string(options, "filename")?;
    if let Some(policy) = string(options, "onServerChange")? {
        parsed.on_server_change = match policy.as_str() {
            "restart" => OnServerChange::Restart,
            "fail" => OnServerChange::Fail,
            other => {
                return Err(Error::invalid(
                    "onServerChange",
                    format!("{other:?} is not 'restart' or 'fail'"),
                ))
            }
        };
    }
    parsed.validate()?;
    Ok((parsed, choice, transport))
}

/// Refuses a key that is not one of `names`: a typo never goes unnoticed.
fn only_options(options: &JsValue, names: &[&str]) -> Result<(), Error> {
    let keys = Object::keys::<JsValue>(options.unchecked_ref());
    for key in keys.iter() {
        let key = key.as_string().unwrap_or_default();
        if !names.contains(&key.as_str()) {
            return Err(Error::invalid(
                &key,
                format!("it is not an option; the options are {}", names.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The `{ store }` of `Download.list()` and `Download.remove()`.
fn store_selection(options: Option<JsValue>) -> Result<StoreChoice, Error> {
    let store = options
        .as_ref()
        .map_or(JsValue::UNDEFINED, |o| js::get(o, "store"));
    if store.is_undefined() {
        Ok(StoreChoice::Auto)
    } else {
        StoreChoice::parse(store)
    }
}

/// The URL made absolute against the page (if any), http or https only.
fn absolute_url(url: &str) -> Result<String, Error> {
    let base = js::get(&js::get(&js_sys::global(), "location"), "href").as_string();
    let parsed = match &base {
        Some(base) => web_sys::Url::new_with_base(url, base),
        None => web_sys::Url::new(url),
    }
    .map_err(|_| Error::invalid("url", format!("{url:?} is not a valid URL")))?;
    match parsed.protocol().as_str() {
        "http:" | "https:" => Ok(parsed.href()),
        other => Err(Error::invalid(
            "url",
            format!("{other} URLs cannot be downloaded by range; use an http: or https: URL"),
        )),
    }
}

fn string(options: &JsValue, key: &str) -> Result<Option<String>, Error> {
    let value = js::get(options, key);
    if value.is_undefined() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| Error::invalid(key, "it must be a string"))
}

/// A non-negative integer number (exact in a JS number: below 2^53).
fn integer(options: &JsValue, key: &str) -> Result<Option<u64>, Error> {
    let value = js::get(options, key);
    if value.is_undefined() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&n) => {
            Ok(Some(n as u64))
        }
        _ => Err(Error::invalid(
            key,
            format!("{} is not a whole number of 0 or more", js::message(&value)),
        )),
    }
}

/// `headers` as a plain object, an array of pairs, or a `Headers`.
fn headers(value: &JsValue) -> Result<Vec<(String, String)>, Error> {
    if value.is_undefined() {
        return Ok(Vec::new());
    }
    let pairs: Vec<JsValue> =
        if Array::is_array(value) || value.is_instance_of::<web_sys::Headers>() {
            match js_sys::try_iter(value) {
                Ok(Some(iter)) => iter.collect::<Result<_, _>>().map_err(|_| bad_headers())?,
                _ => return Err(bad_headers()),
            }
        } else if value.is_object() {
            Object::entries(value.unchecked_ref::<Object>())
                .iter()
                .collect()
        } else {
            return Err(bad_headers());
        };
    pairs
        .iter()
        .map(|pair| {
            let pair = Array::from(pair);
            match (
                pair.get(0).as_string(),
                pair.get(1).as_string(),
                pair.length(),
            ) {
                (Some(name), Some(value), 2) => Ok((name, value)),
                _ => Err(bad_headers()),
            }
        })
        .collect()
}

fn bad_headers() -> Error {
    Error::invalid(
        "headers",
        "it must be an object of strings, an array of [name, value] pairs, or a Headers",
    )
}

/// `<a download>` with an object URL: the save every browser page supports.
fn save_blob(blob: &web_sys::Blob, name: &str) -> Result<(), Error> {
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
        core::clock::Clock::sleep(&JsClock, 60_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}
