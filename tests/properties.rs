//! Property tests of the parsers of the pure core ("Never a wrong byte",
//! §4 "Parsers never panic"): every value a server, a stored record or a
//! caller hands them is read without a panic and without unbounded work, the
//! formats with an encoder round-trip, and what a parser accepts agrees with
//! simple facts written here independently of it.
//!
//! Inputs are bounded in size (a few hundred bytes), so a decoder that
//! loops or allocates according to a number in its input, not its length,
//! shows up as a run that never ends. A failing case prints its input, which
//! then belongs in a unit test of its module.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use resumable_fetch::core::filename::{self, choose, from_content_disposition, from_url, sanitize};
use resumable_fetch::core::integrity::{
    parse_integrity, parse_repr_digest, Algorithm, Check, Source,
};
use resumable_fetch::core::options::{
    Options, MAX_BLOCK_SIZE, MAX_CONNECTIONS, MAX_RETRIES, MAX_STALL_TIMEOUT_MS, MIN_BLOCK_SIZE,
};
use resumable_fetch::core::pieces::Pieces;
use resumable_fetch::core::range::{ByteRange, ContentRange, ContentRangeError};
use resumable_fetch::core::record::{Record, RecordError, RECORD_VERSION};
use resumable_fetch::core::response::{self, Checked};
use resumable_fetch::core::transport::Header;
use resumable_fetch::core::transport::ResponseHead;
use resumable_fetch::core::validator::{Change, EntityTag, Sameness, Validators};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Cases per property: the cheap ones run `MANY`, those whose inputs cost
/// more to generate or check `FEWER`. The whole file takes about 20 s of
/// CPU in the debug test profile (17 s on 2 cores shared with other builds).
const MANY: u32 = 6_000;
const FEWER: u32 = 2_500;

/// `cases` per property; nothing written to disk when one fails (the
/// failing input is printed, and belongs in a unit test of the module).
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Strings made of `parts`, numbers and any characters: near enough to a
/// header's grammar to reach deep into its parser, with anything mixed in.
fn soup(parts: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let part = prop_oneof![
        4 => select(parts).prop_map(str::to_string),
        2 => interesting_u64().prop_map(|n| n.to_string()),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(part, 0..max).prop_map(|parts| parts.concat())
}

/// Soup or arbitrary text.
fn text(parts: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop_oneof![3 => soup(parts, max), 1 => ".{0,64}"]
}

/// Numbers where parsers go wrong: 0, 1, the ends of u64, small values
/// (so that two of them are often equal or ordered), and any.
fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        select(vec![0, 1, 2, u64::MAX - 1, u64::MAX]),
        0..16u64,
        any::<u64>(),
    ]
}

// ---------------------------------------------------------------------------
// range.rs: Content-Range and the Range header.

const CONTENT_RANGE_PARTS: &[&str] = &[
    "bytes",
    "BYTES",
    "items",
    " ",
    "  ",
    "\t",
    "-",
    "/",
    "*",
    ",",
    "=",
    "0",
    "00",
    "+",
    "18446744073709551615",
    "18446744073709551616",
];

/// A Content-Range position: a u64, or past u64 (written in decimal all the same).
fn position() -> impl Strategy<Value = u128> {
    prop_oneof![
        4 => interesting_u64().prop_map(u128::from),
        1 => (u128::from(u64::MAX) + 1)..=u128::MAX,
    ]
}

/// What RFC 9110 §14.4 says of `bytes first-last/length`, written from the
/// grammar's validity rules rather than from the parser.
fn expected_content_range(
    first: u128,
    last: u128,
    total: Option<u128>,
) -> Result<ContentRange, ContentRangeError> {
    let max = u128::from(u64::MAX);
    if first > max || last > max || total.is_some_and(|t| t > max) {
        return Err(ContentRangeError::Overflow);
    }
    if first > last {
        return Err(ContentRangeError::Reversed);
    }
    if total.is_some_and(|t| last >= t) {
        return Err(ContentRangeError::PastEnd);
    }
    if last == max {
        // The half-open end, last + 1, does not fit.
        return Err(ContentRangeError::Overflow);
    }
    Ok(ContentRange::Bytes {
        range: ByteRange::new(first as u64, last as u64 + 1).unwrap(),
        total: total.map(|t| t as u64),
    })
}

/// A non-empty byte range anywhere in u64.
fn byte_range() -> impl Strategy<Value = ByteRange> {
    (interesting_u64(), interesting_u64())
        .prop_filter("non-empty", |(a, b)| a != b)
        .prop_map(|(a, b)| ByteRange::new(a.min(b), a.max(b)).unwrap())
}

