//! Faults that refuse a body, cut it short or hold it back (`fail`, `drop`,
//! `stall`), the cuts that end responses in progress, and `throttle`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use common::{admin_post, configure, expected, get, log, server, Client, TIMEOUT};

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
