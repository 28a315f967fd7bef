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
//! [`JUDGE_PARTS`]). A round ends when there is nothing left to claim, when
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
/// When the last block to arrive came at least this fast (a block in this
/// many milliseconds), connections take their next block whole, and of
/// `Options::whole_block_size`, where the store wants that
/// ([`Store::takes_whole_bodies`]): in a browser the body then never passes
/// through the page (about 1.5× the throughput on a fast network).
/// The price: progress moves a block at a time, and a body that fails
/// part-way keeps nothing, so slower networks stream every block.
pub const BULK_MS: u64 = 1_000;
/// Before any block has come, the connections joining the probe give it up
/// to `BULK_MS / JUDGE_PARTS` to show the network's speed: if the first
/// `1 / JUDGE_PARTS` of its block comes at the [`BULK_MS`] pace, they take
/// their first blocks whole too (on a fast network only the probe's block
/// passes through the page); otherwise they stream, having lost that moment.
const JUDGE_PARTS: u64 = 8;

type ChunkOf<T> = <<T as Transport>::Body as Body>::Chunk;

/// Where a download is in its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// `begin` was called; `run` has not started yet.
    Begun,
    Running,
}

pub struct Download<T: Transport, S, K> {
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
    proven_whole: Cell<bool>,
    /// A body whose encoding is hidden came exactly as long as its
    /// Content-Range in this run: the server sends ranges as they are, so
    /// a cut-off body's bytes are the file's ([`Download::read_kept`]).
    identity_seen: Cell<bool>,
    /// Requests sent in this run, for `max_requests`.
    requests: Cell<u32>,
    /// One record saved at a time, so each claims every piece stored before
    /// it (and, for stores that write one piece at a time, one write).
    commit_lock: Mutex<()>,
    discarded: RefCell<Option<RecordError>>,
    /// The server's `Repr-Digest` for the file being downloaded, if it sent one.
    repr_digest: RefCell<Option<Expected>>,
    /// The last block to arrive came fast enough to take the next ones whole ([`BULK_MS`]).
    fast: Cell<bool>,
    /// Fired when `fast` turns true in the current round ([`JUDGE_PARTS`]).
    fast_seen: RefCell<Signal>,
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

impl<T, S, K> Download<T, S, K>
where
    T: Transport,
    S: Store<Chunk = ChunkOf<T>>,
    K: Clock,
{
    /// Opens the download `options.id`, resuming from its stored record if
    /// there is one. A record that cannot be trusted is deleted with its
    /// pieces; [`Download::discarded_record`] says why.
    pub async fn open(transport: T, store: S, clock: K, options: Options) -> Result<Self, Error> {
        options.validate()?;
        let download = Self {
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
            proven_whole: Cell::new(false),
            identity_seen: Cell::new(false),
            requests: Cell::new(0),
            commit_lock: Mutex::new(()),
            discarded: RefCell::new(None),
            repr_digest: RefCell::new(None),
            fast: Cell::new(false),
            fast_seen: RefCell::new(Signal::new()),
            hashed: RefCell::new(None),
            committed: RefCell::new(Signal::new()),
        };
        download.load().await?;
        Ok(download)
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

    /// The options the download was opened with (see [`Download::url`]).
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
    /// [`run`]: Download::run
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

    /// Undoes [`Download::begin`] when the run will not happen after all
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
            self.proven_whole.set(false);
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
    /// and holds the run, without spending retries, until [`Download::resume`].
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

    async fn drive(&self, on_event: &dyn Fn(&Event)) -> Result<Outcome, Error> {
        let mut carried = None;
        let mut restarts = 0;
        let mut failures = 0;
        let mut idle_rounds = 0;
        let received_before = self.received();
        loop {
            if self.pause_requested.get() {
                return Ok(Outcome::Paused);
            }
            if self.suspended.get() {
                let wake = self.wake.borrow().clone();
                wake.wait().await;
                continue;
            }
            *self.halt.borrow_mut() = Signal::new();
            let proof = self.needs_final_proof();
            if !proof && self.finish_if_complete().await? {
                return Ok(Outcome::Complete);
            }
            if self.out_of_requests() {
                return Ok(Outcome::Paused);
            }
            let before = self.footprint();
            let end = match carried.take() {
                Some(response) => self.stream_whole(response, on_event).await,
                None if proof => self.final_proof().await,
                None => self.run_connections(on_event).await,
            };
            match end {
                RoundEnd::Ran | RoundEnd::Halted => {}
                RoundEnd::Failed(e) if self.received() == received_before => {
                    return Err(self.diagnose(e).await)
                }
                RoundEnd::Failed(e) => return Err(e),
                RoundEnd::Retry(e) => {
                    failures += 1;
                    if failures > self.options.retries {
                        return Err(e);
                    }
                    let halt = self.halt.borrow().clone();
                    self.backoff(failures, &halt).await;
                }
                RoundEnd::Restart(reason, response) => {
                    restarts += 1;
                    if restarts > MAX_RESTARTS + self.options.retries {
                        return Err(match reason {
                            RestartReason::Changed(change) => {
                                ServerError::ChangedRepeatedly(change).into()
                            }
                            RestartReason::RangesIgnored => Error::Network(
                                "the server kept failing while sending the whole file".into(),
                            ),
                        });
                    }
                    self.restart(reason, on_event).await?;
                    self.proven.set(true);
                    carried = response;
                }
            }
            if self.footprint() == before && carried.is_none() && !self.suspended.get() {
                idle_rounds += 1;
                if idle_rounds > MAX_IDLE_ROUNDS {
                    return Err(Error::Internal("the download made no progress".into()));
                }
            } else {
                idle_rounds = 0;
            }
        }
    }

    /// A run that stored nothing and failed on the network: if a request
    /// without `Range` gets through, it is the range responses that fail
    /// (Chromium refuses a compressed 206 outright), not the network.
    async fn diagnose(&self, error: Error) -> Error {
        let paused = self.pause_requested.get() || self.suspended.get();
        if !matches!(error, Error::Network(_)) || paused {
            return error;
        }
        // The failed round fired its halt; a pause from now on fires this one.
        let halt = Signal::new();
        *self.halt.borrow_mut() = halt.clone();
        match self.send(None, &halt).await {
            // Dropped unread: the request is aborted.
            Ok(response) if (200..300).contains(&response.head.status) => {
                ServerError::RangesFail.into()
            }
            _ => error,
        }
    }

    /// What a round can change: stored bytes, what is known, whether proven.
    fn footprint(&self) -> (u64, Option<u64>, bool, bool, bool) {
        let state = self.state.borrow();
        (
            state.record.received(),
            state.record.total(),
            state.record.resumable,
            self.proven.get(),
            self.proven_whole.get(),
        )
    }

    /// Every byte is stored, from a server with no strong ETag: a change
    /// during the run may have gone unseen (a weak ETag or Last-Modified
    /// may stay, and with neither nor a length nothing shows it), so the
    /// stored bytes are sampled against the server once more.
    fn needs_final_proof(&self) -> bool {
        let state = self.state.borrow();
        let record = &state.record;
        let strong = matches!(record.validators.etag, Some(EntityTag::Strong(_)));
        !record.complete
            && !strong
            && record.resumable
            && !self.proven_whole.get()
            && !record.pieces.is_empty()
            && record.total().is_some_and(|t| record.pieces.covers(t))
    }

    /// The last proof before completion, as a round.
    async fn final_proof(&self) -> RoundEnd<T::Body> {
        let halt = self.halt.borrow().clone();
        match self.verify_stored(&halt).await {
            Ok(()) | Err(Fetched::Progress) => {
                self.proven_whole.set(true);
                RoundEnd::Ran
            }
            Err(Fetched::Halted) => RoundEnd::Halted,
            Err(Fetched::Failed(e)) if e.is_transient() => RoundEnd::Retry(e),
            Err(Fetched::Failed(e)) => RoundEnd::Failed(e),
            Err(Fetched::Restart(reason, response)) => RoundEnd::Restart(reason, response),
        }
    }

    /// One round of connections. While the file's length or range support
    /// is unknown, or the stored bytes unproven, the first connection (the
    /// probe) runs alone; the others join as soon as its response makes the
    /// file known, while it reads on, and stay out if it ends first. Where
    /// the store takes whole bodies they also give it a moment to show the
    /// network's speed ([`JUDGE_PARTS`]).
    async fn run_connections(&self, on_event: &dyn Fn(&Event)) -> RoundEnd<T::Body> {
        let halt = self.halt.borrow().clone();
        let known = Signal::new();
        if self.ready_for_all_connections() {
            known.fire();
        }
        *self.known.borrow_mut() = known.clone();
        let fast_seen = Signal::new();
        *self.fast_seen.borrow_mut() = fast_seen.clone();
        let judge = !known.is_fired() && self.store.takes_whole_bodies();
        let probe_ended = Signal::new();
        let done = Signal::new();
        let connection = |i| {
            let (halt, known, fast_seen, probe_ended) = (&halt, &known, &fast_seen, &probe_ended);
            async move {
                if i == 0 {
                    let end = self.connection(halt, on_event).await;
                    probe_ended.fire();
                    return end;
                }
                if let Either::Right(()) = race(known.wait(), probe_ended.wait()).await {
                    return RoundEnd::Ran;
                }
                if judge && !self.fast.get() {
                    let moment = self.clock.sleep(BULK_MS / JUDGE_PARTS);
                    race(fast_seen.wait(), race(moment, probe_ended.wait())).await;
                }
                self.connection(halt, on_event).await
            }
        };
        let connections = async {
            let ends = join_all((0..self.options.connections).map(connection)).await;
            done.fire();
            ends
        };
        let (ends, ()) = join(connections, self.hash_behind(&done)).await;
        let mut outcome = RoundEnd::Ran;
        for end in ends {
            match (&outcome, end) {
                (RoundEnd::Restart(..), _) => {}
                (_, end @ RoundEnd::Restart(..)) => outcome = end,
                (RoundEnd::Failed(_), _) => {}
                (_, end @ RoundEnd::Failed(_)) => outcome = end,
                (_, RoundEnd::Halted) => outcome = RoundEnd::Halted,
                _ => {}
            }
        }
        outcome
    }

    /// One connection: claims ranges and fetches them one after another,
    /// retrying transient failures with backoff.
    async fn connection(&self, halt: &Signal, on_event: &dyn Fn(&Event)) -> RoundEnd<T::Body> {
        let mut failures = 0;
        loop {
            if halt.is_fired() {
                return RoundEnd::Halted;
            }
            if self.out_of_requests() {
                return RoundEnd::Ran; // the run pauses when the others are done
            }
            // One decision for the claim's size and how its body is read: a
            // block of `whole_block_size` is never held in memory.
            let take_whole = self.fast.get() && self.store.takes_whole_bodies();
            let claim = {
                let block = match take_whole {
                    true => self.options.whole_block_size,
                    false => self.options.block_size,
                };
                let state = &mut *self.state.borrow_mut();
                state
                    .plan
                    .claim(&state.record.pieces, state.record.total(), block)
            };
            let Some(claim) = claim else {
                return RoundEnd::Ran;
            };
            let fetched = self.fetch(claim, take_whole, halt, on_event).await;
            self.state.borrow_mut().plan.release(claim);
            match fetched {
                Fetched::Progress => failures = 0,
                Fetched::Halted => return RoundEnd::Halted,
                Fetched::Failed(e) if e.is_transient() && failures < self.options.retries => {
                    failures += 1;
                    if !self.backoff(failures, halt).await {
                        return RoundEnd::Halted;
                    }
                }
                Fetched::Failed(e) => {
                    halt.fire();
                    return RoundEnd::Failed(e);
                }
                Fetched::Restart(reason, response) => {
                    halt.fire();
                    return RoundEnd::Restart(reason, response);
                }
            }
        }
    }

    /// The length and range support are known, and the stored bytes proven:
    /// every connection may run.
    fn ready_for_all_connections(&self) -> bool {
        let state = self.state.borrow();
        state.record.resumable && state.record.total().is_some() && self.proven.get()
    }

    /// `max_requests` were sent in this run.
    fn out_of_requests(&self) -> bool {
        self.options
            .max_requests
            .is_some_and(|limit| self.requests.get() >= limit)
    }

    /// A GET of `range`, with `If-Range` when a strong ETag is known. A
    /// response head that does not come within the stall timeout is a stall.
    /// Halted once `max_requests` were sent: the run pauses.
    async fn send(
        &self,
        range: Option<ByteRange>,
        halt: &Signal,
    ) -> Result<Response<T::Body>, Fetched<T::Body>> {
        if self.out_of_requests() {
            return Err(Fetched::Halted);
        }
        self.requests.set(self.requests.get() + 1);
        let if_range = match &self.state.borrow().record.validators.etag {
            Some(tag @ EntityTag::Strong(_)) if range.is_some() => Some(tag.as_header()),
            _ => None,
        };
        let request = Request {
            url: self.url(),
            range,
            if_range,
            headers: self.options.headers.clone(),
        };
        let stall = self.clock.sleep(self.options.stall_timeout_ms);
        match race(self.transport.send(&request), race(stall, halt.wait())).await {
            Either::Left(Ok(response)) => Ok(response),
            Either::Left(Err(e)) => Err(Fetched::Failed(e.into())),
            Either::Right(Either::Left(())) => Err(Fetched::Failed(self.stalled())),
            Either::Right(Either::Right(())) => Err(Fetched::Halted),
        }
    }

    /// Classifies a response against the record (which it does not change).
    fn check(&self, head: &ResponseHead, asked: ByteRange) -> Checked {
        response::check(head, asked, &self.state.borrow().record, &self.url())
    }

    /// What a change on the server means under `onServerChange`.
    fn changed(&self, change: Change, response: Option<Response<T::Body>>) -> Fetched<T::Body> {
        match self.options.on_server_change {
            OnServerChange::Restart => Fetched::Restart(RestartReason::Changed(change), response),
            OnServerChange::Fail => Fetched::Failed(ServerError::Changed(change).into()),
        }
    }

    /// Makes sure the stored bytes belong to the file a response came from
    /// before anything of it is stored or learned: `same` (a strong ETag
    /// matched) proves it, else the stored bytes are checked once per run.
    async fn prove(&self, same: bool, halt: &Signal) -> Result<(), Fetched<T::Body>> {
        if !same && !self.proven.get() {
            self.verify_stored(halt).await?;
        }
        self.proven.set(true);
        Ok(())
    }

    /// One ranged GET: check the response, read the body (whole if
    /// `take_whole` and the transport can), store what arrived.
    async fn fetch(
        &self,
        claim: ByteRange,
        take_whole: bool,
        halt: &Signal,
        on_event: &dyn Fn(&Event),
    ) -> Fetched<T::Body> {
        let sent_at = self.clock.now_ms();
        let mut response = match self.send(Some(claim), halt).await {
            Ok(response) => response,
            Err(fetched) => return fetched,
        };
        let body_range = match self.check(&response.head, claim) {
            Checked::Range { range, total, same } => {
                if let Err(fetched) = self.prove(same, halt).await {
                    return fetched;
                }
                self.learn(&response.head, total);
                range
            }
            Checked::EndOfFile { total, same } => {
                if let Err(fetched) = self.prove(same, halt).await {
                    return fetched;
                }
                self.learn(&response.head, Some(total));
                return Fetched::Progress;
            }
            Checked::Whole(None) => {
                return Fetched::Restart(RestartReason::RangesIgnored, Some(response))
            }
            Checked::Whole(Some(change)) => return self.changed(change, Some(response)),
            Checked::Changed(change) => return self.changed(change, None),
            Checked::Rejected(e) => return Fetched::Failed(e),
        };
        let Some(keep) = body_range.intersect(&claim) else {
            return Fetched::Failed(
                ServerError::WrongRange {
                    asked: claim,
                    got: body_range,
                }
                .into(),
            );
        };
        // A body the runtime may have decoded must be exactly as long as its
        // Content-Range (`read_kept`).
        let strict = response.head.content_encoding.is_hidden();
        let streamed = Cell::new(0);
        let count = |n| {
            self.count_received(n, on_event);
            streamed.set(streamed.get() + n);
            let judged = streamed.get().saturating_mul(JUDGE_PARTS) >= self.options.block_size;
            if judged && !self.fast.get() && self.came_fast(streamed.get(), sent_at) {
                self.set_fast(true);
            }
        };
        // Whole only when the body is exactly the claim: nothing to skip or leave.
        let whole = match take_whole && keep == body_range {
            true => self.read_whole(&mut response.body, keep.len(), halt).await,
            false => None,
        };
        let (chunks, got, end) = match whole {
            Some((chunks, got, end)) => {
                count(got);
                (chunks, got, end)
            }
            None => {
                let body = &mut response.body;
                self.read_kept(body, body_range, keep, strict, halt, &count)
                    .await
            }
        };
        drop(response); // aborts the request if the body is not finished
        let end = match (strict, end) {
            (true, BodyEnd::Ended) => BodyEnd::Wrong(too_short(body_range, got)),
            (_, end) => end,
        };
        self.set_fast(matches!(end, BodyEnd::Done) && self.came_fast(got, sent_at));
        let end = match end {
            // Cut off before this run saw the server send a range as it is:
            // kept only once a small range proves it does.
            BodyEnd::Broken(e) if strict && got > 0 && !self.identity_seen.get() => {
                match self.prove_identity(keep, halt).await {
                    true => BodyEnd::Broken(e),
                    false => BodyEnd::Wrong(e),
                }
            }
            BodyEnd::Halted if strict && got > 0 && !self.identity_seen.get() => {
                BodyEnd::Wrong(Error::Network("halted before its length was known".into()))
            }
            end => end,
        };
        let wrong = matches!(end, BodyEnd::Wrong(_));
        if got > 0 && !wrong {
            let piece = ByteRange {
                start: keep.start,
                end: keep.start + got,
            };
            if let Err(e) = self.commit(piece, chunks, on_event).await {
                return Fetched::Failed(e);
            }
        }
        match end {
            BodyEnd::Done => Fetched::Progress,
            BodyEnd::Halted => Fetched::Halted,
            BodyEnd::Wrong(_) if halt.is_fired() => Fetched::Halted,
            BodyEnd::Wrong(e) => Fetched::Failed(e),
            // Keep what arrived; the rest is claimed again.
            _ if got > 0 => Fetched::Progress,
            BodyEnd::Ended => Fetched::Failed(ended_early()),
            BodyEnd::Broken(e) => Fetched::Failed(e),
        }
    }

    /// Whether `got` bytes since `sent_at` came at a block per [`BULK_MS`] or
    /// faster (u128: no overflow whatever the sizes).
    fn came_fast(&self, got: u64, sent_at: u64) -> bool {
        let elapsed = self.clock.now_ms().saturating_sub(sent_at);
        u128::from(got) * u128::from(BULK_MS)
            >= u128::from(self.options.block_size) * u128::from(elapsed)
    }

    fn set_fast(&self, fast: bool) {
        self.fast.set(fast);
        if fast {
            self.fast_seen.borrow().fire();
        }
    }

    /// Fetches samples of the stored bytes again ([`Self::samples`]) and
    /// compares them with the ones stored: the proof, for a file with no
    /// strong ETag, that the server still has the file they came from.
    async fn verify_stored(&self, halt: &Signal) -> Result<(), Fetched<T::Body>> {
        for (piece, part) in self.samples() {
            self.verify_part(piece, part, halt).await?;
        }
        Ok(())
    }

    /// The stored parts a proof fetches again: the first [`SAMPLE`] bytes,
    /// [`SAMPLE`] bytes at a random place, and the last [`OVERLAP`] bytes.
    /// A file replaced by another differs nearly everywhere; a splice of
    /// two files differs at its start or its end.
    fn samples(&self) -> Vec<(ByteRange, ByteRange)> {
        let mut state = self.state.borrow_mut();
        let pieces: Vec<ByteRange> = state.record.pieces.iter().collect();
        let (Some(&first), Some(&last)) = (pieces.first(), pieces.last()) else {
            return Vec::new();
        };
        let random = pieces[(next_random(&mut state.rng) % pieces.len() as u64) as usize];
        let at = random.start + next_random(&mut state.rng) % random.len();
        let tail = ByteRange {
            start: last.end - last.len().min(OVERLAP),
            end: last.end,
        };
        let mut parts = vec![(last, tail)];
        // Under a request budget, the proof leaves one request to progress.
        let budget = self.options.max_requests.map_or(3, |n| n.saturating_sub(1));
        for (piece, start) in [(first, first.start), (random, at)] {
            if parts.len() as u32 >= budget {
                break;
            }
            let part = ByteRange {
                start,
                end: piece.end.min(start + SAMPLE),
            };
            if !parts
                .iter()
                .any(|(_, p)| p.start <= part.start && part.end <= p.end)
            {
                parts.insert(parts.len() - 1, (piece, part));
            }
        }
        parts
    }

    /// Fetches `part` of the stored `piece` again and compares.
    async fn verify_part(
        &self,
        piece: ByteRange,
        part: ByteRange,
        halt: &Signal,
    ) -> Result<(), Fetched<T::Body>> {
        let mut response = self.send(Some(part), halt).await?;
        let range = match self.check(&response.head, part) {
            Checked::Range { range, .. } if range.start <= part.start && range.end >= part.end => {
                range
            }
            Checked::Range { range: got, .. } => {
                return Err(Fetched::Failed(
                    ServerError::WrongRange { asked: part, got }.into(),
                ))
            }
            Checked::Whole(None) => {
                return Err(Fetched::Restart(
                    RestartReason::RangesIgnored,
                    Some(response),
                ))
            }
            Checked::Whole(Some(change)) => return Err(self.changed(change, Some(response))),
            Checked::Changed(change) => return Err(self.changed(change, None)),
            Checked::EndOfFile { total, .. } => {
                return Err(Fetched::Failed(
                    ServerError::Unsatisfiable {
                        asked: part,
                        total: Some(total),
                    }
                    .into(),
                ))
            }
            Checked::Rejected(e) => return Err(Fetched::Failed(e)),
        };
        // Bytes the runtime may have decoded are compared only once their
        // count proves they are the file's (as in `fetch`).
        let strict = response.head.content_encoding.is_hidden();
        let body = &mut response.body;
        let (chunks, _, end) = self
            .read_kept(body, range, part, strict, halt, &|_| {})
            .await;
        match end {
            BodyEnd::Done => {}
            BodyEnd::Halted => return Err(Fetched::Halted),
            BodyEnd::Ended => return Err(Fetched::Failed(ended_early())),
            BodyEnd::Broken(e) | BodyEnd::Wrong(e) => return Err(Fetched::Failed(e)),
        }
        let mut fetched = Vec::new();
        for chunk in &chunks {
            let bytes = chunk.bytes().await;
            fetched.extend(bytes.map_err(|why| Fetched::Failed(Error::Network(why)))?);
        }
        let stored = self
            .store
            .read(&self.options.id, piece, part)
            .await
            .map_err(|e| Fetched::Failed(e.into()))?;
        match fetched.iter().zip(&stored).position(|(a, b)| a != b) {
            None if fetched.len() == stored.len() => Ok(()),
            at => {
                let offset = part.start + at.unwrap_or(fetched.len().min(stored.len())) as u64;
                Err(self.changed(Change::Content { offset }, None))
            }
        }
    }

    /// Takes what the record lacks from a response of the proven file; once
    /// the file is known, every connection may run.
    fn learn(&self, head: &ResponseHead, total: Option<u64>) {
        response::learn(&mut self.state.borrow_mut().record, head, total);
        self.take_digest(head);
        if self.ready_for_all_connections() {
            self.known.borrow().fire();
        }
    }

    /// Keeps the first `Repr-Digest` of the file, to check at completion.
    /// A compressed response's digest is of the compressed bytes: not ours.
    fn take_digest(&self, head: &ResponseHead) {
        let identity = head
            .content_encoding
            .value()
            .is_none_or(|e| e.trim().eq_ignore_ascii_case("identity"));
        let mut kept = self.repr_digest.borrow_mut();
        if identity && kept.is_none() {
            *kept = head
                .repr_digest
                .value()
                .and_then(integrity::parse_repr_digest);
        }
    }

    /// Streams a whole-file (200) response from byte 0, storing a piece per
    /// block. The record was reset before.
    async fn stream_whole(
        &self,
        mut response: Response<T::Body>,
        on_event: &dyn Fn(&Event),
    ) -> RoundEnd<T::Body> {
        let total = response::learn_whole(&mut self.state.borrow_mut().record, &response.head);
        self.take_digest(&response.head);
        let halt = self.halt.borrow().clone();
        let mut offset = 0u64;
        let mut carry = None;
        loop {
            let want = total.map_or(self.options.block_size, |t| {
                (t - offset).min(self.options.block_size)
            });
            let count = |n| self.count_received(n, on_event);
            let (chunks, got, end) = self
                .read_body(&mut response.body, &mut carry, 0, want, &halt, &count)
                .await;
            if got > 0 {
                let piece = ByteRange {
                    start: offset,
                    end: offset + got,
                };
                if let Err(e) = self.commit(piece, chunks, on_event).await {
                    return RoundEnd::Failed(e);
                }
                offset += got;
            }
            match end {
                BodyEnd::Done if total == Some(offset) => return RoundEnd::Ran,
                BodyEnd::Done => {}
                BodyEnd::Ended if total.is_none() => {
                    // A clean end is the end when no length was announced.
                    self.state.borrow_mut().record.validators.total = Some(offset);
                    return RoundEnd::Ran;
                }
                BodyEnd::Ended => return RoundEnd::Retry(ended_early()),
                BodyEnd::Broken(e) => return RoundEnd::Retry(e),
                BodyEnd::Wrong(e) => return RoundEnd::Failed(e),
                BodyEnd::Halted => return RoundEnd::Halted,
            }
        }
    }

    /// The body taken whole ([`Body::whole`]), within the stall timeout for
    /// all of it; `None` if the transport cannot, and the body is untouched.
    async fn read_whole(
        &self,
        body: &mut T::Body,
        want: u64,
        halt: &Signal,
    ) -> Option<(Vec<ChunkOf<T>>, u64, BodyEnd)> {
        let stall = self.clock.sleep(self.options.stall_timeout_ms);
        let (chunk, end) = match race(body.whole(), race(stall, halt.wait())).await {
            Either::Left(None) => return None,
            Either::Left(Some(Ok(chunk))) => match chunk.len() {
                len if len == want => (chunk, BodyEnd::Done),
                len if len > want => {
                    let range = ByteRange {
                        start: 0,
                        end: want,
                    };
                    let error = ServerError::BodyLength {
                        range,
                        length: format!("a body of {len} bytes"),
                    };
                    return Some((Vec::new(), 0, BodyEnd::Wrong(error.into())));
                }
                _ => (chunk, BodyEnd::Ended),
            },
            Either::Left(Some(Err(e))) => return Some((Vec::new(), 0, BodyEnd::Broken(e.into()))),
            Either::Right(Either::Left(())) => {
                return Some((Vec::new(), 0, BodyEnd::Broken(self.stalled())))
            }
            Either::Right(Either::Right(())) => return Some((Vec::new(), 0, BodyEnd::Halted)),
        };
        let got = chunk.len();
        let chunks = if got > 0 { vec![chunk] } else { Vec::new() };
        Some((chunks, got, end))
    }

    /// Reads up to `want` bytes after skipping `skip`, until the body ends,
    /// fails, stalls or the round halts, telling `received` of every chunk
    /// kept. The unread tail of the last chunk is left in `carry`, where the
    /// next read of the same body starts.
    async fn read_body(
        &self,
        body: &mut T::Body,
        carry: &mut Option<ChunkOf<T>>,
        mut skip: u64,
        want: u64,
        halt: &Signal,
        received: &dyn Fn(u64),
    ) -> (Vec<ChunkOf<T>>, u64, BodyEnd) {
        let mut chunks = Vec::new();
        let mut got = 0;
        let end = loop {
            if got == want {
                break BodyEnd::Done;
            }
            if halt.is_fired() {
                break BodyEnd::Halted;
            }
            let chunk = match carry.take() {
                Some(chunk) => chunk,
                None => {
                    let stall = self.clock.sleep(self.options.stall_timeout_ms);
                    match race(body.next(), race(stall, halt.wait())).await {
                        Either::Left(Ok(Some(chunk))) => chunk,
                        Either::Left(Ok(None)) => break BodyEnd::Ended,
                        Either::Left(Err(e)) => break BodyEnd::Broken(e.into()),
                        Either::Right(Either::Left(())) => break BodyEnd::Broken(self.stalled()),
                        Either::Right(Either::Right(())) => break BodyEnd::Halted,
                    }
                }
            };
            let len = chunk.len();
            if skip >= len {
                skip -= len;
                continue;
            }
            let take = (len - skip).min(want - got);
            if skip + take < len {
                *carry = Some(chunk.slice(skip + take, len));
            }
            let chunk = if skip == 0 && take == len {
                chunk
            } else {
                chunk.slice(skip, skip + take)
            };
            skip = 0;
            got += take;
            chunks.push(chunk);
            received(take);
        };
        (chunks, got, end)
    }

    /// Reads the bytes `keep` of a body whose Content-Range is `range`. One
    /// whose encoding is hidden (`strict`: the runtime may have decoded it)
    /// must hold exactly `range`: it is read to its end, and one that ends
    /// early or runs long is `Wrong`. Every cross-origin body reads as
    /// strict (an absent header cannot be told from a hidden one), so one
    /// cut off by the network still keeps what arrived once the run has seen
    /// the server send a range as it is (`identity_seen`, or
    /// [`Download::prove_identity`]): a dropped connection must not cost
    /// the block.
    async fn read_kept(
        &self,
        body: &mut T::Body,
        range: ByteRange,
        keep: ByteRange,
        strict: bool,
        halt: &Signal,
        received: &dyn Fn(u64),
    ) -> (Vec<ChunkOf<T>>, u64, BodyEnd) {
        let mut rest = None;
        let skip = keep.start - range.start;
        let (chunks, got, end) = self
            .read_body(body, &mut rest, skip, keep.len(), halt, received)
            .await;
        let end = match (strict, end) {
            (true, BodyEnd::Done) => {
                let rest = rest.map_or(0, |c| c.len());
                let after = range.end - keep.end;
                let end = self.body_end(body, rest, after, range, halt).await;
                if matches!(end, BodyEnd::Done) {
                    self.identity_seen.set(true);
                }
                end
            }
            (true, BodyEnd::Ended) => BodyEnd::Wrong(too_short(range, got)),
            (_, end) => end,
        };
        (chunks, got, end)
    }

    /// Whether the server sends ranges as they are, not compressed for the
    /// runtime to undo: a small range at `keep`'s start must come exactly
    /// as long as its Content-Range says.
    async fn prove_identity(&self, keep: ByteRange, halt: &Signal) -> bool {
        let part = ByteRange {
            start: keep.start,
            end: keep.end.min(keep.start + SAMPLE),
        };
        let Ok(mut response) = self.send(Some(part), halt).await else {
            return false;
        };
        let range = match self.check(&response.head, part) {
            Checked::Range { range, .. } if range.start <= part.start && range.end >= part.end => {
                range
            }
            _ => return false,
        };
        let strict = response.head.content_encoding.is_hidden();
        let body = &mut response.body;
        let (_, _, end) = self
            .read_kept(body, range, part, strict, halt, &|_| {})
            .await;
        matches!(end, BodyEnd::Done)
    }

    /// After the bytes kept of a body whose encoding is hidden: exactly
    /// `after` more must follow before it ends, as its Content-Range `range`
    /// says (`rest` of them came with the last chunk kept), else it is not
    /// the range. Each read brings bytes or the end, so this ends.
    async fn body_end(
        &self,
        body: &mut T::Body,
        rest: u64,
        after: u64,
        range: ByteRange,
        halt: &Signal,
    ) -> BodyEnd {
        let mut extra = rest;
        loop {
            if extra > after {
                let length = "more bytes".into();
                return BodyEnd::Wrong(ServerError::BodyLength { range, length }.into());
            }
            let stall = self.clock.sleep(self.options.stall_timeout_ms);
            match race(body.next(), race(stall, halt.wait())).await {
                Either::Left(Ok(None)) if extra == after => return BodyEnd::Done,
                Either::Left(Ok(None)) => {
                    let got = range.len() - (after - extra);
                    return BodyEnd::Wrong(too_short(range, got));
                }
                Either::Left(Ok(Some(chunk))) => extra = extra.saturating_add(chunk.len()),
                Either::Left(Err(e)) => return BodyEnd::Broken(e.into()),
                Either::Right(Either::Left(())) => return BodyEnd::Broken(self.stalled()),
                Either::Right(Either::Right(())) => return BodyEnd::Halted,
            }
        }
    }

    fn stalled(&self) -> Error {
        Error::Stalled {
            ms: self.options.stall_timeout_ms,
        }
    }

    /// Counts bytes received but not yet stored, and reports progress.
    fn count_received(&self, bytes: u64, on_event: &dyn Fn(&Event)) {
        self.state.borrow_mut().unsaved += bytes;
        self.emit(on_event, false);
    }

    /// Stores a piece, then the record that claims it; only then does the
    /// in-memory record claim it too. Records are saved one at a time, each
    /// claiming every piece stored before it; where the store allows it
    /// ([`Store::concurrent_writes`]) the pieces themselves are written at once.
    async fn commit(
        &self,
        piece: ByteRange,
        chunks: Vec<ChunkOf<T>>,
        on_event: &dyn Fn(&Event),
    ) -> Result<(), Error> {
        let overlap = || Error::Internal(format!("piece {piece} overlaps a stored one"));
        let id = &self.options.id;
        let serial = match self.store.concurrent_writes() {
            true => None,
            false => Some(self.commit_lock.lock().await),
        };
        let overlaps = self.state.borrow().record.pieces.overlaps(piece);
        let written = match overlaps {
            true => Err(overlap()),
            false => self
                .store
                .write(id, piece, chunks)
                .await
                .map_err(Error::from),
        };
        let _one_at_a_time = match serial {
            Some(guard) => guard,
            None => self.commit_lock.lock().await,
        };
        let now = self.clock.now_ms();
        let stored = async {
            written?;
            let mut next = self.state.borrow().record.clone();
            next.updated_at = now;
            if !next.pieces.insert(piece) {
                return Err(overlap());
            }
            self.store
                .save_record(id, &next.encode())
                .await
                .map_err(Error::from)
        }
        .await;
        {
            let mut state = self.state.borrow_mut();
            state.unsaved -= piece.len();
            if stored.is_ok() {
                state.record.pieces.insert(piece);
                state.record.updated_at = now;
            }
        }
        stored?;
        let committed = std::mem::replace(&mut *self.committed.borrow_mut(), Signal::new());
        committed.fire();
        self.emit(on_event, false);
        Ok(())
    }

    /// Every digest the finished file must match.
    fn expected(&self) -> Vec<Expected> {
        self.options
            .integrity
            .iter()
            .chain(self.repr_digest.borrow().iter())
            .cloned()
            .collect()
    }

    /// The stored piece holding byte `at`, and the part of it from `at` to hash next.
    fn stored_part_at(&self, at: u64) -> Option<(ByteRange, ByteRange)> {
        let state = self.state.borrow();
        let piece = state
            .record
            .pieces
            .iter()
            .find(|p| p.start <= at && at < p.end)?;
        let end = piece.end.min(at + VERIFY_STEP);
        Some((piece, ByteRange { start: at, end }))
    }

    /// Hashes the stored file from its start as its pieces are stored, until
    /// `done`, on the CPU the download leaves idle: completion then reads
    /// back only what is left ([`Download::verify`]). Any doubt (a failed
    /// read, bytes discarded meanwhile) leaves the work to `verify`.
    async fn hash_behind(&self, done: &Signal) {
        while !done.is_fired() {
            // Checked each time: the first response may add a Repr-Digest.
            let expected = self.expected();
            if expected.is_empty() {
                return;
            }
            let at = {
                let mut hashed = self.hashed.borrow_mut();
                match hashed.as_ref() {
                    Some(h) if h.expected == expected => h.at,
                    _ => {
                        let check = integrity::Check::new(expected.clone());
                        *hashed = Some(Hashed {
                            expected,
                            check,
                            at: 0,
                        });
                        0
                    }
                }
            };
            let Some((piece, part)) = self.stored_part_at(at) else {
                let committed = self.committed.borrow().clone();
                race(committed.wait(), done.wait()).await;
                continue;
            };
            let bytes = match self.store.read(&self.options.id, piece, part).await {
                Ok(bytes) if bytes.len() as u64 == part.len() => bytes,
                _ => return,
            };
            // Unless the stored bytes were discarded meanwhile.
            if let Some(h) = self.hashed.borrow_mut().as_mut().filter(|h| h.at == at) {
                h.check.update(&bytes);
                h.at = part.end;
            }
        }
    }

    /// A complete download opened with an `integrity` it was not checked
    /// against is checked now (and discarded if it does not match); the
    /// record remembers a match, so it is hashed once.
    async fn check_stored_integrity(&self) -> Result<(), Error> {
        let Some(wanted) = self.options.integrity.as_ref().map(|e| e.fingerprint()) else {
            return Ok(());
        };
        let mut record = {
            let state = self.state.borrow();
            if !state.record.complete || state.record.verified.as_ref() == Some(&wanted) {
                return Ok(());
            }
            state.record.clone()
        };
        self.verify().await?;
        record.verified = Some(wanted);
        self.store
            .save_record(&self.options.id, &record.encode())
            .await?;
        self.state.borrow_mut().record = record;
        Ok(())
    }

    /// Marks the record complete once its pieces tile the whole file.
    async fn finish_if_complete(&self) -> Result<bool, Error> {
        if self.is_complete() {
            self.check_stored_integrity().await?;
            return Ok(true);
        }
        let done = {
            let state = self.state.borrow();
            let record = &state.record;
            match record.total() {
                Some(total) if record.pieces.covers(total) => {}
                _ => return Ok(false),
            }
            let mut done = record.clone();
            done.complete = true;
            done.updated_at = self.clock.now_ms();
            done.verified = self.options.integrity.as_ref().map(|e| e.fingerprint());
            done
        };
        self.verify().await?;
        self.store
            .save_record(&self.options.id, &done.encode())
            .await?;
        self.state.borrow_mut().record = done;
        Ok(true)
    }

    /// Hashes the stored file, read back in parts, against every digest
    /// expected of it. A file that does not match is discarded: it must
    /// never be handed out, and the next `start()` downloads it again.
    async fn verify(&self) -> Result<(), Error> {
        let expected = self.expected();
        if expected.is_empty() {
            return Ok(());
        }
        let pieces: Vec<ByteRange> = self.state.borrow().record.pieces.iter().collect();
        // What `hash_behind` hashed already, if it was for these digests.
        let (mut check, hashed) = match self.hashed.borrow_mut().take() {
            Some(h) if h.expected == expected => (h.check, h.at),
            _ => (integrity::Check::new(expected), 0),
        };
        for piece in pieces {
            let mut start = piece.start.max(hashed);
            while start < piece.end {
                let part = ByteRange {
                    start,
                    end: piece.end.min(start + VERIFY_STEP),
                };
                let bytes = self.store.read(&self.options.id, piece, part).await?;
                if bytes.len() as u64 != part.len() {
                    return Err(StoreError::new(
                        StoreErrorKind::Corrupt,
                        format!("bytes {part} read back short"),
                    )
                    .into());
                }
                check.update(&bytes);
                start = part.end;
            }
        }
        let Err(mismatch) = check.finish() else {
            return Ok(());
        };
        self.discard_stored().await?;
        Err(Error::IntegrityMismatch(mismatch))
    }

    /// Discards every stored byte and starts over.
    async fn restart(&self, reason: RestartReason, on_event: &dyn Fn(&Event)) -> Result<(), Error> {
        if self.discard_stored().await? {
            on_event(&Event::Restarted(reason));
        }
        Ok(())
    }

    /// Stores a record that claims nothing (keeping when the download was
    /// first stored) and forgets the file's digest; `true` if bytes were
    /// discarded.
    async fn discard_stored(&self) -> Result<bool, Error> {
        let (fresh, had_bytes) = {
            let state = self.state.borrow();
            let mut fresh = Record::new(&self.options.id, &self.url(), self.clock.now_ms());
            fresh.created_at = state.record.created_at;
            (fresh, !state.record.pieces.is_empty())
        };
        if had_bytes {
            self.store.reset(&self.options.id, &fresh.encode()).await?;
        }
        // Another file, or another try: its digest comes with its responses.
        self.proven_whole.set(false);
        self.repr_digest.borrow_mut().take();
        self.hashed.borrow_mut().take();
        let mut state = self.state.borrow_mut();
        state.record = fresh;
        state.meter.reset();
        Ok(had_bytes)
    }

    /// Sleeps before retry number `failures` (exponential, with jitter so
    /// that many clients do not retry in step). False if halted meanwhile.
    async fn backoff(&self, failures: u32, halt: &Signal) -> bool {
        let ms = {
            let mut state = self.state.borrow_mut();
            let ceiling = BACKOFF_BASE_MS
                .saturating_mul(1 << failures.saturating_sub(1).min(16))
                .min(BACKOFF_MAX_MS);
            ceiling / 2 + next_random(&mut state.rng) % (ceiling / 2 + 1)
        };
        matches!(
            race(self.clock.sleep(ms), halt.wait()).await,
            Either::Left(())
        )
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

/// A body of `got` bytes that ended before the `range` it announced.
fn too_short(range: ByteRange, got: u64) -> Error {
    ServerError::BodyLength {
        range,
        length: format!("{got} bytes"),
    }
    .into()
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
