//! The JavaScript API, as published on npm. It converts JS values to core
//! types, delegates to the core driver running over the web adapters, and
//! turns every failure into a `DownloadError` (a real `Error` with a stable
//! `code`). No download logic lives here.

mod host;
mod local;
mod remote;

use crate::core::driver;
use crate::core::record::Record;
use crate::core::{self, filename, Error, OnServerChange, Options};
use crate::web::lock::{DownloadLock, SweepLock};
use crate::web::{js, Backend, FetchTransport, StoreChoice};
use js_sys::{Array, Function, Object, Promise, Reflect};
use local::Local;
use remote::Remote;
use std::cell::RefCell;
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
  /**
   * The record last put for `id` (its bytes as any BufferSource: a Uint8Array,
   * an ArrayBuffer, another typed array or a DataView), or null/undefined when
   * there is none. Anything else is INVALID_ARGUMENT, and nothing is deleted.
   */
  getRecord(id: string): Promise<BufferSource | null | undefined> | BufferSource | null | undefined;
  /** Replaces the record of `id`. */
  putRecord(id: string, record: Uint8Array): Promise<void> | void;
  /** Every record stored (those of other libraries are not expected here), as BufferSources. */
  records(): Promise<BufferSource[]> | BufferSource[];
  /** Writes `data` at byte `offset` of the file of `id` (growing it as needed). */
  write(id: string, offset: number, data: Uint8Array): Promise<void> | void;
  /** Exactly `length` bytes at byte `offset` of the file of `id`. */
  read(id: string, offset: number, length: number): Promise<Uint8Array> | Uint8Array;
  /** Deletes the record and the file of `id`; deleting nothing is not an error. */
  delete(id: string): Promise<void> | void;
  /** Optional: the first `size` bytes of the file as a Blob, ideally disk-backed.
   * Without it, `blob()` reads the file into memory. */
  file?(id: string, size: number): Promise<Blob> | Blob;
  /**
   * Optional: the length in bytes of the data stored for `id` (null/undefined:
   * none). A record is trusted no further than this when it is loaded, so a
   * record that outlived its data is downloaded again. Without it, the last
   * claimed byte of each piece is read back instead.
   */
  size?(id: string): Promise<number | null | undefined> | number | null | undefined;
  /**
   * Optional: the one-writer lock of `id` across processes sharing this store.
   * Resolves a release function when this process now holds it, or null when
   * another process does (the call fails with LOCKED). A throw is
   * STORAGE_FAILED. Called when a download starts, is cancelled or removed,
   * after this context's own lock (and the Web Lock where there is one); the
   * release is called when that ends, and if it throws or rejects, that is
   * logged.
   */
  lock?(id: string): Promise<(() => void | Promise<void>) | null>;
  /**
   * Optional: removes what no record claims and nothing wrote to for
   * `olderThan` milliseconds (the leftovers of a delete() or write() a crash
   * cut short, temporary files). Download.prune() calls it after removing
   * stale downloads, only while no download is written to in this context;
   * other processes sharing the store must be kept out by the store itself.
   */
  sweep?(olderThan: number): Promise<void> | void;
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
  /** Parallel range requests, 1 to 16. Default 4. */
  connections?: number;
  /**
   * Bytes per request and per stored block, 1 KiB to 1 GiB. Default 8 MiB,
   * and 16 MiB for the blocks IndexedDB takes whole on a fast network.
   */
  blockSize?: number;
  /**
   * Extra request headers. Range and the connection's own headers are rejected;
   * so are, in browsers, those pages may not set (Cookie, Referer, User-Agent…),
   * which Node, Deno and workerd send.
   */
  headers?: Record<string, string> | [string, string][] | Headers;
  credentials?: RequestCredentials;
  referrer?: string;
  /** Consecutive failed attempts tolerated before an error, 0 to 100. Default 5. */
  retries?: number;
  /** A body with no new byte for this long is aborted and retried. Default 30000. */
  stallTimeoutMs?: number;
  /**
   * Requests one `start()` may send (retries included) before it resolves
   * 'paused', for runtimes that cap subrequests per invocation, such as
   * Cloudflare Workers (50 on the free plan): the next invocation resumes.
   * At least 2. Default: no limit.
   */
  maxRequests?: number;
  /**
   * The digest the finished file must have, in Subresource Integrity syntax
   * ('sha256-<base64>', also sha384/sha512; the strongest given counts). Checked
   * over the stored file at completion; a mismatch discards it and fails with
   * INTEGRITY_MISMATCH. A server's Repr-Digest header is checked too.
   */
  integrity?: string;
  /** The name `save()` uses. Default: Content-Disposition, else the URL's last segment. */
  filename?: string;
  /** When the file on the server changed: start over (default) or fail with SERVER_CHANGED. */
  onServerChange?: 'restart' | 'fail';
  /**
   * Run the download in a dedicated worker the package starts (one per page),
   * where 'auto' stores in OPFS; this Download is then a proxy. Not with a custom store.
   */
  worker?: boolean;
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
  | 'INTEGRITY_MISMATCH' | 'INVALID_ARGUMENT' | 'INVALID_STATE' | 'LOCKED' | 'ABORTED' | 'INTERNAL';

/** Every promise of this API rejects with a DownloadError. */
export interface DownloadError extends Error {
  name: 'DownloadError';
  code: DownloadErrorCode;
}
"#;

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

/// The application's `onprogress` and `onrestart`.
#[derive(Default)]
struct Handlers {
    onprogress: RefCell<Option<Function>>,
    onrestart: RefCell<Option<Function>>,
}

