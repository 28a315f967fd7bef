//! The IndexedDB store.
//!
//! Object stores: `records` (id → encoded record, a `Uint8Array`) and four
//! lanes of pieces, `pieces` and `pieces-1` to `pieces-3` (`[id, offset]` →
//! `Blob`). A piece's lane follows from its range ([`lane`]), so consecutive
//! blocks land in different lanes: IndexedDB runs read-write transactions on
//! different object stores at once, and one store for all pieces made every
//! block wait for the one before (240 → 378 MB/s, docs/BENCHMARKS.md). A
//! piece is written in its own transaction, and the record that claims it in
//! the next, so a record never claims a missing piece; a piece no record
//! claims is ignored. Version 1 of the schema kept every piece in `pieces`,
//! so a piece not in its lane is looked for there.
//! Pieces are Blob values: the browser keeps them on disk, and the finished
//! file is `new Blob(pieces)`, which references them instead of copying.
//! Where an engine cannot store Blobs (WebKit with an ephemeral session:
//! "Error preparing Blob/File data"), pieces are stored as bytes instead.
//! Every transaction is opened, filled and awaited with no network await in
//! between (a transaction left idle across an await would auto-commit).

use super::chunk::WebChunk;
use super::js;
use crate::core::range::ByteRange;
use crate::core::small_map::SmallMap;
use crate::core::store::Store;
use crate::core::{StoreError, StoreErrorKind};
use js_sys::{Array, Uint8Array};
use std::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;
use web_sys::{
    Blob, IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbRequest,
    IdbTransaction,
};

#[wasm_bindgen]
extern "C" {
    /// `IDBDatabase`, for the `transaction(stores, mode, { durability })`
    /// form that web-sys has only behind an unstable cfg.
    #[wasm_bindgen(js_name = IDBDatabase)]
    type DatabaseWithOptions;

    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &DatabaseWithOptions,
        stores: &Array,
        mode: &str,
        options: &JsValue,
    ) -> Result<IdbTransaction, JsValue>;
}

const DB_NAME: &str = "resumable-fetch";
const DB_VERSION: u32 = 2;
const RECORDS: &str = "records";
/// The lanes of pieces; the first is version 1's only one.
const LANES: [&str; 4] = ["pieces", "pieces-1", "pieces-2", "pieces-3"];
/// Every object store of the schema.
const STORES: [&str; 5] = [RECORDS, LANES[0], LANES[1], LANES[2], LANES[3]];

thread_local! {
    /// One connection per database, page or worker, opened on first use.
    static DBS: RefCell<SmallMap<&'static str, IdbDatabase>> = RefCell::new(SmallMap::new());
    /// Whether this engine stores Blob values: unknown until the first commit.
    static BLOB_VALUES: Cell<Option<bool>> = const { Cell::new(None) };
}

#[derive(Clone)]
pub struct IdbStore {
    db: IdbDatabase,
}

impl IdbStore {
    /// Opens (creating if needed) the database of this origin.
    pub async fn open() -> Result<Self, StoreError> {
        Self::open_named(DB_NAME).await
    }

