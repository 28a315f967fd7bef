//! End-to-end tests: a server per test on a free port, spoken to with
//! hand-written HTTP/1.1 over `TcpStream`. Every socket has timeouts, so no
//! test can hang.
#![cfg(not(target_arch = "wasm32"))]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fault_server::{
    content_etag, content_last_modified, fill, sha256, splitmix64, Handle, MULTIPART_BOUNDARY,
};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn content_length(&self) -> u64 {
        self.header("content-length")
            .expect("Content-Length")
            .parse()
            .expect("number")
    }
}

/// One client connection (keep-alive capable).
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &Handle) -> Client {
        Client::connect_to(server.addr())
    }

    fn connect_to(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        self.send_raw(&raw);
    }

    fn send_raw(&mut self, raw: &str) {
        self.reader
            .get_mut()
            .write_all(raw.as_bytes())
            .expect("send");
    }

    /// Reads a status line and headers; the body is left unread.
    fn read_head(&mut self) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let mut parts = line.trim_end().splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut headers = Vec::new();
        for _ in 0..200 {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                return Response {
                    status,
                    headers,
                    body: Vec::new(),
                };
            }
            let (name, value) = line.split_once(':').expect("header colon");
            headers.push((name.to_string(), value.trim().to_string()));
        }
        panic!("too many headers");
    }

    /// Reads a whole response; the body ends at Content-Length or at EOF if earlier.
    fn read_response(&mut self, head_request: bool) -> Response {
        let mut response = self.read_head();
        if !head_request && response.status != 204 {
            let length = response.content_length();
            (&mut self.reader)
                .take(length)
                .read_to_end(&mut response.body)
                .expect("body");
        }
        response
    }

    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.send(method, path, headers);
        self.read_response(method == "HEAD")
    }

    /// True if the server has closed the connection (EOF within the timeout).
    fn at_eof(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// One request on a fresh connection.
fn request(server: &Handle, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect(server).request(method, path, headers)
}

fn get(server: &Handle, path: &str, headers: &[(&str, &str)]) -> Response {
    request(server, "GET", path, headers)
}

fn admin_post(server: &Handle, path: &str) -> Response {
    let response = request(server, "POST", path, &[]);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{path}"
    );
    response
}

/// Creates or updates a file and checks that the server accepted it.
fn configure(server: &Handle, name: &str, query: &str) -> String {
    let response = admin_post(server, &format!("/_admin/files/{name}?{query}"));
    assert_eq!(response.status, 200, "{query}: {}", response.text());
    response.text()
}

/// The log's entries, parsed.
fn entries(server: &Handle, name: &str) -> Vec<Json> {
    let response = get(server, &format!("/_admin/log/{name}"), &[]);
    assert_eq!(response.status, 200);
    match Json::parse(&response.text()) {
        Json::Arr(items) => items,
        other => panic!("log is not an array: {other:?}"),
    }
}

/// The log once it has at least `count` entries (responses end, and are
/// logged, a moment after a cut has closed their socket).
fn wait_for_entries(server: &Handle, name: &str, count: usize) -> Vec<Json> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let entries = entries(server, name);
        if entries.len() >= count {
            return entries;
        }
        assert!(Instant::now() < deadline, "only {} entries", entries.len());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The log with only the fields every entry has had from the start, in order.
fn log(server: &Handle, name: &str) -> String {
    const FIELDS: [&str; 6] = ["method", "range", "status", "start", "end", "sent"];
    let items = entries(server, name)
        .iter()
        .map(|entry| {
            let fields: Vec<(String, Json)> = FIELDS
                .iter()
                .map(|&k| (k.to_string(), entry.get(k).clone()))
                .collect();
            Json::Obj(fields)
        })
        .collect();
    Json::Arr(items).to_string()
}

/// The `fault` field of every entry.
fn faults(server: &Handle, name: &str) -> Vec<Option<String>> {
    entries(server, name)
        .iter()
        .map(|e| e.get("fault").as_str().map(str::to_string))
        .collect()
}

/// A minimal JSON value, enough for the admin API's answers.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut parser = JsonParser {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let value = parser.value();
        parser.space();
        assert_eq!(parser.pos, text.len(), "trailing input in {text}");
        value
    }

    /// Field `key` of an object (panics if absent).
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no field {key} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(fields) => fields.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn u64(&self) -> u64 {
        match *self {
            Json::Num(n) if n >= 0.0 && n.fract() == 0.0 => n as u64,
            _ => panic!("not an unsigned integer: {self:?}"),
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            Json::Null => None,
            _ => panic!("not a string or null: {self:?}"),
        }
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let string = |f: &mut std::fmt::Formatter<'_>, s: &str| {
            f.write_str("\"")?;
            for c in s.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")
        };
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(n) => write!(f, "{n}"),
            Json::Str(s) => string(f, s),
            Json::Arr(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Obj(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    string(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn space(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, expected: u8) {
        self.space();
        assert_eq!(self.bytes.get(self.pos), Some(&expected), "at {}", self.pos);
        self.pos += 1;
    }

    fn value(&mut self) -> Json {
        self.space();
        let rest = &self.bytes[self.pos..];
        for (word, value) in [
            ("null", Json::Null),
            ("true", Json::Bool(true)),
            ("false", Json::Bool(false)),
        ] {
            if rest.starts_with(word.as_bytes()) {
                self.pos += word.len();
                return value;
            }
        }
        match rest.first() {
            Some(b'"') => Json::Str(self.string()),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.space();
                if self.bytes[self.pos] == b']' {
                    self.pos += 1;
                    return Json::Arr(items);
                }
                loop {
                    items.push(self.value());
                    self.space();
                    self.pos += 1;
                    match self.bytes[self.pos - 1] {
                        b',' => {}
                        b']' => return Json::Arr(items),
                        other => panic!("unexpected {:?}", other as char),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                self.space();
                if self.bytes[self.pos] == b'}' {
                    self.pos += 1;
                    return Json::Obj(fields);
                }
                loop {
                    self.space();
                    let key = self.string();
                    self.eat(b':');
                    fields.push((key, self.value()));
                    self.space();
                    self.pos += 1;
                    match self.bytes[self.pos - 1] {
                        b',' => {}
                        b'}' => return Json::Obj(fields),
                        other => panic!("unexpected {:?}", other as char),
                    }
                }
            }
            _ => {
                let len = rest
                    .iter()
                    .take_while(|b| b.is_ascii_digit() || b"-+.eE".contains(b))
                    .count();
                let text = std::str::from_utf8(&rest[..len]).unwrap();
                self.pos += len;
                Json::Num(
                    text.parse()
                        .unwrap_or_else(|_| panic!("bad number {text:?}")),
                )
            }
        }
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = String::new();
        loop {
            let c = self.bytes[self.pos..]
                .utf8_chunks()
                .next()
                .and_then(|chunk| chunk.valid().chars().next())
                .expect("valid UTF-8");
            self.pos += c.len_utf8();
            match c {
                '"' => return out,
                '\\' => {
                    let escape = self.bytes[self.pos];
                    self.pos += 1;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = std::str::from_utf8(&self.bytes[self.pos..self.pos + 4]);
                            self.pos += 4;
                            char::from_u32(u32::from_str_radix(hex.unwrap(), 16).unwrap())
                                .expect("no surrogates here")
                        }
                        other => panic!("bad escape {:?}", other as char),
                    });
                }
                c => out.push(c),
            }
        }
    }
}

fn expected(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    fill(seed, offset, &mut bytes);
    bytes
}

fn server() -> Handle {
    fault_server::start(0).expect("start server")
}

