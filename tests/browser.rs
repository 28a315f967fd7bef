//! The JS API in a real browser (headless Chromium from `make test`), against
//! the fault server on another origin: fetch with CORS, and IndexedDB.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{conformance, custom_store, scenarios};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MIB: f64 = 1024.0 * 1024.0;

// The shared scenarios with `store: 'indexeddb'`, and the custom-store ones
// (each brings its own store).
common::scenario_tests! {
    downloads_64_mib_into_indexeddb_byte_for_byte:
        scenarios::downloads_byte_for_byte("indexeddb", 64.0 * MIB);
    resumes_after_an_interruption_fetching_at_most_one_block_per_connection:
        scenarios::resumes_after_an_interruption("indexeddb");
    scenarios::pause_then_start_again("indexeddb");
    scenarios::a_server_that_ignores_range("indexeddb");
    scenarios::a_changed_etag_between_sessions("indexeddb");
    scenarios::rejects_bad_input_with_download_errors("indexeddb");
    scenarios::a_second_writer_for_the_same_id_is_locked("indexeddb");
    scenarios::pause_or_cancel_at_once_after_start("indexeddb");
    scenarios::option_getters_and_proxies_are_invalid_arguments("indexeddb");

    // ---- HTTP conformance (docs/CONFORMANCE.md) ----
    conformance::ranges_ignored_on_resume("indexeddb");
    conformance::shifted_and_short_206s_are_completed("indexeddb");
    conformance::an_unknown_total_completes_at_the_416("indexeddb");
    conformance::rangeless_and_multipart_206s_are_refused("indexeddb", true);
    conformance::a_url_fetch_refuses_is_an_invalid_argument("indexeddb");
    // Chromium refuses every compressed 206 itself; Firefox delivers it decoded.
    conformance::a_compressed_206_is_refused("indexeddb", common::engine() == "chromium");
    conformance::an_empty_file_completes("indexeddb");
    conformance::a_content_length_other_than_its_content_range_is_refused("indexeddb");
    conformance::unverifiable_resumes_are_checked_against_stored_bytes("indexeddb");
    conformance::a_file_changed_mid_download_restarts_once("indexeddb");
    conformance::redirects_keep_working("indexeddb");
    conformance::an_expired_signed_url_fails_and_set_url_continues("indexeddb");
    conformance::errors_and_stalls_are_retried_then_reported("indexeddb");
    conformance::abandoned_bodies_release_their_connections("indexeddb");
    conformance::connections_bound_the_requests_in_flight("indexeddb");
    conformance::custom_headers_are_sent("indexeddb");
    // The fault server is another origin: If-Range would need a preflight.
    conformance::if_range_only_without_a_preflight("indexeddb", false);
    conformance::a_changed_last_modified_or_length_restarts("indexeddb");
    conformance::integrity_and_repr_digest_are_checked("indexeddb");

    custom_store::a_map_backed_store_downloads_and_resumes();
    custom_store::a_full_custom_store_pauses_with_quota_exceeded();
    custom_store::a_broken_custom_store_is_reported();
    custom_store::prune_removes_stale_partial_downloads();
    custom_store::a_second_object_cannot_cancel_or_remove_a_running_download();
    custom_store::a_custom_stores_lock_hook_is_the_cross_process_lock();
    custom_store::a_record_that_outlived_its_data_is_downloaded_again();
    custom_store::records_may_be_any_buffer_source_and_nothing_else();
    custom_store::a_stale_objects_blob_is_never_a_mix();
    custom_store::prune_asks_a_custom_store_to_sweep_when_no_download_runs();
    custom_store::the_custom_store_adapter_keeps_the_store_contract();
}

