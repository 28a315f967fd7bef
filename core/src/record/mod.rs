//! The offset record: what is stored for a download, and how it is encoded.
//!
//! The record is the only thing trusted after a reload, so it is written only
//! after the bytes it claims are durable, and it is read defensively: a record
//! that is truncated, altered, of an unknown version or inconsistent (pieces
//! past the end, overlapping, "complete" with holes) is reported and
//! discarded, never used.
//!
//! Encoding (all integers LEB128 varints, strings length-prefixed UTF-8):
//!
//! ```text
//! magic "RFRC" | version u8 | fields… | crc32 (4 bytes, little-endian, of all before it)
//! ```
//!
//! Pieces are written as runs `(gap since the previous piece, piece length,
//! count)`, so a finished 5 GiB download of 8 MiB blocks is a few bytes, not
//! 640 entries.

mod wire;

use crate::codec::crc32;
use crate::pieces::Pieces;
use crate::range::ByteRange;
use crate::validator::{EntityTag, Validators};
use std::fmt;
use wire::{Reader, Writer};

const MAGIC: &[u8; 4] = b"RFRC";
/// Version 2 added `verified`; version 1 records are still read.
pub const RECORD_VERSION: u8 = 2;
/// Far more than any real download has (5 GiB in 64 KiB blocks is 81,920).
const MAX_PIECES: u64 = 1 << 22;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub url: String,
    /// What identifies the version of the file the pieces belong to.
    pub validators: Validators,
    /// The server honours Range requests for this file.
    pub resumable: bool,
    pub complete: bool,
    pub pieces: Pieces,
    /// The name the server suggested (Content-Disposition), unsanitized.
    pub server_filename: Option<String>,
    pub content_type: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// The `integrity` the complete file matched ([`Expected::fingerprint`]),
    /// so that opening it again with the same one does not hash it again.
    ///
    /// [`Expected::fingerprint`]: crate::integrity::Expected::fingerprint
    pub verified: Option<String>,
}

/// Why a stored record was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Not written by resumable-fetch (wrong magic).
    NotARecord,
    /// Written by a newer (or unknown) version of resumable-fetch.
    UnknownVersion(u8),
    /// Damaged: the reason says how.
    Corrupt(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARecord => f.write_str("the stored record is not a resumable-fetch record"),
            Self::UnknownVersion(v) => write!(
                f,
                "the stored record has version {v}, which this version of resumable-fetch does not read"
            ),
            Self::Corrupt(why) => write!(f, "the stored record is damaged ({why})"),
        }
    }
}

impl Record {
    /// A record for a download nothing is known of yet.
    pub fn new(id: &str, url: &str, now: u64) -> Self {
        Self {
            id: id.to_string(),
            url: url.to_string(),
            validators: Validators::default(),
            resumable: false,
            complete: false,
            pieces: Pieces::new(),
            server_filename: None,
            content_type: None,
            created_at: now,
            updated_at: now,
            verified: None,
        }
    }

    pub fn total(&self) -> Option<u64> {
        self.validators.total
    }

    /// Bytes stored.
    pub fn received(&self) -> u64 {
        self.pieces.bytes()
    }

    /// Claims nothing at or past `len`: for a store whose file turned out
    /// shorter than its record (a write lost before it reached the disk).
    /// `true` if the record changed.
    pub fn limit_to(&mut self, len: u64) -> bool {
        let cut = self.pieces.truncate(len);
        if cut {
            self.complete = false;
        }
        cut
    }

