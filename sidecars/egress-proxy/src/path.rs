//! Request paths in a normal form, so path allowlists cannot be talked around by encoding.
//!
//! A path is split on `/`, each segment percent-decoded, `.` and `..` segments (also when
//! encoded, such as `%2e%2e`) resolved and empty segments (`//`) dropped. Anything whose meaning
//! would depend on how a server decodes it is refused: an encoded `/` or `\`, a backslash, NUL or
//! another control character, a double encoding of those, a `..;` segment, or a climb above the
//! root. The proxy forwards the normal form, so the upstream sees exactly what was checked.

use std::fmt;

use bottle_secret_scan::decode::hex_value;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// It does not start with `/`.
    #[error("not an absolute path")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    BadEscape,
    /// An encoded `/` or `\`, or a backslash.
    #[error("encoded or backslash path separator")]
    Separator,
    /// NUL or another control character.
    #[error("control character in path")]
    Control,
    /// An encoded escape such as `%252e`.
    #[error("double percent-encoding")]
    DoubleEncoding,
    /// A dot segment with parameters (`..;x`).
    #[error("ambiguous dot segment")]
    DotParameter,
    /// More `..` than segments.
    #[error("path climbs above the root")]
    AboveRoot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    raw: String,
    decoded: Vec<u8>,
}

/// A path in normal form (the query is not part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalPath {
    segments: Vec<Segment>,
    trailing_slash: bool,
}

impl NormalPath {
    /// Normalises `path` (without its query), refusing ambiguous forms.
    pub fn parse(path: &str) -> Result<NormalPath, PathError> {
        let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        if path.contains('\\') {
            return Err(PathError::Separator);
        }
        let mut segments: Vec<Segment> = Vec::new();
        let mut trailing_slash = path.ends_with('/');
        for raw in rest.split('/') {
            let decoded = percent_decode(raw)?;
            if decoded.iter().any(|b| *b == b'/' || *b == b'\\') {
                return Err(PathError::Separator);
            }
            if decoded.iter().any(|b| *b < 0x20 || *b == 0x7f) {
                return Err(PathError::Control);
            }
            if has_encoded_escape(&decoded) {
                return Err(PathError::DoubleEncoding);
            }
            let bare = decoded.split(|b| *b == b';').next().unwrap_or_default();
            match bare {
                b"" if decoded.is_empty() => continue,
                b"." | b".." if bare.len() != decoded.len() => return Err(PathError::DotParameter),
                b"." => trailing_slash = true,
                b".." => {
                    segments.pop().ok_or(PathError::AboveRoot)?;
                    trailing_slash = true;
                }
                _ => {
                    trailing_slash = path.ends_with('/');
                    segments.push(Segment {
                        raw: raw.to_string(),
                        decoded,
                    });
                }
            }
        }
        if segments.is_empty() {
            trailing_slash = false;
        }
        Ok(NormalPath {
            segments,
            trailing_slash,
        })
    }

    /// Whether this path is `prefix` or lies below it, comparing whole decoded segments: `/a/b`
    /// covers `/a/b`, `/a/b/` and `/a/b/c` but not `/a/bc`; `/a/` covers `/a/` and `/a/x` but not
    /// `/a`; `/` covers everything.
    pub fn starts_with(&self, prefix: &NormalPath) -> bool {
        let n = prefix.segments.len();
        if self.segments.len() < n {
            return false;
        }
        let same = self.segments[..n]
            .iter()
            .zip(&prefix.segments)
            .all(|(a, b)| a.decoded == b.decoded);
        same && (!prefix.trailing_slash || self.segments.len() > n || self.trailing_slash)
    }

    /// The form sent upstream: the original spelling of each kept segment.
    pub fn forward_form(&self) -> String {
        let mut out = String::with_capacity(64);
        for s in &self.segments {
            out.push('/');
            out.push_str(&s.raw);
        }
        if out.is_empty() || self.trailing_slash {
            out.push('/');
        }
        out
    }
}

