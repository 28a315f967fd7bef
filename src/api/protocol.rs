//! The messages between a page's `Download` proxy (`remote.rs`) and the
//! package's worker that runs it (`host.rs`), every key and call named once
//! so that the two ends cannot drift apart:
//!
//! - page → worker: `{ call, op, handle?, url?, options?, arg? }`;
//! - worker → page: `{ ready }` once it serves; `{ call, ok | error,
//!   handle?, snapshot? }` for each call; `{ event, handle, payload,
//!   snapshot }` for each progress or restart event.
//!
//! A snapshot carries the download's properties under their JS names.

pub const READY: &str = "ready";
pub const CALL: &str = "call";
pub const OP: &str = "op";
pub const HANDLE: &str = "handle";
pub const URL: &str = "url";
pub const OPTIONS: &str = "options";
pub const ARG: &str = "arg";
pub const OK: &str = "ok";
pub const ERROR: &str = "error";
pub const SNAPSHOT: &str = "snapshot";
pub const EVENT: &str = "event";
pub const PAYLOAD: &str = "payload";

/// What a call asks the worker to do: a method of the download, or `open`
/// and `close` (the proxy was dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Open,
    Start,
    Pause,
    Cancel,
    SetUrl,
    Blob,
    Close,
}

impl Op {
    const ALL: [Op; 7] = [
        Op::Open,
        Op::Start,
        Op::Pause,
        Op::Cancel,
        Op::SetUrl,
        Op::Blob,
        Op::Close,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Start => "start",
            Op::Pause => "pause",
            Op::Cancel => "cancel",
            Op::SetUrl => "setUrl",
            Op::Blob => "blob",
            Op::Close => "close",
        }
    }

    pub fn parse(name: &str) -> Option<Op> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// The download events the worker forwards to the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    Progress,
    Restart,
}

impl Forwarded {
    pub fn name(self) -> &'static str {
        match self {
            Forwarded::Progress => "progress",
            Forwarded::Restart => "restart",
        }
    }

    pub fn parse(name: &str) -> Option<Forwarded> {
        [Forwarded::Progress, Forwarded::Restart]
            .into_iter()
            .find(|event| event.name() == name)
    }
}
