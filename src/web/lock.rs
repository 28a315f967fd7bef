//! One writer per download, in every runtime. A [`DownloadLock`] is, in
//! this order:
//!
//! 1. a claim in this page or worker's registry of held ids, taken
//!    synchronously (so a second `start()` in the same tick is refused at
//!    once) and released on drop. This is the whole guarantee where there
//!    are no Web Locks (Node, Deno, workerd, http: pages): two `Download`
//!    objects for one id in one process.
//! 2. a Web Lock named after the id where `navigator.locks` exists, for
//!    other tabs and workers; the browser releases it if the holder dies.
//! 3. a custom store's optional `lock(id)` hook, for other processes sharing
//!    the store (the Node and Deno file stores).
//!
//! Every writer path takes one: a run, `cancel()`, `Download.remove()`,
//! `Download.prune()`. A writer first waits for any [`SweepLock`] (shared
//! with other writers): `prune()` sweeps what no record claims only while
//! no download is written to. `blob()` takes a reader's lock (shared with other
//! readers, refused while a writer holds the id), so the record and the
//! pieces it reads are one view. Nobody waits: a lock held elsewhere is
//! `LOCKED` at once.

use super::custom::CustomStore;
use super::js;
use crate::core::small_map::SmallMap;
use crate::core::{Error, StoreError, StoreErrorKind};
use js_sys::{Function, Object, Promise, Reflect};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Who holds an id in this context.
#[derive(Clone, Copy)]
enum Holder {
    Writer,
    Readers(u32),
}

thread_local! {
    /// The ids held in this page or worker.
    static HELD: RefCell<SmallMap<String, Holder>> = RefCell::new(SmallMap::new());
    /// Releases still under way per id (a Web Lock is let go after the
    /// promise it waits on settles; a store's release may be async): the
    /// next lock of the id in this context waits for them, so letting go and
    /// taking again in a row (`cancel()` of a running download) never
    /// trips over itself.
    static RELEASING: RefCell<SmallMap<String, Vec<Promise>>> = RefCell::new(SmallMap::new());
    /// Settles once the sweep under way in this context is over.
    static SWEEPING: RefCell<Option<Promise>> = const { RefCell::new(None) };
    /// Settles once the browser has let the last sweep's Web Lock go.
    static SWEPT: RefCell<Option<Promise>> = const { RefCell::new(None) };
}

/// The Web Lock writers share and a sweep holds alone (not under
/// `resumable-fetch:`, so no id can name it).
const SWEEP_LOCK: &str = "resumable-fetch-sweep";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Write,
    Read,
}

/// Held until dropped.
pub struct DownloadLock {
    id: String,
    mode: Mode,
    /// The Web Locks held: the id's, and for a writer the shared sweep lock.
    web: Vec<WebLock>,
    /// The custom stores' release functions.
    stores: Vec<Function>,
}

impl DownloadLock {
    /// Claims `id` for writing in this page or worker, now: `LOCKED` if
    /// anything here holds it. [`DownloadLock::acquire`] completes it.
    pub fn claim(id: &str) -> Result<Self, Error> {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if held.contains_key(id) {
                return Err(Error::Locked { id: id.to_string() });
            }
            held.insert(id.to_string(), Holder::Writer);
            Ok(())
        })?;
        Ok(Self::new(id, Mode::Write))
    }

    /// Claims `id` for reading in this page or worker, now: shared with
    /// other readers, `LOCKED` while a writer holds it.
    pub fn claim_read(id: &str) -> Result<Self, Error> {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            let readers = match held.get(id) {
                Some(Holder::Writer) => return Err(Error::Locked { id: id.to_string() }),
                Some(Holder::Readers(n)) => n.saturating_add(1),
                None => 1,
            };
            held.insert(id.to_string(), Holder::Readers(readers));
            Ok(())
        })?;
        Ok(Self::new(id, Mode::Read))
    }

    fn new(id: &str, mode: Mode) -> Self {
        Self {
            id: id.to_string(),
            mode,
            web: Vec::new(),
            stores: Vec::new(),
        }
    }

    /// Completes a claim: the Web Lock where there is one (shared for a
    /// reader), then, for a writer, the `lock` hook of each custom store in
    /// `stores`. `LOCKED` if another tab, worker or process holds the id;
    /// whatever was taken is let go again on failure.
    pub async fn acquire(mut self, stores: &[&CustomStore]) -> Result<Self, Error> {
        let pending = RELEASING.with(|r| r.borrow_mut().remove(&self.id));
        for release in pending.into_iter().flatten() {
            let _ = JsFuture::from(release).await;
        }
        if self.mode == Mode::Write {
            let sweep = SWEEPING.with(|s| s.borrow().clone());
            if let Some(sweep) = sweep {
                let _ = JsFuture::from(sweep).await;
            }
            let shared = web_lock(SWEEP_LOCK, Mode::Read, Wait::Yes).await?;
            self.web.extend(held(shared, &self.id)?);
        }
        let own = web_lock(&format!("resumable-fetch:{}", self.id), self.mode, Wait::No).await?;
        self.web.extend(held(own, &self.id)?);
        if self.mode == Mode::Write {
            for store in stores {
                if let Some(release) = store.lock(&self.id).await? {
                    self.stores.push(release);
                }
            }
        }
        Ok(self)
    }

    /// [`DownloadLock::claim`] then [`DownloadLock::acquire`].
    pub async fn take(id: &str, stores: &[&CustomStore]) -> Result<Self, Error> {
        Self::claim(id)?.acquire(stores).await
    }

    /// [`DownloadLock::claim_read`] then [`DownloadLock::acquire`].
    pub async fn read(id: &str) -> Result<Self, Error> {
        Self::claim_read(id)?.acquire(&[]).await
    }

    fn releasing(&self, promise: Promise) {
        RELEASING.with(|r| {
            r.borrow_mut().get_or_default(self.id.clone()).push(promise);
        });
    }
}

