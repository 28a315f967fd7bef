//! The fault-injecting range server: a registry of virtual files, content
//! responses with injected faults, redirects, the JSON admin API and CORS.
//!
//! One thread per connection; one or more listeners (see [`start_with`]) share
//! the same files, logs and faults. All shared state sits behind one mutex that
//! is held only briefly and recovered if poisoned, so a panicking connection
//! cannot stop the others.
//!
//! # Routes
//!
//! - `GET|HEAD /files/{name}[?token=T&...]`: the file's content (Range,
//!   If-Range, faults). Other query parameters are ignored.
//! - `GET|HEAD /redirect/{name}?to=URL`: `302`, `Location: URL`.
//!   Without `to`: `302` to `/files/{name}` on the same listener, keeping the
//!   rest of the query string.
//! - `POST /_admin/files/{name}?...`: create or change a file (parameters in
//!   `apply_params`); `POST /_admin/cut/{name}`; `GET /_admin/log/{name}`;
//!   `POST /_admin/log/{name}/clear`; `GET /_admin/sha256/{name}`;
//!   `GET /_admin/stats/{name}`; `GET /_admin/set-cookie?name=N&value=V`.
//! - `OPTIONS *`: CORS preflight.
//!
//! # Request log
//!
//! `GET /_admin/log/{name}` lists the file's GETs and HEADs (404s for unknown
//! files excepted) in the order they arrived, each once it has ended (the
//! answer waits up to a second for responses in progress). Clearing the log
//! (`POST /_admin/log/{name}/clear` or `clear_log=1`) forgets every request
//! that arrived before, including those still in progress, which then never
//! appear. Each entry is an object with, in this
//! order: `method`, `range` (the Range header or null), `status`, `start` and
//! `end` (the inclusive content range the response is about: what its
//! Content-Range says, the whole file for a 200, null for 403/416/503/HEAD),
//! `sent` (body bytes written to the socket; for multipart, boundaries and part
//! headers included), `if_range` (the If-Range header or null), `headers` (an
//! object of the request's `referer`, `cookie`, `origin`, `user-agent` and `x-*` headers,
//! lower-case names, repeats joined), `port` (the listener that served it),
//! `fault` (null or the name of the fault that shaped the response: `fail`,
//! `drop`, `stall`, `shift`, `short`, `cl_short`, `multipart`,
//! `no_content_range`, `chaos-503`, `chaos-drop`, `chaos-stall`, `token`),
//! `started_ms` and `ended_ms` (milliseconds since the server started).
//!
//! `GET /_admin/stats/{name}` answers `{"max_concurrent":N,"requests":N}`: the
//! most GET responses of the file written at the same time (each counts from
//! its head to its end) and the number of GETs answered, both since the file
//! was created or its log cleared.
//!
//! # Fault precedence
//!
//! For each `GET /files/{name}` (a HEAD takes no fault and is not counted by
//! chaos, but is subject to the token check):
//!
//! 1. `require_token`: a missing or wrong `token` query parameter answers `403`
//!    (logged as fault `"token"`). Such a GET takes no queued fault, draws no
//!    chaos decision and does not count towards `chaos_change_after`.
//! 2. Queued one-shot faults, at most one per GET: the GET takes (decrements)
//!    the first non-zero counter in this order: `fail_next`, `drop_next`,
//!    `stall_next`, `shift_next`, `short_next`, `cl_short_next`,
//!    `multipart_next`, `no_content_range_next`. The range faults (`shift` to
//!    `no_content_range`) only change a `206` answer to a satisfiable single
//!    range; a GET answered otherwise (`200` full body, `416`) still uses up
//!    the fault and is logged with fault `null`.
//! 3. Chaos (`chaos=SEED`): every GET that passed step 1 draws its chaos
//!    decision and counts towards `chaos_change_after`, but the decision only
//!    applies when step 2 took no queued fault.
//! 4. Persistent settings (`ignore_range`, `throttle`, `unknown_total`,
//!    `encoding`, validators...) apply to every response, together with the
//!    fault chosen above.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::content::{content_etag, content_last_modified, fill, splitmix64, GOLDEN};
use crate::gzip::{crc32, Part, StoredGzip};
use crate::http::{self, RangeAnswer, ReadError, Request};
use crate::sha256::{self, Sha256};
use crate::MULTIPART_BOUNDARY;

/// Largest accepted request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read (and discarded); admin POSTs need none.
const MAX_REQUEST_BODY: u64 = 1024 * 1024;
/// Idle keep-alive connections (and slow request heads) close after this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A write to a client that stopped reading fails after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// A stalled response gives up (and closes) after this.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How often waiting loops look for a cut or a closed peer.
const POLL: Duration = Duration::from_millis(20);
/// Size of the per-connection content buffer: bytes per unthrottled write.
const CHUNK: usize = 64 * 1024;
/// Largest single write of a throttled body.
const THROTTLE_CHUNK: u64 = 16 * 1024;
/// Request log entries kept per file; the oldest go first.
const MAX_LOG: usize = 100_000;
/// How long `GET /_admin/log` waits for responses still in progress, so that a
/// client that has just read a whole body also finds its log entry.
const LOG_SETTLE: Duration = Duration::from_secs(1);
const DEFAULT_EXPOSE: &str = "Content-Range, Content-Length, Content-Encoding, \
     Content-Disposition, ETag, Last-Modified, Accept-Ranges, Repr-Digest";
/// Default `chaos_rate`, in percent.
const DEFAULT_CHAOS_RATE: u64 = 20;

/// A running server. Dropping it stops accepting new connections.
pub struct Handle {
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    accept: Vec<JoinHandle<()>>,
}

impl Handle {
    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every listener's address, in the order of the ports given to [`start_with`].
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first listener's port.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Every listener's port, in order.
    pub fn ports(&self) -> Vec<u16> {
        self.addrs.iter().map(SocketAddr::port).collect()
    }

    /// `http://127.0.0.1:PORT` (first listener) followed by `path`.
    pub fn url(&self, path: &str) -> String {
        self.url_on(0, path)
    }

    /// `http://127.0.0.1:PORT` of listener `index` followed by `path`.
    ///
    /// Panics if there is no such listener.
    pub fn url_on(&self, index: usize, path: &str) -> String {
        format!("http://{}{}", self.addrs[index], path)
    }

    /// Blocks while the server runs (for the binary: until the process is killed).
    pub fn wait(mut self) {
        for accept in std::mem::take(&mut self.accept) {
            let _ = accept.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake each blocking accept() so that its thread sees `stop`.
        for addr in &self.addrs {
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
    }
}

/// Binds 127.0.0.1:`port` (0 = any free port) and serves in background threads.
pub fn start(port: u16) -> io::Result<Handle> {
    start_with(&[port])
}

/// Binds one listener on 127.0.0.1 per entry of `ports` (0 = any free port),
/// all serving the same files, logs and faults: e.g. `start_with(&[0, 0])` for
/// cross-origin tests. The request log tells which port served a request.
pub fn start_with(ports: &[u16]) -> io::Result<Handle> {
    if ports.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "at least one port is needed",
        ));
    }
    // Bind everything first: a port in use leaves nothing running.
    let mut listeners = Vec::with_capacity(ports.len());
    for &port in ports {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let addr = listener.local_addr()?;
        listeners.push((listener, addr));
    }
    let mut handle = Handle {
        addrs: listeners.iter().map(|&(_, addr)| addr).collect(),
        stop: Arc::new(AtomicBool::new(false)),
        accept: Vec::with_capacity(ports.len()),
    };
    let shared = Arc::new(Shared::new());
    for (listener, addr) in listeners {
        let stop = handle.stop.clone();
        let shared = shared.clone();
        // On error, dropping `handle` stops the accept threads already started.
        let accept = thread::Builder::new()
            .name("fault-server-accept".into())
            .spawn(move || accept_loop(listener, shared, stop, addr.port()))?;
        handle.accept.push(accept);
    }
    Ok(handle)
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>, port: u16) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => {
                let shared = shared.clone();
                // If no thread can be spawned the stream is dropped (closed).
                let _ = thread::Builder::new()
                    .name("fault-server-conn".into())
                    .spawn(move || serve_connection(&shared, stream, port));
            }
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => thread::sleep(POLL),
        }
    }
}

