//! The response to a GET or HEAD of a file, in steps: a refusal (403, 503)
//! or the answer to its Range and If-Range, reshaped by a range fault; then
//! its headers and body; then its sending, cut short by a drop or a stall.

use std::net::TcpStream;

use super::body::{content_sha256, send_body, stall, Body};
use super::config::FileConfig;
use super::cors::{cors_headers, DEFAULT_EXPOSE};
use super::faults::{shifted, Fault};
use super::response::{write_head, Headers, SmallAnswer};
use super::state::{CutWatch, Moment};
use crate::http::{self, RangeAnswer, Request};
use crate::sha256;
use crate::MULTIPART_BOUNDARY;

/// What happened to one content response, for the log and the connection.
pub(super) struct Done {
    pub(super) status: u16,
    /// The inclusive content range the response is about (see the log).
    pub(super) span: Option<(u64, u64)>,
    /// Body bytes written to the socket.
    pub(super) sent: u64,
    /// The connection must close.
    pub(super) close: bool,
    /// The fault that shaped the response, if any.
    pub(super) fault: Option<&'static str>,
}

/// One response to a GET or HEAD of a file, with the file as the request
/// found it and the fault the request took.
pub(super) struct FileResponse<'a> {
    pub(super) stream: &'a TcpStream,
    pub(super) req: &'a Request,
    pub(super) config: &'a FileConfig,
    pub(super) fault: Fault,
    pub(super) cut: &'a CutWatch,
}

/// The status and content of a file response, once the range fault is applied.
struct Shape {
    status: u16,
    /// The inclusive content range the response is about (what Content-Range
    /// says; the whole file for a 200); None for a 416 or an empty file.
    span: Option<(u64, u64)>,
    /// Bytes left off the body and Content-Length, not Content-Range (`cl_short`).
    shortfall: u64,
    /// The range as a `multipart/byteranges` body (`multipart`).
    multipart: bool,
    /// A 206 says Content-Range (all but `no_content_range`).
    content_range: bool,
    /// The fault shaped the response: the log names it.
    applied: bool,
}

impl Shape {
    /// `(start, len)` of the content the span covers; (0, 0) without one.
    fn start_and_len(&self) -> (u64, u64) {
        // Saturating: only a file of size u64::MAX could overflow the length.
        self.span
            .map_or((0, 0), |(a, b)| (a, (b - a).saturating_add(1)))
    }
}

impl FileResponse<'_> {
    /// Writes the response; calls `on_moment` just before its head is sent (so
    /// a client that has read the head always finds it counted) and just
    /// before its last body bytes are.
    pub(super) fn write(&self, buf: &mut [u8], on_moment: &mut dyn FnMut(Moment)) -> Done {
        if let Some(done) = self.refuse(on_moment) {
            return done;
        }
        let shape = self.shape();
        let mut headers = self.file_headers(&shape);
        let body = self.body(&shape, &mut headers);
        headers.push(("Content-Length", body.total().to_string()));
        self.send(buf, &shape, &headers, &body, on_moment)
    }

    /// The CORS headers of this file's answers.
    fn cors_headers(&self) -> Headers {
        let expose = self.config.expose.as_deref().unwrap_or(DEFAULT_EXPOSE);
        cors_headers(Some(self.req), expose)
    }

    /// A fault that answers with a short text instead of the file: 403 for a
    /// missing or wrong token, 503 for `fail`. None for other faults.
    fn refuse(&self, on_moment: &mut dyn FnMut(Moment)) -> Option<Done> {
        let mut headers = self.cors_headers();
        let (status, body): (u16, &[u8]) = match self.fault {
            Fault::Token => (403, b"fault-server: missing or wrong token\n"),
            Fault::Fail { .. } => {
                headers.push(("Retry-After", "0".to_string()));
                (503, b"fault-server: injected 503 Service Unavailable\n")
            }
            _ => return None,
        };
        let answer = SmallAnswer {
            status,
            headers,
            content_type: "text/plain",
            body,
            extra: Vec::new(),
        };
        let close = self.req.wants_close();
        let mut sent = 0;
        on_moment(Moment::Head);
        let ok = answer
            .send(self.stream, Some(self.req), close, &mut sent)
            .is_ok();
        Some(Done {
            status,
            span: None,
            sent,
            close: close || !ok,
            fault: self.fault.name(),
        })
    }

    /// The answer to the Range header (honoured unless `ignore_range` or an
    /// If-Range that no longer matches), then the range fault, which only
    /// reshapes a 206. Drops and stalls apply to any answer.
    fn shape(&self) -> Shape {
        let config = self.config;
        let size = config.size;
        let answer = match self.req.header("range") {
            Some(range)
                if !config.ignore_range
                    && if_range_allows(
                        self.req.header("if-range"),
                        config.etag().as_deref(),
                        config.last_modified().as_deref(),
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
        let mut shape = Shape {
            status,
            span,
            shortfall: 0,
            multipart: false,
            content_range: true,
            applied: matches!(self.fault, Fault::Drop { .. } | Fault::Stall { .. }),
        };
        if let (206, Some((a, b))) = (status, span) {
            match self.fault {
                Fault::Shift(by) => shape.span = Some(shifted(a, b, by, size)),
                Fault::Short(by) => shape.span = Some((a, b.saturating_sub(by).max(a))),
                Fault::ClShort(by) => shape.shortfall = by,
                Fault::Multipart => shape.multipart = true,
                Fault::NoContentRange => shape.content_range = false,
                _ => {}
            }
            shape.applied = self.fault != Fault::None;
        }
        shape
    }

    /// The CORS headers, then those that describe the file: Content-Type,
    /// Accept-Ranges, the validators, Cache-Control, Content-Disposition,
    /// Repr-Digest and Content-Encoding (not on a 416).
    fn file_headers(&self, shape: &Shape) -> Headers {
        let config = self.config;
        let mut headers = self.cors_headers();
        if shape.multipart {
            let content_type = format!("multipart/byteranges; boundary={MULTIPART_BOUNDARY}");
            headers.push(("Content-Type", content_type));
        } else {
            headers.push(("Content-Type", "application/octet-stream".to_string()));
        }
        headers.push(("Accept-Ranges", "bytes".to_string()));
        if let Some(etag) = config.etag() {
            headers.push(("ETag", etag));
        }
        if let Some(date) = config.last_modified() {
            headers.push(("Last-Modified", date));
        }
        headers.push(("Cache-Control", "no-store".to_string()));
        if let Some(disposition) = &config.disposition {
            headers.push(("Content-Disposition", disposition.clone()));
        }
        if let Some(good) = config.repr_digest {
            let mut digest = content_sha256(config.seed, config.size);
            if !good {
                digest[0] ^= 0xff;
            }
            let value = format!("sha-256=:{}:", sha256::base64(&digest));
            headers.push(("Repr-Digest", value));
        }
        if shape.status != 416 && !config.encoding.is_empty() {
            headers.push(("Content-Encoding", config.encoding.clone()));
        }
        headers
    }

    /// The Content-Range of a 206: `bytes a-b/size`, or `bytes a-b/*` with
    /// `unknown_total`.
    fn content_range(&self, shape: &Shape) -> Option<String> {
        match shape.span {
            Some((a, b)) if shape.status == 206 => {
                let total = if self.config.unknown_total {
                    "*".to_string()
                } else {
                    self.config.size.to_string()
                };
                Some(format!("bytes {a}-{b}/{total}"))
            }
            _ => None,
        }
    }

    /// The body, gzipped for `encoding=gzip` (not on a 416); adds the
    /// Content-Range header that goes with it (none inside multipart).
    fn body(&self, shape: &Shape, headers: &mut Headers) -> Body {
        let seed = self.config.seed;
        let (start, len) = shape.start_and_len();
        let body = match self.content_range(shape) {
            Some(range) if shape.multipart => Body::multipart(seed, start, len, &range),
            Some(range) => {
                if shape.content_range {
                    headers.push(("Content-Range", range));
                }
                Body::content(seed, start, len - shape.shortfall.min(len))
            }
            None => {
                if shape.status == 416 {
                    let size = self.config.size;
                    headers.push(("Content-Range", format!("bytes */{size}")));
                }
                Body::content(seed, start, len)
            }
        };
        if shape.status != 416 && self.config.encoding.eq_ignore_ascii_case("gzip") {
            body.gzipped()
        } else {
            body
        }
    }

    /// Sends the head and, for a GET, the body up to where a drop or stall
    /// ends it; a drop then closes, a stall holds the connection silent first.
    fn send(
        &self,
        buf: &mut [u8],
        shape: &Shape,
        headers: &Headers,
        body: &Body,
        on_moment: &mut dyn FnMut(Moment),
    ) -> Done {
        let client_close = self.req.wants_close();
        let mut done = Done {
            status: shape.status,
            span: shape.span,
            sent: 0,
            close: true,
            fault: self.fault.name().filter(|_| shape.applied),
        };
        on_moment(Moment::Head);
        if write_head(self.stream, shape.status, headers, client_close).is_err() {
            return done;
        }
        if self.req.method == "HEAD" {
            done.span = None;
            done.close = client_close;
            return done;
        }
        let total = body.total();
        let limit = self.fault.body_limit(total);
        // A drop or stall ends early: its last write is not the end of the response.
        let whole = limit == total;
        let mut on_body_moment = |moment| {
            if whole || !matches!(moment, Moment::LastWrite) {
                on_moment(moment)
            }
        };
        let throttle = self.config.throttle;
        let written = send_body(
            self.stream,
            buf,
            body,
            limit,
            throttle,
            self.cut,
            &mut on_body_moment,
        );
        done.sent = written.sent;
        done.close = match self.fault {
            _ if !written.complete => true,
            Fault::Drop { .. } => true,
            Fault::Stall { .. } => {
                if limit < total {
                    stall(self.stream, self.cut);
                }
                true
            }
            _ => client_close,
        };
        done
    }
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
}
