//! A scripted transport for native driver tests: an in-process range server
//! over generated content (the fault server's generator), with faults queued
//! for the next requests, a log of what it served, and a virtual clock.

use fault_server::{content_etag, content_last_modified, fill};
use futures::executor::block_on;
use resumable_fetch::core::clock::Clock;
use resumable_fetch::core::memory::MemoryStore;
use resumable_fetch::core::range::ByteRange;
use resumable_fetch::core::transport::{
    Body, Request, Response, ResponseHead, Transport, TransportError,
};
use resumable_fetch::core::validator::Header;
use resumable_fetch::core::{Download, Event, Options};
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
}

/// One response, as the server sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub asked: Option<ByteRange>,
    pub status: u16,
    /// The bytes the body was meant to hold.
    pub body: Option<ByteRange>,
    /// The bytes the client actually read.
    pub sent: u64,
}

pub struct Server {
    pub size: Cell<u64>,
    pub seed: Cell<u64>,
    pub ranges: Cell<Ranges>,
    pub etag: Cell<bool>,
    /// Whether a 200 says its Content-Length.
    pub content_length: Cell<bool>,
    pub content_encoding: RefCell<Option<String>>,
    pub hide_content_range: Cell<bool>,
    pub faults: RefCell<VecDeque<Fault>>,
    pub log: RefCell<Vec<Served>>,
    pub chunk: u64,
    /// Responses whose body the client holds now, and the most at once.
    pub open_bodies: Cell<usize>,
    pub most_open_bodies: Cell<usize>,
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
            hide_content_range: Cell::new(false),
            faults: RefCell::new(VecDeque::new()),
            log: RefCell::new(Vec::new()),
            // Not a divisor of the tests' block size: chunks straddle blocks.
            chunk: 300,
            open_bodies: Cell::new(0),
            most_open_bodies: Cell::new(0),
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
        let mut head = ResponseHead {
            content_type: Header::Present("application/octet-stream".into()),
            last_modified: Header::Present(content_last_modified(seed)),
            ..Default::default()
        };
        if self.etag.get() {
            head.etag = Header::Present(content_etag(seed, size));
        }
        if let Some(encoding) = self.content_encoding.borrow().clone() {
            head.content_encoding = Header::Present(encoding);
        }
        let mut body = None;
        match (fault, request.range, self.ranges.get()) {
            (Some(Fault::Refuse), ..) => {
                return Err(TransportError::Network("connection refused".into()))
            }
            (Some(Fault::Status(status)), ..) => head.status = status,
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
            (_, Some(asked), ranges) => {
                let range = ByteRange {
                    start: asked.start,
                    end: asked.end.min(size),
                };
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
                body = Some(range);
            }
        }
        let index = {
            let mut log = self.log.borrow_mut();
            log.push(Served {
                asked: request.range,
                status: head.status,
                body,
                sent: 0,
            });
            log.len() - 1
        };
        let range = body.unwrap_or(ByteRange { start: 0, end: 0 });
        let (limit, ending) = match fault {
            Some(Fault::Truncate(n)) => (n, Ending::Clean),
            Some(Fault::Reset(n)) => (n, Ending::Reset),
            Some(Fault::Stall(n)) => (n, Ending::Stall),
            _ => (u64::MAX, Ending::Clean),
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
                end: range.end.min(range.start.saturating_add(limit)),
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
        if self.at < self.end {
            let len = (self.end - self.at).min(self.server.chunk);
            let mut chunk = vec![0; len as usize];
            fill(self.seed, self.at, &mut chunk);
            self.at += len;
            self.server.log.borrow_mut()[self.index].sent += len;
            let now = &self.server.clock.now;
            now.set(now.get() + MS_PER_CHUNK);
            return Ok(Some(chunk));
        }
        match self.ending {
            Ending::Clean => Ok(None),
            Ending::Reset => Err(TransportError::Network("connection reset".into())),
            Ending::Stall => std::future::pending().await,
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
pub type Dl = Download<ScriptedTransport, Store, VirtualClock>;

pub fn options(block_size: u64, connections: u32) -> Options {
    Options {
        block_size,
        connections,
        ..Options::new("https://files.example/data.bin")
    }
}

/// Opens a download of the server's file on its clock.
pub fn open(server: &Rc<Server>, store: &Store, options: Options) -> Dl {
    block_on(Download::open(
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