// ---------------------------------------------------------------------------
// Shared state

/// How one virtual file behaves; changed with `POST /_admin/files/{name}`.
#[derive(Clone, Debug)]
struct FileConfig {
    size: u64,
    seed: u64,
    weak_etag: bool,
    no_etag: bool,
    no_last_modified: bool,
    ignore_range: bool,
    fail_next: u64,
    drop_next: u64,
    drop_after: u64,
    stall_next: u64,
    stall_after: u64,
    shift_next: u64,
    shift_by: i64,
    short_next: u64,
    short_by: u64,
    cl_short_next: u64,
    cl_short_by: u64,
    multipart_next: u64,
    no_content_range_next: u64,
    /// Every 206 says `bytes a-b/*`.
    unknown_total: bool,
    /// Bytes per second; 0 = unthrottled.
    throttle: u64,
    /// `Content-Encoding` to claim; empty = none.
    encoding: String,
    /// `Access-Control-Expose-Headers`; None = the default list, "" = omit.
    expose: Option<String>,
    disposition: Option<String>,
    /// `Repr-Digest` on every answer: `Some(true)` the content's SHA-256,
    /// `Some(false)` a wrong one.
    repr_digest: Option<bool>,
    /// The `token` query parameter GETs and HEADs need; empty = none.
    require_token: String,
    /// Chaos mode: the seed of its decisions; None = off.
    chaos: Option<u64>,
    /// Percent of GETs that chaos hits.
    chaos_rate: u64,
    /// The seed changes to `seed + 1` after this many chaos GETs; 0 = never.
    chaos_change_after: u64,
    /// GETs counted since chaos was last configured.
    chaos_gets: u64,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            size: 0,
            seed: 1,
            weak_etag: false,
            no_etag: false,
            no_last_modified: false,
            ignore_range: false,
            fail_next: 0,
            drop_next: 0,
            drop_after: 0,
            stall_next: 0,
            stall_after: 0,
            shift_next: 0,
            shift_by: 0,
            short_next: 0,
            short_by: 0,
            cl_short_next: 0,
            cl_short_by: 0,
            multipart_next: 0,
            no_content_range_next: 0,
            unknown_total: false,
            throttle: 0,
            encoding: String::new(),
            expose: None,
            disposition: None,
            repr_digest: None,
            require_token: String::new(),
            chaos: None,
            chaos_rate: DEFAULT_CHAOS_RATE,
            chaos_change_after: 0,
            chaos_gets: 0,
        }
    }
}

impl FileConfig {
    fn etag(&self) -> Option<String> {
        let tag = content_etag(self.seed, self.size);
        match (self.no_etag, self.weak_etag) {
            (true, _) => None,
            (false, true) => Some(format!("W/{tag}")),
            (false, false) => Some(tag),
        }
    }

    fn last_modified(&self) -> Option<String> {
        (!self.no_last_modified).then(|| content_last_modified(self.seed))
    }

    /// Admits one GET that passed the token check: takes its fault by the
    /// precedence order of the module documentation (a queued fault, else the
    /// chaos decision) and counts it for chaos. Returns the fault and whether
    /// the content must change (to `seed + 1`) once this GET has its snapshot.
    fn admit_get(&mut self) -> (Fault, bool) {
        let queued = self.take_queued();
        let (drawn, change) = match self.chaos {
            Some(seed) => {
                let n = self.chaos_gets;
                self.chaos_gets += 1;
                let change =
                    self.chaos_change_after != 0 && self.chaos_gets == self.chaos_change_after;
                (chaos_decision(seed, n, self.chaos_rate), change)
            }
            None => (Fault::None, false),
        };
        let fault = if queued == Fault::None { drawn } else { queued };
        (fault, change)
    }

    /// Takes the first pending queued fault (see the module documentation).
    fn take_queued(&mut self) -> Fault {
        let counters: [(&mut u64, Fault); 8] = [
            (&mut self.fail_next, Fault::Fail { chaos: false }),
            (
                &mut self.drop_next,
                Fault::Drop {
                    after: After::Bytes(self.drop_after),
                    chaos: false,
                },
            ),
            (
                &mut self.stall_next,
                Fault::Stall {
                    after: After::Bytes(self.stall_after),
                    chaos: false,
                },
            ),
            (&mut self.shift_next, Fault::Shift(self.shift_by)),
            (&mut self.short_next, Fault::Short(self.short_by)),
            (&mut self.cl_short_next, Fault::ClShort(self.cl_short_by)),
            (&mut self.multipart_next, Fault::Multipart),
            (&mut self.no_content_range_next, Fault::NoContentRange),
        ];
        for (counter, fault) in counters {
            if *counter > 0 {
                *counter -= 1;
                return fault;
            }
        }
        Fault::None
    }
}

/// The chaos decision for GET number `n` (0-based, counted since chaos was
/// configured) of a file in chaos mode `seed` hitting `rate` percent of GETs.
///
/// The GET uses outputs `3n`, `3n + 1` and `3n + 2` of the SplitMix64 stream
/// seeded with `seed` (output `k` is `splitmix64(seed + k * 0x9E3779B97F4A7C15)`),
/// call them `roll`, `kind` and `bytes`: it is hit if `roll % 100 < rate`, and
/// then suffers by `kind % 3` a 503 (0), a drop (1) or a stall (2), the last two
/// after `bytes % L` body bytes where L is the body length (0 if L is 0).
fn chaos_decision(seed: u64, n: u64, rate: u64) -> Fault {
    let output = |k: u64| splitmix64(seed.wrapping_add(k.wrapping_mul(GOLDEN)));
    let first = n.wrapping_mul(3);
    let (roll, kind, bytes) = (
        output(first),
        output(first.wrapping_add(1)),
        output(first.wrapping_add(2)),
    );
    if roll % 100 >= rate {
        return Fault::None;
    }
    let after = After::Below(bytes);
    match kind % 3 {
        0 => Fault::Fail { chaos: true },
        1 => Fault::Drop { after, chaos: true },
        _ => Fault::Stall { after, chaos: true },
    }
}

/// Where a drop or stall starts in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// After this many bytes (the whole body if it is shorter).
    Bytes(u64),
    /// After `n % body length` bytes: always less than a non-empty body.
    Below(u64),
}

impl After {
    fn resolve(self, body_len: u64) -> u64 {
        match self {
            After::Bytes(n) => n.min(body_len),
            After::Below(n) => n.checked_rem(body_len).unwrap_or(0),
        }
    }
}

/// What one response suffers (at most one per GET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Missing or wrong token: answer 403.
    Token,
    /// Answer 503.
    Fail {
        chaos: bool,
    },
    /// Send some body bytes, then close.
    Drop {
        after: After,
        chaos: bool,
    },
    /// Send some body bytes, then go silent.
    Stall {
        after: After,
        chaos: bool,
    },
    /// A 206 for `a+N ..= b+N` (clamped to the file) instead of `a ..= b`.
    Shift(i64),
    /// A 206 for `a ..= b-N` (at least one byte).
    Short(u64),
    /// The full Content-Range, but Content-Length (and the body) N bytes shorter.
    ClShort(u64),
    /// The single range as a `multipart/byteranges` body.
    Multipart,
    /// A 206 without Content-Range.
    NoContentRange,
}

