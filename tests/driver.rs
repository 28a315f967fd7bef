//! The driver against a scripted transport: every scenario of a download that
//! can go wrong, run natively on a virtual clock.
#![cfg(not(target_arch = "wasm32"))]

mod scripted;

use futures::executor::block_on;
use resumable_fetch::core::range::ByteRange;
use resumable_fetch::core::record::{Record, RecordError};
use resumable_fetch::core::store::Store as _;
use resumable_fetch::core::validator::Change;
use resumable_fetch::core::{Event, OnServerChange, Outcome, RestartReason, StoreError};
use scripted::*;
use std::cell::Cell;
use std::future::Future as _;
use std::rc::Rc;

const BLOCK: u64 = 1024;

fn r(start: u64, end: u64) -> ByteRange {
    ByteRange { start, end }
}

fn restarts(events: &[Event]) -> Vec<RestartReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Restarted(reason) => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The record as stored, decoded.
fn stored_record(store: &Store, dl: &Dl) -> Record {
    let bytes = block_on(store.load(&dl.options().id))
        .unwrap()
        .expect("a record");
    Record::decode(&bytes).expect("a valid record")
}

/// Every piece the stored record claims is in the store, with the server's bytes.
fn assert_record_claims_only_stored_bytes(store: &Store, dl: &Dl, server: &Server) {
    let record = stored_record(store, dl);
    let pieces: Vec<ByteRange> = record.pieces.iter().collect();
    let chunks = block_on(store.assemble(&dl.options().id, &pieces)).expect("claimed pieces exist");
    let content = server.content();
    let expected: Vec<u8> = pieces
        .iter()
        .flat_map(|p| content[p.start as usize..p.end as usize].iter().copied())
        .collect();
    assert_eq!(chunks.concat(), expected);
}

/// Pauses the run once `at` bytes are received.
fn pause_at(dl: &Dl, at: u64) -> Result<Outcome, resumable_fetch::core::Error> {
    block_on(dl.run(&|e| {
        if matches!(e, Event::Progress(p) if p.received >= at) {
            dl.pause();
        }
    }))
}

#[test]
fn the_other_connections_join_the_probe_once_its_head_makes_the_file_known() {
    // A block is 4 chunks of 10 ms: the probe's body ends at 40 ms.
    let server = Server::new(10_000, 7);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    let probe_end = 4 * MS_PER_CHUNK;
    assert_eq!(log[0].asked, Some(r(0, 1024)));
    for joined in &log[1..3] {
        assert!(
            joined.at_ms < probe_end,
            "a connection joined at {} ms, after the probe's body ({probe_end} ms): {log:?}",
            joined.at_ms
        );
    }
    assert_eq!(server.most_open_bodies.get(), 3);
    assert_eq!(server.sent(), 10_000, "each byte once");
}

#[test]
fn full_download_fetches_each_block_once_over_parallel_connections() {
    let server = Server::new(10_000, 1);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    assert_eq!(dl.resumable(), None, "not known before a response");
    let (outcome, events) = run(&dl);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert_eq!(dl.resumable(), Some(true));
    assert_eq!(dl.total(), Some(10_000));
    // Each byte was sent once; the probe asked for block 0 alone.
    assert_eq!(server.sent(), 10_000);
    let log = server.log.borrow();
    assert_eq!(log[0].asked, Some(r(0, 1024)));
    assert_eq!(log.len(), 10);
    assert!(log.iter().all(|s| s.status == 206));
    // Three connections ran at once, never more.
    assert_eq!(server.most_open_bodies.get(), 3);
    assert!(
        server.clock.sleeps.borrow().is_empty(),
        "no retry was needed"
    );
    match events.last() {
        Some(Event::Progress(p)) => {
            assert_eq!((p.received, p.total), (10_000, Some(10_000)));
        }
        other => panic!("last event: {other:?}"),
    }
    let mut last = 0;
    for e in &events {
        if let Event::Progress(p) = e {
            assert!(p.received >= last && p.received <= 10_000);
            last = p.received;
        }
    }
    assert!(stored_record(&store, &dl).complete);
}

#[test]
fn one_connection_fetches_in_order() {
    let server = Server::new(5000, 2);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let asked: Vec<_> = server.log.borrow().iter().map(|s| s.asked).collect();
    let want: Vec<_> = (0..5)
        .map(|i| Some(r(i * BLOCK, ((i + 1) * BLOCK).min(5000))))
        .collect();
    assert_eq!(asked, want);
    assert_eq!(server.most_open_bodies.get(), 1);
}

#[test]
fn resumes_after_pause_fetching_only_missing_bytes() {
    let server = Server::new(20_000, 3);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 3));
    assert_eq!(pause_at(&first, 8000), Ok(Outcome::Paused));
    let stored = first.received();
    assert!((8000..20_000).contains(&stored), "stored {stored}");
    assert_eq!(server.sent(), stored, "pause stores what arrived");
    assert_record_claims_only_stored_bytes(&store, &first, &server);
    drop(first);

    server.clear_log();
    let second = open(&server, &store, options(BLOCK, 3));
    assert_eq!(second.received(), stored, "known before any request");
    assert_eq!(run(&second).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&second), server.content());
    assert_eq!(server.sent(), 20_000 - stored);
}

