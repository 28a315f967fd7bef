//! Download scenarios run by every wasm suite against the fault server, once
//! per store (IndexedDB in browsers, memory in Node).

use super::*;
use resumable_fetch::api::Download;
use wasm_bindgen_test::console_log;

#[wasm_bindgen(inline_js = r#"
/** Options objects that run code when read. */
export function trickyOptions(kind) {
  const fail = () => { throw new Error('the option getter failed'); };
  switch (kind) {
    case 'getter': return { get connections() { return fail(); } };
    case 'inherited': return Object.create({ connections: 99, blockSize: 1 });
    case 'ownKeys': return new Proxy({}, { ownKeys: fail });
    case 'get': return new Proxy({ blockSize: 1 }, { get: fail });
    case 'headers': return { headers: new Proxy({}, { ownKeys: fail }) };
    case 'headerPair': return { headers: [new Proxy(['a', 'b'], { get: fail })] };
    case 'store': return { get store() { return fail(); } };
    default: throw new Error(kind);
  }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = trickyOptions)]
    fn tricky_options(kind: &str) -> JsValue;
}

/// Options are read as own properties only, and a getter or Proxy trap
/// that throws is INVALID_ARGUMENT naming the option, never an exception
/// through wasm (which would leave the promise pending).
pub async fn option_getters_and_proxies_are_invalid_arguments(store: &str) {
    let name = unique("tricky");
    configure(&name, "size=1000").await;
    let url = file_url(&name);
    for (kind, option) in [
        ("getter", "connections"),
        ("ownKeys", "options"),
        ("get", "blockSize"),
        ("headers", "headers"),
        ("headerPair", "headers"),
        ("store", "store"),
    ] {
        let error = open(&url, tricky_options(kind)).await.unwrap_err();
        assert_eq!(error_code(&error), "INVALID_ARGUMENT", "{kind}: {error:?}");
        let message = text(&error, "message");
        assert!(
            message.contains(&format!("`{option}`")),
            "{kind}: {message}"
        );
    }
    let error = JsFuture::from(Download::list(Some(tricky_options("store"))))
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), "INVALID_ARGUMENT");
    assert!(text(&error, "message").contains("`store`"));

    // Inherited values are not options: the defaults apply.
    let dl = open(&url, tricky_options("inherited")).await.unwrap();
    assert_eq!(text(&dl, "id"), url);
    let dl = open(&url, opts(store, MIB, 1, &[])).await.unwrap();
    assert_eq!(text(&dl, "store"), store);
}

pub async fn downloads_byte_for_byte(store: &str, size: f64) {
    let name = unique("whole");
    configure(&name, &format!("size={size}&seed=7")).await;
    let url = file_url(&name);
    let dl = open(&url, opts(store, 4.0 * MIB, 3, &[])).await.unwrap();
    assert_eq!(text(&dl, "store"), store);
    assert_eq!(text(&dl, "state"), "idle");
    assert!(Reflect::get(&dl, &"resumable".into())
        .unwrap()
        .is_undefined());
    let progress = watch(&dl, "onprogress", "received");

    let run = start(&dl);
    assert_eq!(
        text(&dl, "state"),
        "running",
        "at once, not on the next tick"
    );
    let state = JsFuture::from(run).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    assert_eq!(text(&dl, "state"), "complete");
    assert_eq!(field(&dl, "total"), size);
    assert_eq!(field(&dl, "received"), size);
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(blob.size(), size);
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);

    // Every byte was sent once, by range.
    let served = log(&name).await;
    assert!(served.iter().all(|s| s.status == 206), "{served:?}");
    assert_eq!(served.iter().map(|s| s.sent).sum::<f64>(), size);

    let progress: Vec<f64> = progress.take().iter().filter_map(JsValue::as_f64).collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress went back"
    );
    assert_eq!(progress.last(), Some(&size));

    let info = listed(&url).await.expect("listed");
    assert_eq!(text(&info, "state"), "complete");
    assert_eq!(text(&info, "store"), store);
    assert_eq!(field(&info, "received"), size);
    JsFuture::from(Download::remove(url.clone(), None))
        .await
        .unwrap();
    assert!(listed(&url).await.is_none());
}