impl Drop for DownloadLock {
    fn drop(&mut self) {
        for release in std::mem::take(&mut self.stores).into_iter().rev() {
            match release.call0(&JsValue::NULL) {
                Ok(returned) => {
                    let settled = Promise::resolve(&returned);
                    let logged = js::then(&settled, &JsValue::UNDEFINED, &log("failed"));
                    self.releasing(logged.dyn_into().unwrap_or(settled));
                }
                Err(e) => web_sys::console::warn_2(&release_failed("threw").into(), &e),
            }
        }
        for lock in std::mem::take(&mut self.web).into_iter().rev() {
            self.releasing(lock.release());
        }
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            match held.get(&self.id).copied() {
                Some(Holder::Readers(n)) if n > 1 => {
                    held.insert(self.id.clone(), Holder::Readers(n - 1));
                }
                _ => {
                    held.remove(&self.id);
                }
            }
        });
    }
}

/// Held while `Download.prune()` sweeps what no record claims: no download
/// is written to in this context, nor (with Web Locks) in another tab or
/// worker of this version, until it is dropped; their writers wait.
pub struct SweepLock {
    web: Option<WebLock>,
    /// Settles `SWEEPING`'s promise.
    done: Function,
}

impl SweepLock {
    /// `None` while a download is written to here or elsewhere (or another
    /// sweep runs): the sweep is for another time.
    pub async fn take() -> Result<Option<Self>, Error> {
        let busy = HELD.with(|held| held.borrow().values().any(|h| matches!(h, Holder::Writer)))
            || SWEEPING.with(|s| s.borrow().is_some());
        if busy {
            return Ok(None);
        }
        let mut done = None;
        let settled = Promise::new(&mut |resolve, _| done = Some(resolve));
        let Some(done) = done else {
            return Err(Error::Internal("a Promise did not run its executor".into()));
        };
        SWEEPING.with(|s| *s.borrow_mut() = Some(settled));
        let mut lock = Self { web: None, done };
        // This context's writers, or its last sweep, may still hold a share.
        let mut releasing: Vec<Promise> =
            RELEASING.with(|r| r.borrow().values().flatten().cloned().collect());
        releasing.extend(SWEPT.with(|s| s.borrow_mut().take()));
        for release in releasing {
            let _ = JsFuture::from(release).await;
        }
        match web_lock(SWEEP_LOCK, Mode::Write, Wait::No).await? {
            Granted::Yes(web) => lock.web = Some(web),
            Granted::No => return Ok(None),
            Granted::NoWebLocks => {}
        }
        Ok(Some(lock))
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        let released = self.web.take().map(WebLock::release);
        SWEEPING.with(|s| s.borrow_mut().take());
        // Writers waiting here go on once the Web Lock is let go too.
        match released {
            Some(released) => {
                drop(js::then(&released, &self.done, &self.done));
                SWEPT.with(|s| *s.borrow_mut() = Some(released));
            }
            None => drop(self.done.call0(&JsValue::NULL)),
        }
    }
}

fn release_failed(how: &str) -> String {
    format!("resumable-fetch: a custom store's lock release {how}; the lock may still be held")
}

