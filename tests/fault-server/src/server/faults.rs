//! Which fault a request suffers: the token check, the queued one-shot faults
//! and chaos, in their order of precedence. What each fault does to the
//! response is on [`Fault`]'s variants (applied in `file_response.rs`).
//!
//! # Fault precedence
//!
//! For each `GET /files/{name}` (a HEAD takes no fault and is not counted by
//! chaos, but is subject to the token check):
//!
//! 1. `require_token`: a missing or wrong `token` query parameter answers `403`
//!    (logged as fault `"token"`). Such a GET takes no queued fault, draws no
//!    chaos decision and does not count towards `chaos_change_after`.
//! 2. Queued one-shot faults, at most one per GET: the GET takes (decrements)
//!    the first non-zero counter in this order: `fail_next`, `drop_next`,
//!    `stall_next`, `shift_next`, `short_next`, `cl_short_next`,
//!    `multipart_next`, `no_content_range_next`. The range faults (`shift` to
//!    `no_content_range`) only change a `206` answer to a satisfiable single
//!    range; a GET answered otherwise (`200` full body, `416`) still uses up
//!    the fault and is logged with fault `null`.
//! 3. Chaos (`chaos=SEED`): every GET that passed step 1 draws its chaos
//!    decision and counts towards `chaos_change_after`, but the decision only
//!    applies when step 2 took no queued fault.
//! 4. Persistent settings (`ignore_range`, `throttle`, `unknown_total`,
//!    `encoding`, validators...) apply to every response, together with the
//!    fault chosen above.

use super::config::FileConfig;
use crate::content::{splitmix64, GOLDEN};

/// What one response suffers (at most one per GET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    /// Missing or wrong token: answer 403.
    Token,
    /// Answer 503.
    Fail {
        chaos: bool,
    },
    /// Send some body bytes, then close.
    Drop {
        after: After,
        chaos: bool,
    },
    /// Send some body bytes, then go silent.
    Stall {
        after: After,
        chaos: bool,
    },
    /// A 206 for `a+N ..= b+N` (clamped to the file) instead of `a ..= b`.
    Shift(i64),
    /// A 206 for `a ..= b-N` (at least one byte).
    Short(u64),
    /// The full Content-Range, but Content-Length (and the body) N bytes shorter.
    ClShort(u64),
    /// The single range as a `multipart/byteranges` body.
    Multipart,
    /// A 206 without Content-Range.
    NoContentRange,
}

impl Fault {
    /// The name in the request log.
    pub(super) fn name(self) -> Option<&'static str> {
        Some(match self {
            Fault::None => return None,
            Fault::Token => "token",
            Fault::Fail { chaos: false } => "fail",
            Fault::Fail { chaos: true } => "chaos-503",
            Fault::Drop { chaos: false, .. } => "drop",
            Fault::Drop { chaos: true, .. } => "chaos-drop",
            Fault::Stall { chaos: false, .. } => "stall",
            Fault::Stall { chaos: true, .. } => "chaos-stall",
            Fault::Shift(_) => "shift",
            Fault::Short(_) => "short",
            Fault::ClShort(_) => "cl_short",
            Fault::Multipart => "multipart",
            Fault::NoContentRange => "no_content_range",
        })
    }

    /// How many bytes of a body of `total` bytes are sent: those before a drop
    /// or stall, else all of them.
    pub(super) fn body_limit(self, total: u64) -> u64 {
        match self {
            Fault::Drop { after, .. } | Fault::Stall { after, .. } => after.resolve(total),
            _ => total,
        }
    }
}

/// Where a drop or stall starts in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum After {
    /// After this many bytes (the whole body if it is shorter).
    Bytes(u64),
    /// After `n % body length` bytes: always less than a non-empty body.
    Below(u64),
}

impl After {
    fn resolve(self, body_len: u64) -> u64 {
        match self {
            After::Bytes(n) => n.min(body_len),
            After::Below(n) => n.checked_rem(body_len).unwrap_or(0),
        }
    }
}

/// `a+by ..= b+by`, both ends clamped to a file of `size` (> 0) bytes.
pub(super) fn shifted(a: u64, b: u64, by: i64, size: u64) -> (u64, u64) {
    let last = i128::from(size) - 1;
    let clamp = |x: u64| (i128::from(x) + i128::from(by)).clamp(0, last) as u64;
    (clamp(a), clamp(b))
}

/// The fault a request takes, and what it does to the file.
pub(super) struct Admission {
    pub(super) fault: Fault,
    /// The content changes (to `seed + 1`) once this GET has its snapshot of
    /// the file (`chaos_change_after`).
    pub(super) change_content: bool,
}

impl FileConfig {
    /// Admits a GET (or, if not `is_get`, a HEAD) that carries `token`: takes
    /// its fault by the precedence order of the module documentation.
    pub(super) fn admit(&mut self, is_get: bool, token: Option<&str>) -> Admission {
        let required = self.require_token.as_str();
        if !required.is_empty() && token != Some(required) {
            Admission {
                fault: Fault::Token,
                change_content: false,
            }
        } else if is_get {
            self.admit_get()
        } else {
            Admission {
                fault: Fault::None,
                change_content: false,
            }
        }
    }