proptest! {
    #![proptest_config(config(MANY))]

    /// Any value parses or is rejected; what is accepted is a non-empty
    /// range that ends within the stated length, and writing it back out
    /// reads the same.
    #[test]
    fn content_range_accepts_only_consistent_ranges(value in text(CONTENT_RANGE_PARTS, 12)) {
        match ContentRange::parse(&value) {
            Ok(ContentRange::Bytes { range, total }) => {
                prop_assert!(range.start < range.end, "{value:?} gave {range:?}");
                prop_assert!(total.is_none_or(|t| range.end <= t), "{value:?}: {range:?} past {total:?}");
                let again = format!(
                    "bytes {}-{}/{}",
                    range.start,
                    range.end - 1,
                    total.map_or("*".to_string(), |t| t.to_string())
                );
                prop_assert_eq!(ContentRange::parse(&again), Ok(ContentRange::Bytes { range, total }));
            }
            Ok(ContentRange::Unsatisfied { total }) => {
                prop_assert_eq!(ContentRange::parse(&format!("bytes */{total}")), Ok(ContentRange::Unsatisfied { total }));
            }
            Err(_) => {}
        }
    }

    /// Every well-formed value, in any letter case, with leading zeros and
    /// surrounding blanks, parses to what the RFC's rules say it means.
    #[test]
    fn content_range_agrees_with_the_rfc_rules(
        first in position(),
        last in position(),
        total in prop::option::of(position()),
        unit in select(vec!["bytes", "BYTES", "Bytes"]),
        zeros in 0..3usize,
        blank in select(vec!["", " ", "\t", " \t "]),
    ) {
        let pad = "0".repeat(zeros);
        let length = total.map_or("*".to_string(), |t| format!("{pad}{t}"));
        let value = format!("{blank}{unit} {pad}{first}-{pad}{last}/{length}{blank}");
        prop_assert_eq!(ContentRange::parse(&value), expected_content_range(first, last, total), "{:?}", value);
        let unsatisfied = format!("{unit} */{length}");
        let want = match total {
            None => Err(ContentRangeError::Syntax),
            Some(t) if t > u128::from(u64::MAX) => Err(ContentRangeError::Overflow),
            Some(t) => Ok(ContentRange::Unsatisfied { total: t as u64 }),
        };
        prop_assert_eq!(ContentRange::parse(&unsatisfied), want, "{:?}", unsatisfied);
    }

    /// The Range header we send asks for exactly the range, in HTTP's
    /// inclusive form: read back as a Content-Range, it is the same range.
    #[test]
    fn range_header_round_trips(range in byte_range(), extra in interesting_u64()) {
        let header = range.header_value().unwrap();
        prop_assert_eq!(&header, &format!("bytes={}-{}", range.start, range.end - 1));
        let positions = header.strip_prefix("bytes=").unwrap();
        prop_assert_eq!(
            ContentRange::parse(&format!("bytes {positions}/*")),
            Ok(ContentRange::Bytes { range, total: None })
        );
        let total = range.end.saturating_add(extra);
        prop_assert_eq!(
            ContentRange::parse(&format!("bytes {positions}/{total}")),
            Ok(ContentRange::Bytes { range, total: Some(total) })
        );
        prop_assert_eq!(range.len(), range.end - range.start);
        prop_assert_eq!(ByteRange::new(range.start, range.start).unwrap().header_value(), None);
    }

    /// The overlap of two ranges lies in both, is symmetric, and is missing
    /// only when they share no byte.
    #[test]
    fn intersection_is_the_shared_bytes(a in byte_range(), b in byte_range()) {
        let both = a.intersect(&b);
        prop_assert_eq!(both, b.intersect(&a));
        match both {
            Some(i) => {
                prop_assert!(i.start < i.end);
                prop_assert!(a.start <= i.start && i.end <= a.end);
                prop_assert!(b.start <= i.start && i.end <= b.end);
                prop_assert_eq!((i.start, i.end), (a.start.max(b.start), a.end.min(b.end)));
            }
            None => prop_assert!(a.end <= b.start || b.end <= a.start),
        }
    }
}

// ---------------------------------------------------------------------------
// validator.rs: ETag parsing, and comparing validators.

const ETAG_PARTS: &[&str] = &["\"", "W/", "w/", "a", "b", " ", "\t", "\\", "*", ","];

/// The opaque part of an entity tag: any character but `"`.
fn opaque() -> impl Strategy<Value = String> {
    "[^\"]{0,16}"
}

/// Validators from small sets, so that equal and different ones both occur.
fn validators() -> impl Strategy<Value = Validators> {
    let etag = prop::option::of(prop_oneof![
        select(vec!["\"a\"", "\"b\""]).prop_map(|v| EntityTag::Strong(v.into())),
        select(vec!["\"a\"", "\"b\""]).prop_map(|v| EntityTag::Weak(v.into())),
    ]);
    let last_modified = prop::option::of(
        select(vec![
            "Tue, 15 Nov 1994 08:12:31 GMT",
            "Wed, 16 Nov 1994 08:12:31 GMT",
        ])
        .prop_map(str::to_string),
    );
    let total = prop::option::of(select(vec![0, 1, u64::MAX]));
    (etag, last_modified, total).prop_map(|(etag, last_modified, total)| Validators {
        etag,
        last_modified,
        total,
    })
}

/// Both sides have the validator, and it differs.
fn differs<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

