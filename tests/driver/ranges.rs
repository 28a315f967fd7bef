//! Servers without ranges or without a length: a 200 to a range request, a
//! whole file streamed in pieces, lengths learned from the end of a body or
//! from a 416.

use super::*;

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
fn a_416_without_a_length_is_a_bad_response() {
    let server = Server::new(3000, 22);
    server.fault(Fault::Status(416));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0.unwrap_err().code(), "BAD_RESPONSE");
}
