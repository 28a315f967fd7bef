//! The content: its bytes, its validators (changed with the seed or the
//! size), its SHA-256, and the headers that describe it (encoding,
//! disposition).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{configure, expected, get, server, GOLDEN};
use fault_server::{content_etag, sha256, splitmix64};

#[test]
fn fill_matches_the_definition() {
    // Reference outputs of SplitMix64 seeded with 0.
    assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    assert_eq!(splitmix64(GOLDEN), 0x6e78_9e6a_a1b9_65f4);
    let definition = |seed: u64, i: u64| {
        splitmix64(seed ^ (i / 8).wrapping_mul(GOLDEN)).to_le_bytes()[(i % 8) as usize]
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
