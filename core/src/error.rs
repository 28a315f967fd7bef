//! Every way a download can fail, with a stable code for programs and a
//! message for people that says what to do next.
//!
//! Server misbehaviour has its own enum ([`ServerError`]), as do storage
//! failures ([`StoreError`]); caller mistakes are [`Error::InvalidArgument`]
//! naming the option. The codes are part of the JS contract: add new ones,
//! never rename.

use super::integrity::Mismatch;
use super::range::{ByteRange, ContentRangeError};
use super::transport::TransportError;
use super::validator::Change;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server answered in a way we cannot use.
    Server(ServerError),
    /// The request failed before or while the body arrived, retries included.
    Network(String),
    /// No byte arrived for the stall timeout, retries included.
    Stalled {
        ms: u64,
    },
    Storage(StoreError),
    /// An option or argument from the caller is wrong.
    InvalidArgument {
        option: String,
        reason: String,
    },
    /// Another tab or worker is writing this download.
    Locked {
        id: String,
    },
    /// The call does not fit the download's state (e.g. `blob()` before it completed).
    InvalidState(String),
    /// The finished file does not have the digest it must have; its bytes
    /// were discarded.
    IntegrityMismatch(Mismatch),
    /// The download was cancelled.
    Aborted,
    /// The user closed the save picker without choosing a file.
    SaveCancelled,
    /// A bug in resumable-fetch.
    Internal(String),
}

/// A response we cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerError {
    /// An error status, or one that makes no sense for a GET of a file.
    Status { status: u16, url: String },
    /// The file changed on the server and `onServerChange` is `'fail'`.
    Changed(Change),
    /// The file kept changing while the download restarted for it.
    ChangedRepeatedly(Change),
    /// The response hides headers we need behind CORS.
    HeadersHidden { headers: Vec<&'static str> },
    /// A 206 with a `Content-Range` we cannot parse.
    BadContentRange {
        value: String,
        why: ContentRangeError,
    },
    /// A 206 without `Content-Range`.
    MissingContentRange,
    /// A `multipart/byteranges` body in reply to a single range.
    Multipart,
    /// A 206 for bytes that do not overlap the ones we asked for.
    WrongRange { asked: ByteRange, got: ByteRange },
    /// A body we cannot count as file bytes (compressed on the wire).
    ContentEncoding { encoding: String },
    /// Every request with `Range` failed on the network while one without
    /// it got through: the runtime refuses the server's range responses.
    RangesFail,
    /// A 206 whose body (or `Content-Length`) is not as long as its
    /// `Content-Range` says: a compression the runtime undid behind a
    /// hidden `Content-Encoding`, or a broken server. Nothing of it is stored.
    BodyLength { range: ByteRange, length: String },
    /// 416 where the file must have the range we asked for.
    Unsatisfiable {
        asked: ByteRange,
        total: Option<u64>,
    },
}

