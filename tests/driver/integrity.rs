//! Integrity: the file hashed behind the download (each byte once, across
//! sessions and changes), checked against the integrity option and the
//! server's Repr-Digest; a mismatch discards it.

use super::*;
use std::future::Future as _;

/// Options for a download checked against `value` (an SRI string).
fn with_integrity(value: &str) -> resumable_fetch::core::Options {
    resumable_fetch::core::Options {
        integrity: Some(resumable_fetch::core::integrity::parse_integrity(value).unwrap()),
        ..options(BLOCK, 3)
    }
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
