//! The download driver: plans ranges, runs N connections, checks every
//! response against the record, stores pieces, and restarts when the file
//! on the server changed. It does no I/O of its own: the transport, the store
//! and the clock are passed in.
//!
//! A run is a sequence of *rounds*. While the length of the file or its range
//! support is unknown a round has one connection (the probe: a GET of the
//! first missing block, never a HEAD); once a 206 tells both, the next round
//! has `connections`. A round ends when there is nothing left to claim, when
//! `pause()` is called, or when one connection fails or finds the file changed
//! (then every other connection stops, keeping what it received).
//!
//! A `200` in reply to a Range request means the server ignores ranges (or,
//! with `If-Range`, that the file changed): the stored bytes are discarded
//! (never spliced) and that same response is streamed from byte 0.
//!
//! A run that starts with bytes stored from before proves the file unchanged
//! before adding to them: a strong ETag that matches proves it; otherwise the
//! last stored bytes are fetched again and compared (see
//! `Download::verify_stored`). Until then the run has one connection.

use super::clock::Clock;
use super::error::{Error, ServerError};
use super::filename;
use super::options::{OnServerChange, Options};
use super::plan::Plan;
use super::progress::{Meter, Progress};
use super::range::{ByteRange, ContentRange, ContentRangeError};
use super::record::{Record, RecordError};
use super::signal::{race, Signal};
use super::store::Store;
use super::transport::{Body, Chunk, Request, Response, ResponseHead, Transport};
use super::validator::{Change, EntityTag, Header, Sameness, Validators};
use futures_util::future::{join_all, Either};
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
/// Stored bytes fetched again to check a file that has no strong ETag.
pub const OVERLAP: u64 = 64 << 10;
/// A guard against a bug looping forever; real runs take a handful of rounds.
const MAX_ROUNDS: u32 = 1_000;

type ChunkOf<T> = <<T as Transport>::Body as Body>::Chunk;

