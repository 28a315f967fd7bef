//! resumable-fetch: downloads large files in browsers and edge runtimes so
//! that a reload, a dropped connection or a sleeping laptop loses nothing.
//!
//! The file is fetched in blocks with HTTP `Range` requests; every block is
//! stored (IndexedDB in browsers, memory elsewhere) together with an offset
//! record, and a download opened again resumes from exactly what is stored.
//!
//! - [`core`]: the pure logic, generic over transport, store and clock.
//! - `web` (wasm32): fetch, IndexedDB and memory adapters.
//! - `api` (wasm32): the JavaScript API published on npm.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(target_arch = "wasm32")]
pub mod api;

/// Talc instead of the standard library's dlmalloc: about 5 KB less wasm.
// SAFETY: wasm32 here is single-threaded (no atomics, no shared memory).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };
