//! A scripted transport for native driver tests: an in-process range server
//! over generated content (the fault server's generator), with faults queued
//! for the next requests, a log of what it served, and a virtual clock.

use fault_server::{content_etag, content_last_modified, fill};
use futures::executor::block_on;
use resumable_fetch::core::clock::Clock;
use resumable_fetch::core::memory::MemoryStore;
use resumable_fetch::core::range::ByteRange;
use resumable_fetch::core::transport::Header;
use resumable_fetch::core::transport::{
    Body, Request, Response, ResponseHead, Transport, TransportError,
};
use resumable_fetch::core::{Driver, Event, Options, StoreError, StoreErrorKind};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// How the simulated server treats Range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranges {
    /// 206 with `bytes a-b/size`.
    Supported,
    /// 206 with `bytes a-b/*`, 416 `*/size` past the end.
    UnknownTotal,
    /// 200 with the whole file, whatever was asked.
    Ignored,
}

/// A fault for the next request (one fault per request, in queue order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No fault for this request (to aim a later fault at a later request).
    Pass,
    /// Answer with this status and no body.
    Status(u16),
    /// The body ends cleanly after this many bytes.
    Truncate(u64),
    /// The body fails with a network error after this many bytes.
    Reset(u64),
    /// The body stops after this many bytes and never sends more.
    Stall(u64),
    /// The request itself fails (connection refused).
    Refuse,
    /// A 206 for the asked range moved by this many bytes.
    Shift(i64),
    /// A 206 for the asked range minus this many bytes at its end.
    Short(u64),
    /// A 206 whose Content-Length (and body) is this many bytes shorter than
    /// its Content-Range says.
    LengthMismatch(u64),
    /// A 206 without Content-Range.
    NoContentRange,
    /// A 206 with a multipart/byteranges body instead of Content-Range.
    Multipart,
    /// A 206 whose body the runtime decoded from a compression the server
    /// applied, with `Content-Encoding` hidden by CORS: the right
    /// Content-Range and (encoded) Content-Length, other bytes, twice as many.
    Decoded,
}

/// One response, as the server sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub asked: Option<ByteRange>,
    pub if_range: Option<String>,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// The bytes the body was meant to hold.
    pub body: Option<ByteRange>,
    /// The bytes the client actually read.
    pub sent: u64,
    /// The virtual time the request came at.
    pub at_ms: u64,
}

pub struct Server {
    pub size: Cell<u64>,
    pub seed: Cell<u64>,
    pub ranges: Cell<Ranges>,
    pub etag: Cell<bool>,
    /// Whether a 200 says its Content-Length.
    pub content_length: Cell<bool>,
    pub content_encoding: RefCell<Option<String>>,
    /// Range responses are compressed, and the runtime refuses them as
    /// Chromium does: every request with `Range` fails on the network.
    pub compress_ranges: Cell<bool>,
    pub hide_content_range: Cell<bool>,
    /// Every response's Content-Encoding reads as hidden, as a cross-origin
    /// page sees it unless the server exposes it.
    pub hide_content_encoding: Cell<bool>,
    /// Every 206 is as `Fault::Decoded` makes one.
    pub decodes: Cell<bool>,
    pub last_modified: Cell<bool>,
    pub weak_etag: Cell<bool>,
    /// Validators computed from this seed instead of the content's: a server
    /// whose validators do not change when the file does.
    pub validator_seed: Cell<Option<u64>>,
    /// Requests to any other URL get 403 (an expired signed URL).
    pub required_url: RefCell<Option<String>>,
    /// The `Repr-Digest` every response carries.
    pub repr_digest: RefCell<Option<String>>,
    pub faults: RefCell<VecDeque<Fault>>,
    pub log: RefCell<Vec<Served>>,
    /// Bytes per body chunk.
    pub chunk: Cell<u64>,
    /// Responses whose body the client holds now, and the most at once.
    pub open_bodies: Cell<usize>,
    pub most_open_bodies: Cell<usize>,
    /// Bodies the client took whole (`Body::whole`) rather than chunk by chunk.
    pub whole_bodies: Cell<usize>,
    /// The clock of the test; every chunk takes [`MS_PER_CHUNK`] of it.
    pub clock: VirtualClock,
}

