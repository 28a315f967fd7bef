//! Chaos mode: seeded decisions that repeat, documented, second to queued
//! faults, and the one content change after `chaos_change_after` GETs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Read;

use common::{
    admin_post, configure, entries, expected, faults, get, multipart_body, request, server,
    wait_for_entries, Client, GOLDEN,
};
use fault_server::{content_etag, content_last_modified, sha256, splitmix64, Handle};

/// The documented chaos decision of GET `n`: (fault name, bytes before a drop
/// or stall) for a body of `len` bytes.
fn chaos_prediction(seed: u64, n: u64, rate: u64, len: u64) -> (Option<&'static str>, u64) {
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