impl Fault {
    /// The name in the request log.
    fn name(self) -> Option<&'static str> {
        Some(match self {
            Fault::None => return None,
            Fault::Token => "token",
            Fault::Fail { chaos: false } => "fail",
            Fault::Fail { chaos: true } => "chaos-503",
            Fault::Drop { chaos: false, .. } => "drop",
            Fault::Drop { chaos: true, .. } => "chaos-drop",
            Fault::Stall { chaos: false, .. } => "stall",
            Fault::Stall { chaos: true, .. } => "chaos-stall",
            Fault::Shift(_) => "shift",
            Fault::Short(_) => "short",
            Fault::ClShort(_) => "cl_short",
            Fault::Multipart => "multipart",
            Fault::NoContentRange => "no_content_range",
        })
    }
}

/// One finished GET/HEAD, as reported by `GET /_admin/log/{name}`.
struct LogEntry {
    /// Admission order: the log lists entries by arrival, not by completion.
    id: u64,
    method: String,
    range: Option<String>,
    status: u16,
    /// Inclusive content range of the response (what Content-Range says or, for
    /// a 200, the whole file); the body may have been cut short.
    span: Option<(u64, u64)>,
    /// Body bytes actually written to the socket.
    sent: u64,
    if_range: Option<String>,
    /// Referer, Cookie, Origin and `x-*` request headers (lower-case names).
    headers: Vec<(String, String)>,
    /// The listener's port.
    port: u16,
    fault: Option<&'static str>,
    /// Milliseconds since the server started.
    started_ms: u64,
    ended_ms: u64,
}

struct FileState {
    config: FileConfig,
    log: VecDeque<LogEntry>,
    /// Bumped by every cut; responses compare it with the value they started with.
    cut: Arc<AtomicU64>,
    /// Responses in progress, by id, with a handle on their socket so that a cut
    /// can also interrupt a blocked write or a stall.
    active: HashMap<u64, TcpStream>,
    /// GET responses whose head has been sent and that have not ended.
    writing: u64,
    /// Most `writing` seen since creation or the last log clear.
    max_concurrent: u64,
    /// GETs answered since creation or the last log clear.
    requests: u64,
    /// Responses with a smaller id arrived before the last log clear: they are
    /// not logged, even if they end after it.
    logged_from: u64,
}

impl FileState {
    fn new(config: FileConfig) -> Self {
        FileState {
            config,
            log: VecDeque::new(),
            cut: Arc::new(AtomicU64::new(0)),
            active: HashMap::new(),
            writing: 0,
            max_concurrent: 0,
            requests: 0,
            logged_from: 0,
        }
    }

    /// Clears the log and restarts the statistics: requests that arrived before
    /// are forgotten, even those still in progress (which are not logged when
    /// they end), but the responses still being written count as such for
    /// `max_concurrent`. `next_id` is the id the next request will get.
    fn clear_log(&mut self, next_id: u64) {
        self.log.clear();
        self.requests = 0;
        self.max_concurrent = self.writing;
        self.logged_from = next_id;
    }
}

struct Shared {
    files: Mutex<HashMap<String, FileState>>,
    next_id: AtomicU64,
    /// When the server started: the zero of the log's `started_ms`/`ended_ms`.
    epoch: Instant,
}

impl Shared {
    fn new() -> Self {
        Shared {
            files: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn files(&self) -> MutexGuard<'_, HashMap<String, FileState>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Lets a response notice `POST /_admin/cut` for its file between writes.
struct CutWatch {
    counter: Arc<AtomicU64>,
    seen: u64,
}

impl CutWatch {
    fn is_cut(&self) -> bool {
        self.counter.load(Ordering::SeqCst) != self.seen
    }

    /// Sleeps until `deadline` in short steps; false if cut meanwhile.
    fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.is_cut() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep((deadline - now).min(POLL));
        }
    }
}

// ---------------------------------------------------------------------------
// Connections and routing

/// Whether the connection may carry another request.
#[derive(PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
}

fn next(close: bool) -> Next {
    if close {
        Next::Close
    } else {
        Next::KeepAlive
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream, port: u16) {
    let _ = stream.set_nodelay(true);
    let read_half = stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| stream.try_clone());
    let Ok(read_half) = read_half else { return };
    let mut reader = BufReader::new(read_half);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let req = match http::read_request(&mut reader, MAX_HEAD) {
            Ok(req) => req,
            Err(ReadError::Bad(msg)) => {
                let _ = send_error(&stream, None, 400, &msg, true);
                break;
            }
            Err(ReadError::Closed) => break,
        };
        if let Err(msg) = discard_body(&mut reader, &req) {
            let _ = send_error(&stream, Some(&req), 400, &msg, true);
            break;
        }
        match respond(shared, &stream, &mut buf, &req, port) {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Close) | Err(_) => break,
        }
    }
    linger_close(&stream, &mut reader);
}

/// Sends FIN after any data still queued, then reads (and drops) what the client
/// still sends for a moment: closing a socket with unread input makes the kernel
/// send RST, which can destroy a response (e.g. a 400) the client has not read yet.
fn linger_close(stream: &TcpStream, reader: &mut impl Read) {
    const LINGER: Duration = Duration::from_secs(2);
    if stream.shutdown(Shutdown::Write).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    while Instant::now() < deadline {
        match reader.read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_retryable(&e) => {}
            Err(_) => return,
        }
    }
}

/// Reads and drops a request body so the next request on the connection parses.
fn discard_body(reader: &mut impl Read, req: &Request) -> Result<(), String> {
    let length = req.content_length()?;
    if length > MAX_REQUEST_BODY {
        return Err("request body too large".into());
    }
    let copied = io::copy(&mut reader.take(length), &mut io::sink()).map_err(|e| e.to_string())?;
    if copied < length {
        return Err("request body ended early".into());
    }
    Ok(())
}

fn respond(
    shared: &Shared,
    stream: &TcpStream,
    buf: &mut [u8],
    req: &Request,
    port: u16,
) -> io::Result<Next> {
    let close = req.wants_close();
    if req.method == "OPTIONS" {
        return preflight(stream, req);
    }
    let readable = req.method == "GET" || req.method == "HEAD";
    if let Some(raw) = req.path.strip_prefix("/files/") {
        if readable {
            return match http::percent_decode(raw, false).filter(|n| !n.is_empty()) {
                Some(name) => Ok(serve_file(shared, stream, buf, req, &name, port)),
                None => send_error(stream, Some(req), 404, "not found", close),
            };
        }
    } else if let Some(raw) = req.path.strip_prefix("/redirect/") {
        if readable {
            return redirect(stream, req, raw);
        }
    } else if let Some(route) = req.path.strip_prefix("/_admin/") {
        let mut extra = Vec::new();
        let (status, body) = match admin(shared, req, route, &mut extra) {
            Ok(body) => (200, body),
            Err((status, msg)) => (status, error_json(&msg)),
        };
        return send_json(stream, Some(req), status, &body, close, extra);
    }
    send_error(stream, Some(req), 404, "not found", close)
}

/// `GET /redirect/{name}?to=URL` → 302 to URL; without `to`, 302 to
/// `/files/{name}` (relative: the same listener) with the rest of the query.
fn redirect(stream: &TcpStream, req: &Request, raw_name: &str) -> io::Result<Next> {
    let close = req.wants_close();
    if http::percent_decode(raw_name, false).is_none_or(|n| n.is_empty()) {
        return send_error(stream, Some(req), 404, "not found", close);
    }
    let mut to = None;
    let mut kept = Vec::new();
    for pair in req.query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        if http::percent_decode(raw_key, true).as_deref() != Some("to") {
            kept.push(pair);
        } else if to.is_none() {
            to = Some(http::percent_decode(raw_value, true));
        }
    }
    let location = match to {
        None if kept.is_empty() => format!("/files/{raw_name}"),
        None => format!("/files/{raw_name}?{}", kept.join("&")),
        Some(Some(url))
            if !url.is_empty() && !url.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            url
        }
        Some(_) => {
            let msg = "to must be a percent-encoded URL without spaces or control characters";
            return send_error(stream, Some(req), 400, msg, close);
        }
    };
    let mut headers = cors_headers(Some(req), DEFAULT_EXPOSE);
    headers.push(("Location", location));
    headers.push(("Cache-Control", "no-store".to_string()));
    headers.push(("Content-Length", "0".to_string()));
    write_head(stream, 302, &headers, close)?;
    Ok(next(close))
}