    /// Admits one GET that passed the token check: takes its fault (a queued
    /// fault, else the chaos decision) and counts it for chaos.
    fn admit_get(&mut self) -> Admission {
        let queued = self.take_queued();
        let (drawn, change_content) = match self.chaos {
            Some(seed) => {
                let n = self.chaos_gets;
                self.chaos_gets += 1;
                let change =
                    self.chaos_change_after != 0 && self.chaos_gets == self.chaos_change_after;
                (chaos_decision(seed, n, self.chaos_rate), change)
            }
            None => (Fault::None, false),
        };
        let fault = if queued == Fault::None { drawn } else { queued };
        Admission {
            fault,
            change_content,
        }
    }

    /// Takes the first pending queued fault (see the module documentation).
    fn take_queued(&mut self) -> Fault {
        let counters: [(&mut u64, Fault); 8] = [
            (&mut self.fail_next, Fault::Fail { chaos: false }),
            (
                &mut self.drop_next,
                Fault::Drop {
                    after: After::Bytes(self.drop_after),
                    chaos: false,
                },
            ),
            (
                &mut self.stall_next,
                Fault::Stall {
                    after: After::Bytes(self.stall_after),
                    chaos: false,
                },
            ),
            (&mut self.shift_next, Fault::Shift(self.shift_by)),
            (&mut self.short_next, Fault::Short(self.short_by)),
            (&mut self.cl_short_next, Fault::ClShort(self.cl_short_by)),
            (&mut self.multipart_next, Fault::Multipart),
            (&mut self.no_content_range_next, Fault::NoContentRange),
        ];
        for (counter, fault) in counters {
            if *counter > 0 {
                *counter -= 1;
                return fault;
            }
        }
        Fault::None
    }
}

/// The chaos decision for GET number `n` (0-based, counted since chaos was
/// configured) of a file in chaos mode `seed` hitting `rate` percent of GETs.
///
/// The GET uses outputs `3n`, `3n + 1` and `3n + 2` of the SplitMix64 stream
/// seeded with `seed` (output `k` is `splitmix64(seed + k * 0x9E3779B97F4A7C15)`),
/// call them `roll`, `kind` and `bytes`: it is hit if `roll % 100 < rate`, and
/// then suffers by `kind % 3` a 503 (0), a drop (1) or a stall (2), the last two
/// after `bytes % L` body bytes where L is the body length (0 if L is 0).
fn chaos_decision(seed: u64, n: u64, rate: u64) -> Fault {
    let output = |k: u64| splitmix64(seed.wrapping_add(k.wrapping_mul(GOLDEN)));
    let first = n.wrapping_mul(3);
    let (roll, kind, bytes) = (
        output(first),
        output(first.wrapping_add(1)),
        output(first.wrapping_add(2)),
    );
    if roll % 100 >= rate {
        return Fault::None;
    }
    let after = After::Below(bytes);
    match kind % 3 {
        0 => Fault::Fail { chaos: true },
        1 => Fault::Drop { after, chaos: true },
        _ => Fault::Stall { after, chaos: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;

    #[test]
    fn queued_faults_follow_the_precedence_order() {
        let mut config = FileConfig::default();
        let query = "fail_next=1&drop_next=1&drop_after=5&stall_next=1&stall_after=6\
                     &shift_next=1&shift_by=-2&short_next=1&short_by=3&cl_short_next=1\
                     &cl_short_by=4&multipart_next=1&no_content_range_next=1";
        config
            .apply_params(&http::parse_query(query).unwrap())
            .unwrap();
        let taken: Vec<Fault> = (0..9).map(|_| config.admit_get().fault).collect();
        assert_eq!(
            taken,
            [
                Fault::Fail { chaos: false },
                Fault::Drop {
                    after: After::Bytes(5),
                    chaos: false
                },
                Fault::Stall {
                    after: After::Bytes(6),
                    chaos: false
                },
                Fault::Shift(-2),
                Fault::Short(3),
                Fault::ClShort(4),
                Fault::Multipart,
                Fault::NoContentRange,
                Fault::None,
            ]
        );
    }

    #[test]
    fn chaos_is_the_splitmix64_stream() {
        // Output k of SplitMix64 seeded with s is splitmix64(s + k * GOLDEN).
        let mut state = 42u64;
        let mut stream = || {
            state = state.wrapping_add(GOLDEN);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for n in 0..50 {
            let (roll, kind, bytes) = (stream(), stream(), stream());
            let expected = if roll % 100 >= 50 {
                Fault::None
            } else {
                let after = After::Below(bytes);
                match kind % 3 {
                    0 => Fault::Fail { chaos: true },
                    1 => Fault::Drop { after, chaos: true },
                    _ => Fault::Stall { after, chaos: true },
                }
            };
            assert_eq!(chaos_decision(42, n, 50), expected, "GET {n}");
        }
        assert!((0..100).all(|n| chaos_decision(1, n, 0) == Fault::None));
        assert!((0..100).all(|n| chaos_decision(1, n, 100) != Fault::None));
    }

    #[test]
    fn shifts_clamp_to_the_file() {
        assert_eq!(shifted(10, 19, 5, 100), (15, 24));
        assert_eq!(shifted(10, 19, -15, 100), (0, 4));
        assert_eq!(shifted(90, 99, 5, 100), (95, 99));
        assert_eq!(shifted(10, 19, 500, 100), (99, 99));
        assert_eq!(shifted(10, 19, i64::MIN, 100), (0, 0));
        assert_eq!(After::Below(7).resolve(5), 2);
        assert_eq!(After::Below(7).resolve(0), 0);
        assert_eq!(After::Bytes(7).resolve(5), 5);
    }
}