/// A failure of the block store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// Out of storage space.
    QuotaExceeded,
    /// The backend cannot be used here (absent, blocked, private mode).
    Unavailable,
    /// Stored data does not match the record (a piece missing or resized).
    Corrupt,
    /// Anything else the backend reported.
    Failed,
    /// A store the application supplied broke its contract (a method
    /// returned the wrong type): the caller's mistake, `INVALID_ARGUMENT`.
    Invalid,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl Error {
    /// The stable code JS callers switch on (`DownloadError.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Server(ServerError::Status { .. }) => "HTTP_STATUS",
            Error::Server(ServerError::Changed(_) | ServerError::ChangedRepeatedly(_)) => {
                "SERVER_CHANGED"
            }
            Error::Server(ServerError::HeadersHidden { .. }) => "CORS_HEADERS_HIDDEN",
            Error::Server(_) => "BAD_RESPONSE",
            Error::Network(_) | Error::Stalled { .. } => "NETWORK",
            Error::Storage(e) => match e.kind {
                StoreErrorKind::QuotaExceeded => "QUOTA_EXCEEDED",
                StoreErrorKind::Unavailable => "STORAGE_UNAVAILABLE",
                StoreErrorKind::Corrupt => "STORAGE_CORRUPT",
                StoreErrorKind::Failed => "STORAGE_FAILED",
                StoreErrorKind::Invalid => "INVALID_ARGUMENT",
            },
            Error::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Error::Locked { .. } => "LOCKED",
            Error::InvalidState(_) => "INVALID_STATE",
            Error::IntegrityMismatch(_) => "INTEGRITY_MISMATCH",
            Error::Aborted | Error::SaveCancelled => "ABORTED",
            Error::Internal(_) => "INTERNAL",
        }
    }

    pub fn invalid(option: &str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            option: option.to_string(),
            reason: reason.into(),
        }
    }

    /// Worth retrying with backoff: the same request may succeed later.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Network(_) | Error::Stalled { .. } => true,
            Error::Server(ServerError::Status { status, .. }) => {
                matches!(status, 408 | 425 | 429 | 500 | 502 | 503 | 504)
            }
            Error::Server(ServerError::WrongRange { .. }) => true,
            _ => false,
        }
    }
}

impl From<ServerError> for Error {
    fn from(e: ServerError) -> Self {
        Error::Server(e)
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Network(msg) => Error::Network(msg),
            // The URL and headers were validated; what is left is the runtime's verdict.
            TransportError::InvalidRequest(msg) => Error::invalid("url, headers or referrer", msg),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Storage(e)
    }
}