/// CORS headers for a response to `req` (None: the request could not be parsed).
/// `expose` is the Access-Control-Expose-Headers list; empty omits the header.
fn cors_headers(req: Option<&Request>, expose: &str) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(16);
    match req.and_then(|r| r.header("origin")) {
        // Echoing the origin (not `*`) also works for credentialed requests.
        Some(origin) => {
            headers.push(("Access-Control-Allow-Origin", origin.to_string()));
            headers.push(("Access-Control-Allow-Credentials", "true".to_string()));
            headers.push(("Vary", "Origin".to_string()));
        }
        None => headers.push(("Access-Control-Allow-Origin", "*".to_string())),
    }
    if !expose.is_empty() {
        headers.push(("Access-Control-Expose-Headers", expose.to_string()));
    }
    headers
}

fn preflight(stream: &TcpStream, req: &Request) -> io::Result<Next> {
    let close = req.wants_close();
    let mut headers = cors_headers(Some(req), DEFAULT_EXPOSE);
    headers.push((
        "Access-Control-Allow-Methods",
        "GET, HEAD, POST, OPTIONS".to_string(),
    ));
    if let Some(asked) = req.header("access-control-request-headers") {
        headers.push(("Access-Control-Allow-Headers", asked.to_string()));
    }
    // Chrome's Private Network Access preflights ask this for loopback targets.
    if req
        .header("access-control-request-private-network")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        headers.push(("Access-Control-Allow-Private-Network", "true".to_string()));
    }
    headers.push(("Access-Control-Max-Age", "600".to_string()));
    write_head(stream, 204, &headers, close)?;
    Ok(next(close))
}

fn write_head(
    mut stream: &TcpStream,
    status: u16,
    headers: &[(&str, String)],
    close: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes `data`, counting in `sent` every byte the socket accepted, even on error.
fn write_counted(mut stream: &TcpStream, mut data: &[u8], sent: &mut u64) -> io::Result<()> {
    while !data.is_empty() {
        match stream.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *sent += n as u64;
                data = &data[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends a JSON response; `extra` headers go after the standard ones.
fn send_json(
    stream: &TcpStream,
    req: Option<&Request>,
    status: u16,
    body: &str,
    close: bool,
    extra: Vec<(&'static str, String)>,
) -> io::Result<Next> {
    let mut headers = cors_headers(req, DEFAULT_EXPOSE);
    headers.push(("Content-Type", "application/json".to_string()));
    headers.push(("Content-Length", body.len().to_string()));
    headers.push(("Cache-Control", "no-store".to_string()));
    headers.extend(extra);
    write_head(stream, status, &headers, close)?;
    if req.is_none_or(|r| r.method != "HEAD") {
        let mut sent = 0;
        write_counted(stream, body.as_bytes(), &mut sent)?;
    }
    Ok(next(close))
}

fn send_error(
    stream: &TcpStream,
    req: Option<&Request>,
    status: u16,
    msg: &str,
    close: bool,
) -> io::Result<Next> {
    send_json(stream, req, status, &error_json(msg), close, Vec::new())
}

fn error_json(msg: &str) -> String {
    format!("{{\"error\":{}}}", json_string(msg))
}

/// A JSON string literal of `s`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt_string(s: Option<&str>) -> String {
    s.map_or("null".to_string(), json_string)
}

// ---------------------------------------------------------------------------
// Content responses

/// What happened to one content response, for the log and the connection.
struct Done {
    status: u16,
    span: Option<(u64, u64)>,
    sent: u64,
    close: bool,
    /// The fault that shaped the response, if any.
    fault: Option<&'static str>,
}

/// The request headers the log keeps: Referer, Cookie, Origin and every `x-*`,
/// by lower-case name in order of appearance (repeats joined with ", ").
fn logged_headers(req: &Request) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = Vec::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "referer" | "cookie" | "origin" | "user-agent"
        ) && !name.starts_with("x-")
        {
            continue;
        }
        match kept.iter_mut().find(|(k, _)| *k == name) {
            Some((_, joined)) => {
                joined.push_str(if name == "cookie" { "; " } else { ", " });
                joined.push_str(value);
            }
            None => kept.push((name, value.clone())),
        }
    }
    kept
}

/// The first `token` query parameter (None if absent or the query is malformed).
fn query_token(req: &Request) -> Option<String> {
    http::parse_query(&req.query)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == "token").then_some(v))
}

fn serve_file(
    shared: &Shared,
    stream: &TcpStream,
    buf: &mut [u8],
    req: &Request,
    name: &str,
    port: u16,
) -> Next {
    let is_get = req.method == "GET";
    let token = query_token(req);
    let started = {
        let mut files = shared.files();
        files.get_mut(name).map(|file| {
            // Taken under the lock: ids and start times follow admission order.
            let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
            let started_ms = shared.now_ms();
            let required = &file.config.require_token;
            let (fault, change) = if !required.is_empty() && token.as_ref() != Some(required) {
                (Fault::Token, false)
            } else if is_get {
                file.config.admit_get()
            } else {
                (Fault::None, false)
            };
            let config = file.config.clone();
            if change {
                file.config.seed = file.config.seed.wrapping_add(1);
            }
            if is_get {
                file.requests += 1;
            }
            if let Ok(handle) = stream.try_clone() {
                file.active.insert(id, handle);
            }
            let cut = CutWatch {
                counter: file.cut.clone(),
                seen: file.cut.load(Ordering::SeqCst),
            };
            (id, started_ms, config, fault, cut)
        })
    };
    let Some((id, started_ms, config, fault, cut)) = started else {
        let msg = format!("no such file: {name}");
        let answer = send_error(stream, Some(req), 404, &msg, req.wants_close());
        return answer.unwrap_or(Next::Close);
    };
    let mut in_progress = InProgress {
        shared,
        name,
        id,
        writing: false,
    };
    let done = write_file_response(stream, buf, req, &config, fault, &cut, &mut |moment| {
        if is_get {
            match moment {
                Moment::Head => in_progress.head_sent(),
                Moment::LastWrite => in_progress.last_write(),
            }
        }
    });
    // Log before the connection is closed, so that a client seeing EOF finds the
    // entry, and in the same critical section as leaving the in-progress set.
    let mut files = shared.files();
    if let Some(file) = files.get_mut(name).filter(|f| id >= f.logged_from) {
        if file.log.len() >= MAX_LOG {
            file.log.pop_front();
        }
        // After the entries of earlier arrivals (usually: at the end).
        let at = file
            .log
            .iter()
            .rposition(|e| e.id < id)
            .map_or(0, |i| i + 1);
        file.log.insert(
            at,
            LogEntry {
                id,
                method: req.method.clone(),
                range: req.header("range").map(str::to_string),
                status: done.status,
                span: done.span,
                sent: done.sent,
                if_range: req.header("if-range").map(str::to_string),
                headers: logged_headers(req),
                port,
                fault: done.fault,
                started_ms,
                ended_ms: shared.now_ms(),
            },
        );
    }
    if let Some(file) = files.get_mut(name) {
        in_progress.release(file);
    }
    drop(files);
    drop(in_progress);
    next(done.close)
}

/// Takes a response out of its file's in-progress set (and the count of
/// responses being written) when dropped, even if writing it panicked, so cuts
/// and log reads never wait for a dead response.
struct InProgress<'a> {
    shared: &'a Shared,
    name: &'a str,
    id: u64,
    /// Counted in the file's `writing`.
    writing: bool,
}