    /// Opens (creating if needed) the database `name`: other stores keep
    /// their records in one of their own.
    pub async fn open_named(name: &'static str) -> Result<Self, StoreError> {
        if let Some(db) = DBS.with(|dbs| dbs.borrow().get(name).cloned()) {
            return Ok(Self { db });
        }
        let factory = js::get(&js_sys::global(), "indexedDB")
            .dyn_into::<IdbFactory>()
            .map_err(|_| unavailable("this runtime has no IndexedDB"))?;
        let request = factory
            .open_with_u32(name, DB_VERSION)
            .map_err(|e| js::store_error(&e))?;
        let upgrade = Closure::<dyn FnMut()>::new({
            let request = request.clone();
            move || create_schema(&request)
        });
        request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        // `blocked`: another tab holds an older version open and does not
        // let go (ours close on `versionchange`, older code may not). The
        // open would wait for it for ever: settle now instead.
        let blocked = js_sys::Object::new();
        let settled = js::event(|resolve, reject| {
            request.set_onsuccess(Some(resolve));
            request.set_onerror(Some(reject));
            let on_blocked: js_sys::Function =
                reject.bind1(&JsValue::NULL, &blocked).unchecked_into();
            request.set_onblocked(Some(&on_blocked));
        })
        .await;
        request.set_onblocked(None);
        if matches!(&settled, Err(e) if js_sys::Object::is(e, &blocked)) {
            // The request still goes ahead once the other tab lets go: the
            // schema closure must outlive this call (a leak, only here), and
            // the connection it opens is closed unused.
            upgrade.forget();
            let late = request.clone();
            let close = Closure::once_into_js(move || {
                if let Ok(db) = late.result() {
                    db.unchecked_into::<IdbDatabase>().close();
                }
            });
            request.set_onsuccess(Some(close.unchecked_ref()));
            request.set_onerror(None);
            return Err(unavailable(&format!(
                "IndexedDB is blocked: another tab of this site keeps an older version of the \
                 database {name:?} open; close or reload the other tabs of this site, then try again"
            )));
        }
        let opened = match settled {
            Ok(_) => request.result().map_err(|e| js::store_error(&e)),
            Err(_) => Err(match request.error() {
                Ok(Some(e)) => js::store_error(&e),
                _ => StoreError::new(StoreErrorKind::Failed, "IndexedDB could not be opened"),
            }),
        };
        request.set_onsuccess(None);
        request.set_onerror(None);
        request.set_onupgradeneeded(None);
        let db: IdbDatabase = opened?
            .dyn_into()
            .map_err(|_| unavailable("IndexedDB did not return a database"))?;
        // Another tab upgrading the schema asks us to let go.
        let on_version_change = Closure::<dyn FnMut()>::new({
            let db = db.clone();
            move || {
                db.close();
                DBS.with(|dbs| dbs.borrow_mut().remove(name));
            }
        });
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        on_version_change.forget(); // lives as long as the connection
        DBS.with(|dbs| dbs.borrow_mut().insert(name, db.clone()));
        Ok(Self { db })
    }

    /// A transaction on the object stores `names`; `mode` is `"readonly"`
    /// or `"readwrite"`.
    fn transaction(&self, names: &[&str], mode: &str) -> Result<IdbTransaction, StoreError> {
        let names: Array = names.iter().map(|n| JsValue::from_str(n)).collect();
        // Relaxed: atomicity is what the record needs; durability across a
        // power cut is not worth a disk flush per block.
        let options = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&options, &"durability".into(), &"relaxed".into());
        self.db
            .unchecked_ref::<DatabaseWithOptions>()
            .transaction_with_options(&names, mode, &options)
            .map_err(|e| js::store_error(&e))
    }

    /// Runs `query` on the object stores `names` (in that order), read-only.
    fn query<T>(
        &self,
        names: &[&str],
        query: impl FnOnce(&[IdbObjectStore]) -> Result<T, JsValue>,
    ) -> Result<T, StoreError> {
        let tx = self.transaction(names, "readonly")?;
        query(&object_stores(&tx, names)?).map_err(|e| js::store_error(&e))
    }

    /// Runs `fill` on the object stores `names` (in that order) in a
    /// read-write transaction and waits until it is committed.
    async fn change(
        &self,
        names: &[&str],
        fill: impl FnOnce(&[IdbObjectStore]) -> Result<(), JsValue>,
    ) -> Result<(), StoreError> {
        let tx = self.transaction(names, "readwrite")?;
        if let Err(e) = object_stores(&tx, names)
            .and_then(|stores| fill(&stores).map_err(|e| js::store_error(&e)))
        {
            let _ = tx.abort();
            return Err(e);
        }
        committed(&tx).await
    }

    /// The ids of every stored record, readable or not.
    pub async fn ids(&self) -> Result<Vec<String>, StoreError> {
        let request = self.query(&[RECORDS], |s| s[0].get_all_keys())?;
        let all = Array::from(&done(&request).await?);
        Ok(all.iter().filter_map(|key| key.as_string()).collect())
    }

    /// Writes `record` and deletes every piece of `id` (or the record too).
    async fn clear(&self, id: &str, record: Option<&[u8]>) -> Result<(), StoreError> {
        let range = pieces_of(id)?;
        self.change(&STORES, |stores| {
            match record {
                Some(record) => stores[0].put_with_key(&Uint8Array::from(record), &id.into())?,
                None => stores[0].delete(&id.into())?,
            };
            for lane in &stores[1..] {
                lane.delete(&range)?;
            }
            Ok(())
        })
        .await
    }

    /// The stored piece `piece` of `id`, from the first of [`lanes_of`] that holds it.
    async fn piece(&self, id: &str, piece: ByteRange) -> Result<Option<Blob>, StoreError> {
        let key = piece_key(id, piece.start);
        let names: Vec<&str> = lanes_of(piece).map(|i| LANES[i]).collect();
        let requests = self.query(&names, |stores| {
            stores
                .iter()
                .map(|store| store.get(&key))
                .collect::<Result<Vec<_>, _>>()
        })?;
        for request in requests {
            if let Some(blob) = as_blob(done(&request).await?) {
                return Ok(Some(blob));
            }
        }
        Ok(None)
    }
}

