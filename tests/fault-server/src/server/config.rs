//! How one virtual file behaves, and the parameters of
//! `POST /_admin/files/{name}` that change it.

use crate::content::{content_etag, content_last_modified};
use crate::http;

/// Default `chaos_rate`, in percent.
const DEFAULT_CHAOS_RATE: u64 = 20;

/// How one virtual file behaves; changed with `POST /_admin/files/{name}`.
#[derive(Clone, Debug)]
pub(super) struct FileConfig {
    pub(super) size: u64,
    pub(super) seed: u64,
    pub(super) weak_etag: bool,
    pub(super) no_etag: bool,
    pub(super) no_last_modified: bool,
    pub(super) ignore_range: bool,
    pub(super) fail_next: u64,
    pub(super) drop_next: u64,
    pub(super) drop_after: u64,
    pub(super) stall_next: u64,
    pub(super) stall_after: u64,
    pub(super) shift_next: u64,
    pub(super) shift_by: i64,
    pub(super) short_next: u64,
    pub(super) short_by: u64,
    pub(super) cl_short_next: u64,
    pub(super) cl_short_by: u64,
    pub(super) multipart_next: u64,
    pub(super) no_content_range_next: u64,
    /// Every 206 says `bytes a-b/*`.
    pub(super) unknown_total: bool,
    /// Bytes per second; 0 = unthrottled.
    pub(super) throttle: u64,
    /// `Content-Encoding` to claim; empty = none.
    pub(super) encoding: String,
    /// `Access-Control-Expose-Headers`; None = the default list, "" = omit.
    pub(super) expose: Option<String>,
    pub(super) disposition: Option<String>,
    /// `Repr-Digest` on every answer: `Some(true)` the content's SHA-256,
    /// `Some(false)` a wrong one.
    pub(super) repr_digest: Option<bool>,
    /// The `token` query parameter GETs and HEADs need; empty = none.
    pub(super) require_token: String,
    /// Chaos mode: the seed of its decisions; None = off.
    pub(super) chaos: Option<u64>,
    /// Percent of GETs that chaos hits.
    pub(super) chaos_rate: u64,
    /// The seed changes to `seed + 1` after this many chaos GETs; 0 = never.
    pub(super) chaos_change_after: u64,
    /// GETs counted since chaos was last configured.
    pub(super) chaos_gets: u64,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            size: 0,
            seed: 1,
            weak_etag: false,
            no_etag: false,
            no_last_modified: false,
            ignore_range: false,
            fail_next: 0,
            drop_next: 0,
            drop_after: 0,
            stall_next: 0,
            stall_after: 0,
            shift_next: 0,
            shift_by: 0,
            short_next: 0,
            short_by: 0,
            cl_short_next: 0,
            cl_short_by: 0,
            multipart_next: 0,
            no_content_range_next: 0,
            unknown_total: false,
            throttle: 0,
            encoding: String::new(),
            expose: None,
            disposition: None,
            repr_digest: None,
            require_token: String::new(),
            chaos: None,
            chaos_rate: DEFAULT_CHAOS_RATE,
            chaos_change_after: 0,
            chaos_gets: 0,
        }
    }
}

/// What a `POST /_admin/files/{name}` asked besides the file's behaviour.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Applied {
    /// `size` was given (needed to create a file).
    pub(super) size_given: bool,
    /// `clear_log=1`.
    pub(super) clear_log: bool,
}

impl FileConfig {
    /// The `ETag`, if the file has one.
    pub(super) fn etag(&self) -> Option<String> {
        let tag = content_etag(self.seed, self.size);
        match (self.no_etag, self.weak_etag) {
            (true, _) => None,
            (false, true) => Some(format!("W/{tag}")),
            (false, false) => Some(tag),
        }
    }

    /// The `Last-Modified` date, if the file has one.
    pub(super) fn last_modified(&self) -> Option<String> {
        (!self.no_last_modified).then(|| content_last_modified(self.seed))
    }

