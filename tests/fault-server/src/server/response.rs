//! Writing responses, for every route: the head, body bytes counted as the
//! socket takes them, small whole answers (JSON, errors, text) and JSON strings.

use std::io::{self, Write};
use std::net::TcpStream;

use super::connection::Next;
use super::cors::{cors_headers, DEFAULT_EXPOSE};
use crate::http::Request;

/// A response's header fields, in the order they are sent.
pub(super) type Headers = Vec<(&'static str, String)>;

/// Writes the status line and `headers`, with `Connection: close` if `close`.
pub(super) fn write_head(
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
pub(super) fn write_counted(
    mut stream: &TcpStream,
    mut data: &[u8],
    sent: &mut u64,
) -> io::Result<()> {
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

/// A small answer sent whole: a JSON answer, an error or a refusal.
pub(super) struct SmallAnswer<'a> {
    pub(super) status: u16,
    /// The fields before Content-Type, Content-Length and `Cache-Control: no-store`.
    pub(super) headers: Headers,
    pub(super) content_type: &'static str,
    pub(super) body: &'a [u8],
    /// The fields after them.
    pub(super) extra: Headers,
}

impl SmallAnswer<'_> {
    /// Sends the head, then the body unless `req` is a HEAD; counts the body
    /// bytes written in `sent`, even on error.
    pub(super) fn send(
        mut self,
        stream: &TcpStream,
        req: Option<&Request>,
        close: bool,
        sent: &mut u64,
    ) -> io::Result<()> {
        self.headers
            .push(("Content-Type", self.content_type.to_string()));
        self.headers
            .push(("Content-Length", self.body.len().to_string()));
        self.headers.push(("Cache-Control", "no-store".to_string()));
        self.headers.extend(self.extra);
        write_head(stream, self.status, &self.headers, close)?;
        if req.is_none_or(|r| r.method != "HEAD") {
            write_counted(stream, self.body, sent)?;
        }
        Ok(())
    }
}

/// Sends a JSON response; `extra` headers go after the standard ones.
pub(super) fn send_json(
    stream: &TcpStream,
    req: Option<&Request>,
    status: u16,
    body: &str,
    close: bool,
    extra: Headers,
) -> io::Result<Next> {
    let answer = SmallAnswer {
        status,
        headers: cors_headers(req, DEFAULT_EXPOSE),
        content_type: "application/json",
        body: body.as_bytes(),
        extra,
    };
    answer.send(stream, req, close, &mut 0)?;
    Ok(Next::close_if(close))
}

/// Sends `{"error":MSG}` with `status`.
pub(super) fn send_error(
    stream: &TcpStream,
    req: Option<&Request>,
    status: u16,
    msg: &str,
    close: bool,
) -> io::Result<Next> {
    send_json(stream, req, status, &error_json(msg), close, Vec::new())
}

/// `{"error":MSG}`.
pub(super) fn error_json(msg: &str) -> String {
    format!("{{\"error\":{}}}", json_string(msg))
}

/// A JSON string literal of `s`.
pub(super) fn json_string(s: &str) -> String {
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

/// A JSON string literal of `s`, or `null`.
pub(super) fn json_opt_string(s: Option<&str>) -> String {
    s.map_or("null".to_string(), json_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