/// Virtual time a chunk takes to arrive, so progress events (at most one per
/// 100 ms) come every few chunks.
pub const MS_PER_CHUNK: u64 = 10;

impl Server {
    pub fn new(size: u64, seed: u64) -> Rc<Self> {
        Rc::new(Self {
            size: Cell::new(size),
            seed: Cell::new(seed),
            ranges: Cell::new(Ranges::Supported),
            etag: Cell::new(true),
            content_length: Cell::new(true),
            content_encoding: RefCell::new(None),
            compress_ranges: Cell::new(false),
            hide_content_range: Cell::new(false),
            hide_content_encoding: Cell::new(false),
            decodes: Cell::new(false),
            last_modified: Cell::new(true),
            weak_etag: Cell::new(false),
            validator_seed: Cell::new(None),
            required_url: RefCell::new(None),
            repr_digest: RefCell::new(None),
            faults: RefCell::new(VecDeque::new()),
            log: RefCell::new(Vec::new()),
            // Not a divisor of the tests' block size: chunks straddle blocks.
            chunk: Cell::new(300),
            open_bodies: Cell::new(0),
            most_open_bodies: Cell::new(0),
            whole_bodies: Cell::new(0),
            clock: VirtualClock::default(),
        })
    }

    pub fn content(&self) -> Vec<u8> {
        let mut buf = vec![0; self.size.get() as usize];
        fill(self.seed.get(), 0, &mut buf);
        buf
    }

    pub fn fault(&self, fault: Fault) {
        self.faults.borrow_mut().push_back(fault);
    }

    /// Bytes the client read from bodies.
    pub fn sent(&self) -> u64 {
        self.log.borrow().iter().map(|s| s.sent).sum()
    }

    pub fn clear_log(&self) {
        self.log.borrow_mut().clear();
    }