#[test]
fn fill_matches_the_definition() {
    // Reference outputs of SplitMix64 seeded with 0.
    assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6e78_9e6a_a1b9_65f4);
    let definition = |seed: u64, i: u64| {
        splitmix64(seed ^ (i / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes()
            [(i % 8) as usize]
    };
    for seed in [1, 7, 0xDEAD_BEEF] {
        for offset in [0, 1, 5, 13, 4097, (5 << 30) + 3] {
            let got = expected(seed, offset, 61);
            for (k, &b) in got.iter().enumerate() {
                assert_eq!(b, definition(seed, offset + k as u64));
            }
            let mut split = expected(seed, offset, 20);
            split.extend(expected(seed, offset + 20, 41));
            assert_eq!(split, got);
        }
    }
}

#[test]
fn serves_ranges_and_full_bodies() {
    let server = server();
    configure(&server, "r", "size=10000&seed=3");

    let full = get(&server, "/files/r", &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, expected(3, 0, 10_000));
    assert_eq!(full.content_length(), 10_000);
    assert_eq!(
        full.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("cache-control"), Some("no-store"));
    assert_eq!(full.header("etag"), Some(content_etag(3, 10_000).as_str()));
    assert_eq!(
        full.header("last-modified"),
        Some(content_last_modified(3).as_str())
    );
    assert_eq!(full.header("content-range"), None);

    for (range, start, end) in [
        ("bytes=100-199", 100, 199),
        ("bytes=9990-", 9990, 9999),
        ("bytes=-25", 9975, 9999),
        ("bytes=9000-20000", 9000, 9999),
        ("bytes=0-0", 0, 0),
    ] {
        let partial = get(&server, "/files/r", &[("Range", range)]);
        assert_eq!(partial.status, 206, "{range}");
        let content_range = format!("bytes {start}-{end}/10000");
        assert_eq!(
            partial.header("content-range"),
            Some(content_range.as_str())
        );
        assert_eq!(partial.content_length(), end - start + 1);
        assert_eq!(
            partial.body,
            expected(3, start, (end - start + 1) as usize),
            "{range}"
        );
    }

    // Multiple ranges and invalid ranges get the whole body.
    for range in ["bytes=0-1,5-6", "bytes=5-1", "bytes=abc", "pages=1-2"] {
        let response = get(&server, "/files/r", &[("Range", range)]);
        assert_eq!(response.status, 200, "{range}");
        assert_eq!(response.body.len(), 10_000);
    }
}

#[test]
fn offsets_beyond_four_gib() {
    let server = server();
    configure(&server, "big", "size=6442450944&seed=5");
    let response = get(&server, "/files/big", &[("Range", "bytes=6442450000-")]);
    assert_eq!(response.status, 206);
    assert_eq!(
        response.header("content-range"),
        Some("bytes 6442450000-6442450943/6442450944")
    );
    assert_eq!(response.body, expected(5, 6_442_450_000, 944));
}

#[test]
fn unsatisfiable_ranges_get_416() {
    let server = server();
    configure(&server, "r", "size=1000");
    let response = get(&server, "/files/r", &[("Range", "bytes=1000-")]);
    assert_eq!(response.status, 416);
    assert_eq!(response.header("content-range"), Some("bytes */1000"));
    assert!(response.body.is_empty());

    configure(&server, "empty", "size=0");
    let response = get(&server, "/files/empty", &[("Range", "bytes=0-")]);
    assert_eq!(response.status, 416);
    assert_eq!(response.header("content-range"), Some("bytes */0"));
    let response = get(&server, "/files/empty", &[("Range", "bytes=-10")]);
    assert_eq!(response.status, 416);
    let response = get(&server, "/files/empty", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), 0);
}

#[test]
fn if_range_decides_between_206_and_200() {
    let server = server();
    configure(&server, "r", "size=1000&seed=4");
    let etag = content_etag(4, 1000);
    let date = content_last_modified(4);
    let range = ("Range", "bytes=10-19");

    let response = get(
        &server,
        "/files/r",
        &[range, ("If-Range", "\"stale-1000\"")],
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.body, expected(4, 0, 1000));
    let response = get(
        &server,
        "/files/r",
        &[range, ("If-Range", "Tue, 15 Nov 1994 08:12:31 GMT")],
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        get(&server, "/files/r", &[range, ("If-Range", &etag)]).status,
        206
    );
    assert_eq!(
        get(&server, "/files/r", &[range, ("If-Range", &date)]).status,
        206
    );

    // Weak validators never satisfy If-Range.
    configure(&server, "r", "weak_etag=1");
    let weak = get(&server, "/files/r", &[]);
    let weak_tag = weak.header("etag").unwrap().to_string();
    assert_eq!(weak_tag, format!("W/{etag}"));
    assert_eq!(
        get(&server, "/files/r", &[range, ("If-Range", &weak_tag)]).status,
        200
    );

    configure(&server, "r", "weak_etag=0&no_etag=1&no_last_modified=1");
    let bare = get(&server, "/files/r", &[range]);
    assert_eq!(bare.status, 206);
    assert_eq!(bare.header("etag"), None);
    assert_eq!(bare.header("last-modified"), None);
    assert_eq!(
        get(&server, "/files/r", &[range, ("If-Range", &date)]).status,
        200
    );
}

#[test]
fn ignore_range_sends_the_full_body() {
    let server = server();
    configure(&server, "r", "size=5000&ignore_range=1");
    let response = get(&server, "/files/r", &[("Range", "bytes=100-199")]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, expected(1, 0, 5000));
    configure(&server, "r", "ignore_range=0");
    assert_eq!(
        get(&server, "/files/r", &[("Range", "bytes=100-199")]).status,
        206
    );
}

#[test]
fn fail_next_answers_503_then_recovers() {
    let server = server();
    configure(&server, "r", "size=1000&fail_next=2");
    // All on one keep-alive connection: 503s do not close it.
    let mut client = Client::connect(&server);
    for _ in 0..2 {
        let response = client.request("GET", "/files/r", &[("Range", "bytes=0-9")]);
        assert_eq!(response.status, 503);
        assert_eq!(response.header("retry-after"), Some("0"));
        assert!(!response.body.is_empty());
    }
    // HEAD does not consume faults.
    configure(&server, "r", "fail_next=1");
    assert_eq!(client.request("HEAD", "/files/r", &[]).status, 200);
    assert_eq!(client.request("GET", "/files/r", &[]).status, 503);
    let response = client.request("GET", "/files/r", &[("Range", "bytes=0-9")]);
    assert_eq!(response.status, 206);
    assert_eq!(response.body, expected(1, 0, 10));
}

