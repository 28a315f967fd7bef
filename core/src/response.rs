//! What a response says, judged against the record without changing it.
//!
//! Classification is pure so that nothing a response claims can enter the
//! record before the driver has decided to trust it: [`learn`] is the one
//! place a response's validators are written, and the driver calls it only
//! once the stored bytes are known to belong to the server's file.

use super::error::{Error, ServerError};
use super::filename;
use super::range::{ByteRange, ContentRange, ContentRangeError};
use super::record::Record;
use super::transport::Header;
use super::transport::ResponseHead;
use super::validator::{Change, EntityTag, Sameness, Validators};

/// How a response fits a request for `asked`.
#[derive(Debug, PartialEq)]
pub enum Checked {
    /// A 206 for `range`. `same`: a strong ETag proves this is the file the
    /// stored bytes came from, or nothing is known yet.
    Range {
        range: ByteRange,
        total: Option<u64>,
        same: bool,
    },
    /// A 416 saying the file ends at `total`, where our range starts.
    EndOfFile {
        total: u64,
        same: bool,
    },
    /// A 200: the whole file, because ranges are ignored or (`Some`) because
    /// the file changed (as after a failed `If-Range`).
    Whole(Option<Change>),
    Changed(Change),
    Rejected(Error),
}

pub fn check(head: &ResponseHead, asked: ByteRange, record: &Record, url: &str) -> Checked {
    match head.status {
        206 => partial(head, record),
        200 => whole(head, record),
        416 => unsatisfiable(head, asked, record),
        status => Checked::Rejected(
            ServerError::Status {
                status,
                url: url.to_string(),
            }
            .into(),
        ),
    }
}

fn partial(head: &ResponseHead, record: &Record) -> Checked {
    if let Some(encoding) = head.content_encoding.value() {
        if !is_identity(encoding) {
            return Checked::Rejected(
                ServerError::ContentEncoding {
                    encoding: encoding.to_string(),
                }
                .into(),
            );
        }
    }
    // Content-Type is readable even cross-origin: a multipart body shows there.
    if head.content_range.value().is_none() && is_multipart(head) {
        return Checked::Rejected(ServerError::Multipart.into());
    }
    let value = match &head.content_range {
        Header::Present(value) => value,
        Header::Hidden => return Checked::Rejected(hidden_headers(head)),
        Header::Absent => return Checked::Rejected(ServerError::MissingContentRange.into()),
    };
    let (range, total) = match ContentRange::parse(value) {
        Ok(ContentRange::Bytes { range, total }) => (range, total),
        Ok(ContentRange::Unsatisfied { .. }) => {
            return Checked::Rejected(bad_content_range(value, ContentRangeError::Syntax))
        }
        Err(why) => return Checked::Rejected(bad_content_range(value, why)),
    };
    // Counted in the bytes on the wire: another length means another body.
    let length = head.content_length.value().map(str::trim);
    if let Some(length) = length.filter(|l| l.parse::<u64>().ok() != Some(range.len())) {
        return Checked::Rejected(
            ServerError::BodyLength {
                range,
                length: format!("Content-Length {length}"),
            }
            .into(),
        );
    }
    match compare(head, total, record) {
        Sameness::Changed(change) => Checked::Changed(change),
        sameness => Checked::Range {
            range,
            total,
            same: sameness == Sameness::Same,
        },
    }
}

fn whole(head: &ResponseHead, record: &Record) -> Checked {
    if record.pieces.is_empty() {
        return Checked::Whole(None);
    }
    match record
        .validators
        .compare(&validators_of(head, whole_length(head)))
    {
        Sameness::Changed(change) => Checked::Whole(Some(change)),
        _ => Checked::Whole(None),
    }
}

