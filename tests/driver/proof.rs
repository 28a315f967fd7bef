//! The proof of stored bytes: where no strong ETag vouches for them (a weak
//! one, none at all, a new URL), stored bytes are fetched again and compared
//! before any is added, and once more before the download completes.

use super::*;

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