#[wasm_bindgen_test]
async fn auto_picks_indexeddb() {
    let name = common::unique("auto");
    common::configure(&name, "size=1000").await;
    let dl = common::open(&common::file_url(&name), wasm_bindgen::JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(common::text(&dl, "store"), "indexeddb");
}

#[wasm_bindgen_test]
async fn a_content_range_hidden_by_cors_names_the_header_to_expose() {
    let name = common::unique("hidden");
    common::configure(&name, "size=100000&expose=").await;
    let dl = common::open(&common::file_url(&name), wasm_bindgen::JsValue::UNDEFINED)
        .await
        .unwrap();
    let error = common::call(&dl, "start", &[]).await.unwrap_err();
    assert_eq!(common::error_code(&error), "CORS_HEADERS_HIDDEN");
    let message = common::text(&error, "message");
    assert!(
        message.contains("Access-Control-Expose-Headers: Content-Range, ETag"),
        "{message}"
    );
}

mod browser_only {
    use super::common::*;
    use super::MIB;
    use wasm_bindgen::JsValue;
    use wasm_bindgen_futures::JsFuture;
    use wasm_bindgen_test::*;

    fn dispatch(event: &str) {
        let window = web_sys::window().unwrap();
        let event = web_sys::Event::new(event).unwrap();
        window.dispatch_event(&event).unwrap();
    }

    #[wasm_bindgen_test]
    async fn offline_suspends_and_online_resumes() {
        let name = unique("offline");
        configure(
            &name,
            &format!("size={}&seed=28&throttle={}", 16.0 * MIB, MIB),
        )
        .await;
        let dl = open(
            &file_url(&name),
            options(&[("blockSize", MIB.into()), ("connections", 2.into())]),
        )
        .await
        .unwrap();
        let start: js_sys::Function = js_sys::Reflect::get(&dl, &"start".into()).unwrap().into();
        let run: js_sys::Promise = start.call0(&dl).unwrap().into();
        wait_for_received(&dl, MIB, 30).await;
        dispatch("offline");
        assert_eq!(text(&dl, "state"), "offline");
        sleep(300).await; // what was in flight is stored
        let requests = log(&name).await.len();
        let stored = field(&dl, "received");
        sleep(1000).await;
        assert_eq!(log(&name).await.len(), requests, "no request while offline");
        assert_eq!(field(&dl, "received"), stored);
        configure(&name, "throttle=0").await;
        dispatch("online");
        assert_eq!(text(&dl, "state"), "running");
        let state = JsFuture::from(run).await.unwrap();
        assert_eq!(state.as_string().as_deref(), Some("complete"));
        let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
        assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
        call(&dl, "cancel", &[]).await.unwrap();
    }

    /// Another tab (here: the page itself, from JS) holds the download's Web
    /// Lock: neither a run nor a removal may write it.
    #[wasm_bindgen_test]
    async fn another_tab_holding_the_lock_gets_locked() {
        let name = unique("web-lock");
        configure(&name, &format!("size={}&seed=33", MIB)).await;
        let url = file_url(&name);
        let mut release = None;
        let held = js_sys::Promise::new(&mut |resolve, _| release = Some(resolve));
        let holder = wasm_bindgen::closure::Closure::once_into_js(move |_lock: JsValue| held);
        let navigator = web_sys::window().unwrap().navigator();
        let locks = js_sys::Reflect::get(&navigator, &"locks".into()).unwrap();
        let request: js_sys::Function = js_sys::Reflect::get(&locks, &"request".into())
            .unwrap()
            .into();
        let taken = request
            .call2(&locks, &format!("resumable-fetch:{url}").into(), &holder)
            .unwrap();

        let dl = open(&url, JsValue::UNDEFINED).await.unwrap();
        let error = call(&dl, "start", &[]).await.unwrap_err();
        assert_eq!(error_code(&error), "LOCKED");
        assert!(text(&error, "message").contains("another tab or worker"));
        assert_ne!(text(&dl, "state"), "running");
        let removal = JsFuture::from(resumable_fetch::api::Download::remove(url.clone(), None))
            .await
            .unwrap_err();
        assert_eq!(error_code(&removal), "LOCKED");
        assert!(log(&name).await.is_empty(), "nothing was fetched");

        release.unwrap().call0(&JsValue::NULL).unwrap();
        JsFuture::from(js_sys::Promise::from(taken)).await.unwrap();
        let state = call(&dl, "start", &[]).await.unwrap();
        assert_eq!(state.as_string().as_deref(), Some("complete"));
        call(&dl, "cancel", &[]).await.unwrap();
    }

    #[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
    export function spyOnPersist() {
      const storage = globalThis.navigator?.storage;
      if (typeof storage?.persist !== 'function') return null;
      const original = storage.persist;
      const spy = { calls: 0, restore() { delete storage.persist; } };
      storage.persist = function () { spy.calls += 1; return original.call(storage); };
      return spy;
    }
    "#)]
    extern "C" {
        #[wasm_bindgen(js_name = spyOnPersist)]
        fn spy_on_persist() -> JsValue;
    }

    #[wasm_bindgen_test]
    async fn persistence_is_asked_at_the_first_start() {
        let spy = spy_on_persist();
        if spy.is_null() {
            console_log!("SKIPPED persistence_is_asked_at_the_first_start in {}: no navigator.storage.persist", engine());
            return;
        }
        let calls = || field(&spy, "calls");
        let name = unique("persist");
        configure(&name, &format!("size={}&seed=34", MIB)).await;
        let url = file_url(&name);
        let in_memory = open(&url, opts("memory", MIB, 1, &[])).await.unwrap();
        call(&in_memory, "start", &[]).await.unwrap();
        assert_eq!(calls(), 0.0, "memory is not persistent storage");
        let dl = open(&url, opts("indexeddb", MIB, 1, &[])).await.unwrap();
        let run = start(&dl);
        assert_eq!(calls(), 1.0, "asked when the download starts");
        JsFuture::from(run).await.unwrap();
        call(&dl, "start", &[]).await.unwrap();
        assert_eq!(calls(), 1.0, "asked once");
        call(&spy, "restore", &[]).await.unwrap();
        call(&dl, "cancel", &[]).await.unwrap();
        call(&in_memory, "cancel", &[]).await.unwrap();
    }

    /// OPFS is written in place from dedicated workers only: on a page,
    /// `start()` says so before any request.
    #[wasm_bindgen_test]
    async fn opfs_on_a_page_is_refused_before_any_request() {
        let name = unique("opfs-page");
        configure(&name, &format!("size={}&seed=37", MIB)).await;
        let error = match open(&file_url(&name), opts("opfs", MIB, 1, &[])).await {
            // No OPFS at all (WebKitGTK): refused at open.
            Err(error) => error,
            Ok(dl) => {
                assert_eq!(text(&dl, "store"), "opfs");
                let error = call(&dl, "start", &[]).await.unwrap_err();
                assert_ne!(text(&dl, "state"), "running");
                error
            }
        };
        assert_eq!(error_code(&error), "STORAGE_UNAVAILABLE");
        let message = text(&error, "message");
        assert!(
            message.contains("dedicated worker") || message.contains("no navigator.storage"),
            "{message}"
        );
        assert!(log(&name).await.is_empty(), "nothing was fetched");
    }

    /// The test page serves no `worker.js`: `{ worker: true }` fails with a
    /// message saying what to serve, never a promise that hangs. (The
    /// package's worker itself is proven by tests/e2e/worker.mjs.)
    #[wasm_bindgen_test]
    async fn a_missing_worker_script_is_reported() {
        let error = open(&file_url("any"), options(&[("worker", true.into())]))
            .await
            .unwrap_err();
        assert_eq!(error_code(&error), "INVALID_STATE");
        assert!(text(&error, "message").contains("worker.js"));
    }

    #[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
    export function fakeSavePicker(mode) {
      const state = { options: null, chunks: [], closed: false };
      globalThis.showSaveFilePicker = async (options) => {
        state.options = options;
        if (mode === 'abort') throw new DOMException('The user aborted a request.', 'AbortError');
        if (mode === 'no-gesture') throw new DOMException('Must be handling a user gesture.', 'SecurityError');
        return {
          createWritable: async () => new WritableStream({
            write(chunk) { state.chunks.push(new Uint8Array(chunk)); },
            close() { state.closed = true; },
          }),
        };
      };
      state.restore = () => { delete globalThis.showSaveFilePicker; };
      state.bytes = () => {
        const out = new Uint8Array(state.chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of state.chunks) { out.set(c, at); at += c.length; }
        return out;
      };
      return state;
    }
    "#)]
    extern "C" {
        /// A save picker whose file is a WritableStream kept in memory.
        #[wasm_bindgen(js_name = fakeSavePicker)]
        fn fake_save_picker(mode: &str) -> JsValue;
    }

    /// `save()` streams the stored file into the file the picker gives,
    /// under the sanitized name; a dismissed picker is `ABORTED`; a picker
    /// refused for want of a user gesture falls back to `<a download>`.
    #[wasm_bindgen_test]
    async fn save_streams_into_the_picked_file() {
        let name = unique("save");
        configure(&name, &format!("size={}&seed=42", 4.0 * MIB)).await;
        let dl = open(&file_url(&name), opts("indexeddb", MIB, 2, &[]))
            .await
            .unwrap();
        call(&dl, "start", &[]).await.unwrap();

        let picked = fake_save_picker("ok");
        let saved = call(&dl, "save", &["re:port?.bin".into()]).await;
        call(&picked, "restore", &[]).await.unwrap();
        saved.unwrap();
        let options = js_sys::Reflect::get(&picked, &"options".into()).unwrap();
        assert_eq!(text(&options, "suggestedName"), "report.bin");
        assert!(js_sys::Reflect::get(&picked, &"closed".into())
            .unwrap()
            .is_truthy());
        let chunks = js_sys::Array::from(&js_sys::Reflect::get(&picked, &"chunks".into()).unwrap());
        assert!(chunks.length() > 1, "streamed, not one buffer");
        let bytes = js_sys::Uint8Array::from(call(&picked, "bytes", &[]).await.unwrap()).to_vec();
        let mut hasher = fault_server::sha256::Sha256::new();
        hasher.update(&bytes);
        assert_eq!(
            fault_server::sha256::hex(&hasher.finish()),
            server_sha256(&name).await
        );

        let dismissed = fake_save_picker("abort");
        let error = call(&dl, "save", &[]).await.unwrap_err();
        call(&dismissed, "restore", &[]).await.unwrap();
        assert_eq!(error_code(&error), "ABORTED");
        assert!(text(&error, "message").contains("file picker"));

        let refused = fake_save_picker("no-gesture");
        let saved = call(&dl, "save", &[]).await;
        call(&refused, "restore", &[]).await.unwrap();
        saved.expect("the anchor download after a refused picker");
        call(&dl, "cancel", &[]).await.unwrap();
    }

    #[wasm_bindgen_test]
    async fn credentials_and_referrer_are_sent() {
        set_cookie("session", "s-1").await;
        let name = unique("credentials");
        configure(&name, &format!("size={}&seed=29", MIB)).await;
        let with = |credentials: &str| {
            options(&[
                ("credentials", credentials.into()),
                ("referrer", "".into()),
                ("blockSize", MIB.into()),
            ])
        };
        for (credentials, cookie) in [("include", true), ("omit", false)] {
            let dl = open(&file_url(&name), with(credentials)).await.unwrap();
            configure(&name, "clear_log=1").await;
            let state = call(&dl, "start", &[]).await.unwrap();
            assert_eq!(state.as_string().as_deref(), Some("complete"));
            let served = log(&name).await;
            let sent_cookie = js_sys::Reflect::get(&served[0].headers, &"cookie".into()).unwrap();
            assert_eq!(
                sent_cookie
                    .as_string()
                    .is_some_and(|c| c.contains("session=s-1")),
                cookie,
                "credentials {credentials}: {served:?}"
            );
            // referrer: '' sends none (the default would send the page's origin).
            assert!(js_sys::Reflect::get(&served[0].headers, &"referer".into())
                .unwrap()
                .is_undefined());
            call(&dl, "cancel", &[]).await.unwrap();
        }
    }

    scenario_tests! {
        scenarios::a_5_gib_file_downloads_with_64_bit_offsets("indexeddb");
    }

    #[wasm_bindgen_test]
    async fn chaos_256_mib_over_4_connections_is_byte_identical() {
        let name = unique("chaos");
        configure(
            &name,
            &format!(
                "size={}&seed=40&chaos=7&chaos_rate=20&chaos_change_after=30",
                256.0 * MIB
            ),
        )
        .await;
        let dl = open(
            &file_url(&name),
            options(&[
                ("blockSize", (4.0 * MIB).into()),
                ("connections", 4.into()),
                ("retries", 10.into()),
                ("stallTimeoutMs", 1000.into()),
            ]),
        )
        .await
        .unwrap();
        let state = call(&dl, "start", &[]).await.unwrap();
        assert_eq!(state.as_string().as_deref(), Some("complete"));
        let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
        assert_eq!(blob.size(), 256.0 * MIB);
        // The content changed once on the way: the result is the final file.
        assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
        let faults: Vec<String> = log(&name)
            .await
            .iter()
            .filter_map(|s| s.fault.clone())
            .collect();
        for kind in ["chaos-503", "chaos-drop", "chaos-stall"] {
            assert!(faults.iter().any(|f| f == kind), "no {kind} in {faults:?}");
        }
        call(&dl, "cancel", &[]).await.unwrap();
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
/** Makes navigator.locks.request refuse, as in a sandboxed iframe: 'reject' or 'throw'. */
export function refuseWebLocks(how) {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.request !== 'function') return false;
  const denied = () => new DOMException('The request was denied.', 'SecurityError');
  locks.request = how === 'throw'
    ? () => { throw denied(); }
    : () => Promise.reject(denied());
  return true;
}
export function restoreWebLocks() {
  delete globalThis.navigator.locks.request;
}

function settled(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('blocked'));
  });
}
/**
 * Another tab running old code: the database at version 1, held open with no
 * versionchange handler (resumable-fetch's own connection lets go of it).
 */
