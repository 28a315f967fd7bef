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
    getRecord(id) { return records.get(id); },
    async putRecord(id, record) { records.set(id, record.slice()); },
    records() { return [...records.values()]; },
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
"#)]
extern "C" {
    #[wasm_bindgen(js_name = mapStore)]
    fn map_store(name: &str) -> JsValue;
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
