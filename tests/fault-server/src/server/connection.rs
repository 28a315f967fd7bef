//! One connection: its requests read and answered in turn (keep-alive) until
//! either side closes it, then a gentle close.

use std::io::{self, BufReader, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::response::send_error;
use super::state::Shared;
use super::{respond, CHUNK, POLL};
use crate::http::{self, ReadError, Request};

/// Largest accepted request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read (and discarded); admin POSTs need none.
const MAX_REQUEST_BODY: u64 = 1024 * 1024;
/// Idle keep-alive connections (and slow request heads) close after this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A write to a client that stopped reading fails after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether the connection may carry another request.
#[derive(PartialEq, Eq)]
pub(super) enum Next {
    KeepAlive,
    Close,
}

impl Next {
    /// `Close` if `close`, else `KeepAlive`.
    pub(super) fn close_if(close: bool) -> Next {
        if close {
            Next::Close
        } else {
            Next::KeepAlive
        }
    }
}

/// Serves the connection from listener `port` until it closes.
pub(super) fn serve(shared: &Shared, stream: TcpStream, port: u16) {
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

/// A read that timed out or was interrupted: try again until the deadline.
pub(super) fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
