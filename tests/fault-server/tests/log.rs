//! The request log (entries, their fields and times, clearing) and the
//! statistics.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{
    admin_post, configure, entries, get, log, server, wait_for_entries, Client, Json, TIMEOUT,
};
use fault_server::{content_etag, Handle};

fn stats(server: &Handle, name: &str) -> String {
    let response = get(server, &format!("/_admin/stats/{name}"), &[]);
    assert_eq!(response.status, 200);
    response.text()
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
