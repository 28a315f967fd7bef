//! How requests are read and answered on a connection: keep-alive, HEAD,
//! `Connection: close`, and malformed requests or admin parameters refused.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{admin_post, configure, expected, get, server, Client};

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