export async function holdAnOldDatabase() {
  await settled(indexedDB.deleteDatabase('resumable-fetch'));
  return settled(indexedDB.open('resumable-fetch', 1));
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = refuseWebLocks)]
    fn refuse_web_locks(how: &str) -> bool;
    #[wasm_bindgen(js_name = restoreWebLocks)]
    fn restore_web_locks();
    #[wasm_bindgen(js_name = holdAnOldDatabase)]
    async fn hold_an_old_database() -> JsValue;
}

/// `navigator.locks.request` that rejects or throws (a sandboxed iframe,
/// blocked storage): every call that needs the lock settles with
/// STORAGE_UNAVAILABLE naming Web Locks, and nothing is written.
#[wasm_bindgen_test]
async fn web_locks_that_refuse_settle_every_call() {
    use resumable_fetch::api::Download;
    use wasm_bindgen_futures::JsFuture;
    let name = common::unique("locks-refused");
    common::configure(&name, "size=1000").await;
    let url = common::file_url(&name);
    let dl = common::open(&url, JsValue::UNDEFINED).await.unwrap();
    // Complete, so prune() has a record to lock.
    common::call(&dl, "start", &[]).await.unwrap();
    common::clear_log(&name).await;
    for how in ["reject", "throw"] {
        if !refuse_web_locks(how) {
            console_log!("SKIPPED web_locks_that_refuse_settle_every_call: no Web Locks");
            return;
        }
        let again = common::open(&url, JsValue::UNDEFINED).await.unwrap();
        let prune = common::options(&[("olderThan", 0.into())]);
        let results = [
            common::call(
                &common::open(
                    &url,
                    common::options(&[("id", format!("{url}#other").into())]),
                )
                .await
                .unwrap(),
                "start",
                &[],
            )
            .await,
            common::call(&again, "cancel", &[]).await,
            common::call(&dl, "blob", &[]).await,
            JsFuture::from(Download::remove(url.clone(), None)).await,
            JsFuture::from(Download::prune(prune)).await,
        ];
        restore_web_locks();
        for (i, result) in results.into_iter().enumerate() {
            let error = result.unwrap_err();
            assert_eq!(
                common::error_code(&error),
                "STORAGE_UNAVAILABLE",
                "{how} {i}: {error:?}"
            );
            let message = common::text(&error, "message");
            assert!(
                message.contains("Web Locks") && message.contains("SecurityError"),
                "{message}"
            );
        }
    }
    assert!(common::log(&name).await.is_empty(), "nothing was fetched");
    let blob: web_sys::Blob = common::call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(
        common::sha256_of(&blob).await,
        common::server_sha256(&name).await
    );
    common::call(&dl, "cancel", &[]).await.unwrap();
}