pub async fn resumes_after_an_interruption(store: &str) {
    let (size, block, connections) = (24.0 * MIB, MIB, 3);
    let name = unique("resume");
    // Slow enough to interrupt part-way: about 9 MiB/s over three connections.
    configure(
        &name,
        &format!("size={size}&seed=11&throttle={}", 3.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let with_retries =
        |retries: u32| opts(store, block, connections, &[("retries", retries.into())]);
    let first = open(&url, with_retries(0)).await.unwrap();
    let run = start(&first);
    wait_for_received(&first, 8.0 * MIB, 30).await;
    // The network goes away: responses are cut and the server refuses more.
    configure(&name, "fail_next=1000").await;
    cut(&name).await;
    let error = JsFuture::from(run).await.unwrap_err();
    assert!(["HTTP_STATUS", "NETWORK"].contains(&error_code(&error).as_str()));
    assert_eq!(text(&first, "state"), "failed");
    let stored = field(&first, "received");
    assert!((8.0 * MIB..size).contains(&stored), "stored {stored}");

    // A new Download for the same id, as after a reload, resumes from what is stored.
    configure(&name, "fail_next=0&throttle=0").await;
    clear_log(&name).await;
    let again = open(&url, with_retries(5)).await.unwrap();
    assert_eq!(
        field(&again, "received"),
        stored,
        "known before any request"
    );
    assert_eq!(text(&again, "state"), "paused");
    let state = call(&again, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let blob: web_sys::Blob = call(&again, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);

    let served = log(&name).await;
    assert!(!served.is_empty());
    assert!(
        served
            .iter()
            .all(|s| s.start.is_some_and(|start| start > 0.0)),
        "nothing was fetched from byte 0 again: {served:?}"
    );
    let fetched_again: f64 = served.iter().map(|s| s.sent).sum();
    let missing = size - stored;
    assert!(
        fetched_again <= missing + f64::from(connections) * block,
        "fetched {fetched_again} for {missing} missing bytes"
    );
    JsFuture::from(Download::remove(url, None)).await.unwrap();
}

pub async fn pause_then_start_again(store: &str) {
    let size = 12.0 * MIB;
    let name = unique("pause");
    configure(
        &name,
        &format!("size={size}&seed=12&throttle={}", 4.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let dl = open(&url, opts(store, MIB, 2, &[])).await.unwrap();
    let run = start(&dl);
    wait_for_received(&dl, 2.0 * MIB, 30).await;
    call(&dl, "pause", &[]).await.unwrap();
    assert_eq!(
        JsFuture::from(run).await.unwrap().as_string().as_deref(),
        Some("paused")
    );
    assert_eq!(text(&dl, "state"), "paused");
    let stored = field(&dl, "received");
    // The server's count includes bytes still in socket buffers at the pause.
    let sent: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert!(
        stored > 0.0 && stored <= sent,
        "stored {stored} of {sent} sent"
    );

    configure(&name, "throttle=0").await;
    clear_log(&name).await;
    let state = call(&dl, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let sent: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(
        sent,
        size - stored,
        "exactly the bytes not stored were fetched"
    );
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    call(&dl, "cancel", &[]).await.unwrap();
    assert!(listed(&url).await.is_none(), "cancel deletes everything");
}

pub async fn a_server_that_ignores_range(store: &str) {
    let size = 3.0 * MIB;
    let name = unique("norange");
    configure(&name, &format!("size={size}&seed=13&ignore_range=1")).await;
    let dl = open(&file_url(&name), opts(store, MIB, 3, &[]))
        .await
        .unwrap();
    let state = call(&dl, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    assert_eq!(
        Reflect::get(&dl, &"resumable".into()).unwrap().as_bool(),
        Some(false)
    );
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(sha256_of(&blob).await, server_sha256(&name).await);
    let served = log(&name).await;
    assert_eq!(
        served.len(),
        1,
        "the 200 to the first request was used: {served:?}"
    );
    assert_eq!((served[0].status, served[0].sent), (200, size));
}

pub async fn a_changed_etag_between_sessions(store: &str) {
    let size = 8.0 * MIB;
    let name = unique("changed");
    configure(
        &name,
        &format!("size={size}&seed=14&throttle={}", 4.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let first = open(&url, opts(store, MIB, 2, &[])).await.unwrap();
    let run = start(&first);
    wait_for_received(&first, 2.0 * MIB, 30).await;
    call(&first, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    let old_sha = server_sha256(&name).await;

    // The file is replaced on the server: new bytes, new ETag.
    configure(&name, "seed=15&throttle=0").await;
    let again = open(&url, opts(store, MIB, 2, &[])).await.unwrap();
    assert!(field(&again, "received") > 0.0);
    let restarts = watch_restarts(&again);
    let state = call(&again, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    assert_eq!(restarts.reasons(), ["server-changed"]);
    let blob: web_sys::Blob = call(&again, "blob", &[]).await.unwrap().into();
    let new_sha = server_sha256(&name).await;
    assert_ne!(new_sha, old_sha);
    assert_eq!(sha256_of(&blob).await, new_sha, "only the new file's bytes");

    // With onServerChange: 'fail', a change is an error and the bytes stay.
    configure(&name, &format!("seed=16&throttle={}", 4.0 * MIB)).await;
    call(&again, "cancel", &[]).await.unwrap();
    let strict = || opts(store, MIB, 2, &[("onServerChange", "fail".into())]);
    let dl = open(&url, strict()).await.unwrap();
    let run = start(&dl);
    wait_for_received(&dl, MIB, 30).await;
    call(&dl, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    let stored = field(&dl, "received");
    configure(&name, "seed=17").await;
    let dl = open(&url, strict()).await.unwrap();
    let error = call(&dl, "start", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "SERVER_CHANGED");
    assert_eq!(field(&dl, "received"), stored, "the stored bytes are kept");
    call(&dl, "cancel", &[]).await.unwrap();
}

pub async fn rejects_bad_input_with_download_errors(store: &str) {
    let url = file_url("missing");
    let code = |e: Result<JsValue, JsValue>| error_code(&e.unwrap_err());
    assert_eq!(
        code(open("http://[bad", JsValue::UNDEFINED).await),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        code(open("ftp://host/file", JsValue::UNDEFINED).await),
        "INVALID_ARGUMENT"
    );
    let typo = open(&url, options(&[("conections", 3.into())]))
        .await
        .unwrap_err();
    assert_eq!(error_code(&typo), "INVALID_ARGUMENT");
    assert!(text(&typo, "message").contains("conections"));
    let cookie = options(&[("headers", options(&[("Cookie", "a=b".into())]))]);
    if in_browser() {
        let err = open(&url, cookie).await.unwrap_err();
        assert!(
            text(&err, "message").contains("credentials: 'include'"),
            "{err:?}"
        );
    } else {
        // Node sends it (custom_headers_are_sent checks that it arrives).
        assert!(open(&url, cookie).await.is_ok());
    }
    for bad in [
        options(&[("connections", 0.into())]),
        options(&[("connections", 2.5.into())]),
        options(&[("maxRequests", 1.into())]),
        options(&[("maxRequests", (-1).into())]),
        options(&[("blockSize", "big".into())]),
        options(&[("store", "disk".into())]),
        options(&[("onServerChange", "ignore".into())]),
        options(&[("integrity", "sha256-x".into())]),
        options(&[("integrity", "md5-AAAA".into())]),
        JsValue::from("not an object"),
    ] {
        assert_eq!(code(open(&url, bad).await), "INVALID_ARGUMENT");
    }

    // A missing file: HTTP_STATUS, and the message names the status.
    let dl = open(&url, opts(store, MIB, 1, &[])).await.unwrap();
    let error = call(&dl, "start", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "HTTP_STATUS");
    assert!(text(&error, "message").contains("404"));
    // blob() before completion is refused, not a hang.
    let error = call(&dl, "blob", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "INVALID_STATE");
}

pub async fn a_second_writer_for_the_same_id_is_locked(store: &str) {
    let size = 6.0 * MIB;
    let name = unique("locked");
    configure(
        &name,
        &format!("size={size}&seed=18&throttle={}", 4.0 * MIB),
    )
    .await;
    let url = file_url(&name);
    let first = open(&url, opts(store, MIB, 2, &[])).await.unwrap();
    let second = open(&url, opts(store, MIB, 2, &[])).await.unwrap();
    let run = start(&first);
    let error = call(&second, "start", &[]).await.unwrap_err();
    assert_eq!(error_code(&error), "LOCKED");
    assert!(text(&error, "message").contains(&url));
    // Nor may it delete what the first one is writing.
    let error = call(&second, "cancel", &[]).await.unwrap_err();
    assert_eq!(
        error_code(&error),
        "LOCKED",
        "not cancelled under the running one"
    );
    let removed = JsFuture::from(Download::remove(url.clone(), None))
        .await
        .unwrap_err();
    assert_eq!(error_code(&removed), "LOCKED", "not removed while it runs");
    call(&first, "pause", &[]).await.unwrap();
    JsFuture::from(run).await.unwrap();
    // Once the first has stopped, the second may take over.
    configure(&name, "throttle=0").await;
    let state = call(&second, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    call(&second, "cancel", &[]).await.unwrap();
}

/// `pause()` or `cancel()` in the same tick as `start()` stops the run before
/// its first request, not after the whole file.
pub async fn pause_or_cancel_at_once_after_start(store: &str) {
    let name = unique("at-once");
    configure(
        &name,
        &format!("size={}&seed=19&throttle={}", 4.0 * MIB, MIB),
    )
    .await;
    let url = file_url(&name);
    let dl = open(&url, opts(store, MIB, 2, &[])).await.unwrap();
    let run = start(&dl);
    let paused = call_now(&dl, "pause");
    assert_eq!(
        JsFuture::from(run).await.unwrap().as_string().as_deref(),
        Some("paused")
    );
    JsFuture::from(paused).await.unwrap();
    assert!(log(&name).await.is_empty(), "no request was made");

    let run = start(&dl);
    let cancelled = call_now(&dl, "cancel");
    let error = JsFuture::from(run).await.unwrap_err();
    assert_eq!(error_code(&error), "ABORTED");
    JsFuture::from(cancelled).await.unwrap();
    assert!(log(&name).await.is_empty());
    assert!(listed(&url).await.is_none());
}

/// `performance.memory.usedJSHeapSize`, where the engine reports it
/// (Chromium, on pages).
fn js_heap() -> Option<f64> {
    let performance = Reflect::get(&js_sys::global(), &"performance".into()).ok()?;
    let memory = Reflect::get(&performance, &"memory".into()).ok()?;
    Reflect::get(&memory, &"usedJSHeapSize".into())
        .ok()?
        .as_f64()
}

/// Bytes of this module's wasm memory.
fn wasm_memory() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    js_sys::ArrayBuffer::from(memory.buffer()).byte_length() as f64
}

/// 5 GiB and a bit, over 4 connections: 64-bit offsets end to end, bytes
/// checked across the 4 GiB boundary and at the end, each fetched once, and
/// wasm memory not growing with the file.
pub async fn a_5_gib_file_downloads_with_64_bit_offsets(store: &str) {
    let test = "a_5_gib_file_downloads_with_64_bit_offsets";
    // The store holds the 5 GiB on the disk under the browser profile.
    let free: u64 = option_env!("RF_DISK_FREE_GIB")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if free < 12 {
        console_log!(
            "SKIPPED {test} ({store}): {free} GiB free for the browser profile, 12 GiB needed \
             (the native 5 GiB test still ran)"
        );
        return;
    }
    if engine() == "webkit" {
        // Its automation session keeps IndexedDB in memory (it refuses
        // Blob values): 5 GiB there is 5 GiB of RAM.
        console_log!("SKIPPED {test} in WebKitGTK: storage in memory");
        return;
    }
    let size = 5.0 * 1024.0 * MIB + 12345.0;
    let name = unique("five-gib");
    configure(&name, &format!("size={size}&seed=30")).await;
    let dl = open(&file_url(&name), opts(store, 64.0 * MIB, 4, &[]))
        .await
        .unwrap();
    let before = wasm_memory();
    // The JS heap where it can be read (Chromium pages): its peak, sampled
    // at every progress event.
    let heap_before = js_heap();
    let heap_peak = Rc::new(std::cell::Cell::new(heap_before.unwrap_or(0.0)));
    let peak = heap_peak.clone();
    let sample = Closure::<dyn Fn(JsValue)>::new(move |_: JsValue| {
        peak.set(peak.get().max(js_heap().unwrap_or(0.0)));
    });
    Reflect::set(&dl, &"onprogress".into(), sample.as_ref()).unwrap();
    let state = call(&dl, "start", &[]).await.unwrap();
    assert_eq!(state.as_string().as_deref(), Some("complete"));
    let grown = wasm_memory() - before;
    console_log!("{test} ({store}): wasm memory {before} bytes before, grew by {grown}");
    assert!(
        grown <= 16.0 * MIB,
        "wasm memory grew by {grown} bytes for a 5 GiB file"
    );
    if let Some(heap_before) = heap_before {
        // Four connections' 64 MiB blocks may be in flight, twice over for
        // garbage not collected yet: a bound that does not grow with the file.
        let heap_grown = heap_peak.get() - heap_before;
        console_log!(
            "{test} ({store}): JS heap {heap_before} bytes before, peak growth {heap_grown}"
        );
        assert!(
            heap_grown <= 2.0 * 4.0 * 64.0 * MIB + 64.0 * MIB,
            "the JS heap grew by {heap_grown} bytes for a 5 GiB file"
        );
    }
    assert_eq!(field(&dl, "total"), size);
    let blob: web_sys::Blob = call(&dl, "blob", &[]).await.unwrap().into();
    assert_eq!(blob.size(), size);
    // Sampled slices: across the 4 GiB boundary and at the very end.
    for start in [4.0 * 1024.0 * MIB - 4096.0, size - 4096.0] {
        let slice = blob.slice_with_f64_and_f64(start, start + 4096.0).unwrap();
        let got = Uint8Array::new(&JsFuture::from(slice.array_buffer()).await.unwrap());
        let mut want = vec![0u8; 4096];
        fault_server::fill(30, start as u64, &mut want);
        assert_eq!(got.to_vec(), want, "bytes at {start}");
    }
    let fetched: f64 = log(&name).await.iter().map(|s| s.sent).sum();
    assert_eq!(fetched, size);
    call(&dl, "cancel", &[]).await.unwrap(); // frees the 5 GiB
}