proptest! {
    #![proptest_config(config(MANY))]

    /// Any ETag value parses without a panic; it is strong exactly when it
    /// is one quoted opaque tag; and the tag written back reads the same.
    #[test]
    fn etags_parse_and_round_trip(value in text(ETAG_PARTS, 10)) {
        let tag = EntityTag::parse(&value);
        let trimmed = value.trim();
        prop_assert_eq!(tag.is_none(), trimmed.is_empty());
        if let Some(tag) = tag {
            let quoted = trimmed.len() >= 2
                && trimmed.starts_with('"')
                && trimmed.ends_with('"')
                && !trimmed[1..trimmed.len() - 1].contains('"');
            prop_assert_eq!(tag.is_strong(), quoted, "{:?}", value);
            prop_assert_eq!(EntityTag::parse(&tag.as_header()), Some(tag));
        }
    }

    /// Well-formed strong and weak tags are read as such, and a weak tag
    /// never equals the strong tag with the same opaque part.
    #[test]
    fn well_formed_etags_keep_their_strength(inner in opaque(), blank in select(vec!["", " ", "\t"])) {
        let strong = format!("\"{inner}\"");
        prop_assert_eq!(
            EntityTag::parse(&format!("{blank}{strong}{blank}")),
            Some(EntityTag::Strong(strong.clone()))
        );
        let weak = EntityTag::parse(&format!("{blank}W/{strong}{blank}")).unwrap();
        prop_assert_eq!(&weak, &EntityTag::Weak(strong.clone()));
        prop_assert_ne!(Some(weak), EntityTag::parse(&strong));
    }

    /// The verdict follows the rules of the module: a validator both sides
    /// have and that differs is a change (the length first); only an equal
    /// strong ETag proves sameness; anything else is unproven.
    #[test]
    fn comparing_validators_follows_the_rules(was in validators(), now in validators()) {
        let verdict = was.compare(&now);
        let changed = differs(&was.total, &now.total)
            || differs(&was.etag, &now.etag)
            || differs(&was.last_modified, &now.last_modified);
        let proven = matches!((&was.etag, &now.etag), (Some(a), Some(b)) if a.is_strong() && a == b);
        match &verdict {
            Sameness::Changed(change) => {
                prop_assert!(changed);
                if let (Some(a), Some(b)) = (was.total, now.total) {
                    if a != b {
                        prop_assert_eq!(change, &Change::Length { was: a, now: b });
                    }
                }
            }
            Sameness::Same => prop_assert!(!changed && proven),
            Sameness::Unproven => prop_assert!(!changed && !proven),
        }
        // Whether the file changed does not depend on which side is stored.
        prop_assert_eq!(
            matches!(verdict, Sameness::Changed(_)),
            matches!(now.compare(&was), Sameness::Changed(_))
        );
        prop_assert!(!matches!(was.compare(&was), Sameness::Changed(_)));
    }

    /// From header values to a verdict: "same" only for the same strong tag
    /// (the only proof that the stored bytes can be spliced with new ones).
    #[test]
    fn only_identical_strong_etags_prove_sameness(a in text(ETAG_PARTS, 8), b in text(ETAG_PARTS, 8)) {
        let side = |v: &str| Validators { etag: EntityTag::parse(v), ..Validators::default() };
        if side(&a).compare(&side(&b)) == Sameness::Same {
            prop_assert_eq!(a.trim(), b.trim());
            prop_assert!(EntityTag::parse(&a).unwrap().is_strong());
        }
    }
}

// ---------------------------------------------------------------------------
// filename.rs: Content-Disposition, the URL, and sanitize.

const NAME_PARTS: &[&str] = &[
    "a", "b.", ".", "..", " ", "  ", "\t", "\0", "\u{7f}", "\u{85}", "\u{2003}", "é", "€", "𝄞",
    "\\", "/", ":", "*", "?", "\"", "<", ">", "|", "$", ".txt", ".tar.gz", "CON", "con", "Nul",
    "AUX", "PRN", "COM1", "com9", "LPT1", "COM0", "COM¹", "lpt³", "CONIN$", "conout$",
];

/// Names of every length up to past the 255-byte limit.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => soup(NAME_PARTS, 12),
        1 => soup(NAME_PARTS, 160),
        1 => ".{0,300}",
    ]
}

/// Windows device names, in any ASCII case, alone or before an extension, and
/// with blanks before the extension (`CON .txt`); as Python's
/// `ntpath.isreserved` has them, superscript digits and console names
/// included.
fn is_windows_reserved(name: &str) -> bool {
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ["COM", "LPT"].iter().any(|device| {
        upper.strip_prefix(device).is_some_and(|n| {
            matches!(
                n,
                "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
            )
        })
    })
}

/// The promises of `sanitize`'s module doc, checked on its output.
fn assert_safe(out: &str, input: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !out.chars()
            .any(|c| r#"\/:*?"<>|"#.contains(c) || c.is_control()),
        "{input:?} gave {out:?}"
    );
    prop_assert!(!out.ends_with(['.', ' ']), "{input:?} gave {out:?}");
    prop_assert!(out.len() <= 255, "{input:?} gave {} bytes", out.len());
    prop_assert!(!is_windows_reserved(out), "{input:?} gave {out:?}");
    Ok(())
}