impl fmt::Display for NormalPath {
    /// The decoded path (lossy for non-UTF-8 bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            write!(f, "/{}", String::from_utf8_lossy(&s.decoded))?;
        }
        if self.segments.is_empty() || self.trailing_slash {
            f.write_str("/")?;
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes; a malformed escape is an error.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, PathError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
            let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(PathError::BadEscape),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes leniently (malformed ones are kept as they are) and `+` as a space;
/// for searching. The DLP's own percent decoder, so the URL and the body decode alike.
pub fn percent_decode_lossy(bytes: &[u8]) -> Vec<u8> {
    use bottle_secret_scan::decode::{PercentDecoder, StreamDecoder};
    let mut decoder = PercentDecoder::default();
    let mut out = Vec::with_capacity(bytes.len());
    // Neither step can fail: percent-decoding passes what is not an escape through.
    let _ = decoder.feed(bytes, &mut out);
    let _ = decoder.finish(&mut out);
    out
}

/// Whether decoded bytes still hold an escape of a dot, a separator, NUL or a percent sign.
fn has_encoded_escape(decoded: &[u8]) -> bool {
    decoded.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                [w[1].to_ascii_lowercase(), w[2].to_ascii_lowercase()],
                [b'2', b'e'] | [b'2', b'f'] | [b'5', b'c'] | [b'0', b'0'] | [b'2', b'5']
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, PathError> {
        NormalPath::parse(p).map(|n| n.forward_form())
    }

    #[test]
    fn normal_forms() {
        assert_eq!(norm("/").unwrap(), "/");
        assert_eq!(norm("/a/b").unwrap(), "/a/b");
        assert_eq!(norm("/a/b/").unwrap(), "/a/b/");
        assert_eq!(norm("//a///b").unwrap(), "/a/b");
        assert_eq!(norm("/a/./b").unwrap(), "/a/b");
        assert_eq!(norm("/a/x/../b").unwrap(), "/a/b");
        assert_eq!(norm("/a/x/%2e%2e/b").unwrap(), "/a/b");
        assert_eq!(norm("/a/x/%2E./b").unwrap(), "/a/b");
        assert_eq!(norm("/a/b/..").unwrap(), "/a/");
        assert_eq!(norm("/a/b/.").unwrap(), "/a/b/");
        assert_eq!(norm("/a%20b/c").unwrap(), "/a%20b/c");
        assert_eq!(
            NormalPath::parse("/a%20b//c/").unwrap().to_string(),
            "/a b/c/"
        );
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        assert_eq!(norm("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(norm("/a/%2e%2e/%2e%2e/etc"), Err(PathError::AboveRoot));
        assert_eq!(norm("/.."), Err(PathError::AboveRoot));
        assert_eq!(norm("/a%2Fb"), Err(PathError::Separator));
        assert_eq!(norm("/a%2fb"), Err(PathError::Separator));
        assert_eq!(norm("/a%5Cb"), Err(PathError::Separator));
        assert_eq!(norm("/a\\b"), Err(PathError::Separator));
        assert_eq!(norm("/a%00b"), Err(PathError::Control));
        assert_eq!(norm("/a%0ab"), Err(PathError::Control));
        assert_eq!(norm("/a/%252e%252e/b"), Err(PathError::DoubleEncoding));
        assert_eq!(norm("/a/%252Fb"), Err(PathError::DoubleEncoding));
        assert_eq!(norm("/a/..;/b"), Err(PathError::DotParameter));
        assert_eq!(norm("/a/%zz"), Err(PathError::BadEscape));
        assert_eq!(norm("/a/%4"), Err(PathError::BadEscape));
    }

    #[test]
    fn prefixes_compare_whole_segments() {
        let p = |s| NormalPath::parse(s).unwrap();
        assert!(p("/repos/o/r").starts_with(&p("/repos/o/r")));
        assert!(p("/repos/o/r/pulls").starts_with(&p("/repos/o/r")));
        assert!(!p("/repos/o/rx").starts_with(&p("/repos/o/r")));
        assert!(p("/repos/x").starts_with(&p("/repos/")));
        assert!(!p("/repos").starts_with(&p("/repos/")));
        assert!(p("/anything").starts_with(&p("/")));
        assert!(p("/repos/%6f/r").starts_with(&p("/repos/o/r")));
        assert!(!p("/repos/o/r/../../other").starts_with(&p("/repos/o/r")));
        assert!(!p("/repos/o/r/%2e%2e/x").starts_with(&p("/repos/o/r")));
        assert!(!p("//repos//o/../x/r").starts_with(&p("/repos/o/r")));
    }

    #[test]
    fn lossy_decoding() {
        assert_eq!(
            percent_decode_lossy(b"git%2Dreceive-pack%zz+x"),
            b"git-receive-pack%zz x"
        );
    }
}
