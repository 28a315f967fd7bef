//! The transport: the global `fetch` (windows, workers, Node, Deno, workerd),
//! with an AbortController that aborts the request when its body is dropped,
//! and the body read as a stream of `Uint8Array`s that never enter wasm
//! memory, or taken whole as a `Blob` that never enters the page's.

use super::chunk::WebChunk;
use super::js;
use crate::core::range::ByteRange;
use crate::core::transport::Header;
use crate::core::transport::{self, Body, ResponseHead, Transport, TransportError};
use js_sys::{Promise, Uint8Array};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Blob, Headers, ReadableStreamDefaultReader, Request, RequestCache,
    RequestCredentials, RequestInit, Response, ResponseType,
};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Result<Promise, JsValue>;
}

/// Request options that apply to every request of a download.
#[derive(Clone, Debug, Default)]
pub struct FetchTransport {
    pub credentials: Option<RequestCredentials>,
    pub referrer: Option<String>,
    /// The URL last checked, and whether it may carry `If-Range`: every
    /// block of a download asks the same URL, so it is checked once.
    checked: RefCell<Option<(String, bool)>>,
}

impl FetchTransport {
    /// Checks the URL and referrer once per URL, as `new Request` does (so a
    /// bad one is an invalid request, not a network error the driver would
    /// retry), and answers whether `If-Range` may be sent to it.
    fn check(&self, url: &str, init: &RequestInit) -> Result<bool, TransportError> {
        if let Some((checked, if_range)) = &*self.checked.borrow() {
            if checked == url {
                return Ok(*if_range);
            }
        }
        Request::new_with_str_and_init(url, init).map_err(invalid)?;
        let if_range = no_preflight(url);
        *self.checked.borrow_mut() = Some((url.to_owned(), if_range));
        Ok(if_range)
    }
}

impl Transport for FetchTransport {
    type Body = FetchBody;

    async fn send(
        &self,
        request: &transport::Request,
    ) -> Result<transport::Response<FetchBody>, TransportError> {
        let abort = AbortController::new().map_err(network)?;
        let init = RequestInit::new();
        init.set_method("GET");
        init.set_signal(Some(&abort.signal()));
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
        let if_range_allowed = self.check(&request.url, &init)?;
        if let Some(tag) = request.if_range.as_ref().filter(|_| if_range_allowed) {
            headers.set("If-Range", tag).map_err(invalid)?;
        }
        init.set_headers(&headers);
        let response: Response =
            JsFuture::from(global_fetch(&request.url, &init).map_err(network)?)
                .await
                .map_err(network)?
                .dyn_into()
                .map_err(|_| TransportError::Network("fetch did not return a Response".into()))?;
        Ok(transport::Response {
            head: head_of(&response),
            body: FetchBody {
                unread: Some(response),
                reader: None,
                abort: Some(abort),
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

/// A response's body: read as a stream (`next`) or taken whole (`whole`),
/// whichever is asked first.
pub struct FetchBody {
    /// The response until either begins.
    unread: Option<Response>,
    reader: Option<ReadableStreamDefaultReader>,
    /// Aborts the request when the body is dropped unfinished; `None` once
    /// it was taken whole (aborting then would only cost the page time).
    abort: Option<AbortController>,
}

impl Body for FetchBody {
    type Chunk = WebChunk;

    async fn next(&mut self) -> Result<Option<WebChunk>, TransportError> {
        if let Some(response) = self.unread.take() {
            self.reader = match response.body() {
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
        }
        let Some(reader) = &self.reader else {
            return Ok(None);
        };
        let result: JsValue = JsFuture::from(reader.read()).await.map_err(network)?;
        if js::get(&result, "done").is_truthy() {
            return Ok(None);
        }
        js::get(&result, "value")
            .dyn_into::<Uint8Array>()
            .map(|bytes| Some(WebChunk::Bytes(bytes)))
            .map_err(|_| {
                TransportError::Network("the body stream yielded something other than bytes".into())
            })
    }

    /// `response.blob()`: the browser keeps the bytes (on disk when large).
    async fn whole(&mut self) -> Option<Result<WebChunk, TransportError>> {
        let response = self.unread.take()?;
        let blob = match response.blob() {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        let blob = blob.map_err(network).and_then(|blob| {
            blob.dyn_into::<Blob>()
                .map_err(|_| TransportError::Network("response.blob() gave no Blob".into()))
        });
        if blob.is_ok() {
            self.abort = None;
        }
        Some(blob.map(WebChunk::Blob))
    }
}

/// An abandoned body (paused, stalled, not needed) is cancelled, then its
/// request aborted, so the connection is released at once. Cancelled first:
/// WebKit keeps an aborted request's socket open until the server closes
/// it, and six such sockets block every later request to that host.
impl Drop for FetchBody {
    fn drop(&mut self) {
        let cancel = match (&self.reader, self.unread.as_ref().and_then(Response::body)) {
            (Some(reader), _) => Some(reader.cancel()),
            (None, Some(stream)) => Some(stream.cancel()),
            (None, None) => None,
        };
        if let Some(cancel) = cancel {
            // The outcome does not matter; awaiting it keeps a rejection handled.
            let cancelled = JsFuture::from(cancel);
            wasm_bindgen_futures::spawn_local(async move {
                let _ = cancelled.await;
            });
        }
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}

fn network(e: JsValue) -> TransportError {
    TransportError::Network(js::message(&e))
}

fn invalid(e: JsValue) -> TransportError {
    TransportError::InvalidRequest(js::message(&e))
}
