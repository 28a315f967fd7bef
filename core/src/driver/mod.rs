//! The download driver: plans ranges, runs N connections, checks every
//! response against the record, stores pieces, and restarts when the file
//! on the server changed. It does no I/O of its own: the transport, the store
//! and the clock are passed in.
//!
//! A run is a sequence of *rounds*. While the length of the file or its range
//! support is unknown, or the stored bytes are not yet proven to be the
//! server's file, a round begins with one connection (the probe: a GET of
//! the first missing block, never a HEAD); the others join it as soon as its
//! response head makes the file known, not after its body (for a store that
//! takes whole bodies, once its first bytes also show the network's speed:
//! `pace::JUDGE_MS`). A round ends when there is nothing left to claim, when
//! `pause()` or `suspend()` is called, or when one connection fails or finds
//! the file changed (then every other connection stops, keeping what it
//! received).
//!
//! A `200` in reply to a Range request means the server ignores ranges (or,
//! with `If-Range`, that the file changed): the stored bytes are discarded
//! (never spliced) and that same response is streamed from byte 0.
//!
//! A run that starts with stored bytes proves them before adding to them: a
//! strong ETag that matches proves them; otherwise samples of the stored
//! bytes are fetched again and compared (`verify_stored`), and again once
//! every byte is stored. A response's validators enter the record only
//! after that (`response::learn`).
//!
//! One idea per file, each an `impl` of [`Driver`]: this one is the
//! public face (open, run, pause, the record); `round` runs rounds and their
//! connections; `request` sends one request and reads its body; `pace`
//! decides whether blocks are taken whole; `proof`
//! proves stored bytes; `commit` stores a piece and its record; `hashing`
//! checks `integrity` as the file is stored.

mod commit;
mod hashing;
mod pace;
mod proof;
mod request;
mod round;

use super::clock::Clock;
use super::error::{Error, ServerError, StoreError, StoreErrorKind};
use super::filename;
use super::integrity::{self, Expected};
use super::options::{OnServerChange, Options};
use super::plan::Plan;
use super::progress::{Meter, Progress};
use super::range::ByteRange;
use super::record::{Record, RecordError};
use super::response::{self, Checked};
use super::signal::{join_all, race, Signal};
use super::store::Store;
use super::transport::{Body, Chunk, Request, Response, ResponseHead, Transport};
use super::validator::{Change, EntityTag, Validators};
use super::writers::{self, Running};
use futures_util::future::{join, Either};
use futures_util::lock::Mutex;
use pace::Pace;
pub use pace::WHOLE_BLOCK_MS;
use std::cell::{Cell, RefCell};

/// How a run ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    Paused,
}

/// What the driver tells the application while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// At most every [`PROGRESS_INTERVAL_MS`], and once when a run ends.
    Progress(Progress),
    /// Stored bytes were discarded and the download started over.
    Restarted(RestartReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartReason {
    /// The file on the server is not the one the stored bytes came from.
    Changed(Change),
    /// The server answered a Range request with the whole file.
    RangesIgnored,
}

pub const PROGRESS_INTERVAL_MS: u64 = 100;
const BACKOFF_BASE_MS: u64 = 500;
const BACKOFF_MAX_MS: u64 = 30_000;
/// Restarts in one run before giving up on a server whose file keeps changing.
const MAX_RESTARTS: u32 = 3;
/// Bytes read back per step when a finished file is hashed: memory stays
/// small whatever the file's size.
const VERIFY_STEP: u64 = 4 << 20;
/// Stored bytes fetched again at the end of what is stored, to check a
/// file that has no strong ETag (the proof of stored bytes).
pub const OVERLAP: u64 = 64 << 10;
/// Stored bytes fetched again at its start and at a random place.
pub const SAMPLE: u64 = 4 << 10;
/// Rounds in a row that change nothing before the run calls it a bug; real
/// runs never have more than one or two.
const MAX_IDLE_ROUNDS: u32 = 100;

type ChunkOf<T> = <<T as Transport>::Body as Body>::Chunk;

/// Where a download is in its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// `begin` was called; `run` has not started yet.
    Begun,
    Running,
}

