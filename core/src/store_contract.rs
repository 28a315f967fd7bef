//! The store contract ([`super::store`]) as checks every store runs: the
//! memory store natively, IndexedDB and OPFS in the browser suites, the
//! custom-store adapter and the file stores through it in Node and Deno.
//! Each check uses its own id under `prefix` and names the clause a store
//! broke. [`check_crashes`] cuts the store's operations off at each step, as
//! a crash would; the simulator (`tests/sim`) crashes the driver itself at
//! every step, over the memory and positional layouts.

use super::range::ByteRange;
use super::record::Record;
use super::store::Store;
use super::StoreErrorKind;
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

/// Reads an assembled file back as bytes (a `Blob` in browsers).
pub type ReadAssembled<'a, A> = &'a dyn Fn(A) -> Pin<Box<dyn Future<Output = Vec<u8>>>>;

/// Deletes the stored bytes of an id behind the store's back, its record
/// kept (a data file deleted by hand), for stores whose `load` can see it.
pub type LoseData<'a> = &'a dyn Fn(&str) -> Pin<Box<dyn Future<Output = ()>>>;

/// Runs every check against `store`; the first breach, in words.
pub async fn check<S: Store>(
    store: &S,
    prefix: &str,
    chunk: &dyn Fn(&[u8]) -> S::Chunk,
    read: ReadAssembled<'_, S::Assembled>,
    lose: Option<LoseData<'_>>,
) -> Result<(), String> {
    let id = |name: &str| format!("{prefix}-{name}");
    let (a, b) = (A, B);
    let bytes = file(7);
    let slice = |r: ByteRange| &bytes[r.start as usize..r.end as usize];

    // Nothing stored: no record.
    let absent = id("absent");
    if store
        .load(&absent)
        .await
        .map_err(|e| failed("load", e))?
        .is_some()
    {
        return Err("load() of an id never stored found a record".into());
    }

    // Pieces, then the record that claims them: read back exactly.
    let one = id("pieces");
    let record = record_of(&one, &[a, b]);
    for piece in [a, b] {
        let written = store.write(&one, piece, vec![chunk(slice(piece))]).await;
        written.map_err(|e| failed("write", e))?;
    }
    store
        .save_record(&one, &record.encode())
        .await
        .map_err(|e| failed("save_record", e))?;
    let loaded = store.load(&one).await.map_err(|e| failed("load", e))?;
    if loaded.as_deref() != Some(&record.encode()[..]) {
        return Err("load() did not return the record saved".into());
    }
    let part = ByteRange {
        start: 1100,
        end: 1200,
    };
    let got = store
        .read(&one, b, part)
        .await
        .map_err(|e| failed("read", e))?;
    if got != slice(part) {
        return Err(format!("read() of {part} gave other bytes"));
    }
    let whole = store
        .assemble(&one, &[a, b])
        .await
        .map_err(|e| failed("assemble", e))?;
    if read(whole).await != bytes {
        return Err("assemble() gave other bytes than the pieces".into());
    }

    // A piece never written is an error, never a gap.
    let never = ByteRange {
        start: 1500,
        end: 2000,
    };
    match store.assemble(&one, &[a, b, never]).await {
        Err(e) if e.kind == StoreErrorKind::Corrupt => {}
        Err(e) => return Err(format!("assemble() of a missing piece: {e}, not Corrupt")),
        Ok(_) => return Err("assemble() of a missing piece succeeded".into()),
    }

    // A record is replaced whole.
    let later = record_of(&one, &[a]);
    store
        .save_record(&one, &later.encode())
        .await
        .map_err(|e| failed("save_record", e))?;
    let loaded = store.load(&one).await.map_err(|e| failed("load", e))?;
    if loaded.as_deref() != Some(&later.encode()[..]) {
        return Err("a second save_record() did not replace the first".into());
    }

    // reset: the record that claims nothing is what load finds.
    let empty = record_of(&one, &[]);
    store
        .reset(&one, &empty.encode())
        .await
        .map_err(|e| failed("reset", e))?;
    let loaded = store.load(&one).await.map_err(|e| failed("load", e))?;
    if loaded.as_deref() != Some(&empty.encode()[..]) {
        return Err("after reset() load() did not return the empty record".into());
    }

    // list: every record, of every id.
    let two = id("listed");
    let other = record_of(&two, &[]);
    store
        .save_record(&two, &other.encode())
        .await
        .map_err(|e| failed("save_record", e))?;
    let listed = store.list().await.map_err(|e| failed("list", e))?;
    for wanted in [&empty, &other] {
        if !listed.contains(&wanted.encode()) {
            return Err(format!("list() lacks the record of {}", wanted.id));
        }
    }

    // remove: the record and the pieces go.
    for gone in [&one, &two] {
        store.remove(gone).await.map_err(|e| failed("remove", e))?;
        if store
            .load(gone)
            .await
            .map_err(|e| failed("load", e))?
            .is_some()
        {
            return Err("load() found a record after remove()".into());
        }
    }
    let listed = store.list().await.map_err(|e| failed("list", e))?;
    if listed.contains(&empty.encode()) || listed.contains(&other.encode()) {
        return Err("list() shows a removed record".into());
    }
    if store.assemble(&one, &[a]).await.is_ok() {
        return Err("assemble() of a removed download succeeded".into());
    }
    // A record that outlived its data claims nothing once loaded.
    if let Some(lose) = lose {
        let lost = id("lost");
        for piece in [a, b] {
            let written = store.write(&lost, piece, vec![chunk(slice(piece))]).await;
            written.map_err(|e| failed("write", e))?;
        }
        let claims = record_of(&lost, &[a, b]);
        store
            .save_record(&lost, &claims.encode())
            .await
            .map_err(|e| failed("save_record", e))?;
        lose(&lost).await;
        let loaded = store.load(&lost).await.map_err(|e| failed("load", e))?;
        let decoded = loaded.map(|bytes| Record::decode(&bytes));
        if let Some(record) = decoded {
            let record = record.map_err(|e| format!("load() after a data loss: {e}"))?;
            if record.received() > 0 || record.complete {
                return Err(format!(
                    "load() kept a claim of {} bytes whose data is gone",
                    record.received()
                ));
            }
        }
        store.remove(&lost).await.map_err(|e| failed("remove", e))?;
    }

    // Removing what is not there is not an error.
    store
        .remove(&absent)
        .await
        .map_err(|e| failed("remove() of nothing", e))?;
    Ok(())
}