    /// A partial download not written to for `max_age_ms` at `now`: what
    /// `Download.prune()` removes. Complete downloads are never stale.
    pub fn is_stale(&self, now: u64, max_age_ms: u64) -> bool {
        !self.complete && now.saturating_sub(self.updated_at) >= max_age_ms
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(
            128 + self.url.len() + 8 * self.pieces.len(),
        ));
        w.0.extend_from_slice(MAGIC);
        w.0.push(RECORD_VERSION);
        w.str(&self.id);
        w.str(&self.url);
        w.opt_u64(self.validators.total);
        match &self.validators.etag {
            None => w.u64(0),
            Some(EntityTag::Strong(v)) => {
                w.u64(1);
                w.str(v)
            }
            Some(EntityTag::Weak(v)) => {
                w.u64(2);
                w.str(v)
            }
        }
        w.opt_str(self.validators.last_modified.as_deref());
        w.u64(u64::from(self.resumable) | u64::from(self.complete) << 1);
        w.opt_str(self.server_filename.as_deref());
        w.opt_str(self.content_type.as_deref());
        w.u64(self.created_at);
        w.u64(self.updated_at);
        let runs = runs(&self.pieces);
        w.u64(runs.len() as u64);
        let mut prev_end = 0;
        for (start, len, count) in runs {
            w.u64(start - prev_end);
            w.u64(len);
            w.u64(count);
            prev_end = start + len * count;
        }
        w.opt_str(self.verified.as_deref());
        let crc = crc32(0, &w.0);
        w.0.extend_from_slice(&crc.to_le_bytes());
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() < MAGIC.len() + 1 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(RecordError::NotARecord);
        }
        let version = bytes[MAGIC.len()];
        if !(1..=RECORD_VERSION).contains(&version) {
            return Err(RecordError::UnknownVersion(version));
        }
        let Some(body_len) = bytes.len().checked_sub(4) else {
            return Err(RecordError::Corrupt("too short"));
        };
        let (body, crc) = bytes.split_at(body_len);
        if body_len < MAGIC.len() + 1 || crc32(0, body).to_le_bytes() != crc {
            return Err(RecordError::Corrupt("checksum mismatch"));
        }
        let mut r = Reader(&body[MAGIC.len() + 1..]);
        let id = r.str()?;
        let url = r.str()?;
        let total = r.opt_u64()?;
        let etag = match r.u64()? {
            0 => None,
            1 => Some(EntityTag::Strong(r.str()?)),
            2 => Some(EntityTag::Weak(r.str()?)),
            _ => return Err(RecordError::Corrupt("unknown ETag kind")),
        };
        let last_modified = r.opt_str()?;
        let flags = r.u64()?;
        if flags > 0b11 {
            return Err(RecordError::Corrupt("unknown flags"));
        }
        let server_filename = r.opt_str()?;
        let content_type = r.opt_str()?;
        let created_at = r.u64()?;
        let updated_at = r.u64()?;
        // The runs are read and checked before any is expanded, so that a
        // damaged record of a few bytes is refused without first inserting
        // up to MAX_PIECES pieces. Each run takes at least 3 bytes: `runs`
        // is bounded by the record's length.
        let mut runs = Vec::new();
        let mut piece_count = 0u64;
        let mut prev_end = 0u64;
        for _ in 0..r.u64()? {
            let (gap, len, count) = (r.u64()?, r.u64()?, r.u64()?);
            let start = prev_end
                .checked_add(gap)
                .ok_or(RecordError::Corrupt("piece offset overflows"))?;
            if count == 0 {
                return Err(RecordError::Corrupt("empty run of pieces"));
            }
            if len == 0 {
                return Err(RecordError::Corrupt("empty or overlapping pieces"));
            }
            // Bounds the work a damaged count can cause. Saturating: a count
            // near u64::MAX must not wrap to a small sum and pass.
            piece_count = piece_count.saturating_add(count);
            if piece_count > MAX_PIECES {
                return Err(RecordError::Corrupt("too many pieces"));
            }
            prev_end = len
                .checked_mul(count)
                .and_then(|bytes| start.checked_add(bytes))
                .ok_or(RecordError::Corrupt("piece offset overflows"))?;
            runs.push((start, len, count));
        }
        let verified = match version {
            1 => None,
            _ => r.opt_str()?,
        };
        if !r.0.is_empty() {
            return Err(RecordError::Corrupt("trailing bytes"));
        }
        let complete = flags & 0b10 != 0;
        if total.is_some_and(|t| prev_end > t) {
            return Err(RecordError::Corrupt("pieces past the end of the file"));
        }
        let mut pieces = Pieces::new();
        for (mut start, len, count) in runs {
            for _ in 0..count {
                // No overflow: the run's end was checked above.
                let end = start + len;
                if !pieces.insert(ByteRange { start, end }) {
                    return Err(RecordError::Corrupt("empty or overlapping pieces"));
                }
                start = end;
            }
        }
        if complete && !total.is_some_and(|t| pieces.covers(t)) {
            return Err(RecordError::Corrupt("marked complete with bytes missing"));
        }
        Ok(Self {
            id,
            url,
            validators: Validators {
                etag,
                last_modified,
                total,
            },
            resumable: flags & 0b01 != 0,
            complete,
            pieces,
            server_filename,
            content_type,
            created_at,
            updated_at,
            verified,
        })
    }
}

