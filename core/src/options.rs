//! Download options, their defaults, and their validation.
//!
//! Every option comes from a caller and may be wrong; a wrong one is an
//! `INVALID_ARGUMENT` error naming it, before anything is fetched or stored.

use super::error::Error;
use super::integrity::Expected;

/// What to do when the file on the server changed under a partial download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnServerChange {
    /// Discard the stored bytes and download the new file from the start.
    #[default]
    Restart,
    /// Stop with `SERVER_CHANGED`, keeping the stored bytes.
    Fail,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Where to download from.
    pub url: String,
    /// The key the download is stored under; defaults to the URL without its fragment.
    pub id: String,
    /// Parallel range requests. HTTP/1.1 browsers allow 6 per host and the page needs some.
    pub connections: u32,
    /// Bytes per range request and per stored piece: the `blockSize` option.
    pub block_size: u64,
    /// The same for a block taken whole (`Store::takes_whole_bodies`, on a
    /// fast network). By default it is larger: such a block never passes
    /// through the program's memory, and fewer, larger Blob values cost the
    /// browser less (docs/BENCHMARKS.md). `blockSize` sets both.
    pub whole_block_size: u64,
    /// Consecutive failed attempts tolerated before a transient error is reported.
    pub retries: u32,
    /// A body with no new byte for this long is aborted and retried.
    pub stall_timeout_ms: u64,
    /// Requests one run may send before it pauses: runtimes that cap the
    /// subrequests of an invocation (Cloudflare Workers) resume in the next.
    pub max_requests: Option<u32>,
    pub on_server_change: OnServerChange,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The name to save under, instead of the server's or the URL's.
    pub filename: Option<String>,
    /// The digest the finished file must have (the `integrity` option).
    pub integrity: Option<Expected>,
    /// The runtime is a browser, which drops headers pages may not set
    /// (Cookie, Referer, User-Agent…): those are refused up front. Node, Deno
    /// and workerd send them.
    pub browser: bool,
}

pub const DEFAULT_CONNECTIONS: u32 = 4;
pub const DEFAULT_BLOCK_SIZE: u64 = 8 << 20;
pub const DEFAULT_WHOLE_BLOCK_SIZE: u64 = 16 << 20;
pub const DEFAULT_RETRIES: u32 = 5;
pub const DEFAULT_STALL_TIMEOUT_MS: u64 = 30_000;

pub const MAX_CONNECTIONS: u32 = 16;
pub const MIN_BLOCK_SIZE: u64 = 1 << 10;
pub const MAX_BLOCK_SIZE: u64 = 1 << 30;
pub const MAX_RETRIES: u32 = 100;
pub const MAX_STALL_TIMEOUT_MS: u64 = 3_600_000;

impl Options {
    /// Defaults for `url`, its id being the URL without its fragment.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            id: default_id(url),
            connections: DEFAULT_CONNECTIONS,
            block_size: DEFAULT_BLOCK_SIZE,
            whole_block_size: DEFAULT_WHOLE_BLOCK_SIZE,
            retries: DEFAULT_RETRIES,
            stall_timeout_ms: DEFAULT_STALL_TIMEOUT_MS,
            max_requests: None,
            on_server_change: OnServerChange::default(),
            headers: Vec::new(),
            filename: None,
            integrity: None,
            browser: true,
        }
    }

    /// The `blockSize` option: one size for every block, streamed or whole.
    pub fn set_block_size(&mut self, bytes: u64) {
        self.block_size = bytes;
        self.whole_block_size = bytes;
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.url.is_empty() {
            return Err(Error::invalid("url", "it is empty"));
        }
        if self.id.is_empty() {
            return Err(Error::invalid("id", "it is empty"));
        }
        in_range(
            "connections",
            self.connections.into(),
            1,
            MAX_CONNECTIONS.into(),
        )?;
        in_range("blockSize", self.block_size, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE)?;
        in_range(
            "blockSize",
            self.whole_block_size,
            MIN_BLOCK_SIZE,
            MAX_BLOCK_SIZE,
        )?;
        in_range("retries", self.retries.into(), 0, MAX_RETRIES.into())?;
        in_range(
            "stallTimeoutMs",
            self.stall_timeout_ms,
            1,
            MAX_STALL_TIMEOUT_MS,
        )?;
        if let Some(n) = self.max_requests {
            // A resumed run may spend one request proving the stored bytes
            // before the one that fetches: with fewer it could never progress.
            in_range("maxRequests", n.into(), 2, u32::MAX.into())?;
        }
        for (name, value) in &self.headers {
            check_header(name, value, self.browser)?;
        }
        Ok(())
    }
}

/// The URL without its fragment: `#...` never reaches the server.
pub fn default_id(url: &str) -> String {
    url.split('#').next().unwrap_or(url).to_string()
}

fn in_range(option: &str, v: u64, min: u64, max: u64) -> Result<(), Error> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(Error::invalid(
            option,
            format!("{v} is not between {min} and {max}"),
        ))
    }
}