#[test]
fn drop_truncates_the_body_and_logs_what_was_sent() {
    let server = server();
    configure(
        &server,
        "d",
        "size=100000&seed=2&drop_next=1&drop_after=1000",
    );
    let mut client = Client::connect(&server);
    let response = client.request("GET", "/files/d", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), 100_000);
    assert_eq!(response.body, expected(2, 0, 1000));
    assert!(client.at_eof());
    assert_eq!(
        log(&server, "d"),
        r#"[{"method":"GET","range":null,"status":200,"start":0,"end":99999,"sent":1000}]"#
    );
    // Only the next K responses are affected.
    let response = get(&server, "/files/d", &[("Range", "bytes=1000-")]);
    assert_eq!(response.body, expected(2, 1000, 99_000));

    // A drop point past the end of a short body sends the whole body.
    configure(&server, "d", "drop_next=1&drop_after=5000&clear_log=1");
    let response = get(&server, "/files/d", &[("Range", "bytes=0-99")]);
    assert_eq!(response.body.len(), 100);
    assert!(log(&server, "d").contains(r#""sent":100}"#));
}

#[test]
fn stall_then_cut_ends_the_response() {
    let server = server();
    configure(
        &server,
        "s",
        "size=100000&seed=6&stall_next=1&stall_after=500",
    );
    let mut client = Client::connect(&server);
    client.send("GET", "/files/s", &[("Range", "bytes=0-9999")]);
    let head = client.read_head();
    assert_eq!(head.status, 206);
    let mut body = vec![0u8; 500];
    client.reader.read_exact(&mut body).unwrap();
    assert_eq!(body, expected(6, 0, 500));

    // Nothing more arrives while stalled.
    client
        .stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let quiet = client.reader.read(&mut byte);
    assert!(
        matches!(&quiet, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{quiet:?}"
    );

    let started = Instant::now();
    let cut = admin_post(&server, "/_admin/cut/s");
    assert_eq!((cut.status, cut.text().as_str()), (200, r#"{"cut":1}"#));
    client.stream().set_read_timeout(Some(TIMEOUT)).unwrap();
    assert!(client.at_eof());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        log(&server, "s"),
        r#"[{"method":"GET","range":"bytes=0-9999","status":206,"start":0,"end":9999,"sent":500}]"#
    );
    // Nothing left to cut.
    assert_eq!(admin_post(&server, "/_admin/cut/s").text(), r#"{"cut":0}"#);
}

#[test]
fn cut_stops_a_throttled_response() {
    let server = server();
    configure(&server, "t", "size=1000000&throttle=10000");
    let mut client = Client::connect(&server);
    client.send("GET", "/files/t", &[]);
    assert_eq!(client.read_head().status, 200);
    let mut first = vec![0u8; 100];
    client.reader.read_exact(&mut first).unwrap();
    assert_eq!(admin_post(&server, "/_admin/cut/t").text(), r#"{"cut":1}"#);
    let mut rest = Vec::new();
    client.reader.read_to_end(&mut rest).unwrap();
    assert!(rest.len() < 100_000, "{}", rest.len());
    let entry = log(&server, "t");
    let sent = 100 + rest.len();
    assert!(
        entry.contains(&format!(r#""sent":{sent}}}"#)),
        "{entry} vs {sent}"
    );
}

#[test]
fn throttle_paces_the_body() {
    let server = server();
    configure(&server, "t", "size=20000&seed=8&throttle=40000");
    let started = Instant::now();
    let response = get(&server, "/files/t", &[]);
    let elapsed = started.elapsed();
    assert_eq!(response.body, expected(8, 0, 20_000));
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn changing_the_seed_or_size_changes_the_file() {
    let server = server();
    let created = configure(&server, "c", "size=4096&seed=1");
    assert_eq!(
        created,
        format!(
            r#"{{"name":"c","size":4096,"seed":1,"etag":"{}"}}"#,
            content_etag(1, 4096).replace('"', "\\\"")
        )
    );
    let before = get(&server, "/files/c", &[]);
    configure(&server, "c", "seed=2");
    let after = get(&server, "/files/c", &[]);
    assert_ne!(before.header("etag"), after.header("etag"));
    assert_ne!(
        before.header("last-modified"),
        after.header("last-modified")
    );
    assert_ne!(before.body, after.body);
    assert_eq!(after.body, expected(2, 0, 4096));
    configure(&server, "c", "size=4097");
    let grown = get(&server, "/files/c", &[]);
    assert_eq!(grown.header("etag"), Some(content_etag(2, 4097).as_str()));
    assert_eq!(grown.body.len(), 4097);
}

#[test]
fn expose_headers_are_configurable() {
    let server = server();
    configure(&server, "plain", "size=10");
    configure(&server, "none", "size=10&expose=");
    configure(&server, "some", "size=10&expose=X-A%2C+X-B");
    let default = get(&server, "/files/plain", &[]);
    let list = default.header("access-control-expose-headers").unwrap();
    for name in [
        "Content-Range",
        "Content-Length",
        "Content-Encoding",
        "Content-Disposition",
        "ETag",
        "Last-Modified",
        "Accept-Ranges",
    ] {
        assert!(list.contains(name), "{list}");
    }
    let none = get(&server, "/files/none", &[]);
    assert_eq!(none.header("access-control-expose-headers"), None);
    assert_eq!(none.header("access-control-allow-origin"), Some("*"));
    let some = get(&server, "/files/some", &[]);
    assert_eq!(
        some.header("access-control-expose-headers"),
        Some("X-A, X-B")
    );
}

#[test]
fn cors_echoes_the_origin() {
    let server = server();
    configure(&server, "r", "size=10");
    let origin = ("Origin", "http://localhost:8000");
    for response in [
        get(&server, "/files/r", &[origin]),
        get(&server, "/_admin/log/r", &[origin]),
        get(&server, "/nowhere", &[origin]),
    ] {
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("http://localhost:8000")
        );
        assert_eq!(
            response.header("access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(response.header("vary"), Some("Origin"));
    }
    let anonymous = get(&server, "/files/r", &[]);
    assert_eq!(anonymous.header("access-control-allow-origin"), Some("*"));
    assert_eq!(anonymous.header("access-control-allow-credentials"), None);

    let preflight = request(
        &server,
        "OPTIONS",
        "/files/r",
        &[
            origin,
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range, if-range"),
        ],
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("http://localhost:8000")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, HEAD, POST, OPTIONS")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("range, if-range")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
}

#[test]
fn the_log_records_every_get_and_head() {
    let server = server();
    configure(&server, "l", "size=1000");
    let mut client = Client::connect(&server);
    client.request("GET", "/files/l", &[("Range", "bytes=0-99")]);
    client.request("HEAD", "/files/l", &[]);
    client.request("GET", "/files/l", &[("Range", "bytes=5000-")]);
    client.request("GET", "/files/l", &[]);
    client.request("OPTIONS", "/files/l", &[]);
    assert_eq!(
        log(&server, "l"),
        concat!(
            r#"[{"method":"GET","range":"bytes=0-99","status":206,"start":0,"end":99,"sent":100},"#,
            r#"{"method":"HEAD","range":null,"status":200,"start":null,"end":null,"sent":0},"#,
            r#"{"method":"GET","range":"bytes=5000-","status":416,"start":null,"end":null,"sent":0},"#,
            r#"{"method":"GET","range":null,"status":200,"start":0,"end":999,"sent":1000}]"#
        )
    );
    assert_eq!(admin_post(&server, "/_admin/log/l/clear").status, 200);
    assert_eq!(log(&server, "l"), "[]");
    client.request("GET", "/files/l", &[("Range", "bytes=1-2")]);
    configure(&server, "l", "clear_log=1");
    assert_eq!(log(&server, "l"), "[]");
    assert_eq!(get(&server, "/_admin/log/unknown", &[]).status, 404);
}

#[test]
fn sha256_endpoint_matches_the_content() {
    assert_eq!(
        sha256::hex(&sha256::digest(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let server = server();
    configure(&server, "h", "size=200003&seed=11");
    let response = get(&server, "/_admin/sha256/h", &[]);
    assert_eq!(response.status, 200);
    let digest = sha256::hex(&sha256::digest(&expected(11, 0, 200_003)));
    assert_eq!(response.text(), format!(r#"{{"sha256":"{digest}"}}"#));
    assert_eq!(get(&server, "/_admin/sha256/nope", &[]).status, 404);
}

#[test]
fn bad_admin_requests_are_rejected() {
    let server = server();
    let response = admin_post(&server, "/_admin/files/x?size=abc");
    assert_eq!(response.status, 400);
    assert!(response.text().contains("size"), "{}", response.text());
    let response = admin_post(&server, "/_admin/files/x?size=1&bogus=2");
    assert_eq!(response.status, 400);
    assert!(response.text().contains("bogus"), "{}", response.text());
    let response = admin_post(&server, "/_admin/files/x?seed=2");
    assert_eq!(response.status, 400);
    assert!(response.text().contains("size"), "{}", response.text());
    // None of these created the file.
    assert_eq!(get(&server, "/files/x", &[]).status, 404);
    configure(&server, "x", "size=1");
    let response = admin_post(&server, "/_admin/files/x?fail_next=-1");
    assert_eq!(response.status, 400);
    assert!(response.text().contains("fail_next"));
    assert_eq!(get(&server, "/files/x", &[]).status, 200);
    assert_eq!(admin_post(&server, "/_admin/cut/unknown").status, 404);
    let unknown = get(&server, "/_admin/whatever", &[]);
    assert_eq!(
        (unknown.status, unknown.header("content-type")),
        (404, Some("application/json"))
    );
}

#[test]
fn extra_headers_encoding_and_disposition() {
    let server = server();
    configure(
        &server,
        "e",
        "size=300&encoding=gzip&disposition=attachment%3B+filename%3D%22a.bin%22",
    );
    let response = get(&server, "/files/e", &[("Range", "bytes=0-99")]);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"a.bin\"")
    );
    // Real gzip (one stored block) around the range's 100 bytes.
    let body = &response.body;
    assert_eq!(body.len(), 10 + 5 + 100 + 8);
    assert_eq!(&body[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(&body[10..15], &[1, 100, 0, !100, 0xff]);
    assert_eq!(body[15..115], expected(1, 0, 100)[..]);
    // Another encoding is only a label on the identity bytes.
    configure(&server, "e", "encoding=br");
    let response = get(&server, "/files/e", &[("Range", "bytes=0-99")]);
    assert_eq!(response.header("content-encoding"), Some("br"));
    assert_eq!(response.body, expected(1, 0, 100));
    configure(&server, "e", "encoding=&disposition=");
    let response = get(&server, "/files/e", &[]);
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.header("content-disposition"), None);
}

#[test]
fn keep_alive_head_and_connection_close() {
    let server = server();
    configure(&server, "k", "size=2000");
    let mut client = Client::connect(&server);
    let head = client.request("HEAD", "/files/k", &[("Range", "bytes=0-9")]);
    assert_eq!((head.status, head.content_length()), (206, 10));
    for start in [0u64, 500, 1999] {
        let range = format!("bytes={start}-");
        let response = client.request("GET", "/files/k", &[("Range", &range)]);
        assert_eq!(response.body, expected(1, start, (2000 - start) as usize));
    }
    let last = client.request("GET", "/files/k", &[("Connection", "close")]);
    assert_eq!(last.header("connection"), Some("close"));
    assert_eq!(last.body.len(), 2000);
    assert!(client.at_eof());
    assert_eq!(get(&server, "/files/missing", &[]).status, 404);
}

#[test]
fn malformed_requests_get_400_and_close() {
    let server = server();
    configure(&server, "m", "size=10");
    for raw in [
        "NOT A REQUEST LINE AT ALL\r\n\r\n",
        "GET /files/m HTTP/1.1\r\nBroken header\r\n\r\n",
        "GET /files/m HTTP/9.9\r\n\r\n",
        "POST /_admin/cut/m HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let mut client = Client::connect(&server);
        client.send_raw(raw);
        let response = client.read_response(false);
        assert_eq!(response.status, 400, "{raw:?}");
        assert!(client.at_eof(), "{raw:?}");
    }
    let mut client = Client::connect(&server);
    client.send_raw(&format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70_000)));
    assert_eq!(client.read_response(false).status, 400);
    // The server still serves, and a request body is skipped on keep-alive.
    let mut client = Client::connect(&server);
    client.send_raw("POST /_admin/files/m?seed=3 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(client.read_response(false).status, 200);
    assert_eq!(
        client.request("GET", "/files/m", &[]).body,
        expected(3, 0, 10)
    );
}

#[test]
fn the_binary_reports_its_port() {
    let dir = std::env::temp_dir().join(format!("fault-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port_file = dir.join("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fault-server"))
        .arg("--port-file")
        .arg(&port_file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fault-server");
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let port = std::fs::read_to_string(&port_file);
    let probe = port.as_ref().ok().map(|port| {
        let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream
            .write_all(b"GET /files/none HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    read.unwrap();
    let port = port.unwrap();
    assert_eq!(
        line,
        format!("fault-server listening on http://127.0.0.1:{port}\n")
    );
    assert!(probe.unwrap().starts_with("HTTP/1.1 404 Not Found\r\n"));
}

// ---------------------------------------------------------------------------
// Range faults, tokens, chaos, redirects, listeners, log fields, stats, cookies

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn stats(server: &Handle, name: &str) -> String {
    let response = get(server, &format!("/_admin/stats/{name}"), &[]);
    assert_eq!(response.status, 200);
    response.text()
}

fn two_listeners() -> Handle {
    let server = fault_server::start_with(&[0, 0]).expect("start server");
    assert_eq!(server.addrs().len(), 2);
    assert_ne!(server.ports()[0], server.ports()[1]);
    server
}

#[test]
fn shift_answers_another_range_than_asked() {
    let server = server();
    configure(&server, "s", "size=1000&seed=9&shift_next=3&shift_by=50");
    let mut client = Client::connect(&server);
    let range = ("Range", "bytes=100-199");
    let response = client.request("GET", "/files/s", &[range]);
    assert_eq!(response.status, 206);
    assert_eq!(response.header("content-range"), Some("bytes 150-249/1000"));
    assert_eq!(response.content_length(), 100);
    assert_eq!(response.body, expected(9, 150, 100));
    // Clamped at the end: 950-1049 becomes 950-999.
    let response = client.request("GET", "/files/s", &[("Range", "bytes=900-999")]);
    assert_eq!(response.header("content-range"), Some("bytes 950-999/1000"));
    assert_eq!(response.body, expected(9, 950, 50));
    // Both ends past the end: the last byte.
    configure(&server, "s", "shift_by=5000");
    let response = client.request("GET", "/files/s", &[range]);
    assert_eq!(response.header("content-range"), Some("bytes 999-999/1000"));
    assert_eq!(response.body, expected(9, 999, 1));
    // Negative, clamped at the start; the connection stays usable throughout.
    configure(&server, "s", "shift_next=1&shift_by=-150");
    let response = client.request("GET", "/files/s", &[range]);
    assert_eq!(response.header("content-range"), Some("bytes 0-49/1000"));
    assert_eq!(response.content_length(), 50);
    assert_eq!(response.body, expected(9, 0, 50));
    let response = client.request("GET", "/files/s", &[range]);
    assert_eq!(response.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(response.body, expected(9, 100, 100));
    assert_eq!(
        log(&server, "s"),
        concat!(
            r#"[{"method":"GET","range":"bytes=100-199","status":206,"start":150,"end":249,"sent":100},"#,
            r#"{"method":"GET","range":"bytes=900-999","status":206,"start":950,"end":999,"sent":50},"#,
            r#"{"method":"GET","range":"bytes=100-199","status":206,"start":999,"end":999,"sent":1},"#,
            r#"{"method":"GET","range":"bytes=100-199","status":206,"start":0,"end":49,"sent":50},"#,
            r#"{"method":"GET","range":"bytes=100-199","status":206,"start":100,"end":199,"sent":100}]"#
        )
    );
    let shift = Some("shift".to_string());
    assert_eq!(
        faults(&server, "s"),
        [shift.clone(), shift.clone(), shift.clone(), shift, None]
    );
}

#[test]
fn short_answers_less_than_asked() {
    let server = server();
    configure(&server, "s", "size=1000&seed=2&short_next=2&short_by=30");
    let mut client = Client::connect(&server);
    let response = client.request("GET", "/files/s", &[("Range", "bytes=0-99")]);
    assert_eq!(response.status, 206);
    assert_eq!(response.header("content-range"), Some("bytes 0-69/1000"));
    assert_eq!(response.content_length(), 70);
    assert_eq!(response.body, expected(2, 0, 70));
    // Never less than one byte.
    let response = client.request("GET", "/files/s", &[("Range", "bytes=-10")]);
    assert_eq!(response.header("content-range"), Some("bytes 990-990/1000"));
    assert_eq!(response.body, expected(2, 990, 1));
    let response = client.request("GET", "/files/s", &[("Range", "bytes=0-99")]);
    assert_eq!(response.header("content-range"), Some("bytes 0-99/1000"));
    assert_eq!(response.body.len(), 100);
    let short = Some("short".to_string());
    assert_eq!(faults(&server, "s"), [short.clone(), short, None]);
}

#[test]
fn cl_short_disagrees_with_content_range_but_stays_framed() {
    let server = server();
    configure(
        &server,
        "c",
        "size=1000&seed=5&cl_short_next=1&cl_short_by=10",
    );
    let mut client = Client::connect(&server);
    let response = client.request("GET", "/files/c", &[("Range", "bytes=100-199")]);
    assert_eq!(response.status, 206);
    assert_eq!(response.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(response.content_length(), 90);
    assert_eq!(response.body, expected(5, 100, 90));
    // The next response on the same connection parses: the framing held.
    let response = client.request("GET", "/files/c", &[("Range", "bytes=100-199")]);
    assert_eq!(response.content_length(), 100);
    assert_eq!(response.body, expected(5, 100, 100));
    assert_eq!(
        log(&server, "c"),
        concat!(
            r#"[{"method":"GET","range":"bytes=100-199","status":206,"start":100,"end":199,"sent":90},"#,
            r#"{"method":"GET","range":"bytes=100-199","status":206,"start":100,"end":199,"sent":100}]"#
        )
    );
    assert_eq!(faults(&server, "c"), [Some("cl_short".to_string()), None]);
}

fn multipart_body(seed: u64, start: u64, end: u64, total: &str) -> Vec<u8> {
    let mut body = format!(
        "--{MULTIPART_BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\
         Content-Range: bytes {start}-{end}/{total}\r\n\r\n"
    )
    .into_bytes();
    body.extend(expected(seed, start, (end - start + 1) as usize));
    body.extend(format!("\r\n--{MULTIPART_BOUNDARY}--\r\n").into_bytes());
    body
}

#[test]
fn multipart_wraps_a_single_range() {
    let server = server();
    configure(&server, "m", "size=1000&seed=4&multipart_next=1");
    let mut client = Client::connect(&server);
    let response = client.request("GET", "/files/m", &[("Range", "bytes=10-19")]);
    assert_eq!(response.status, 206);
    assert_eq!(
        response.header("content-type"),
        Some(format!("multipart/byteranges; boundary={MULTIPART_BOUNDARY}").as_str())
    );
    assert_eq!(response.header("content-range"), None);
    let body = multipart_body(4, 10, 19, "1000");
    assert_eq!(response.content_length(), body.len() as u64);
    assert_eq!(response.body, body);
    let response = client.request("GET", "/files/m", &[("Range", "bytes=10-19")]);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.body, expected(4, 10, 10));
    let entries = entries(&server, "m");
    assert_eq!(entries[0].get("sent").u64(), body.len() as u64);
    assert_eq!(
        (entries[0].get("start").u64(), entries[0].get("end").u64()),
        (10, 19)
    );
    assert_eq!(faults(&server, "m"), [Some("multipart".to_string()), None]);
}

#[test]
fn no_content_range_omits_the_header() {
    let server = server();
    configure(&server, "n", "size=1000&seed=3&no_content_range_next=1");
    let mut client = Client::connect(&server);
    let response = client.request("GET", "/files/n", &[("Range", "bytes=5-9")]);
    assert_eq!(response.status, 206);
    assert_eq!(response.header("content-range"), None);
    assert_eq!(response.content_length(), 5);
    assert_eq!(response.body, expected(3, 5, 5));
    let response = client.request("GET", "/files/n", &[("Range", "bytes=5-9")]);
    assert_eq!(response.header("content-range"), Some("bytes 5-9/1000"));
    assert_eq!(
        faults(&server, "n"),
        [Some("no_content_range".to_string()), None]
    );
}

#[test]
fn unknown_total_hides_the_size_of_206_only() {
    let server = server();
    configure(&server, "u", "size=1000&seed=6&unknown_total=1");
    let response = get(&server, "/files/u", &[("Range", "bytes=0-9")]);
    assert_eq!(response.status, 206);
    assert_eq!(response.header("content-range"), Some("bytes 0-9/*"));
    assert_eq!(response.body, expected(6, 0, 10));
    let response = get(&server, "/files/u", &[("Range", "bytes=1000-")]);
    assert_eq!(response.status, 416);
    assert_eq!(response.header("content-range"), Some("bytes */1000"));
    let response = get(&server, "/files/u", &[]);
    assert_eq!(
        (response.status, response.header("content-range")),
        (200, None)
    );
    // It combines with the range faults.
    configure(&server, "u", "multipart_next=1&shift_next=1&shift_by=1");
    let response = get(&server, "/files/u", &[("Range", "bytes=0-9")]);
    assert_eq!(response.header("content-range"), Some("bytes 1-10/*"));
    let response = get(&server, "/files/u", &[("Range", "bytes=0-9")]);
    assert_eq!(response.body, multipart_body(6, 0, 9, "*"));
    configure(&server, "u", "unknown_total=0");
    let response = get(&server, "/files/u", &[("Range", "bytes=0-9")]);
    assert_eq!(response.header("content-range"), Some("bytes 0-9/1000"));
}

#[test]
fn range_faults_are_used_up_by_other_answers() {
    let server = server();
    configure(
        &server,
        "x",
        "size=100&shift_next=1&shift_by=5&short_next=1&short_by=5",
    );
    // A 200 and a 416 each take one queued range fault without effect.
    assert_eq!(get(&server, "/files/x", &[]).status, 200);
    let response = get(&server, "/files/x", &[("Range", "bytes=500-")]);
    assert_eq!(response.status, 416);
    let response = get(&server, "/files/x", &[("Range", "bytes=0-9")]);
    assert_eq!(response.header("content-range"), Some("bytes 0-9/100"));
    assert_eq!(faults(&server, "x"), [None, None, None]);
    // HEAD takes no fault.
    configure(&server, "x", "shift_next=1&clear_log=1");
    let head = request(&server, "HEAD", "/files/x", &[("Range", "bytes=0-9")]);
    assert_eq!(head.header("content-range"), Some("bytes 0-9/100"));
    let response = get(&server, "/files/x", &[("Range", "bytes=0-9")]);
    assert_eq!(response.header("content-range"), Some("bytes 5-14/100"));
}

#[test]
fn one_fault_per_get_in_precedence_order() {
    let server = server();
    configure(
        &server,
        "p",
        "size=1000&seed=12&require_token=tok&fail_next=1&drop_next=1&drop_after=10\
         &stall_next=1&stall_after=20&shift_next=1&shift_by=100&short_next=1&short_by=10\
         &cl_short_next=1&cl_short_by=5&multipart_next=1&no_content_range_next=1",
    );
    let range = ("Range", "bytes=0-99");
    // Without the token: 403, and no fault is used up.
    let denied = get(&server, "/files/p", &[range]);
    assert_eq!(denied.status, 403);
    let path = "/files/p?token=tok";

    let failed = get(&server, path, &[range]);
    assert_eq!(failed.status, 503);

    let mut client = Client::connect(&server);
    let dropped = client.request("GET", path, &[range]);
    assert_eq!((dropped.status, dropped.content_length()), (206, 100));
    assert_eq!(dropped.body, expected(12, 0, 10));
    assert!(client.at_eof());
    // Earlier responses end (and leave the set a cut counts) once logged.
    wait_for_entries(&server, "p", 3);

    let mut client = Client::connect(&server);
    client.send("GET", path, &[range]);
    assert_eq!(client.read_head().status, 206);
    let mut body = vec![0u8; 20];
    client.reader.read_exact(&mut body).unwrap();
    assert_eq!(body, expected(12, 0, 20));
    assert_eq!(admin_post(&server, "/_admin/cut/p").text(), r#"{"cut":1}"#);
    assert!(client.at_eof());

    let shifted = get(&server, path, &[range]);
    assert_eq!(shifted.header("content-range"), Some("bytes 100-199/1000"));
    let short = get(&server, path, &[range]);
    assert_eq!(short.header("content-range"), Some("bytes 0-89/1000"));
    let cl_short = get(&server, path, &[range]);
    assert_eq!(cl_short.header("content-range"), Some("bytes 0-99/1000"));
    assert_eq!(cl_short.content_length(), 95);
    let multipart = get(&server, path, &[range]);
    assert_eq!(multipart.body, multipart_body(12, 0, 99, "1000"));
    let bare = get(&server, path, &[range]);
    assert_eq!((bare.status, bare.header("content-range")), (206, None));
    let normal = get(&server, path, &[range]);
    assert_eq!(normal.header("content-range"), Some("bytes 0-99/1000"));
    assert_eq!(normal.body, expected(12, 0, 100));

    let names: Vec<Option<String>> = [
        Some("token"),
        Some("fail"),
        Some("drop"),
        Some("stall"),
        Some("shift"),
        Some("short"),
        Some("cl_short"),
        Some("multipart"),
        Some("no_content_range"),
        None,
    ]
    .iter()
    .map(|n| n.map(str::to_string))
    .collect();
    assert_eq!(faults(&server, "p"), names);
    let statuses: Vec<u64> = entries(&server, "p")
        .iter()
        .map(|e| e.get("status").u64())
        .collect();
    assert_eq!(statuses, [403, 503, 206, 206, 206, 206, 206, 206, 206, 206]);
}

#[test]
fn tokens_guard_the_file() {
    let server = server();
    configure(
        &server,
        "t",
        "size=50&seed=7&require_token=s3cret&fail_next=1",
    );
    for path in ["/files/t", "/files/t?token=wrong", "/files/t?tok=s3cret"] {
        let response = get(&server, path, &[("Origin", "http://localhost:8000")]);
        assert_eq!(response.status, 403, "{path}");
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.text(), "fault-server: missing or wrong token\n");
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("http://localhost:8000")
        );
    }
    let head = request(&server, "HEAD", "/files/t", &[]);
    assert_eq!(head.status, 403);
    // The 403s used up no fault; other query parameters are ignored.
    assert_eq!(get(&server, "/files/t?token=s3cret", &[]).status, 503);
    let response = get(&server, "/files/t?a=1&token=s3cret&b=%20", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, expected(7, 0, 50));
    let response = get(
        &server,
        "/files/t?token=s%33cret",
        &[("Range", "bytes=0-4")],
    );
    assert_eq!(response.status, 206);
    let token = Some("token".to_string());
    assert_eq!(
        faults(&server, "t"),
        [
            token.clone(),
            token.clone(),
            token.clone(),
            token,
            Some("fail".to_string()),
            None,
            None
        ]
    );
    // An empty token requires none; queries are still ignored.
    configure(&server, "t", "require_token=");
    assert_eq!(get(&server, "/files/t", &[]).status, 200);
    assert_eq!(get(&server, "/files/t?token=anything&x", &[]).status, 200);
}

#[test]
fn redirects_to_a_url_or_to_the_file() {
    let server = two_listeners();
    configure(&server, "r", "size=100&seed=3");
    let target = server.url_on(1, "/files/r?x=1&y=a%20b");
    let origin = ("Origin", "http://localhost:8000");
    let path = format!("/redirect/r?a=1&to={}&b=2", encode(&target));
    let response = get(&server, &path, &[origin]);
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some(target.as_str()));
    assert_eq!(response.content_length(), 0);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("http://localhost:8000")
    );
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    // Follow it: the second listener serves the file.
    let followed =
        Client::connect_to(server.addrs()[1]).request("GET", "/files/r?x=1&y=a%20b", &[]);
    assert_eq!(followed.body, expected(3, 0, 100));
    let entries = entries(&server, "r");
    assert_eq!(entries.len(), 1, "redirects are not logged");
    assert_eq!(entries[0].get("port").u64(), u64::from(server.ports()[1]));

    // Without `to`: the file on the same listener, the rest of the query kept.
    for (path, location) in [
        ("/redirect/r", "/files/r"),
        ("/redirect/r?token=x&b=%20", "/files/r?token=x&b=%20"),
        ("/redirect/a%20b?to2=1", "/files/a%20b?to2=1"),
    ] {
        let response = get(&server, path, &[]);
        assert_eq!(response.status, 302, "{path}");
        assert_eq!(response.header("location"), Some(location), "{path}");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    }
    let head = request(&server, "HEAD", "/redirect/r", &[]);
    assert_eq!(
        (head.status, head.header("location")),
        (302, Some("/files/r"))
    );
    assert_eq!(get(&server, "/redirect/r?to=a%0d%0ab", &[]).status, 400);
    assert_eq!(get(&server, "/redirect/r?to=", &[]).status, 400);
    assert_eq!(get(&server, "/redirect/", &[]).status, 404);
}

#[test]
fn a_second_listener_shares_the_state() {
    let server = two_listeners();
    let [first, second] = [server.addrs()[0], server.addrs()[1]];
    let mut admin_b = Client::connect_to(second);
    let created = admin_b.request("POST", "/_admin/files/f?size=300&seed=8&fail_next=1", &[]);
    assert_eq!(created.status, 200);
    // The fault configured through B is taken by a GET on A.
    let mut a = Client::connect_to(first);
    assert_eq!(a.request("GET", "/files/f", &[]).status, 503);
    let mut b = Client::connect_to(second);
    let response = b.request("GET", "/files/f", &[("Range", "bytes=0-9")]);
    assert_eq!(response.body, expected(8, 0, 10));
    let response = a.request("GET", "/files/f", &[]);
    assert_eq!(response.body, expected(8, 0, 300));
    let ports: Vec<u64> = entries(&server, "f")
        .iter()
        .map(|e| e.get("port").u64())
        .collect();
    let [pa, pb] = [u64::from(first.port()), u64::from(second.port())];
    assert_eq!(ports, [pa, pb, pa]);
    // The log read through B is the same.
    let log_b = admin_b.request("GET", "/_admin/log/f", &[]);
    let log_a = get(&server, "/_admin/log/f", &[]);
    assert_eq!(log_a.text(), log_b.text());
    assert_eq!(server.url_on(1, "/x"), format!("http://{second}/x"));
}

#[test]
fn the_log_has_request_details_and_times() {
    let server = server();
    configure(&server, "l", "size=20000&seed=2");
    let etag = content_etag(2, 20_000);
    let mut client = Client::connect(&server);
    client.request(
        "GET",
        "/files/l",
        &[
            ("Range", "bytes=0-9"),
            ("If-Range", &etag),
            ("Referer", "http://localhost:8000/page"),
            ("Cookie", "sid=1"),
            ("User-Agent", "rf-test/1"),
            ("Accept", "not-logged"),
            ("Origin", "http://localhost:8000"),
            ("X-Trace", "7"),
            ("x-dup", "a"),
            ("X-Dup", "b"),
            ("Cookie", "other=2"),
        ],
    );
    configure(&server, "l", "throttle=40000");
    client.request("HEAD", "/files/l", &[]);
    client.request("GET", "/files/l", &[]);
    let entries = entries(&server, "l");
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0].keys(),
        [
            "method",
            "range",
            "status",
            "start",
            "end",
            "sent",
            "if_range",
            "headers",
            "port",
            "fault",
            "started_ms",
            "ended_ms"
        ]
    );
    assert_eq!(entries[0].get("if_range").as_str(), Some(etag.as_str()));
    assert_eq!(
        entries[0].get("headers").to_string(),
        concat!(
            r#"{"referer":"http://localhost:8000/page","cookie":"sid=1; other=2","#,
            r#""user-agent":"rf-test/1","origin":"http://localhost:8000","x-trace":"7","x-dup":"a, b"}"#
        )
    );
    assert_eq!(entries[0].get("port").u64(), u64::from(server.port()));
    assert_eq!(entries[0].get("fault"), &Json::Null);
    assert_eq!(entries[1].get("if_range"), &Json::Null);
    assert_eq!(entries[1].get("headers"), &Json::Obj(Vec::new()));
    let times: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| (e.get("started_ms").u64(), e.get("ended_ms").u64()))
        .collect();
    for (i, &(started, ended)) in times.iter().enumerate() {
        assert!(started <= ended, "{times:?}");
        if i > 0 {
            assert!(times[i - 1].1 <= started, "{times:?}");
        }
    }
    // 20000 bytes at 40000 bytes/s take at least 450 ms.
    let (started, ended) = times[2];
    assert!(ended - started >= 400, "{times:?}");
}

#[test]
fn stats_count_concurrent_responses() {
    let server = server();
    configure(&server, "c", "size=1000000&throttle=1000");
    assert_eq!(stats(&server, "c"), r#"{"max_concurrent":0,"requests":0}"#);
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(&server)).collect();
    for client in &mut clients {
        client.send("GET", "/files/c", &[]);
        assert_eq!(client.read_head().status, 200);
    }
    assert_eq!(stats(&server, "c"), r#"{"max_concurrent":3,"requests":3}"#);
    assert_eq!(admin_post(&server, "/_admin/cut/c").text(), r#"{"cut":3}"#);
    for client in &mut clients {
        let mut rest = Vec::new();
        client.reader.read_to_end(&mut rest).unwrap();
    }
    wait_for_entries(&server, "c", 3);
    assert_eq!(stats(&server, "c"), r#"{"max_concurrent":3,"requests":3}"#);

    // Clearing the log restarts the statistics; one at a time counts 1.
    assert_eq!(admin_post(&server, "/_admin/log/c/clear").status, 200);
    assert_eq!(stats(&server, "c"), r#"{"max_concurrent":0,"requests":0}"#);
    configure(&server, "c", "throttle=0&fail_next=1");
    let mut client = Client::connect(&server);
    assert_eq!(client.request("GET", "/files/c", &[]).status, 503);
    client.request("GET", "/files/c", &[("Range", "bytes=0-99")]);
    client.request("HEAD", "/files/c", &[]);
    assert_eq!(stats(&server, "c"), r#"{"max_concurrent":1,"requests":2}"#);
    configure(&server, "c", "clear_log=1");
    assert_eq!(stats(&server, "c"), r#"{"max_concurrent":0,"requests":0}"#);
    assert_eq!(get(&server, "/_admin/stats/none", &[]).status, 404);
}

#[test]
fn set_cookie_sets_a_lax_cookie() {
    let server = server();
    let response = get(
        &server,
        "/_admin/set-cookie?name=sid&value=abc123",
        &[("Origin", "http://localhost:8000")],
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.header("set-cookie"),
        Some("sid=abc123; Path=/; SameSite=Lax")
    );
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("http://localhost:8000")
    );
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(response.text(), r#"{"name":"sid","value":"abc123"}"#);
    let empty = get(&server, "/_admin/set-cookie?name=e&value=", &[]);
    assert_eq!(empty.header("set-cookie"), Some("e=; Path=/; SameSite=Lax"));
    for bad in [
        "name=&value=1",
        "value=1",
        "name=a%20b&value=1",
        "name=a&value=x%3By",
    ] {
        let response = get(&server, &format!("/_admin/set-cookie?{bad}"), &[]);
        assert_eq!(response.status, 400, "{bad}");
        assert_eq!(response.header("set-cookie"), None);
    }
    let post = admin_post(&server, "/_admin/set-cookie?name=a&value=b");
    assert_eq!(post.status, 404);
}

/// The documented chaos decision of GET `n`: (fault name, bytes before a drop
/// or stall) for a body of `len` bytes.
fn chaos_prediction(seed: u64, n: u64, rate: u64, len: u64) -> (Option<&'static str>, u64) {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let output = |k: u64| splitmix64(seed.wrapping_add(k.wrapping_mul(GOLDEN)));
    let (roll, kind, bytes) = (output(3 * n), output(3 * n + 1), output(3 * n + 2));
    if roll % 100 >= rate {
        return (None, len);
    }
    let after = bytes.checked_rem(len).unwrap_or(0);
    match kind % 3 {
        0 => (Some("chaos-503"), 0),
        1 => (Some("chaos-drop"), after),
        _ => (Some("chaos-stall"), after),
    }
}

/// GETs `count` ranges of chaos file `name` (1000 bytes, chaos seed `seed`,
/// rate 60) one connection each, ending predicted stalls with a cut. Returns
/// (status, body) per GET and the log's decisive fields.
fn run_chaos(server: &Handle, seed: u64, count: u64) -> (Vec<(u16, Vec<u8>)>, Vec<String>) {
    configure(
        server,
        "z",
        &format!("size=1000&seed=3&chaos={seed}&chaos_rate=60"),
    );
    let mut outcomes = Vec::new();
    for n in 0..count {
        let start = n * 37 % 900;
        let range = format!("bytes={start}-");
        let mut client = Client::connect(server);
        client.send(
            "GET",
            "/files/z",
            &[("Range", &range), ("Connection", "close")],
        );
        let mut response = client.read_head();
        let (fault, after) = chaos_prediction(seed, n, 60, 1000 - start);
        if fault == Some("chaos-stall") {
            response.body = vec![0u8; after as usize];
            client.reader.read_exact(&mut response.body).unwrap();
            assert_eq!(admin_post(server, "/_admin/cut/z").text(), r#"{"cut":1}"#);
            // So that the next cut finds this response gone.
            wait_for_entries(server, "z", n as usize + 1);
        } else {
            client.reader.read_to_end(&mut response.body).unwrap();
        }
        assert!(client.at_eof());
        if response.status == 206 {
            assert_eq!(response.body, expected(3, start, response.body.len()));
        }
        outcomes.push((response.status, response.body));
    }
    let decisive = entries(server, "z")
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e.get("status"),
                e.get("start"),
                e.get("end"),
                e.get("sent"),
                e.get("fault")
            )
        })
        .collect();
    (outcomes, decisive)
}

#[test]
fn chaos_is_deterministic() {
    const SEED: u64 = 2024;
    const COUNT: u64 = 30;
    let (first, second) = (server(), server());
    let (outcomes_a, log_a) = run_chaos(&first, SEED, COUNT);
    let (outcomes_b, log_b) = run_chaos(&second, SEED, COUNT);
    assert_eq!(log_a, log_b);
    assert_eq!(outcomes_a, outcomes_b);
    // And the decisions are the documented ones.
    let entries = entries(&first, "z");
    let mut seen = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let start = n as u64 * 37 % 900;
        let (fault, after) = chaos_prediction(SEED, n as u64, 60, 1000 - start);
        assert_eq!(entry.get("fault").as_str(), fault, "GET {n}");
        let sent = entry.get("sent").u64();
        match fault {
            Some("chaos-503") => assert_eq!(entry.get("status").u64(), 503),
            Some(_) => {
                assert_eq!(sent, after, "GET {n}");
                assert!(sent < 1000 - start);
                assert_eq!(outcomes_a[n].1.len() as u64, after);
            }
            None => assert_eq!(sent, 1000 - start),
        }
        seen.push(fault);
    }
    for kind in [
        None,
        Some("chaos-503"),
        Some("chaos-drop"),
        Some("chaos-stall"),
    ] {
        assert!(seen.contains(&kind), "{kind:?} never happened: {seen:?}");
    }
    // Reconfiguring chaos restarts the decisions.
    let (again, _) = run_chaos(&first, SEED, 5);
    assert_eq!(again, outcomes_a[..5]);
}

#[test]
fn queued_faults_win_over_chaos_and_tokens_do_not_count() {
    // A seed whose first two chaos decisions at rate 100 are 503s.
    let seed = (1u64..)
        .find(|&s| (0..2).all(|n| chaos_prediction(s, n, 100, 100).0 == Some("chaos-503")))
        .unwrap();
    let server = server();
    configure(
        &server,
        "q",
        &format!("size=100&chaos={seed}&chaos_rate=100&multipart_next=1&require_token=t"),
    );
    assert_eq!(get(&server, "/files/q", &[]).status, 403);
    assert_eq!(
        request(&server, "HEAD", "/files/q?token=t", &[]).status,
        503 - 303
    );
    let first = get(&server, "/files/q?token=t", &[("Range", "bytes=0-9")]);
    assert_eq!(first.body, multipart_body(1, 0, 9, "100"));
    assert_eq!(get(&server, "/files/q?token=t", &[]).status, 503);
    assert_eq!(
        faults(&server, "q"),
        [
            Some("token".to_string()),
            None,
            Some("multipart".to_string()),
            Some("chaos-503".to_string())
        ]
    );
    configure(&server, "q", "chaos=off");
    assert_eq!(get(&server, "/files/q?token=t", &[]).status, 200);
}

#[test]
fn chaos_changes_the_content_once_after_m_gets() {
    let server = server();
    configure(&server, "m", "size=100&seed=10");
    configure(&server, "m", "chaos=5&chaos_rate=0&chaos_change_after=4");
    let mut client = Client::connect(&server);
    // HEADs do not count.
    let head = client.request("HEAD", "/files/m", &[]);
    assert_eq!(head.header("etag"), Some(content_etag(10, 100).as_str()));
    for _ in 0..4 {
        let response = client.request("GET", "/files/m", &[]);
        assert_eq!(
            response.header("etag"),
            Some(content_etag(10, 100).as_str())
        );
        assert_eq!(response.body, expected(10, 0, 100));
    }
    for _ in 0..5 {
        let response = client.request("GET", "/files/m", &[("Range", "bytes=0-9")]);
        assert_eq!(
            response.header("etag"),
            Some(content_etag(11, 100).as_str())
        );
        assert_eq!(
            response.header("last-modified"),
            Some(content_last_modified(11).as_str())
        );
        assert_eq!(response.body, expected(11, 0, 10));
    }
    let digest = sha256::hex(&sha256::digest(&expected(11, 0, 100)));
    assert_eq!(
        get(&server, "/_admin/sha256/m", &[]).text(),
        format!(r#"{{"sha256":"{digest}"}}"#)
    );
    assert!(configure(&server, "m", "clear_log=0").contains(r#""seed":11,"#));
    // Configuring chaos again re-arms the change.
    configure(&server, "m", "chaos_change_after=2");
    for seed in [11, 11, 12, 12] {
        let response = client.request("GET", "/files/m", &[]);
        assert_eq!(response.body, expected(seed, 0, 100));
    }
}

#[test]
fn the_binary_can_serve_a_second_port() {
    let dir = std::env::temp_dir().join(format!("fault-server-test2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port_file, second_file) = (dir.join("port"), dir.join("second"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_fault-server"))
        .arg("--port-file")
        .arg(&port_file)
        .arg(format!("--second-port-file={}", second_file.display()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fault-server");
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let ports = (
        std::fs::read_to_string(&port_file),
        std::fs::read_to_string(&second_file),
    );
    let exchange = |port: &str, raw: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answers = match &ports {
        (Ok(a), Ok(b)) => Some((
            exchange(
                b,
                "POST /_admin/files/two?size=3 HTTP/1.1\r\nConnection: close\r\n\r\n",
            ),
            exchange(a, "GET /files/two HTTP/1.1\r\nConnection: close\r\n\r\n"),
        )),
        _ => None,
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    read.unwrap();
    let (a, b) = (ports.0.unwrap(), ports.1.unwrap());
    assert_ne!(a, b);
    assert_eq!(
        line,
        format!("fault-server listening on http://127.0.0.1:{a} and http://127.0.0.1:{b}\n")
    );
    let (created, served) = answers.unwrap();
    assert!(created.starts_with("HTTP/1.1 200 OK\r\n"), "{created}");
    assert!(served.starts_with("HTTP/1.1 200 OK\r\n"), "{served}");
    assert!(served.contains("\r\nContent-Length: 3\r\n"), "{served}");
}

#[test]
fn clearing_forgets_responses_in_progress() {
    let server = server();
    configure(&server, "f", "size=1000&stall_next=1&stall_after=10");
    let mut stalled = Client::connect(&server);
    stalled.send("GET", "/files/f", &[]);
    assert_eq!(stalled.read_head().status, 200);
    assert_eq!(admin_post(&server, "/_admin/log/f/clear").status, 200);
    // Still being written: it counts for max_concurrent, not as a new request.
    assert_eq!(stats(&server, "f"), r#"{"max_concurrent":1,"requests":0}"#);
    let mut client = Client::connect(&server);
    let range = ("Range", "bytes=0-9");
    let response = client.request("GET", "/files/f", &[range, ("Connection", "close")]);
    assert_eq!(response.status, 206);
    assert!(client.at_eof()); // Closed after it was logged.
    let mut body = [0u8; 10];
    stalled.reader.read_exact(&mut body).unwrap();
    assert_eq!(admin_post(&server, "/_admin/cut/f").text(), r#"{"cut":1}"#);
    assert!(stalled.at_eof());
    // Once no response is left, the stalled one has ended unlogged.
    let deadline = Instant::now() + TIMEOUT;
    while admin_post(&server, "/_admin/cut/f").text() != r#"{"cut":0}"# {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        log(&server, "f"),
        r#"[{"method":"GET","range":"bytes=0-9","status":206,"start":0,"end":9,"sent":10}]"#
    );
    assert_eq!(stats(&server, "f"), r#"{"max_concurrent":2,"requests":1}"#);
}