/// Groups pieces into runs of equal length with no gap between them.
fn runs(pieces: &Pieces) -> Vec<(u64, u64, u64)> {
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    for p in pieces.iter() {
        match runs.last_mut() {
            Some((start, len, count)) if *len == p.len() && *start + *len * *count == p.start => {
                *count += 1
            }
            _ => runs.push((p.start, p.len(), 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn limiting_a_record_forgets_what_lies_past_the_file() {
        let mut rec = Record::new("id", "https://example.com/a", 0);
        for piece in [r(0, 10), r(10, 20), r(30, 40)] {
            rec.pieces.insert(piece);
        }
        rec.complete = true;
        assert!(!rec.limit_to(40));
        assert!(rec.complete);
        assert!(rec.limit_to(15));
        assert_eq!(rec.pieces.iter().collect::<Vec<_>>(), [r(0, 10), r(10, 15)]);
        assert_eq!(rec.received(), 15);
        assert!(!rec.complete);
        assert!(rec.limit_to(0));
        assert!(rec.pieces.is_empty());
    }

    #[test]
    fn only_partial_downloads_left_alone_long_enough_are_stale() {
        let mut rec = Record::new("id", "https://example.com/a", 1_000);
        rec.updated_at = 5_000;
        assert!(!rec.is_stale(5_999, 1_000));
        assert!(rec.is_stale(6_000, 1_000));
        assert!(rec.is_stale(5_000, 0));
        assert!(!rec.is_stale(4_000, 2_000), "a clock set back is not age");
        rec.complete = true;
        assert!(!rec.is_stale(u64::MAX, 0));
    }

    fn sample() -> Record {
        let mut rec = Record::new("id-1", "https://example.com/a.bin#x", 1_700_000_000_000);
        rec.validators = Validators {
            etag: Some(EntityTag::Strong("\"abc\"".into())),
            last_modified: Some("Tue, 15 Nov 1994 08:12:31 GMT".into()),
            total: Some(5 << 30),
        };
        rec.resumable = true;
        rec.server_filename = Some("näme.bin".into());
        rec.content_type = Some("application/octet-stream".into());
        rec.updated_at = 1_700_000_000_500;
        let block = 8 << 20;
        for i in 0..100u64 {
            rec.pieces.insert(r(i * block, (i + 1) * block));
        }
        rec.pieces.insert(r(200 * block, 200 * block + 12345));
        rec.pieces.insert(r((5 << 30) - 7, 5 << 30));
        rec
    }

    #[test]
    fn round_trips() {
        let rec = sample();
        let bytes = rec.encode();
        assert_eq!(Record::decode(&bytes), Ok(rec));
        // 100 equal contiguous blocks are one run: the record stays small.
        assert!(bytes.len() < 200, "record is {} bytes", bytes.len());

        let mut done = Record::new("d", "u", 0);
        done.validators.total = Some(0);
        done.complete = true;
        assert_eq!(Record::decode(&done.encode()), Ok(done));
    }

    #[test]
    fn rejects_every_truncation_and_every_flipped_bit() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Record::decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(Record::decode(&bad).is_err(), "bit {bit} of byte {i}");
            }
        }
    }

    #[test]
    fn reads_version_1_records_which_have_no_verified_digest() {
        let mut rec = sample();
        rec.verified = Some("sha256-x".into());
        // Version 1: no `verified` field at all.
        let mut v1 = without_crc(&sample());
        v1.pop();
        v1[4] = 1;
        assert_eq!(Record::decode(&sealed(v1)), Ok(sample()));
        assert_eq!(Record::decode(&rec.encode()), Ok(rec));
    }

    #[test]
    fn reports_foreign_and_future_records() {
        assert_eq!(Record::decode(b""), Err(RecordError::NotARecord));
        assert_eq!(
            Record::decode(b"{\"json\":1}"),
            Err(RecordError::NotARecord)
        );
        let mut future = sample().encode();
        future[4] = RECORD_VERSION + 1;
        assert_eq!(
            Record::decode(&future),
            Err(RecordError::UnknownVersion(RECORD_VERSION + 1))
        );
    }

    /// Re-seals altered content with a valid checksum, to test the checks
    /// that come after it.
    fn sealed(mut body: Vec<u8>) -> Vec<u8> {
        let crc = crc32(0, &body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    fn without_crc(rec: &Record) -> Vec<u8> {
        let mut bytes = rec.encode();
        bytes.truncate(bytes.len() - 4);
        bytes
    }

    #[test]
    fn rejects_inconsistent_records_even_with_a_valid_checksum() {
        // Pieces past the end of the file.
        let mut rec = sample();
        rec.validators.total = Some(100);
        assert_eq!(
            Record::decode(&sealed(without_crc(&rec))),
            Err(RecordError::Corrupt("pieces past the end of the file"))
        );
        // Complete with holes.
        let mut rec = sample();
        rec.complete = true;
        assert_eq!(
            Record::decode(&sealed(without_crc(&rec))),
            Err(RecordError::Corrupt("marked complete with bytes missing"))
        );
        // A run count that would take forever to expand.
        let mut body = without_crc(&Record::new("i", "u", 0));
        let runs_at = body.len() - 2; // the run count, then `verified`
        body.truncate(runs_at);
        body.extend_from_slice(&[1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            Record::decode(&sealed(body)),
            Err(RecordError::Corrupt("too many pieces"))
        );
        // Trailing bytes.
        let mut body = without_crc(&sample());
        body.push(0);
        assert_eq!(
            Record::decode(&sealed(body)),
            Err(RecordError::Corrupt("trailing bytes"))
        );
    }

    /// The runs of pieces `(gap, len, count)` appended to a record with no
    /// pieces and no total, sealed with a valid checksum.
    fn with_runs(runs: &[(u64, u64, u64)]) -> Vec<u8> {
        let mut w = Writer(without_crc(&Record::new("i", "u", 0)));
        w.0.truncate(w.0.len() - 2); // the run count, 0, and `verified`, none
        w.u64(runs.len() as u64);
        for &(gap, len, count) in runs {
            w.u64(gap);
            w.u64(len);
            w.u64(count);
        }
        w.opt_str(None);
        sealed(w.0)
    }

    /// A count that makes `pieces + count` wrap used to panic (debug) or,
    /// wrapped in release, expand pieces until memory ran out.
    #[test]
    fn rejects_a_run_count_that_would_overflow_the_piece_bound() {
        let bytes = with_runs(&[(0, 1, 1), (0, 1, u64::MAX)]);
        assert_eq!(
            Record::decode(&bytes),
            Err(RecordError::Corrupt("too many pieces"))
        );
        // Damaged records of a few bytes whose runs would expand to the
        // bound: refused before any piece is inserted (this used to take
        // seconds in a debug build, and tens of MB, before the refusal).
        let bytes = with_runs(&[(u64::MAX - 10, 1 << 40, MAX_PIECES)]);
        assert_eq!(
            Record::decode(&bytes),
            Err(RecordError::Corrupt("piece offset overflows"))
        );
        let bytes = with_runs(&[(0, 1, MAX_PIECES), (1, 1, 1)]);
        assert_eq!(
            Record::decode(&bytes),
            Err(RecordError::Corrupt("too many pieces"))
        );
        let mut body = with_runs(&[(0, 1, MAX_PIECES)]);
        body.truncate(body.len() - 4);
        body.push(0);
        assert_eq!(
            Record::decode(&sealed(body)),
            Err(RecordError::Corrupt("trailing bytes"))
        );
        let bytes = with_runs(&[(0, 0, MAX_PIECES)]);
        assert_eq!(
            Record::decode(&bytes),
            Err(RecordError::Corrupt("empty or overlapping pieces"))
        );
        // And a run past the stated total, likewise.
        let mut rec = Record::new("i", "u", 0);
        rec.validators.total = Some(10);
        let mut w = Writer(without_crc(&rec));
        w.0.truncate(w.0.len() - 2);
        w.0.extend_from_slice(&[1, 0, 1]);
        w.u64(MAX_PIECES);
        w.opt_str(None);
        assert_eq!(
            Record::decode(&sealed(w.0)),
            Err(RecordError::Corrupt("pieces past the end of the file"))
        );
    }
}
