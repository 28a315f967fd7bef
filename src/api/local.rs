//! A download run by the driver in this page or worker.

use super::{absolute_url, object, to_js, Handle, Handlers};
use crate::core::driver::{Event, Outcome, RestartReason};
use crate::core::{self, Error, Options};
use crate::web::lock::DownloadLock;
use crate::web::network::NetworkWatch;
use crate::web::{Backend, FetchTransport, JsClock};
use js_sys::Promise;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::Blob;

type Driver = core::Driver<FetchTransport, Backend, JsClock>;

pub struct Local {
    driver: Driver,
    /// The driver's store too, for its name and `persist()`.
    backend: Backend,
    state: Cell<&'static str>,
    /// The promise of the run in progress, which `start`, `pause` and
    /// `cancel` all wait on.
    run: RefCell<Option<Promise>>,
    cancelled: Cell<bool>,
    /// `navigator.storage.persist()` is asked at the first `start()`.
    asked_persistence: Cell<bool>,
    handlers: Handlers,
    /// While running: the page's offline/online events suspend and resume it.
    network: RefCell<Option<NetworkWatch>>,
}

impl Local {
    /// Opens a download, resuming it if the store already holds part of it.
    pub async fn open(
        options: Options,
        backend: Backend,
        transport: FetchTransport,
    ) -> Result<Self, Error> {
        let driver = Driver::open(transport, backend.clone(), JsClock, options).await?;
        if let Some(why) = driver.discarded_record() {
            web_sys::console::warn_1(
                &format!("resumable-fetch: {why}; the download starts over").into(),
            );
        }
        let state = if driver.is_complete() {
            "complete"
        } else if driver.received() > 0 {
            "paused"
        } else {
            "idle"
        };
        Ok(Self {
            driver,
            backend,
            state: Cell::new(state),
            run: RefCell::new(None),
            cancelled: Cell::new(false),
            asked_persistence: Cell::new(false),
            handlers: Handlers::default(),
            network: RefCell::new(None),
        })
    }

    /// The custom store whose `lock` hook the one-writer lock calls.
    fn lock_hooks(&self) -> Vec<&crate::web::custom::CustomStore> {
        self.backend.custom().into_iter().collect()
    }

    /// Takes the one-writer lock of this download (see [`DownloadLock`]).
    async fn lock(&self) -> Result<DownloadLock, Error> {
        DownloadLock::take(&self.driver.options().id, &self.lock_hooks()).await
    }

    /// The run `start()` began with its claim on the id: the whole lock is
    /// taken, and held until the run ends.
    async fn run(&self, claim: DownloadLock) -> Result<JsValue, JsValue> {
        let result = match claim.acquire(&self.lock_hooks()).await {
            Ok(lock) => {
                let result = self.driver.run(&|event| self.dispatch(event)).await;
                drop(lock);
                result
            }
            Err(e) => {
                self.driver.abandon();
                Err(e)
            }
        };
        self.network.borrow_mut().take();
        self.driver.resume();
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

    /// Suspends the run while offline, from now until it ends.
    fn follow_network(self: &Rc<Self>) {
        let offline = Rc::downgrade(self);
        let online = Rc::downgrade(self);
        *self.network.borrow_mut() = NetworkWatch::start(
            move || {
                if let Some(local) = offline.upgrade() {
                    local.driver.suspend();
                    local.state.set("offline");
                }
            },
            move || {
                if let Some(local) = online.upgrade() {
                    local.driver.resume();
                    local.state.set("running");
                }
            },
        );
        if NetworkWatch::is_offline() {
            self.driver.suspend();
            self.state.set("offline");
        }
    }

    fn dispatch(&self, event: &Event) {
        match event {
            Event::Progress(p) => self.handlers.progress(&object(&[
                ("received", (p.received as f64).into()),
                ("total", p.total.map(|t| t as f64).into()),
                ("bytesPerSecond", p.bytes_per_second.into()),
                ("etaSeconds", p.eta_seconds.into()),
            ])),
            Event::Restarted(reason) => self.handlers.restart(&object(&[
                (
                    "reason",
                    match reason {
                        RestartReason::Changed(_) => "server-changed",
                        RestartReason::RangesIgnored => "ranges-ignored",
                    }
                    .into(),
                ),
                ("message", restart_message(reason).into()),
            ])),
        }
    }
}

impl Handle for Local {
    fn start(self: Rc<Self>) -> Promise {
        if let Some(run) = self.run.borrow().clone() {
            return run;
        }
        // Claimed now, in this context: a second start() (of this object or
        // another for the same id) is refused at once.
        let claim = match DownloadLock::claim(&self.driver.options().id) {
            Ok(claim) => claim,
            Err(e) => return Promise::reject(&to_js(e)),
        };
        let writable = if self.driver.is_complete() {
            Ok(())
        } else {
            self.backend.check_writable().map_err(Error::from)
        };
        // Running from now: a pause() before the run's first step counts.
        if let Err(e) = writable.and_then(|()| self.driver.begin()) {
            return Promise::reject(&to_js(e));
        }
        self.state.set("running");
        if !self.asked_persistence.replace(true) {
            self.backend.ask_persistence();
        }
        self.follow_network();
        let local = self.clone();
        let run = future_to_promise(async move {
            let result = local.run(claim).await;
            local.run.borrow_mut().take();
            result
        });
        *self.run.borrow_mut() = Some(run.clone());
        run
    }

    fn pause(&self) -> Promise {
        self.driver.pause();
        let run = self.run.borrow().clone();
        future_to_promise(async move {
            if let Some(run) = run {
                let _ = JsFuture::from(run).await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    fn cancel(self: Rc<Self>) -> Promise {
        self.cancelled.set(true);
        let paused = self.pause();
        future_to_promise(async move {
            JsFuture::from(paused).await?;
            self.cancelled.set(false);
            // Its own run has ended; another object's (or tab's) is LOCKED.
            let _lock = self.lock().await.map_err(to_js)?;
            self.driver.remove().await.map_err(to_js)?;
            self.state.set("idle");
            Ok(JsValue::UNDEFINED)
        })
    }

    fn set_url(&self, url: &str) -> Result<(), Error> {
        self.driver.set_url(&absolute_url(url)?)
    }

    fn blob(self: Rc<Self>) -> Promise {
        // A reader's lock: the record and the pieces assemble reads are one
        // view, never half of a re-download (a writer holding it: LOCKED).
        let claim = DownloadLock::claim_read(&self.driver.options().id);
        future_to_promise(async move {
            let _lock = claim.map_err(to_js)?.acquire(&[]).await.map_err(to_js)?;
            let blob: Blob = self.driver.assemble().await.map_err(to_js)?;
            Ok(blob.into())
        })
    }

    fn id(&self) -> String {
        self.driver.options().id.clone()
    }
    fn url(&self) -> String {
        self.driver.url()
    }
    fn total(&self) -> Option<f64> {
        self.driver.total().map(|t| t as f64)
    }
    fn received(&self) -> f64 {
        self.driver.received() as f64
    }
    fn state(&self) -> String {
        self.state.get().to_string()
    }
    fn filename(&self) -> String {
        self.driver.filename()
    }
    fn store(&self) -> String {
        self.backend.name()
    }
    fn resumable(&self) -> Option<bool> {
        self.driver.resumable()
    }
    fn handlers(&self) -> &Handlers {
        &self.handlers
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
