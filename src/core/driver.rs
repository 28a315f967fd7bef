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
//! A `200` in reply to a Range request means the server ignores ranges: the
//! stored bytes are discarded (never spliced) and that same response is
//! streamed from byte 0.

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
/// A guard against a bug looping forever; real runs take a handful of rounds.
const MAX_ROUNDS: u32 = 1_000;

type ChunkOf<T> = <<T as Transport>::Body as Body>::Chunk;

pub struct Download<T: Transport, S, K> {
    transport: T,
    store: S,
    clock: K,
    options: Options,
    state: RefCell<State>,
    /// Fired to stop every connection of the current round.
    halt: RefCell<Signal>,
    pause_requested: Cell<bool>,
    running: Cell<bool>,
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
    /// A 206 for these bytes of the same file.
    Range(ByteRange),
    /// A 416 that told us where the file ends.
    EndOfFile,
    /// A 200: the whole file, ranges ignored.
    Whole,
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
            commit_lock: Mutex::new(()),
            discarded,
        })
    }

    pub fn options(&self) -> &Options {
        &self.options
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
            &self.options.url,
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
        let result = self.drive(on_event).await;
        self.emit(on_event, true);
        result
    }

    /// Stops the run at the next await; received bytes are stored first.
    pub fn pause(&self) {
        if self.running.get() {
            self.pause_requested.set(true);
            self.halt.borrow().fire();
        }
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
        self.state.borrow_mut().record = Record::new(&self.options.id, &self.options.url, now);
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
                    carried = response;
                }
            }
        }
        Err(Error::Internal("the download made no progress".into()))
    }

    /// One round of connections; one while the file's length or range
    /// support is unknown.
    async fn run_connections(&self, on_event: &dyn Fn(&Event)) -> RoundEnd<T::Body> {
        let known = {
            let state = self.state.borrow();
            state.record.resumable && state.record.total().is_some()
        };
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
            let claim = {
                let state = &mut *self.state.borrow_mut();
                if widen && state.record.resumable && state.record.total().is_some() {
                    return RoundEnd::Ran; // the next round runs every connection
                }
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

    /// One ranged GET: check the response, read the body, store what arrived.
    async fn fetch(
        &self,
        claim: ByteRange,
        halt: &Signal,
        on_event: &dyn Fn(&Event),
    ) -> Fetched<T::Body> {
        let request = Request {
            url: self.options.url.clone(),
            range: Some(claim),
            headers: self.options.headers.clone(),
        };
        let mut response = match race(self.transport.send(&request), halt.wait()).await {
            Either::Left(Ok(response)) => response,
            Either::Left(Err(e)) => return Fetched::Failed(e.into()),
            Either::Right(()) => return Fetched::Halted,
        };
        let body_range = match self.check(&response.head, claim) {
            Checked::Range(range) => range,
            Checked::EndOfFile => return Fetched::Progress,
            Checked::Whole => {
                return Fetched::Restart(RestartReason::RangesIgnored, Some(response))
            }
            Checked::Changed(change) => {
                return match self.options.on_server_change {
                    OnServerChange::Restart => {
                        Fetched::Restart(RestartReason::Changed(change), None)
                    }
                    OnServerChange::Fail => Fetched::Failed(ServerError::Changed(change).into()),
                }
            }
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
        let (chunks, got, end) = self
            .read_body(
                &mut response.body,
                &mut None,
                skip,
                keep.len(),
                halt,
                on_event,
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

    /// Classifies a response to a request for `asked`.
    fn check(&self, head: &ResponseHead, asked: ByteRange) -> Checked {
        match head.status {
            206 => self.check_partial(head),
            200 => Checked::Whole,
            416 => self.check_unsatisfiable(head, asked),
            status => Checked::Rejected(
                ServerError::Status {
                    status,
                    url: self.options.url.clone(),
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
            Some(change) => Checked::Changed(change),
            None => Checked::Range(range),
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
        if let Some(change) = self.adopt(head, Some(total)) {
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
    /// that knows nothing yet takes them; otherwise a difference is a change
    /// and what the record lacks is filled in.
    fn adopt(&self, head: &ResponseHead, total: Option<u64>) -> Option<Change> {
        let now = validators_of(head, total);
        let mut state = self.state.borrow_mut();
        let record = &mut state.record;
        if record.pieces.is_empty() && record.validators == Validators::default() {
            record.validators = now;
        } else {
            if let Sameness::Changed(change) = record.validators.compare(&now) {
                return Some(change);
            }
            let stored_end = record.pieces.end();
            if let Some(t) = now.total.filter(|&t| t < stored_end) {
                return Some(Change::Length {
                    was: stored_end,
                    now: t,
                });
            }
            let v = &mut record.validators;
            v.total = v.total.or(now.total);
            v.etag = v.etag.take().or(now.etag);
            v.last_modified = v.last_modified.take().or(now.last_modified);
        }
        record.resumable = true;
        take_metadata(record, head);
        None
    }

    /// Streams a whole-file (200) response from byte 0, storing a piece per
    /// block. The record was reset before.
    async fn stream_whole(
        &self,
        mut response: Response<T::Body>,
        on_event: &dyn Fn(&Event),
    ) -> RoundEnd<T::Body> {
        let head = &response.head;
        // Content-Length counts the encoded bytes when the body is compressed.
        let encoded = head
            .content_encoding
            .value()
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        let total = head
            .content_length
            .value()
            .filter(|_| !encoded)
            .and_then(|v| v.trim().parse::<u64>().ok());
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
            let (chunks, got, end) = self
                .read_body(&mut response.body, &mut carry, 0, want, &halt, on_event)
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
    /// fails, stalls or the round halts. The unread tail of the last chunk is
    /// left in `carry`, where the next read of the same body starts.
    async fn read_body(
        &self,
        body: &mut T::Body,
        carry: &mut Option<ChunkOf<T>>,
        mut skip: u64,
        want: u64,
        halt: &Signal,
        on_event: &dyn Fn(&Event),
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
            self.state.borrow_mut().unsaved += take;
            chunks.push(chunk);
            self.emit(on_event, false);
        };
        (chunks, got, end)
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
            let mut fresh = Record::new(&self.options.id, &self.options.url, self.clock.now_ms());
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
