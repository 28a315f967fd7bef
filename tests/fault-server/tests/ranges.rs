//! Range and If-Range: 206, 200 and 416 answers, offsets past 4 GiB, and the
//! persistent settings that change them (`ignore_range`, `unknown_total`).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{configure, expected, get, multipart_body, server};
use fault_server::{content_etag, content_last_modified};

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
