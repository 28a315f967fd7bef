//! Time, passed in: the core never reads a clock itself, so native tests run
//! retries, backoff and stall timeouts on a virtual clock, instantly.

use std::future::Future;

pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves after `ms` milliseconds; dropping it cancels the timer.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
    /// A random 64-bit seed for backoff jitter.
    fn seed(&self) -> u64;
}