/// The lane of a piece: consecutive blocks of one size take the lanes in
/// turn, so the connections' writes rarely share one.
fn lane(piece: ByteRange) -> usize {
    (piece.start / piece.len().max(1) % LANES.len() as u64) as usize
}

/// Where a stored piece may be, in order: its lane, then version 1's one.
fn lanes_of(piece: ByteRange) -> impl Iterator<Item = usize> {
    let lane = lane(piece);
    std::iter::once(lane).chain((lane != 0).then_some(0))
}

impl Store for IdbStore {
    type Chunk = WebChunk;
    type Assembled = Blob;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let request = self.query(&[RECORDS], |s| s[0].get(&id.into()))?;
        let value = done(&request).await?;
        if value.is_undefined() {
            return Ok(None);
        }
        let bytes = value
            .dyn_into::<Uint8Array>()
            .map_err(|_| corrupt("a stored record is not bytes"))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.change(&[RECORDS], |s| {
            s[0].put_with_key(&Uint8Array::from(record), &id.into())?;
            Ok(())
        })
        .await
    }

    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<WebChunk>,
    ) -> Result<(), StoreError> {
        let names = [LANES[lane(piece)]];
        let put = |value: JsValue| {
            self.change(&names, move |s| {
                s[0].put_with_key(&value, &piece_key(id, piece.start))?;
                Ok(())
            })
        };
        if BLOB_VALUES.get() != Some(false) {
            let blob = WebChunk::blob_of(&chunks).map_err(|e| js::store_error(&e))?;
            match put(blob.into()).await {
                Ok(()) => {
                    BLOB_VALUES.set(Some(true));
                    return Ok(());
                }
                // Nothing was written: the same commit is made with bytes
                // (also when a concurrent write found Blobs refused first).
                Err(e) if e.kind == StoreErrorKind::Failed && BLOB_VALUES.get() != Some(true) => {
                    BLOB_VALUES.set(Some(false));
                }
                Err(e) => return Err(e),
            }
        }
        let bytes = WebChunk::arrays(&chunks)
            .await
            .map_err(|e| js::store_error(&e))?;
        put(js::concat(&bytes).into()).await
    }

    /// Pieces are Blob values: a whole body the browser kept is stored as it is.
    fn takes_whole_bodies(&self) -> bool {
        BLOB_VALUES.get() != Some(false)
    }

    /// Each write is a transaction on its piece's lane alone.
    fn concurrent_writes(&self) -> bool {
        true
    }

    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.clear(id, Some(record)).await
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.clear(id, None).await
    }

    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let request = self.query(&[RECORDS], |s| s[0].get_all())?;
        let all = Array::from(&done(&request).await?);
        Ok(all
            .iter()
            .filter_map(|v| v.dyn_into::<Uint8Array>().ok())
            .map(|bytes| bytes.to_vec())
            .collect())
    }

    async fn read(
        &self,
        id: &str,
        piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        let blob = self
            .piece(id, piece)
            .await?
            .ok_or_else(|| corrupt(format!("the piece at byte {} is missing", piece.start)))?;
        let (from, to) = (part.start - piece.start, part.end - piece.start);
        if to as f64 > blob.size() {
            return Err(corrupt(format!(
                "the piece at byte {} is short",
                piece.start
            )));
        }
        js::blob_bytes(&blob, from, to).await
    }

    async fn assemble(&self, id: &str, wanted: &[ByteRange]) -> Result<Blob, StoreError> {
        let range = pieces_of(id)?;
        let requests = self.query(&LANES, |lanes| {
            lanes
                .iter()
                .map(|lane| {
                    Ok((
                        lane.get_all_keys_with_key(&range)?,
                        lane.get_all_with_key(&range)?,
                    ))
                })
                .collect::<Result<Vec<_>, JsValue>>()
        })?;
        // Each lane's pieces by offset (IndexedDB returns them in key order).
        // Entries no record claims (left by an interrupted write) are ignored.
        let mut lanes: Vec<Vec<(u64, Blob)>> = Vec::with_capacity(LANES.len());
        for (keys, values) in requests {
            let keys = Array::from(&done(&keys).await?);
            let values = Array::from(&done(&values).await?);
            lanes.push(
                keys.iter()
                    .zip(values.iter())
                    .filter_map(|(key, value)| {
                        let offset = Array::from(&key).get(1).as_f64()?;
                        Some((offset as u64, as_blob(value)?))
                    })
                    .collect(),
            );
        }
        let find = |lane: &[(u64, Blob)], offset| {
            lane.binary_search_by_key(&offset, |(at, _)| *at)
                .ok()
                .map(|i| lane[i].1.clone())
        };
        let parts = Array::new();
        for piece in wanted {
            let blob = lanes_of(*piece)
                .find_map(|i| find(&lanes[i], piece.start))
                .ok_or_else(|| corrupt(format!("the piece at byte {} is missing", piece.start)))?;
            let held = blob.size() as u64;
            if held != piece.len() {
                return Err(corrupt(format!(
                    "the piece at byte {} holds {held} bytes, not {}",
                    piece.start,
                    piece.len()
                )));
            }
            parts.push(&blob);
        }
        Blob::new_with_blob_sequence(&parts).map_err(|e| js::store_error(&e))
    }
}