/// `console.warn` bound to a message: a rejection handler that needs no
/// Rust closure.
fn log(how: &str) -> JsValue {
    let console = js::get(&js_sys::global(), "console");
    match js::get(&console, "warn").dyn_into::<Function>() {
        Ok(warn) => warn.bind1(&console, &release_failed(how).into()).into(),
        Err(_) => JsValue::UNDEFINED,
    }
}

/// A Web Lock held until [`WebLock::release`].
struct WebLock {
    /// Resolves the promise that keeps the lock.
    release: Function,
    /// The request's own promise: settles once the browser let the lock go.
    request: Promise,
}

impl WebLock {
    /// Lets the lock go; the promise settles once the browser has.
    fn release(self) -> Promise {
        let _ = self.release.call0(&JsValue::NULL);
        self.request
    }
}

/// What a Web Lock request got.
enum Granted {
    Yes(WebLock),
    /// Held elsewhere (only when not waiting).
    No,
    /// The runtime has no Web Locks.
    NoWebLocks,
}

/// Whether a request waits for the lock or gives up at once (`ifAvailable`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Yes,
    No,
}

/// A writer's or reader's answer: a lock held elsewhere is `LOCKED`.
fn held(granted: Granted, id: &str) -> Result<Option<WebLock>, Error> {
    match granted {
        Granted::Yes(lock) => Ok(Some(lock)),
        Granted::No => Err(Error::Locked { id: id.to_string() }),
        Granted::NoWebLocks => Ok(None),
    }
}

/// Requests the Web Lock `name`.
async fn web_lock(name: &str, mode: Mode, wait: Wait) -> Result<Granted, Error> {
    let locks = js::get(&js::get(&js_sys::global(), "navigator"), "locks");
    let Ok(request) = js::get(&locks, "request").dyn_into::<Function>() else {
        return Ok(Granted::NoWebLocks);
    };
    // The lock is held while the promise the callback returns is pending.
    let mut release = None;
    let held = Promise::new(&mut |resolve, _| release = Some(resolve));
    let mut settle = None;
    let answer = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
    let (Some(release), Some((granted, refused))) = (release, settle) else {
        return Err(Error::Internal("a Promise did not run its executor".into()));
    };
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let got = !lock.is_null() && !lock.is_undefined();
        let _ = granted.call1(&JsValue::NULL, &got.into());
        if got {
            held.into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = Object::new();
    if wait == Wait::No {
        let _ = Reflect::set(&options, &"ifAvailable".into(), &true.into());
    }
    let mode = match mode {
        Mode::Write => "exclusive",
        Mode::Read => "shared",
    };
    let _ = Reflect::set(&options, &"mode".into(), &mode.into());
    let name = JsValue::from(name);
    let returned = request
        .call3(&locks, &name, &options, &callback)
        .map_err(|e| refused_lock(&e))?;
    // The request's own promise rejects when the browser refuses it (a
    // sandboxed iframe, blocked storage: SecurityError) without calling back;
    // and one that ends without calling back at all (a broken polyfill)
    // must not leave `answer` pending either. Both reject `answer`, which
    // does nothing once the callback has settled it.
    let ended: JsValue =
        js_sys::Error::new("navigator.locks.request() ended without granting or refusing the lock")
            .into();
    let on_end = refused.bind1(&JsValue::NULL, &ended);
    let request_done = Promise::resolve(&returned);
    let request_done = js::then(&request_done, &on_end, &refused)
        .dyn_into::<Promise>()
        .unwrap_or(request_done);
    let got: JsValue = JsFuture::from(answer).await.map_err(|e| refused_lock(&e))?;
    Ok(if got.is_truthy() {
        Granted::Yes(WebLock {
            release,
            request: request_done,
        })
    } else {
        Granted::No
    })
}

/// `navigator.locks.request` threw or rejected: this context may not keep
/// state (a sandboxed iframe without `allow-same-origin`, storage blocked by
/// the browser), so no download can be written here safely. That is the
/// environment, not a bug: `STORAGE_UNAVAILABLE`, not `INTERNAL`.
fn refused_lock(thrown: &JsValue) -> Error {
    Error::Storage(StoreError::new(
        StoreErrorKind::Unavailable,
        format!(
            "Web Locks (navigator.locks), which keep one writer per download and every store \
             needs here, refused the lock: {}; this context blocks storage (e.g. a sandboxed \
             iframe without allow-same-origin, or storage blocked by the browser's settings)",
            js::message(thrown)
        ),
    ))
}
