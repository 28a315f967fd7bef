//! One simulated run of a scenario: the real driver over the scripted
//! server and the simulator's store, polled one step at a time, with the
//! scenario's events applied at their steps and the invariants checked
//! after every step.

use crate::scenario::{Event, Scenario, Validators};
use crate::scripted::{Ranges, ScriptedTransport, Server, VirtualClock};
use crate::store::SimStore;
use fault_server::fill;
use resumable_fetch::core::integrity::parse_integrity;
use resumable_fetch::core::range::ByteRange;
use resumable_fetch::core::record::Record;
use resumable_fetch::core::{Driver, Error, OnServerChange, Options, Outcome};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

type Dl = Driver<ScriptedTransport, SimStore, VirtualClock>;

const URL: &str = "https://files.example/data.bin";
const OTHER_URL: &str = "https://mirror.example/data.bin?signed=2";
/// Times the user calls `start()` (after a pause, an error or a reload).
const SESSIONS: u32 = 12;
/// Polls one session may take before it counts as a hang: a run of a few
/// blocks takes hundreds, with every retry and backoff.
const MAX_STEPS: u32 = 50_000;

/// What broke, in words.
pub type Violation = String;

/// Steps the network stays away after `Offline` when no `Online` comes.
const OFFLINE_STEPS: u32 = 300;

/// A version of the server's file.
struct Version {
    size: u64,
    bytes: Vec<u8>,
}

impl Version {
    fn new(seed: u64, size: u64) -> Self {
        let mut bytes = vec![0; size as usize];
        fill(seed, 0, &mut bytes);
        Self { size, bytes }
    }
}

struct World<'a> {
    scenario: &'a Scenario,
    server: Rc<Server>,
    store: SimStore,
    /// Every version the server has had: a stored piece holds bytes of one.
    versions: Vec<Version>,
    step: u32,
    /// The next event to apply.
    next_event: usize,
    /// Data loss waiting for the next moment nothing runs.
    lose_data: bool,
    /// Stale blob requests waiting for the next moment nothing runs.
    stale_blobs: u32,
    /// When the network comes back by itself after `Offline`.
    online_at: Option<u32>,
    /// `cancel()` was called: once the run ends, everything is deleted.
    cancel: bool,
    /// The run discarded stored bytes for a change it proved, or a second
    /// object removed them before the run began.
    discarded: Rc<Cell<bool>>,
}

enum Driven<T> {
    Done(T),
    Crashed,
}

/// Runs `scenario` and returns the first invariant it broke, if any.
pub fn run(scenario: &Scenario) -> Result<(), Violation> {
    let server = Server::new(scenario.size, scenario.content_seed);
    server.chunk.set(scenario.chunk);
    server.ranges.set(scenario.ranges);
    server.compress_ranges.set(scenario.compress_ranges);
    server.hide_content_encoding.set(scenario.cross_origin);
    server.decodes.set(scenario.decodes);
    server.etag.set(matches!(
        scenario.validators,
        Validators::Strong | Validators::Weak
    ));
    server
        .weak_etag
        .set(scenario.validators == Validators::Weak);
    server.last_modified.set(matches!(
        scenario.validators,
        Validators::Strong | Validators::LastModified
    ));
    for fault in &scenario.faults {
        server.fault(*fault);
    }
    let mut world = World {
        scenario,
        server,
        store: SimStore::new(scenario.layout),
        versions: vec![Version::new(scenario.content_seed, scenario.size)],
        step: 0,
        next_event: 0,
        lose_data: false,
        stale_blobs: 0,
        online_at: None,
        cancel: false,
        discarded: Rc::default(),
    };
    world.serve_digest();
    world.sessions()
}

