//! A piece of a body as the web transport hands it to the stores: bytes
//! read from the stream, or a whole body kept as a `Blob`.

use super::js;
use crate::core::transport::Chunk;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

#[wasm_bindgen]
extern "C" {
    /// `Blob`, for a `slice` binding without `catch`: it clamps its
    /// arguments and never throws.
    #[wasm_bindgen(js_name = Blob)]
    type Slicable;

    #[wasm_bindgen(method, js_name = slice)]
    fn slice_of(this: &Slicable, start: f64, end: f64) -> Blob;
}

/// A piece of a body: bytes the page read from the stream, or a whole body
/// the browser kept as a `Blob` (`response.blob()`), which stores that keep
/// Blobs (IndexedDB) store without the bytes passing through the page.
#[derive(Clone, Debug)]
pub enum WebChunk {
    Bytes(Uint8Array),
    Blob(Blob),
}

impl WebChunk {
    /// The chunk as a part for `new Blob(parts)`.
    pub fn as_part(&self) -> &JsValue {
        match self {
            Self::Bytes(bytes) => bytes,
            Self::Blob(blob) => blob,
        }
    }

    /// The chunk as bytes in JS memory (a Blob is read), for stores that write bytes.
    pub async fn to_array(&self) -> Result<Uint8Array, JsValue> {
        match self {
            Self::Bytes(bytes) => Ok(bytes.clone()),
            Self::Blob(blob) => {
                let buffer: JsValue = JsFuture::from(blob.array_buffer()).await?;
                Ok(Uint8Array::new(&buffer))
            }
        }
    }

    /// The chunks as bytes in JS memory, in order.
    pub async fn arrays(chunks: &[Self]) -> Result<Vec<Uint8Array>, JsValue> {
        let mut out = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            out.push(chunk.to_array().await?);
        }
        Ok(out)
    }

    /// `new Blob(chunks)`: Blob parts are referenced, bytes copied. A whole
    /// body is its own Blob (wrapping it would cost the browser a round trip).
    pub fn blob_of(chunks: &[Self]) -> Result<Blob, JsValue> {
        if let [Self::Blob(blob)] = chunks {
            return Ok(blob.clone());
        }
        let parts: Array = chunks.iter().map(Self::as_part).collect();
        Blob::new_with_blob_sequence(&parts)
    }
}

impl Chunk for WebChunk {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(bytes) => u64::from(bytes.length()),
            // Sizes are whole numbers, exact in an f64 far past any file.
            Self::Blob(blob) => blob.size() as u64,
        }
    }
    fn slice(&self, start: u64, end: u64) -> Self {
        match self {
            // Streamed chunks are far below 4 GiB; offsets past the chunk were excluded by the caller.
            Self::Bytes(bytes) => Self::Bytes(bytes.subarray(start as u32, end as u32)),
            Self::Blob(blob) => Self::Blob(
                blob.unchecked_ref::<Slicable>()
                    .slice_of(start as f64, end as f64),
            ),
        }
    }
    async fn bytes(&self) -> Result<Vec<u8>, String> {
        match self.to_array().await {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(e) => Err(js::message(&e)),
        }
    }
}
