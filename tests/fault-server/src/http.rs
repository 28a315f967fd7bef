//! Minimal HTTP/1.1 request parsing: request head, Range, percent-decoding.
//!
//! Hand-written over `BufRead` so every input size is bounded and malformed input
//! becomes an error value (answered with 400), never a panic.

use std::io::{self, BufRead};

/// Most header fields accepted in one request.
const MAX_HEADERS: usize = 128;

/// A parsed request head.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The raw (still percent-encoded) path, without the query.
    pub path: String,
    /// The raw query string (after `?`), empty if none.
    pub query: String,
    /// True for HTTP/1.0, whose connections close by default.
    pub http10: bool,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked for the connection to end after this response.
    pub fn wants_close(&self) -> bool {
        let has = |token: &str| {
            self.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
                .flat_map(|(_, v)| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        has("close") || (self.http10 && !has("keep-alive"))
    }

    /// The declared request body length (0 if none).
    pub fn content_length(&self) -> Result<u64, String> {
        if self.header("transfer-encoding").is_some() {
            return Err("request bodies with Transfer-Encoding are not supported".into());
        }
        let mut length = None;
        for (_, v) in self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            let n = parse_digits(v).ok_or_else(|| format!("bad Content-Length: {v:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".into());
            }
            length = Some(n);
        }
        Ok(length.unwrap_or(0))
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or went quiet until the read timeout); just close.
    Closed,
    /// Malformed request: answer 400 and close.
    Bad(String),
}