impl InProgress<'_> {
    /// The head of a GET response is going out: it now counts as being written.
    fn head_sent(&mut self) {
        if let Some(file) = self.shared.files().get_mut(self.name) {
            file.writing += 1;
            file.max_concurrent = file.max_concurrent.max(file.writing);
            self.writing = true;
        }
    }

    /// The last bytes are going out: from the client's side the response may
    /// be over before this thread runs again, so it stops counting now (a
    /// `max_concurrent` never counts a response the client already finished).
    fn last_write(&mut self) {
        if std::mem::take(&mut self.writing) {
            if let Some(file) = self.shared.files().get_mut(self.name) {
                file.writing = file.writing.saturating_sub(1);
            }
        }
    }

    fn release(&mut self, file: &mut FileState) {
        file.active.remove(&self.id);
        if std::mem::take(&mut self.writing) {
            file.writing = file.writing.saturating_sub(1);
        }
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.shared.files().get_mut(self.name) {
            self.release(file);
        }
    }
}

/// A response body: generated content bytes, optionally framed (multipart).
struct Body {
    /// Sent as gzip (stored blocks) of the content, for `encoding=gzip`.
    gzip: Option<StoredGzip>,
    prefix: Vec<u8>,
    seed: u64,
    start: u64,
    len: u64,
    suffix: Vec<u8>,
}

impl Body {
    fn content(seed: u64, start: u64, len: u64) -> Body {
        Body {
            gzip: None,
            prefix: Vec::new(),
            seed,
            start,
            len,
            suffix: Vec::new(),
        }
    }

    /// The same content, framed as a gzip stream.
    fn gzipped(mut self) -> Body {
        let mut crc = 0;
        let mut buf = vec![0u8; 64 << 10];
        let mut at = 0;
        while at < self.len {
            let n = (self.len - at).min(buf.len() as u64) as usize;
            fill(self.seed, self.start + at, &mut buf[..n]);
            crc = crc32(crc, &buf[..n]);
            at += n as u64;
        }
        self.gzip = Some(StoredGzip { len: self.len, crc });
        self
    }

    fn total(&self) -> u64 {
        if let Some(gz) = self.gzip {
            return gz.total();
        }
        (self.prefix.len() as u64)
            .saturating_add(self.len)
            .saturating_add(self.suffix.len() as u64)
    }

    /// Fills `out` with the body bytes from position `pos` (within the body).
    fn fill(&self, pos: u64, out: &mut [u8]) {
        if let Some(gz) = self.gzip {
            let (mut pos, mut out) = (pos, out);
            while !out.is_empty() {
                let n = match gz.part_at(pos) {
                    Part::Frame(bytes) => {
                        let n = bytes.len().min(out.len());
                        out[..n].copy_from_slice(&bytes[..n]);
                        n
                    }
                    Part::Content { at, n } => {
                        let n = (n as usize).min(out.len());
                        fill(self.seed, self.start + at, &mut out[..n]);
                        n
                    }
                };
                pos += n as u64;
                out = &mut out[n..];
            }
            return;
        }
        let prefix_len = self.prefix.len() as u64;
        let content_end = prefix_len.saturating_add(self.len);
        let mut pos = pos;
        let mut out = out;
        while !out.is_empty() {
            let n;
            if pos < prefix_len {
                let from = pos as usize;
                n = out.len().min(self.prefix.len() - from);
                out[..n].copy_from_slice(&self.prefix[from..from + n]);
            } else if pos < content_end {
                n = (content_end - pos).min(out.len() as u64) as usize;
                fill(self.seed, self.start + (pos - prefix_len), &mut out[..n]);
            } else {
                let from = (pos - content_end) as usize;
                n = out.len();
                out.copy_from_slice(&self.suffix[from..from + n]);
            }
            pos += n as u64;
            out = &mut out[n..];
        }
    }
}

/// `a+by ..= b+by`, both ends clamped to a file of `size` (> 0) bytes.
fn shifted(a: u64, b: u64, by: i64, size: u64) -> (u64, u64) {
    let last = i128::from(size) - 1;
    let clamp = |x: u64| (i128::from(x) + i128::from(by)).clamp(0, last) as u64;
    (clamp(a), clamp(b))
}

