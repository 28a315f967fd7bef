//! Validators: how we decide that the bytes a server sends now belong to the
//! same file as the bytes we stored earlier.
//!
//! Splicing two versions of a file is the failure users never forgive, so the
//! rules are strict: a *strong* ETag that differs, a Last-Modified that
//! differs, or a complete length that differs all mean "changed". A weak ETag
//! (`W/"..."`) only promises equivalent content, not identical bytes, so it
//! never proves sameness on its own.

use std::fmt;

/// An entity tag (RFC 9110 §8.8.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntityTag {
    /// `"xyzzy"`: the bytes are identical when the tags are.
    Strong(String),
    /// `W/"xyzzy"`, or a tag without quotes we cannot vouch for.
    Weak(String),
}

impl EntityTag {
    /// Parses an `ETag` header value. A value that is not a quoted tag is kept
    /// as a weak tag: a changed value still means "changed", but it proves
    /// nothing.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if let Some(rest) = value.strip_prefix("W/") {
            return Some(EntityTag::Weak(rest.to_string()));
        }
        let opaque = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
        Some(match opaque {
            Some(inner) if !inner.contains('"') => EntityTag::Strong(value.to_string()),
            _ => EntityTag::Weak(value.to_string()),
        })
    }

    /// The header value to send back (`If-Range`) or to store.
    pub fn as_header(&self) -> String {
        match self {
            EntityTag::Strong(v) => v.clone(),
            EntityTag::Weak(v) => format!("W/{v}"),
        }
    }

    pub fn is_strong(&self) -> bool {
        matches!(self, EntityTag::Strong(_))
    }
}

/// What identifies one version of the file on the server.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Validators {
    pub etag: Option<EntityTag>,
    pub last_modified: Option<String>,
    /// The complete length, when known.
    pub total: Option<u64>,
}

/// Why we believe the file on the server is no longer the one we stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    ETag {
        was: String,
        now: String,
    },
    LastModified {
        was: String,
        now: String,
    },
    Length {
        was: u64,
        now: u64,
    },
    /// Stored bytes re-fetched for verification came back different.
    Content {
        offset: u64,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::ETag { was, now } => write!(f, "its ETag changed from {was} to {now}"),
            Change::LastModified { was, now } => {
                write!(f, "its Last-Modified changed from {was} to {now}")
            }
            Change::Length { was, now } => {
                write!(f, "its length changed from {was} to {now} bytes")
            }
            Change::Content { offset } => write!(
                f,
                "its bytes at offset {offset} differ from the ones stored, with no validator to tell"
            ),
        }
    }
}

/// The verdict of [`Validators::compare`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sameness {
    /// A strong ETag matches: the bytes are the same.
    Same,
    /// Nothing contradicts, but no strong ETag proves it either (weak ETag,
    /// Last-Modified only, or validators hidden or absent).
    Unproven,
    Changed(Change),
}

impl Validators {
    /// Compares what we stored (`self`) with what a response says (`now`).
    /// A validator missing on either side is not evidence either way.
    pub fn compare(&self, now: &Validators) -> Sameness {
        if let (Some(was), Some(now)) = (self.total, now.total) {
            if was != now {
                return Sameness::Changed(Change::Length { was, now });
            }
        }
        if let (Some(was), Some(now)) = (&self.etag, &now.etag) {
            if was != now {
                return Sameness::Changed(Change::ETag {
                    was: was.as_header(),
                    now: now.as_header(),
                });
            }
        }
        if let (Some(was), Some(now)) = (&self.last_modified, &now.last_modified) {
            if was != now {
                return Sameness::Changed(Change::LastModified {
                    was: was.clone(),
                    now: now.clone(),
                });
            }
        }
        match (&self.etag, &now.etag) {
            (Some(a), Some(b)) if a.is_strong() && a == b => Sameness::Same,
            _ => Sameness::Unproven,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strong(v: &str) -> Option<EntityTag> {
        Some(EntityTag::Strong(v.into()))
    }

    #[test]
    fn parses_entity_tags() {
        assert_eq!(EntityTag::parse("\"abc\""), strong("\"abc\""));
        assert_eq!(EntityTag::parse("\"\""), strong("\"\""));
        assert_eq!(
            EntityTag::parse("W/\"abc\""),
            Some(EntityTag::Weak("\"abc\"".into()))
        );
        // Not a quoted tag: kept, but never trusted as strong.
        assert_eq!(EntityTag::parse("abc"), Some(EntityTag::Weak("abc".into())));
        assert_eq!(
            EntityTag::parse("\"a\"b\""),
            Some(EntityTag::Weak("\"a\"b\"".into()))
        );
        assert_eq!(EntityTag::parse("\""), Some(EntityTag::Weak("\"".into())));
        assert_eq!(EntityTag::parse("  "), None);
        assert_eq!(
            EntityTag::parse("W/\"x\"").map(|t| t.as_header()),
            Some("W/\"x\"".into())
        );
    }

    #[test]
    fn compares_validators() {
        let base = Validators {
            etag: strong("\"v1\""),
            last_modified: Some("Tue, 15 Nov 1994 08:12:31 GMT".into()),
            total: Some(100),
        };
        assert_eq!(base.compare(&base), Sameness::Same);

        let other_etag = Validators {
            etag: strong("\"v2\""),
            ..base.clone()
        };
        assert!(matches!(
            base.compare(&other_etag),
            Sameness::Changed(Change::ETag { .. })
        ));

        let other_len = Validators {
            total: Some(101),
            ..base.clone()
        };
        assert_eq!(
            base.compare(&other_len),
            Sameness::Changed(Change::Length { was: 100, now: 101 })
        );

        let other_date = Validators {
            last_modified: Some("Wed, 16 Nov 1994 08:12:31 GMT".into()),
            ..base.clone()
        };
        assert!(matches!(
            base.compare(&other_date),
            Sameness::Changed(Change::LastModified { .. })
        ));

        // ETag missing now (e.g. hidden by CORS): nothing proves sameness.
        let no_etag = Validators {
            etag: None,
            ..base.clone()
        };
        assert_eq!(base.compare(&no_etag), Sameness::Unproven);

        // Weak tags never prove identical bytes, but a different one is a change.
        let weak = Validators {
            etag: Some(EntityTag::Weak("\"v1\"".into())),
            ..base.clone()
        };
        assert_eq!(weak.compare(&weak), Sameness::Unproven);
        let weak2 = Validators {
            etag: Some(EntityTag::Weak("\"v2\"".into())),
            ..base.clone()
        };
        assert!(matches!(weak.compare(&weak2), Sameness::Changed(_)));
        // Strong then weak with the same opaque tag: not the same representation.
        assert!(matches!(base.compare(&weak), Sameness::Changed(_)));
    }
}
