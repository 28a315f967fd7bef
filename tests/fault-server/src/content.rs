//! Deterministic generated file content, its validators and HTTP dates.
//!
//! A file's bytes are a pure function of `(seed, offset)`, so files of any size
//! cost no disk and the server and the tests (native or wasm) agree on every byte.

/// The 64-bit golden ratio, used both by SplitMix64 and to spread word indices.
pub(crate) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 (Steele, Lea, Flood): one cheap, well-mixed step.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 8 bytes of word `index` (bytes `8 * index .. 8 * index + 8`) of file `seed`.
#[inline]
fn word(seed: u64, index: u64) -> [u8; 8] {
    splitmix64(seed ^ index.wrapping_mul(GOLDEN)).to_le_bytes()
}

/// Byte `i` of file `seed`: the reference definition that [`fill`] must match.
pub fn byte_at(seed: u64, i: u64) -> u8 {
    word(seed, i / 8)[(i % 8) as usize]
}

/// Fills `buf` with the bytes of file `seed` starting at byte `offset`.
///
/// Works a whole word at a time; only an unaligned head and tail are partial.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut index = offset / 8;
    let skip = (offset % 8) as usize;
    let mut rest = buf;
    if skip != 0 {
        let n = rest.len().min(8 - skip);
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        head.copy_from_slice(&word(seed, index)[skip..skip + n]);
        rest = tail;
        index = index.wrapping_add(1);
    }
    let mut words = rest.chunks_exact_mut(8);
    for chunk in &mut words {
        chunk.copy_from_slice(&word(seed, index));
        index = index.wrapping_add(1);
    }
    let tail = words.into_remainder();
    if !tail.is_empty() {
        let n = tail.len();
        tail.copy_from_slice(&word(seed, index)[..n]);
    }
}

/// The strong ETag (with its quotes) of the file with this seed and size.
///
/// Both inputs are in the tag, so changing either one "changes the file".
pub fn content_etag(seed: u64, size: u64) -> String {
    format!(
        "\"{:016x}-{}\"",
        splitmix64(seed ^ 0x0E7A_6E7A_6E7A_6E7A),
        size
    )
}

/// The Last-Modified date (IMF-fixdate) of the file with this seed.
///
/// Multiplying by an odd constant is a bijection modulo 2^29, so seeds that differ
/// modulo 2^29 get different dates, all between 2000 and 2017 (in the past).
pub fn content_last_modified(seed: u64) -> String {
    const Y2000: u64 = 946_684_800;
    http_date(Y2000 + (seed.wrapping_mul(GOLDEN) & ((1 << 29) - 1)))
}

/// Formats seconds since the Unix epoch as an IMF-fixdate (RFC 9110 section 5.6.7).
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[((days + 4) % 7) as usize], // 1970-01-01 was a Thursday.
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01, after
/// Howard Hinnant's `civil_from_days` (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_byte_at_at_odd_offsets() {
        for seed in [0, 1, 42, u64::MAX] {
            for offset in [0u64, 1, 3, 7, 8, 9, 1_000_003, 5 << 30, u64::MAX - 100] {
                for len in [0usize, 1, 5, 8, 13, 64, 100] {
                    let mut buf = vec![0u8; len];
                    fill(seed, offset, &mut buf);
                    for (k, &b) in buf.iter().enumerate() {
                        assert_eq!(
                            b,
                            byte_at(seed, offset + k as u64),
                            "seed {seed} at {offset}+{k}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn fill_is_consistent_across_split_calls() {
        let mut whole = vec![0u8; 1000];
        fill(9, 77, &mut whole);
        for cut in [0, 1, 3, 8, 500, 999, 1000] {
            let mut parts = vec![0u8; 1000];
            let (a, b) = parts.split_at_mut(cut);
            fill(9, 77, a);
            fill(9, 77 + cut as u64, b);
            assert_eq!(parts, whole, "split at {cut}");
        }
    }

    #[test]
    fn seeds_give_different_content_and_validators() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(1, 0, &mut a);
        fill(2, 0, &mut b);
        assert_ne!(a, b);
        assert_ne!(content_etag(1, 10), content_etag(2, 10));
        assert_ne!(content_etag(1, 10), content_etag(1, 11));
        assert_ne!(content_last_modified(1), content_last_modified(2));
        assert!(content_etag(1, 1_048_576).ends_with("-1048576\""));
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(951_868_799), "Tue, 29 Feb 2000 23:59:59 GMT");
        assert_eq!(http_date(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(http_date(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        let lm = content_last_modified(1);
        assert_eq!(lm.len(), 29, "{lm}");
        assert!(lm.ends_with(" GMT"));
    }
}