/// RFC 8187 `value-chars`: what is not an `attr-char` is percent-encoded.
fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(config(FEWER))]

    /// Whatever the name, the result is safe on every desktop file system,
    /// and sanitizing it again changes nothing.
    #[test]
    fn sanitized_names_are_safe(input in name()) {
        let out = sanitize(&input);
        assert_safe(&out, &input)?;
        prop_assert_eq!(sanitize(&out), out.clone(), "{:?}", input);
    }

    /// A name that is already safe is kept as it is.
    #[test]
    fn safe_names_are_kept(stem in "[A-Za-z0-9_][A-Za-z0-9 _-]{0,40}[A-Za-z0-9_]", ext in "(\\.[a-z0-9]{1,8}){0,2}") {
        let input = format!("{stem}{ext}");
        prop_assume!(!is_windows_reserved(&input));
        prop_assert_eq!(sanitize(&input), input);
    }

    /// The name chosen from any caller, server and URL values is never
    /// empty and always safe.
    #[test]
    fn chosen_names_are_safe(
        caller in prop::option::of(name()),
        disposition in text(&["attachment", ";", " filename=", "filename*=", "UTF-8''", "%", "\"", "%2F"], 10),
        url in text(&["https://", "h", "/", "%", "2F", "?", "#", ".bin", "%00", ".."], 12),
    ) {
        let server = from_content_disposition(&disposition);
        let _ = from_url(&url);
        let out = choose(caller.as_deref(), server.as_deref(), &url);
        prop_assert!(!out.is_empty());
        assert_safe(&out, &url)?;
        prop_assert!(out == filename::DEFAULT_NAME || sanitize(&out) == out);
    }

    /// Any name quoted as RFC 9110 quoted-string (`\` before `"` and `\`),
    /// among other parameters, reads back exactly.
    #[test]
    fn quoted_filenames_round_trip(name in ".{0,40}", other in "[a-z]{1,8}", before in any::<bool>()) {
        let quoted: String = name
            .chars()
            .flat_map(|c| (c == '"' || c == '\\').then_some('\\').into_iter().chain([c]))
            .collect();
        let value = if before {
            format!("attachment; {other}=\"x;y=z\"; filename=\"{quoted}\"")
        } else {
            format!("attachment; filename=\"{quoted}\"; {other}=1")
        };
        prop_assert_eq!(from_content_disposition(&value), Some(name), "{:?}", value);
    }

    /// Any name as an RFC 8187 `filename*` reads back exactly, and is
    /// preferred to `filename`; ISO-8859-1 too, for the names it can write.
    #[test]
    fn extended_filenames_round_trip(name in ".{0,40}", latin1 in "[\u{1}-\u{ff}]{0,40}", lang in "(en|de-CH)?") {
        let utf8 = percent_encode(name.as_bytes());
        let value = format!("attachment; filename=\"fallback.bin\"; filename*=UTF-8'{lang}'{utf8}");
        prop_assert_eq!(from_content_disposition(&value), Some(name), "{:?}", value);
        let bytes: Vec<u8> = latin1.chars().map(|c| c as u8).collect();
        let value = format!("attachment; filename*=iso-8859-1''{}", percent_encode(&bytes));
        prop_assert_eq!(from_content_disposition(&value), Some(latin1), "{:?}", value);
    }
}

// ---------------------------------------------------------------------------
// integrity.rs: SRI metadata and Repr-Digest.

fn base64(bytes: &[u8], url_safe: bool, padded: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
        if padded {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn digest_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Sha256 => 32,
        Algorithm::Sha384 => 48,
        Algorithm::Sha512 => 64,
    }
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    select(vec![
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
    ])
}

/// An algorithm and a digest of its length.
fn digest() -> impl Strategy<Value = (Algorithm, Vec<u8>)> {
    algorithm().prop_flat_map(|a| (Just(a), prop::collection::vec(any::<u8>(), digest_len(a))))
}

const DIGEST_PARTS: &[&str] = &[
    "sha256-",
    "sha384-",
    "sha512-",
    "SHA256-",
    "md5-",
    "sha-256=",
    "sha-512=",
    ":",
    ",",
    ";",
    "?",
    "=",
    " ",
    "\t",
    "AAAA",
    "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0",
    "-",
    "_",
    "+",
    "/",
];

proptest! {
    #![proptest_config(config(MANY))]

    /// Any `integrity` value is read or refused without a panic; what is
    /// read has at least one digest, each of its algorithm's length.
    #[test]
    fn integrity_values_never_panic(value in text(DIGEST_PARTS, 10)) {
        if let Ok(e) = parse_integrity(&value) {
            prop_assert!(!e.digests.is_empty());
            prop_assert!(e.digests.iter().all(|d| d.len() == digest_len(e.algorithm)));
            prop_assert_eq!(e.source, Source::Integrity);
        }
    }

    /// Any `Repr-Digest` value is read or ignored without a panic; what is
    /// read is a SHA-256 or SHA-512 digest of its length.
    #[test]
    fn repr_digest_values_never_panic(value in text(DIGEST_PARTS, 10)) {
        if let Some(e) = parse_repr_digest(&value) {
            prop_assert!(matches!(e.algorithm, Algorithm::Sha256 | Algorithm::Sha512));
            prop_assert_eq!(e.digests.len(), 1);
            prop_assert_eq!(e.digests[0].len(), digest_len(e.algorithm));
            prop_assert_eq!(e.source, Source::ReprDigest);
        }
    }

}

