//! The driver against a scripted transport: every scenario of a download that
//! can go wrong, run natively on a virtual clock. The core's `Driver` runs
//! against `tests/scripted` (an in-process range server with queued faults, a
//! log of what it served, and a virtual clock, shared with the simulator).
//!
//! One idea per module:
//! - `completing`: downloads that complete, and resume after a pause or a crash;
//! - `pacing`: when connections join the probe, blocks taken whole or streamed;
//! - `failures`: cut-off bodies, refusals, stalls, retries, statuses, URLs;
//! - `ranges`: servers without ranges or lengths (200s, 416s);
//! - `conformance`: 206s other than what was asked;
//! - `encodings`: compressed or decoded bodies, headers CORS hides;
//! - `changes`: a file changed on the server, told by its validators;
//! - `proof`: stored bytes fetched again where no strong ETag vouches for them;
//! - `integrity`: the file hashed and checked against a digest;
//! - `offline`: suspended and resumed runs;
//! - `max_requests`: runs bounded by a number of requests;
//! - `stores`: records and stores that fail, overlapping writes;
//! - `objects`: the download object's life, several objects for one id;
//! - `whole_store`: the test store that keeps whole bodies and watches writes.
//!
//! The helpers shared by several ideas are here.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../scripted/mod.rs"]
mod scripted;

mod changes;
mod completing;
mod conformance;
mod encodings;
mod failures;
mod integrity;
mod max_requests;
mod objects;
mod offline;
mod pacing;
mod proof;
mod ranges;
mod stores;
mod whole_store;

use futures::executor::block_on;
use resumable_fetch::core::range::ByteRange;
use resumable_fetch::core::record::Record;
use resumable_fetch::core::store::Store as _;
use resumable_fetch::core::validator::Change;
use resumable_fetch::core::{Event, Outcome, RestartReason};
use scripted::*;
use std::cell::Cell;
use std::rc::Rc;
use whole_store::*;

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

/// Faults for the requests after the probe of a one-connection download.
fn after_probe(server: &Server, faults: &[Fault]) {
    server.fault(Fault::Pass);
    faults.iter().for_each(|&f| server.fault(f));
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