/// What a crash may interrupt: each operation is cut off at each of its
/// steps in turn (the step's future dropped where it waited, the steps after
/// it never run), and then no record may claim a byte `read` does not give
/// back as written.
pub async fn check_crashes<S: Store>(
    store: &S,
    prefix: &str,
    chunk: &dyn Fn(&[u8]) -> S::Chunk,
) -> Result<(), String> {
    let (a, b) = (A, B);
    let bytes = file(13);
    let slice = |r: ByteRange| &bytes[r.start as usize..r.end as usize];
    let operations = ["a first write", "a second write", "reset", "remove"];
    for (o, operation) in operations.into_iter().enumerate() {
        // Bounded: no store operation here takes this many steps.
        for cut_at in 0..64usize {
            let id = format!("{prefix}-crash-{o}-{cut_at}");
            if o > 0 {
                let written = store.write(&id, a, vec![chunk(slice(a))]).await;
                written.map_err(|e| failed("write", e))?;
                let record = record_of(&id, &[a]).encode();
                let saved = store.save_record(&id, &record).await;
                saved.map_err(|e| failed("save_record", e))?;
            }
            let budget = Cell::new(cut_at);
            let finished = match o {
                0 | 1 => {
                    let piece = if o == 0 { a } else { b };
                    let claimed = if o == 0 { vec![a] } else { vec![a, b] };
                    let written = cut(store.write(&id, piece, vec![chunk(slice(piece))]), &budget);
                    match written.await {
                        Some(written) => {
                            written.map_err(|e| failed("write", e))?;
                            let record = record_of(&id, &claimed).encode();
                            cut(store.save_record(&id, &record), &budget).await
                        }
                        None => None,
                    }
                }
                2 => cut(store.reset(&id, &record_of(&id, &[]).encode()), &budget).await,
                _ => cut(store.remove(&id), &budget).await,
            };
            let completed = finished.is_some();
            if let Some(done) = finished {
                done.map_err(|e| failed(operation, e))?;
            }
            let at = format!("after {operation} cut off at step {cut_at}");
            if let Some(loaded) = store.load(&id).await.map_err(|e| failed("load", e))? {
                let record = Record::decode(&loaded).map_err(|e| format!("{at}: {e}"))?;
                for piece in record.pieces.iter() {
                    let got = store.read(&id, piece, piece).await;
                    if got.as_deref().ok() != Some(slice(piece)) {
                        return Err(format!("{at}, the record claims {piece}, not stored"));
                    }
                }
            }
            let removed = store.remove(&id).await;
            removed.map_err(|e| format!("{at}, remove failed: {e}"))?;
            if completed {
                break;
            }
        }
    }
    Ok(())
}

/// Runs `step` unless `budget` is spent, spending one for the step and one
/// for each time it waits: `None` when it was cut off (dropped), as a crash
/// would leave it.
async fn cut<F: Future>(step: F, budget: &Cell<usize>) -> Option<F::Output> {
    let spend = || match budget.get().checked_sub(1) {
        Some(left) => {
            budget.set(left);
            true
        }
        None => false,
    };
    if !spend() {
        return None;
    }
    let mut step = pin!(step);
    poll_fn(|cx| match step.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if spend() => Poll::Pending,
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The two pieces of the 1500-byte file every check stores.
const A: ByteRange = ByteRange {
    start: 0,
    end: 1000,
};
const B: ByteRange = ByteRange {
    start: 1000,
    end: 1500,
};

/// The file's bytes, none of them zero (a hole reads as zeros).
fn file(step: u32) -> Vec<u8> {
    (0..1500u32).map(|i| (i * step % 251) as u8 + 1).collect()
}

/// A store operation's failure, in words.
fn failed(what: &str, e: super::StoreError) -> String {
    format!("{what} failed: {e}")
}

/// A record of `id` claiming `pieces` of a 1500-byte file.
fn record_of(id: &str, pieces: &[ByteRange]) -> Record {
    let mut record = Record::new(id, "https://store.contract/file", 1);
    record.validators.total = Some(1500);
    record.resumable = true;
    for piece in pieces {
        record.pieces.insert(*piece);
    }
    record
}
