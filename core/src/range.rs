//! Byte ranges, the `Range` request header and the `Content-Range` response header.
//!
//! Internally every range is half-open, `start..end`, so that lengths are
//! `end - start` and adjacent ranges share a boundary; the inclusive form of
//! HTTP appears only where a header is written or parsed. (Mixing the two is
//! how a downloader resumes one byte off.)
//!
//! The parser follows RFC 9110 §14.4:
//!
//! ```text
//! Content-Range       = range-unit SP ( range-resp / unsatisfied-range )
//! range-resp          = incl-range "/" ( complete-length / "*" )
//! incl-range          = first-pos "-" last-pos
//! unsatisfied-range   = "*/" complete-length
//! complete-length     = 1*DIGIT
//! first-pos           = 1*DIGIT
//! last-pos            = 1*DIGIT
//! ```
//!
//! with the validity rules of §14.4: `first-pos <= last-pos`, and
//! `last-pos < complete-length` when the length is known. Offsets are `u64`:
//! files over 4 GiB are ordinary.

use std::fmt;

/// A half-open byte range `start..end` (`end` excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// `start..end`; `None` when `end < start`.
    pub fn new(start: u64, end: u64) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The overlap of two ranges, `None` when they do not overlap.
    pub fn intersect(&self, other: &ByteRange) -> Option<ByteRange> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(ByteRange { start, end })
    }

    /// The value of a `Range` request header asking for exactly these bytes,
    /// e.g. `bytes=0-1048575` for `0..1048576`. `None` for an empty range,
    /// which HTTP cannot express.
    pub fn header_value(&self) -> Option<String> {
        (!self.is_empty()).then(|| format!("bytes={}-{}", self.start, self.end - 1))
    }
}

impl fmt::Display for ByteRange {
    /// Inclusive, as HTTP writes it: `0-99` for `0..100`, `-` for an empty range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            write!(f, "{}-(empty)", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end - 1)
        }
    }
}

/// A parsed `Content-Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/length` or `bytes first-last/*` (length unknown).
    Bytes {
        range: ByteRange,
        total: Option<u64>,
    },
    /// `bytes */length`, sent with 416 Range Not Satisfiable.
    Unsatisfied { total: u64 },
}

/// Why a `Content-Range` value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRangeError {
    /// The unit is not `bytes` (the only unit we ask for).
    Unit,
    /// The value does not follow the grammar.
    Syntax,
    /// A number does not fit in 64 bits.
    Overflow,
    /// `first-pos > last-pos`.
    Reversed,
    /// `last-pos >= complete-length`.
    PastEnd,
}

impl fmt::Display for ContentRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unit => "the range unit is not `bytes`",
            Self::Syntax => "it does not follow the RFC 9110 grammar",
            Self::Overflow => "a position does not fit in 64 bits",
            Self::Reversed => "its first position is after its last",
            Self::PastEnd => "its last position is not before the complete length",
        })
    }
}

impl ContentRange {
    /// Parses a `Content-Range` header value (surrounding whitespace ignored).
    pub fn parse(value: &str) -> Result<Self, ContentRangeError> {
        let value = value.trim_matches([' ', '\t']);
        let (unit, rest) = value.split_once(' ').ok_or(ContentRangeError::Syntax)?;
        if !unit.eq_ignore_ascii_case("bytes") {
            return Err(if is_token(unit) {
                ContentRangeError::Unit
            } else {
                ContentRangeError::Syntax
            });
        }
        let (range, length) = rest.split_once('/').ok_or(ContentRangeError::Syntax)?;
        if range == "*" {
            return Ok(Self::Unsatisfied {
                total: digits(length)?,
            });
        }
        let (first, last) = range.split_once('-').ok_or(ContentRangeError::Syntax)?;
        let (first, last) = (digits(first)?, digits(last)?);
        let total = if length == "*" {
            None
        } else {
            Some(digits(length)?)
        };
        if first > last {
            return Err(ContentRangeError::Reversed);
        }
        if total.is_some_and(|t| last >= t) {
            return Err(ContentRangeError::PastEnd);
        }
        // last < u64::MAX here when total is known; otherwise guard the +1.
        let end = last.checked_add(1).ok_or(ContentRangeError::Overflow)?;
        Ok(Self::Bytes {
            range: ByteRange { start: first, end },
            total,
        })
    }

    /// The complete length, when the server stated it.
    pub fn total(&self) -> Option<u64> {
        match self {
            Self::Bytes { total, .. } => *total,
            Self::Unsatisfied { total } => Some(*total),
        }
    }
}

