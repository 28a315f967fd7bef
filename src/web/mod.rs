//! Adapters from the core's traits to what browsers and edge runtimes have:
//! the global `fetch`, IndexedDB, timers. Thin by design: the decisions live
//! in `core`.

pub mod backend;
pub mod chunk;
pub mod clock;
pub mod custom;
pub mod fetch;
pub mod idb;
pub mod js;
pub mod lock;
pub mod network;
pub mod opfs;
pub mod save;

pub use backend::{Backend, StoreChoice};
pub use chunk::WebChunk;
pub use clock::JsClock;
pub use fetch::FetchTransport;
