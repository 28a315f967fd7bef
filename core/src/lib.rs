//! The pure core of resumable-fetch: HTTP range logic, validators, the plan,
//! the record and the driver. It depends on no web crate (Cargo keeps it
//! so), does no I/O and reads no clock of its own; it builds and is tested
//! natively. The package re-exports it as `resumable_fetch::core`.

pub mod clock;
pub mod codec;
pub mod driver;
pub mod error;
pub mod filename;
pub mod integrity;
pub mod memory;
pub mod options;
pub mod pieces;
pub mod plan;
pub mod progress;
pub mod range;
pub mod record;
pub mod response;
pub mod signal;
pub mod small_map;
pub mod store;
pub mod store_contract;
pub mod transport;
pub mod validator;
pub mod writers;

pub use driver::{Driver, Event, Outcome, RestartReason};
pub use error::{Error, ServerError, StoreError, StoreErrorKind};
pub use options::{OnServerChange, Options};
