//! The JS API in a dedicated worker, where OPFS is written in place with
//! sync access handles: the shared scenarios with `store: 'opfs'`, and the
//! automatic choice. Engines without OPFS (WebKitGTK has no
//! `navigator.storage`) run the fallback test and skip the rest, saying so.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{conformance, scenarios, MIB};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Whether this worker has the origin private file system.
fn has_opfs(test: &str) -> bool {
    let storage = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"storage".into()))
        .unwrap_or(JsValue::UNDEFINED);
    let found = !storage.is_undefined()
        && js_sys::Reflect::get(&storage, &"getDirectory".into()).is_ok_and(|f| f.is_function());
    if !found {
        console_log!(
            "SKIPPED {test} in {}: no OPFS in this worker",
            common::engine()
        );
    }
    found
}

#[wasm_bindgen_test]
async fn auto_picks_opfs_in_a_worker_else_indexeddb() {
    let name = common::unique("auto-worker");
    common::configure(&name, "size=1000").await;
    let dl = common::open(&common::file_url(&name), JsValue::UNDEFINED)
        .await
        .unwrap();
    let expected = if has_opfs("(auto picks opfs)") {
        "opfs"
    } else {
        "indexeddb"
    };
    assert_eq!(common::text(&dl, "store"), expected);
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function refuseOpfs() {
  const proto = globalThis.StorageManager?.prototype;
  if (!proto?.getDirectory) return () => {};
  const original = proto.getDirectory;
  // What Firefox's private windows do.
  proto.getDirectory = () => Promise.reject(new DOMException('The operation is insecure.', 'SecurityError'));
  return () => { proto.getDirectory = original; };
}
"#)]
extern "C" {
    /// Makes `getDirectory()` throw; returns the function that undoes it.
    #[wasm_bindgen(js_name = refuseOpfs)]
    fn refuse_opfs() -> js_sys::Function;
}

/// Where `getDirectory()` throws (Firefox's private windows), `'auto'`
/// falls back to IndexedDB and `'opfs'` says why it cannot be used.
#[wasm_bindgen_test]
async fn auto_falls_back_when_getdirectory_throws() {
    let name = common::unique("private");
    common::configure(&name, &format!("size={}&seed=38", MIB)).await;
    let url = common::file_url(&name);
    let restore = refuse_opfs();
    let auto = common::open(&url, JsValue::UNDEFINED).await;
    let opfs = common::open(&url, common::opts("opfs", MIB, 1, &[])).await;
    restore.call0(&JsValue::NULL).unwrap();
    let auto = auto.unwrap();
    assert_eq!(common::text(&auto, "store"), "indexeddb");
    let state = common::call(&auto, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    common::call(&auto, "cancel", &[]).await.unwrap();
    let error = opfs.unwrap_err();
    assert_eq!(common::error_code(&error), "STORAGE_UNAVAILABLE");
}

// The shared scenarios with `store: 'opfs'`, each skipped (saying so)
// where this worker has no OPFS.
common::scenario_tests! {
    if has_opfs;
    scenarios::downloads_byte_for_byte("opfs", 32.0 * MIB);
    scenarios::resumes_after_an_interruption("opfs");
    scenarios::pause_then_start_again("opfs");
    scenarios::a_server_that_ignores_range("opfs");
    scenarios::a_changed_etag_between_sessions("opfs");
    scenarios::pause_or_cancel_at_once_after_start("opfs");
    conformance::ranges_ignored_on_resume("opfs");
    conformance::shifted_and_short_206s_are_completed("opfs");
    conformance::an_empty_file_completes("opfs");
    conformance::unverifiable_resumes_are_checked_against_stored_bytes("opfs");
    conformance::a_file_changed_mid_download_restarts_once("opfs");
    conformance::errors_and_stalls_are_retried_then_reported("opfs");
    scenarios::a_5_gib_file_downloads_with_64_bit_offsets("opfs");
    conformance::integrity_and_repr_digest_are_checked("opfs");
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export async function plantOpfsFile(name, size) {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('resumable-fetch', { create: true });
  const file = await dir.getFileHandle(name, { create: true });
  const handle = await file.createSyncAccessHandle();
  handle.write(new Uint8Array(size).fill(7), { at: 0 });
  handle.flush();
  handle.close();
}
export async function opfsFileExists(name) {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('resumable-fetch');
  return dir.getFileHandle(name).then(() => true, () => false);
}
export async function truncateOpfsFile(name, size) {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('resumable-fetch');
  const file = await dir.getFileHandle(name);
  const handle = await file.createSyncAccessHandle();
  handle.truncate(size);
  handle.flush();
  handle.close();
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = truncateOpfsFile)]
    async fn truncate_opfs_file(name: &str, size: f64);
    #[wasm_bindgen(js_name = plantOpfsFile)]
    async fn plant_opfs_file(name: &str, size: f64);
    #[wasm_bindgen(js_name = opfsFileExists)]
    async fn opfs_file_exists(name: &str) -> JsValue;
}

/// `Download.prune()` deletes OPFS files no record names (a removal a crash
/// cut short between the record and the file), keeps a complete download's
/// file, and sweeps nothing while a download is written to.
#[wasm_bindgen_test]
async fn prune_sweeps_opfs_files_no_record_names() {
    use common::*;
    use resumable_fetch::web::lock::DownloadLock;
    if !has_opfs("prune_sweeps_opfs_files_no_record_names") {
        return;
    }
    let name = unique("opfs-kept");
    configure(&name, "size=3000").await;
    let kept = open(&file_url(&name), opts("opfs", MIB, 1, &[]))
        .await
        .unwrap();
    let state = call(&kept, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let orphan = "0".repeat(63) + "f";
    plant_opfs_file(&orphan, 4096.0).await;
    let prune = || async {
        let pruned = resumable_fetch::api::Download::prune(options(&[
            ("olderThan", 0.into()),
            ("store", "opfs".into()),
        ]));
        wasm_bindgen_futures::JsFuture::from(pruned).await.unwrap();
    };
    {
        let _writer = DownloadLock::take(&unique("opfs-busy"), &[]).await.unwrap();
        prune().await;
        assert!(
            opfs_file_exists(&orphan).await.is_truthy(),
            "nothing is swept while a download is written to"
        );
    }
    prune().await;
    assert!(
        !opfs_file_exists(&orphan).await.is_truthy(),
        "the orphan is gone"
    );
    let blob: web_sys::Blob = call(&kept, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    call(&kept, "cancel", &[]).await.unwrap();
}

/// A record is trusted no further than its file: bytes the record claims
/// past the file's end (a write the disk lost) are fetched again.
#[wasm_bindgen_test]
async fn a_file_shorter_than_its_record_is_trusted_only_that_far() {
    use common::*;
    use fault_server::sha256::{hex, Sha256};
    if !has_opfs("a_file_shorter_than_its_record_is_trusted_only_that_far") {
        return;
    }
    let name = unique("opfs-short");
    let size = 6.0 * MIB;
    configure(
        &name,
        &format!("size={size}&seed=36&throttle={}", 4.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let first = open(&url, opts("opfs", MIB, 1, &[])).await.unwrap();
    let run = start(&first);
    wait_for_received(&first, 3.0 * MIB, 30).await;
    call(&first, "pause", &[]).await.unwrap();
    wasm_bindgen_futures::JsFuture::from(run).await.unwrap();
    assert!(field(&first, "received") >= 3.0 * MIB);

    let mut hasher = Sha256::new();
    hasher.update(url.as_bytes());
    let kept = 1.5 * MIB;
    truncate_opfs_file(&hex(&hasher.finish()), kept).await;

    clear_log(&name).await;
    let again = open(&url, opts("opfs", MIB, 1, &[])).await.unwrap();
    assert_eq!(
        field(&again, "received"),
        kept,
        "no more than the file holds"
    );
    let state = call(&again, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let fetched: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(fetched, size - kept, "exactly what the file lacked");
    let blob: web_sys::Blob = call(&again, "blob", &[]).await.unwrap().into();
    assert!(
        blob.is_instance_of::<web_sys::File>(),
        "the OPFS file itself"
    );
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    call(&again, "cancel", &[]).await.unwrap();
    assert!(listed(&url).await.is_none());
}

#[wasm_bindgen_test]
async fn opfs_keeps_the_store_contract() {
    if !has_opfs("opfs_keeps_the_store_contract") {
        return;
    }
    use fault_server::sha256::{hex, Sha256};
    let store = resumable_fetch::web::opfs::OpfsStore::open().await.unwrap();
    let lose = |id: &str| {
        let mut hasher = Sha256::new();
        hasher.update(id.as_bytes());
        let name = hex(&hasher.finish());
        Box::pin(async move { truncate_opfs_file(&name, 0.0).await })
            as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
    };
    common::store_contract::keeps_the_contract(&store, "opfs", Some(&lose)).await;
}