#[test]
fn resumes_after_a_crash_refetching_at_most_one_block_per_connection() {
    let server = Server::new(30_000, 4);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 3));
    run_until_crash(&first, |dl| dl.received() >= 12_000);
    drop(first);
    assert_eq!(
        server.open_bodies.get(),
        0,
        "the crash dropped every request"
    );

    let reopened = open(&server, &store, options(BLOCK, 3));
    let stored = reopened.received();
    assert!((12_000..30_000).contains(&stored));
    let claimed: Vec<ByteRange> = reopened.record().pieces.iter().collect();
    let sent_before = server.sent();
    let requests_before = server.log.borrow().len();
    assert_eq!(run(&reopened).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&reopened), server.content());

    // Nothing stored was asked for again.
    for served in &server.log.borrow()[requests_before..] {
        let asked = served.asked.expect("a range request");
        assert!(
            claimed.iter().all(|p| p.intersect(&asked).is_none()),
            "{asked}"
        );
    }
    // The bytes lost in the crash were at most one block per connection.
    let lost = sent_before - stored;
    assert!(lost <= 3 * BLOCK, "lost {lost}");
    assert_eq!(server.sent() - sent_before, 30_000 - stored);
}

#[test]
fn a_200_to_a_range_request_restarts_from_zero_with_that_body() {
    let server = Server::new(9000, 5);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 2));
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    assert!(first.received() > 0);
    drop(first);

    server.ranges.set(Ranges::Ignored);
    server.clear_log();
    let second = open(&server, &store, options(BLOCK, 2));
    let (outcome, events) = run(&second);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&second), server.content());
    assert_eq!(second.resumable(), Some(false));
    assert_eq!(restarts(&events), vec![RestartReason::RangesIgnored]);
    // A resumed run asks with one connection until the file is proven: its
    // 200 was streamed from byte 0. Nothing was spliced or read twice.
    let log = server.log.borrow();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].status, log[0].sent), (200, 9000));
}

#[test]
fn a_server_without_ranges_streams_the_whole_file_in_pieces() {
    let server = Server::new(5000, 6);
    server.ranges.set(Ranges::Ignored);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    let (outcome, events) = run(&dl);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert!(
        restarts(&events).is_empty(),
        "nothing was stored to discard"
    );
    assert_eq!(server.log.borrow().len(), 1);
    assert_eq!(dl.record().pieces.len(), 5, "stored block by block");
}

#[test]
fn a_whole_file_of_unknown_length_ends_where_its_body_ends() {
    let server = Server::new(5000, 31);
    server.ranges.set(Ranges::Ignored);
    server.content_length.set(false);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 2));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(dl.total(), Some(5000));
    assert_eq!(bytes(&dl), server.content());
}

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
fn an_unknown_length_ends_with_a_416() {
    for size in [2500, 3072] {
        let server = Server::new(size, 20);
        server.ranges.set(Ranges::UnknownTotal);
        let store = Store::new();
        let dl = open(&server, &store, options(BLOCK, 3));
        assert_eq!(run(&dl).0, Ok(Outcome::Complete), "size {size}");
        assert_eq!(bytes(&dl), server.content());
        assert_eq!(dl.total(), Some(size));
        let log = server.log.borrow();
        assert_eq!(log.last().map(|s| s.status), Some(416));
        assert_eq!(
            server.most_open_bodies.get(),
            1,
            "sequential while the end is unknown"
        );
    }
}

#[test]
fn a_416_at_the_start_of_an_empty_file_completes_it() {
    let server = Server::new(0, 21);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), Vec::<u8>::new());
    assert_eq!(dl.total(), Some(0));
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
fn a_416_without_a_length_is_a_bad_response() {
    let server = Server::new(3000, 22);
    server.fault(Fault::Status(416));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0.unwrap_err().code(), "BAD_RESPONSE");
}

#[test]
fn a_corrupt_record_is_reported_and_discarded() {
    let server = Server::new(3000, 23);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 1));
    assert_eq!(pause_at(&first, 1500), Ok(Outcome::Paused));
    let id = first.options().id.clone();
    drop(first);

    let mut damaged = block_on(store.load(&id)).unwrap().unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x40;
    store.put_raw_record(&id, damaged);
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(
        dl.discarded_record(),
        Some(RecordError::Corrupt("checksum mismatch"))
    );
    assert_eq!(dl.received(), 0, "nothing of it is trusted");
    assert_eq!(store.used(), 0, "its pieces are deleted");
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());

    store.put_raw_record(&id, b"garbage".to_vec());
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(dl.discarded_record(), Some(RecordError::NotARecord));
}

#[test]
fn a_compressed_206_is_rejected() {
    let server = Server::new(3000, 24);
    *server.content_encoding.borrow_mut() = Some("gzip".into());
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE");
    assert!(err.to_string().contains("Content-Encoding: gzip"));
    assert_eq!(dl.received(), 0);
}

#[test]
fn a_content_range_hidden_by_cors_names_the_header_to_expose() {
    let server = Server::new(3000, 25);
    server.hide_content_range.set(true);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "CORS_HEADERS_HIDDEN");
    assert!(err
        .to_string()
        .contains("Access-Control-Expose-Headers: Content-Range"));
}

#[test]
fn a_full_store_pauses_with_quota_exceeded_and_keeps_every_block() {
    let server = Server::new(10_000, 26);
    let store = Store::new();
    store.set_capacity(Some(4096));
    let dl = open(&server, &store, options(BLOCK, 2));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "QUOTA_EXCEEDED");
    let kept = dl.received();
    assert!(kept > 0 && kept <= 4096, "kept {kept}");
    assert_eq!(store.used(), kept);
    assert_record_claims_only_stored_bytes(&store, &dl, &server);

    store.set_capacity(None);
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
}

#[test]
fn a_piece_lost_by_the_store_is_an_error_not_a_gap() {
    let server = Server::new(3000, 27);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert!(store.drop_piece(&dl.options().id, 1024));
    let err = block_on(dl.assemble()).unwrap_err();
    assert_eq!(err.code(), "STORAGE_CORRUPT");
}