proptest! {
    #![proptest_config(config(FEWER))]

    /// SRI metadata written from digests (any base64 flavour, options,
    /// unknown algorithms, any blanks) reads back as the strongest
    /// algorithm's digests, in order.
    #[test]
    fn integrity_metadata_round_trips(
        digests in prop::collection::vec((digest(), any::<bool>(), any::<bool>(), any::<bool>()), 1..5),
        blank in select(vec![" ", "\t", "  \n"]),
    ) {
        let mut tokens = vec!["md5-AAAA".to_string()];
        for ((algorithm, bytes), url_safe, padded, option) in &digests {
            let name = match algorithm {
                Algorithm::Sha256 => "sha256",
                Algorithm::Sha384 => "sha384",
                Algorithm::Sha512 => "sha512",
            };
            let option = if *option { "?ct=application/octet-stream" } else { "" };
            tokens.push(format!("{name}-{}{option}", base64(bytes, *url_safe, *padded)));
        }
        let e = parse_integrity(&tokens.join(blank)).unwrap();
        let strongest = digests.iter().map(|((a, _), ..)| *a).max().unwrap();
        let want: Vec<Vec<u8>> = digests
            .iter()
            .filter(|((a, _), ..)| *a == strongest)
            .map(|((_, d), ..)| d.clone())
            .collect();
        prop_assert_eq!((e.algorithm, e.digests), (strongest, want));
    }

    /// A `Repr-Digest` dictionary reads back as its strongest supported member.
    #[test]
    fn repr_digest_round_trips(
        members in prop::collection::vec((prop_oneof![Just(Algorithm::Sha256), Just(Algorithm::Sha512)], any::<bool>()), 1..4),
        seed in any::<u8>(),
    ) {
        let digest = |a: Algorithm, i: usize| vec![seed.wrapping_add(i as u8); digest_len(a)];
        let mut fields = vec!["unixsum=:AAA=:".to_string()];
        for (i, (algorithm, params)) in members.iter().enumerate() {
            let key = if *algorithm == Algorithm::Sha256 { "sha-256" } else { "sha-512" };
            let params = if *params { ";q=1" } else { "" };
            fields.push(format!("{key}=:{}:{params}", base64(&digest(*algorithm, i), false, true)));
        }
        let e = parse_repr_digest(&fields.join(", ")).unwrap();
        let strongest = members.iter().map(|(a, _)| *a).max().unwrap();
        prop_assert_eq!(e.algorithm, strongest);
        let candidates: Vec<Vec<u8>> = members
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| *a == strongest)
            .map(|(i, (a, _))| digest(*a, i))
            .collect();
        prop_assert!(candidates.contains(&e.digests[0]));
    }

    /// The digest of the bytes, given as SRI, passes the check however the
    /// bytes are split; one changed byte fails it.
    #[test]
    fn the_check_passes_exactly_the_right_bytes(
        data in prop::collection::vec(any::<u8>(), 1..300),
        algorithm in algorithm(),
        split in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let sum = |bytes: &[u8]| match algorithm {
            Algorithm::Sha256 => Sha256::digest(bytes).to_vec(),
            Algorithm::Sha384 => Sha384::digest(bytes).to_vec(),
            Algorithm::Sha512 => Sha512::digest(bytes).to_vec(),
        };
        let name = format!("{algorithm:?}").to_lowercase();
        let expected = parse_integrity(&format!("{name}-{}", base64(&sum(&data), false, true))).unwrap();
        let check = |bytes: &[u8]| {
            let mut check = Check::new(vec![expected.clone()]);
            let (a, b) = bytes.split_at(split.index(bytes.len() + 1));
            check.update(a);
            check.update(b);
            check.finish()
        };
        prop_assert_eq!(check(&data), Ok(()));
        let mut bad = data.clone();
        bad[flip.index(data.len())] ^= 1;
        prop_assert!(check(&bad).is_err());
    }
}

// ---------------------------------------------------------------------------
// options.rs: validation.

/// Values at and around the limits, and any.
fn around(limits: &'static [u64]) -> impl Strategy<Value = u64> {
    prop_oneof![
        select(limits).prop_flat_map(|l| l.saturating_sub(1)..=l.saturating_add(1)),
        interesting_u64(),
    ]
}