    /// Applies the query parameters of `POST /_admin/files/{name}`. Unset
    /// parameters keep their values.
    ///
    /// - `size`, `seed`: the content (bytes are a function of seed and offset).
    /// - `weak_etag`, `no_etag`, `no_last_modified`, `ignore_range`, `unknown_total`
    ///   (0/1): validators and range handling; `unknown_total=1` makes every 206 say
    ///   `bytes a-b/*` (a 416 still says `bytes */size`).
    /// - `throttle` (bytes/s), `encoding`, `expose`, `disposition`: headers and pacing.
    /// - `repr_digest` (`good`, `bad`, empty): a `Repr-Digest` of the content, right or wrong.
    /// - Queued faults, each for the next K GETs: `fail_next`; `drop_next` with
    ///   `drop_after`; `stall_next` with `stall_after`; `shift_next` with `shift_by`
    ///   (signed); `short_next` with `short_by`; `cl_short_next` with `cl_short_by`;
    ///   `multipart_next`; `no_content_range_next`. See `faults.rs` for their
    ///   precedence.
    /// - `require_token`: GETs and HEADs need `?token=T` (empty: none), else 403.
    /// - `chaos` (a seed; empty or `off` = off), `chaos_rate` (percent, default 20),
    ///   `chaos_change_after` (default 0 = never): see `chaos_decision` in
    ///   `faults.rs`. Giving any of the three restarts the count of chaos GETs.
    /// - `clear_log=1`: clears the log and the statistics.
    pub(super) fn apply_params(&mut self, params: &[(String, String)]) -> Result<Applied, String> {
        let mut applied = Applied {
            size_given: false,
            clear_log: false,
        };
        for (key, value) in params {
            let number = || {
                http::parse_digits(value).ok_or_else(|| {
                    format!("bad value for {key}: {value:?} (expected an unsigned integer)")
                })
            };
            let signed = || {
                let digits = value.strip_prefix('-').unwrap_or(value);
                http::parse_digits(digits)
                    .and_then(|_| value.parse::<i64>().ok())
                    .ok_or_else(|| format!("bad value for {key}: {value:?} (expected an integer)"))
            };
            let flag = || match value.as_str() {
                "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(format!("bad value for {key}: {value:?} (expected 0 or 1)")),
            };
            // These end up in response headers: no CR/LF injection.
            let text = || {
                if value.chars().any(char::is_control) {
                    Err(format!("bad value for {key}: control character"))
                } else {
                    Ok(value.clone())
                }
            };
            match key.as_str() {
                "size" => {
                    self.size = number()?;
                    applied.size_given = true;
                }
                "seed" => self.seed = number()?,
                "weak_etag" => self.weak_etag = flag()?,
                "no_etag" => self.no_etag = flag()?,
                "no_last_modified" => self.no_last_modified = flag()?,
                "ignore_range" => self.ignore_range = flag()?,
                "fail_next" => self.fail_next = number()?,
                "drop_next" => self.drop_next = number()?,
                "drop_after" => self.drop_after = number()?,
                "stall_next" => self.stall_next = number()?,
                "stall_after" => self.stall_after = number()?,
                "shift_next" => self.shift_next = number()?,
                "shift_by" => self.shift_by = signed()?,
                "short_next" => self.short_next = number()?,
                "short_by" => self.short_by = number()?,
                "cl_short_next" => self.cl_short_next = number()?,
                "cl_short_by" => self.cl_short_by = number()?,
                "multipart_next" => self.multipart_next = number()?,
                "no_content_range_next" => self.no_content_range_next = number()?,
                "unknown_total" => self.unknown_total = flag()?,
                "throttle" => self.throttle = number()?,
                "encoding" => self.encoding = text()?,
                "expose" => {
                    let list = text()?;
                    let names: Vec<&str> = list
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    self.expose = Some(names.join(", "));
                }
                "disposition" => self.disposition = Some(text()?).filter(|d| !d.is_empty()),
                "repr_digest" => {
                    self.repr_digest = match text()?.as_str() {
                        "good" => Some(true),
                        "bad" => Some(false),
                        "" => None,
                        other => {
                            return Err(format!("repr_digest={other:?}: use good, bad or empty"))
                        }
                    }
                }
                "require_token" => self.require_token = text()?,
                "chaos" => {
                    self.chaos = match value.as_str() {
                        "" | "off" => None,
                        _ => Some(number()?),
                    };
                    self.chaos_gets = 0;
                }
                "chaos_rate" => {
                    let rate = number()?;
                    if rate > 100 {
                        return Err(format!("bad value for {key}: {value:?} (at most 100)"));
                    }
                    self.chaos_rate = rate;
                    self.chaos_gets = 0;
                }
                "chaos_change_after" => {
                    self.chaos_change_after = number()?;
                    self.chaos_gets = 0;
                }
                "clear_log" => applied.clear_log = flag()?,
                _ => return Err(format!("unknown parameter: {key}")),
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_validate_and_keep_unset_values() {
        let mut config = FileConfig::default();
        let params = |q: &str| http::parse_query(q).unwrap();
        assert_eq!(
            config.apply_params(&params("size=10&fail_next=2")),
            Ok(Applied {
                size_given: true,
                clear_log: false
            })
        );
        assert_eq!((config.size, config.seed, config.fail_next), (10, 1, 2));
        assert_eq!(
            config.apply_params(&params("seed=5&clear_log=1")),
            Ok(Applied {
                size_given: false,
                clear_log: true
            })
        );
        assert_eq!((config.size, config.seed), (10, 5));
        assert!(config
            .apply_params(&params("size=-1"))
            .unwrap_err()
            .contains("size"));
        assert!(config
            .apply_params(&params("bogus=1"))
            .unwrap_err()
            .contains("bogus"));
        assert!(config.apply_params(&params("weak_etag=2")).is_err());
        assert!(config
            .apply_params(&params("disposition=a%0d%0ab"))
            .is_err());
        config
            .apply_params(&params("expose=ETag,+X-Custom,"))
            .unwrap();
        assert_eq!(config.expose.as_deref(), Some("ETag, X-Custom"));
    }

    #[test]
    fn new_params_validate() {
        let mut config = FileConfig::default();
        let params = |q: &str| http::parse_query(q).unwrap();
        config
            .apply_params(&params("shift_by=-12&short_by=3"))
            .unwrap();
        assert_eq!((config.shift_by, config.short_by), (-12, 3));
        config
            .apply_params(&params("shift_by=9223372036854775807"))
            .unwrap();
        assert_eq!(config.shift_by, i64::MAX);
        for bad in [
            "shift_by=--1",
            "shift_by=-",
            "shift_by=%2B1",
            "shift_by=9223372036854775808",
            "short_by=-1",
            "chaos=x",
            "chaos_rate=101",
            "unknown_total=2",
            "require_token=a%0a",
        ] {
            assert!(config.apply_params(&params(bad)).is_err(), "{bad}");
        }
        config
            .apply_params(&params("chaos=7&chaos_rate=100"))
            .unwrap();
        assert_eq!((config.chaos, config.chaos_rate), (Some(7), 100));
        config.chaos_gets = 5;
        config
            .apply_params(&params("chaos_change_after=3"))
            .unwrap();
        assert_eq!(config.chaos_gets, 0);
        config.apply_params(&params("chaos=off")).unwrap();
        assert_eq!(config.chaos, None);
        config.apply_params(&params("chaos=")).unwrap();
        assert_eq!(config.chaos, None);
    }
}