/// `1*DIGIT` as a u64.
fn digits(s: &str) -> Result<u64, ContentRangeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ContentRangeError::Syntax);
    }
    s.parse().map_err(|_| ContentRangeError::Overflow)
}

/// RFC 9110 `token`: the characters a range unit may have.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn range_header_is_inclusive() {
        assert_eq!(r(0, 100).header_value().as_deref(), Some("bytes=0-99"));
        assert_eq!(r(5, 6).header_value().as_deref(), Some("bytes=5-5"));
        assert_eq!(r(7, 7).header_value(), None);
        let big = r(5 << 30, (5 << 30) + 10);
        assert_eq!(
            big.header_value().as_deref(),
            Some("bytes=5368709120-5368709129")
        );
    }

    #[test]
    fn intersection() {
        assert_eq!(r(0, 10).intersect(&r(5, 20)), Some(r(5, 10)));
        assert_eq!(r(0, 10).intersect(&r(10, 20)), None);
        assert_eq!(r(3, 4).intersect(&r(0, 100)), Some(r(3, 4)));
    }

    #[test]
    fn valid_content_ranges() {
        let table: &[(&str, ContentRange)] = &[
            (
                "bytes 0-499/1234",
                ContentRange::Bytes {
                    range: r(0, 500),
                    total: Some(1234),
                },
            ),
            (
                "bytes 500-999/*",
                ContentRange::Bytes {
                    range: r(500, 1000),
                    total: None,
                },
            ),
            (
                "bytes 1233-1233/1234",
                ContentRange::Bytes {
                    range: r(1233, 1234),
                    total: Some(1234),
                },
            ),
            ("bytes */1234", ContentRange::Unsatisfied { total: 1234 }),
            ("bytes */0", ContentRange::Unsatisfied { total: 0 }),
            (
                "BYTES 0-0/1",
                ContentRange::Bytes {
                    range: r(0, 1),
                    total: Some(1),
                },
            ),
            (
                " bytes 0-9/10 ",
                ContentRange::Bytes {
                    range: r(0, 10),
                    total: Some(10),
                },
            ),
            (
                "bytes 007-008/0010",
                ContentRange::Bytes {
                    range: r(7, 9),
                    total: Some(10),
                },
            ),
            (
                // Past 4 GiB: u64 end to end.
                "bytes 4294967296-5368709119/5368709120",
                ContentRange::Bytes {
                    range: r(1 << 32, 5 << 30),
                    total: Some(5 << 30),
                },
            ),
            (
                "bytes 0-18446744073709551614/18446744073709551615",
                ContentRange::Bytes {
                    range: r(0, u64::MAX),
                    total: Some(u64::MAX),
                },
            ),
        ];
        for (input, want) in table {
            assert_eq!(ContentRange::parse(input), Ok(*want), "{input:?}");
        }
    }

    #[test]
    fn malformed_content_ranges() {
        use ContentRangeError::*;
        let table: &[(&str, ContentRangeError)] = &[
            ("", Syntax),
            ("bytes", Syntax),
            ("bytes ", Syntax),
            ("bytes 0-499", Syntax),
            ("bytes 0-499/", Syntax),
            ("bytes 0-/1234", Syntax),
            ("bytes -499/1234", Syntax),
            ("bytes 0 - 499/1234", Syntax),
            ("bytes=0-499/1234", Syntax),
            ("bytes 0-499/12 34", Syntax),
            ("bytes +0-499/1234", Syntax),
            ("bytes 0x10-0x20/100", Syntax),
            ("bytes */*", Syntax),
            ("bytes */", Syntax),
            ("bytes 0-499/1234/5", Syntax),
            ("bytes 0-499,500-999/1234", Syntax),
            ("bytes 0-1/-5", Syntax),
            ("bytes 1.5-2/10", Syntax),
            ("items 0-9/10", Unit),
            ("none 0-9/10", Unit),
            ("byte\u{e9}s 0-9/10", Syntax),
            ("bytes 500-499/1234", Reversed),
            ("bytes 0-1234/1234", PastEnd),
            ("bytes 0-0/0", PastEnd),
            ("bytes 0-18446744073709551616/*", Overflow),
            ("bytes 0-1/18446744073709551616", Overflow),
            ("bytes 0-18446744073709551615/*", Overflow),
            ("bytes */99999999999999999999999", Overflow),
        ];
        for (input, want) in table {
            assert_eq!(ContentRange::parse(input), Err(*want), "{input:?}");
        }
    }
}