const KEPT: &str = "everything stored so far is kept";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Server(e) => e.fmt(f),
            Error::Network(msg) => write!(
                f,
                "the download failed on the network ({msg}); {KEPT}: call start() again once the connection is back"
            ),
            Error::Stalled { ms } => write!(
                f,
                "the server sent nothing for {ms} ms; {KEPT}: call start() again, or raise stallTimeoutMs for a slow server"
            ),
            Error::Storage(e) => e.fmt(f),
            Error::InvalidArgument { option, reason } => write!(f, "invalid `{option}`: {reason}"),
            Error::Locked { id } => write!(
                f,
                "download {id:?} is being written by another tab or worker; wait for it to finish or pause there first"
            ),
            Error::InvalidState(msg) => f.write_str(msg),
            Error::IntegrityMismatch(m) => write!(
                f,
                "the downloaded file does not match {}: expected {}, got {}; the stored bytes were discarded, and start() downloads the file again",
                m.source, m.expected, m.actual
            ),
            Error::Aborted => f.write_str("the download was cancelled"),
            Error::SaveCancelled => f.write_str(
                "the save was cancelled in the file picker; the download is kept: call save() again",
            ),
            Error::Internal(msg) => write!(
                f,
                "resumable-fetch hit a bug ({msg}); {KEPT}: please report it"
            ),
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Status { status, url } => {
                write!(f, "the server answered HTTP {status} for {url}")?;
                f.write_str(match status {
                    401 | 403 => ": access was refused; if the URL is signed it may have expired — open the download again with a fresh URL and the same id to continue",
                    404 | 410 => ": the file is not there; check the URL",
                    _ => "; everything stored so far is kept: call start() again later",
                })
            }
            ServerError::Changed(change) => write!(
                f,
                "the file on the server changed during the download ({change}); the stored part cannot be combined with the new file: remove the download and start again, or open it with onServerChange: 'restart' to do that automatically"
            ),
            ServerError::ChangedRepeatedly(change) => write!(
                f,
                "the file on the server kept changing while it was downloaded (last: {change}); try again once it has stopped changing"
            ),
            ServerError::HeadersHidden { headers } => write!(
                f,
                "this page cannot read the {} header{} of the server's cross-origin responses: the server must list {} in Access-Control-Expose-Headers (and send {}): `Access-Control-Expose-Headers: {}`",
                headers.join(", "),
                if headers.len() > 1 { "s" } else { "" },
                if headers.len() > 1 { "them" } else { "it" },
                if headers.len() > 1 { "them" } else { "it" },
                headers.join(", ")
            ),
            ServerError::BadContentRange { value, why } => write!(
                f,
                "the server sent an invalid Content-Range {value:?}: {why}"
            ),
            ServerError::MissingContentRange => f.write_str(
                "the server answered 206 Partial Content without a Content-Range header; the server must send one with every partial response",
            ),
            ServerError::Multipart => f.write_str(
                "the server answered a single range with a multipart/byteranges body; resumable-fetch asks for one range at a time and needs it back as a plain 206 with Content-Range",
            ),
            ServerError::RangesFail => f.write_str(
                "every request for a range of the file failed, while a request for the whole file got through: the server most likely compresses its range responses (nginx gzip_static always, Apache force-gzip), which this runtime refuses. The server must send range responses uncompressed",
            ),
            ServerError::BodyLength { range, length } => write!(
                f,
                "the server sent {length} for bytes {range} ({} bytes); the body was not stored. A server that compresses range responses (nginx gzip_static always, Apache force-gzip) does this: it must send ranges uncompressed",
                range.len()
            ),
            ServerError::WrongRange { asked, got } => write!(
                f,
                "the server sent bytes {got} when asked for {asked}"
            ),
            ServerError::ContentEncoding { encoding } => write!(
                f,
                "the server compressed a partial response (Content-Encoding: {encoding}); byte ranges of a compressed body are not the file's bytes — the server must send ranges uncompressed"
            ),
            ServerError::Unsatisfiable { asked, total } => match total {
                Some(t) => write!(f, "the server says bytes {asked} do not exist in a file of {t} bytes"),
                None => write!(f, "the server says bytes {asked} do not exist (416) without saying the file's length"),
            },
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            StoreErrorKind::QuotaExceeded => write!(
                f,
                "storage is full ({}); {KEPT}: free space (for example remove other downloads) and call start() again",
                self.message
            ),
            StoreErrorKind::Unavailable => write!(
                f,
                "this storage cannot be used here ({}); choose another `store`, e.g. 'auto'",
                self.message
            ),
            StoreErrorKind::Corrupt => write!(
                f,
                "stored data does not match its record ({}); remove the download and start again",
                self.message
            ),
            StoreErrorKind::Failed => write!(f, "storage failed: {}", self.message),
            StoreErrorKind::Invalid => write!(f, "invalid `store`: {}", self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let status = |s| {
            Error::Server(ServerError::Status {
                status: s,
                url: "u".into(),
            })
        };
        assert_eq!(status(404).code(), "HTTP_STATUS");
        assert!(status(503).is_transient());
        assert!(!status(404).is_transient());
        assert_eq!(
            Error::Server(ServerError::HeadersHidden {
                headers: vec!["Content-Range"]
            })
            .code(),
            "CORS_HEADERS_HIDDEN"
        );
        assert_eq!(
            Error::Storage(StoreError::new(StoreErrorKind::QuotaExceeded, "x")).code(),
            "QUOTA_EXCEEDED"
        );
        assert_eq!(
            Error::invalid("connections", "x").code(),
            "INVALID_ARGUMENT"
        );
        assert_eq!(
            Error::Storage(StoreError::new(StoreErrorKind::Invalid, "x")).code(),
            "INVALID_ARGUMENT"
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        let hidden = Error::Server(ServerError::HeadersHidden {
            headers: vec!["Content-Range", "ETag"],
        });
        assert!(hidden
            .to_string()
            .contains("Access-Control-Expose-Headers: Content-Range, ETag"));
        let expired = Error::Server(ServerError::Status {
            status: 403,
            url: "https://x/y".into(),
        });
        assert!(expired.to_string().contains("fresh URL"));
        let quota = Error::Storage(StoreError::new(StoreErrorKind::QuotaExceeded, "x"));
        assert!(quota.to_string().contains("call start() again"));
    }
}
