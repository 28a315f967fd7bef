//! The JS API in Node, against the fault server: fetch and the memory store
//! (Node has no IndexedDB, so `store: 'auto'` falls back to memory).
#![cfg(target_arch = "wasm32")]

mod common;

use common::{conformance, custom_store, scenarios};
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
async fn downloads_byte_for_byte() {
    scenarios::downloads_byte_for_byte("memory", 16.0 * 1024.0 * 1024.0).await;
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

#[wasm_bindgen_test]
async fn resumes_after_an_interruption() {
    scenarios::resumes_after_an_interruption("memory").await;
}

#[wasm_bindgen_test]
async fn pause_then_start_again() {
    scenarios::pause_then_start_again("memory").await;
}

#[wasm_bindgen_test]
async fn a_server_that_ignores_range() {
    scenarios::a_server_that_ignores_range("memory").await;
}

#[wasm_bindgen_test]
async fn a_changed_etag_between_sessions() {
    scenarios::a_changed_etag_between_sessions("memory").await;
}

#[wasm_bindgen_test]
async fn rejects_bad_input_with_download_errors() {
    scenarios::rejects_bad_input_with_download_errors("memory").await;
}

#[wasm_bindgen_test]
async fn a_second_writer_for_the_same_id_is_locked() {
    scenarios::a_second_writer_for_the_same_id_is_locked("memory").await;
}

// ---- HTTP conformance (docs/CONFORMANCE.md) ----

#[wasm_bindgen_test]
async fn ranges_ignored_on_resume() {
    conformance::ranges_ignored_on_resume("memory").await;
}

#[wasm_bindgen_test]
async fn shifted_and_short_206s_are_completed() {
    conformance::shifted_and_short_206s_are_completed("memory").await;
}

#[wasm_bindgen_test]
async fn an_unknown_total_completes_at_the_416() {
    conformance::an_unknown_total_completes_at_the_416("memory").await;
}

#[wasm_bindgen_test]
async fn rangeless_and_multipart_206s_are_refused() {
    conformance::rangeless_and_multipart_206s_are_refused("memory", false).await;
}

#[wasm_bindgen_test]
async fn a_compressed_206_is_refused() {
    conformance::a_compressed_206_is_refused("memory", false).await;
}

#[wasm_bindgen_test]
async fn an_empty_file_completes() {
    conformance::an_empty_file_completes("memory").await;
}

#[wasm_bindgen_test]
async fn a_content_length_other_than_its_content_range_is_refused() {
    conformance::a_content_length_other_than_its_content_range_is_refused("memory").await;
}

#[wasm_bindgen_test]
async fn unverifiable_resumes_are_checked_against_stored_bytes() {
    conformance::unverifiable_resumes_are_checked_against_stored_bytes("memory").await;
}

#[wasm_bindgen_test]
async fn a_file_changed_mid_download_restarts_once() {
    conformance::a_file_changed_mid_download_restarts_once("memory").await;
}

#[wasm_bindgen_test]
async fn redirects_keep_working() {
    conformance::redirects_keep_working("memory").await;
}

#[wasm_bindgen_test]
async fn an_expired_signed_url_fails_and_set_url_continues() {
    conformance::an_expired_signed_url_fails_and_set_url_continues("memory").await;
}

#[wasm_bindgen_test]
async fn errors_and_stalls_are_retried_then_reported() {
    conformance::errors_and_stalls_are_retried_then_reported("memory").await;
}

#[wasm_bindgen_test]
async fn abandoned_bodies_release_their_connections() {
    conformance::abandoned_bodies_release_their_connections("memory").await;
}

#[wasm_bindgen_test]
async fn connections_bound_the_requests_in_flight() {
    conformance::connections_bound_the_requests_in_flight("memory").await;
}

#[wasm_bindgen_test]
async fn custom_headers_are_sent() {
    conformance::custom_headers_are_sent("memory").await;
}

#[wasm_bindgen_test]
async fn if_range_only_without_a_preflight() {
    // No page origin: no CORS, so If-Range is sent.
    conformance::if_range_only_without_a_preflight("memory", true).await;
}

#[wasm_bindgen_test]
async fn a_changed_last_modified_or_length_restarts() {
    conformance::a_changed_last_modified_or_length_restarts("memory").await;
}

#[wasm_bindgen_test]
async fn pause_or_cancel_at_once_after_start() {
    scenarios::pause_or_cancel_at_once_after_start("memory").await;
}

#[wasm_bindgen_test]
async fn a_map_backed_store_downloads_and_resumes() {
    custom_store::a_map_backed_store_downloads_and_resumes().await;
}

#[wasm_bindgen_test]
async fn a_full_custom_store_pauses_with_quota_exceeded() {
    custom_store::a_full_custom_store_pauses_with_quota_exceeded().await;
}

#[wasm_bindgen_test]
async fn a_broken_custom_store_is_reported() {
    custom_store::a_broken_custom_store_is_reported().await;
}

#[wasm_bindgen_test]
async fn prune_removes_stale_partial_downloads() {
    custom_store::prune_removes_stale_partial_downloads().await;
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

#[wasm_bindgen_test]
async fn integrity_and_repr_digest_are_checked() {
    conformance::integrity_and_repr_digest_are_checked("memory").await;
}

#[wasm_bindgen_test]
async fn a_second_object_cannot_cancel_or_remove_a_running_download() {
    custom_store::a_second_object_cannot_cancel_or_remove_a_running_download().await;
}

#[wasm_bindgen_test]
async fn a_custom_stores_lock_hook_is_the_cross_process_lock() {
    custom_store::a_custom_stores_lock_hook_is_the_cross_process_lock().await;
}

#[wasm_bindgen_test]
async fn a_record_that_outlived_its_data_is_downloaded_again() {
    custom_store::a_record_that_outlived_its_data_is_downloaded_again().await;
}

#[wasm_bindgen_test]
async fn records_may_be_any_buffer_source_and_nothing_else() {
    custom_store::records_may_be_any_buffer_source_and_nothing_else().await;
}

#[wasm_bindgen_test]
async fn a_stale_objects_blob_is_never_a_mix() {
    custom_store::a_stale_objects_blob_is_never_a_mix().await;
}

#[wasm_bindgen_test]
async fn option_getters_and_proxies_are_invalid_arguments() {
    scenarios::option_getters_and_proxies_are_invalid_arguments("memory").await;
}

#[wasm_bindgen_test]
async fn prune_asks_a_custom_store_to_sweep_when_no_download_runs() {
    custom_store::prune_asks_a_custom_store_to_sweep_when_no_download_runs().await;
}

#[wasm_bindgen_test]
async fn the_custom_store_adapter_keeps_the_store_contract() {
    custom_store::the_custom_store_adapter_keeps_the_store_contract().await;
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