pub struct Download<T: Transport, S, K> {
    transport: T,
    store: S,
    clock: K,
    options: Options,
    /// Where requests go now (`set_url` replaces an expired signed URL).
    url: RefCell<String>,
    state: RefCell<State>,
    /// Fired to stop every connection of the current round.
    halt: RefCell<Signal>,
    pause_requested: Cell<bool>,
    running: Cell<bool>,
    /// Offline: the run holds still (keeping its promise) until `resume`.
    suspended: Cell<bool>,
    wake: RefCell<Signal>,
    /// The stored bytes are known to belong to the file the server has now.
    proven: Cell<bool>,
    /// One commit at a time, so a record never claims a piece whose own
    /// commit has not succeeded.
    commit_lock: Mutex<()>,
    discarded: Option<RecordError>,
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

/// How a response head fits the request.
enum Checked {
    /// A 206 for these bytes; `true` when a strong ETag proves it is the
    /// same file as the stored bytes (or nothing is stored).
    Range(ByteRange, bool),
    /// A 416 that told us where the file ends.
    EndOfFile,
    /// A 200: the whole file, because ranges are ignored or (`Some`) because
    /// the file changed.
    Whole(Option<Change>),
    Changed(Change),
    Rejected(Error),
}

enum BodyEnd {
    /// Everything asked for arrived.
    Done,
    /// The body ended early.
    Ended,
    Failed(Error),
    Stalled,
    Halted,
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
        let now = clock.now_ms();
        let (record, discarded) = match store.load(&options.id).await? {
            None => (Record::new(&options.id, &options.url, now), None),
            Some(bytes) => match Record::decode(&bytes) {
                Ok(mut record) if record.id == options.id => {
                    record.url = options.url.clone();
                    (record, None)
                }
                found => {
                    let why = found
                        .err()
                        .unwrap_or(RecordError::Corrupt("stored under another id"));
                    store.remove(&options.id).await?;
                    (Record::new(&options.id, &options.url, now), Some(why))
                }
            },
        };
        Ok(Self {
            url: RefCell::new(options.url.clone()),
            state: RefCell::new(State {
                record,
                plan: Plan::new(options.block_size),
                unsaved: 0,
                meter: Meter::default(),
                last_emit: None,
                rng: clock.seed() | 1,
            }),
            transport,
            store,
            clock,
            options,
            halt: RefCell::new(Signal::new()),
            pause_requested: Cell::new(false),
            running: Cell::new(false),
            suspended: Cell::new(false),
            wake: RefCell::new(Signal::new()),
            proven: Cell::new(false),
            commit_lock: Mutex::new(()),
            discarded,
        })
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
    /// old one expired. The stored bytes are kept if the file there is the
    /// same; that is checked like any resume.
    pub fn set_url(&self, url: &str) -> Result<(), Error> {
        if url.is_empty() {
            return Err(Error::invalid("url", "it is empty"));
        }
        *self.url.borrow_mut() = url.to_string();
        self.state.borrow_mut().record.url = url.to_string();
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
        self.running.get()
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

    /// Why a stored record was discarded when the download was opened.
    pub fn discarded_record(&self) -> Option<&RecordError> {
        self.discarded.as_ref()
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

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Downloads until complete, paused or failed. Every piece received is
    /// stored before this returns, whatever the outcome.
    pub async fn run(&self, on_event: &dyn Fn(&Event)) -> Result<Outcome, Error> {
        if self.running.replace(true) {
            return Err(Error::InvalidState(
                "the download is already running; wait for its start() to settle".into(),
            ));
        }
        let _running = ClearOnDrop(&self.running);
        self.pause_requested.set(false);
        self.proven
            .set(self.state.borrow().record.pieces.is_empty());
        let result = self.drive(on_event).await;
        self.emit(on_event, true);
        result
    }

    /// Stops the run at the next await; received bytes are stored first.
    pub fn pause(&self) {
        if self.running.get() {
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

    /// The completed file.
    pub async fn assemble(&self) -> Result<S::Assembled, Error> {
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
        if self.running.get() {
            return Err(Error::InvalidState(
                "pause the download before removing it".into(),
            ));
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
        for _ in 0..MAX_ROUNDS {
            if self.pause_requested.get() {
                return Ok(Outcome::Paused);
            }
            if self.suspended.get() {
                let wake = self.wake.borrow().clone();
                wake.wait().await;
                continue;
            }
            *self.halt.borrow_mut() = Signal::new();
            if self.finish_if_complete().await? {
                return Ok(Outcome::Complete);
            }
            let end = match carried.take() {
                Some(response) => self.stream_whole(response, on_event).await,
                None => self.run_connections(on_event).await,
            };
            match end {
                RoundEnd::Ran | RoundEnd::Halted => {}
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
                            RestartReason::Changed(change) => ServerError::Changed(change).into(),
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
        }
        Err(Error::Internal("the download made no progress".into()))
    }

    /// One round of connections; one while the file's length or range
    /// support is unknown.
    async fn run_connections(&self, on_event: &dyn Fn(&Event)) -> RoundEnd<T::Body> {
        let known = self.ready_for_all_connections();
        let n = if known { self.options.connections } else { 1 };
        let widen = n < self.options.connections;
        let halt = self.halt.borrow().clone();
        let ends = join_all((0..n).map(|_| self.connection(&halt, widen, on_event))).await;
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
    async fn connection(
        &self,
        halt: &Signal,
        widen: bool,
        on_event: &dyn Fn(&Event),
    ) -> RoundEnd<T::Body> {
        let mut failures = 0;
        loop {
            if halt.is_fired() {
                return RoundEnd::Halted;
            }
            if widen && self.ready_for_all_connections() {
                return RoundEnd::Ran; // the next round runs every connection
            }
            let claim = {
                let state = &mut *self.state.borrow_mut();
                state.plan.claim(&state.record.pieces, state.record.total())
            };
            let Some(claim) = claim else {
                return RoundEnd::Ran;
            };
            let fetched = self.fetch(claim, halt, on_event).await;
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

    /// A GET of `range`, with `If-Range` when a strong ETag is known.
    async fn send(
        &self,
        range: ByteRange,
        halt: &Signal,
    ) -> Result<Response<T::Body>, Fetched<T::Body>> {
        let if_range = match &self.state.borrow().record.validators.etag {
            Some(tag @ EntityTag::Strong(_)) => Some(tag.as_header()),
            _ => None,
        };
        let request = Request {
            url: self.url(),
            range: Some(range),
            if_range,
            headers: self.options.headers.clone(),
        };
        match race(self.transport.send(&request), halt.wait()).await {
            Either::Left(Ok(response)) => Ok(response),
            Either::Left(Err(e)) => Err(Fetched::Failed(e.into())),
            Either::Right(()) => Err(Fetched::Halted),
        }
    }

    /// What a change on the server means under `onServerChange`.
    fn changed(&self, change: Change, response: Option<Response<T::Body>>) -> Fetched<T::Body> {
        match self.options.on_server_change {
            OnServerChange::Restart => Fetched::Restart(RestartReason::Changed(change), response),
            OnServerChange::Fail => Fetched::Failed(ServerError::Changed(change).into()),
        }
    }

    /// One ranged GET: check the response, read the body, store what arrived.
    async fn fetch(
        &self,
        claim: ByteRange,
        halt: &Signal,
        on_event: &dyn Fn(&Event),
    ) -> Fetched<T::Body> {
        let mut response = match self.send(claim, halt).await {
            Ok(response) => response,
            Err(fetched) => return fetched,
        };
        let body_range = match self.check(&response.head, claim) {
            Checked::Range(range, proven) => {
                if proven {
                    self.proven.set(true);
                } else if !self.proven.get() {
                    if let Err(fetched) = self.verify_stored(halt).await {
                        return fetched;
                    }
                    self.proven.set(true);
                }
                range
            }
            Checked::EndOfFile => return Fetched::Progress,
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
        let skip = keep.start - body_range.start;
        let count = |n| self.count_received(n, on_event);
        let (chunks, got, end) = self
            .read_body(
                &mut response.body,
                &mut None,
                skip,
                keep.len(),
                halt,
                &count,
            )
            .await;
        drop(response); // aborts the request if the body is not finished
        if got > 0 {
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
            // Keep what arrived; the rest is claimed again.
            _ if got > 0 => Fetched::Progress,
            BodyEnd::Ended => Fetched::Failed(Error::Network(
                "the response ended before the bytes it announced".into(),
            )),
            BodyEnd::Failed(e) => Fetched::Failed(e),
            BodyEnd::Stalled => Fetched::Failed(Error::Stalled {
                ms: self.options.stall_timeout_ms,
            }),
        }
    }

    /// Fetches the last stored bytes again and compares them with the ones
    /// stored: the proof, for a file with no strong ETag, that the server
    /// still has the file they came from.
    async fn verify_stored(&self, halt: &Signal) -> Result<(), Fetched<T::Body>> {
        let Some(piece) = self.state.borrow().record.pieces.iter().last() else {
            return Ok(());
        };
        let part = ByteRange {
            start: piece.end - piece.len().min(OVERLAP),
            end: piece.end,
        };
        let mut response = self.send(part, halt).await?;
        let range = match self.check(&response.head, part) {
            Checked::Range(range, _) if range.start <= part.start && range.end >= part.end => range,
            Checked::Range(got, _) => {
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
            Checked::EndOfFile => {
                return Err(Fetched::Failed(
                    ServerError::Unsatisfiable {
                        asked: part,
                        total: self.total(),
                    }
                    .into(),
                ))
            }
            Checked::Rejected(e) => return Err(Fetched::Failed(e)),
        };
        let skip = part.start - range.start;
        let (chunks, _, end) = self
            .read_body(
                &mut response.body,
                &mut None,
                skip,
                part.len(),
                halt,
                &|_| {},
            )
            .await;
        match end {
            BodyEnd::Done => {}
            BodyEnd::Halted => return Err(Fetched::Halted),
            BodyEnd::Failed(e) => return Err(Fetched::Failed(e)),
            BodyEnd::Stalled => {
                return Err(Fetched::Failed(Error::Stalled {
                    ms: self.options.stall_timeout_ms,
                }))
            }
            BodyEnd::Ended => {
                return Err(Fetched::Failed(Error::Network(
                    "the response ended before the bytes it announced".into(),
                )))
            }
        }
        let fetched: Vec<u8> = chunks.iter().flat_map(Chunk::to_vec).collect();
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

    /// Classifies a response to a request for `asked`.
    fn check(&self, head: &ResponseHead, asked: ByteRange) -> Checked {
        match head.status {
            206 => self.check_partial(head),
            200 => self.check_whole(head),
            416 => self.check_unsatisfiable(head, asked),
            status => Checked::Rejected(
                ServerError::Status {
                    status,
                    url: self.url(),
                }
                .into(),
            ),
        }
    }

    fn check_partial(&self, head: &ResponseHead) -> Checked {
        if let Some(encoding) = head.content_encoding.value() {
            if !encoding.trim().eq_ignore_ascii_case("identity") {
                return Checked::Rejected(
                    ServerError::ContentEncoding {
                        encoding: encoding.to_string(),
                    }
                    .into(),
                );
            }
        }
        // Content-Type is readable even cross-origin: a multipart body shows there.
        if head.content_range.value().is_none() && is_multipart(head) {
            return Checked::Rejected(ServerError::Multipart.into());
        }
        let value = match &head.content_range {
            Header::Present(value) => value,
            Header::Hidden => return Checked::Rejected(hidden_headers(head)),
            Header::Absent => return Checked::Rejected(ServerError::MissingContentRange.into()),
        };
        let (range, total) = match ContentRange::parse(value) {
            Ok(ContentRange::Bytes { range, total }) => (range, total),
            Ok(ContentRange::Unsatisfied { .. }) => {
                return Checked::Rejected(bad_content_range(value, ContentRangeError::Syntax))
            }
            Err(why) => return Checked::Rejected(bad_content_range(value, why)),
        };
        match self.adopt(head, total) {
            Sameness::Changed(change) => Checked::Changed(change),
            sameness => Checked::Range(range, sameness == Sameness::Same),
        }
    }

    /// A 200 is the whole file: a change if its validators say so (as they
    /// do after `If-Range` failed), else a server that ignores ranges.
    fn check_whole(&self, head: &ResponseHead) -> Checked {
        let state = self.state.borrow();
        let record = &state.record;
        if record.pieces.is_empty() {
            return Checked::Whole(None);
        }
        match record
            .validators
            .compare(&validators_of(head, whole_length(head)))
        {
            Sameness::Changed(change) => Checked::Whole(Some(change)),
            _ => Checked::Whole(None),
        }
    }

    /// A 416 is where the file ends when it says `bytes */length` and our
    /// range starts at or past that length (a file whose length we did not
    /// know, or an empty one).
    fn check_unsatisfiable(&self, head: &ResponseHead, asked: ByteRange) -> Checked {
        if head.content_range.is_hidden() {
            return Checked::Rejected(hidden_headers(head));
        }
        let total = head
            .content_range
            .value()
            .and_then(|v| ContentRange::parse(v).ok())
            .and_then(|cr| cr.total());
        let Some(total) = total else {
            return Checked::Rejected(ServerError::Unsatisfiable { asked, total: None }.into());
        };
        if let Sameness::Changed(change) = self.adopt(head, Some(total)) {
            return Checked::Changed(change);
        }
        if asked.start >= total {
            Checked::EndOfFile
        } else {
            Checked::Rejected(
                ServerError::Unsatisfiable {
                    asked,
                    total: Some(total),
                }
                .into(),
            )
        }
    }

    /// Compares a range response's validators with the record's. A record
    /// that knows nothing yet takes them (and, storing nothing, has nothing
    /// to prove: `Same`); otherwise a difference is a change and what the
    /// record lacks is filled in.
    fn adopt(&self, head: &ResponseHead, total: Option<u64>) -> Sameness {
        let now = validators_of(head, total);
        let mut state = self.state.borrow_mut();
        let record = &mut state.record;
        let sameness = if record.pieces.is_empty() && record.validators == Validators::default() {
            record.validators = now;
            Sameness::Same
        } else {
            let sameness = record.validators.compare(&now);
            if let Sameness::Changed(_) = sameness {
                return sameness;
            }
            let stored_end = record.pieces.end();
            if let Some(t) = now.total.filter(|&t| t < stored_end) {
                return Sameness::Changed(Change::Length {
                    was: stored_end,
                    now: t,
                });
            }
            let v = &mut record.validators;
            v.total = v.total.or(now.total);
            v.etag = v.etag.take().or(now.etag);
            v.last_modified = v.last_modified.take().or(now.last_modified);
            sameness
        };
        record.resumable = true;
        take_metadata(record, head);
        sameness
    }

    /// Streams a whole-file (200) response from byte 0, storing a piece per
    /// block. The record was reset before.
    async fn stream_whole(
        &self,
        mut response: Response<T::Body>,
        on_event: &dyn Fn(&Event),
    ) -> RoundEnd<T::Body> {
        let head = &response.head;
        let total = whole_length(head);
        {
            let mut state = self.state.borrow_mut();
            let record = &mut state.record;
            record.validators = validators_of(head, total);
            record.resumable = false;
            take_metadata(record, head);
        }
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
                BodyEnd::Ended => {
                    return RoundEnd::Retry(Error::Network(
                        "the response ended before the length it announced".into(),
                    ))
                }
                BodyEnd::Failed(e) => return RoundEnd::Retry(e),
                BodyEnd::Stalled => {
                    return RoundEnd::Retry(Error::Stalled {
                        ms: self.options.stall_timeout_ms,
                    })
                }
                BodyEnd::Halted => return RoundEnd::Halted,
            }
        }
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
                        Either::Left(Err(e)) => break BodyEnd::Failed(e.into()),
                        Either::Right(Either::Left(())) => break BodyEnd::Stalled,
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

    /// Counts bytes received but not yet stored, and reports progress.
    fn count_received(&self, bytes: u64, on_event: &dyn Fn(&Event)) {
        self.state.borrow_mut().unsaved += bytes;
        self.emit(on_event, false);
    }

    /// Stores a piece and the record that claims it; only then does the
    /// in-memory record claim it too.
    async fn commit(
        &self,
        piece: ByteRange,
        chunks: Vec<ChunkOf<T>>,
        on_event: &dyn Fn(&Event),
    ) -> Result<(), Error> {
        let _one_at_a_time = self.commit_lock.lock().await;
        let now = self.clock.now_ms();
        let encoded = {
            let state = self.state.borrow();
            let mut next = state.record.clone();
            if !next.pieces.insert(piece) {
                return Err(Error::Internal(format!(
                    "piece {piece} overlaps a stored one"
                )));
            }
            next.updated_at = now;
            next.encode()
        };
        let stored = self
            .store
            .commit(&self.options.id, piece.start, chunks, &encoded)
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
        self.emit(on_event, false);
        Ok(())
    }

    /// Marks the record complete once its pieces tile the whole file.
    async fn finish_if_complete(&self) -> Result<bool, Error> {
        let done = {
            let state = self.state.borrow();
            let record = &state.record;
            if record.complete {
                return Ok(true);
            }
            match record.total() {
                Some(total) if record.pieces.covers(total) => {}
                _ => return Ok(false),
            }
            let mut done = record.clone();
            done.complete = true;
            done.updated_at = self.clock.now_ms();
            done
        };
        self.store
            .save_record(&self.options.id, &done.encode())
            .await?;
        self.state.borrow_mut().record = done;
        Ok(true)
    }

    /// Discards every stored byte and starts over.
    async fn restart(&self, reason: RestartReason, on_event: &dyn Fn(&Event)) -> Result<(), Error> {
        let (fresh, had_bytes) = {
            let state = self.state.borrow();
            let mut fresh = Record::new(&self.options.id, &self.url(), self.clock.now_ms());
            fresh.created_at = state.record.created_at;
            (fresh, !state.record.pieces.is_empty())
        };
        if had_bytes {
            self.store.reset(&self.options.id, &fresh.encode()).await?;
        }
        {
            let mut state = self.state.borrow_mut();
            state.record = fresh;
            state.meter.reset();
        }
        if had_bytes {
            on_event(&Event::Restarted(reason));
        }
        Ok(())
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

fn validators_of(head: &ResponseHead, total: Option<u64>) -> Validators {
    Validators {
        etag: head.etag.value().and_then(EntityTag::parse),
        last_modified: head.last_modified.value().map(str::to_string),
        total,
    }
}

/// The length of a whole-file (200) body, if it says it. Content-Length
/// counts the encoded bytes when the body is compressed: then it is unknown.
fn whole_length(head: &ResponseHead) -> Option<u64> {
    let encoded = head
        .content_encoding
        .value()
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
    head.content_length
        .value()
        .filter(|_| !encoded)
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn is_multipart(head: &ResponseHead) -> bool {
    head.content_type.value().is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/byteranges")
    })
}

fn take_metadata(record: &mut Record, head: &ResponseHead) {
    if let Some(name) = head
        .content_disposition
        .value()
        .and_then(filename::from_content_disposition)
    {
        record.server_filename = Some(name);
    }
    if let Some(content_type) = head.content_type.value() {
        record.content_type = Some(content_type.to_string());
    }
}

/// The headers a 206 needs that CORS hid from us.
fn hidden_headers(head: &ResponseHead) -> Error {
    let mut headers = vec!["Content-Range"];
    if head.etag.is_hidden() {
        headers.push("ETag");
    }
    ServerError::HeadersHidden { headers }.into()
}

fn bad_content_range(value: &str, why: ContentRangeError) -> Error {
    ServerError::BadContentRange {
        value: value.to_string(),
        why,
    }
    .into()
}

/// xorshift64*: jitter needs spread, not cryptographic randomness.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

struct ClearOnDrop<'a>(&'a Cell<bool>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}
