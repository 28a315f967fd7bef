//! Stores and records: a corrupt or newer record, a full store, a lost piece,
//! and writes that overlap, with records claiming only finished writes.

use super::*;
use resumable_fetch::core::record::RecordError;

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