/// A 416 tells where the file ends when it says `bytes */length` and our
/// range starts at or past that length (a file whose length we did not know,
/// or an empty one).
fn unsatisfiable(head: &ResponseHead, asked: ByteRange, record: &Record) -> Checked {
    if head.content_range.is_hidden() {
        return Checked::Rejected(hidden_headers(head));
    }
    let total = head
        .content_range
        .value()
        .and_then(|v| ContentRange::parse(v).ok())
        .and_then(|cr| cr.total());
    let Some(total) = total else {
        return Checked::Rejected(ServerError::Unsatisfiable { asked, total: None }.into());
    };
    match compare(head, Some(total), record) {
        Sameness::Changed(change) => Checked::Changed(change),
        _ if asked.start < total => Checked::Rejected(
            ServerError::Unsatisfiable {
                asked,
                total: Some(total),
            }
            .into(),
        ),
        sameness => Checked::EndOfFile {
            total,
            same: sameness == Sameness::Same,
        },
    }
}

/// How a range response's validators relate to the record's.
fn compare(head: &ResponseHead, total: Option<u64>, record: &Record) -> Sameness {
    if knows_nothing(record) {
        return Sameness::Same;
    }
    let stored_end = record.pieces.end();
    match (
        record.validators.compare(&validators_of(head, total)),
        total,
    ) {
        (Sameness::Changed(change), _) => Sameness::Changed(change),
        (_, Some(now)) if now < stored_end => Sameness::Changed(Change::Length {
            was: stored_end,
            now,
        }),
        (sameness, _) => sameness,
    }
}

/// Nothing stored and nothing learned: any response is the file.
fn knows_nothing(record: &Record) -> bool {
    record.pieces.is_empty() && record.validators == Validators::default()
}

/// Takes what the record lacks from a range (or 416) response of the same
/// file. Call it only once the stored bytes are proven to be that file's.
pub fn learn(record: &mut Record, head: &ResponseHead, total: Option<u64>) {
    let now = validators_of(head, total);
    if knows_nothing(record) {
        record.validators = now;
    } else {
        let v = &mut record.validators;
        v.total = v.total.or(now.total);
        v.etag = v.etag.take().or(now.etag);
        v.last_modified = v.last_modified.take().or(now.last_modified);
    }
    record.resumable = true;
    take_metadata(record, head);
}

/// Takes a whole-file (200) response as the file, into a record that holds
/// nothing; returns its length if it says it.
pub fn learn_whole(record: &mut Record, head: &ResponseHead) -> Option<u64> {
    let total = whole_length(head);
    record.validators = validators_of(head, total);
    record.resumable = false;
    take_metadata(record, head);
    total
}

fn validators_of(head: &ResponseHead, total: Option<u64>) -> Validators {
    Validators {
        etag: head.etag.value().and_then(EntityTag::parse),
        last_modified: head.last_modified.value().map(str::to_string),
        total,
    }
}

/// The length of a whole-file (200) body, if it says it. Content-Length
/// counts the encoded bytes when the body is compressed, and an encoding
/// hidden by CORS may be one: then the length is unknown.
fn whole_length(head: &ResponseHead) -> Option<u64> {
    let encoded = says_encoded(head) || head.content_encoding.is_hidden();
    head.content_length
        .value()
        .filter(|_| !encoded)
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Whether the head names a Content-Encoding other than `identity` (a
/// hidden one names none).
pub fn says_encoded(head: &ResponseHead) -> bool {
    head.content_encoding
        .value()
        .is_some_and(|e| !is_identity(e))
}

fn is_identity(encoding: &str) -> bool {
    encoding.trim().eq_ignore_ascii_case("identity")
}

fn is_multipart(head: &ResponseHead) -> bool {
    head.content_type.value().is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/byteranges")
    })
}

fn take_metadata(record: &mut Record, head: &ResponseHead) {
    if let Some(name) = head
        .content_disposition
        .value()
        .and_then(filename::from_content_disposition)
    {
        record.server_filename = Some(name);
    }
    if let Some(content_type) = head.content_type.value() {
        record.content_type = Some(content_type.to_string());
    }
}

