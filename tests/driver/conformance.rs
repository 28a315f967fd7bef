//! HTTP conformance: 206s that are not what was asked (shifted, short, with a
//! Content-Length other than their range, without Content-Range, multipart)
//! are trimmed, completed or refused, never stored wrong.

use super::*;

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