impl Handlers {
    fn progress(&self, event: &JsValue) {
        call_handler(&self.onprogress, event);
    }

    fn restart(&self, event: &JsValue) {
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
    Ok((max_age, store_selection(Some(options))?))
}

/// A `DownloadError`: a real `Error` named `DownloadError` with a `code`.
fn to_js(error: Error) -> JsValue {
    download_error(&error.to_string(), error.code())
}

fn download_error(message: &str, code: &str) -> JsValue {
    let js_error = js_sys::Error::new(message);
    js_error.set_name("DownloadError");
    let _ = Reflect::set(&js_error, &"code".into(), &code.into());
    js_error.into()
}

/// A DownloadError as `{ message, code }`, which crosses to and from a
/// worker (a cloned Error loses its `code`); `error_from_parts` undoes it.
fn error_parts(error: &JsValue) -> JsValue {
    object(&[
        ("message", js::get(error, "message")),
        ("code", js::get(error, "code")),
    ])
}

/// The DownloadError a worker reported as `{ message, code }`.
fn error_from_parts(parts: &JsValue) -> JsValue {
    download_error(
        &js::get(parts, "message").as_string().unwrap_or_default(),
        &js::get(parts, "code")
            .as_string()
            .unwrap_or_else(|| "INTERNAL".into()),
    )
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

const OPTION_NAMES: [&str; 14] = [
    "id",
    "store",
    "connections",
    "blockSize",
    "headers",
    "credentials",
    "referrer",
    "retries",
    "stallTimeoutMs",
    "maxRequests",
    "integrity",
    "filename",
    "onServerChange",
    "worker",
];

/// The options of `Download.open`, checked.
struct Parsed {
    options: Options,
    choice: StoreChoice,
    transport: FetchTransport,
    /// Run the engine in the package's worker, this object a proxy.
    worker: bool,
}

/// Reads and checks the options object; every mistake names its option.
fn parse_options(url: &str, options: &JsValue) -> Result<Parsed, Error> {
    let mut parsed = Options::new(&absolute_url(url)?);
    let mut choice = StoreChoice::Auto;
    let mut transport = FetchTransport::default();
    if options.is_undefined() || options.is_null() {
        return Ok(Parsed {
            options: parsed,
            choice,
            transport,
            worker: false,
        });
    }
    if !options.is_object() {
        return Err(Error::invalid("options", "it must be an object"));
    }
    only_options(options, &OPTION_NAMES)?;
    if let Some(id) = string(options, "id")? {
        parsed.id = id;
    }
    let store = option(options, "store")?;
    if !store.is_undefined() {
        choice = StoreChoice::parse(store)?;
    }
    if let Some(n) = integer(options, "connections")? {
        parsed.connections = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = integer(options, "blockSize")? {
        parsed.set_block_size(n);
    }
    if let Some(n) = integer(options, "retries")? {
        parsed.retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = integer(options, "stallTimeoutMs")? {
        parsed.stall_timeout_ms = n;
    }
    if let Some(n) = integer(options, "maxRequests")? {
        // 0 stays 0 for validate() to refuse; more than u32 is no limit.
        parsed.max_requests = Some(u32::try_from(n).unwrap_or(u32::MAX));
    }
    parsed.headers = headers(&option(options, "headers")?)?;
    parsed.browser = js::is_browser();
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
    if let Some(integrity) = string(options, "integrity")? {
        parsed.integrity = Some(
            core::integrity::parse_integrity(&integrity)
                .map_err(|why| Error::invalid("integrity", why))?,
        );
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
    let worker = match option(options, "worker")? {
        w if w.is_undefined() => false,
        w => w
            .as_bool()
            .ok_or_else(|| Error::invalid("worker", "it must be true or false"))?,
    };
    parsed.validate()?;
    Ok(Parsed {
        options: parsed,
        choice,
        transport,
        worker,
    })
}

/// The option `key`: an own property of `options` (an inherited one is not
/// the caller's), `undefined` when absent. A getter or Proxy trap that
/// throws is `INVALID_ARGUMENT` naming the option, never an exception
/// through wasm.
fn option(options: &JsValue, key: &str) -> Result<JsValue, Error> {
    js::own(options, key)
        .map_err(|e| Error::invalid(key, format!("reading it threw: {}", js::message(&e))))
}

/// Refuses a key that is not one of `names`: a typo never goes unnoticed.
fn only_options(options: &JsValue, names: &[&str]) -> Result<(), Error> {
    let keys = js::keys(options).map_err(|e| {
        Error::invalid(
            "options",
            format!("listing its keys threw: {}", js::message(&e)),
        )
    })?;
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
fn store_selection(options: Option<&JsValue>) -> Result<StoreChoice, Error> {
    let store = match options {
        Some(o) => option(o, "store")?,
        None => JsValue::UNDEFINED,
    };
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
    let value = option(options, key)?;
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
    let value = option(options, key)?;
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
    let pairs = if js::is_array(value) || value.is_instance_of::<web_sys::Headers>() {
        js::array_from(value)
    } else if value.is_object() {
        js::entries(value)
    } else {
        return Err(bad_headers());
    }
    .map_err(|e| Error::invalid("headers", format!("reading it threw: {}", js::message(&e))))?;
    pairs
        .iter()
        .map(|pair| {
            let pair = if js::is_array(&pair) {
                js::array_from(&pair).map_err(|_| bad_headers())?
            } else {
                return Err(bad_headers());
            };
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
