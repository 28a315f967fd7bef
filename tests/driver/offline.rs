//! Offline and online: a suspended run closes its connections, stores what
//! arrived and spends no retry; it resumes however many times it is cut off.

use super::*;
use std::future::Future as _;

#[test]
fn offline_suspends_without_spending_retries_and_online_resumes() {
    let server = Server::new(20_000, 56);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    let mut run = std::pin::pin!(dl.run(&|_| {}));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut polls = 0;
    while dl.received() < 5000 {
        assert!(run.as_mut().poll(&mut cx).is_pending());
        polls += 1;
        assert!(polls < 100_000);
    }
    dl.suspend();
    assert!(dl.is_suspended());
    // The connections store what arrived and stop; then nothing happens.
    for _ in 0..1000 {
        assert!(run.as_mut().poll(&mut cx).is_pending());
    }
    let requests = server.log.borrow().len();
    assert_eq!(server.open_bodies.get(), 0, "every connection closed");
    for _ in 0..1000 {
        assert!(run.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(
        server.log.borrow().len(),
        requests,
        "no request while offline"
    );
    assert_eq!(dl.received(), server.sent(), "what arrived was stored");
    dl.resume();
    assert!(!dl.is_suspended());
    assert_eq!(block_on(run), Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert!(
        server.clock.sleeps.borrow().is_empty(),
        "no retry was spent"
    );
}

/// More offline/online cycles than any bound on rounds, each making
/// progress: the run goes on to the end.
#[test]
fn many_offline_cycles_do_not_end_the_run() {
    let server = Server::new(3_000_000, 71);
    server.chunk.set(100);
    let store = Store::new();
    let dl = open(&server, &store, options(1024, 2));
    let mut run = std::pin::pin!(dl.run(&|_| {}));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1200 {
        let before = dl.received();
        let mut polls = 0;
        while dl.received() == before {
            assert!(run.as_mut().poll(&mut cx).is_pending());
            polls += 1;
            assert!(polls < 10_000);
        }
        dl.suspend();
        for _ in 0..5 {
            assert!(run.as_mut().poll(&mut cx).is_pending());
        }
        dl.resume();
    }
    assert!(
        dl.received() < 3_000_000,
        "still downloading after every cycle"
    );
    assert_eq!(block_on(run), Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
}
