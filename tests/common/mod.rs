//! Helpers for the wasm test suites (Node and browsers): the fault server's
//! admin API, and the JS API driven the way JavaScript drives it (methods and
//! getters looked up on the object, promises awaited).
#![allow(dead_code)] // each suite uses its own subset

use fault_server::sha256::{hex, Sha256};
use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use resumable_fetch::api::Download;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The fault server `make test` started, e.g. `http://127.0.0.1:40123`.
pub fn server() -> &'static str {
    match option_env!("FAULT_SERVER") {
        Some(url) => url,
        None => panic!("FAULT_SERVER is unset: run the wasm suites with `make test`, which starts the fault server"),
    }
}

/// The same fault server on a second port: another origin, for cross-origin
/// redirects.
pub fn other_origin() -> &'static str {
    match option_env!("FAULT_SERVER_OTHER") {
        Some(url) => url,
        None => panic!("FAULT_SERVER_OTHER is unset: run the wasm suites with `make test`"),
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: i32);
}

pub const MIB: f64 = 1024.0 * 1024.0;

/// `dl.start()` without awaiting it.
pub fn start(dl: &JsValue) -> Promise {
    call_now(dl, "start")
}

/// `dl[method]()`, called now (not when awaited), returning its promise.
pub fn call_now(dl: &JsValue, method: &str) -> Promise {
    let f: Function = Reflect::get(dl, &method.into()).unwrap().into();
    f.call0(dl).unwrap().into()
}

/// Options for `store`, `blockSize` and `connections`, plus `extra`.
pub fn opts(store: &str, block: f64, connections: u32, extra: &[(&str, JsValue)]) -> JsValue {
    let o = options(&[
        ("store", store.into()),
        ("blockSize", block.into()),
        ("connections", connections.into()),
    ]);
    for (key, value) in extra {
        Reflect::set(&o, &(*key).into(), value).unwrap();
    }
    o
}

/// Sets `dl[handler]` to record `event[key]` of every event.
pub fn watch(dl: &JsValue, handler: &str, key: &'static str) -> Rc<RefCell<Vec<JsValue>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let record = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        sink.borrow_mut()
            .push(Reflect::get(&event, &key.into()).unwrap());
    });
    Reflect::set(dl, &handler.into(), record.as_ref()).unwrap();
    record.forget();
    seen
}

/// The `reason` of every restart, as strings.
pub struct Restarts(Rc<RefCell<Vec<JsValue>>>);

impl Restarts {
    pub fn reasons(&self) -> Vec<String> {
        self.0
            .borrow()
            .iter()
            .filter_map(JsValue::as_string)
            .collect()
    }
}

pub fn watch_restarts(dl: &JsValue) -> Restarts {
    Restarts(watch(dl, "onrestart", "reason"))
}

/// The stored download `id`, as `Download.list()` reports it.
pub async fn listed(id: &str) -> Option<JsValue> {
    let all = Array::from(&JsFuture::from(Download::list(None)).await.unwrap());
    all.iter().find(|info| text(info, "id") == id)
}

/// The browser engine the suite runs in: "chromium", "firefox" or "webkit".
pub fn engine() -> &'static str {
    let agent = js::get_user_agent();
    if agent.contains("Firefox/") {
        "firefox"
    } else if agent.contains("Chrome/") {
        "chromium"
    } else {
        "webkit"
    }
}

/// A browser (page or worker), where pages may not set Cookie, Referer or
/// User-Agent; Node is not one.
pub fn in_browser() -> bool {
    let global = js_sys::global();
    let has =
        |key: &str| js_sys::Reflect::get(&global, &key.into()).is_ok_and(|v| !v.is_undefined());
    has("document") || has("importScripts")
}

mod js {
    use js_sys::Reflect;
    use wasm_bindgen::JsValue;

    pub fn get_user_agent() -> String {
        let navigator =
            Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
        Reflect::get(&navigator, &"userAgent".into())
            .ok()
            .and_then(|a| a.as_string())
            .unwrap_or_default()
    }
}

/// A file name no earlier run used (stores persist across tests).
pub fn unique(name: &str) -> String {
    format!(
        "{name}-{}",
        js_sys::Date::now() as u64 ^ (js_sys::Math::random() * 1e9) as u64
    )
}

