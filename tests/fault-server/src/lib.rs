//! Test support for resumable-fetch: deterministic file content (usable from wasm
//! tests to check downloaded bytes) and, on native targets, a fault-injecting
//! HTTP/1.1 range server bound to 127.0.0.1.
//!
//! Only the content generation and SHA-256 build for `wasm32`; the server needs
//! `std::net` and threads.

mod content;
pub mod sha256;

#[cfg(not(target_arch = "wasm32"))]
mod http;
#[cfg(not(target_arch = "wasm32"))]
pub mod server;

pub use content::{byte_at, content_etag, content_last_modified, fill, http_date, splitmix64};
#[cfg(not(target_arch = "wasm32"))]
pub use server::{start, Handle};
