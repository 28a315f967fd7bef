//! The request log and the statistics of each file: what is recorded, when,
//! and how `GET /_admin/log/{name}` and `GET /_admin/stats/{name}` render it.
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

use std::collections::VecDeque;
use std::thread;
use std::time::{Duration, Instant};

use super::response::{json_opt_string, json_string};
use super::state::{FileState, Shared};
use crate::http::Request;

/// Request log entries kept per file; the oldest go first.
const MAX_LOG: usize = 100_000;
/// How long `GET /_admin/log` waits for responses still in progress, so that a
/// client that has just read a whole body also finds its log entry.
const LOG_SETTLE: Duration = Duration::from_secs(1);

/// One finished GET/HEAD, as reported by `GET /_admin/log/{name}`.
pub(super) struct LogEntry {
    /// Admission order: the log lists entries by arrival, not by completion.
    pub(super) id: u64,
    pub(super) method: String,
    pub(super) range: Option<String>,
    pub(super) status: u16,
    /// Inclusive content range of the response (what Content-Range says or, for
    /// a 200, the whole file); the body may have been cut short.
    pub(super) span: Option<(u64, u64)>,
    /// Body bytes actually written to the socket.
    pub(super) sent: u64,
    pub(super) if_range: Option<String>,
    /// Referer, Cookie, Origin, User-Agent and `x-*` request headers
    /// (lower-case names).
    pub(super) headers: Vec<(String, String)>,
    /// The listener's port.
    pub(super) port: u16,
    pub(super) fault: Option<&'static str>,
    /// Milliseconds since the server started.
    pub(super) started_ms: u64,
    pub(super) ended_ms: u64,
}

/// The request headers the log keeps: Referer, Cookie, Origin, User-Agent and
/// every `x-*`, by lower-case name in order of appearance (repeats joined with
/// ", ", cookies with "; ").
pub(super) fn logged_headers(req: &Request) -> Vec<(String, String)> {
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

impl FileState {
    /// Logs a response that has ended, after the entries of earlier arrivals,
    /// unless it arrived before the last clear.
    pub(super) fn record(&mut self, entry: LogEntry) {
        if entry.id < self.logged_from {
            return;
        }
        if self.log.len() >= MAX_LOG {
            self.log.pop_front();
        }
        // After the entries of earlier arrivals (usually: at the end).
        let at = self
            .log
            .iter()
            .rposition(|e| e.id < entry.id)
            .map_or(0, |i| i + 1);
        self.log.insert(at, entry);
    }

    /// Clears the log and restarts the statistics: requests that arrived before
    /// are forgotten, even those still in progress (which are not logged when
    /// they end), but the responses still being written count as such for
    /// `max_concurrent`. `next_id` is the id the next request will get.
    pub(super) fn clear_log(&mut self, next_id: u64) {
        self.log.clear();
        self.requests = 0;
        self.max_concurrent = self.writing;
        self.logged_from = next_id;
    }

    /// `{"max_concurrent":N,"requests":N}`.
    pub(super) fn stats_json(&self) -> String {
        format!(
            "{{\"max_concurrent\":{},\"requests\":{}}}",
            self.max_concurrent, self.requests
        )
    }
}

/// The log of file `name` as JSON, once no response is in progress (or
/// `LOG_SETTLE` has passed); None if there is no such file.
pub(super) fn settled_log_json(shared: &Shared, name: &str) -> Option<String> {
    let settle_until = Instant::now() + LOG_SETTLE;
    loop {
        let rendered = shared.with_file(name, |file| {
            let settled = file.active.is_empty() || Instant::now() >= settle_until;
            settled.then(|| render_log(&file.log))
        })?;
        if let Some(json) = rendered {
            return Some(json);
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
