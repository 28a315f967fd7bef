//! Pacing: when the other connections join the probe, and whether a block is
//! taken whole (one body, where the store keeps whole bodies) or streamed,
//! judged by how fast blocks come.

use super::*;

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