/// Rejects headers that would break ranges or framing, and in a browser
/// those it would drop silently, saying what to use instead.
fn check_header(name: &str, value: &str, browser: bool) -> Result<(), Error> {
    let is_token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !is_token {
        return Err(Error::invalid(
            "headers",
            format!("{name:?} is not a valid header name"),
        ));
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::invalid(
            "headers",
            format!("the value of {name} contains a line break or NUL"),
        ));
    }
    let lower = name.to_ascii_lowercase();
    let advice = match lower.as_str() {
        "range" | "if-range" => "resumable-fetch sets it itself for every block",
        "accept-encoding" => "compressed bodies cannot be resumed by range; the runtime manages it",
        "connection" | "content-length" | "expect" | "host" | "keep-alive" | "te" | "trailer"
        | "transfer-encoding" | "upgrade" => "the runtime sets it for each request",
        _ if !browser => return Ok(()),
        "cookie" | "cookie2" => {
            "browsers do not let pages set it; use `credentials: 'include'` to send the site's cookies"
        }
        "referer" => "browsers do not let pages set it; use the `referrer` option",
        "user-agent" => "browsers do not let pages set it; it cannot be changed from a page",
        "accept-charset" | "access-control-request-headers" | "access-control-request-method"
        | "date" | "dnt" | "origin" | "set-cookie" | "via" => "browsers do not let pages set it",
        _ if lower.starts_with("proxy-") || lower.starts_with("sec-") => {
            "browsers do not let pages set it"
        }
        _ => return Ok(()),
    };
    Err(Error::invalid(
        "headers",
        format!("the header {name} cannot be set: {advice}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_id_drops_the_fragment() {
        let o = Options::new("https://h/f.bin?x=1#part");
        assert_eq!(o.id, "https://h/f.bin?x=1");
        assert_eq!(o.validate(), Ok(()));
    }

    #[test]
    fn block_size_sets_streamed_and_whole_blocks_alike() {
        let mut o = Options::new("https://h/f");
        assert!(
            o.whole_block_size > o.block_size,
            "larger whole blocks by default"
        );
        o.set_block_size(3 << 20);
        assert_eq!((o.block_size, o.whole_block_size), (3 << 20, 3 << 20));
        o.set_block_size(10);
        assert!(o.validate().is_err());
    }

    #[test]
    fn rejects_out_of_range_options_by_name() {
        let base = Options::new("https://h/f");
        let cases: Vec<(Options, &str)> = vec![
            (
                Options {
                    connections: 0,
                    ..base.clone()
                },
                "connections",
            ),
            (
                Options {
                    connections: 17,
                    ..base.clone()
                },
                "connections",
            ),
            (
                Options {
                    block_size: 10,
                    ..base.clone()
                },
                "blockSize",
            ),
            (
                Options {
                    retries: 1000,
                    ..base.clone()
                },
                "retries",
            ),
            (
                Options {
                    stall_timeout_ms: 0,
                    ..base.clone()
                },
                "stallTimeoutMs",
            ),
            (
                Options {
                    id: String::new(),
                    ..base.clone()
                },
                "id",
            ),
        ];
        for (opts, option) in cases {
            match opts.validate() {
                Err(Error::InvalidArgument { option: o, .. }) => assert_eq!(o, option),
                other => panic!("{option}: {other:?}"),
            }
        }
    }

    #[test]
    fn forbidden_headers_name_the_option_to_use() {
        let with = |name: &str, value: &str| Options {
            headers: vec![(name.into(), value.into())],
            ..Options::new("https://h/f")
        };
        assert_eq!(with("Authorization", "Bearer x").validate(), Ok(()));
        assert_eq!(with("X-Custom", "1").validate(), Ok(()));
        let message = |o: Options| o.validate().unwrap_err().to_string();
        assert!(message(with("Cookie", "a=b")).contains("credentials: 'include'"));
        assert!(message(with("referer", "x")).contains("`referrer` option"));
        assert!(message(with("Range", "bytes=0-")).contains("sets it itself"));
        assert!(message(with("Sec-Fetch-Mode", "x")).contains("cannot be set"));
        assert!(message(with("bad name", "x")).contains("not a valid header name"));
        assert!(message(with("X-A", "a\r\nb")).contains("line break"));
        // Outside a browser, the runtime sends what pages may not set.
        let server = |name: &str, value: &str| Options {
            browser: false,
            ..with(name, value)
        };
        for name in ["Cookie", "Referer", "User-Agent", "Origin", "Sec-X"] {
            assert_eq!(server(name, "x").validate(), Ok(()), "{name}");
        }
        for name in ["Range", "Host", "Accept-Encoding", "Transfer-Encoding"] {
            assert!(
                message(server(name, "x")).contains("cannot be set"),
                "{name}"
            );
        }
    }
}
