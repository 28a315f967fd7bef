//! A file that changes on the server, told by its validators (ETag,
//! Last-Modified, length, If-Range): restarted with an event, or failed with
//! the stored bytes kept under `OnServerChange::Fail`.

use super::*;
use resumable_fetch::core::OnServerChange;

#[test]
fn a_file_changed_between_sessions_is_discarded_and_restarted() {
    let server = Server::new(8000, 7);
    // New content, new ETag, same length.
    let (_, events, _) = resume_after(&server, |s| s.seed.set(8));
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::ETag { .. })]
    ));
}

#[test]
fn a_changed_length_is_a_change_even_without_an_etag() {
    let server = Server::new(8000, 9);
    server.etag.set(false);
    let (_, events, _) = resume_after(&server, |s| s.size.set(7000));
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::Length {
            was: 8000,
            now: 7000
        })]
    ));
}

#[test]
fn a_changed_last_modified_is_a_change() {
    let server = Server::new(8000, 51);
    server.etag.set(false);
    let (_, events, _) = resume_after(&server, |s| s.seed.set(52));
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::LastModified { .. })]
    ));
}

#[test]
fn on_server_change_fail_keeps_the_stored_bytes() {
    let server = Server::new(8000, 10);
    let store = Store::new();
    let opts = || resumable_fetch::core::Options {
        on_server_change: OnServerChange::Fail,
        ..options(BLOCK, 2)
    };
    let first = open(&server, &store, opts());
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    let stored = first.received();
    drop(first);

    server.seed.set(11);
    let second = open(&server, &store, opts());
    let err = run(&second).0.unwrap_err();
    assert_eq!(err.code(), "SERVER_CHANGED");
    assert!(err.to_string().contains("onServerChange: 'restart'"));
    assert_eq!(second.received(), stored);
    assert_eq!(stored_record(&store, &second).received(), stored);
}

#[test]
fn a_changed_file_under_fail_stays_failed_on_every_start() {
    let server = Server::new(8000, 62);
    server.etag.set(false);
    server.last_modified.set(false);
    let store = Store::new();
    let opts = || resumable_fetch::core::Options {
        on_server_change: OnServerChange::Fail,
        ..options(BLOCK, 2)
    };
    let first = open(&server, &store, opts());
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    drop(first);
    server.seed.set(63);
    server.etag.set(true);
    let second = open(&server, &store, opts());
    for _ in 0..3 {
        assert_eq!(run(&second).0.unwrap_err().code(), "SERVER_CHANGED");
    }
}

#[test]
fn a_file_changed_mid_download_restarts_once_with_an_event() {
    let server = Server::new(12_000, 12);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    let changed = Cell::new(false);
    let events = std::cell::RefCell::new(Vec::new());
    let outcome = block_on(dl.run(&|e| {
        if matches!(e, Event::Progress(p) if p.received >= 5000) && !changed.replace(true) {
            server.seed.set(13);
        }
        events.borrow_mut().push(e.clone());
    }));
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert_eq!(restarts(&events.borrow()).len(), 1);
}

#[test]
fn a_416_that_shrinks_the_file_is_a_change() {
    let server = Server::new(3000, 22);
    server.etag.set(false);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(pause_at(&dl, 1), Ok(Outcome::Paused));
    assert!((1..1024).contains(&dl.received()));
    // The server now says the file ends where our next block starts.
    server.size.set(1024);
    let (outcome, events) = run(&dl);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::Length {
            was: 3000,
            now: 1024
        })]
    ));
}

#[test]
fn if_range_turns_a_changed_file_into_its_whole_new_body() {
    let server = Server::new(8000, 53);
    let old_etag = fault_server::content_etag(53, 8000);
    let (_, events, before) = resume_after(&server, |s| s.seed.set(54));
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::ETag { .. })]
    ));
    // One request: its If-Range failed, and its 200 was the new file.
    let log = server.log.borrow();
    assert_eq!(log.len() - before, 1);
    let served = &log[before];
    assert_eq!(served.if_range.as_deref(), Some(old_etag.as_str()));
    assert_eq!((served.status, served.sent), (200, 8000));
    // Every range request of the first session named the ETag it knew from
    // its first response on.
    assert!(log[1..before]
        .iter()
        .all(|s| s.if_range.as_deref() == Some(old_etag.as_str())));
}
