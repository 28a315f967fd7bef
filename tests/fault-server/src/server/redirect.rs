//! `GET|HEAD /redirect/{name}`: a `302` to the URL in `to`, or to the file on
//! the same listener.

use std::io;
use std::net::TcpStream;

use super::connection::Next;
use super::cors::{cors_headers, DEFAULT_EXPOSE};
use super::file_name;
use super::response::{send_error, write_head};
use crate::http::{self, Request};

/// `GET /redirect/{name}?to=URL` → 302 to URL; without `to`, 302 to
/// `/files/{name}` (relative: the same listener) with the rest of the query.
pub(super) fn redirect(stream: &TcpStream, req: &Request, raw_name: &str) -> io::Result<Next> {
    let close = req.wants_close();
    if file_name(raw_name).is_none() {
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
    Ok(Next::close_if(close))
}