impl World<'_> {
    fn options(&self) -> Options {
        let mut options = Options {
            connections: self.scenario.connections,
            retries: 3,
            ..Options::new(URL)
        };
        options.set_block_size(self.scenario.block);
        if self.scenario.fail_on_change {
            options.on_server_change = OnServerChange::Fail;
        }
        if self.scenario.integrity {
            let digest = crate::scripted::sha256_base64(&self.versions[0].bytes);
            options.integrity = parse_integrity(&format!("sha256-{digest}")).ok();
        }
        options
    }

    /// A `Repr-Digest` of the file served now, if the scenario sends one.
    fn serve_digest(&self) {
        if let Some(version) = self.versions.last().filter(|_| self.scenario.repr_digest) {
            let digest = crate::scripted::sha256_base64(&version.bytes);
            *self.server.repr_digest.borrow_mut() = Some(format!("sha-256=:{digest}:"));
        }
    }

    /// `cancel()` once its run ended: deleted, and nothing of it left.
    fn cancel(&mut self, dl: &Dl) -> Result<(), Violation> {
        self.cancel = false;
        match self.drive(dl.remove(), &mut |_| {})? {
            Driven::Done(Ok(())) => {
                if self.store.record_view(&Options::new(URL).id).is_some() {
                    return Err("a record is left after cancel()".into());
                }
                Ok(())
            }
            Driven::Done(Err(e)) => coded(&e),
            Driven::Crashed => Ok(()),
        }
    }

    /// The user's side: open, start, and start again after every pause,
    /// error or reload, until the download completes or the sessions run out.
    fn sessions(&mut self) -> Result<(), Violation> {
        // Objects that completed once, kept for `StaleBlob`.
        let mut completed: Vec<Rc<Dl>> = Vec::new();
        let mut current: Option<Rc<Dl>> = None;
        for _ in 0..SESSIONS {
            self.between_runs(&completed)?;
            let dl = match current.take() {
                Some(dl) => dl,
                None => match self.open()? {
                    Driven::Done(Ok(dl)) => Rc::new(dl),
                    Driven::Done(Err(e)) => {
                        coded(&e)?;
                        continue;
                    }
                    Driven::Crashed => continue,
                },
            };
            let received_before = self.stored_bytes();
            self.discarded.set(false);
            let versions_before = self.versions.len();
            let ended = self.start(&dl)?;
            self.trace(&ended);
            match ended {
                Driven::Crashed => {}
                Driven::Done(Ok(Outcome::Complete)) => {
                    self.check_complete(&dl)?;
                    completed.push(dl.clone());
                    current = Some(dl);
                }
                Driven::Done(Ok(Outcome::Paused)) => current = Some(dl),
                Driven::Done(Err(e)) => {
                    coded(&e)?;
                    // Stored bytes may go for a proven change (a restart), or
                    // when the server shows it ignores ranges.
                    let changed = self.versions.len() > versions_before
                        || self.discarded.replace(false)
                        || matches!(e.code(), "SERVER_CHANGED" | "INTEGRITY_MISMATCH")
                        || self.scenario.integrity
                        || self.scenario.ranges == Ranges::Ignored;
                    let received = self.stored_bytes();
                    if received < received_before && !changed && !self.lose_data {
                        return Err(format!(
                            "a run that failed ({e}) lost stored bytes: {received_before} -> {received}"
                        ));
                    }
                    current = Some(dl);
                }
            }
            // A cancel() dies with its process; otherwise it deletes now.
            match current.take().filter(|_| self.cancel) {
                Some(dl) => self.cancel(&dl)?,
                None => self.cancel = false,
            }
            self.check_record()?;
        }
        Ok(())
    }

    /// With `SIM_TRACE` set, how each session ended.
    fn trace(&self, ended: &Driven<Result<Outcome, Error>>) {
        if std::env::var_os("SIM_TRACE").is_some() {
            let how = match ended {
                Driven::Done(result) => format!("{result:?}"),
                Driven::Crashed => "crashed".into(),
            };
            println!("step {}: the run ended: {how}", self.step);
            for served in self.server.log.borrow_mut().drain(..) {
                println!("  served {served:?}");
            }
        }
    }

    /// The bytes the stored record claims, as a load sees it.
    fn stored_bytes(&self) -> u64 {
        let record = self.store.record_view(&Options::new(URL).id);
        record
            .and_then(|bytes| Record::decode(&bytes).ok())
            .map_or(0, |r| r.received())
    }

    /// What happens while nothing runs: lost data, and stale objects asked
    /// for the file.
    fn between_runs(&mut self, completed: &[Rc<Dl>]) -> Result<(), Violation> {
        let id = Options::new(URL).id;
        if std::mem::take(&mut self.lose_data) {
            self.store.lose_data(&id);
            if std::env::var_os("SIM_TRACE").is_some() {
                let view = self.store.record_view(&id).map(|b| Record::decode(&b));
                println!("lost the data; the record now: {view:?}");
            }
        }
        for _ in 0..std::mem::take(&mut self.stale_blobs) {
            let Some(old) = completed.first() else { break };
            match self.drive(old.assemble(), &mut |_| {})? {
                Driven::Done(Ok(bytes)) => {
                    if !self.versions.iter().any(|v| v.bytes == bytes) {
                        return Err(format!(
                            "blob() of an object opened earlier gave {} bytes that are no version of the file",
                            bytes.len()
                        ));
                    }
                }
                Driven::Done(Err(e)) => coded(&e)?,
                Driven::Crashed => {}
            }
        }
        Ok(())
    }

    fn open(&mut self) -> Result<Driven<Result<Dl, Error>>, Violation> {
        let open = Driver::open(
            ScriptedTransport(self.server.clone()),
            self.store.clone(),
            self.server.clock.clone(),
            self.options(),
        );
        self.drive(open, &mut |_| {})
    }

    fn start(&mut self, dl: &Dl) -> Result<Driven<Result<Outcome, Error>>, Violation> {
        let trace = std::env::var_os("SIM_TRACE").is_some();
        let discarded = self.discarded.clone();
        let on_event = |event: &resumable_fetch::core::Event| {
            if let resumable_fetch::core::Event::Restarted(_) = event {
                discarded.set(true);
            }
            if trace && !matches!(event, resumable_fetch::core::Event::Progress(_)) {
                println!("  event {event:?}");
            }
        };
        let run = dl.run(&on_event);
        let second = (self.server.clone(), self.store.clone(), self.options());
        self.drive(run, &mut |event| match event {
            // Before the run has begun, a removal is the user's to make.
            Event::SecondRemove if second_remove(&second.0, &second.1, &second.2) => {
                discarded.set(true)
            }
            Event::SecondRemove => {}
            Event::Pause | Event::Cancel => dl.pause(),
            Event::Offline => dl.suspend(),
            Event::Online => dl.resume(),
            Event::SetUrl => {
                let _ = dl.set_url(OTHER_URL);
            }
            _ => {}
        })
    }

    /// Polls `future` to its end, one step at a time, applying the events
    /// due at each step; `Crashed` when an event or the store crashed the
    /// process (the future is dropped: nothing more of it happens).
    fn drive<F: Future>(
        &mut self,
        future: F,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Driven<F::Output>, Violation> {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..MAX_STEPS {
            self.step += 1;
            while let Some(&(at, event)) = self.scenario.events.get(self.next_event) {
                if at > self.step {
                    break;
                }
                self.next_event += 1;
                if self.apply(event) {
                    return self.crashed();
                }
                on_event(event);
            }
            if self.online_at.is_some_and(|at| at <= self.step) {
                self.online_at = None;
                on_event(Event::Online);
            }
            let polled = future.as_mut().poll(&mut cx);
            self.check_record()?;
            if self.store.crashed.get() {
                return self.crashed();
            }
            if let Poll::Ready(out) = polled {
                return Ok(Driven::Done(out));
            }
        }
        Err(format!("a future did not settle within {MAX_STEPS} steps"))
    }

    fn crashed<T>(&mut self) -> Result<Driven<T>, Violation> {
        self.store.crashed.set(false);
        Ok(Driven::Crashed)
    }

    /// Applies the world's part of an event; true for a crash.
    fn apply(&mut self, event: Event) -> bool {
        match event {
            Event::Crash => return true,
            Event::Replace { seed, size } => {
                self.server.seed.set(seed);
                self.server.size.set(size);
                self.versions.push(Version::new(seed, size));
                self.serve_digest();
            }
            Event::Store(fault) => self.store.arm(fault),
            Event::LoseData => self.lose_data = true,
            Event::StaleBlob => self.stale_blobs += 1,
            Event::Cancel => self.cancel = true,
            Event::Offline => self.online_at = Some(self.step + OFFLINE_STEPS),
            Event::Online => self.online_at = None,
            Event::Pause | Event::SetUrl | Event::SecondRemove => {}
        }
        false
    }

    /// The stored record claims only stored bytes, each piece the bytes of
    /// one version of the file at that offset.
    fn check_record(&self) -> Result<(), Violation> {
        let id = Options::new(URL).id;
        let Some(bytes) = self.store.record_view(&id) else {
            return Ok(());
        };
        let record = Record::decode(&bytes).map_err(|e| format!("the stored record: {e}"))?;
        for piece in record.pieces.iter() {
            let Some(stored) = self.store.stored(&id, piece) else {
                return Err(format!("the record claims {piece}, which is not stored"));
            };
            if !self
                .versions
                .iter()
                .any(|v| slice(&v.bytes, piece) == Some(&stored[..]))
            {
                return Err(format!(
                    "at step {}: the record claims {piece}, whose stored bytes are no version of the file",
                    self.step
                ));
            }
        }
        Ok(())
    }

    /// A completed download is one version of the server's file, whole.
    fn check_complete(&mut self, dl: &Dl) -> Result<(), Violation> {
        let assembled = match self.drive(dl.assemble(), &mut |_| {})? {
            Driven::Done(result) => {
                result.map_err(|e| format!("blob() of a completed download: {e}"))?
            }
            Driven::Crashed => return Ok(()),
        };
        if self.versions.iter().any(|v| v.bytes == assembled) {
            return Ok(());
        }
        let nearest = self
            .versions
            .iter()
            .map(|v| {
                let bytes = &v.bytes;
                let first = bytes.iter().zip(&assembled).position(|(a, b)| a != b);
                (v.size, first)
            })
            .collect::<Vec<_>>();
        Err(format!(
            "completed with {} bytes that are no version of the file (versions: size, first differing byte: {nearest:?})",
            assembled.len()
        ))
    }
}

/// A second object opens the id and removes it, while the first runs (it
/// must be refused: `LOCKED`); true if it removed. Polled a bounded number of times: a store
/// that crashed or stalls leaves it unsettled, as a dead tab would.
fn second_remove(server: &Rc<Server>, store: &SimStore, options: &Options) -> bool {
    let second = settle(Driver::open(
        ScriptedTransport(server.clone()),
        store.clone(),
        server.clock.clone(),
        options.clone(),
    ));
    match second {
        Some(Ok(second)) => matches!(settle(second.remove()), Some(Ok(()))),
        _ => false,
    }
}

/// Polls `future` up to a bound; its output if it settled.
fn settle<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    (0..1_000).find_map(|_| match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    })
}

fn slice(bytes: &[u8], piece: ByteRange) -> Option<&[u8]> {
    bytes.get(piece.start as usize..piece.end as usize)
}

/// An error ends a run only with a stable code; INTERNAL is a bug.
fn coded(error: &Error) -> Result<(), Violation> {
    match error.code() {
        "INTERNAL" => Err(format!("an internal error: {error}")),
        _ => Ok(()),
    }
}