#[test]
fn blob_before_completion_and_a_second_start_are_refused() {
    let server = Server::new(3000, 28);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(block_on(dl.assemble()).unwrap_err().code(), "INVALID_STATE");
    let mut first = std::pin::pin!(dl.run(&|_| {}));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(dl.is_running());
    assert_eq!(
        block_on(dl.run(&|_| {})).unwrap_err().code(),
        "INVALID_STATE"
    );
    assert_eq!(block_on(first), Ok(Outcome::Complete));
    assert!(!dl.is_running());
    assert_eq!(bytes(&dl), server.content());
}

#[test]
fn remove_deletes_every_byte_and_the_record() {
    let server = Server::new(3000, 29);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    block_on(dl.remove()).unwrap();
    assert_eq!(store.used(), 0);
    assert_eq!(block_on(store.load(&dl.options().id)).unwrap(), None);
    assert_eq!(dl.received(), 0);
    assert!(!dl.is_complete());
}

// ---- HTTP conformance: servers that misbehave -------------------------------

/// Faults for the requests after the probe of a one-connection download.
fn after_probe(server: &Server, faults: &[Fault]) {
    server.fault(Fault::Pass);
    faults.iter().for_each(|&f| server.fault(f));
}

#[test]
fn a_206_starting_before_the_asked_offset_is_trimmed_to_it() {
    let server = Server::new(4096, 40);
    after_probe(&server, &[Fault::Shift(-100)]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[1].asked, Some(r(1024, 2048)));
    assert_eq!(log[1].body, Some(r(924, 1948)));
    assert_eq!(log[2].asked, Some(r(1948, 2048)), "the rest, exactly");
}

#[test]
fn a_206_starting_after_the_asked_offset_keeps_its_bytes_and_asks_for_the_gap() {
    let server = Server::new(4096, 41);
    after_probe(&server, &[Fault::Shift(100)]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[1].body, Some(r(1124, 2148)));
    assert_eq!(log[2].asked, Some(r(1024, 1124)), "the gap it left");
    assert!(dl.record().pieces.iter().any(|p| p == r(1124, 2048)));
}

#[test]
fn a_206_shorter_than_asked_is_kept_and_the_rest_requested() {
    let server = Server::new(4096, 42);
    after_probe(&server, &[Fault::Short(300)]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[1].body, Some(r(1024, 1748)));
    assert_eq!(log[2].asked, Some(r(1748, 2048)));
    assert_eq!(server.sent(), 4096);
}

#[test]
fn a_content_length_other_than_its_content_range_is_a_bad_response_and_not_stored() {
    // The body is another one than the range: a compression undone behind a
    // hidden Content-Encoding counts its encoded bytes in Content-Length.
    let server = Server::new(4096, 43);
    after_probe(&server, &[Fault::LengthMismatch(200)]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE");
    assert!(err.to_string().contains("Content-Length 824"), "{err}");
    assert_eq!(server.log.borrow()[1].sent, 0, "not one byte of it read");
    assert_eq!(dl.received(), 1024, "the probe's block is kept");
}

#[test]
fn a_206_decoded_behind_a_hidden_content_encoding_is_never_stored() {
    // Firefox and WebKit decode a compressed 206 and hide Content-Encoding
    // from a cross-origin page: its bytes are other bytes, more of them.
    let server = Server::new(4096, 46);
    after_probe(&server, &[Fault::Decoded]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE", "{err}");
    assert_eq!(dl.received(), 1024, "only the probe's block is stored");
    assert_record_claims_only_stored_bytes(&store, &dl, &server);
}

#[test]
fn a_decoded_reply_to_the_check_of_stored_bytes_is_no_proof_of_a_change() {
    // With no strong ETag a resume fetches the last stored bytes again; a
    // decoded body differs from them, but is not the file: nothing stored
    // may be discarded for it.
    let server = Server::new(4096, 47);
    server.etag.set(false);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(pause_at(&dl, 2048).ok(), Some(Outcome::Paused));
    let stored = dl.received();
    assert!(stored >= 2048);
    server.fault(Fault::Decoded);
    let dl = open(&server, &store, options(BLOCK, 1));
    let (outcome, events) = run(&dl);
    assert_eq!(outcome.unwrap_err().code(), "BAD_RESPONSE");
    assert!(restarts(&events).is_empty(), "{events:?}");
    assert_eq!(dl.received(), stored, "every stored byte is kept");
}

#[test]
fn a_206_without_content_range_is_a_bad_response() {
    let server = Server::new(4096, 44);
    after_probe(&server, &[Fault::NoContentRange]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE");
    assert!(err.to_string().contains("without a Content-Range"));
    assert!(server.clock.sleeps.borrow().is_empty(), "not retried");
    assert_eq!(dl.received(), 1024, "the probe's block is kept");
}

#[test]
fn a_multipart_reply_to_one_range_is_refused() {
    let server = Server::new(4096, 45);
    server.fault(Fault::Multipart);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE");
    assert!(err.to_string().contains("multipart/byteranges"));
}

/// Stores part of the file, then runs a second session on `change`d server.
fn resume_after(server: &Rc<Server>, change: impl FnOnce(&Server)) -> (Dl, Vec<Event>, usize) {
    let store = Store::new();
    let first = open(server, &store, options(BLOCK, 2));
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    drop(first);
    change(server);
    let before = server.log.borrow().len();
    let second = open(server, &store, options(BLOCK, 2));
    let (outcome, events) = run(&second);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&second), server.content());
    (second, events, before)
}

#[test]
fn a_weak_etag_resume_checks_stored_bytes_before_adding_any() {
    let server = Server::new(8000, 46);
    server.weak_etag.set(true);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 2));
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    let pieces: Vec<ByteRange> = first.record().pieces.iter().collect();
    let last = *pieces.last().unwrap();
    drop(first);
    let before = server.log.borrow().len();
    let second = open(&server, &store, options(BLOCK, 2));
    let (outcome, events) = run(&second);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&second), server.content());
    assert!(restarts(&events).is_empty());
    // After the first response, the proof fetched stored bytes again to
    // compare them: the first 4 KiB, a random place, and the last stored
    // bytes, each once (the random place may fall inside another). Then only
    // missing bytes, until the last proof samples the whole file again.
    let tail = r(last.end - last.len().min(64 << 10), last.end);
    let log = server.log.borrow();
    let asked: Vec<_> = log[before..].iter().filter_map(|s| s.asked).collect();
    let stored = |a: &ByteRange| pieces.iter().any(|p| p.start <= a.start && a.end <= p.end);
    let proof: Vec<_> = asked[1..].iter().take_while(|a| stored(a)).collect();
    assert!((2..=3).contains(&proof.len()), "{asked:?}");
    assert_eq!(proof[0].start, 0, "the first bytes: {asked:?}");
    assert_eq!(*proof[proof.len() - 1], tail, "the last: {asked:?}");
    let rest = &asked[1 + proof.len()..];
    let fetching = rest.iter().take_while(|a| a.start != 0).count();
    assert!(rest[..fetching].iter().all(|a| !stored(a)), "{asked:?}");
    let last_proof = &rest[fetching..];
    assert!((2..=3).contains(&last_proof.len()), "{asked:?}");
    assert_eq!(last_proof.last().map(|a| a.end), Some(8000), "{asked:?}");
}

