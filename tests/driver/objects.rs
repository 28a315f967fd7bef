//! The download object's life: one run at a time, begin then run, remove,
//! and several objects for one id sharing (and guarding) what is stored.

use super::*;
use std::future::Future as _;

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