pub struct Driver<T: Transport, S, K> {
    transport: T,
    store: S,
    clock: K,
    options: Options,
    /// Where requests go now (`set_url` replaces an expired signed URL).
    url: RefCell<String>,
    state: RefCell<State>,
    phase: Cell<Phase>,
    /// This object's claim on the id while it runs ([`writers`]).
    running: RefCell<Option<Running>>,
    /// Fired to stop every connection of the current round.
    halt: RefCell<Signal>,
    /// Fired once the file is known and the stored bytes proven: in a round
    /// begun with the probe alone, the other connections join it then.
    known: RefCell<Signal>,
    pause_requested: Cell<bool>,
    /// Offline: the run holds still (keeping its promise) until `resume`.
    suspended: Cell<bool>,
    wake: RefCell<Signal>,
    /// The stored bytes are known to belong to the file the server has now.
    proven: Cell<bool>,
    /// ... and, with no strong ETag, were sampled again once all were stored.
    proven_at_end: Cell<bool>,
    /// A body whose encoding is hidden came exactly as long as its
    /// Content-Range in this run: the server sends ranges as they are, so
    /// a cut-off body's bytes are the file's ([`Driver::read_kept`]).
    identity_seen: Cell<bool>,
    /// Requests sent in this run, for `max_requests`.
    requests: Cell<u32>,
    /// One record saved at a time, so each claims every piece stored before
    /// it (and, for stores that write one piece at a time, one write).
    commit_lock: Mutex<()>,
    discarded: RefCell<Option<RecordError>>,
    /// The server's `Repr-Digest` for the file being downloaded, if it sent one.
    repr_digest: RefCell<Option<Expected>>,
    /// Whether blocks are taken whole.
    pace: Pace,
    /// The stored file hashed from its start so far, for `integrity`.
    hashed: RefCell<Option<Hashed>>,
    /// Fired (and replaced) by every commit: stored bytes for `hash_behind`.
    committed: RefCell<Signal>,
}

/// The digests of the stored file's first `at` bytes, hashed while the
/// download runs, so that completion has only the rest to read back.
struct Hashed {
    expected: Vec<Expected>,
    check: integrity::Check,
    at: u64,
}

struct State {
    record: Record,
    plan: Plan,
    /// Bytes received and not yet committed (they count in progress).
    unsaved: u64,
    meter: Meter,
    last_emit: Option<u64>,
    rng: u64,
}

enum RoundEnd<B> {
    /// Nothing left to claim at this width.
    Ran,
    Halted,
    Failed(Error),
    /// A whole-file stream failed part-way; try again after a backoff.
    Retry(Error),
    Restart(RestartReason, Option<Response<B>>),
}

enum Fetched<B> {
    Progress,
    Halted,
    Failed(Error),
    Restart(RestartReason, Option<Response<B>>),
}

enum BodyEnd {
    /// Everything asked for arrived.
    Done,
    /// The body ended cleanly, early.
    Ended,
    Halted,
    /// The body failed or stalled.
    Broken(Error),
    /// The body is not the range its Content-Range announced (a compression
    /// undone behind a hidden Content-Encoding): nothing of it is stored.
    Wrong(Error),
}