/// The headers a 206 needs that CORS hid from us.
fn hidden_headers(head: &ResponseHead) -> Error {
    let mut headers = vec!["Content-Range"];
    if head.etag.is_hidden() {
        headers.push("ETag");
    }
    ServerError::HeadersHidden { headers }.into()
}

fn bad_content_range(value: &str, why: ContentRangeError) -> Error {
    ServerError::BadContentRange {
        value: value.to_string(),
        why,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn head(status: u16, content_range: &str, etag: Option<&str>) -> ResponseHead {
        ResponseHead {
            status,
            content_range: Header::Present(content_range.into()),
            etag: etag.into(),
            ..Default::default()
        }
    }

    /// A record holding bytes 0..100 of a 1000-byte file.
    fn stored(etag: Option<&str>) -> Record {
        let mut record = Record::new("id", "u", 0);
        record.validators = Validators {
            etag: etag.and_then(EntityTag::parse),
            last_modified: None,
            total: Some(1000),
        };
        record.pieces.insert(r(0, 100));
        record
    }

    #[test]
    fn a_fresh_record_takes_any_206_as_the_file() {
        let record = Record::new("id", "u", 0);
        let checked = check(&head(206, "bytes 0-99/1000", None), r(0, 100), &record, "u");
        assert_eq!(
            checked,
            Checked::Range {
                range: r(0, 100),
                total: Some(1000),
                same: true
            }
        );
    }

    #[test]
    fn only_a_strong_etag_match_proves_the_stored_bytes() {
        let strong = stored(Some("\"a\""));
        let same = check(
            &head(206, "bytes 100-199/1000", Some("\"a\"")),
            r(100, 200),
            &strong,
            "u",
        );
        assert!(matches!(same, Checked::Range { same: true, .. }));
        let no_etag = stored(None);
        let new_etag = check(
            &head(206, "bytes 100-199/1000", Some("\"b\"")),
            r(100, 200),
            &no_etag,
            "u",
        );
        assert!(
            matches!(new_etag, Checked::Range { same: false, .. }),
            "a tag the record never had proves nothing"
        );
        let changed = check(
            &head(206, "bytes 100-199/1000", Some("\"b\"")),
            r(100, 200),
            &strong,
            "u",
        );
        assert!(matches!(changed, Checked::Changed(Change::ETag { .. })));
    }

    #[test]
    fn checking_never_changes_the_record_and_learning_fills_only_gaps() {
        let mut record = stored(None);
        let before = record.clone();
        let h = head(206, "bytes 100-199/1000", Some("\"b\""));
        let _ = check(&h, r(100, 200), &record, "u");
        assert_eq!(record, before);
        learn(&mut record, &h, Some(1000));
        assert_eq!(record.validators.etag, EntityTag::parse("\"b\""));
        assert_eq!(record.pieces, before.pieces);
    }

    #[test]
    fn a_416_ends_the_file_only_at_or_before_the_asked_range() {
        let mut record = stored(None);
        record.validators.total = None;
        let h = |total| head(416, &format!("bytes */{total}"), None);
        assert!(matches!(
            check(&h(100), r(100, 200), &record, "u"),
            Checked::EndOfFile { total: 100, .. }
        ));
        assert!(matches!(
            check(&h(150), r(100, 200), &record, "u"),
            Checked::Rejected(_)
        ));
        assert!(matches!(
            check(&h(50), r(100, 200), &record, "u"),
            Checked::Changed(Change::Length { was: 100, now: 50 })
        ));
    }

    #[test]
    fn a_hidden_encoding_makes_a_whole_body_of_unknown_length() {
        let mut h = ResponseHead {
            status: 200,
            content_length: Header::Present("100".into()),
            ..Default::default()
        };
        assert_eq!(whole_length(&h), Some(100));
        h.content_encoding = Header::Hidden;
        assert_eq!(whole_length(&h), None);
        h.content_encoding = Header::Present("gzip".into());
        assert_eq!(whole_length(&h), None);
        h.content_encoding = Header::Present("identity".into());
        assert_eq!(whole_length(&h), Some(100));
    }
}