fn options() -> impl Strategy<Value = Options> {
    let url = prop_oneof![
        Just(String::new()),
        Just("https://h/f.bin#x".to_string()),
        ".{0,20}"
    ];
    let id = prop_oneof![Just(String::new()), ".{1,20}"];
    let header = (
        text(
            &[
                "X-A", "Cookie", "Range", "sec-x", "Proxy-", "Host", " ", ":", "é",
            ],
            3,
        ),
        text(&["v", "\r", "\n", "\0", " ", "é"], 4),
    );
    let numbers = (
        around(&[1, MAX_CONNECTIONS as u64]).prop_map(|v| v as u32),
        around(&[MIN_BLOCK_SIZE, MAX_BLOCK_SIZE]),
        around(&[MIN_BLOCK_SIZE, MAX_BLOCK_SIZE]),
        around(&[0, MAX_RETRIES as u64]).prop_map(|v| v as u32),
        around(&[1, MAX_STALL_TIMEOUT_MS]),
        prop::option::of(around(&[2, u32::MAX as u64]).prop_map(|v| v as u32)),
    );
    (
        url,
        id,
        numbers,
        prop::collection::vec(header, 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(
                url,
                id,
                (connections, block, whole, retries, stall, max_requests),
                headers,
                browser,
            )| {
                Options {
                    id,
                    connections,
                    block_size: block,
                    whole_block_size: whole,
                    retries,
                    stall_timeout_ms: stall,
                    max_requests,
                    headers,
                    browser,
                    ..Options::new(&url)
                }
            },
        )
}

proptest! {
    #![proptest_config(config(FEWER))]

    /// Validation never panics, and what it accepts is within the
    /// documented limits.
    #[test]
    fn accepted_options_are_within_the_limits(o in options()) {
        if o.validate().is_ok() {
            prop_assert!(!o.url.is_empty() && !o.id.is_empty());
            prop_assert!((1..=MAX_CONNECTIONS).contains(&o.connections));
            prop_assert!((MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&o.block_size));
            prop_assert!((MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&o.whole_block_size));
            prop_assert!(o.retries <= MAX_RETRIES);
            prop_assert!((1..=MAX_STALL_TIMEOUT_MS).contains(&o.stall_timeout_ms));
            prop_assert!(o.max_requests.is_none_or(|n| n >= 2));
            for (name, value) in &o.headers {
                let token = |b: u8| b.is_ascii_graphic() && !br#""(),/:;<=>?@[\]{}"#.contains(&b);
                prop_assert!(!name.is_empty() && name.bytes().all(token), "header {:?}", name);
                prop_assert!(!value.contains(['\r', '\n', '\0']));
            }
        } else if o.headers.is_empty() && !o.url.is_empty() && !o.id.is_empty() {
            // Refused without a bad header: some number is out of its limits.
            prop_assert!(
                !(1..=MAX_CONNECTIONS).contains(&o.connections)
                    || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&o.block_size)
                    || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&o.whole_block_size)
                    || o.retries > MAX_RETRIES
                    || !(1..=MAX_STALL_TIMEOUT_MS).contains(&o.stall_timeout_ms)
                    || o.max_requests.is_some_and(|n| n < 2)
            );
        }
    }

    /// `blockSize` sets both block sizes, and is accepted exactly within its limits.
    #[test]
    fn block_size_is_accepted_exactly_within_its_limits(bytes in around(&[MIN_BLOCK_SIZE, MAX_BLOCK_SIZE])) {
        let mut o = Options::new("https://h/f");
        o.set_block_size(bytes);
        prop_assert_eq!((o.block_size, o.whole_block_size), (bytes, bytes));
        prop_assert_eq!(o.validate().is_ok(), (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bytes));
    }
}

// ---------------------------------------------------------------------------
// record.rs: the stored record, the one thing trusted after a reload.

/// The decoder's bound on pieces (record.rs `MAX_PIECES`).
const MAX_PIECES: u64 = 1 << 22;

fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |mut c, &b| {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        c
    })
}

/// Magic, version, `body`, and a checksum that matches: what passes the
/// decoder's first checks and reaches the fields.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut bytes = b"RFRC".to_vec();
    bytes.push(RECORD_VERSION);
    bytes.extend_from_slice(body);
    let crc = crc32(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One field as the record writes it, or something near it.
#[derive(Clone, Debug)]
enum Field {
    Number(u64),
    /// Length-prefixed bytes (UTF-8 or not).
    Text(Vec<u8>),
    /// A length that claims more bytes than follow.
    Short(u64),
    Raw(Vec<u8>),
}

fn field() -> BoxedStrategy<Field> {
    prop_oneof![
        6 => prop_oneof![0..4u64, interesting_u64(), select(vec![MAX_PIECES - 1, MAX_PIECES, MAX_PIECES + 1])]
            .prop_map(Field::Number),
        3 => prop_oneof![".{0,8}".prop_map(String::into_bytes), prop::collection::vec(any::<u8>(), 0..8)]
            .prop_map(Field::Text),
        1 => interesting_u64().prop_map(Field::Short),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Field::Raw),
    ]
    .boxed()
}

/// A body that follows the record's layout for a while: id, url, total,
/// ETag, Last-Modified, flags, file name, type, times, then runs of pieces
/// `(gap, length, count)`, each field possibly something else.
fn near_record_body() -> impl Strategy<Value = Vec<u8>> {
    // Boxed: the nested strategy types otherwise overflow the test thread's
    // stack in a debug build.
    let text = || {
        prop_oneof![8 => "[a-z]{0,6}".prop_map(|s| Field::Text(s.into_bytes())), 1 => field()]
            .boxed()
    };
    let number = || {
        prop_oneof![8 => prop_oneof![0..1000u64, interesting_u64()].prop_map(Field::Number), 1 => field()].boxed()
    };
    // An optional value as the record writes it (tag 0, or tag 1 and the
    // value), or something else.
    let optional = |value: BoxedStrategy<Field>| {
        prop_oneof![
            4 => Just(vec![Field::Number(0)]),
            4 => value.prop_map(|v| vec![Field::Number(1), v]),
            1 => field().prop_map(|f| vec![f]),
        ]
        .boxed()
    };
    let etag = prop_oneof![
        2 => Just(vec![Field::Number(0)]),
        4 => (1..3u64, text()).prop_map(|(kind, v)| vec![Field::Number(kind), v]),
        1 => field().prop_map(|f| vec![f]),
    ];
    let flags = prop_oneof![8 => (0..4u64).prop_map(Field::Number), 1 => field()];
    let head = (
        (text(), text()),
        optional(number()),
        etag,
        optional(text()),
        flags,
        (optional(text()), optional(text())),
        (number(), number()),
    )
        .prop_map(
            |((id, url), total, etag, modified, flags, (name, ctype), (created, updated))| {
                let mut fields = vec![id, url];
                fields.extend(total);
                fields.extend(etag);
                fields.extend(modified);
                fields.push(flags);
                fields.extend(name);
                fields.extend(ctype);
                fields.extend([created, updated]);
                fields
            },
        );
    // Counts large enough to matter only where they are rejected (past
    // the bound, or overflowing): a valid run of millions of pieces is
    // legal, and costs seconds in a debug build.
    let count = prop_oneof![
        8 => 1..64u64,
        1 => Just(0),
        1 => prop_oneof![Just(MAX_PIECES + 1), Just(u64::MAX), Just(u64::MAX - 1), (1u64 << 40)..]
    ];
    let run = (
        prop_oneof![0..100u64, interesting_u64()],
        prop_oneof![0..100u64, interesting_u64()],
        count,
    );
    let runs = (
        prop::option::of(interesting_u64()),
        prop::collection::vec(run, 0..6),
    );
    let tail = prop::collection::vec(field(), 0..2);
    (head, runs, tail).prop_map(|(mut fields, (run_count, runs), tail)| {
        fields.push(Field::Number(run_count.unwrap_or(runs.len() as u64)));
        for (gap, len, count) in runs {
            fields.extend([Field::Number(gap), Field::Number(len), Field::Number(count)]);
        }
        fields.extend(tail);
        let mut body = Vec::new();
        for f in fields {
            match f {
                Field::Number(n) => varint(&mut body, n),
                Field::Text(t) => {
                    varint(&mut body, t.len() as u64);
                    body.extend_from_slice(&t);
                }
                Field::Short(n) => varint(&mut body, n.max(1 << 20)),
                Field::Raw(r) => body.extend_from_slice(&r),
            }
        }
        body
    })
}

