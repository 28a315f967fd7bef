//! End-to-end tests: a server per test on a free port, spoken to with
//! hand-written HTTP/1.1 over `TcpStream`. Every socket has timeouts, so no
//! test can hang.
#![cfg(not(target_arch = "wasm32"))]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fault_server::{content_etag, content_last_modified, fill, sha256, splitmix64, Handle};

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
        let stream = TcpStream::connect(server.addr()).expect("connect");
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

fn log(server: &Handle, name: &str) -> String {
    let response = get(server, &format!("/_admin/log/{name}"), &[]);
    assert_eq!(response.status, 200);
    response.text()
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
