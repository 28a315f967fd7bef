//! How a page reaches a file: CORS headers and preflights, cookies, signed
//! URLs (tokens), redirects, and a second listener (another origin) sharing
//! the state.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{admin_post, configure, entries, expected, faults, get, request, server, Client};
use fault_server::Handle;

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

fn two_listeners() -> Handle {
    let server = fault_server::start_with(&[0, 0]).expect("start server");
    assert_eq!(server.addrs().len(), 2);
    assert_ne!(server.ports()[0], server.ports()[1]);
    server
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
