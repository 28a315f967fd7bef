//! A custom store backed by a plain JS `Map`, used by the driver exactly as
//! the built-in stores are: complete, resume, list, remove, quota.

use super::*;
use resumable_fetch::api::Download;

#[wasm_bindgen(inline_js = r#"
/** A CustomStore over Maps; `capacity` (bytes of files) makes it fill up. */
export function mapStore(name) {
  const records = new Map();
  const files = new Map();
  const store = {
    name,
    capacity: undefined,
    writes: 0,
    used() {
      let bytes = 0;
      for (const file of files.values()) bytes += file.length;
      return bytes;
    },
    hasFile(id) { return files.has(id); },
    /** A file lost while its record stays (deleted by hand, a lost write). */
    dropFile(id) { files.delete(id); },
    truncate(id, length) {
      const file = files.get(id);
      if (file) files.set(id, file.slice(0, length));
    },
    /** How getRecord() and records() hand records back: see `recordAs`. */
    recordAs: 'uint8',
    getRecord(id) { return recordAs(records.get(id), store.recordAs); },
    async putRecord(id, record) { records.set(id, record.slice()); },
    records() { return [...records.values()].map((r) => recordAs(r, store.recordAs)); },
    async write(id, offset, data) {
      let file = files.get(id) ?? new Uint8Array(0);
      const end = offset + data.length;
      if (end > file.length) {
        if (store.capacity !== undefined && store.used() + end - file.length > store.capacity) {
          throw new DOMException('the test store is full', 'QuotaExceededError');
        }
        const grown = new Uint8Array(end);
        grown.set(file);
        file = grown;
        files.set(id, file);
      }
      file.set(data, offset);
      store.writes += 1;
    },
    async read(id, offset, length) {
      return (files.get(id) ?? new Uint8Array(0)).slice(offset, offset + length);
    },
    async delete(id) {
      records.delete(id);
      files.delete(id);
    },
  };
  return store;
}

/** A record's bytes as another BufferSource, or as something that is none. */
function recordAs(record, kind) {
  if (record === undefined) return record;
  switch (kind) {
    case 'buffer': return record.slice().buffer;
    case 'dataview': {
      const padded = new Uint8Array(record.length + 3);
      padded.set(record, 3);
      return new DataView(padded.buffer, 3, record.length);
    }
    case 'string': return 'not a record';
    default: return record;
  }
}

/** Gives `store` the optional size(id): the length of its file, or null. */
export function withSize(store) {
  store.size = async (id) => (store.hasFile(id) ? (await store.read(id, 0, 2 ** 40)).length : null);
}

/**
 * Gives `store` the optional lock(id) hook, as a file store shared by
 * processes has: `lockMode` 'free' (granted), 'other' (another process holds
 * it: null), 'throw', or 'bad-release' (granted; its release rejects).
 */
export function withLock(store) {
  store.lockMode = 'free';
  store.lockCalls = 0;
  store.releases = 0;
  store.lock = async (id) => {
    store.lockCalls += 1;
    if (store.lockMode === 'throw') throw new Error('the lock file is unreadable');
    if (store.lockMode === 'other') return null;
    return async () => {
      store.releases += 1;
      if (store.lockMode === 'bad-release') throw new Error('the lock file is gone');
    };
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = mapStore)]
    fn map_store(name: &str) -> JsValue;
    #[wasm_bindgen(js_name = withSize)]
    fn with_size(store: &JsValue);
    #[wasm_bindgen(js_name = withLock)]
    fn with_lock(store: &JsValue);
}

fn with_store(store: &JsValue, block: f64, connections: u32) -> JsValue {
    let o = opts("memory", block, connections, &[]);
    Reflect::set(&o, &"store".into(), store).unwrap();
    o
}

fn selection(store: &JsValue) -> Option<JsValue> {
    Some(options(&[("store", store.clone())]))
}

async fn listed_in(store: &JsValue) -> Vec<JsValue> {
    let all = JsFuture::from(Download::list(selection(store)))
        .await
        .unwrap();
    Array::from(&all).iter().collect()
}

