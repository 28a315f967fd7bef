//! The digests a completed file must have: the caller's `integrity`
//! (Subresource Integrity metadata, e.g. `sha256-<base64>`) and the server's
//! `Repr-Digest` (RFC 9530, e.g. `sha-256=:<base64>:`), both for the whole
//! file. They are checked over the stored bytes, read back in parts, when
//! the last piece is stored.

use super::codec::{base64_decode, base64_encode};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// The SRI name, which messages use for both sources.
    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    fn hasher(self) -> Hasher {
        match self {
            Self::Sha256 => Hasher::Sha256(Sha256::new()),
            Self::Sha384 => Hasher::Sha384(Sha384::new()),
            Self::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
}

/// Who asked for the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `integrity` option.
    Integrity,
    /// The server's `Repr-Digest` header.
    ReprDigest,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Integrity => "the integrity option",
            Self::ReprDigest => "the server's Repr-Digest",
        })
    }
}

/// What the file must hash to: any one of `digests`, with `algorithm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub algorithm: Algorithm,
    pub digests: Vec<Vec<u8>>,
    pub source: Source,
}

impl Expected {
    /// The digests as SRI writes them (`sha256-<base64>`, space-separated):
    /// what a record remembers the file matched.
    pub fn fingerprint(&self) -> String {
        let name = self.algorithm.name();
        let each = self
            .digests
            .iter()
            .map(|d| format!("{name}-{}", base64_encode(d)));
        each.collect::<Vec<_>>().join(" ")
    }
}

/// The file does not hash to what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub source: Source,
    /// `sha256-<base64>`, as the caller would write it.
    pub expected: String,
    pub actual: String,
}

/// Parses SRI metadata: whitespace-separated `alg-base64[?options]`. As in
/// browsers, the strongest algorithm given counts, any of its digests may
/// match, and unknown algorithms are ignored; with nothing usable it is an
/// error, since a check we cannot make must not pass silently.
pub fn parse_integrity(value: &str) -> Result<Expected, String> {
    let mut best: Option<Expected> = None;
    for token in value.split_ascii_whitespace() {
        let token = token.split('?').next().unwrap_or_default();
        let Some((name, digest)) = token.split_once('-') else {
            continue;
        };
        let algorithm = match name.to_ascii_lowercase().as_str() {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            _ => continue,
        };
        let digest = base64_decode(digest)
            .filter(|d| d.len() == digest_len(algorithm))
            .ok_or_else(|| format!("{token:?} is not a {} digest in base64", algorithm.name()))?;
        best = Some(match best {
            Some(mut b) if b.algorithm == algorithm => {
                b.digests.push(digest);
                b
            }
            Some(b) if b.algorithm > algorithm => b,
            _ => Expected {
                algorithm,
                digests: vec![digest],
                source: Source::Integrity,
            },
        });
    }
    best.ok_or_else(|| {
        format!(
            "{value:?} has no sha256-, sha384- or sha512- digest (Subresource Integrity syntax)"
        )
    })
}

/// Parses a `Repr-Digest` dictionary (`sha-256=:<base64>:, sha-512=…`): the
/// strongest supported digest, or `None` when there is none usable (a
/// server's header that cannot be read is not an error of the download).
pub fn parse_repr_digest(value: &str) -> Option<Expected> {
    value
        .split(',')
        .filter_map(|member| {
            let (key, rest) = member.trim().split_once('=')?;
            let algorithm = match key.trim() {
                "sha-256" => Algorithm::Sha256,
                "sha-512" => Algorithm::Sha512,
                _ => return None,
            };
            let digest = rest.split(';').next()?.trim();
            let digest = base64_decode(digest.strip_prefix(':')?.strip_suffix(':')?)?;
            (digest.len() == digest_len(algorithm)).then_some(Expected {
                algorithm,
                digests: vec![digest],
                source: Source::ReprDigest,
            })
        })
        .max_by_key(|e| e.algorithm)
}

