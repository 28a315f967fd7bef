//! The JS API in a real browser (headless Chromium from `make test`), against
//! the fault server on another origin: fetch with CORS, and IndexedDB.
#![cfg(target_arch = "wasm32")]

mod common;

use common::scenarios;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MIB: f64 = 1024.0 * 1024.0;

#[wasm_bindgen_test]
async fn downloads_64_mib_into_indexeddb_byte_for_byte() {
    scenarios::downloads_byte_for_byte("indexeddb", 64.0 * MIB).await;
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
async fn resumes_after_an_interruption_fetching_at_most_one_block_per_connection() {
    scenarios::resumes_after_an_interruption("indexeddb").await;
}

#[wasm_bindgen_test]
async fn pause_then_start_again() {
    scenarios::pause_then_start_again("indexeddb").await;
}

#[wasm_bindgen_test]
async fn a_server_that_ignores_range() {
    scenarios::a_server_that_ignores_range("indexeddb").await;
}

#[wasm_bindgen_test]
async fn a_changed_etag_between_sessions() {
    scenarios::a_changed_etag_between_sessions("indexeddb").await;
}

#[wasm_bindgen_test]
async fn rejects_bad_input_with_download_errors() {
    scenarios::rejects_bad_input_with_download_errors("indexeddb").await;
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

#[wasm_bindgen_test]
async fn a_second_writer_for_the_same_id_is_locked() {
    scenarios::a_second_writer_for_the_same_id_is_locked("indexeddb").await;
}