/// A stored piece as a Blob, whether it was stored as one or as bytes.
fn as_blob(value: JsValue) -> Option<Blob> {
    if value.is_instance_of::<Uint8Array>() {
        return Blob::new_with_u8_array_sequence(&Array::of1(&value)).ok();
    }
    value.dyn_into::<Blob>().ok()
}

/// The chunks as one `Uint8Array`.
fn create_schema(request: &IdbOpenDbRequest) {
    let Ok(db) = request.result().and_then(|db| db.dyn_into::<IdbDatabase>()) else {
        return;
    };
    for name in STORES {
        if !db.object_store_names().contains(name) {
            // A failure here aborts the upgrade; `open` then reports it.
            let _ = db.create_object_store(name);
        }
    }
}

fn object_stores(tx: &IdbTransaction, names: &[&str]) -> Result<Vec<IdbObjectStore>, StoreError> {
    names
        .iter()
        .map(|name| tx.object_store(name).map_err(|e| js::store_error(&e)))
        .collect()
}

/// Offsets are JS numbers: exact up to 2^53, far past any file.
fn piece_key(id: &str, offset: u64) -> JsValue {
    Array::of2(&id.into(), &(offset as f64).into()).into()
}

/// Every piece key of `id`: `[id, 0]` to `[id, Infinity]`.
fn pieces_of(id: &str) -> Result<IdbKeyRange, StoreError> {
    let lower = Array::of2(&id.into(), &0.into());
    let upper = Array::of2(&id.into(), &f64::INFINITY.into());
    IdbKeyRange::bound(&lower, &upper).map_err(|e| js::store_error(&e))
}

/// The result of a request once it succeeded.
async fn done(request: &IdbRequest) -> Result<JsValue, StoreError> {
    let settled = js::event(|resolve, reject| {
        request.set_onsuccess(Some(resolve));
        request.set_onerror(Some(reject));
    })
    .await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match settled {
        Ok(_) => request.result().map_err(|e| js::store_error(&e)),
        Err(_) => Err(match request.error() {
            Ok(Some(e)) => js::store_error(&e),
            _ => StoreError::new(StoreErrorKind::Failed, "an IndexedDB request failed"),
        }),
    }
}

/// Waits until a read-write transaction is committed (or reports why not).
/// A failed request aborts its transaction, and by `abort` the transaction's
/// `error` names the cause (`QuotaExceededError`…); at the earlier `error`
/// event it may still be null.
async fn committed(tx: &IdbTransaction) -> Result<(), StoreError> {
    let settled = js::event(|resolve, reject| {
        tx.set_oncomplete(Some(resolve));
        tx.set_onabort(Some(reject));
    })
    .await;
    match settled {
        Ok(_) => Ok(()),
        Err(_) => Err(match tx.error() {
            Some(e) => js::store_error(&e),
            None => StoreError::new(StoreErrorKind::Failed, "an IndexedDB transaction aborted"),
        }),
    }
}

fn unavailable(message: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Unavailable, message)
}

fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, message)
}