/// A download into the Map: paused part-way, resumed by a second `Download`
/// (as after a reload) fetching only what is missing, listed, then removed.
pub async fn a_map_backed_store_downloads_and_resumes() {
    let store = map_store("map");
    let name = unique("custom");
    let size = 6.0 * MIB;
    configure(
        &name,
        &format!("size={size}&seed=31&throttle={}", 4.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let first = open(&url, with_store(&store, MIB, 2)).await.unwrap();
    assert_eq!(text(&first, "store"), "map");
    let run = start(&first);
    wait_for_received(&first, 2.0 * MIB, 30).await;
    call(&first, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    let stored = field(&first, "received");
    assert!(stored >= 2.0 * MIB && stored < size, "stored {stored}");
    assert!(
        listed(&url).await.is_none(),
        "the built-in stores hold nothing of it"
    );

    clear_log(&name).await;
    let again = open(&url, with_store(&store, MIB, 2)).await.unwrap();
    assert_eq!(
        field(&again, "received"),
        stored,
        "known before any request"
    );
    let state = JsFuture::from(start(&again)).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let fetched: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(
        fetched,
        size - stored,
        "only the missing bytes were fetched"
    );
    let blob: web_sys::Blob = call(&again, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);

    let infos = listed_in(&store).await;
    assert_eq!(infos.len(), 1);
    assert_eq!(text(&infos[0], "id"), url);
    assert_eq!(text(&infos[0], "store"), "map");
    assert_eq!(text(&infos[0], "state"), "complete");
    assert_eq!(field(&infos[0], "received"), size);

    JsFuture::from(Download::remove(url.clone(), selection(&store)))
        .await
        .unwrap();
    assert!(listed_in(&store).await.is_empty());
    assert_eq!(call(&store, "used", &[]).await.unwrap().as_f64(), Some(0.0));
}

/// A store that fills up: `QUOTA_EXCEEDED`, every block written so far kept,
/// and once there is room, `start()` continues from there.
pub async fn a_full_custom_store_pauses_with_quota_exceeded() {
    let store = map_store("small");
    Reflect::set(&store, &"capacity".into(), &(3.0 * MIB).into()).unwrap();
    let name = unique("quota");
    let size = 8.0 * MIB;
    configure(&name, &format!("size={size}&seed=32")).await;
    let url = file_url(&name);
    let dl = open(&url, with_store(&store, MIB, 1)).await.unwrap();
    let error = JsFuture::from(start(&dl)).await.unwrap_err();
    assert_eq!(error_code(&error), "QUOTA_EXCEEDED", "{error:?}");
    assert_eq!(text(&dl, "state"), "paused");
    let kept = field(&dl, "received");
    assert_eq!(kept, 3.0 * MIB, "every block that fit is kept");
    assert_eq!(field(&listed_in(&store).await[0], "received"), kept);

    Reflect::set(&store, &"capacity".into(), &JsValue::UNDEFINED).unwrap();
    clear_log(&name).await;
    let state = JsFuture::from(start(&dl)).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let fetched: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(fetched, size - kept, "it continued where it stopped");
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    call(&dl, "cancel", &[]).await.unwrap();
    assert_eq!(
        call(&store, "hasFile", &[url.into()]).await.unwrap(),
        false,
        "cancel() deleted the file"
    );
}

/// Mistakes in a custom store are `DownloadError`s that say what is wrong.
pub async fn a_broken_custom_store_is_reported() {
    let store = map_store("broken");
    Reflect::set(&store, &"write".into(), &JsValue::UNDEFINED).unwrap();
    let error = open(&file_url("any"), with_store(&store, MIB, 1))
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), "INVALID_ARGUMENT");
    assert!(text(&error, "message").contains("`write` is missing"));

    // A store whose read() returns the wrong length: blob() fails, never pads.
    let store = map_store("short");
    let name = unique("short-read");
    configure(&name, &format!("size={MIB}&seed=33")).await;
    let dl = open(&file_url(&name), with_store(&store, MIB, 1))
        .await
        .unwrap();
    JsFuture::from(start(&dl)).await.unwrap();
    let short = Closure::<dyn Fn() -> JsValue>::new(|| Uint8Array::new_with_length(10).into());
    Reflect::set(&store, &"read".into(), short.as_ref()).unwrap();
    let error = call(&dl, "blob", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "STORAGE_CORRUPT");
    assert!(text(&error, "message").contains("10 bytes"));
}

async fn prune(fields: &[(&str, JsValue)]) -> Result<Vec<JsValue>, JsValue> {
    let removed = JsFuture::from(Download::prune(options(fields))).await?;
    Ok(Array::from(&removed).iter().collect())
}

/// `Download.prune()` removes partial downloads left alone too long, and
/// keeps complete ones and the ones running.
pub async fn prune_removes_stale_partial_downloads() {
    let store = map_store("prune");
    let partial = unique("stale");
    let complete = unique("done");
    let running = unique("running");
    for (name, throttle) in [(&partial, 4.0 * MIB), (&complete, 0.0), (&running, MIB)] {
        configure(
            name,
            &format!("size={}&seed=35&throttle={throttle}", 4.0 * MIB),
        )
        .await;
    }
    let paused = open(&file_url(&partial), with_store(&store, MIB, 1))
        .await
        .unwrap();
    let run = start(&paused);
    wait_for_received(&paused, MIB, 30).await;
    call(&paused, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    let done = open(&file_url(&complete), with_store(&store, MIB, 2))
        .await
        .unwrap();
    call(&done, "start", &[]).await.unwrap();
    for info in listed_in(&store).await {
        let (created, updated) = (field(&info, "createdAt"), field(&info, "updatedAt"));
        assert!(created > 0.0 && created <= updated, "{created} {updated}");
    }

    let hour = JsValue::from(3_600_000);
    assert!(prune(&[("olderThan", hour), ("store", store.clone())])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(listed_in(&store).await.len(), 2);

    let busy = open(&file_url(&running), with_store(&store, MIB, 1))
        .await
        .unwrap();
    let busy_run = start(&busy);
    wait_for_received(&busy, MIB, 30).await;
    let removed = prune(&[("olderThan", 0.into()), ("store", store.clone())])
        .await
        .unwrap();
    let ids: Vec<String> = removed.iter().map(|info| text(info, "id")).collect();
    assert_eq!(
        ids,
        [file_url(&partial)],
        "neither the complete nor the running one"
    );
    assert_eq!(text(&removed[0], "state"), "partial");
    assert_eq!(
        call(&store, "hasFile", &[file_url(&partial).into()])
            .await
            .unwrap(),
        false
    );
    call(&busy, "pause", &[]).await.unwrap();
    JsFuture::from(busy_run).await.unwrap();
    let left: Vec<String> = listed_in(&store)
        .await
        .iter()
        .map(|i| text(i, "id"))
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&file_url(&complete)) && left.contains(&file_url(&running)));

    let missing = prune(&[("store", store.clone())]).await.unwrap_err();
    assert_eq!(error_code(&missing), "INVALID_ARGUMENT");
    assert!(text(&missing, "message").contains("olderThan"));
    let typo = prune(&[("olderThen", 0.into())]).await.unwrap_err();
    assert!(text(&typo, "message").contains("olderThen"));
}

async fn remove_from(store: &JsValue, id: &str) -> Result<JsValue, JsValue> {
    JsFuture::from(Download::remove(id.to_string(), selection(store))).await
}

fn set(obj: &JsValue, key: &str, value: impl Into<JsValue>) {
    Reflect::set(obj, &key.into(), &value.into()).unwrap();
}

/// One writer per download in one process, without Web Locks: a second
/// object for the same id can neither `cancel()` nor `Download.remove()` it
/// under the running one (which would then complete with holes).
pub async fn a_second_object_cannot_cancel_or_remove_a_running_download() {
    let store = map_store("two-objects");
    let name = unique("two-objects");
    let size = 4.0 * MIB;
    configure(
        &name,
        &format!("size={size}&seed=41&throttle={}", 2.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let first = open(&url, with_store(&store, MIB, 2)).await.unwrap();
    let second = open(&url, with_store(&store, MIB, 2)).await.unwrap();
    let run = start(&first);
    wait_for_received(&first, MIB, 30).await;
    let error = call(&second, "cancel", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "LOCKED", "{error:?}");
    assert!(text(&error, "message").contains(&url));
    let error = remove_from(&store, &url).await.unwrap_err();
    assert_eq!(error_code(&error), "LOCKED", "{error:?}");
    assert_eq!(
        JsFuture::from(run).await.unwrap().as_string().as_deref(),
        Some("complete")
    );
    let blob: web_sys::Blob = call(&first, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    // Once it has stopped, the second object may delete it.
    call(&second, "cancel", &[]).await.unwrap();
    assert_eq!(call(&store, "hasFile", &[url.into()]).await.unwrap(), false);
}

/// A custom store's `lock(id)` hook is part of the one-writer lock: null
/// (another process) is LOCKED for every writer, a throw is STORAGE_FAILED,
/// and every lock taken is released, a release that rejects only logged.
pub async fn a_custom_stores_lock_hook_is_the_cross_process_lock() {
    let store = map_store("locking");
    with_lock(&store);
    let name = unique("store-lock");
    configure(&name, &format!("size={}&seed=42", 2.0 * MIB)).await;
    let url = file_url(&name);
    let dl = open(&url, with_store(&store, MIB, 2)).await.unwrap();

    set(&store, "lockMode", "other");
    for error in [
        call(&dl, "start", &[]).await.unwrap_err(),
        call(&dl, "cancel", &[]).await.unwrap_err(),
        remove_from(&store, &url).await.unwrap_err(),
    ] {
        assert_eq!(error_code(&error), "LOCKED", "{error:?}");
    }
    assert!(log(&name).await.is_empty(), "nothing was fetched");
    assert_ne!(text(&dl, "state"), "running");

    set(&store, "lockMode", "throw");
    let error = call(&dl, "start", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "STORAGE_FAILED", "{error:?}");
    assert!(text(&error, "message").contains("the lock file is unreadable"));

    set(&store, "lockMode", "free");
    let calls = field(&store, "lockCalls");
    let state = call(&dl, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    assert_eq!(field(&store, "lockCalls"), calls + 1.0, "the run took it");
    assert_eq!(field(&store, "releases"), 1.0, "and released it");
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);

    // A release that rejects is logged; nothing else changes.
    set(&store, "lockMode", "bad-release");
    call(&dl, "cancel", &[]).await.unwrap();
    assert_eq!(field(&store, "releases"), 2.0);
    assert_eq!(
        call(&store, "hasFile", &[url.clone().into()])
            .await
            .unwrap(),
        false
    );
    set(&store, "lockMode", "free");
    remove_from(&store, &url).await.unwrap();
    assert_eq!(field(&store, "releases"), 3.0);
}

/// A record whose data is gone (or shorter) is trusted no further than the
/// data: read back piece by piece, or the store's `size()` where it has one.
/// The download fetches what is missing and is byte-identical.
pub async fn a_record_that_outlived_its_data_is_downloaded_again() {
    let store = map_store("outlived");
    let name = unique("outlived");
    let size = 3.0 * MIB;
    configure(&name, &format!("size={size}&seed=43")).await;
    let url = file_url(&name);
    let dl = open(&url, with_store(&store, MIB, 2)).await.unwrap();
    call(&dl, "start", &[]).await.unwrap();

    // The file is lost, its record stays: no size(), so read back.
    call(&store, "dropFile", &[url.clone().into()])
        .await
        .unwrap();
    let again = open(&url, with_store(&store, MIB, 2)).await.unwrap();
    assert_eq!(field(&again, "received"), 0.0);
    assert_ne!(text(&again, "state"), "complete");
    clear_log(&name).await;
    let state = call(&again, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let fetched: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(fetched, size, "everything was fetched again");
    let blob: web_sys::Blob = call(&again, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);

    // A file cut short, with size(): trusted exactly that far.
    with_size(&store);
    let kept = 2.5 * MIB;
    call(&store, "truncate", &[url.clone().into(), kept.into()])
        .await
        .unwrap();
    let third = open(&url, with_store(&store, MIB, 2)).await.unwrap();
    assert_eq!(field(&third, "received"), kept);
    let state = call(&third, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let blob: web_sys::Blob = call(&third, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    call(&third, "cancel", &[]).await.unwrap();
}

/// A record handed back as any BufferSource is read; anything else is
/// INVALID_ARGUMENT naming the method, and nothing is deleted.
pub async fn records_may_be_any_buffer_source_and_nothing_else() {
    let store = map_store("buffers");
    let name = unique("buffers");
    let size = MIB;
    configure(&name, &format!("size={size}&seed=44")).await;
    let url = file_url(&name);
    let dl = open(&url, with_store(&store, MIB, 1)).await.unwrap();
    call(&dl, "start", &[]).await.unwrap();

    for kind in ["buffer", "dataview"] {
        set(&store, "recordAs", kind);
        let again = open(&url, with_store(&store, MIB, 1)).await.unwrap();
        assert_eq!(text(&again, "state"), "complete", "{kind}");
        assert_eq!(field(&again, "received"), size, "{kind}");
        let infos = listed_in(&store).await;
        assert_eq!(infos.len(), 1, "{kind}");
        assert_eq!(field(&infos[0], "received"), size, "{kind}");
    }

    set(&store, "recordAs", "string");
    let error = open(&url, with_store(&store, MIB, 1)).await.unwrap_err();
    assert_eq!(error_code(&error), "INVALID_ARGUMENT", "{error:?}");
    assert!(
        text(&error, "message")
            .contains("getRecord must return a Uint8Array, ArrayBuffer, or null"),
        "{}",
        text(&error, "message")
    );
    let error = JsFuture::from(Download::list(selection(&store)))
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), "INVALID_ARGUMENT", "{error:?}");
    assert!(text(&error, "message").contains("records() must return"));
    assert_eq!(
        call(&store, "hasFile", &[url.clone().into()])
            .await
            .unwrap(),
        true,
        "nothing was deleted"
    );

    set(&store, "recordAs", "uint8");
    let kept = open(&url, with_store(&store, MIB, 1)).await.unwrap();
    assert_eq!(text(&kept, "state"), "complete");
    let blob: web_sys::Blob = call(&kept, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    call(&kept, "cancel", &[]).await.unwrap();
}

/// `blob()` of an object whose download another object re-downloaded is the
/// new file or an error with a code, never the old record over new bytes;
/// while the other one writes, it is LOCKED (the record and the pieces it
/// reads are one view).
pub async fn a_stale_objects_blob_is_never_a_mix() {
    let store = map_store("stale");
    let name = unique("stale");
    configure(&name, &format!("size={}&seed=45", 2.0 * MIB)).await;
    let url = file_url(&name);
    let stale = open(&url, with_store(&store, MIB, 1)).await.unwrap();
    call(&stale, "start", &[]).await.unwrap();

    // Another object deletes it and downloads the file as it is now.
    let fresh = open(&url, with_store(&store, MIB, 1)).await.unwrap();
    call(&fresh, "cancel", &[]).await.unwrap();
    configure(
        &name,
        &format!("size={}&seed=46&throttle={}", 4.0 * MIB, 2.0 * MIB),
    )
    .await;
    let run = start(&fresh);
    wait_for_received(&fresh, 2.5 * MIB, 30).await;
    let error = call(&stale, "blob", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "LOCKED", "{error:?}");
    JsFuture::from(run).await.unwrap();

    // Once it is done, the stale object's blob() is the new file: the
    // record is read again under the lock, never the old one over new bytes.
    match call(&stale, "blob", &[]).await {
        Ok(blob) => {
            let blob: web_sys::Blob = blob.into();
            assert_eq!(
                sha256_of(&blob).await,
                server_sha256(&name).await,
                "the new file, never a mix"
            );
        }
        Err(error) => assert!(!error_code(&error).is_empty()),
    }
    call(&fresh, "cancel", &[]).await.unwrap();
}

/// `Download.prune()` asks a custom store to sweep what no record claims,
/// with its `olderThan`, never while a download is written to here; a sweep
/// that throws is the store's failure.
pub async fn prune_asks_a_custom_store_to_sweep_when_no_download_runs() {
    use resumable_fetch::web::lock::DownloadLock;
    let store = map_store("sweep");
    let sweeps = Array::new();
    Reflect::set(&store, &"sweeps".into(), &sweeps).unwrap();
    let sweep = Function::new_with_args("olderThan", "this.sweeps.push(olderThan)");
    Reflect::set(&store, &"sweep".into(), &sweep).unwrap();
    let age = || JsValue::from(5);
    {
        let _writer = DownloadLock::take(&unique("sweep-writer"), &[])
            .await
            .unwrap();
        prune(&[("olderThan", age()), ("store", store.clone())])
            .await
            .unwrap();
        assert_eq!(sweeps.length(), 0, "not while a download is written to");
    }
    prune(&[("olderThan", age()), ("store", store.clone())])
        .await
        .unwrap();
    assert_eq!(sweeps.to_vec(), [age()], "once, with olderThan");

    let broken = Function::new_no_args("throw new Error('the disk is gone')");
    Reflect::set(&store, &"sweep".into(), &broken).unwrap();
    let error = prune(&[("olderThan", age()), ("store", store.clone())])
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), "STORAGE_FAILED");
    assert!(text(&error, "message").contains("the disk is gone"));
}

/// The custom-store adapter over a `Map` keeps the store contract.
pub async fn the_custom_store_adapter_keeps_the_store_contract() {
    let map = map_store("contract");
    let store = resumable_fetch::web::custom::CustomStore::new(map.clone()).unwrap();
    let lose = move |id: &str| {
        let (map, id) = (map.clone(), JsValue::from(id));
        Box::pin(async move { drop(call(&map, "dropFile", &[id]).await) })
            as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
    };
    super::store_contract::keeps_the_contract(&store, "custom", Some(&lose)).await;
}
