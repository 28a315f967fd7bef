//! The name a download is saved under.
//!
//! In order of preference: the caller's name, the server's
//! `Content-Disposition` (`filename*` before `filename`), the last segment of
//! the URL path (percent-decoded), and finally [`DEFAULT_NAME`]. Whatever the
//! source, the name is made safe on every desktop file system: no path
//! separators or characters Windows forbids, no control characters, no
//! trailing dots or spaces, no reserved device names, at most 255 bytes.

pub const DEFAULT_NAME: &str = "download";
const MAX_BYTES: usize = 255;

/// Picks and sanitizes the file name; `server` is the name from
/// [`from_content_disposition`].
pub fn choose(caller: Option<&str>, server: Option<&str>, url: &str) -> String {
    let candidates = [
        caller.map(str::to_string),
        server.map(str::to_string),
        from_url(url),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|name| sanitize(&name))
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| DEFAULT_NAME.to_string())
}

/// Makes `name` safe to save; may return an empty string.
pub fn sanitize(name: &str) -> String {
    let out: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c) && !r#"\/:*?"<>|"#.contains(*c))
        .collect();
    // Trimmed again after the cut, which can end the name in a space or a
    // dot, or leave a reserved name ("CON" and spaces, cut before the rest).
    let mut out = trim(&truncate_keeping_extension(&trim(&out), MAX_BYTES));
    if is_reserved(&out) {
        out = trim(&truncate_keeping_extension(&format!("_{out}"), MAX_BYTES));
    }
    out
}

/// Format characters that change how a name reads without showing
/// themselves: bidi overrides (U+202E makes `evil\u{202E}fdp.exe` read as
/// `evilexe.pdf`), zero-width characters, the byte order mark.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Without the trailing dots and spaces Windows drops, or leading blanks.
fn trim(name: &str) -> String {
    name.trim_end_matches(['.', ' ']).trim_start().to_string()
}

/// Windows device names, with or without an extension (`CON`, `nul.txt`,
/// `COM1`), the ports with a superscript digit (`COM¹`) and the console's
/// (`CONIN$`) included, as Windows and Python's `ntpath.isreserved` have them.
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    let port = upper
        .strip_prefix("COM")
        .or_else(|| upper.strip_prefix("LPT"));
    matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || port.is_some_and(|n| {
        matches!(
            n,
            "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
        )
    })
}

/// Cuts `name` to at most `max` bytes on a character boundary, keeping a
/// short extension so the file still opens with the right program.
fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16 && e.len() < name.len());
    let ext = ext.unwrap_or("");
    let mut cut = max - ext.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &name[..cut], ext)
}

/// The file name from a `Content-Disposition` value (RFC 6266), preferring
/// the RFC 8187 `filename*` form.
pub fn from_content_disposition(value: &str) -> Option<String> {
    let params = parameters(value);
    let extended = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("filename*"))
        .and_then(|(_, v)| decode_ext_value(v));
    extended.or_else(|| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("filename"))
            .map(|(_, v)| v.clone())
    })
}

/// Splits `type; a=b; c="d;e"` into `[(a, b), (c, d;e)]`, unquoting values.
fn parameters(value: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = match value.split_once(';') {
        Some((_, rest)) => rest,
        None => return params,
    };
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let val;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            v.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            val = v;
            rest = &quoted[end.min(quoted.len())..];
            rest = rest.split_once(';').map_or("", |(_, r)| r);
        } else {
            let (v, r) = rest.split_once(';').unwrap_or((rest, ""));
            val = v.trim().to_string();
            rest = r;
        }
        params.push((key, val));
    }
    params
}

/// RFC 8187 `charset'lang'pct-encoded`; UTF-8 and ISO-8859-1 only.
fn decode_ext_value(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let (charset, _lang, encoded) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = percent_decode(encoded);
    if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).ok()
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Some(bytes.into_iter().map(char::from).collect())
    } else {
        None
    }
}

/// The last non-empty segment of the URL's path, percent-decoded.
pub fn from_url(url: &str) -> Option<String> {
    let no_fragment = url.split('#').next().unwrap_or(url);
    let no_query = no_fragment.split('?').next().unwrap_or(no_fragment);
    let path = match no_query.find("://") {
        Some(i) => {
            let after = &no_query[i + 3..];
            after.find('/').map_or("", |j| &after[j..])
        }
        None => no_query,
    };
    let segment = path.rsplit('/').find(|s| !s.is_empty())?;
    Some(String::from_utf8_lossy(&percent_decode(segment)).into_owned())
}

fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_removed() {
        assert_eq!(sanitize("evil\u{202E}fdp.exe"), "evilfdp.exe");
        assert_eq!(sanitize("a\u{200B}b\u{FEFF}c\u{2066}d.bin"), "abcd.bin");
        assert_eq!(sanitize("\u{200D}\u{200E}"), "");
    }

    #[test]
    fn chooses_in_order_of_preference() {
        let cd = Some("server.bin");
        let url = "https://h.example/dir/url%20name.bin?x=1#frag";
        assert_eq!(choose(Some("mine.bin"), cd, url), "mine.bin");
        assert_eq!(choose(None, cd, url), "server.bin");
        assert_eq!(choose(None, None, url), "url name.bin");
        assert_eq!(choose(None, None, "https://h.example/"), DEFAULT_NAME);
        assert_eq!(choose(None, None, "https://h.example"), DEFAULT_NAME);
        // A name that sanitizes to nothing falls through to the next source.
        assert_eq!(choose(Some("///"), None, url), "url name.bin");
    }

    #[test]
    fn content_disposition_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("attachment; filename=plain.txt", Some("plain.txt")),
            (
                "attachment; filename=\"quoted name.txt\"",
                Some("quoted name.txt"),
            ),
            (
                "attachment; filename=\"semi;colon.txt\"; size=3",
                Some("semi;colon.txt"),
            ),
            (
                "attachment; filename=\"esc\\\"aped.txt\"",
                Some("esc\"aped.txt"),
            ),
            (
                "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt",
                Some("€ rates.txt"),
            ),
            (
                "attachment; filename*=utf-8'en'caf%C3%A9.txt; filename=cafe.txt",
                Some("café.txt"),
            ),
            (
                "attachment; filename*=iso-8859-1''%E9t%E9.txt",
                Some("été.txt"),
            ),
            // An undecodable filename* falls back to filename.
            (
                "attachment; filename*=UTF-8''%FF.txt; filename=ok.txt",
                Some("ok.txt"),
            ),
            ("attachment; FILENAME=upper.txt", Some("upper.txt")),
            ("inline", None),
            ("attachment; size=3", None),
        ];
        for (input, want) in table {
            assert_eq!(
                from_content_disposition(input).as_deref(),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn url_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("https://h/a/b/file.iso", Some("file.iso")),
            ("https://h/a/b/dir/", Some("dir")),
            ("https://h/f%C3%BCr.bin", Some("für.bin")),
            ("https://h/bad%zzname", Some("bad%zzname")),
            ("https://h/end%2", Some("end%2")),
            ("https://h/x.bin?download=y.bin", Some("x.bin")),
            ("https://h/", None),
            ("/relative/path.bin", Some("path.bin")),
        ];
        for (input, want) in table {
            assert_eq!(from_url(input).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn sanitize_table() {
        let long = format!("{}.tar.gz", "a".repeat(300));
        let long_utf8 = format!("{}.bin", "é".repeat(200));
        let table: &[(&str, &str)] = &[
            ("normal.bin", "normal.bin"),
            ("a/b\\c:d*e?f\"g<h>i|j", "abcdefghij"),
            ("../../etc/passwd", "....etcpasswd"),
            ("tab\there\u{0}nul\u{7f}", "tabherenul"),
            ("trailing. . ", "trailing"),
            ("  leading.txt", "leading.txt"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("Lpt9.log", "_Lpt9.log"),
            ("COM0", "COM0"),
            ("console.txt", "console.txt"),
            ("...", ""),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(sanitize(input), *want, "{input:?}");
        }
        let cut = sanitize(&long);
        assert_eq!(cut.len(), 255);
        assert!(cut.ends_with(".gz"));
        let cut = sanitize(&long_utf8);
        assert!(cut.len() <= 255 && cut.ends_with(".bin"), "{cut}");
    }

    /// Found by tests/properties.rs: a cut at 255 bytes could end the name
    /// in a space or a dot, or leave only a device name; and Windows also
    /// reserves the ports with a superscript digit and the console's names.
    #[test]
    fn sanitized_names_stay_safe_when_cut() {
        let spaced = format!("{} {}", "a".repeat(254), "b".repeat(10));
        assert_eq!(sanitize(&spaced), "a".repeat(254));
        let dotted = format!("{}.{}", "a".repeat(254), "b".repeat(20));
        assert_eq!(sanitize(&dotted), "a".repeat(254));
        let device = format!("CON{}x", " ".repeat(300));
        assert_eq!(sanitize(&device), "_CON");
        let device_ext = format!("CON{}x.txt", " ".repeat(300));
        let cut = sanitize(&device_ext);
        assert!(
            cut.starts_with("_CON ") && cut.ends_with(".txt") && cut.len() <= 255,
            "{cut}"
        );
        for name in ["COM¹", "lpt³.txt", "CONIN$", "conout$.log"] {
            assert_eq!(sanitize(name), format!("_{name}"), "{name}");
        }
        assert_eq!(sanitize("COM10"), "COM10");
        assert_eq!(sanitize("CONIN"), "CONIN");
    }
}