/// Sends a small text/plain response (403 or 503).
fn write_text_response(
    stream: &TcpStream,
    mut headers: Vec<(&'static str, String)>,
    status: u16,
    body: &[u8],
    req: &Request,
    on_moment: &mut dyn FnMut(Moment),
) -> (u64, bool) {
    headers.push(("Content-Type", "text/plain".to_string()));
    headers.push(("Content-Length", body.len().to_string()));
    headers.push(("Cache-Control", "no-store".to_string()));
    on_moment(Moment::Head);
    if write_head(stream, status, &headers, req.wants_close()).is_err() {
        return (0, false);
    }
    let mut sent = 0;
    let ok = req.method == "HEAD" || write_counted(stream, body, &mut sent).is_ok();
    (sent, ok)
}

/// Moments of a response that the count of responses being written follows.
enum Moment {
    /// The head is about to be sent.
    Head,
    /// The last body bytes are about to be written.
    LastWrite,
}

/// Writes the response for a file; calls `on_moment` just before its head is
/// sent (so a client that has read the head always finds it counted) and just
/// before its last body bytes are.
fn write_file_response(
    stream: &TcpStream,
    buf: &mut [u8],
    req: &Request,
    config: &FileConfig,
    fault: Fault,
    cut: &CutWatch,
    on_moment: &mut dyn FnMut(Moment),
) -> Done {
    let client_close = req.wants_close();
    let expose = config.expose.as_deref().unwrap_or(DEFAULT_EXPOSE);
    let mut headers = cors_headers(Some(req), expose);

    let text = match fault {
        Fault::Token => Some((403, &b"fault-server: missing or wrong token\n"[..])),
        Fault::Fail { .. } => {
            headers.push(("Retry-After", "0".to_string()));
            Some((
                503,
                &b"fault-server: injected 503 Service Unavailable\n"[..],
            ))
        }
        _ => None,
    };
    if let Some((status, body)) = text {
        let (sent, ok) = write_text_response(stream, headers, status, body, req, on_moment);
        return Done {
            status,
            span: None,
            sent,
            close: client_close || !ok,
            fault: fault.name(),
        };
    }

    let size = config.size;
    let etag = config.etag();
    let last_modified = config.last_modified();
    let answer = match req.header("range") {
        Some(range)
            if !config.ignore_range
                && if_range_allows(
                    req.header("if-range"),
                    etag.as_deref(),
                    last_modified.as_deref(),
                ) =>
        {
            http::resolve_range(range, size)
        }
        _ => RangeAnswer::Full,
    };
    let (status, mut span) = match answer {
        RangeAnswer::Full => (200, size.checked_sub(1).map(|last| (0, last))),
        RangeAnswer::Partial(start, end) => (206, Some((start, end))),
        RangeAnswer::Unsatisfiable => (416, None),
    };

    // The range faults reshape a 206 only; drops and stalls apply to any answer.
    let mut applied = matches!(fault, Fault::Drop { .. } | Fault::Stall { .. });
    let mut shortfall = 0;
    let mut multipart = false;
    let mut content_range = true;
    if let (206, Some((a, b))) = (status, span) {
        match fault {
            Fault::Shift(by) => span = Some(shifted(a, b, by, size)),
            Fault::Short(by) => span = Some((a, b.saturating_sub(by).max(a))),
            Fault::ClShort(by) => shortfall = by,
            Fault::Multipart => multipart = true,
            Fault::NoContentRange => content_range = false,
            _ => {}
        }
        applied = fault != Fault::None;
    }
    // Saturating: only a file of size u64::MAX could overflow the length.
    let (start, len) = span.map_or((0, 0), |(a, b)| (a, (b - a).saturating_add(1)));
    let range_value = match span {
        Some((a, b)) if status == 206 => {
            let total = if config.unknown_total {
                "*".to_string()
            } else {
                size.to_string()
            };
            Some(format!("bytes {a}-{b}/{total}"))
        }
        _ => None,
    };

    if multipart {
        let content_type = format!("multipart/byteranges; boundary={MULTIPART_BOUNDARY}");
        headers.push(("Content-Type", content_type));
    } else {
        headers.push(("Content-Type", "application/octet-stream".to_string()));
    }
    headers.push(("Accept-Ranges", "bytes".to_string()));
    if let Some(etag) = etag {
        headers.push(("ETag", etag));
    }
    if let Some(date) = last_modified {
        headers.push(("Last-Modified", date));
    }
    headers.push(("Cache-Control", "no-store".to_string()));
    if let Some(disposition) = &config.disposition {
        headers.push(("Content-Disposition", disposition.clone()));
    }
    if let Some(good) = config.repr_digest {
        let mut digest = content_sha256(config.seed, size);
        if !good {
            digest[0] ^= 0xff;
        }
        let value = format!("sha-256=:{}:", sha256::base64(&digest));
        headers.push(("Repr-Digest", value));
    }
    if status != 416 && !config.encoding.is_empty() {
        headers.push(("Content-Encoding", config.encoding.clone()));
    }
    let body = match &range_value {
        Some(value) if multipart => Body {
            gzip: None,
            prefix: format!(
                "--{MULTIPART_BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Range: {value}\r\n\r\n"
            )
            .into_bytes(),
            seed: config.seed,
            start,
            len,
            suffix: format!("\r\n--{MULTIPART_BOUNDARY}--\r\n").into_bytes(),
        },
        Some(value) => {
            if content_range {
                headers.push(("Content-Range", value.clone()));
            }
            Body::content(config.seed, start, len - shortfall.min(len))
        }
        None => {
            if status == 416 {
                headers.push(("Content-Range", format!("bytes */{size}")));
            }
            Body::content(config.seed, start, len)
        }
    };
    let body = if status != 416 && config.encoding.eq_ignore_ascii_case("gzip") {
        body.gzipped()
    } else {
        body
    };
    let total = body.total();
    headers.push(("Content-Length", total.to_string()));

    let mut done = Done {
        status,
        span,
        sent: 0,
        close: true,
        fault: fault.name().filter(|_| applied),
    };
    on_moment(Moment::Head);
    if write_head(stream, status, &headers, client_close).is_err() {
        return done;
    }
    if req.method == "HEAD" {
        done.span = None;
        done.close = client_close;
        return done;
    }
    let limit = match fault {
        Fault::Drop { after, .. } | Fault::Stall { after, .. } => after.resolve(total),
        _ => total,
    };
    // A drop or stall ends early: its last write is not the end of the response.
    let whole = limit == total;
    let mut on_body_moment = |moment| {
        if whole || !matches!(moment, Moment::LastWrite) {
            on_moment(moment)
        }
    };
    let (sent, finished) = send_body(
        stream,
        buf,
        &body,
        limit,
        config.throttle,
        cut,
        &mut on_body_moment,
    );
    done.sent = sent;
    done.close = match fault {
        _ if !finished => true,
        Fault::Drop { .. } => true,
        Fault::Stall { .. } => {
            if limit < total {
                stall(stream, cut);
            }
            true
        }
        _ => client_close,
    };
    done
}

/// RFC 9110 section 13.1.5: honour Range only if If-Range (when present) still
/// names the current content: a strong ETag match or the exact Last-Modified.
fn if_range_allows(
    if_range: Option<&str>,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> bool {
    match if_range {
        None => true,
        // Strong comparison: a weak tag never matches (ours or theirs).
        Some(tag) if tag.starts_with("W/") => false,
        Some(tag) if tag.starts_with('"') => etag == Some(tag),
        Some(date) => last_modified == Some(date),
    }
}

/// Writes the first `limit` bytes of `body`, paced to `throttle` bytes/s if
/// non-zero. Returns the bytes written and whether all were (no error, no cut).
fn send_body(
    stream: &TcpStream,
    buf: &mut [u8],
    body: &Body,
    limit: u64,
    throttle: u64,
    cut: &CutWatch,
    on_moment: &mut dyn FnMut(Moment),
) -> (u64, bool) {
    let began = Instant::now();
    let step = if throttle == 0 {
        buf.len() as u64
    } else {
        // About 20 writes a second, so the pacing is smooth even at low rates.
        (throttle / 20).clamp(1, THROTTLE_CHUNK)
    };
    let mut sent = 0;
    while sent < limit {
        if cut.is_cut() {
            return (sent, false);
        }
        if throttle > 0 {
            let due = began + Duration::from_secs_f64(sent as f64 / throttle as f64);
            if !cut.sleep_until(due) {
                return (sent, false);
            }
        }
        let chunk = &mut buf[..(limit - sent).min(step) as usize];
        body.fill(sent, chunk);
        if sent + chunk.len() as u64 == limit {
            on_moment(Moment::LastWrite);
        }
        if write_counted(stream, chunk, &mut sent).is_err() {
            return (sent, false);
        }
    }
    (sent, true)
}

/// Keeps the connection open and silent until the client closes it, the file
/// is cut, or `STALL_LIMIT` passes.
fn stall(stream: &TcpStream, cut: &CutWatch) {
    let deadline = Instant::now() + STALL_LIMIT;
    if stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut probe = [0u8; 1];
    while Instant::now() < deadline && !cut.is_cut() {
        match stream.peek(&mut probe) {
            Ok(0) => return, // The client closed.
            Ok(_) => thread::sleep(POLL),
            Err(e) if is_retryable(&e) => {}
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Admin API

type AdminResult = Result<String, (u16, String)>;

/// Answers an admin route; `extra` collects additional response headers.
fn admin(
    shared: &Shared,
    req: &Request,
    route: &str,
    extra: &mut Vec<(&'static str, String)>,
) -> AdminResult {
    let name_of = |raw: &str| {
        http::percent_decode(raw, false)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| (400, "missing or badly encoded file name".to_string()))
    };
    match req.method.as_str() {
        "POST" => {
            if let Some(raw) = route.strip_prefix("files/") {
                return update_file(shared, &name_of(raw)?, &req.query);
            }
            if let Some(raw) = route.strip_prefix("cut/") {
                return cut_file(shared, &name_of(raw)?);
            }
            if let Some(raw) = route
                .strip_prefix("log/")
                .and_then(|r| r.strip_suffix("/clear"))
            {
                return with_file(shared, &name_of(raw)?, |file| {
                    // Ids are taken under the same lock: none can slip in between.
                    file.clear_log(shared.next_id.load(Ordering::SeqCst));
                    "{\"cleared\":true}".to_string()
                });
            }
        }
        "GET" => {
            if let Some(raw) = route.strip_prefix("log/") {
                return log_json(shared, &name_of(raw)?);
            }
            if let Some(raw) = route.strip_prefix("sha256/") {
                return sha256_json(shared, &name_of(raw)?);
            }
            if let Some(raw) = route.strip_prefix("stats/") {
                return with_file(shared, &name_of(raw)?, |file| {
                    format!(
                        "{{\"max_concurrent\":{},\"requests\":{}}}",
                        file.max_concurrent, file.requests
                    )
                });
            }
            if route == "set-cookie" {
                return set_cookie(req, extra);
            }
        }
        _ => {}
    }
    Err((404, "not found".to_string()))
}

/// `GET /_admin/set-cookie?name=N&value=V`: `Set-Cookie: N=V; Path=/; SameSite=Lax`.
fn set_cookie(req: &Request, extra: &mut Vec<(&'static str, String)>) -> AdminResult {
    let params = http::parse_query(&req.query).map_err(|e| (400, e))?;
    let param = |key: &str| {
        params
            .iter()
            .find_map(|(k, v)| (k == key).then_some(v.as_str()))
    };
    let name = param("name").unwrap_or_default();
    let value = param("value").unwrap_or_default();
    if !http::is_token(name) {
        return Err((400, "name must be a non-empty token".to_string()));
    }
    // RFC 6265 cookie-octet: no controls, whitespace, DQUOTE, comma, semicolon or backslash.
    if !value
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && !b"\",;\\".contains(&b))
    {
        return Err((
            400,
            "value has characters a cookie cannot carry".to_string(),
        ));
    }
    extra.push((
        "Set-Cookie",
        format!("{name}={value}; Path=/; SameSite=Lax"),
    ));
    Ok(format!(
        "{{\"name\":{},\"value\":{}}}",
        json_string(name),
        json_string(value)
    ))
}

fn with_file<T>(
    shared: &Shared,
    name: &str,
    f: impl FnOnce(&mut FileState) -> T,
) -> Result<T, (u16, String)> {
    let mut files = shared.files();
    let file = files
        .get_mut(name)
        .ok_or_else(|| (404, format!("no such file: {name}")))?;
    Ok(f(file))
}

fn update_file(shared: &Shared, name: &str, query: &str) -> AdminResult {
    let params = http::parse_query(query).map_err(|e| (400, e))?;
    let mut files = shared.files();
    let existing = files.get(name).map(|f| f.config.clone());
    let creating = existing.is_none();
    // Validate everything on a copy: a bad request changes nothing.
    let mut config = existing.unwrap_or_default();
    let (size_given, clear_log) = apply_params(&mut config, &params).map_err(|e| (400, e))?;
    if creating && !size_given {
        return Err((400, format!("size is required when creating file {name:?}")));
    }
    let file = files
        .entry(name.to_string())
        .or_insert_with(|| FileState::new(config.clone()));
    file.config = config;
    if clear_log {
        file.clear_log(shared.next_id.load(Ordering::SeqCst));
    }
    let etag = file
        .config
        .etag()
        .map_or("null".to_string(), |e| json_string(&e));
    Ok(format!(
        "{{\"name\":{},\"size\":{},\"seed\":{},\"etag\":{}}}",
        json_string(name),
        file.config.size,
        file.config.seed,
        etag
    ))
}

/// Applies the query parameters of `POST /_admin/files/{name}`; returns (size
/// given, clear_log requested). Unset parameters keep their values.
///
/// - `size`, `seed`: the content (bytes are a function of seed and offset).
/// - `weak_etag`, `no_etag`, `no_last_modified`, `ignore_range`, `unknown_total`
///   (0/1): validators and range handling; `unknown_total=1` makes every 206 say
///   `bytes a-b/*` (a 416 still says `bytes */size`).
/// - `throttle` (bytes/s), `encoding`, `expose`, `disposition`: headers and pacing.
/// - `repr_digest` (`good`, `bad`, empty): a `Repr-Digest` of the content, right or wrong.
/// - Queued faults, each for the next K GETs: `fail_next`; `drop_next` with
///   `drop_after`; `stall_next` with `stall_after`; `shift_next` with `shift_by`
///   (signed); `short_next` with `short_by`; `cl_short_next` with `cl_short_by`;
///   `multipart_next`; `no_content_range_next`. See the module documentation
///   for their precedence.
/// - `require_token`: GETs and HEADs need `?token=T` (empty: none), else 403.
/// - `chaos` (a seed; empty or `off` = off), `chaos_rate` (percent, default 20),
///   `chaos_change_after` (default 0 = never): see [`chaos_decision`]. Giving
///   any of the three restarts the count of chaos GETs.
/// - `clear_log=1`: clears the log and the statistics.
fn apply_params(
    config: &mut FileConfig,
    params: &[(String, String)],
) -> Result<(bool, bool), String> {
    let mut size_given = false;
    let mut clear_log = false;
    for (key, value) in params {
        let number = || {
            http::parse_digits(value).ok_or_else(|| {
                format!("bad value for {key}: {value:?} (expected an unsigned integer)")
            })
        };
        let signed = || {
            let digits = value.strip_prefix('-').unwrap_or(value);
            http::parse_digits(digits)
                .and_then(|_| value.parse::<i64>().ok())
                .ok_or_else(|| format!("bad value for {key}: {value:?} (expected an integer)"))
        };
        let flag = || match value.as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(format!("bad value for {key}: {value:?} (expected 0 or 1)")),
        };
        // These end up in response headers: no CR/LF injection.
        let text = || {
            if value.chars().any(char::is_control) {
                Err(format!("bad value for {key}: control character"))
            } else {
                Ok(value.clone())
            }
        };
        match key.as_str() {
            "size" => {
                config.size = number()?;
                size_given = true;
            }
            "seed" => config.seed = number()?,
            "weak_etag" => config.weak_etag = flag()?,
            "no_etag" => config.no_etag = flag()?,
            "no_last_modified" => config.no_last_modified = flag()?,
            "ignore_range" => config.ignore_range = flag()?,
            "fail_next" => config.fail_next = number()?,
            "drop_next" => config.drop_next = number()?,
            "drop_after" => config.drop_after = number()?,
            "stall_next" => config.stall_next = number()?,
            "stall_after" => config.stall_after = number()?,
            "shift_next" => config.shift_next = number()?,
            "shift_by" => config.shift_by = signed()?,
            "short_next" => config.short_next = number()?,
            "short_by" => config.short_by = number()?,
            "cl_short_next" => config.cl_short_next = number()?,
            "cl_short_by" => config.cl_short_by = number()?,
            "multipart_next" => config.multipart_next = number()?,
            "no_content_range_next" => config.no_content_range_next = number()?,
            "unknown_total" => config.unknown_total = flag()?,
            "throttle" => config.throttle = number()?,
            "encoding" => config.encoding = text()?,
            "expose" => {
                let list = text()?;
                let names: Vec<&str> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                config.expose = Some(names.join(", "));
            }
            "disposition" => config.disposition = Some(text()?).filter(|d| !d.is_empty()),
            "repr_digest" => {
                config.repr_digest = match text()?.as_str() {
                    "good" => Some(true),
                    "bad" => Some(false),
                    "" => None,
                    other => return Err(format!("repr_digest={other:?}: use good, bad or empty")),
                }
            }
            "require_token" => config.require_token = text()?,
            "chaos" => {
                config.chaos = match value.as_str() {
                    "" | "off" => None,
                    _ => Some(number()?),
                };
                config.chaos_gets = 0;
            }
            "chaos_rate" => {
                let rate = number()?;
                if rate > 100 {
                    return Err(format!("bad value for {key}: {value:?} (at most 100)"));
                }
                config.chaos_rate = rate;
                config.chaos_gets = 0;
            }
            "chaos_change_after" => {
                config.chaos_change_after = number()?;
                config.chaos_gets = 0;
            }
            "clear_log" => clear_log = flag()?,
            _ => return Err(format!("unknown parameter: {key}")),
        }
    }
    Ok((size_given, clear_log))
}

/// Ends every response of the file in progress: bumps its cut counter (seen
/// between writes) and shuts their sockets (ends blocked writes and stalls).
fn cut_file(shared: &Shared, name: &str) -> AdminResult {
    with_file(shared, name, |file| {
        file.cut.fetch_add(1, Ordering::SeqCst);
        for socket in file.active.values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        format!("{{\"cut\":{}}}", file.active.len())
    })
}

fn log_json(shared: &Shared, name: &str) -> AdminResult {
    let settle_until = Instant::now() + LOG_SETTLE;
    loop {
        let rendered = with_file(shared, name, |file| {
            let settled = file.active.is_empty() || Instant::now() >= settle_until;
            settled.then(|| render_log(&file.log))
        })?;
        if let Some(json) = rendered {
            return Ok(json);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn render_log(log: &VecDeque<LogEntry>) -> String {
    let entries: Vec<String> = log
        .iter()
        .map(|e| {
            let (start, end) = e
                .span
                .map_or(("null".to_string(), "null".to_string()), |(a, b)| {
                    (a.to_string(), b.to_string())
                });
            let headers: Vec<String> = e
                .headers
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                .collect();
            format!(
                "{{\"method\":{},\"range\":{},\"status\":{},\"start\":{},\"end\":{},\"sent\":{},\
                 \"if_range\":{},\"headers\":{{{}}},\"port\":{},\"fault\":{},\
                 \"started_ms\":{},\"ended_ms\":{}}}",
                json_string(&e.method),
                json_opt_string(e.range.as_deref()),
                e.status,
                start,
                end,
                e.sent,
                json_opt_string(e.if_range.as_deref()),
                headers.join(","),
                e.port,
                json_opt_string(e.fault),
                e.started_ms,
                e.ended_ms
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

fn sha256_json(shared: &Shared, name: &str) -> AdminResult {
    let (seed, size) = with_file(shared, name, |f| (f.config.seed, f.config.size))?;
    Ok(format!(
        "{{\"sha256\":\"{}\"}}",
        sha256::hex(&content_sha256(seed, size))
    ))
}

/// The SHA-256 of a file's content (hashed each time: meant for test-sized files).
fn content_sha256(seed: u64, size: u64) -> [u8; 32] {
    let mut buf = vec![0; CHUNK];
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < size {
        let chunk = &mut buf[..(size - offset).min(CHUNK as u64) as usize];
        fill(seed, offset, chunk);
        hasher.update(chunk);
        offset += chunk.len() as u64;
    }
    hasher.finish()
}

/// A read that timed out or was interrupted: try again until the deadline.
fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_range_rules() {
        let tag = Some("\"abc-1\"");
        let date = Some("Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(if_range_allows(None, tag, date));
        assert!(if_range_allows(Some("\"abc-1\""), tag, date));
        assert!(!if_range_allows(Some("\"abc-2\""), tag, date));
        assert!(!if_range_allows(
            Some("W/\"abc-1\""),
            Some("W/\"abc-1\""),
            date
        ));
        assert!(!if_range_allows(
            Some("\"abc-1\""),
            Some("W/\"abc-1\""),
            date
        ));
        assert!(if_range_allows(
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            tag,
            date
        ));
        assert!(!if_range_allows(
            Some("Mon, 07 Nov 1994 08:49:37 GMT"),
            tag,
            date
        ));
        assert!(!if_range_allows(
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            tag,
            None
        ));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn params_validate_and_keep_unset_values() {
        let mut config = FileConfig::default();
        let params = |q: &str| http::parse_query(q).unwrap();
        assert_eq!(
            apply_params(&mut config, &params("size=10&fail_next=2")),
            Ok((true, false))
        );
        assert_eq!((config.size, config.seed, config.fail_next), (10, 1, 2));
        assert_eq!(
            apply_params(&mut config, &params("seed=5&clear_log=1")),
            Ok((false, true))
        );
        assert_eq!((config.size, config.seed), (10, 5));
        assert!(apply_params(&mut config, &params("size=-1"))
            .unwrap_err()
            .contains("size"));
        assert!(apply_params(&mut config, &params("bogus=1"))
            .unwrap_err()
            .contains("bogus"));
        assert!(apply_params(&mut config, &params("weak_etag=2")).is_err());
        assert!(apply_params(&mut config, &params("disposition=a%0d%0ab")).is_err());
        apply_params(&mut config, &params("expose=ETag,+X-Custom,")).unwrap();
        assert_eq!(config.expose.as_deref(), Some("ETag, X-Custom"));
    }

    #[test]
    fn new_params_validate() {
        let mut config = FileConfig::default();
        let params = |q: &str| http::parse_query(q).unwrap();
        apply_params(&mut config, &params("shift_by=-12&short_by=3")).unwrap();
        assert_eq!((config.shift_by, config.short_by), (-12, 3));
        apply_params(&mut config, &params("shift_by=9223372036854775807")).unwrap();
        assert_eq!(config.shift_by, i64::MAX);
        for bad in [
            "shift_by=--1",
            "shift_by=-",
            "shift_by=%2B1",
            "shift_by=9223372036854775808",
            "short_by=-1",
            "chaos=x",
            "chaos_rate=101",
            "unknown_total=2",
            "require_token=a%0a",
        ] {
            assert!(apply_params(&mut config, &params(bad)).is_err(), "{bad}");
        }
        apply_params(&mut config, &params("chaos=7&chaos_rate=100")).unwrap();
        assert_eq!((config.chaos, config.chaos_rate), (Some(7), 100));
        config.chaos_gets = 5;
        apply_params(&mut config, &params("chaos_change_after=3")).unwrap();
        assert_eq!(config.chaos_gets, 0);
        apply_params(&mut config, &params("chaos=off")).unwrap();
        assert_eq!(config.chaos, None);
        apply_params(&mut config, &params("chaos=")).unwrap();
        assert_eq!(config.chaos, None);
    }

    #[test]
    fn queued_faults_follow_the_precedence_order() {
        let mut config = FileConfig::default();
        let query = "fail_next=1&drop_next=1&drop_after=5&stall_next=1&stall_after=6\
                     &shift_next=1&shift_by=-2&short_next=1&short_by=3&cl_short_next=1\
                     &cl_short_by=4&multipart_next=1&no_content_range_next=1";
        apply_params(&mut config, &http::parse_query(query).unwrap()).unwrap();
        let taken: Vec<Fault> = (0..9).map(|_| config.admit_get().0).collect();
        assert_eq!(
            taken,
            [
                Fault::Fail { chaos: false },
                Fault::Drop {
                    after: After::Bytes(5),
                    chaos: false
                },
                Fault::Stall {
                    after: After::Bytes(6),
                    chaos: false
                },
                Fault::Shift(-2),
                Fault::Short(3),
                Fault::ClShort(4),
                Fault::Multipart,
                Fault::NoContentRange,
                Fault::None,
            ]
        );
    }

    #[test]
    fn chaos_is_the_splitmix64_stream() {
        // Output k of SplitMix64 seeded with s is splitmix64(s + k * GOLDEN).
        let mut state = 42u64;
        let mut stream = || {
            state = state.wrapping_add(GOLDEN);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for n in 0..50 {
            let (roll, kind, bytes) = (stream(), stream(), stream());
            let expected = if roll % 100 >= 50 {
                Fault::None
            } else {
                let after = After::Below(bytes);
                match kind % 3 {
                    0 => Fault::Fail { chaos: true },
                    1 => Fault::Drop { after, chaos: true },
                    _ => Fault::Stall { after, chaos: true },
                }
            };
            assert_eq!(chaos_decision(42, n, 50), expected, "GET {n}");
        }
        assert!((0..100).all(|n| chaos_decision(1, n, 0) == Fault::None));
        assert!((0..100).all(|n| chaos_decision(1, n, 100) != Fault::None));
    }

    #[test]
    fn bodies_fill_across_their_parts() {
        let body = Body {
            gzip: None,
            prefix: b"<head>".to_vec(),
            seed: 3,
            start: 100,
            len: 20,
            suffix: b"<tail>".to_vec(),
        };
        let mut whole = b"<head>".to_vec();
        let mut content = [0u8; 20];
        fill(3, 100, &mut content);
        whole.extend_from_slice(&content);
        whole.extend_from_slice(b"<tail>");
        assert_eq!(body.total(), whole.len() as u64);
        for pos in 0..whole.len() {
            for len in 0..=whole.len() - pos {
                let mut out = vec![0u8; len];
                body.fill(pos as u64, &mut out);
                assert_eq!(out, whole[pos..pos + len], "{pos}+{len}");
            }
        }
    }

    #[test]
    fn shifts_clamp_to_the_file() {
        assert_eq!(shifted(10, 19, 5, 100), (15, 24));
        assert_eq!(shifted(10, 19, -15, 100), (0, 4));
        assert_eq!(shifted(90, 99, 5, 100), (95, 99));
        assert_eq!(shifted(10, 19, 500, 100), (99, 99));
        assert_eq!(shifted(10, 19, i64::MIN, 100), (0, 0));
        assert_eq!(After::Below(7).resolve(5), 2);
        assert_eq!(After::Below(7).resolve(0), 0);
        assert_eq!(After::Bytes(7).resolve(5), 5);
    }
}
