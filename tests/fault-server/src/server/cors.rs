//! CORS: the headers every answer carries (the origin echoed for credentialed
//! requests, the exposed headers) and the answer to a preflight.

use std::io;
use std::net::TcpStream;

use super::connection::Next;
use super::response::{write_head, Headers};
use crate::http::Request;

/// `Access-Control-Expose-Headers` unless a file's `expose` says otherwise.
pub(super) const DEFAULT_EXPOSE: &str = "Content-Range, Content-Length, Content-Encoding, \
     Content-Disposition, ETag, Last-Modified, Accept-Ranges, Repr-Digest";

/// CORS headers for a response to `req` (None: the request could not be parsed).
/// `expose` is the Access-Control-Expose-Headers list; empty omits the header.
pub(super) fn cors_headers(req: Option<&Request>, expose: &str) -> Headers {
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

/// `OPTIONS *`: allows the methods and the headers asked for.
pub(super) fn preflight(stream: &TcpStream, req: &Request) -> io::Result<Next> {
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
    Ok(Next::close_if(close))
}