    fn respond(
        self: &Rc<Self>,
        request: &Request,
    ) -> Result<Response<ScriptedBody>, TransportError> {
        let fault = self.faults.borrow_mut().pop_front();
        let size = self.size.get();
        let seed = self.seed.get();
        let tag_seed = self.validator_seed.get().unwrap_or(seed);
        let mut head = ResponseHead {
            content_type: Header::Present("application/octet-stream".into()),
            ..Default::default()
        };
        let etag = content_etag(tag_seed, size);
        let etag = if self.weak_etag.get() {
            format!("W/{etag}")
        } else {
            etag
        };
        if self.etag.get() {
            head.etag = Header::Present(etag.clone());
        }
        if self.last_modified.get() {
            head.last_modified = Header::Present(content_last_modified(tag_seed));
        }
        if self.compress_ranges.get() && request.range.is_some() {
            return Err(TransportError::Network(
                "net::ERR_CONTENT_DECODING_FAILED".into(),
            ));
        }
        let refused = matches!(&*self.required_url.borrow(), Some(url) if *url != request.url);
        // If-Range: a range only of the version it names, else the whole file.
        let stale = request.if_range.as_ref().is_some_and(|tag| *tag != etag);
        if let Some(encoding) = self.content_encoding.borrow().clone() {
            head.content_encoding = Header::Present(encoding);
        }
        if self.hide_content_encoding.get() {
            head.content_encoding = Header::Hidden;
        }
        if let Some(digest) = self.repr_digest.borrow().clone() {
            head.repr_digest = Header::Present(digest);
        }
        let mut body = None;
        match (fault, request.range, self.ranges.get()) {
            (Some(Fault::Refuse), ..) => {
                return Err(TransportError::Network("connection refused".into()))
            }
            (Some(Fault::Status(status)), ..) => head.status = status,
            _ if refused => head.status = 403,
            (_, None, _) | (_, Some(_), Ranges::Ignored) => {
                head.status = 200;
                if self.content_length.get() {
                    head.content_length = Header::Present(size.to_string());
                }
                body = Some(ByteRange {
                    start: 0,
                    end: size,
                });
            }
            (_, Some(asked), ranges) if asked.start >= size => {
                head.status = 416;
                head.content_range = Header::Present(format!("bytes */{size}"));
                assert_ne!(ranges, Ranges::Ignored);
            }
            _ if stale => {
                head.status = 200;
                head.content_length = Header::Present(size.to_string());
                body = Some(ByteRange {
                    start: 0,
                    end: size,
                });
            }
            (_, Some(asked), ranges) => {
                let mut range = ByteRange {
                    start: asked.start,
                    end: asked.end.min(size),
                };
                match fault {
                    Some(Fault::Shift(by)) => {
                        let moved = |at: u64| at.saturating_add_signed(by).min(size);
                        range = ByteRange {
                            start: moved(range.start),
                            end: moved(range.end),
                        };
                    }
                    Some(Fault::Short(by)) => {
                        range.end = range.end.saturating_sub(by).max(range.start + 1)
                    }
                    _ => {}
                }
                head.status = 206;
                let total = match ranges {
                    Ranges::UnknownTotal => "*".to_string(),
                    _ => size.to_string(),
                };
                head.content_range = if self.hide_content_range.get() {
                    Header::Hidden
                } else {
                    Header::Present(format!("bytes {range}/{total}"))
                };
                head.content_length = Header::Present(range.len().to_string());
                match fault {
                    Some(Fault::NoContentRange) => head.content_range = Header::Absent,
                    Some(Fault::Multipart) => {
                        head.content_range = Header::Absent;
                        head.content_type =
                            Header::Present("multipart/byteranges; boundary=x".into());
                    }
                    Some(Fault::LengthMismatch(by)) => {
                        let len = range.len().saturating_sub(by);
                        head.content_length = Header::Present(len.to_string());
                    }
                    _ => {}
                }
                if fault == Some(Fault::Decoded) || self.decodes.get() {
                    head.content_encoding = Header::Hidden;
                }
                body = Some(range);
            }
        }
        let index = {
            let mut log = self.log.borrow_mut();
            log.push(Served {
                asked: request.range,
                if_range: request.if_range.clone(),
                headers: request.headers.clone(),
                status: head.status,
                body,
                sent: 0,
                at_ms: self.clock.now.get(),
            });
            log.len() - 1
        };
        let range = body.unwrap_or(ByteRange { start: 0, end: 0 });
        let (limit, ending) = match fault {
            Some(Fault::Truncate(n)) => (n, Ending::Clean),
            Some(Fault::Reset(n)) => (n, Ending::Reset),
            Some(Fault::Stall(n)) => (n, Ending::Stall),
            Some(Fault::LengthMismatch(by)) if head.status == 206 => {
                (range.len().saturating_sub(by), Ending::Clean)
            }
            _ => (u64::MAX, Ending::Clean),
        };
        // A decoded body: other bytes, and more of them.
        let decoded = fault == Some(Fault::Decoded) || self.decodes.get();
        let (seed, end) = match decoded && head.status == 206 {
            true => (seed ^ 0x5eed, range.end + range.len()),
            false => (seed, range.end),
        };
        self.open_bodies.set(self.open_bodies.get() + 1);
        let most = self.most_open_bodies.get().max(self.open_bodies.get());
        self.most_open_bodies.set(most);
        Ok(Response {
            head,
            body: ScriptedBody {
                server: self.clone(),
                seed,
                at: range.start,
                end: end.min(range.start.saturating_add(limit)),
                ending,
                index,
            },
        })
    }
}

