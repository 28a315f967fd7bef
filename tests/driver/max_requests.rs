//! Runs bounded by `max_requests` (a Worker's subrequest limit): each run
//! pauses at its limit, retries count, and every run makes progress.

use super::*;

#[test]
fn max_requests_pauses_each_run_after_that_many_requests_and_the_next_resumes() {
    let server = Server::new(20_000, 5);
    let store = Store::new();
    let mut opts = options(BLOCK, 3);
    opts.max_requests = Some(4);
    let mut runs = 0;
    let mut requests_before = 0;
    loop {
        runs += 1;
        assert!(runs <= 10, "20 blocks at 4 requests per run take 5 runs");
        // Each run is a fresh download object, as each invocation of a Worker is.
        let dl = open(&server, &store, opts.clone());
        let (outcome, _) = run(&dl);
        let requests = server.log.borrow().len() - requests_before;
        requests_before += requests;
        assert!(requests <= 4, "run {runs} sent {requests} requests");
        assert_record_claims_only_stored_bytes(&store, &dl, &server);
        match outcome {
            Ok(Outcome::Paused) => assert_eq!(requests, 4, "a run pauses only at its limit"),
            Ok(Outcome::Complete) => {
                assert_eq!(bytes(&dl), server.content());
                break;
            }
            other => panic!("run {runs}: {other:?}"),
        }
    }
    assert_eq!(runs, 5);
    assert_eq!(server.sent(), 20_000, "no byte fetched twice");
}

#[test]
fn max_requests_counts_retries() {
    let server = Server::new(4000, 6);
    server.fault(Fault::Status(503));
    let store = Store::new();
    let mut opts = options(BLOCK, 1);
    opts.max_requests = Some(2);
    let dl = open(&server, &store, opts);
    assert_eq!(run(&dl).0, Ok(Outcome::Paused));
    assert_eq!(
        server.log.borrow().len(),
        2,
        "the failed request and one retry"
    );
    assert_eq!(dl.received(), BLOCK, "the retry's block is stored");
}

#[test]
fn max_requests_below_two_is_refused() {
    let mut opts = options(BLOCK, 1);
    opts.max_requests = Some(1);
    assert!(matches!(
        opts.validate(),
        Err(resumable_fetch::core::Error::InvalidArgument { option, .. }) if option == "maxRequests"
    ));
    opts.max_requests = Some(2);
    assert!(opts.validate().is_ok());
}

#[test]
fn max_requests_of_two_progresses_when_stored_bytes_need_a_proof() {
    // A weak ETag: a resumed run checks the stored bytes with a request first.
    let server = Server::new(8000, 8);
    server.weak_etag.set(true);
    let store = Store::new();
    let mut opts = options(BLOCK, 2);
    opts.max_requests = Some(2);
    let mut received = 0;
    for invocation in 1..=20 {
        let dl = open(&server, &store, opts.clone());
        let (outcome, _) = run(&dl);
        if outcome == Ok(Outcome::Complete) {
            // The last invocation may only prove the whole (no strong ETag).
            assert_eq!(bytes(&dl), server.content());
            return;
        }
        assert!(
            dl.received() > received,
            "invocation {invocation} stored nothing new"
        );
        received = dl.received();
        assert_eq!(outcome, Ok(Outcome::Paused));
    }
    panic!("not complete after 20 invocations");
}
