//! `GET|HEAD /files/{name}`: a request for a file, from its admission (its
//! fault, a snapshot of the file) through its response to its log entry.

use std::net::TcpStream;

use super::config::FileConfig;
use super::connection::Next;
use super::faults::Fault;
use super::file_response::FileResponse;
use super::log::{logged_headers, LogEntry};
use super::response::send_error;
use super::state::{CutWatch, InProgress, Shared};
use crate::http::{self, Request};

/// A request admitted for a file that exists.
struct Admitted {
    /// Admission order.
    id: u64,
    /// Milliseconds since the server started.
    started_ms: u64,
    /// The file as the request found it.
    config: FileConfig,
    fault: Fault,
    cut: CutWatch,
}

/// Answers a GET or HEAD of file `name` on listener `port`.
pub(super) fn serve(
    shared: &Shared,
    stream: &TcpStream,
    buf: &mut [u8],
    req: &Request,
    name: &str,
    port: u16,
) -> Next {
    let is_get = req.method == "GET";
    let Some(admitted) = admit(shared, stream, req, name) else {
        let msg = format!("no such file: {name}");
        let answer = send_error(stream, Some(req), 404, &msg, req.wants_close());
        return answer.unwrap_or(Next::Close);
    };
    let mut in_progress = InProgress::new(shared, name, admitted.id);
    let response = FileResponse {
        stream,
        req,
        config: &admitted.config,
        fault: admitted.fault,
        cut: &admitted.cut,
    };
    let done = response.write(buf, &mut |moment| {
        if is_get {
            in_progress.reached(moment);
        }
    });
    // Log before the connection is closed, so that a client seeing EOF finds the
    // entry, and in the same critical section as leaving the in-progress set.
    let mut files = shared.files();
    if let Some(file) = files.get_mut(name) {
        file.record(LogEntry {
            id: admitted.id,
            method: req.method.clone(),
            range: req.header("range").map(str::to_string),
            status: done.status,
            span: done.span,
            sent: done.sent,
            if_range: req.header("if-range").map(str::to_string),
            headers: logged_headers(req),
            port,
            fault: done.fault,
            started_ms: admitted.started_ms,
            ended_ms: shared.now_ms(),
        });
        in_progress.release(file);
    }
    drop(files);
    drop(in_progress);
    Next::close_if(done.close)
}

/// Admits the request if file `name` exists, all under the lock: gives it an
/// id and a start time (both in admission order), takes its fault (which may
/// change the file's content for later requests), counts a GET, and enters it
/// in the file's in-progress set.
fn admit(shared: &Shared, stream: &TcpStream, req: &Request, name: &str) -> Option<Admitted> {
    let is_get = req.method == "GET";
    let token = query_token(req);
    let mut files = shared.files();
    let file = files.get_mut(name)?;
    let id = shared.take_id();
    let started_ms = shared.now_ms();
    let admission = file.config.admit(is_get, token.as_deref());
    let config = file.config.clone();
    if admission.change_content {
        file.config.seed = file.config.seed.wrapping_add(1);
    }
    if is_get {
        file.requests += 1;
    }
    if let Ok(handle) = stream.try_clone() {
        file.active.insert(id, handle);
    }
    Some(Admitted {
        id,
        started_ms,
        config,
        fault: admission.fault,
        cut: file.cut_watch(),
    })
}

/// The first `token` query parameter (None if absent or the query is malformed).
fn query_token(req: &Request) -> Option<String> {
    let params = http::parse_query(&req.query).ok()?;
    http::query_param(&params, "token").map(str::to_string)
}