#[derive(Clone, Copy)]
enum Ending {
    Clean,
    Reset,
    Stall,
}

pub struct ScriptedBody {
    server: Rc<Server>,
    seed: u64,
    at: u64,
    end: u64,
    ending: Ending,
    index: usize,
}

impl Drop for ScriptedBody {
    fn drop(&mut self) {
        self.server
            .open_bodies
            .set(self.server.open_bodies.get() - 1);
    }
}

impl Body for ScriptedBody {
    type Chunk = Vec<u8>;

    async fn next(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        YieldOnce(false).await;
        match self.take() {
            Some(result) => result,
            None => std::future::pending().await,
        }
    }

    /// The rest of the body in one chunk, on the same clock as chunk by
    /// chunk but in one step (as the browser delivers a Blob); a reset keeps
    /// nothing, a stall never ends.
    async fn whole(&mut self) -> Option<Result<Vec<u8>, TransportError>> {
        self.server
            .whole_bodies
            .set(self.server.whole_bodies.get() + 1);
        YieldOnce(false).await;
        let mut all = Vec::new();
        loop {
            match self.take() {
                Some(Ok(Some(chunk))) => all.extend(chunk),
                Some(Ok(None)) => return Some(Ok(all)),
                Some(Err(e)) => return Some(Err(e)),
                None => std::future::pending().await,
            }
        }
    }
}

impl ScriptedBody {
    /// The next chunk at once; `None` for a body that stalls here.
    fn take(&mut self) -> Option<Result<Option<Vec<u8>>, TransportError>> {
        if self.at < self.end {
            let len = (self.end - self.at).min(self.server.chunk.get());
            let mut chunk = vec![0; len as usize];
            fill(self.seed, self.at, &mut chunk);
            self.at += len;
            self.server.log.borrow_mut()[self.index].sent += len;
            let now = &self.server.clock.now;
            now.set(now.get() + MS_PER_CHUNK);
            return Some(Ok(Some(chunk)));
        }
        match self.ending {
            Ending::Clean => Some(Ok(None)),
            Ending::Reset => Some(Err(TransportError::Network("connection reset".into()))),
            Ending::Stall => None,
        }
    }
}

/// Requests and body reads yield to the executor once, so connections
/// interleave, and a test can stop polling a run and drop it: a crash, with
/// nothing persisted on the way out.
#[derive(Clone)]
pub struct ScriptedTransport(pub Rc<Server>);

impl Transport for ScriptedTransport {
    type Body = ScriptedBody;

    async fn send(&self, request: &Request) -> Result<Response<ScriptedBody>, TransportError> {
        YieldOnce(false).await;
        self.0.respond(request)
    }
}

struct YieldOnce(bool);

/// Lets every other ready task run once before this one goes on.
pub async fn yield_now() {
    YieldOnce(false).await
}

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Virtual time: a sleep completes on its second poll, moving the clock
/// forward, and is recorded. A body that yields for a moment is polled again
/// first and wins its race against the stall timer; a body that never sends
/// again loses it. A sleep that loses a race costs no time.
#[derive(Clone, Default)]
pub struct VirtualClock {
    pub now: Rc<Cell<u64>>,
    pub sleeps: Rc<RefCell<Vec<u64>>>,
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        let clock = self.clone();
        async move {
            YieldOnce(false).await;
            clock.now.set(clock.now.get() + ms);
            clock.sleeps.borrow_mut().push(ms);
        }
    }
    fn seed(&self) -> u64 {
        42
    }
}

pub type Store = MemoryStore<Vec<u8>>;
pub type Dl = Driver<ScriptedTransport, Store, VirtualClock>;

pub fn options(block_size: u64, connections: u32) -> Options {
    let mut options = Options {
        connections,
        ..Options::new("https://files.example/data.bin")
    };
    options.set_block_size(block_size);
    options
}

