//! A content response's body: its bytes (the generated content, optionally
//! framed as multipart or gzip) and their sending (paced by `throttle`, ended
//! by a cut, or held open by a stall). Also the content's SHA-256.

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::connection::is_retryable;
use super::response::write_counted;
use super::state::{CutWatch, Moment};
use super::{CHUNK, POLL};
use crate::content::fill;
use crate::gzip::{crc32, Part, StoredGzip};
use crate::sha256::Sha256;
use crate::MULTIPART_BOUNDARY;

/// Largest single write of a throttled body.
const THROTTLE_CHUNK: u64 = 16 * 1024;
/// A stalled response gives up (and closes) after this.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// A response body: generated content bytes, optionally framed (multipart).
pub(super) struct Body {
    /// Sent as gzip (stored blocks) of the content, for `encoding=gzip`.
    gzip: Option<StoredGzip>,
    prefix: Vec<u8>,
    seed: u64,
    start: u64,
    len: u64,
    suffix: Vec<u8>,
}

impl Body {
    /// `len` bytes of the content of file `seed` from `start`.
    pub(super) fn content(seed: u64, start: u64, len: u64) -> Body {
        Body {
            gzip: None,
            prefix: Vec::new(),
            seed,
            start,
            len,
            suffix: Vec::new(),
        }
    }

    /// The same bytes as the one part of a `multipart/byteranges` body whose
    /// Content-Range is `content_range`.
    pub(super) fn multipart(seed: u64, start: u64, len: u64, content_range: &str) -> Body {
        Body {
            prefix: format!(
                "--{MULTIPART_BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Range: {content_range}\r\n\r\n"
            )
            .into_bytes(),
            suffix: format!("\r\n--{MULTIPART_BOUNDARY}--\r\n").into_bytes(),
            ..Body::content(seed, start, len)
        }
    }

    /// The same content, framed as a gzip stream.
    pub(super) fn gzipped(mut self) -> Body {
        let mut crc = 0;
        content_chunks(self.seed, self.start, self.len, |chunk| {
            crc = crc32(crc, chunk);
        });
        self.gzip = Some(StoredGzip { len: self.len, crc });
        self
    }

    pub(super) fn total(&self) -> u64 {
        if let Some(gz) = self.gzip {
            return gz.total();
        }
        (self.prefix.len() as u64)
            .saturating_add(self.len)
            .saturating_add(self.suffix.len() as u64)
    }

    /// Fills `out` with the body bytes from position `pos` (within the body).
    fn fill(&self, pos: u64, out: &mut [u8]) {
        if let Some(gz) = self.gzip {
            let (mut pos, mut out) = (pos, out);
            while !out.is_empty() {
                let n = match gz.part_at(pos) {
                    Part::Frame(bytes) => {
                        let n = bytes.len().min(out.len());
                        out[..n].copy_from_slice(&bytes[..n]);
                        n
                    }
                    Part::Content { at, n } => {
                        let n = (n as usize).min(out.len());
                        fill(self.seed, self.start + at, &mut out[..n]);
                        n
                    }
                };
                pos += n as u64;
                out = &mut out[n..];
            }
            return;
        }
        let prefix_len = self.prefix.len() as u64;
        let content_end = prefix_len.saturating_add(self.len);
        let mut pos = pos;
        let mut out = out;
        while !out.is_empty() {
            let n;
            if pos < prefix_len {
                let from = pos as usize;
                n = out.len().min(self.prefix.len() - from);
                out[..n].copy_from_slice(&self.prefix[from..from + n]);
            } else if pos < content_end {
                n = (content_end - pos).min(out.len() as u64) as usize;
                fill(self.seed, self.start + (pos - prefix_len), &mut out[..n]);
            } else {
                let from = (pos - content_end) as usize;
                n = out.len();
                out.copy_from_slice(&self.suffix[from..from + n]);
            }
            pos += n as u64;
            out = &mut out[n..];
        }
    }
}

/// Calls `f` on `len` bytes of the content of file `seed` from `start`, in
/// pieces of at most `CHUNK` bytes.
fn content_chunks(seed: u64, start: u64, len: u64, mut f: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0;
    while at < len {
        let chunk = &mut buf[..(len - at).min(CHUNK as u64) as usize];
        fill(seed, start + at, chunk);
        f(chunk);
        at += chunk.len() as u64;
    }
}

/// The SHA-256 of a file's content (hashed each time: meant for test-sized files).
pub(super) fn content_sha256(seed: u64, size: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    content_chunks(seed, 0, size, |chunk| hasher.update(chunk));
    hasher.finish()
}

/// What was written of a body.
pub(super) struct Written {
    /// Bytes the socket took.
    pub(super) sent: u64,
    /// All of them were written: no error, no cut.
    pub(super) complete: bool,
}

/// Writes the first `limit` bytes of `body`, paced to `throttle` bytes/s if
/// non-zero; calls `on_moment` just before the last write.
pub(super) fn send_body(
    stream: &TcpStream,
    buf: &mut [u8],
    body: &Body,
    limit: u64,
    throttle: u64,
    cut: &CutWatch,
    on_moment: &mut dyn FnMut(Moment),
) -> Written {
    let began = Instant::now();
    let step = if throttle == 0 {
        buf.len() as u64
    } else {
        // About 20 writes a second, so the pacing is smooth even at low rates.
        (throttle / 20).clamp(1, THROTTLE_CHUNK)
    };
    let mut sent = 0;
    let stopped = |sent| Written {
        sent,
        complete: false,
    };
    while sent < limit {
        if cut.is_cut() {
            return stopped(sent);
        }
        if throttle > 0 {
            let due = began + Duration::from_secs_f64(sent as f64 / throttle as f64);
            if !cut.sleep_until(due) {
                return stopped(sent);
            }
        }
        let chunk = &mut buf[..(limit - sent).min(step) as usize];
        body.fill(sent, chunk);
        if sent + chunk.len() as u64 == limit {
            on_moment(Moment::LastWrite);
        }
        if write_counted(stream, chunk, &mut sent).is_err() {
            return stopped(sent);
        }
    }
    Written {
        sent,
        complete: true,
    }
}

/// Keeps the connection open and silent until the client closes it, the file
/// is cut, or `STALL_LIMIT` passes.
pub(super) fn stall(stream: &TcpStream, cut: &CutWatch) {
    let deadline = Instant::now() + STALL_LIMIT;
    if stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut probe = [0u8; 1];
    while Instant::now() < deadline && !cut.is_cut() {
        match stream.peek(&mut probe) {
            Ok(0) => return, // The client closed.
            Ok(_) => thread::sleep(POLL),
            Err(e) if is_retryable(&e) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_fill_across_their_parts() {
        let body = Body {
            gzip: None,
            prefix: b"<head>".to_vec(),
            seed: 3,
            start: 100,
            len: 20,
            suffix: b"<tail>".to_vec(),
        };
        let mut whole = b"<head>".to_vec();
        let mut content = [0u8; 20];
        fill(3, 100, &mut content);
        whole.extend_from_slice(&content);
        whole.extend_from_slice(b"<tail>");
        assert_eq!(body.total(), whole.len() as u64);
        for pos in 0..whole.len() {
            for len in 0..=whole.len() - pos {
                let mut out = vec![0u8; len];
                body.fill(pos as u64, &mut out);
                assert_eq!(out, whole[pos..pos + len], "{pos}+{len}");
            }
        }
    }
}