pub fn file_url(name: &str) -> String {
    format!("{}/files/{name}", server())
}

async fn post(path: &str) -> JsValue {
    let init = js_sys::Object::new();
    Reflect::set(&init, &"method".into(), &"POST".into()).unwrap();
    json(global_fetch(&format!("{}{path}", server()), &init)).await
}

async fn get(path: &str) -> JsValue {
    json(global_fetch(
        &format!("{}{path}", server()),
        &JsValue::UNDEFINED,
    ))
    .await
}

async fn json(response: Promise) -> JsValue {
    let response: web_sys::Response = JsFuture::from(response).await.unwrap().into();
    let status = response.status();
    let body = JsFuture::from(response.json().unwrap()).await.unwrap();
    assert!(status < 300, "admin call failed: {status} {body:?}");
    body
}

/// Creates or updates a file on the fault server (`params` is a query string).
pub async fn configure(name: &str, params: &str) -> JsValue {
    post(&format!("/_admin/files/{name}?{params}")).await
}

/// Ends every response of `name` in progress.
pub async fn cut(name: &str) {
    post(&format!("/_admin/cut/{name}")).await;
}

/// One response the server sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub status: u32,
    /// The Range header asked for.
    pub range: Option<String>,
    /// The body's first and last byte (inclusive), when it had a range.
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub sent: f64,
    pub if_range: Option<String>,
    /// Request headers the server recorded (referer, cookie, origin, user-agent, x-*).
    pub headers: JsValue,
    /// The fault it suffered, if any.
    pub fault: Option<String>,
}

pub async fn log(name: &str) -> Vec<Served> {
    let optional = |entry: &JsValue, key: &str| Reflect::get(entry, &key.into()).unwrap();
    Array::from(&get(&format!("/_admin/log/{name}")).await)
        .iter()
        .map(|entry| Served {
            status: field(&entry, "status") as u32,
            range: optional(&entry, "range").as_string(),
            start: optional(&entry, "start").as_f64(),
            end: optional(&entry, "end").as_f64(),
            sent: field(&entry, "sent"),
            if_range: optional(&entry, "if_range").as_string(),
            headers: optional(&entry, "headers"),
            fault: optional(&entry, "fault").as_string(),
        })
        .collect()
}

/// The most responses of `name` the server was sending at once.
pub async fn max_concurrent(name: &str) -> f64 {
    field(
        &get(&format!("/_admin/stats/{name}")).await,
        "max_concurrent",
    )
}

/// Sets a cookie for the fault server's host, as its page would.
pub async fn set_cookie(name: &str, value: &str) {
    let init = js_sys::Object::new();
    Reflect::set(&init, &"credentials".into(), &"include".into()).unwrap();
    let url = format!("{}/_admin/set-cookie?name={name}&value={value}", server());
    json(global_fetch(&url, &init)).await;
}

pub async fn clear_log(name: &str) {
    post(&format!("/_admin/log/{name}/clear")).await;
}

pub async fn server_sha256(name: &str) -> String {
    Reflect::get(
        &get(&format!("/_admin/sha256/{name}")).await,
        &"sha256".into(),
    )
    .unwrap()
    .as_string()
    .unwrap()
}

pub fn field(obj: &JsValue, key: &str) -> f64 {
    Reflect::get(obj, &key.into())
        .unwrap()
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

pub fn text(obj: &JsValue, key: &str) -> String {
    Reflect::get(obj, &key.into())
        .unwrap()
        .as_string()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

/// `Object.fromEntries` of string or number pairs.
pub fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let obj = js_sys::Object::new();
    for (key, value) in pairs {
        Reflect::set(&obj, &(*key).into(), value).unwrap();
    }
    obj.into()
}

/// `await Download.open(url, options)`.
pub async fn open(url: &str, options: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(Download::open(url.to_string(), Some(options))).await
}

/// `await obj[method](...args)`.
pub async fn call(obj: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(obj, &method.into())?.dyn_into()?;
    let out = f.apply(obj, &args.iter().collect::<Array>())?;
    match out.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await,
        Err(value) => Ok(value),
    }
}

