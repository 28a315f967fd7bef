//! The JS API in Node, against the fault server: fetch and the memory store
//! (Node has no IndexedDB, so `store: 'auto'` falls back to memory).
#![cfg(target_arch = "wasm32")]

mod common;

use common::scenarios;
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