#[test]
fn a_weak_etag_that_hides_a_change_is_caught_by_the_stored_bytes() {
    let server = Server::new(8000, 47);
    server.weak_etag.set(true);
    server.validator_seed.set(Some(47)); // the validators will not change
    let (_, events, _) = resume_after(&server, |s| s.seed.set(48));
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::Content { .. })]
    ));
}

#[test]
fn no_validator_at_all_is_checked_by_the_stored_bytes() {
    let server = Server::new(8000, 49);
    server.etag.set(false);
    server.last_modified.set(false);
    let (_, events, _) = resume_after(&server, |_| {});
    assert!(restarts(&events).is_empty(), "unchanged: kept");
    let (_, events, _) = resume_after(&server, |s| s.seed.set(50));
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::Content { .. })]
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
fn the_callers_headers_go_with_every_request() {
    let server = Server::new(5000, 58);
    let store = Store::new();
    let opts = resumable_fetch::core::Options {
        headers: vec![("Authorization".into(), "Bearer t".into())],
        ..options(BLOCK, 2)
    };
    let dl = open(&server, &store, opts);
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    let log = server.log.borrow();
    assert!(log
        .iter()
        .all(|s| s.headers == [("Authorization".to_string(), "Bearer t".to_string())]));
}

#[test]
fn a_5_gib_file_uses_64_bit_offsets_end_to_end() {
    const GIB: u64 = 1 << 30;
    let size = 5 * GIB + 12345;
    let server = Server::new(size, 59);
    server.chunk.set(1 << 20);
    let store = CheckingStore::new(59);
    let opts = || options(256 << 20, 4);
    let open = || {
        block_on(resumable_fetch::core::Driver::open(
            ScriptedTransport(server.clone()),
            store.clone(),
            server.clock.clone(),
            opts(),
        ))
        .unwrap()
    };
    // Paused past 4 GiB, then resumed by a new session from the record.
    let first = open();
    let paused = block_on(first.run(&|e| {
        if matches!(e, Event::Progress(p) if p.received >= 4 * GIB + GIB / 2) {
            first.pause();
        }
    }));
    assert_eq!(paused, Ok(Outcome::Paused));
    let stored = first.received();
    assert!(stored > 4 * GIB);
    drop(first);
    let dl = open();
    assert_eq!(dl.received(), stored, "the record keeps 64-bit offsets");
    assert_eq!(block_on(dl.run(&|_| {})), Ok(Outcome::Complete));
    assert_eq!(dl.total(), Some(size));
    assert_eq!(block_on(dl.assemble()), Ok(size));
    let log = server.log.borrow();
    let last = log
        .iter()
        .filter_map(|s| s.asked)
        .max_by_key(|a| a.end)
        .unwrap();
    assert_eq!(last.end, size);
    assert!(last.start > 4 * GIB);
    assert_eq!(server.sent(), size, "nothing fetched twice");
}

// ---- regressions: found in review -------------------------------------------

/// A server with no validators, then a changed file with a strong ETag. The
/// new ETag must not vouch for the old bytes, even when the check of the
/// stored bytes fails once and is retried.
#[test]
fn a_failed_check_of_stored_bytes_never_lets_a_new_etag_vouch_for_them() {
    let server = Server::new(8000, 60);
    server.etag.set(false);
    server.last_modified.set(false);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 2));
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    drop(first);

    server.seed.set(61); // new content, same length
    server.etag.set(true); // and now a strong ETag
    after_probe(&server, &[Fault::Status(503)]); // the check's request fails once
    let second = open(&server, &store, options(BLOCK, 2));
    let (outcome, events) = run(&second);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&second), server.content(), "no byte of the old file");
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::Content { .. })]
    ));
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
fn two_objects_for_one_id_share_the_stored_record() {
    let server = Server::new(8000, 64);
    let store = Store::new();
    let a = open(&server, &store, options(BLOCK, 1));
    let b = open(&server, &store, options(BLOCK, 1));
    assert_eq!(pause_at(&a, 2500), Ok(Outcome::Paused));
    after_probe(&server, &[Fault::Truncate(300)]); // b stores a block in two pieces
    assert_eq!(run(&b).0, Ok(Outcome::Complete));
    // a runs again: it reads what b stored, not its own stale view.
    assert_eq!(run(&a).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&a), server.content());
    assert_eq!(a.record(), b.record());
}