/// The `code` of a rejected DownloadError, after checking that it is one.
pub fn error_code(error: &JsValue) -> String {
    assert!(
        error.is_instance_of::<js_sys::Error>(),
        "not an Error: {error:?}"
    );
    assert_eq!(text(error, "name"), "DownloadError");
    text(error, "code")
}

pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| set_timeout(&resolve, ms));
    JsFuture::from(promise).await.unwrap();
}

/// Waits (at most `seconds`) until `dl.received` reaches `bytes`.
pub async fn wait_for_received(dl: &JsValue, bytes: f64, seconds: i32) {
    for _ in 0..seconds * 20 {
        if field(dl, "received") >= bytes {
            return;
        }
        sleep(50).await;
    }
    panic!("received stayed at {} below {bytes}", field(dl, "received"));
}

/// SHA-256 of a Blob, read in slices (a 64 MiB blob is never one buffer).
pub async fn sha256_of(blob: &web_sys::Blob) -> String {
    let mut hasher = Sha256::new();
    let size = blob.size();
    let step = 4.0 * 1024.0 * 1024.0;
    let mut at = 0.0;
    while at < size {
        let slice = blob
            .slice_with_f64_and_f64(at, (at + step).min(size))
            .unwrap();
        let buffer = JsFuture::from(slice.array_buffer()).await.unwrap();
        hasher.update(&Uint8Array::new(&buffer).to_vec());
        at += step;
    }
    hex(&hasher.finish())
}

/// The first `len` bytes of a Blob.
pub async fn head_of(blob: &web_sys::Blob, len: f64) -> Vec<u8> {
    let slice = blob.slice_with_f64_and_f64(0.0, len).unwrap();
    Uint8Array::new(&JsFuture::from(slice.array_buffer()).await.unwrap()).to_vec()
}

/// The suites' one-line tests: one `#[wasm_bindgen_test]` per line, each
/// awaiting a shared scenario with the arguments given (the store, then any
/// others). A test is named after its scenario, or `name:` before it; the
/// attributes above a line (`#[ignore]`, a `#[cfg]`, docs) go on its test.
/// `if check;` first runs each test only where `check("its name")` is true
/// (the function says why not).
///
/// ```ignore
/// scenario_tests! {
///     if has_opfs;
///     scenarios::pause_then_start_again("opfs");
///     #[ignore]
///     a_longer_name: scenarios::downloads_byte_for_byte("opfs", 32.0 * MIB);
/// }
/// ```
macro_rules! scenario_tests {
    (@test [$($check:ident)?] [$(#[$($attr:tt)*])*] $name:ident $scenario:expr) => {
        #[wasm_bindgen_test::wasm_bindgen_test]
        $(#[$($attr)*])*
        async fn $name() {
            $(if !$check(stringify!($name)) {
                return;
            })?
            $scenario.await;
        }
    };
    (@each [$($check:ident)?]) => {};
    (@each [$($check:ident)?] $(#[$($attr:tt)*])* $name:ident : $module:ident :: $scenario:ident ($($arg:expr),*); $($rest:tt)*) => {
        $crate::common::scenario_tests!(@test [$($check)?] [$(#[$($attr)*])*] $name $module::$scenario($($arg),*));
        $crate::common::scenario_tests!(@each [$($check)?] $($rest)*);
    };
    (@each [$($check:ident)?] $(#[$($attr:tt)*])* $module:ident :: $scenario:ident ($($arg:expr),*); $($rest:tt)*) => {
        $crate::common::scenario_tests!(@test [$($check)?] [$(#[$($attr)*])*] $scenario $module::$scenario($($arg),*));
        $crate::common::scenario_tests!(@each [$($check)?] $($rest)*);
    };
    (@each [$($check:ident)?] $($line:tt)*) => {
        compile_error!(concat!(
            "expected `module::scenario(args);` or `name: module::scenario(args);` at: ",
            stringify!($($line)*)
        ));
    };
    (if $check:ident; $($tests:tt)*) => {
        $crate::common::scenario_tests!(@each [$check] $($tests)*);
    };
    ($($tests:tt)*) => {
        $crate::common::scenario_tests!(@each [] $($tests)*);
    };
}
pub(crate) use scenario_tests;

pub mod scenarios;

pub mod custom_store;

pub mod conformance;

pub mod store_contract;
