//! Test only: the store contract (`resumable_fetch::core::store_contract`)
//! (`check`, then `check_crashes`) as one export, `storeContract(store,
//! prefix, lose)`, for JS runtimes the wasm-bindgen-test runner does not
//! reach (workerd: the Durable Object store, tests/runtimes/workerd.test.mjs).
//! The store goes through the custom-store adapter; the promise rejects with
//! the breach in words.
//! Built by scripts/test.sh with `wasm-bindgen --target web` into
//! target/contract-wasm/. Nothing here is compiled natively.
#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Promise, Uint8Array};
use resumable_fetch::core::store_contract::{check, check_crashes};
use resumable_fetch::web::custom::CustomStore;
use resumable_fetch::web::WebChunk;
use std::future::Future;
use std::pin::Pin;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

fn chunk(bytes: &[u8]) -> WebChunk {
    WebChunk::Bytes(Uint8Array::from(bytes))
}

fn read(blob: web_sys::Blob) -> Pin<Box<dyn Future<Output = Vec<u8>>>> {
    Box::pin(async move {
        let buffer = JsFuture::from(blob.array_buffer()).await;
        Uint8Array::new(&buffer.expect("reading the assembled Blob")).to_vec()
    })
}

/// Runs the store contract against `store` (a custom store object) with ids
/// under `prefix`; `lose(id)` deletes an id's stored bytes behind the
/// store's back, its record kept, and may return a promise. Then
/// `check_crashes`: each operation cut off at each step. Rejects with the
/// first breach.
#[wasm_bindgen(js_name = storeContract)]
pub async fn store_contract(store: JsValue, prefix: String, lose: Function) -> Result<(), JsError> {
    let store = CustomStore::new(store).map_err(|e| JsError::new(&e.to_string()))?;
    let lose = move |id: &str| {
        let called = lose.call1(&JsValue::UNDEFINED, &JsValue::from_str(id));
        Box::pin(async move {
            let value = called.expect("lose(id) threw");
            JsFuture::from(Promise::resolve(&value))
                .await
                .expect("lose(id) rejected");
        }) as Pin<Box<dyn Future<Output = ()>>>
    };
    check(&store, &prefix, &chunk, &read, Some(&lose))
        .await
        .map_err(|breach| JsError::new(&breach))?;
    check_crashes(&store, &prefix, &chunk)
        .await
        .map_err(|breach| JsError::new(&format!("a crash: {breach}")))
}
