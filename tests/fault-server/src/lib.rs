//! Test support for resumable-fetch: deterministic file content (usable from wasm
//! tests to check downloaded bytes) and, on native targets, a fault-injecting
//! HTTP/1.1 range server bound to 127.0.0.1.
//!
//! Only the content generation and SHA-256 build for `wasm32`; the server needs
//! `std::net` and threads.

mod content;
#[cfg(not(target_arch = "wasm32"))]
mod gzip;
pub mod sha256;

#[cfg(not(target_arch = "wasm32"))]
mod http;
#[cfg(not(target_arch = "wasm32"))]
pub mod server;

/// The boundary of the server's `multipart/byteranges` answers (`multipart_next`).
pub const MULTIPART_BOUNDARY: &str = "fault-server-byteranges-3f6c9a1e0b7d4852";

pub use content::{byte_at, content_etag, content_last_modified, fill, http_date, splitmix64};
#[cfg(not(target_arch = "wasm32"))]
pub use server::{start, start_with, Handle};
