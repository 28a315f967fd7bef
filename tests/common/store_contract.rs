//! The store contract (`core::store_contract`) run against the web stores:
//! the custom-store adapter over a `Map` (Node and browsers) and over the
//! file stores (Node, Deno), IndexedDB (browsers) and OPFS (dedicated
//! workers).

use super::*;
use resumable_fetch::core::store::Store;
use resumable_fetch::core::store_contract::{check, check_crashes, LoseData};
use resumable_fetch::web::WebChunk;
use std::future::Future;
use std::pin::Pin;

fn chunk(bytes: &[u8]) -> WebChunk {
    WebChunk::Bytes(js_sys::Uint8Array::from(bytes))
}

fn read(blob: web_sys::Blob) -> Pin<Box<dyn Future<Output = Vec<u8>>>> {
    Box::pin(async move { head_of(&blob, blob.size()).await })
}

/// Runs the contract against `store`; a breach fails the test by name.
pub async fn keeps_the_contract<S: Store<Chunk = WebChunk, Assembled = web_sys::Blob>>(
    store: &S,
    name: &str,
    lose: Option<LoseData<'_>>,
) {
    let checked = check(store, &unique(name), &chunk, &read, lose).await;
    assert_eq!(
        checked,
        Ok(()),
        "the {name} store breaks the store contract"
    );
    let crashes = check_crashes(store, &unique(name), &chunk).await;
    assert_eq!(crashes, Ok(()), "a crash breaks the {name} store");
}
