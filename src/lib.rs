//! resumable-fetch: downloads large files in browsers and edge runtimes so
//! that a reload, a dropped connection or a sleeping laptop loses nothing.
//!
//! The file is fetched in blocks with HTTP `Range` requests; every block is
//! stored (OPFS or IndexedDB in browsers, a file store in Node and Deno, a
//! Durable Object's storage in Workers, or memory) together with an offset
//! record, and a download opened again resumes from exactly what is stored.
//!
//! - [`core`]: the pure logic, generic over transport, store and clock: the
//!   crate `resumable-fetch-core`, which depends on no web crate.
//! - `web` (wasm32): the adapters, one file per backend (fetch, IndexedDB,
//!   OPFS, custom stores, Web Locks).
//! - `api` (wasm32): the JavaScript API published on npm; it only converts.

pub use resumable_fetch_core as core;

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(target_arch = "wasm32")]
pub mod api;

/// Talc instead of the standard library's dlmalloc: about 5 KB less wasm.
// SAFETY: wasm32 here is single-threaded (no atomics, no shared memory).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };
