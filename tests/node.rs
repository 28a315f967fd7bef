//! The JS API in Node, against the fault server: fetch and the memory store
//! (Node has no IndexedDB, so `store: 'auto'` falls back to memory).
#![cfg(target_arch = "wasm32")]

mod common;

use common::{conformance, custom_store, scenarios};
use wasm_bindgen_test::*;

// The shared scenarios with `store: 'memory'`, and the custom-store ones
// (each brings its own store).
common::scenario_tests! {
    scenarios::downloads_byte_for_byte("memory", 16.0 * 1024.0 * 1024.0);
    scenarios::resumes_after_an_interruption("memory");
    scenarios::pause_then_start_again("memory");
    scenarios::a_server_that_ignores_range("memory");
    scenarios::a_changed_etag_between_sessions("memory");
    scenarios::rejects_bad_input_with_download_errors("memory");
    scenarios::a_second_writer_for_the_same_id_is_locked("memory");
    scenarios::pause_or_cancel_at_once_after_start("memory");
    scenarios::option_getters_and_proxies_are_invalid_arguments("memory");

    // ---- HTTP conformance (docs/CONFORMANCE.md) ----
    conformance::ranges_ignored_on_resume("memory");
    conformance::shifted_and_short_206s_are_completed("memory");
    conformance::an_unknown_total_completes_at_the_416("memory");
    conformance::rangeless_and_multipart_206s_are_refused("memory", false);
    conformance::a_compressed_206_is_refused("memory", false);
    conformance::an_empty_file_completes("memory");
    conformance::a_content_length_other_than_its_content_range_is_refused("memory");
    conformance::unverifiable_resumes_are_checked_against_stored_bytes("memory");
    conformance::a_file_changed_mid_download_restarts_once("memory");
    conformance::redirects_keep_working("memory");
    conformance::an_expired_signed_url_fails_and_set_url_continues("memory");
    conformance::errors_and_stalls_are_retried_then_reported("memory");
    conformance::abandoned_bodies_release_their_connections("memory");
    conformance::connections_bound_the_requests_in_flight("memory");
    conformance::custom_headers_are_sent("memory");
    // No page origin: no CORS, so If-Range is sent.
    conformance::if_range_only_without_a_preflight("memory", true);
    conformance::a_changed_last_modified_or_length_restarts("memory");
    conformance::integrity_and_repr_digest_are_checked("memory");

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
async fn auto_falls_back_to_memory_without_indexeddb() {
    let name = common::unique("auto");
    common::configure(&name, "size=1000").await;
    let dl = common::open(&common::file_url(&name), wasm_bindgen::JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(common::text(&dl, "store"), "memory");
}

/// Node has no web `Worker`: `{ worker: true }` says so, and a custom store
/// is refused with it before any worker is needed.
#[wasm_bindgen_test]
async fn worker_mode_is_refused_where_it_cannot_run() {
    use wasm_bindgen::JsValue;
    let url = common::file_url("any");
    let no_worker = common::options(&[("worker", true.into())]);
    let error = common::open(&url, no_worker).await.unwrap_err();
    assert_eq!(common::error_code(&error), "INVALID_STATE");
    assert!(common::text(&error, "message").contains("worker"));

    let store = js_sys::Object::new();
    for method in [
        "getRecord",
        "putRecord",
        "records",
        "write",
        "read",
        "delete",
    ] {
        let noop = js_sys::Function::new_no_args("");
        js_sys::Reflect::set(&store, &method.into(), &noop).unwrap();
    }
    let custom = common::options(&[("worker", true.into()), ("store", JsValue::from(store))]);
    let error = common::open(&url, custom).await.unwrap_err();
    assert_eq!(common::error_code(&error), "INVALID_ARGUMENT");
    assert!(common::text(&error, "message").contains("custom store"));

    let wrong = common::options(&[("worker", "yes".into())]);
    let error = common::open(&url, wrong).await.unwrap_err();
    assert_eq!(common::error_code(&error), "INVALID_ARGUMENT");
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
/** This runtime's file store (js/stores/node.js, or deno.js under Deno) in a new temporary directory. */
export async function fileStoreHere(root) {
  const fs = await import('node:fs/promises');
  const os = await import('node:os');
  const dir = await fs.mkdtemp(`${os.tmpdir()}/rf-contract-`);
  if (globalThis.Deno) {
    const { denoFileStore } = await import(`file://${root}/js/stores/deno.js`);
    return { store: denoFileStore(dir), dir };
  }
  const { fileStore } = await import(`file://${root}/js/stores/node.js`);
  return { store: fileStore(dir), dir };
}
/** Deletes the data file of `id` in `dir`, its record kept: both stores name it by the id's SHA-256. */
export async function loseDataFile(dir, id) {
  const fs = await import('node:fs/promises');
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(id));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  await fs.rm(`${dir}/${hex}`);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = fileStoreHere)]
    async fn file_store_here(root: &str) -> wasm_bindgen::JsValue;
    #[wasm_bindgen(js_name = loseDataFile)]
    async fn lose_data_file(dir: &str, id: &str);
}

/// The runtime's own file store (Node's, or Deno's when this suite runs in
/// Deno), through the custom-store adapter, keeps the store contract.
#[wasm_bindgen_test]
async fn the_file_store_keeps_the_store_contract() {
    let made = file_store_here(env!("CARGO_MANIFEST_DIR")).await;
    let dir = common::text(&made, "dir");
    let object = js_sys::Reflect::get(&made, &"store".into()).unwrap();
    let store = resumable_fetch::web::custom::CustomStore::new(object).unwrap();
    let lose = move |id: &str| {
        let (dir, id) = (dir.clone(), id.to_string());
        Box::pin(async move { lose_data_file(&dir, &id).await })
            as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
    };
    common::store_contract::keeps_the_contract(&store, "file", Some(&lose)).await;
}
