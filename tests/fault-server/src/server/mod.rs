//! The fault-injecting range server: its listeners and the routing of each
//! request to the room that answers it.
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
//!   `config.rs`); `POST /_admin/cut/{name}`; `GET /_admin/log/{name}`;
//!   `POST /_admin/log/{name}/clear`; `GET /_admin/sha256/{name}`;
//!   `GET /_admin/stats/{name}`; `GET /_admin/set-cookie?name=N&value=V`.
//! - `OPTIONS *`: CORS preflight.
//!
//! # Where each idea lives
//!
//! - `connection.rs`: one connection's requests, read in turn until it closes.
//! - `files.rs`: a GET or HEAD of a file, from its admission to its log entry;
//!   `file_response.rs` writes the response, `body.rs` its body.
//! - `faults.rs`: which fault a GET suffers (the precedence of the faults).
//! - `config.rs`: how a file behaves and the parameters that change it.
//! - `state.rs`: the files the listeners share.
//! - `log.rs`: the request log (its fields) and the statistics.
//! - `admin.rs`: the `/_admin/` API; `redirect.rs`, `cors.rs`: those routes.
//! - `response.rs`: heads, counted writes and JSON answers every route uses.

mod admin;
mod body;
mod config;
mod connection;
mod cors;
mod faults;
mod file_response;
mod files;
mod log;
mod redirect;
mod response;
mod state;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::http::{self, Request};
use connection::Next;
use response::{error_json, send_error, send_json};
use state::Shared;

/// How often waiting loops look for a cut or a closed peer.
const POLL: Duration = Duration::from_millis(20);
/// Size of the per-connection content buffer: bytes per unthrottled write (and
/// per step of hashing the content).
const CHUNK: usize = 64 * 1024;

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
                    .spawn(move || connection::serve(&shared, stream, port));
            }
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// Answers one request (its body already read) by its method and path.
fn respond(
    shared: &Shared,
    stream: &TcpStream,
    buf: &mut [u8],
    req: &Request,
    port: u16,
) -> io::Result<Next> {
    let close = req.wants_close();
    if req.method == "OPTIONS" {
        return cors::preflight(stream, req);
    }
    let readable = req.method == "GET" || req.method == "HEAD";
    if let Some(raw) = req.path.strip_prefix("/files/") {
        if readable {
            return match file_name(raw) {
                Some(name) => Ok(files::serve(shared, stream, buf, req, &name, port)),
                None => send_error(stream, Some(req), 404, "not found", close),
            };
        }
    } else if let Some(raw) = req.path.strip_prefix("/redirect/") {
        if readable {
            return redirect::redirect(stream, req, raw);
        }
    } else if let Some(route) = req.path.strip_prefix("/_admin/") {
        let mut extra = Vec::new();
        let (status, body) = match admin::admin(shared, req, route, &mut extra) {
            Ok(body) => (200, body),
            Err(e) => (e.status, error_json(&e.message)),
        };
        return send_json(stream, Some(req), status, &body, close, extra);
    }
    send_error(stream, Some(req), 404, "not found", close)
}

/// The file name in a path segment: percent-decoded, not empty.
fn file_name(raw: &str) -> Option<String> {
    http::percent_decode(raw, false).filter(|name| !name.is_empty())
}
