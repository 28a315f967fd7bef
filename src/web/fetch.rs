//! The transport: the global `fetch` (windows, workers, Node, Deno, workerd),
//! with an AbortController that aborts the request when its body is dropped,
//! and the body read as a stream of `Uint8Array`s that never enter wasm memory.

use super::js;
use crate::core::range::ByteRange;
use crate::core::transport::{self, Body, Chunk, ResponseHead, Transport, TransportError};
use crate::core::validator::Header;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Headers, ReadableStreamDefaultReader, Request, RequestCache,
    RequestCredentials, RequestInit, Response, ResponseType,
};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(request: &Request) -> Result<Promise, JsValue>;
}

impl Chunk for Uint8Array {
    fn len(&self) -> u64 {
        u64::from(self.length())
    }
    fn slice(&self, start: u64, end: u64) -> Self {
        // Chunks are far below 4 GiB; offsets past the chunk were excluded by the caller.
        self.subarray(start as u32, end as u32)
    }
    fn to_vec(&self) -> Vec<u8> {
        Uint8Array::to_vec(self)
    }
}

/// Request options that apply to every request of a download.
#[derive(Clone, Debug, Default)]
pub struct FetchTransport {
    pub credentials: Option<RequestCredentials>,
    pub referrer: Option<String>,
}

impl Transport for FetchTransport {
    type Body = FetchBody;

    async fn send(
        &self,
        request: &transport::Request,
    ) -> Result<transport::Response<FetchBody>, TransportError> {
        let abort = AbortOnDrop(AbortController::new().map_err(network)?);
        let init = RequestInit::new();
        init.set_method("GET");
        init.set_signal(Some(&abort.0.signal()));
        if let Some(credentials) = self.credentials {
            init.set_credentials(credentials);
        }
        if let Some(referrer) = &self.referrer {
            init.set_referrer(referrer);
        }
        // Gigabytes of ranges must not be written to the HTTP cache as well.
        init.set_cache(RequestCache::NoStore);
        let headers = Headers::new().map_err(network)?;
        for (name, value) in &request.headers {
            headers.append(name, value).map_err(invalid)?;
        }
        if let Some(range) = request.range.as_ref().and_then(ByteRange::header_value) {
            headers.set("Range", &range).map_err(invalid)?;
        }
        if let Some(tag) = request
            .if_range
            .as_ref()
            .filter(|_| no_preflight(&request.url))
        {
            headers.set("If-Range", tag).map_err(invalid)?;
        }
        init.set_headers(&headers);
        let js_request = Request::new_with_str_and_init(&request.url, &init).map_err(invalid)?;
        let response: Response = JsFuture::from(global_fetch(&js_request).map_err(network)?)
            .await
            .map_err(network)?
            .dyn_into()
            .map_err(|_| TransportError::Network("fetch did not return a Response".into()))?;
        let reader = match response.body() {
            Some(stream) => Some(
                stream
                    .get_reader()
                    .dyn_into::<ReadableStreamDefaultReader>()
                    .map_err(|_| {
                        TransportError::Network("the body has no default reader".into())
                    })?,
            ),
            None => None,
        };
        Ok(transport::Response {
            head: head_of(&response),
            body: FetchBody {
                reader,
                _abort: abort,
            },
        })
    }
}

/// `If-Range` is not a CORS-safelisted header: cross-origin it costs a
/// preflight the server may refuse (failing the download), so it is sent
/// only same-origin, or where there is no page origin (Node, Deno, workerd).
/// The driver checks every response's validators itself either way.
fn no_preflight(url: &str) -> bool {
    let page = js::get(&js::get(&js_sys::global(), "location"), "origin").as_string();
    match (page, web_sys::Url::new(url)) {
        (None, _) => true,
        (Some(page), Ok(url)) => url.origin() == page,
        (Some(_), Err(_)) => false,
    }
}

/// The CORS-safelisted response headers: readable whatever the server exposes.
const SAFELISTED: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

fn head_of(response: &Response) -> ResponseHead {
    let cors = response.type_() == ResponseType::Cors;
    let headers = response.headers();
    let header = |name: &str| match headers.get(name) {
        Ok(Some(value)) => Header::Present(value),
        // A CORS response reads null for every header the server did not expose.
        _ if cors && !SAFELISTED.contains(&name) => Header::Hidden,
        _ => Header::Absent,
    };
    ResponseHead {
        status: response.status(),
        content_range: header("content-range"),
        content_length: header("content-length"),
        content_encoding: header("content-encoding"),
        etag: header("etag"),
        last_modified: header("last-modified"),
        content_disposition: header("content-disposition"),
        content_type: header("content-type"),
        repr_digest: header("repr-digest"),
    }
}

pub struct FetchBody {
    reader: Option<ReadableStreamDefaultReader>,
    _abort: AbortOnDrop,
}

impl Body for FetchBody {
    type Chunk = Uint8Array;

    async fn next(&mut self) -> Result<Option<Uint8Array>, TransportError> {
        let Some(reader) = &self.reader else {
            return Ok(None);
        };
        let result: JsValue = JsFuture::from(reader.read()).await.map_err(network)?;
        if js::get(&result, "done").is_truthy() {
            return Ok(None);
        }
        js::get(&result, "value")
            .dyn_into::<Uint8Array>()
            .map(Some)
            .map_err(|_| {
                TransportError::Network("the body stream yielded something other than bytes".into())
            })
    }
}

/// An abandoned body is cancelled before its request is aborted: WebKit
/// keeps an aborted request's socket open until the server closes it, and
/// six such sockets block every later request to that host.
impl Drop for FetchBody {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            // The outcome does not matter; awaiting it keeps a rejection handled.
            let cancelled = JsFuture::from(reader.cancel());
            wasm_bindgen_futures::spawn_local(async move {
                let _ = cancelled.await;
            });
        }
    }
}

/// Aborts its request when dropped: when a body is abandoned (paused,
/// stalled, not needed) the connection is released at once.
struct AbortOnDrop(AbortController);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn network(e: JsValue) -> TransportError {
    TransportError::Network(js::message(&e))
}

fn invalid(e: JsValue) -> TransportError {
    TransportError::InvalidRequest(js::message(&e))
}