#[test]
fn a_whole_body_with_a_hidden_encoding_ends_where_it_ends() {
    use resumable_fetch::core::transport::{
        Body, Request, Response, ResponseHead, Transport, TransportError,
    };
    use resumable_fetch::core::validator::Header;
    /// A cross-origin 200 whose Content-Length (safelisted) counts the
    /// compressed bytes while its Content-Encoding reads null.
    struct Compressed;
    struct Decoded(Option<Vec<u8>>);
    impl Body for Decoded {
        type Chunk = Vec<u8>;
        async fn next(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
            Ok(self.0.take())
        }
    }
    impl Transport for Compressed {
        type Body = Decoded;
        async fn send(&self, _: &Request) -> Result<Response<Decoded>, TransportError> {
            Ok(Response {
                head: ResponseHead {
                    status: 200,
                    content_length: Header::Present("100".into()),
                    content_encoding: Header::Hidden,
                    ..Default::default()
                },
                body: Decoded(Some(vec![7u8; 3000])),
            })
        }
    }
    let store: resumable_fetch::core::memory::MemoryStore<Vec<u8>> = Default::default();
    let dl = block_on(resumable_fetch::core::Driver::open(
        Compressed,
        store,
        VirtualClock::default(),
        options(BLOCK, 1),
    ))
    .unwrap();
    assert_eq!(block_on(dl.run(&|_| {})), Ok(Outcome::Complete));
    assert_eq!(dl.total(), Some(3000));
    assert_eq!(block_on(dl.assemble()).unwrap().concat(), vec![7u8; 3000]);
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

#[test]
fn a_pause_between_begin_and_run_counts() {
    let server = Server::new(4000, 72);
    let dl = open(&server, &Store::new(), options(BLOCK, 1));
    dl.begin().unwrap();
    assert!(dl.is_running());
    assert_eq!(dl.begin().unwrap_err().code(), "INVALID_STATE");
    dl.pause();
    assert_eq!(run(&dl).0, Ok(Outcome::Paused));
    assert!(server.log.borrow().is_empty(), "no request was made");
    assert!(!dl.is_running());
    assert_eq!(run(&dl).0, Ok(Outcome::Complete), "a later start runs");
}

#[test]
fn a_new_url_has_the_stored_bytes_checked_again() {
    let server = Server::new(8000, 73);
    server.etag.set(false);
    server.last_modified.set(false);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 2));
    assert_eq!(pause_at(&dl, 3000), Ok(Outcome::Paused));
    // The new URL serves another file of the same length, with no validator.
    server.seed.set(74);
    dl.set_url("https://mirror.example/data.bin").unwrap();
    let (outcome, events) = run(&dl);
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert!(matches!(
        restarts(&events).as_slice(),
        [RestartReason::Changed(Change::Content { .. })]
    ));
}

/// The memory store, asking for whole bodies as IndexedDB does (or not),
/// counting the bytes read back, and watching its writes: each takes a few
/// turns of the executor, so writes of several connections can overlap, and
/// every record saved must claim only pieces whose write has finished.
#[derive(Clone, Default)]
struct WholeStore {
    inner: Store,
    streams: bool,
    read: Rc<Cell<u64>>,
    /// Whether it lets the driver write pieces at once.
    concurrent: bool,
    writing: Rc<Cell<u32>>,
    most_writing: Rc<Cell<u32>>,
    written: Rc<std::cell::RefCell<Vec<ByteRange>>>,
}

impl resumable_fetch::core::store::Store for WholeStore {
    type Chunk = Vec<u8>;
    type Assembled = Vec<Vec<u8>>;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.load(id).await
    }
    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        let claimed = Record::decode(record).expect("the driver saves records that decode");
        for piece in claimed.pieces.iter() {
            assert!(
                self.written.borrow().contains(&piece),
                "a record claims {piece} before its write finished"
            );
        }
        self.inner.save_record(id, record).await
    }
    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.writing.set(self.writing.get() + 1);
        self.most_writing
            .set(self.most_writing.get().max(self.writing.get()));
        for _ in 0..3 {
            yield_now().await;
        }
        let written = self.inner.write(id, piece, chunks).await;
        self.writing.set(self.writing.get() - 1);
        if written.is_ok() {
            self.written.borrow_mut().push(piece);
        }
        written
    }
    fn concurrent_writes(&self) -> bool {
        self.concurrent
    }
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.inner.reset(id, record).await
    }
    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.inner.remove(id).await
    }
    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.list().await
    }
    async fn read(
        &self,
        id: &str,
        piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        self.read.set(self.read.get() + part.len());
        self.inner.read(id, piece, part).await
    }
    async fn assemble(&self, id: &str, pieces: &[ByteRange]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.assemble(id, pieces).await
    }
    fn takes_whole_bodies(&self) -> bool {
        !self.streams
    }
}

type WholeDl = resumable_fetch::core::Driver<ScriptedTransport, WholeStore, VirtualClock>;

fn open_whole(
    server: &Rc<Server>,
    store: &WholeStore,
    options: resumable_fetch::core::Options,
) -> WholeDl {
    block_on(resumable_fetch::core::Driver::open(
        ScriptedTransport(server.clone()),
        store.clone(),
        server.clock.clone(),
        options,
    ))
    .expect("open")
}

fn run_whole(dl: &WholeDl) -> Result<Outcome, resumable_fetch::core::Error> {
    block_on(dl.run(&|_| {}))
}