/// What every record the decoder accepts must satisfy, and that encoding
/// it again gives a record that decodes the same.
fn assert_consistent(rec: &Record) -> Result<(), TestCaseError> {
    if let Some(total) = rec.total() {
        prop_assert!(rec.pieces.end() <= total);
    }
    if rec.complete {
        prop_assert!(rec.total().is_some_and(|t| rec.pieces.covers(t)));
    }
    prop_assert!(rec.pieces.len() as u64 <= MAX_PIECES);
    prop_assert_eq!(Record::decode(&rec.encode()), Ok(rec.clone()));
    Ok(())
}

/// A sealed record is its own (right magic and version): decoded, it is
/// consistent, or refused as damaged.
fn assert_decoded(decoded: Result<Record, RecordError>) -> Result<(), TestCaseError> {
    match decoded {
        Ok(rec) => assert_consistent(&rec),
        Err(e) => {
            prop_assert!(matches!(e, RecordError::Corrupt(_)), "{e:?}");
            Ok(())
        }
    }
}

/// Pieces as `(gap, length, repeat)` steps: blocks of one size in a row,
/// as a download stores them, and odd sizes and gaps anywhere in u64.
fn pieces_from(steps: &[(u64, u64, u64)], contiguous: bool) -> Pieces {
    let mut pieces = Pieces::new();
    let mut end = 0u64;
    'steps: for &(gap, len, repeat) in steps {
        let mut start = if contiguous {
            end
        } else {
            end.saturating_add(gap)
        };
        for _ in 0..repeat {
            let Some(piece_end) = start.checked_add(len) else {
                break 'steps;
            };
            if len > 0 {
                assert!(pieces.insert(ByteRange::new(start, piece_end).unwrap()));
            }
            start = piece_end;
        }
        end = start;
    }
    pieces
}

fn record() -> impl Strategy<Value = Record> {
    let step = (
        prop_oneof![Just(0), 0..10_000u64, interesting_u64()],
        prop_oneof![1..10_000u64, Just(8 << 20), interesting_u64()],
        1..40u64,
    );
    let strings = (
        ".{0,12}",
        ".{0,40}",
        prop::option::of(".{0,12}"),
        prop::option::of(".{0,12}"),
    );
    let etag = prop::option::of(prop_oneof![
        ".{0,12}".prop_map(EntityTag::Strong),
        ".{0,12}".prop_map(EntityTag::Weak),
    ]);
    let last_modified = prop::option::of(".{0,30}");
    let state = (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(interesting_u64()),
    );
    (
        strings,
        etag,
        last_modified,
        state,
        prop::collection::vec(step, 0..8),
        (any::<u64>(), any::<u64>()),
    )
        .prop_map(
            |(
                (id, url, server_filename, content_type),
                etag,
                last_modified,
                (resumable, complete, extra),
                steps,
                (created_at, updated_at),
            )| {
                let pieces = pieces_from(&steps, complete);
                // The total is where the pieces end, or past it, or unknown;
                // a complete record's is exactly its end.
                let total = if complete {
                    Some(pieces.end())
                } else {
                    extra.map(|e| pieces.end().saturating_add(e))
                };
                let mut rec = Record::new(&id, &url, created_at);
                rec.validators = Validators {
                    etag,
                    last_modified,
                    total,
                };
                rec.resumable = resumable;
                rec.complete = complete;
                rec.pieces = pieces;
                rec.server_filename = server_filename;
                rec.content_type = content_type;
                rec.updated_at = updated_at;
                rec
            },
        )
}

proptest! {
    #![proptest_config(config(MANY))]

    /// Any bytes are a record or a reason, never a panic; what is accepted
    /// is consistent.
    #[test]
    fn any_bytes_decode_without_a_panic(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        // Past the magic, to the version and checksum checks.
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(version, rest)| {
            [&b"RFRC"[..], &[version], &rest].concat()
        }),
    ]) {
        if let Ok(rec) = Record::decode(&bytes) {
            assert_consistent(&rec)?;
        }
    }

    /// Any bytes behind a valid magic, version and checksum: the checks
    /// after the checksum see them all, without a panic.
    #[test]
    fn sealed_bytes_decode_without_a_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_decoded(Record::decode(&sealed(&body)))?;
    }

}