/// Another tab holds the database open at an older version and does not let
/// go: opening IndexedDB settles with STORAGE_UNAVAILABLE that says so,
/// instead of waiting for ever; once that tab lets go, it opens.
#[wasm_bindgen_test]
async fn an_indexeddb_open_blocked_by_another_tab_settles() {
    let name = common::unique("idb-blocked");
    common::configure(&name, "size=1000").await;
    let url = common::file_url(&name);
    let old = hold_an_old_database().await;
    let error = common::open(&url, common::options(&[("store", "indexeddb".into())]))
        .await
        .unwrap_err();
    assert_eq!(
        common::error_code(&error),
        "STORAGE_UNAVAILABLE",
        "{error:?}"
    );
    assert!(common::text(&error, "message").contains("another tab"));
    common::call(&old, "close", &[]).await.unwrap();
    let dl = common::open(&url, common::options(&[("store", "indexeddb".into())]))
        .await
        .unwrap();
    let state = common::call(&dl, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    common::call(&dl, "cancel", &[]).await.unwrap();
}

/// Runs `body`, the text of an async JS function of `arg`, and awaits it.
async fn js(body: &str, arg: &JsValue) -> JsValue {
    let f =
        js_sys::Function::new_with_args("arg", &format!("return (async () => {{ {body} }})();"));
    let promise: js_sys::Promise = f.call1(&JsValue::NULL, arg).unwrap().into();
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap()
}

/// Shared by the JS below: `req` awaits an IndexedDB request, `LANES` and
/// `range` name where the pieces of the download `arg` are.
const IDB_PRELUDE: &str = "
    const req = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    const LANES = ['pieces', 'pieces-1', 'pieces-2', 'pieces-3'];
    const range = IDBKeyRange.bound([arg, 0], [arg, Infinity]);
";

/// The number of pieces of download `id` in each lane of the database.
async fn pieces_per_lane(id: &str) -> Vec<f64> {
    let body = format!(
        "{IDB_PRELUDE}
        const db = await req(indexedDB.open('resumable-fetch'));
        const tx = db.transaction(LANES);
        const counts = LANES.map((lane) => req(tx.objectStore(lane).count(range)));
        try {{ return await Promise.all(counts); }} finally {{ db.close(); }}"
    );
    let counts = js(&body, &id.into()).await;
    js_sys::Array::from(&counts)
        .iter()
        .filter_map(|c| c.as_f64())
        .collect()
}

/// Rewrites the database as version 1 of the schema left it: the record of
/// `id` and its pieces (Blobs read back, so they outlive the old database)
/// all in `pieces`, no lanes.
async fn as_version_1(id: &str) {
    let body = format!(
        "{IDB_PRELUDE}
        let db = await req(indexedDB.open('resumable-fetch'));
        const tx = db.transaction(['records', ...LANES]);
        const record = req(tx.objectStore('records').get(arg));
        const lanes = LANES.map((lane) => Promise.all([
            req(tx.objectStore(lane).getAllKeys(range)), req(tx.objectStore(lane).getAll(range))]));
        const pieces = [];
        for (const [keys, values] of await Promise.all(lanes)) {{
            for (let i = 0; i < keys.length; i++) {{
                // Blob values, or bytes where the engine refuses Blobs (WebKit).
                const v = values[i];
                pieces.push([keys[i], v instanceof Blob ? new Blob([await v.arrayBuffer()]) : v]);
            }}
        }}
        const stored = await record;
        db.close();
        await req(indexedDB.deleteDatabase('resumable-fetch'));
        const open = indexedDB.open('resumable-fetch', 1);
        open.onupgradeneeded = () => {{
            open.result.createObjectStore('records');
            open.result.createObjectStore('pieces');
        }};
        db = await req(open);
        const write = db.transaction(['records', 'pieces'], 'readwrite');
        write.objectStore('records').put(stored, arg);
        for (const [key, blob] of pieces) write.objectStore('pieces').put(blob, key);
        await new Promise((ok, fail) => {{ write.oncomplete = ok; write.onabort = () => fail(write.error); }});
        db.close();"
    );
    js(&body, &id.into()).await;
}

/// Consecutive blocks are written in different lanes (object stores), so
/// the connections' transactions run at once; and a download stored by
/// version 1 of the schema, every piece in `pieces`, resumes and assembles
/// after the upgrade.
#[wasm_bindgen_test]
async fn pieces_spread_over_lanes_and_version_1_pieces_are_still_found() {
    use common::*;
    use wasm_bindgen_futures::JsFuture;
    let size = 8.0 * MIB;
    let name = unique("lanes");
    configure(&name, &format!("size={size}&seed=31")).await;
    let url = file_url(&name);
    let dl = open(&url, opts("indexeddb", MIB, 3, &[])).await.unwrap();
    let state = JsFuture::from(start(&dl)).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    assert_eq!(pieces_per_lane(&text(&dl, "id")).await, [2.0; 4]);
    call(&dl, "cancel", &[]).await.unwrap();
    assert_eq!(pieces_per_lane(&text(&dl, "id")).await, [0.0; 4]);

    // Half stored, then the database rewritten as version 1 left it.
    let name = unique("v1");
    configure(
        &name,
        &format!("size={size}&seed=32&throttle={}", 4.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let dl = open(&url, opts("indexeddb", MIB, 2, &[])).await.unwrap();
    let run = start(&dl);
    wait_for_received(&dl, 3.0 * MIB, 30).await;
    call(&dl, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    let stored = field(&dl, "received");
    let id = text(&dl, "id");
    drop(dl);
    as_version_1(&id).await;

    configure(&name, "throttle=0").await;
    clear_log(&name).await;
    let dl = open(&url, opts("indexeddb", MIB, 2, &[])).await.unwrap();
    assert_eq!(
        field(&dl, "received"),
        stored,
        "the upgrade kept the record"
    );
    let state = call(&dl, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let sent: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(sent, size - stored, "the stored pieces were found");
    let lanes = pieces_per_lane(&id).await;
    assert!(
        lanes[1..].iter().sum::<f64>() > 0.0,
        "new pieces in lanes: {lanes:?}"
    );
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    call(&dl, "cancel", &[]).await.unwrap();
}

#[wasm_bindgen_test]
async fn indexeddb_keeps_the_store_contract() {
    let store = resumable_fetch::web::idb::IdbStore::open().await.unwrap();
    common::store_contract::keeps_the_contract(&store, "indexeddb", None).await;
}