#[test]
fn fast_blocks_are_taken_whole_where_the_store_keeps_them() {
    // A block in 4 chunks of 10 ms: far faster than a block per second.
    let server = Server::new(10_000, 50);
    let store = WholeStore::default();
    let dl = open_whole(&server, &store, options(BLOCK, 3));
    assert_eq!(run_whole(&dl), Ok(Outcome::Complete));
    let whole = block_on(dl.assemble()).expect("assemble").concat();
    assert_eq!(whole, server.content());
    assert_eq!(server.sent(), 10_000, "each byte once");
    // Only the probe's block is streamed: its first eighth came fast, so the
    // joining connections take even their first blocks whole, and join
    // without waiting out their moment, before the probe's body ends.
    assert_eq!(server.whole_bodies.get(), 9);
    let log = server.log.borrow();
    for joined in &log[1..3] {
        assert!(
            joined.at_ms < 4 * MS_PER_CHUNK,
            "joined at {}",
            joined.at_ms
        );
    }
    assert!(
        server.clock.sleeps.borrow().is_empty(),
        "no moment waited out"
    );
}

#[test]
fn blocks_taken_whole_may_be_larger_than_streamed_ones() {
    let server = Server::new(10_000, 53);
    let store = WholeStore::default();
    let mut opts = options(BLOCK, 3);
    opts.whole_block_size = 2 * BLOCK;
    let dl = open_whole(&server, &store, opts);
    assert_eq!(run_whole(&dl), Ok(Outcome::Complete));
    let whole = block_on(dl.assemble()).expect("assemble").concat();
    assert_eq!(whole, server.content());
    // The probe streams a block; the rest are taken whole, up to the next
    // multiple of the larger size.
    let asked: Vec<_> = server.log.borrow().iter().filter_map(|s| s.asked).collect();
    assert_eq!(asked[0], r(0, BLOCK));
    let mut rest = asked[1..].to_vec();
    rest.sort_by_key(|a| a.start);
    assert_eq!(rest[..2], [r(BLOCK, 2 * BLOCK), r(2 * BLOCK, 4 * BLOCK)]);
    assert_eq!(rest.last(), Some(&r(8 * BLOCK, 10_000)));
    assert_eq!(server.whole_bodies.get(), asked.len() - 1);
    assert_eq!(server.sent(), 10_000, "each byte once");
}

#[test]
fn slow_blocks_are_streamed() {
    // 5 bytes per 10 ms chunk: a 1 KiB block takes 2 s.
    let server = Server::new(4096, 51);
    server.chunk.set(5);
    let store = WholeStore::default();
    let mut opts = options(BLOCK, 2);
    opts.whole_block_size = 2 * BLOCK;
    let dl = open_whole(&server, &store, opts);
    assert_eq!(run_whole(&dl), Ok(Outcome::Complete));
    assert_eq!(server.whole_bodies.get(), 0);
    // Streamed blocks keep the streamed size.
    assert!(server
        .log
        .borrow()
        .iter()
        .all(|s| s.asked.is_some_and(|a| a.len() <= BLOCK)));
    // The second connection waited its moment (an eighth of WHOLE_BLOCK_MS) for the
    // probe to show its speed, then joined it streaming, long before the
    // probe's body ended (about 2 s).
    let log = server.log.borrow();
    let joined = log[1].at_ms;
    assert!((125..1_000).contains(&joined), "joined at {joined} ms");
}

#[test]
fn a_whole_body_that_fails_keeps_nothing_and_its_block_is_streamed_again() {
    let server = Server::new(4096, 52);
    server.fault(Fault::Pass); // the probe, streamed
    server.fault(Fault::Reset(700)); // the second block, taken whole
    let store = WholeStore::default();
    let dl = open_whole(&server, &store, options(BLOCK, 1));
    assert_eq!(run_whole(&dl), Ok(Outcome::Complete));
    let whole = block_on(dl.assemble()).expect("assemble").concat();
    assert_eq!(whole, server.content());
    let log = server.log.borrow();
    assert_eq!(log[1].asked, Some(r(1024, 2048)));
    assert_eq!(log[1].sent, 700);
    assert_eq!(log[2].asked, Some(r(1024, 2048)), "the whole block again");
    assert_eq!(
        server.sent(),
        4096 + 700,
        "the failed body's bytes, once more"
    );
    // After the failure, blocks are streamed until one comes fast again.
    assert_eq!(
        server.whole_bodies.get(),
        3,
        "block 1 (failed), then 2 and 3"
    );
}

#[test]
fn integrity_is_hashed_behind_the_download_each_byte_once() {
    let server = Server::new(20_000, 53);
    let good = format!("sha256-{}", sha256_base64(&server.content()));
    let store = WholeStore {
        streams: true,
        ..Default::default()
    };
    let dl = open_whole(&server, &store, with_integrity(&good));
    // Stored bytes are read back (hashed) while the download still runs.
    {
        let mut run = std::pin::pin!(dl.run(&|_| {}));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut hashed_early = false;
        for _ in 0..1_000_000 {
            if run.as_mut().poll(&mut cx).is_ready() {
                break;
            }
            hashed_early |= store.read.get() > 0 && dl.received() < 20_000;
        }
        assert!(hashed_early, "nothing was hashed before the end");
    }
    assert!(dl.is_complete());
    assert_eq!(store.read.get(), 20_000, "each byte hashed once");
}

#[test]
fn integrity_hashes_the_new_file_after_a_change_mid_download() {
    let server = Server::new(12_000, 54);
    let changed_to = Server::new(12_000, 55);
    let good = format!("sha256-{}", sha256_base64(&changed_to.content()));
    let store = WholeStore::default();
    let dl = open_whole(&server, &store, with_integrity(&good));
    let changed = Cell::new(false);
    let outcome = block_on(dl.run(&|e| {
        if matches!(e, Event::Progress(p) if p.received >= 6000) && !changed.replace(true) {
            server.seed.set(55);
        }
    }));
    assert_eq!(outcome, Ok(Outcome::Complete));
    let whole = block_on(dl.assemble()).expect("assemble").concat();
    assert_eq!(whole, changed_to.content());
}

