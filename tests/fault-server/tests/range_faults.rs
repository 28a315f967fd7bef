//! Faults that answer another range than asked (`shift`, `short`, `cl_short`,
//! `multipart`, `no_content_range`), and the order a GET takes queued faults in.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Read;

use common::{
    admin_post, configure, entries, expected, faults, get, log, multipart_body, request, server,
    wait_for_entries, Client,
};
use fault_server::MULTIPART_BOUNDARY;

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
