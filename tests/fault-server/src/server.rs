//! The fault-injecting range server: a registry of virtual files, content
//! responses with injected faults, the JSON admin API and CORS.
//!
//! One thread per connection. All shared state sits behind one mutex that is
//! held only briefly and recovered if poisoned, so a panicking connection
//! cannot stop the others.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::content::{content_etag, content_last_modified, fill};
use crate::http::{self, RangeAnswer, ReadError, Request};
use crate::sha256::{self, Sha256};

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
     Content-Disposition, ETag, Last-Modified, Accept-Ranges";

/// A running server. Dropping it stops accepting new connections.
pub struct Handle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Handle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Blocks while the server runs (for the binary: until the process is killed).
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so that the accept thread sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Binds 127.0.0.1:`port` (0 = any free port) and serves in background threads.
pub fn start(port: u16) -> io::Result<Handle> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared::default());
    let accept = thread::Builder::new()
        .name("fault-server-accept".into())
        .spawn({
            let stop = stop.clone();
            move || accept_loop(listener, shared, stop)
        })?;
    Ok(Handle {
        addr,
        stop,
        accept: Some(accept),
    })
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
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
                    .spawn(move || serve_connection(&shared, stream));
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
    /// Bytes per second; 0 = unthrottled.
    throttle: u64,
    /// `Content-Encoding` to claim; empty = none.
    encoding: String,
    /// `Access-Control-Expose-Headers`; None = the default list, "" = omit.
    expose: Option<String>,
    disposition: Option<String>,
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
            throttle: 0,
            encoding: String::new(),
            expose: None,
            disposition: None,
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

    /// Takes the fault for the next GET: one at a time, fail before drop before stall.
    fn take_fault(&mut self) -> Fault {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            Fault::Fail
        } else if self.drop_next > 0 {
            self.drop_next -= 1;
            Fault::Drop(self.drop_after)
        } else if self.stall_next > 0 {
            self.stall_next -= 1;
            Fault::Stall(self.stall_after)
        } else {
            Fault::None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Answer 503.
    Fail,
    /// Send this many body bytes, then close.
    Drop(u64),
    /// Send this many body bytes, then go silent.
    Stall(u64),
}

/// One finished GET/HEAD, as reported by `GET /_admin/log/{name}`.
struct LogEntry {
    method: String,
    range: Option<String>,
    status: u16,
    /// Inclusive body range the server meant to send.
    span: Option<(u64, u64)>,
    /// Body bytes actually written to the socket.
    sent: u64,
}

struct FileState {
    config: FileConfig,
    log: VecDeque<LogEntry>,
    /// Bumped by every cut; responses compare it with the value they started with.
    cut: Arc<AtomicU64>,
    /// Responses in progress, by id, with a handle on their socket so that a cut
    /// can also interrupt a blocked write or a stall.
    active: HashMap<u64, TcpStream>,
}

#[derive(Default)]
struct Shared {
    files: Mutex<HashMap<String, FileState>>,
    next_id: AtomicU64,
}

