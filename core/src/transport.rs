//! What the driver needs from HTTP: one GET, its head, its body as chunks.
//!
//! In wasm this is `fetch` with an AbortController; natively, in tests, a
//! scripted transport. Dropping a body must abort its request.

use super::range::ByteRange;

/// A response header as the transport could read it.
///
/// In a browser a cross-origin response hides every header the server did not
/// list in `Access-Control-Expose-Headers`: it reads as null exactly like a
/// header that was never sent. The transport tells the two apart where it can
/// (a CORS response, a header that is not CORS-safelisted) because the fix is
/// different: "hidden" is a server configuration the user can change.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Header {
    #[default]
    Absent,
    Hidden,
    Present(String),
}

impl Header {
    pub fn value(&self) -> Option<&str> {
        match self {
            Header::Present(v) => Some(v.as_str()),
            _ => None,
        }
    }

    pub fn is_hidden(&self) -> bool {
        matches!(self, Header::Hidden)
    }
}

impl From<Option<&str>> for Header {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Header::Absent, |v| Header::Present(v.to_string()))
    }
}

/// A piece of a body as the transport delivers it. In wasm it is a JS
/// `Uint8Array` that never crosses into wasm memory, or a whole body the
/// browser kept as a `Blob`: the driver only counts and slices chunks, and
/// the store writes them.
#[allow(async_fn_in_trait)] // wasm is single-threaded: no Send bound is wanted.
pub trait Chunk: Clone {
    fn len(&self) -> u64;
    /// Bytes `start..end` of this chunk (`end <= len()`).
    fn slice(&self, start: u64, end: u64) -> Self;
    /// A copy of the bytes, for the few that are compared with stored ones
    /// (read from wherever the transport keeps them; the error says why not).
    async fn bytes(&self) -> Result<Vec<u8>, String>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Chunk for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn slice(&self, start: u64, end: u64) -> Self {
        self[start as usize..end as usize].to_vec()
    }
    async fn bytes(&self) -> Result<Vec<u8>, String> {
        Ok(self.clone())
    }
}

/// A GET request, with a `Range` header when `range` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub range: Option<ByteRange>,
    /// A strong ETag for `If-Range`: the server answers 200 with the whole
    /// file instead of a range of a different version. A transport leaves it
    /// out where it would cost a CORS preflight the server may refuse.
    pub if_range: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// The parts of a response the driver reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub content_range: Header,
    pub content_length: Header,
    pub content_encoding: Header,
    pub etag: Header,
    pub last_modified: Header,
    pub content_disposition: Header,
    pub content_type: Header,
    /// RFC 9530: the digest of the whole file, whatever range this is.
    pub repr_digest: Header,
}

pub struct Response<B> {
    pub head: ResponseHead,
    pub body: B,
}

/// Why a request or a body read failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// Connection refused or reset, DNS, CORS rejection, offline…
    Network(String),
    /// The request could not even be built (a bad header from the caller).
    InvalidRequest(String),
}

#[allow(async_fn_in_trait)] // wasm is single-threaded: no Send bound is wanted.
pub trait Body {
    type Chunk: Chunk;
    /// The next chunk, `None` at the end of the body.
    async fn next(&mut self) -> Result<Option<Self::Chunk>, TransportError>;

    /// The whole body, unread so far, as one chunk the transport can keep
    /// out of the program's memory (a browser's `response.blob()` never
    /// hands the bytes to the page), or `None` where it cannot: then read
    /// with [`Body::next`]. A body that fails part-way keeps nothing.
    async fn whole(&mut self) -> Option<Result<Self::Chunk, TransportError>> {
        None
    }
}

#[allow(async_fn_in_trait)]
pub trait Transport {
    type Body: Body;
    async fn send(&self, request: &Request) -> Result<Response<Self::Body>, TransportError>;
}