fn with_integrity(value: &str) -> resumable_fetch::core::Options {
    resumable_fetch::core::Options {
        integrity: Some(resumable_fetch::core::integrity::parse_integrity(value).unwrap()),
        ..options(BLOCK, 3)
    }
}

#[test]
fn integrity_is_checked_over_the_stored_file_even_across_sessions() {
    let server = Server::new(10_000, 40);
    let good = format!("sha256-{}", sha256_base64(&server.content()));
    let store = Store::new();
    // Part of it in one session, the rest in another: the whole file is hashed.
    let first = open(&server, &store, with_integrity(&good));
    assert_eq!(pause_at(&first, 3000), Ok(Outcome::Paused));
    let dl = open(&server, &store, with_integrity(&good));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    assert!(stored_record(&store, &dl).complete);
}

#[test]
fn an_integrity_mismatch_discards_the_file_and_fails() {
    let server = Server::new(10_000, 41);
    let wrong = format!("sha256-{}", sha256_base64(b"another file"));
    let store = Store::new();
    let dl = open(&server, &store, with_integrity(&wrong));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "INTEGRITY_MISMATCH");
    let message = err.to_string();
    assert!(
        message.contains("the integrity option") && message.contains(&wrong),
        "{message}"
    );
    assert!(
        message.contains(&sha256_base64(&server.content())),
        "names what it got"
    );
    // Nothing of the wrong file is kept or claimed, and it is not complete.
    assert_eq!(dl.received(), 0);
    assert!(!dl.is_complete());
    let record = stored_record(&store, &dl);
    assert!(record.pieces.is_empty() && !record.complete);
    assert_eq!(store.used(), 0);
    assert_eq!(block_on(dl.assemble()).unwrap_err().code(), "INVALID_STATE");
}

#[test]
fn the_servers_repr_digest_is_checked_too() {
    let server = Server::new(10_000, 42);
    *server.repr_digest.borrow_mut() = Some(format!(
        "unknown=:AAAA:, sha-256=:{}:",
        sha256_base64(&server.content())
    ));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 3));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));

    let liar = Server::new(10_000, 43);
    *liar.repr_digest.borrow_mut() = Some(format!("sha-256=:{}:", sha256_base64(b"x")));
    let store = Store::new();
    let dl = open(&liar, &store, options(BLOCK, 3));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "INTEGRITY_MISMATCH");
    assert!(err.to_string().contains("Repr-Digest"), "{err}");
    assert_eq!(store.used(), 0);

    // A compressed body's digest is of the compressed bytes: not checked.
    let gzip = Server::new(10_000, 44);
    gzip.ranges.set(Ranges::Ignored);
    *gzip.content_encoding.borrow_mut() = Some("gzip".into());
    *gzip.repr_digest.borrow_mut() = Some(format!("sha-256=:{}:", sha256_base64(b"x")));
    let store = Store::new();
    let dl = open(&gzip, &store, options(BLOCK, 3));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
}

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

#[test]
fn pieces_are_written_at_once_where_the_store_allows_and_records_claim_only_finished_writes() {
    for concurrent in [true, false] {
        let server = Server::new(20_000, 51);
        let store = WholeStore {
            concurrent,
            ..WholeStore::default()
        };
        let dl = open_whole(&server, &store, options(BLOCK, 3));
        assert_eq!(run_whole(&dl), Ok(Outcome::Complete));
        assert_eq!(
            block_on(dl.assemble()).expect("assemble").concat(),
            server.content()
        );
        assert_eq!(server.sent(), 20_000, "each byte once");
        let most = store.most_writing.get();
        match concurrent {
            true => assert!(
                (2..=3).contains(&most),
                "{most} writes at once with 3 connections"
            ),
            false => assert_eq!(most, 1, "one write at a time"),
        }
    }
}

#[test]
fn a_file_replaced_during_a_run_with_no_validator_is_caught_before_completion() {
    // Same length, no ETag, no Last-Modified: no response shows the change,
    // so the stored bytes are sampled once more before the download completes.
    let server = Server::new(4096, 48);
    server.etag.set(false);
    server.last_modified.set(false);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let events = std::cell::RefCell::new(Vec::new());
    let outcome = block_on(dl.run(&|e| {
        if matches!(e, Event::Progress(p) if p.received >= 2048) {
            server.seed.set(49);
        }
        events.borrow_mut().push(e.clone());
    }));
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content(), "the new file, whole");
    let restarted = restarts(&events.borrow());
    assert!(
        matches!(
            restarted[..],
            [RestartReason::Changed(Change::Content { .. })]
        ),
        "{restarted:?}"
    );
}

#[test]
fn a_record_of_a_newer_version_is_reported_and_never_deleted_unread() {
    let server = Server::new(3000, 50);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 1));
    assert_eq!(pause_at(&first, 1500), Ok(Outcome::Paused));
    let id = first.options().id.clone();
    drop(first);
    let mut newer = block_on(store.load(&id)).unwrap().unwrap();
    newer[4] = 200;
    store.put_raw_record(&id, newer.clone());
    let stored = store.used();
    let opened = block_on(resumable_fetch::core::Driver::open(
        ScriptedTransport(server.clone()),
        store.clone(),
        server.clock.clone(),
        options(BLOCK, 1),
    ));
    let err = opened.err().expect("a record it cannot read is an error");
    assert_eq!(err.code(), "STORAGE_CORRUPT");
    assert!(err.to_string().contains("version 200"), "{err}");
    assert!(err.to_string().contains("remove the download"), "{err}");
    assert_eq!(block_on(store.load(&id)).unwrap(), Some(newer), "kept");
    assert_eq!(store.used(), stored, "its pieces too");
}