/// Hashes the file once for every expected digest.
pub struct Check {
    hashers: Vec<(Expected, Hasher)>,
}

impl Check {
    pub fn new(expected: Vec<Expected>) -> Self {
        Self {
            hashers: expected
                .into_iter()
                .map(|e| {
                    let hasher = e.algorithm.hasher();
                    (e, hasher)
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hashers.is_empty()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for (_, hasher) in &mut self.hashers {
            hasher.update(bytes);
        }
    }

    /// The first expectation the file does not meet, if any.
    pub fn finish(self) -> Result<(), Mismatch> {
        for (expected, hasher) in self.hashers {
            let actual = hasher.finish();
            if !expected.digests.contains(&actual) {
                let name = expected.algorithm.name();
                return Err(Mismatch {
                    source: expected.source,
                    expected: expected
                        .digests
                        .first()
                        .map(|d| format!("{name}-{}", base64_encode(d)))
                        .unwrap_or_default(),
                    actual: format!("{name}-{}", base64_encode(&actual)),
                });
            }
        }
        Ok(())
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha384(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

fn digest_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Sha256 => 32,
        Algorithm::Sha384 => 48,
        Algorithm::Sha512 => 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256 and SHA-512 of "abc", from FIPS 180-2.
    const ABC_256: &str = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
    const ABC_512: &str =
        "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==";

    fn checked(expected: Vec<Expected>, parts: &[&[u8]]) -> Result<(), Mismatch> {
        let mut check = Check::new(expected);
        for part in parts {
            check.update(part);
        }
        check.finish()
    }

    #[test]
    fn integrity_metadata_takes_the_strongest_algorithm() {
        let e = parse_integrity(&format!("sha256-{ABC_256}")).unwrap();
        assert_eq!(
            (e.algorithm, e.source),
            (Algorithm::Sha256, Source::Integrity)
        );
        assert!(checked(vec![e], &[b"a", b"bc"]).is_ok());

        let both =
            parse_integrity(&format!("md5-xyz sha512-{ABC_512}?ct=x  sha256-{ABC_256}")).unwrap();
        assert_eq!(both.algorithm, Algorithm::Sha512);
        assert!(checked(vec![both], &[b"abc"]).is_ok());

        let any = parse_integrity(&format!(
            "sha256-{} sha256-{ABC_256}",
            base64_encode(&[0; 32])
        ))
        .unwrap();
        assert_eq!(any.digests.len(), 2);
        assert!(
            checked(vec![any], &[b"abc"]).is_ok(),
            "any digest of the algorithm"
        );

        for bad in ["", "md5-abc", "sha256-!!", "sha256-AAAA", "sha256"] {
            assert!(parse_integrity(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_mismatch_names_both_digests_and_its_source() {
        let e = parse_integrity(&format!("sha256-{ABC_256}")).unwrap();
        let m = checked(vec![e], &[b"abd"]).unwrap_err();
        assert_eq!(m.source, Source::Integrity);
        assert_eq!(m.expected, format!("sha256-{ABC_256}"));
        assert!(m.actual.starts_with("sha256-") && m.actual != m.expected);
    }

    #[test]
    fn repr_digest_fields_are_read_leniently() {
        let e = parse_repr_digest(&format!("sha-256=:{ABC_256}:")).unwrap();
        assert_eq!(
            (e.algorithm, e.source),
            (Algorithm::Sha256, Source::ReprDigest)
        );
        let strongest = parse_repr_digest(&format!(
            "unixsum=:AAA=:, sha-512=:{ABC_512}:;x=1, sha-256=:{ABC_256}:"
        ))
        .unwrap();
        assert_eq!(strongest.algorithm, Algorithm::Sha512);
        assert!(checked(vec![e, strongest], &[b"ab", b"c"]).is_ok());
        for unusable in ["", "sha-256=abc", "sha-256=:AAAA:", "md5=:AAAA:", "sha-256"] {
            assert_eq!(parse_repr_digest(unusable), None, "{unusable:?}");
        }
    }
}