/// Reads one request head, consuming at most `limit` bytes.
pub fn read_request<R: BufRead>(reader: &mut R, limit: usize) -> Result<Request, ReadError> {
    let mut budget = limit;
    // RFC 9112 section 2.2: ignore a few empty lines before the request line.
    let mut line = read_line(reader, &mut budget)?;
    for _ in 0..4 {
        if !line.is_empty() {
            break;
        }
        line = read_line(reader, &mut budget)?;
    }
    let line = String::from_utf8(line).map_err(|_| bad("request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(&format!("bad request line: {line:?}")));
    };
    if !is_token(method) {
        return Err(bad("bad method"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(bad(&format!("unsupported version: {version:?}"))),
    };
    let (path, query) = split_target(target).ok_or_else(|| bad("bad request target"))?;

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(bad("too many header fields"));
        }
        headers.push(parse_header(&line)?);
    }
    Ok(Request {
        method: method.to_string(),
        path,
        query,
        http10,
        headers,
    })
}

fn bad(msg: &str) -> ReadError {
    ReadError::Bad(msg.to_string())
}

/// Reads one line (LF or CRLF terminated, terminator removed) within `budget`.
fn read_line<R: BufRead>(reader: &mut R, budget: &mut usize) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Closed),
        };
        if available.is_empty() {
            return Err(ReadError::Closed);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if take > *budget {
            return Err(bad("request head too large"));
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        *budget -= take;
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

fn parse_header(line: &[u8]) -> Result<(String, String), ReadError> {
    if line.starts_with(b" ") || line.starts_with(b"\t") {
        return Err(bad("obsolete header line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("header line without colon"))?;
    let name = std::str::from_utf8(&line[..colon]).map_err(|_| bad("bad header name"))?;
    if !is_token(name) {
        return Err(bad(&format!("bad header name: {name:?}")));
    }
    let value = &line[colon + 1..];
    // Rejecting control characters also stops CR smuggling into echoed values.
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(bad(&format!("control character in header {name}")));
    }
    let value = String::from_utf8_lossy(value);
    Ok((
        name.to_string(),
        value.trim_matches([' ', '\t']).to_string(),
    ))
}

/// Splits a request target into raw path and query (origin or absolute form).
fn split_target(target: &str) -> Option<(String, String)> {
    if target == "*" {
        return Some(("*".into(), String::new()));
    }
    let origin_form = if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        &rest[rest.find('/')?..]
    } else {
        target
    };
    if !origin_form.starts_with('/') || origin_form.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let without_fragment = origin_form.split('#').next().unwrap_or_default();
    let (path, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    Some((path.to_string(), query.to_string()))
}

/// RFC 9110 `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` is a non-empty run of ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a non-empty run of ASCII digits.
pub fn parse_digits(s: &str) -> Option<u64> {
    if !is_digits(s) {
        return None;
    }
    s.parse().ok()
}

/// Percent-decodes `s` (and `+` to space when `plus_is_space`, as in queries).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes a query string into (name, value) pairs in order.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode(s, true).ok_or_else(|| format!("bad percent-encoding in {pair:?}"))
            };
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The value of the first `key` among decoded query `params`.
pub fn query_param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find_map(|(k, v)| (k == key).then_some(v.as_str()))
}

/// What a `Range` header asks of a representation of a given size.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No (usable) range: send the whole representation with 200.
    Full,
    /// Send bytes `start..=end` with 206.
    Partial(u64, u64),
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

/// One `range-spec` of RFC 9110 section 14.1.1.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last` or `first-` (no last: to the end).
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// Evaluates a `Range` header value against `size`.
///
/// Invalid syntax is ignored (200, RFC 9110 section 14.2); a valid request for
/// several ranges is also answered with the full body, which the RFC allows.
pub fn resolve_range(value: &str, size: u64) -> RangeAnswer {
    let specs = parse_range(value).unwrap_or_default();
    let [spec] = specs.as_slice() else {
        return RangeAnswer::Full;
    };
    match *spec {
        RangeSpec::From(first, last) => {
            if first >= size {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial(first, last.unwrap_or(u64::MAX).min(size - 1))
            }
        }
        RangeSpec::Suffix(n) => {
            if n == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial(size - n.min(size), size - 1)
            }
        }
    }
}

/// Parses `bytes=<range-set>`; None if the syntax is invalid.
fn parse_range(value: &str) -> Option<Vec<RangeSpec>> {
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    // Numbers too large for u64 still mean "very far": saturate them.
    let number = |s: &str| is_digits(s).then(|| s.parse().unwrap_or(u64::MAX));
    let mut specs = Vec::new();
    // `1#range-spec`: empty list elements are allowed and skipped.
    for spec in set.split(',').map(|s| s.trim_matches([' ', '\t'])) {
        if spec.is_empty() {
            continue;
        }
        let (first, last) = spec.split_once('-')?;
        specs.push(if first.is_empty() {
            RangeSpec::Suffix(number(last)?)
        } else if last.is_empty() {
            RangeSpec::From(number(first)?, None)
        } else {
            let (first, last) = (number(first)?, number(last)?);
            if last < first {
                return None;
            }
            RangeSpec::From(first, Some(last))
        });
    }
    (!specs.is_empty()).then_some(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Request, ReadError> {
        read_request(&mut raw.as_bytes(), 64 * 1024)
    }

    #[test]
    fn parses_a_request_head() {
        let req = parse("GET /files/a%20b?x=1 HTTP/1.1\r\nHost: h\r\nRange:  bytes=0-1 \r\n\r\n")
            .unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/files/a%20b");
        assert_eq!(req.query, "x=1");
        assert_eq!(req.header("range"), Some("bytes=0-1"));
        assert!(!req.wants_close());
        let req = parse("GET http://h:1/x HTTP/1.0\nConnection: Keep-Alive\n\n").unwrap();
        assert_eq!(req.path, "/x");
        assert!(!req.wants_close());
        let req = parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").unwrap();
        assert!(req.wants_close());
    }

    #[test]
    fn rejects_malformed_heads() {
        for raw in [
            "GET /\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET x HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "GET / HTTP/1.1\r\nBad name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
        ] {
            assert!(matches!(parse(raw), Err(ReadError::Bad(_))), "{raw:?}");
        }
        let huge = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "x".repeat(70_000));
        assert!(matches!(parse(&huge), Err(ReadError::Bad(_))));
        assert!(matches!(parse(""), Err(ReadError::Closed)));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nA: b"),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn content_length_rules() {
        let req = parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(req.content_length(), Ok(5));
        let req = parse("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n").unwrap();
        assert!(req.content_length().is_err());
        let req = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert!(req.content_length().is_err());
    }

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        assert_eq!(resolve_range("bytes=0-99", 1000), Partial(0, 99));
        assert_eq!(resolve_range("bytes=990-2000", 1000), Partial(990, 999));
        assert_eq!(resolve_range("bytes=5-", 1000), Partial(5, 999));
        assert_eq!(resolve_range("bytes=-10", 1000), Partial(990, 999));
        assert_eq!(resolve_range("bytes=-5000", 1000), Partial(0, 999));
        assert_eq!(resolve_range("BYTES = 1-1 ,", 1000), Partial(1, 1));
        assert_eq!(
            resolve_range("bytes=0-99999999999999999999999", 10),
            Partial(0, 9)
        );
        assert_eq!(resolve_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(resolve_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(resolve_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(resolve_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(resolve_range("bytes=0-1,5-6", 1000), Full);
        for invalid in [
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes 0-1",
            "bytes=+1-2",
        ] {
            assert_eq!(resolve_range(invalid, 1000), Full, "{invalid}");
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%4", false), None);
        assert_eq!(
            parse_query("size=10&&expose=ETag%2C%20X&flag").unwrap(),
            vec![
                ("size".into(), "10".into()),
                ("expose".into(), "ETag, X".into()),
                ("flag".into(), String::new())
            ]
        );
    }
}