#[test]
fn a_complete_download_opened_with_an_integrity_is_checked_once() {
    let server = Server::new(5000, 51);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 2));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    let id = dl.options().id.clone();
    drop(dl);
    // A wrong digest: the stored file is checked, found wrong, discarded.
    let wrong = format!("sha256-{}", sha256_base64(b"another file"));
    let dl = open(&server, &store, with_integrity(&wrong));
    assert!(dl.is_complete());
    assert_eq!(run(&dl).0.unwrap_err().code(), "INTEGRITY_MISMATCH");
    assert_eq!(store.used(), 0, "never handed out");
    // Downloaded again with the right one, which the record remembers.
    let good = format!("sha256-{}", sha256_base64(&server.content()));
    let dl = open(&server, &store, with_integrity(&good));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    let remembered = Record::decode(&block_on(store.load(&id)).unwrap().unwrap()).unwrap();
    assert_eq!(remembered.verified.as_deref(), Some(good.as_str()));
    // blob() on an object opened with a wrong digest checks too.
    let dl = open(&server, &store, with_integrity(&wrong));
    let err = block_on(dl.assemble()).expect_err("a mismatch");
    assert_eq!(err.code(), "INTEGRITY_MISMATCH");
}

#[test]
fn blob_of_a_stale_object_gives_what_is_stored_now() {
    // Object A completed; object B downloaded the id again after the file
    // changed. A's blob() is B's file, never A's record over B's pieces.
    let server = Server::new(5000, 52);
    let store = Store::new();
    let a = open(&server, &store, options(BLOCK, 2));
    assert_eq!(run(&a).0, Ok(Outcome::Complete));
    server.seed.set(53);
    server.size.set(3000);
    let b = open(&server, &store, options(BLOCK, 2));
    block_on(b.remove()).expect("removed");
    assert_eq!(run(&b).0, Ok(Outcome::Complete));
    let a_now = block_on(a.assemble()).expect("the stored file");
    assert_eq!(a_now.concat(), server.content());
}

#[test]
fn range_responses_the_runtime_refuses_are_told_from_a_network_failure() {
    // Chromium fails every fetch of a compressed 206: after the retries, one
    // request without Range shows the server is there.
    let server = Server::new(4096, 54);
    server.compress_ranges.set(true);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 2));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE", "{err}");
    assert!(err.to_string().contains("gzip_static"), "{err}");
    let log = server.log.borrow();
    assert_eq!(
        log.last().map(|s| s.asked),
        Some(None),
        "the plain request: {log:?}"
    );
    assert_eq!(log.last().map(|s| s.sent), Some(0), "its body left unread");
    drop(log);
    // A network that is really down stays NETWORK.
    let down = Server::new(4096, 55);
    (0..20).for_each(|_| down.fault(Fault::Refuse));
    let dl = open(&down, &Store::new(), options(BLOCK, 1));
    assert_eq!(run(&dl).0.unwrap_err().code(), "NETWORK");
}

#[test]
fn a_cross_origin_206_longer_than_asked_is_read_to_its_end_and_its_bytes_kept() {
    // Content-Encoding reads as hidden on every cross-origin response: a
    // shifted body is read past what is kept, to prove its length.
    let server = Server::new(4096, 56);
    server.hide_content_encoding.set(true);
    after_probe(&server, &[Fault::Shift(-100)]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[1].body, Some(r(924, 1948)));
    assert_eq!(log[1].sent, 1024, "read to its end");
    assert_eq!(log[2].asked, Some(r(1948, 2048)), "the rest, exactly");
}

#[test]
fn a_second_object_cannot_remove_a_download_another_runs() {
    // Where no Web Lock exists (Node, Deno, workerd), the core itself keeps
    // one writer per id in a thread: the running object must not complete
    // over pieces another object deleted.
    let server = Server::new(5000, 57);
    let store = Store::new();
    let first = open(&server, &store, options(BLOCK, 1));
    let second = open(&server, &store, options(BLOCK, 1));
    let removed = Cell::new(None);
    let outcome = block_on(first.run(&|e| {
        if matches!(e, Event::Progress(p) if p.received >= 2048) && removed.get().is_none() {
            // The memory store does not wait: one poll settles it.
            let mut remove = std::pin::pin!(second.remove());
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if let std::task::Poll::Ready(result) = remove.as_mut().poll(&mut cx) {
                removed.set(Some(result.map_err(|e| e.code())));
            }
        }
    }));
    assert_eq!(removed.get(), Some(Err("LOCKED")));
    assert_eq!(outcome, Ok(Outcome::Complete));
    assert_eq!(bytes(&first), server.content());
    assert_eq!(block_on(second.remove()), Ok(()), "free once the run ended");
}

#[test]
fn a_cross_origin_body_cut_off_keeps_what_arrived_once_a_small_range_proves_it() {
    // Cross-origin, Content-Encoding always reads as hidden, so a body cut
    // off could be a decoded one: a small range first proves the server
    // sends ranges as they are, then the cut-off bytes are kept.
    let server = Server::new(4096, 58);
    server.hide_content_encoding.set(true);
    server.fault(Fault::Reset(600));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[0].sent, 600, "cut off");
    assert_eq!(log[1].asked, Some(r(0, 1024)), "the small range: {log:?}");
    assert_eq!(
        log[2].asked,
        Some(r(600, 1024)),
        "then exactly the rest: {log:?}"
    );
}
