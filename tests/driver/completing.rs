//! Downloads that complete: over parallel connections or one, each byte
//! fetched once, resumed after a pause or a crash from the stored record,
//! past 4 GiB, with the caller's headers on every request.

use super::*;

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
