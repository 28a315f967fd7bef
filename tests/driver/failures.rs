//! Transient failures: bodies cut off, refused connections, stalls, 5xx with
//! backoff, statuses that fail at once, an expired signed URL; what arrived is
//! kept and only the rest is asked for.

use super::*;

#[test]
fn a_truncated_body_keeps_what_arrived_and_requests_the_rest() {
    let server = Server::new(4096, 14);
    server.fault(Fault::Truncate(300));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[0].sent, 300);
    assert_eq!(
        log[1].asked,
        Some(r(300, 1024)),
        "exactly the rest, not one byte off"
    );
    assert_eq!(server.sent(), 4096, "no byte fetched twice");
}

#[test]
fn a_reset_connection_keeps_what_arrived() {
    let server = Server::new(4096, 15);
    server.fault(Fault::Truncate(1024)); // the probe is whole
    server.fault(Fault::Reset(700));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert_eq!(server.log.borrow()[2].asked, Some(r(1724, 2048)));
    assert_eq!(server.sent(), 4096);
}

#[test]
fn retries_503_with_exponential_backoff_and_jitter() {
    let server = Server::new(3000, 16);
    for _ in 0..3 {
        server.fault(Fault::Status(503));
    }
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let sleeps = server.clock.sleeps.borrow();
    assert_eq!(sleeps.len(), 3, "{sleeps:?}");
    for (i, &ms) in sleeps.iter().enumerate() {
        let ceiling = 500 << i;
        assert!((ceiling / 2..=ceiling).contains(&ms), "retry {i}: {ms} ms");
    }
}

#[test]
fn gives_up_after_the_retries_and_keeps_what_is_stored() {
    let server = Server::new(3000, 17);
    server.fault(Fault::Truncate(1024));
    for _ in 0..10 {
        server.fault(Fault::Status(503));
    }
    let store = Store::new();
    let opts = resumable_fetch::core::Options {
        retries: 2,
        ..options(BLOCK, 1)
    };
    let dl = open(&server, &store, opts);
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "HTTP_STATUS");
    assert_eq!(server.clock.sleeps.borrow().len(), 2);
    assert_eq!(dl.received(), 1024);
    // Later the server is back: start again continues from byte 1024.
    server.faults.borrow_mut().clear();
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert_eq!(server.sent(), 3000);
}

#[test]
fn a_404_fails_at_once() {
    let server = Server::new(3000, 18);
    server.fault(Fault::Status(404));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "HTTP_STATUS");
    assert!(err.to_string().contains("404"));
    assert!(server.clock.sleeps.borrow().is_empty());
}

#[test]
fn refused_connections_and_stalled_bodies_are_retried() {
    let server = Server::new(3000, 19);
    server.fault(Fault::Refuse);
    server.fault(Fault::Stall(100));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let sleeps = server.clock.sleeps.borrow();
    // A backoff after the refusal; the stall timer, and no backoff after it,
    // since the stalled body delivered bytes first.
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert!((250..=500).contains(&sleeps[0]), "{sleeps:?}");
    assert_eq!(sleeps[1], 30_000);
    assert_eq!(
        server.open_bodies.get(),
        0,
        "the stalled request was dropped"
    );
    assert_eq!(server.sent(), 3000);
}

#[test]
fn a_response_head_that_never_comes_is_a_stall() {
    use resumable_fetch::core::transport::{Request, Response, Transport, TransportError};
    /// The second request is accepted and never answered.
    struct Silent(ScriptedTransport, Cell<u32>);
    impl Transport for Silent {
        type Body = ScriptedBody;
        async fn send(&self, r: &Request) -> Result<Response<ScriptedBody>, TransportError> {
            self.1.set(self.1.get() + 1);
            if self.1.get() == 2 {
                std::future::pending::<()>().await;
            }
            self.0.send(r).await
        }
    }
    let server = Server::new(4000, 70);
    let dl = block_on(resumable_fetch::core::Driver::open(
        Silent(ScriptedTransport(server.clone()), Cell::new(0)),
        Store::new(),
        server.clock.clone(),
        options(BLOCK, 1),
    ))
    .unwrap();
    assert_eq!(block_on(dl.run(&|_| {})), Ok(Outcome::Complete));
    assert_eq!(block_on(dl.assemble()).unwrap().concat(), server.content());
    assert!(
        server.clock.sleeps.borrow().contains(&30_000),
        "the stall timer fired"
    );
}

#[test]
fn a_failed_block_is_requeued_while_the_other_connections_go_on() {
    let server = Server::new(10_000, 57);
    after_probe(&server, &[Fault::Pass, Fault::Status(503)]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert_eq!(server.sent(), 10_000, "each block stored once");
    assert_eq!(server.clock.sleeps.borrow().len(), 1);
    let log = server.log.borrow();
    let failed = log.iter().find(|s| s.status == 503).unwrap().asked;
    assert_eq!(
        log.iter().filter(|s| s.asked == failed).count(),
        2,
        "the failed block was asked for again"
    );
}

#[test]
fn an_expired_signed_url_fails_and_a_fresh_one_continues() {
    let server = Server::new(8000, 55);
    let signed = |token: &str| resumable_fetch::core::Options {
        url: format!("https://files.example/data.bin?token={token}"),
        id: "data.bin".into(),
        ..options(BLOCK, 2)
    };
    let store = Store::new();
    let first = open(&server, &store, signed("a"));
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    let stored = first.received();
    drop(first);

    *server.required_url.borrow_mut() = Some(signed("b").url);
    let dl = open(&server, &store, signed("a"));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "HTTP_STATUS");
    assert!(err.to_string().contains("fresh URL"), "{err}");
    assert_eq!(dl.received(), stored);

    let sent = server.sent();
    dl.set_url(&signed("b").url).unwrap();
    let (outcome, events) = run(&dl);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert!(restarts(&events).is_empty(), "the same file: kept");
    assert_eq!(bytes(&dl), server.content());
    assert_eq!(server.sent() - sent, 8000 - stored);
    assert_eq!(dl.record().url, signed("b").url);
}
