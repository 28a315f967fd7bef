//! Helpers for the fault server's end-to-end tests: a server per test on a
//! free port, spoken to with hand-written HTTP/1.1 over `TcpStream`. Every
//! socket has timeouts, so no test can hang.
#![allow(dead_code)] // each test file uses its own subset

mod json;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fault_server::{fill, Handle, MULTIPART_BOUNDARY};

pub use json::Json;

/// Every socket's read and write timeout, and the longest a test waits.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The 64-bit golden ratio: SplitMix64's increment, as the documented content
/// and chaos definitions use it.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A response as read: status line, headers and body (cut short if the
/// server closed early).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_length(&self) -> u64 {
        self.header("content-length")
            .expect("Content-Length")
            .parse()
            .expect("number")
    }
}

/// One client connection (keep-alive capable).
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(server: &Handle) -> Client {
        Client::connect_to(server.addr())
    }

    pub fn connect_to(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        self.send_raw(&raw);
    }

    pub fn send_raw(&mut self, raw: &str) {
        self.reader
            .get_mut()
            .write_all(raw.as_bytes())
            .expect("send");
    }

    /// Reads a status line and headers; the body is left unread.
    pub fn read_head(&mut self) -> Response {
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
    pub fn read_response(&mut self, head_request: bool) -> Response {
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

    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.send(method, path, headers);
        self.read_response(method == "HEAD")
    }

    /// True if the server has closed the connection (EOF within the timeout).
    pub fn at_eof(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// One request on a fresh connection.
pub fn request(server: &Handle, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect(server).request(method, path, headers)
}

pub fn get(server: &Handle, path: &str, headers: &[(&str, &str)]) -> Response {
    request(server, "GET", path, headers)
}

pub fn admin_post(server: &Handle, path: &str) -> Response {
    let response = request(server, "POST", path, &[]);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{path}"
    );
    response
}

/// Creates or updates a file and checks that the server accepted it.
pub fn configure(server: &Handle, name: &str, query: &str) -> String {
    let response = admin_post(server, &format!("/_admin/files/{name}?{query}"));
    assert_eq!(response.status, 200, "{query}: {}", response.text());
    response.text()
}

/// The log's entries, parsed.
pub fn entries(server: &Handle, name: &str) -> Vec<Json> {
    let response = get(server, &format!("/_admin/log/{name}"), &[]);
    assert_eq!(response.status, 200);
    match Json::parse(&response.text()) {
        Json::Arr(items) => items,
        other => panic!("log is not an array: {other:?}"),
    }
}

/// The log once it has at least `count` entries (responses end, and are
/// logged, a moment after a cut has closed their socket).
pub fn wait_for_entries(server: &Handle, name: &str, count: usize) -> Vec<Json> {
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
pub fn log(server: &Handle, name: &str) -> String {
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
pub fn faults(server: &Handle, name: &str) -> Vec<Option<String>> {
    entries(server, name)
        .iter()
        .map(|e| e.get("fault").as_str().map(str::to_string))
        .collect()
}

/// `len` bytes of the content of file `seed` from `offset`.
pub fn expected(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    fill(seed, offset, &mut bytes);
    bytes
}

/// A server with one listener on a free port.
pub fn server() -> Handle {
    fault_server::start(0).expect("start server")
}

/// The `multipart/byteranges` body of the one range `start ..= end` of
/// file `seed` (`total`: the size in its Content-Range, or `*`).
pub fn multipart_body(seed: u64, start: u64, end: u64, total: &str) -> Vec<u8> {
    let mut body = format!(
        "--{MULTIPART_BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\
         Content-Range: bytes {start}-{end}/{total}\r\n\r\n"
    )
    .into_bytes();
    body.extend(expected(seed, start, (end - start + 1) as usize));
    body.extend(format!("\r\n--{MULTIPART_BOUNDARY}--\r\n").into_bytes());
    body
}