impl Shared {
    fn files(&self) -> MutexGuard<'_, HashMap<String, FileState>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
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

fn serve_connection(shared: &Shared, stream: TcpStream) {
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
        match respond(shared, &stream, &mut buf, &req) {
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

fn respond(shared: &Shared, stream: &TcpStream, buf: &mut [u8], req: &Request) -> io::Result<Next> {
    let close = req.wants_close();
    if req.method == "OPTIONS" {
        return preflight(stream, req);
    }
    if let Some(raw) = req.path.strip_prefix("/files/") {
        if req.method == "GET" || req.method == "HEAD" {
            return match http::percent_decode(raw, false).filter(|n| !n.is_empty()) {
                Some(name) => Ok(serve_file(shared, stream, buf, req, &name)),
                None => send_error(stream, Some(req), 404, "not found", close),
            };
        }
    } else if let Some(route) = req.path.strip_prefix("/_admin/") {
        let (status, body) = match admin(shared, buf, req, route) {
            Ok(body) => (200, body),
            Err((status, msg)) => (status, error_json(&msg)),
        };
        return send_json(stream, Some(req), status, &body, close);
    }
    send_error(stream, Some(req), 404, "not found", close)
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
        400 => "Bad Request",
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

fn send_json(
    stream: &TcpStream,
    req: Option<&Request>,
    status: u16,
    body: &str,
    close: bool,
) -> io::Result<Next> {
    let mut headers = cors_headers(req, DEFAULT_EXPOSE);
    headers.push(("Content-Type", "application/json".to_string()));
    headers.push(("Content-Length", body.len().to_string()));
    headers.push(("Cache-Control", "no-store".to_string()));
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
    send_json(stream, req, status, &error_json(msg), close)
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

// ---------------------------------------------------------------------------
// Content responses

/// What happened to one content response, for the log and the connection.
struct Done {
    status: u16,
    span: Option<(u64, u64)>,
    sent: u64,
    close: bool,
}

fn serve_file(
    shared: &Shared,
    stream: &TcpStream,
    buf: &mut [u8],
    req: &Request,
    name: &str,
) -> Next {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let started = {
        let mut files = shared.files();
        files.get_mut(name).map(|file| {
            let fault = if req.method == "GET" {
                file.config.take_fault()
            } else {
                Fault::None
            };
            if let Ok(handle) = stream.try_clone() {
                file.active.insert(id, handle);
            }
            let cut = CutWatch {
                counter: file.cut.clone(),
                seen: file.cut.load(Ordering::SeqCst),
            };
            (file.config.clone(), fault, cut)
        })
    };
    let Some((config, fault, cut)) = started else {
        let msg = format!("no such file: {name}");
        let answer = send_error(stream, Some(req), 404, &msg, req.wants_close());
        return answer.unwrap_or(Next::Close);
    };
    let in_progress = InProgress { shared, name, id };
    let done = write_file_response(stream, buf, req, &config, fault, &cut);
    // Log before the connection is closed, so that a client seeing EOF finds the
    // entry, and in the same critical section as leaving the in-progress set.
    let mut files = shared.files();
    if let Some(file) = files.get_mut(name) {
        file.active.remove(&id);
        if file.log.len() >= MAX_LOG {
            file.log.pop_front();
        }
        file.log.push_back(LogEntry {
            method: req.method.clone(),
            range: req.header("range").map(str::to_string),
            status: done.status,
            span: done.span,
            sent: done.sent,
        });
    }
    drop(files);
    drop(in_progress);
    next(done.close)
}

/// Takes a response out of its file's in-progress set when dropped, even if
/// writing it panicked, so cuts and log reads never wait for a dead response.
struct InProgress<'a> {
    shared: &'a Shared,
    name: &'a str,
    id: u64,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.shared.files().get_mut(self.name) {
            file.active.remove(&self.id);
        }
    }
}

fn write_file_response(
    stream: &TcpStream,
    buf: &mut [u8],
    req: &Request,
    config: &FileConfig,
    fault: Fault,
    cut: &CutWatch,
) -> Done {
    let client_close = req.wants_close();
    let expose = config.expose.as_deref().unwrap_or(DEFAULT_EXPOSE);
    let mut headers = cors_headers(Some(req), expose);

    if fault == Fault::Fail {
        const BODY: &[u8] = b"fault-server: injected 503 Service Unavailable\n";
        headers.push(("Content-Type", "text/plain".to_string()));
        headers.push(("Content-Length", BODY.len().to_string()));
        headers.push(("Cache-Control", "no-store".to_string()));
        headers.push(("Retry-After", "0".to_string()));
        let mut sent = 0;
        let ok = write_head(stream, 503, &headers, client_close).is_ok()
            && write_counted(stream, BODY, &mut sent).is_ok();
        return Done {
            status: 503,
            span: None,
            sent,
            close: client_close || !ok,
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
    let (status, span) = match answer {
        RangeAnswer::Full => (200, size.checked_sub(1).map(|last| (0, last))),
        RangeAnswer::Partial(start, end) => (206, Some((start, end))),
        RangeAnswer::Unsatisfiable => (416, None),
    };
    // Saturating: only a file of size u64::MAX could overflow the length.
    let (start, len) = span.map_or((0, 0), |(a, b)| (a, (b - a).saturating_add(1)));

    headers.push(("Content-Type", "application/octet-stream".to_string()));
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
    if status != 416 && !config.encoding.is_empty() {
        headers.push(("Content-Encoding", config.encoding.clone()));
    }
    match span {
        Some((a, b)) if status == 206 => {
            headers.push(("Content-Range", format!("bytes {a}-{b}/{size}")));
        }
        _ if status == 416 => headers.push(("Content-Range", format!("bytes */{size}"))),
        _ => {}
    }
    headers.push(("Content-Length", len.to_string()));

    let mut done = Done {
        status,
        span,
        sent: 0,
        close: true,
    };
    if write_head(stream, status, &headers, client_close).is_err() {
        return done;
    }
    if req.method == "HEAD" {
        done.span = None;
        done.close = client_close;
        return done;
    }
    let limit = match fault {
        Fault::Drop(n) | Fault::Stall(n) => n.min(len),
        Fault::None | Fault::Fail => len,
    };
    let (sent, finished) = send_body(stream, buf, config.seed, start, limit, config.throttle, cut);
    done.sent = sent;
    done.close = match fault {
        _ if !finished => true,
        Fault::Drop(_) => true,
        Fault::Stall(_) => {
            if limit < len {
                stall(stream, cut);
            }
            true
        }
        Fault::None | Fault::Fail => client_close,
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

/// Writes `len` generated bytes from `start`, paced to `throttle` bytes/s if
/// non-zero. Returns the bytes written and whether all were (no error, no cut).
fn send_body(
    stream: &TcpStream,
    buf: &mut [u8],
    seed: u64,
    start: u64,
    len: u64,
    throttle: u64,
    cut: &CutWatch,
) -> (u64, bool) {
    let began = Instant::now();
    let step = if throttle == 0 {
        buf.len() as u64
    } else {
        // About 20 writes a second, so the pacing is smooth even at low rates.
        (throttle / 20).clamp(1, THROTTLE_CHUNK)
    };
    let mut sent = 0;
    while sent < len {
        if cut.is_cut() {
            return (sent, false);
        }
        if throttle > 0 {
            let due = began + Duration::from_secs_f64(sent as f64 / throttle as f64);
            if !cut.sleep_until(due) {
                return (sent, false);
            }
        }
        let chunk = &mut buf[..(len - sent).min(step) as usize];
        fill(seed, start + sent, chunk);
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

fn admin(shared: &Shared, buf: &mut [u8], req: &Request, route: &str) -> AdminResult {
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
                    file.log.clear();
                    "{\"cleared\":true}".to_string()
                });
            }
        }
        "GET" => {
            if let Some(raw) = route.strip_prefix("log/") {
                return log_json(shared, &name_of(raw)?);
            }
            if let Some(raw) = route.strip_prefix("sha256/") {
                return sha256_json(shared, buf, &name_of(raw)?);
            }
        }
        _ => {}
    }
    Err((404, "not found".to_string()))
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
    let file = files.entry(name.to_string()).or_insert_with(|| FileState {
        config: config.clone(),
        log: VecDeque::new(),
        cut: Arc::new(AtomicU64::new(0)),
        active: HashMap::new(),
    });
    file.config = config;
    if clear_log {
        file.log.clear();
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

/// Applies query parameters; returns (size given, clear_log requested).
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
            let range = e.range.as_deref().map_or("null".to_string(), json_string);
            let (start, end) = e
                .span
                .map_or(("null".to_string(), "null".to_string()), |(a, b)| {
                    (a.to_string(), b.to_string())
                });
            format!(
                "{{\"method\":{},\"range\":{},\"status\":{},\"start\":{},\"end\":{},\"sent\":{}}}",
                json_string(&e.method),
                range,
                e.status,
                start,
                end,
                e.sent
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

fn sha256_json(shared: &Shared, buf: &mut [u8], name: &str) -> AdminResult {
    let (seed, size) = with_file(shared, name, |f| (f.config.seed, f.config.size))?;
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < size {
        let chunk = &mut buf[..(size - offset).min(CHUNK as u64) as usize];
        fill(seed, offset, chunk);
        hasher.update(chunk);
        offset += chunk.len() as u64;
    }
    Ok(format!(
        "{{\"sha256\":\"{}\"}}",
        sha256::hex(&hasher.finish())
    ))
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
}