/// Opens a download of the server's file on its clock.
pub fn open(server: &Rc<Server>, store: &Store, options: Options) -> Dl {
    block_on(Driver::open(
        ScriptedTransport(server.clone()),
        store.clone(),
        server.clock.clone(),
        options,
    ))
    .expect("open")
}

/// Runs to the end, returning the outcome and every event.
pub fn run(
    dl: &Dl,
) -> (
    Result<resumable_fetch::core::Outcome, resumable_fetch::core::Error>,
    Vec<Event>,
) {
    let events = RefCell::new(Vec::new());
    let outcome = block_on(dl.run(&|e| events.borrow_mut().push(e.clone())));
    (outcome, events.into_inner())
}

/// Polls a run until `crash` says so, then drops it, as a reload would:
/// nothing in flight is persisted.
pub fn run_until_crash(dl: &Dl, crash: impl Fn(&Dl) -> bool) {
    let mut run = std::pin::pin!(dl.run(&|_| {}));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..1_000_000 {
        assert!(
            run.as_mut().poll(&mut cx).is_pending(),
            "the run ended before the crash"
        );
        if crash(dl) {
            return;
        }
    }
    panic!("the crash condition never held");
}

/// The assembled bytes of a completed download.
pub fn bytes(dl: &Dl) -> Vec<u8> {
    block_on(dl.assemble()).expect("assemble").concat()
}

/// A store for files too large to keep: it checks bytes sampled from every
/// chunk against the file's generated content at their offset, and keeps
/// only the pieces' places. `assemble` gives the length.
#[derive(Clone)]
pub struct CheckingStore {
    seed: u64,
    records: Rc<RefCell<std::collections::HashMap<String, Vec<u8>>>>,
    pieces: Rc<RefCell<std::collections::BTreeMap<u64, u64>>>,
}

impl CheckingStore {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            records: Rc::default(),
            pieces: Rc::default(),
        }
    }
}

impl resumable_fetch::core::store::Store for CheckingStore {
    type Chunk = Vec<u8>;
    type Assembled = u64;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.records.borrow().get(id).cloned())
    }
    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.records.borrow_mut().insert(id.into(), record.to_vec());
        Ok(())
    }
    async fn write(
        &self,
        _: &str,
        piece: ByteRange,
        chunks: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let offset = piece.start;
        let mut at = offset;
        for chunk in &chunks {
            let last = chunk.len() - 1;
            for i in [0, last / 2, last] {
                if chunk[i] != fault_server::byte_at(self.seed, at + i as u64) {
                    return Err(StoreError::new(
                        StoreErrorKind::Corrupt,
                        format!("wrong byte at offset {}", at + i as u64),
                    ));
                }
            }
            at += chunk.len() as u64;
        }
        self.pieces.borrow_mut().insert(offset, at - offset);
        Ok(())
    }
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.pieces.borrow_mut().clear();
        self.save_record(id, record).await
    }
    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.pieces.borrow_mut().clear();
        self.records.borrow_mut().remove(id);
        Ok(())
    }
    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.records.borrow().values().cloned().collect())
    }
    async fn read(&self, _: &str, _: ByteRange, part: ByteRange) -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![0; part.len() as usize];
        fill(self.seed, part.start, &mut bytes);
        Ok(bytes)
    }
    async fn assemble(&self, _: &str, pieces: &[ByteRange]) -> Result<u64, StoreError> {
        let stored = self.pieces.borrow();
        for p in pieces {
            if stored.get(&p.start) != Some(&p.len()) {
                return Err(StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("piece {p}"),
                ));
            }
        }
        Ok(pieces.iter().map(ByteRange::len).sum())
    }
}

/// The SHA-256 of `bytes` in base64, as SRI and `Repr-Digest` write it.
pub fn sha256_base64(bytes: &[u8]) -> String {
    fault_server::sha256::base64(&fault_server::sha256::digest(bytes))
}
