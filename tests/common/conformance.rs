//! HTTP conformance against the fault server: every way a server or the
//! network misbehaves, through the JS API, in each runtime (see
//! docs/CONFORMANCE.md for the table these prove).

use super::*;
use resumable_fetch::api::Download;

/// Starts, and resolves once the download completed with the server's bytes.
async fn completes(dl: &JsValue, name: &str) {
    let state = JsFuture::from(start(dl)).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let blob: web_sys::Blob = call(dl, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(name).await);
}

/// Stores part of a slow file and pauses: a download to resume.
async fn partly_stored(name: &str, store: &str, extra: &[(&str, JsValue)]) -> f64 {
    let dl = open(&file_url(name), opts(store, MIB, 2, extra))
        .await
        .unwrap();
    let run = start(&dl);
    wait_for_received(&dl, 2.0 * MIB, 30).await;
    call(&dl, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    field(&dl, "received")
}

async fn slow_file(name: &str, size: f64, params: &str) {
    configure(
        name,
        &format!("size={size}&seed=21&throttle={}&{params}", 4.0 * MIB),
    )
    .await;
}

async fn remove(url: &str) {
    JsFuture::from(Download::remove(url.to_string(), None))
        .await
        .unwrap();
}

pub async fn ranges_ignored_on_resume(store: &str) {
    let name = unique("ignored-later");
    slow_file(&name, 6.0 * MIB, "").await;
    partly_stored(&name, store, &[]).await;
    configure(&name, "ignore_range=1&throttle=0&clear_log=1").await;
    let dl = open(&file_url(&name), opts(store, MIB, 2, &[]))
        .await
        .unwrap();
    let restarts = watch_restarts(&dl);
    completes(&dl, &name).await;
    assert_eq!(restarts.reasons(), ["ranges-ignored"]);
    assert_eq!(
        Reflect::get(&dl, &"resumable".into()).unwrap().as_bool(),
        Some(false)
    );
    let served = log(&name).await;
    assert_eq!(served.len(), 1, "that 200 was used: {served:?}");
    assert_eq!((served[0].status, served[0].sent), (200, 6.0 * MIB));
    remove(&file_url(&name)).await;
}

pub async fn shifted_and_short_206s_are_completed(store: &str) {
    let name = unique("shifted");
    configure(
        &name,
        &format!(
            "size={}&seed=22&shift_next=1&shift_by=1000&short_next=1&short_by=5000",
            4.0 * MIB
        ),
    )
    .await;
    let dl = open(&file_url(&name), opts(store, MIB, 1, &[]))
        .await
        .unwrap();
    completes(&dl, &name).await;
    let served = log(&name).await;
    let faults: Vec<_> = served.iter().filter_map(|s| s.fault.clone()).collect();
    assert_eq!(faults, ["shift", "short"]);
    // After the shifted probe, the gap it left (its first 1000 bytes) was asked for.
    assert!(served
        .iter()
        .any(|s| s.range.as_deref() == Some("bytes=0-999")));
    remove(&file_url(&name)).await;
}

pub async fn an_unknown_total_completes_at_the_416(store: &str) {
    let name = unique("unknown-total");
    configure(
        &name,
        &format!("size={}&seed=23&unknown_total=1", 2.5 * MIB),
    )
    .await;
    let dl = open(&file_url(&name), opts(store, MIB, 3, &[]))
        .await
        .unwrap();
    completes(&dl, &name).await;
    assert_eq!(field(&dl, "total"), 2.5 * MIB);
    let served = log(&name).await;
    assert_eq!(served.last().map(|s| s.status), Some(416));
    assert_eq!(
        max_concurrent(&name).await,
        1.0,
        "one at a time until the end is known"
    );
    remove(&file_url(&name)).await;
}

/// A 206 must carry Content-Range. Where CORS applies, one that reads null
/// cannot be told from one the server hides, so `cross_origin` expects the
/// CORS error naming the header to expose; elsewhere it is a bad response.
pub async fn rangeless_and_multipart_206s_are_refused(store: &str, cross_origin: bool) {
    let missing = if cross_origin {
        (
            "CORS_HEADERS_HIDDEN",
            "Access-Control-Expose-Headers: Content-Range",
        )
    } else {
        ("BAD_RESPONSE", "without a Content-Range")
    };
    for (fault, (code, words)) in [
        ("no_content_range_next", missing),
        ("multipart_next", ("BAD_RESPONSE", "multipart/byteranges")),
    ] {
        let name = unique("no-range");
        configure(&name, &format!("size={}&{fault}=1", MIB)).await;
        let dl = open(&file_url(&name), opts(store, MIB, 1, &[]))
            .await
            .unwrap();
        let error = JsFuture::from(start(&dl)).await.unwrap_err();
        assert_eq!(error_code(&error), code);
        assert!(text(&error, "message").contains(words), "{error:?}");
        assert_eq!(log(&name).await.len(), 1, "not retried");
    }
}

/// A URL that fetch refuses to send (user and password in it) is the
/// caller's mistake: `INVALID_ARGUMENT` at once, with no request and no retry.
pub async fn a_url_fetch_refuses_is_an_invalid_argument(store: &str) {
    let name = unique("userinfo");
    configure(&name, &format!("size={}", MIB)).await;
    let url = file_url(&name).replacen("://", "://user:secret@", 1);
    let dl = open(&url, opts(store, MIB, 1, &[])).await.unwrap();
    let error = JsFuture::from(start(&dl)).await.unwrap_err();
    assert_eq!(error_code(&error), "INVALID_ARGUMENT", "{error:?}");
    assert!(log(&name).await.is_empty(), "nothing was sent");
}

/// A compressed 206 is never counted as range bytes. Node delivers it (decoded),
/// and the client refuses it by its Content-Encoding; Chromium refuses every
/// compressed 206 itself (fetch fails): after the retries, one request
/// without Range gets through, so the error names the server's setting
/// instead of the network. Nothing is stored either way.
pub async fn a_compressed_206_is_refused(store: &str, runtime_refuses: bool) {
    let name = unique("gzip");
    configure(&name, &format!("size={}&encoding=gzip", MIB)).await;
    let retries = [("retries", JsValue::from(1))];
    let dl = open(&file_url(&name), opts(store, MIB, 1, &retries))
        .await
        .unwrap();
    let error = JsFuture::from(start(&dl)).await.unwrap_err();
    if runtime_refuses {
        assert_eq!(error_code(&error), "BAD_RESPONSE");
        assert!(text(&error, "message").contains("gzip_static"));
        let served = log(&name).await;
        assert_eq!(served.len(), 3, "an attempt, a retry, a plain GET");
        assert_eq!(served[2].range, None, "{served:?}");
    } else {
        assert_eq!(error_code(&error), "BAD_RESPONSE");
        assert!(text(&error, "message").contains("Content-Encoding: gzip"));
        assert_eq!(log(&name).await.len(), 1, "not retried");
    }
    assert_eq!(field(&dl, "received"), 0.0);
}

pub async fn an_empty_file_completes(store: &str) {
    let name = unique("empty");
    configure(&name, "size=0").await;
    let dl = open(&file_url(&name), opts(store, MIB, 3, &[]))
        .await
        .unwrap();
    completes(&dl, &name).await;
    assert_eq!(field(&dl, "total"), 0.0);
    assert_eq!(log(&name).await[0].status, 416);
    remove(&file_url(&name)).await;
}

/// A 206 whose Content-Length is not its Content-Range's length is another
/// body than the range (a compression undone behind a hidden
/// Content-Encoding counts its encoded bytes): refused, nothing stored.
pub async fn a_content_length_other_than_its_content_range_is_refused(store: &str) {
    let name = unique("cl-short");
    configure(
        &name,
        &format!(
            "size={}&seed=24&cl_short_next=1&cl_short_by=1000",
            3.0 * MIB
        ),
    )
    .await;
    let dl = open(&file_url(&name), opts(store, MIB, 1, &[]))
        .await
        .unwrap();
    let error = JsFuture::from(start(&dl)).await.unwrap_err();
    assert_eq!(error_code(&error), "BAD_RESPONSE");
    assert!(text(&error, "message").contains("Content-Length"));
    assert_eq!(field(&dl, "received"), 0.0, "nothing of it is stored");
    assert_eq!(log(&name).await[0].fault.as_deref(), Some("cl_short"));
    remove(&file_url(&name)).await;
}

pub async fn unverifiable_resumes_are_checked_against_stored_bytes(store: &str) {
    // Unchanged: the stored bytes are kept.
    let name = unique("no-validator");
    slow_file(&name, 6.0 * MIB, "no_etag=1&no_last_modified=1").await;
    let stored = partly_stored(&name, store, &[]).await;
    configure(&name, "throttle=0&clear_log=1").await;
    let dl = open(&file_url(&name), opts(store, MIB, 2, &[]))
        .await
        .unwrap();
    let restarts = watch_restarts(&dl);
    completes(&dl, &name).await;
    assert!(restarts.reasons().is_empty());
    // Stored bytes were fetched again only as samples (the first 4 KiB, 4 KiB
    // at a random place, the last 64 KiB): on resume, and once all were in.
    // Blocks are 1 MiB here: anything of 64 KiB or less is a sample.
    let served = log(&name).await;
    let sample = |s: &&Served| match (s.start, s.end) {
        (Some(start), Some(end)) => end - start < 65536.0,
        _ => false,
    };
    let samples = served.iter().filter(sample).count();
    assert!((4..=6).contains(&samples), "{served:?}");
    let first_sample = served.iter().position(|s| sample(&s));
    assert_eq!(first_sample, Some(1), "the proof comes first: {served:?}");
    let fetched_again: f64 = served.iter().filter(|s| !sample(s)).map(|s| s.sent).sum();
    assert!(
        fetched_again <= 6.0 * MIB - stored,
        "no stored block again: {served:?}"
    );
    remove(&file_url(&name)).await;

    // Changed behind the same (absent) validators: caught by the bytes.
    let name = unique("no-validator-changed");
    slow_file(&name, 6.0 * MIB, "no_etag=1&no_last_modified=1").await;
    partly_stored(&name, store, &[]).await;
    configure(&name, "seed=99&throttle=0").await;
    let dl = open(&file_url(&name), opts(store, MIB, 2, &[]))
        .await
        .unwrap();
    let restarts = watch_restarts(&dl);
    completes(&dl, &name).await;
    assert_eq!(restarts.reasons(), ["server-changed"]);
    remove(&file_url(&name)).await;
}

pub async fn a_file_changed_mid_download_restarts_once(store: &str) {
    let name = unique("changed-mid");
    slow_file(&name, 8.0 * MIB, "").await;
    let dl = open(&file_url(&name), opts(store, MIB, 3, &[]))
        .await
        .unwrap();
    let restarts = watch_restarts(&dl);
    let run = start(&dl);
    wait_for_received(&dl, 2.0 * MIB, 30).await;
    configure(&name, "seed=31&throttle=0").await;
    let state = JsFuture::from(run).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    assert_eq!(restarts.reasons(), ["server-changed"]);
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    remove(&file_url(&name)).await;
}

/// `If-Range` goes out where it needs no CORS preflight: same-origin pages
/// and runtimes without a page origin. Cross-origin, the client checks.
pub async fn if_range_only_without_a_preflight(store: &str, expect_sent: bool) {
    let name = unique("if-range");
    slow_file(&name, 6.0 * MIB, "").await;
    partly_stored(&name, store, &[]).await;
    let etag = text(&configure(&name, "throttle=0&clear_log=1").await, "etag");
    let dl = open(&file_url(&name), opts(store, MIB, 2, &[]))
        .await
        .unwrap();
    completes(&dl, &name).await;
    let served = log(&name).await;
    let want = expect_sent.then_some(etag);
    assert!(served.iter().all(|s| s.if_range == want), "{served:?}");
    remove(&file_url(&name)).await;
}

pub async fn redirects_keep_working(store: &str) {
    let name = unique("redirected");
    configure(&name, &format!("size={}&seed=25", 3.0 * MIB)).await;
    let target = format!("{}/files/{name}", other_origin());
    let to: String = js_sys::encode_uri_component(&target).into();
    for url in [
        format!("{}/redirect/{name}", server()),
        format!("{}/redirect/{name}?to={to}", server()),
    ] {
        let dl = open(&url, opts(store, MIB, 2, &[])).await.unwrap();
        completes(&dl, &name).await;
        assert_eq!(text(&dl, "url"), url, "the download keeps its URL");
        remove(&url).await;
    }
}

pub async fn an_expired_signed_url_fails_and_set_url_continues(store: &str) {
    let name = unique("signed");
    slow_file(&name, 6.0 * MIB, "require_token=a").await;
    let signed = |token: &str| format!("{}?token={token}", file_url(&name));
    let id = [("id", JsValue::from(name.as_str()))];
    let dl = open(&signed("a"), opts(store, MIB, 2, &id)).await.unwrap();
    let run = start(&dl);
    wait_for_received(&dl, 2.0 * MIB, 30).await;
    call(&dl, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    let stored = field(&dl, "received");

    configure(&name, "require_token=b&throttle=0&clear_log=1").await;
    let again = open(&signed("a"), opts(store, MIB, 2, &id)).await.unwrap();
    let error = JsFuture::from(start(&again)).await.unwrap_err();
    assert_eq!(error_code(&error), "HTTP_STATUS");
    assert!(text(&error, "message").contains("fresh URL"));
    assert_eq!(field(&again, "received"), stored);

    call(&again, "setUrl", &[signed("b").into()]).await.unwrap();
    let restarts = watch_restarts(&again);
    configure(&name, "clear_log=1").await;
    completes(&again, &name).await;
    assert!(restarts.reasons().is_empty(), "the same file: kept");
    let fetched: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(fetched, 6.0 * MIB - stored);
    JsFuture::from(Download::remove(name, None)).await.unwrap();
}

pub async fn errors_and_stalls_are_retried_then_reported(store: &str) {
    let name = unique("flaky");
    configure(
        &name,
        &format!(
            "size={}&seed=26&fail_next=2&drop_next=1&drop_after=100000&stall_next=1&stall_after=50000",
            4.0 * MIB
        ),
    )
    .await;
    let fast_stall = [("stallTimeoutMs", JsValue::from(1000))];
    let dl = open(&file_url(&name), opts(store, MIB, 1, &fast_stall))
        .await
        .unwrap();
    completes(&dl, &name).await;
    let faults: Vec<_> = log(&name)
        .await
        .iter()
        .filter_map(|s| s.fault.clone())
        .collect();
    assert_eq!(faults, ["fail", "fail", "drop", "stall"]);

    let name = unique("down");
    configure(&name, &format!("size={}&fail_next=100", MIB)).await;
    let retries = [("retries", JsValue::from(2))];
    let dl = open(&file_url(&name), opts(store, MIB, 1, &retries))
        .await
        .unwrap();
    let error = JsFuture::from(start(&dl)).await.unwrap_err();
    assert_eq!(error_code(&error), "HTTP_STATUS");
    assert!(text(&error, "message").contains("503"));
    assert_eq!(log(&name).await.len(), 3, "one attempt and two retries");
}

/// More stalled bodies than a browser keeps connections per host (six):
/// each abandoned body must release its connection, or the later downloads
/// queue behind sockets the server holds open, and stall themselves.
pub async fn abandoned_bodies_release_their_connections(store: &str) {
    for _ in 0..8 {
        let name = unique("abandoned");
        configure(
            &name,
            &format!("size={MIB}&seed=28&stall_next=1&stall_after=65536"),
        )
        .await;
        let retries = [
            ("stallTimeoutMs", JsValue::from(1000)),
            ("retries", JsValue::from(3)),
        ];
        let dl = open(&file_url(&name), opts(store, MIB, 1, &retries))
            .await
            .unwrap();
        completes(&dl, &name).await;
        let served = log(&name).await;
        let faults: Vec<_> = served.iter().map(|s| s.fault.clone()).collect();
        // Cross-origin (the browsers), the stalled body's bytes are kept once
        // a 4 KiB range proves the server sends ranges as they are.
        let proof = served.len() == 3 && served[1].range.as_deref() == Some("bytes=0-4095");
        match proof {
            true => assert_eq!(faults, [Some("stall".to_string()), None, None]),
            false => assert_eq!(faults, [Some("stall".to_string()), None]),
        }
        remove(&file_url(&name)).await;
    }
}

/// Measured on the fault server's second origin: a browser's pool of
/// connections per host is shared by every test of the page, and the one of
/// the main origin may still hold sockets of earlier tests' stalled bodies.
pub async fn connections_bound_the_requests_in_flight(store: &str) {
    for connections in [1, 3] {
        let name = unique("parallel");
        slow_file(&name, 8.0 * MIB, "").await;
        let url = format!("{}/files/{name}", other_origin());
        let dl = open(&url, opts(store, MIB, connections, &[]))
            .await
            .unwrap();
        completes(&dl, &name).await;
        assert_eq!(max_concurrent(&name).await, f64::from(connections));
        let fetched: f64 = log(&name).await.iter().map(|s| s.sent).sum();
        assert_eq!(fetched, 8.0 * MIB, "each block fetched once");
        remove(&url).await;
    }
}

pub async fn custom_headers_are_sent(store: &str) {
    let name = unique("headers");
    configure(&name, &format!("size={}&seed=27", 2.0 * MIB)).await;
    // Outside a browser, the headers pages may not set are sent too.
    let server_side = !in_browser();
    let mut sent = vec![("X-Trace", JsValue::from("t-1"))];
    if server_side {
        sent.push(("Cookie", "session=c-1".into()));
        sent.push(("Referer", "http://127.0.0.1/from".into()));
        sent.push(("User-Agent", "rf-test/1".into()));
    }
    let headers = [("headers", options(&sent))];
    let dl = open(&file_url(&name), opts(store, MIB, 2, &headers))
        .await
        .unwrap();
    completes(&dl, &name).await;
    for served in log(&name).await {
        assert_eq!(text(&served.headers, "x-trace"), "t-1");
        if server_side {
            assert_eq!(text(&served.headers, "cookie"), "session=c-1");
            assert_eq!(text(&served.headers, "referer"), "http://127.0.0.1/from");
            assert_eq!(text(&served.headers, "user-agent"), "rf-test/1");
        }
    }
    remove(&file_url(&name)).await;
}

/// Without an ETag, a changed Last-Modified or a changed length still means
/// a changed file: the stored bytes are discarded.
pub async fn a_changed_last_modified_or_length_restarts(store: &str) {
    for change in ["seed=32", &format!("size={}", 5.0 * MIB)] {
        let name = unique("changed-validator");
        slow_file(&name, 6.0 * MIB, "no_etag=1").await;
        partly_stored(&name, store, &[]).await;
        configure(&name, &format!("{change}&throttle=0")).await;
        let dl = open(&file_url(&name), opts(store, MIB, 2, &[]))
            .await
            .unwrap();
        let restarts = watch_restarts(&dl);
        completes(&dl, &name).await;
        assert_eq!(restarts.reasons(), ["server-changed"], "after {change}");
        remove(&file_url(&name)).await;
    }
}

/// `integrity` and the server's `Repr-Digest` are checked over the stored
/// file; a mismatch keeps nothing and says which digest failed.
pub async fn integrity_and_repr_digest_are_checked(store: &str) {
    let size = 2.0 * MIB;
    let digest_of = |seed: u64| {
        let mut content = vec![0u8; size as usize];
        fault_server::fill(seed, 0, &mut content);
        fault_server::sha256::base64(&fault_server::sha256::digest(&content))
    };
    let name = unique("integrity");
    configure(&name, &format!("size={size}&seed=39&repr_digest=good")).await;
    let good = format!("sha256-{}", digest_of(39));
    let with = |integrity: &str| opts(store, MIB, 2, &[("integrity", integrity.into())]);
    let dl = open(&file_url(&name), with(&good)).await.unwrap();
    completes(&dl, &name).await;
    remove(&file_url(&name)).await;

    let wrong = format!("sha256-{}", digest_of(40));
    let dl = open(&file_url(&name), with(&wrong)).await.unwrap();
    let error = JsFuture::from(start(&dl)).await.unwrap_err();
    assert_eq!(error_code(&error), "INTEGRITY_MISMATCH");
    let message = text(&error, "message");
    assert!(
        message.contains("integrity option") && message.contains(&good),
        "{message}"
    );
    assert_eq!(field(&dl, "received"), 0.0, "nothing of it is kept");
    assert_eq!(
        field(&listed(&file_url(&name)).await.unwrap(), "received"),
        0.0
    );
    remove(&file_url(&name)).await;

    let liar = unique("repr-digest");
    configure(&liar, &format!("size={size}&seed=41&repr_digest=bad")).await;
    let dl = open(&file_url(&liar), opts(store, MIB, 2, &[]))
        .await
        .unwrap();
    let error = JsFuture::from(start(&dl)).await.unwrap_err();
    assert_eq!(error_code(&error), "INTEGRITY_MISMATCH");
    assert!(text(&error, "message").contains("Repr-Digest"));
    remove(&file_url(&liar)).await;
}