impl<T, S, K> Driver<T, S, K>
where
    T: Transport,
    S: Store<Chunk = ChunkOf<T>>,
    K: Clock,
{
    /// Opens the download `options.id`, resuming from its stored record if
    /// there is one. A record that cannot be trusted is deleted with its
    /// pieces; [`Driver::discarded_record`] says why.
    pub async fn open(transport: T, store: S, clock: K, options: Options) -> Result<Self, Error> {
        options.validate()?;
        let driver = Self {
            pace: Pace::new(options.block_size),
            url: RefCell::new(options.url.clone()),
            state: RefCell::new(State {
                record: Record::new(&options.id, &options.url, clock.now_ms()),
                plan: Plan::default(),
                unsaved: 0,
                meter: Meter::default(),
                last_emit: None,
                rng: clock.seed() | 1,
            }),
            transport,
            store,
            clock,
            options,
            phase: Cell::new(Phase::Idle),
            running: RefCell::new(None),
            halt: RefCell::new(Signal::new()),
            known: RefCell::new(Signal::new()),
            pause_requested: Cell::new(false),
            suspended: Cell::new(false),
            wake: RefCell::new(Signal::new()),
            proven: Cell::new(false),
            proven_at_end: Cell::new(false),
            identity_seen: Cell::new(false),
            requests: Cell::new(0),
            commit_lock: Mutex::new(()),
            discarded: RefCell::new(None),
            repr_digest: RefCell::new(None),
            hashed: RefCell::new(None),
            committed: RefCell::new(Signal::new()),
        };
        driver.load().await?;
        Ok(driver)
    }

    /// Reads the stored record: what another download object (in this page
    /// or an earlier one) stored is the truth, not this object's memory.
    /// `true` if a record was stored.
    async fn load(&self) -> Result<bool, Error> {
        let id = &self.options.id;
        let now = self.clock.now_ms();
        let stored = self.store.load(id).await?;
        let found = stored.is_some();
        let mut record = match stored {
            None => Record::new(id, &self.url(), now),
            Some(bytes) => match Record::decode(&bytes) {
                Ok(record) if record.id == *id => record,
                // Written by a newer resumable-fetch: never deleted unread.
                Err(RecordError::UnknownVersion(version)) => {
                    return Err(StoreError::new(
                        StoreErrorKind::Corrupt,
                        format!("{}; update resumable-fetch to continue it, or remove the download to start over", RecordError::UnknownVersion(version)),
                    )
                    .into())
                }
                found => {
                    let why = found
                        .err()
                        .unwrap_or(RecordError::Corrupt("stored under another id"));
                    self.store.remove(id).await?;
                    *self.discarded.borrow_mut() = Some(why);
                    Record::new(id, &self.url(), now)
                }
            },
        };
        record.url = self.url();
        // With nothing stored there is nothing to protect: forget what an
        // earlier run learned, so a file changed since is simply the file.
        if record.pieces.is_empty() && !record.complete {
            record.validators = Validators::default();
        }
        self.state.borrow_mut().record = record;
        Ok(found)
    }

    /// Saves the record as loaded before anything is written. A store may
    /// have trimmed it to the data it holds (OPFS, the file stores: a write
    /// lost before it reached the disk, a data file deleted); were the old
    /// claim left on disk, new writes past the trimmed end would make it look
    /// backed again after a crash, holes included.
    async fn persist_loaded(&self) -> Result<(), Error> {
        let record = self.state.borrow().record.encode();
        Ok(self.store.save_record(&self.options.id, &record).await?)
    }

    /// The options the download was opened with (see [`Driver::url`]).
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Where requests go now.
    pub fn url(&self) -> String {
        self.url.borrow().clone()
    }

    /// Sends the next requests to `url`, e.g. a fresh signed URL after the
    /// old one expired. The stored bytes are checked again, as on any
    /// resume, before anything from the new URL is added to them.
    pub fn set_url(&self, url: &str) -> Result<(), Error> {
        if url.is_empty() {
            return Err(Error::invalid("url", "it is empty"));
        }
        *self.url.borrow_mut() = url.to_string();
        self.state.borrow_mut().record.url = url.to_string();
        if self.state.borrow().record.pieces.is_empty() {
            return Ok(());
        }
        self.proven.set(false);
        self.halt.borrow().fire(); // a running round restarts, proving first
        Ok(())
    }

    /// A copy of the current record.
    pub fn record(&self) -> Record {
        self.state.borrow().record.clone()
    }

    /// Bytes durably stored.
    pub fn received(&self) -> u64 {
        self.state.borrow().record.received()
    }

    pub fn total(&self) -> Option<u64> {
        self.state.borrow().record.total()
    }

    pub fn is_complete(&self) -> bool {
        self.state.borrow().record.complete
    }

    pub fn is_running(&self) -> bool {
        self.phase.get() != Phase::Idle
    }

    /// Whether the server honours Range requests; `None` until a response
    /// (or stored bytes) tells.
    pub fn resumable(&self) -> Option<bool> {
        let state = self.state.borrow();
        let record = &state.record;
        let known = record.resumable
            || !record.pieces.is_empty()
            || record.validators != Validators::default();
        known.then_some(record.resumable)
    }

    /// Why a stored record was discarded when the download was opened (or
    /// a run reloaded it).
    pub fn discarded_record(&self) -> Option<RecordError> {
        self.discarded.borrow().clone()
    }

    /// The name to save under (see [`filename::choose`]).
    pub fn filename(&self) -> String {
        let state = self.state.borrow();
        filename::choose(
            self.options.filename.as_deref(),
            state.record.server_filename.as_deref(),
            &self.url.borrow(),
        )
    }

    /// Marks the download running now, for a caller that polls [`run`] only
    /// later (as a JS promise does): a `pause()` in between then counts.
    /// [`run`] does it itself otherwise.
    ///
    /// [`run`]: Driver::run
    pub fn begin(&self) -> Result<(), Error> {
        if self.phase.get() != Phase::Idle {
            return Err(already_running());
        }
        *self.running.borrow_mut() = Some(Running::claim(&self.options.id)?);
        self.phase.set(Phase::Begun);
        self.pause_requested.set(false);
        // A pause while offline fired the wake signal: a run begun still
        // offline must wait for a new one, not spin on the old.
        if self.suspended.get() {
            *self.wake.borrow_mut() = Signal::new();
        }
        Ok(())
    }

    /// Undoes [`Driver::begin`] when the run will not happen after all
    /// (e.g. another tab holds the download).
    pub fn abandon(&self) {
        if self.phase.get() == Phase::Begun {
            self.phase.set(Phase::Idle);
            self.running.borrow_mut().take();
        }
    }

    /// Downloads until complete, paused or failed. Every piece received is
    /// stored before this returns, whatever the outcome.
    pub async fn run(&self, on_event: &dyn Fn(&Event)) -> Result<Outcome, Error> {
        match self.phase.get() {
            Phase::Idle => self.begin()?,
            Phase::Begun => {}
            Phase::Running => return Err(already_running()),
        }
        self.phase.set(Phase::Running);
        self.requests.set(0);
        let _idle = IdleOnDrop(&self.phase, &self.running);
        let result = async {
            if self.load().await? {
                self.persist_loaded().await?;
            }
            // Another tab may have changed the stored file since the last run.
            self.hashed.borrow_mut().take();
            self.proven
                .set(self.state.borrow().record.pieces.is_empty());
            self.proven_at_end.set(false);
            self.identity_seen.set(false);
            self.drive(on_event).await
        }
        .await;
        self.emit(on_event, true);
        result
    }

    /// Stops the run at the next await; received bytes are stored first.
    pub fn pause(&self) {
        if self.is_running() {
            self.pause_requested.set(true);
            self.halt.borrow().fire();
            self.wake.borrow().fire();
        }
    }

    /// The network is gone: stops every connection (storing what arrived)
    /// and holds the run, without spending retries, until [`Driver::resume`].
    pub fn suspend(&self) {
        if !self.suspended.replace(true) {
            *self.wake.borrow_mut() = Signal::new();
            self.halt.borrow().fire();
        }
    }

    /// The network is back: a suspended run continues.
    pub fn resume(&self) {
        if self.suspended.replace(false) {
            self.wake.borrow().fire();
        }
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended.get()
    }

    /// The completed file, as stored now: another object (or tab) may have
    /// downloaded the id again since this one last looked.
    pub async fn assemble(&self) -> Result<S::Assembled, Error> {
        if !self.is_running() {
            self.load().await?;
        }
        self.check_stored_integrity().await?;
        let pieces: Vec<ByteRange> = {
            let state = self.state.borrow();
            if !state.record.complete {
                return Err(Error::InvalidState(
                    "the download is not complete; call start() and wait for 'complete'".into(),
                ));
            }
            state.record.pieces.iter().collect()
        };
        Ok(self.store.assemble(&self.options.id, &pieces).await?)
    }

    /// Deletes everything stored for this download. Not while running.
    pub async fn remove(&self) -> Result<(), Error> {
        if self.is_running() {
            return Err(Error::InvalidState(
                "pause the download before removing it".into(),
            ));
        }
        // Another object runs it: its pieces are not this one's to delete.
        if writers::is_running(&self.options.id) {
            return Err(Error::Locked {
                id: self.options.id.clone(),
            });
        }
        self.store.remove(&self.options.id).await?;
        let now = self.clock.now_ms();
        self.state.borrow_mut().record = Record::new(&self.options.id, &self.url(), now);
        Ok(())
    }

    /// Reports progress, at most every [`PROGRESS_INTERVAL_MS`] unless forced.
    fn emit(&self, on_event: &dyn Fn(&Event), force: bool) {
        let now = self.clock.now_ms();
        let progress = {
            let mut state = self.state.borrow_mut();
            let recent = state
                .last_emit
                .is_some_and(|t| now.saturating_sub(t) < PROGRESS_INTERVAL_MS);
            if recent && !force {
                return;
            }
            state.last_emit = Some(now);
            let received = state.record.received() + state.unsaved;
            let total = state.record.total();
            state.meter.sample(now, received, total)
        };
        // No borrow is held: the callback may call back into the download.
        on_event(&Event::Progress(progress));
    }
}

/// Every record in `store`; records that cannot be read are skipped.
pub async fn list<S: Store>(store: &S) -> Result<Vec<Record>, Error> {
    let records = store.list().await?;
    Ok(records
        .iter()
        .filter_map(|bytes| Record::decode(bytes).ok())
        .collect())
}

fn already_running() -> Error {
    Error::InvalidState("the download is already running; wait for its start() to settle".into())
}

fn ended_early() -> Error {
    Error::Network("the response ended before the bytes it announced".into())
}

/// xorshift64*: jitter needs spread, not cryptographic randomness.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Ends a run however its future ends (dropped mid-way included): idle,
/// and the id free for another object.
struct IdleOnDrop<'a>(&'a Cell<Phase>, &'a RefCell<Option<Running>>);

impl Drop for IdleOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(Phase::Idle);
        self.1.borrow_mut().take();
    }
}