proptest! {
    #![proptest_config(config(FEWER))]

    /// Sealed bodies that follow the layout most of the way, with damaged
    /// strings, tags, flags, run counts, offsets and lengths: decoded
    /// without a panic or an overflow, and, when accepted, consistent.
    #[test]
    fn damaged_records_are_refused_without_a_panic(body in near_record_body()) {
        assert_decoded(Record::decode(&sealed(&body)))?;
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Every valid record decodes to itself; cut short or with one bit
    /// flipped it is refused.
    #[test]
    fn records_round_trip(rec in record(), cut in any::<prop::sample::Index>(), bit in any::<prop::sample::Index>()) {
        let bytes = rec.encode();
        prop_assert_eq!(Record::decode(&bytes), Ok(rec.clone()));
        prop_assert!(Record::decode(&bytes[..cut.index(bytes.len())]).is_err());
        let mut flipped = bytes.clone();
        let bit = bit.index(bytes.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Record::decode(&flipped).is_err());
    }
}

// ---------------------------------------------------------------------------
// response.rs: what a response says, judged against the record.

fn header(value: impl Strategy<Value = String>) -> impl Strategy<Value = Header> {
    prop_oneof![
        1 => Just(Header::Absent),
        1 => Just(Header::Hidden),
        4 => value.prop_map(Header::Present),
    ]
}

/// `bytes first-last/total` near the asked range, or soup.
fn content_range_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..2000u64, 0..2000u64, prop::option::of(0..2000u64)).prop_map(|(a, b, t)| {
            format!(
                "bytes {a}-{b}/{}",
                t.map_or("*".to_string(), |t| t.to_string())
            )
        }),
        (0..2000u64).prop_map(|t| format!("bytes */{t}")),
        text(CONTENT_RANGE_PARTS, 8),
    ]
}

fn response_head() -> impl Strategy<Value = ResponseHead> {
    (
        prop_oneof![select(vec![200u16, 206, 416]), any::<u16>()],
        header(content_range_value()),
        header(prop_oneof![
            (0..2000u64).prop_map(|n| n.to_string()),
            text(&["1", " ", "-"], 4)
        ]),
        header(select(vec!["identity", " Identity ", "gzip", ""]).prop_map(str::to_string)),
        header(select(vec!["\"a\"", "W/\"a\"", "\"b\"", "x"]).prop_map(str::to_string)),
        header(select(vec!["Tue, 15 Nov 1994 08:12:31 GMT", "x"]).prop_map(str::to_string)),
        header(text(
            &[
                "attachment",
                "; filename=",
                "\"",
                "a.bin",
                "filename*=UTF-8''",
                "%",
            ],
            6,
        )),
        header(
            select(vec!["multipart/byteranges; boundary=x", "text/plain"]).prop_map(str::to_string),
        ),
    )
        .prop_map(
            |(
                status,
                content_range,
                content_length,
                content_encoding,
                etag,
                last_modified,
                content_disposition,
                content_type,
            )| {
                ResponseHead {
                    status,
                    content_range,
                    content_length,
                    content_encoding,
                    etag,
                    last_modified,
                    content_disposition,
                    content_type,
                    repr_digest: Header::Absent,
                }
            },
        )
}

/// A fresh record, or one holding bytes 0..100 of a file it knows some
/// validators of.
fn stored() -> impl Strategy<Value = Record> {
    (
        any::<bool>(),
        prop::option::of(select(vec![100u64, 1000, 1999])),
        prop::option::of(select(vec!["\"a\"", "W/\"a\""])),
    )
        .prop_map(|(fresh, total, etag)| {
            let mut rec = Record::new("id", "https://h/f", 0);
            if !fresh {
                rec.validators = Validators {
                    etag: etag.and_then(EntityTag::parse),
                    last_modified: None,
                    total,
                };
                rec.pieces.insert(ByteRange::new(0, 100).unwrap());
            }
            rec
        })
}

proptest! {
    #![proptest_config(config(FEWER))]

    /// Any response is classified without a panic; a range it accepts is
    /// a non-empty range within the stated length, and an end of file is
    /// only where the asked range starts at or past it.
    #[test]
    fn responses_are_classified_without_a_panic(
        head in response_head(),
        record in stored(),
        (start, len) in (0..2000u64, 1..500u64),
    ) {
        let asked = ByteRange::new(start, start + len).unwrap();
        match response::check(&head, asked, &record, "https://h/f") {
            Checked::Range { range, total, .. } => {
                prop_assert_eq!(head.status, 206);
                prop_assert!(range.start < range.end);
                prop_assert!(total.is_none_or(|t| range.end <= t));
            }
            Checked::EndOfFile { total, .. } => {
                prop_assert_eq!(head.status, 416);
                prop_assert!(asked.start >= total);
            }
            _ => {}
        }
        let mut learned = record.clone();
        response::learn(&mut learned, &head, None);
        let mut whole = Record::new("id", "https://h/f", 0);
        if let Some(total) = response::learn_whole(&mut whole, &head) {
            prop_assert_eq!(whole.total(), Some(total));
        }
    }
}
