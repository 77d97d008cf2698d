//! What may appear in a proposal's text, and how to show text that came from a queue file.
//!
//! A proposal is read by a human who decides on it. Control characters (an ESC sequence can
//! redraw the operator's terminal, a CR can overwrite a line) and Unicode bidi overrides (which
//! reorder what is shown, so a proposal can show one thing and mean another) have no place in it:
//! they are refused in every field, with newline and tab allowed only in multi-line text. The
//! operator's views escape the same characters, and every other unprintable one, in case a file
//! on disk was written by something other than the sidecar.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is refused in proposal text: C0 and C1 controls and DEL (newline and tab only
/// where `multiline`), bidi embeddings, overrides, isolates and marks, and the Unicode line and
/// paragraph separators (which break a line where the operator sees none).
pub fn is_refused(c: char, multiline: bool) -> bool {
    if multiline && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Unicode's bidirectional formatting characters: embeddings and overrides (U+202A–U+202E),
/// isolates (U+2066–U+2069) and the implicit marks (U+200E, U+200F, U+061C).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Whether `c` would not show as itself on the operator's screen: everything [`is_refused`]
/// refuses (newline and tab excepted) plus invisible format characters (zero-width space and
/// joiners, word joiner, byte-order mark, soft hyphen, tag characters) and unassigned-looking
/// private and noncharacter code points.
pub fn is_unprintable(c: char) -> bool {
    is_refused(c, true)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{FFFE}'
                | '\u{FFFF}'
        )
}

/// `c` as an escape: `\u001b` for the Basic Multilingual Plane, `\u{e0041}` beyond it.
pub fn escape_char(c: char) -> String {
    let code = u32::from(c);
    if code <= 0xFFFF {
        format!("\\u{code:04x}")
    } else {
        format!("\\u{{{code:x}}}")
    }
}

/// `text` with every unprintable character escaped (see [`escape_char`]); newline and tab are
/// kept. For the operator's views: what is shown is what the file holds.
pub fn escape_unprintable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unprintable) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unprintable(c) {
            out.push_str(&escape_char(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with every unprintable character (which can only stand inside a string)
/// written as a JSON `\uXXXX` escape, so the text still parses to the same value but shows
/// nothing a terminal would act on. serde_json already escapes C0 controls, not DEL, C1 or
/// bidi controls.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json
        .chars()
        .any(|c| is_unprintable(c) && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unprintable(c) && c != '\n' && c != '\t' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` safe to print on the operator's terminal: everything unprintable (controls, Unicode
/// direction overrides, invisible format characters; newline and tab too unless in `keep`)
/// becomes a visible `\u001b`-style escape. Plugins, projects and the agent choose much of what
/// the operator reads; without this an escape sequence could repaint the preflight or a
/// right-to-left override could make a host read as another. One definition of unprintable for
/// every view: the supervise queue's.
pub fn printable<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    let hidden = |c: char| !keep.contains(&c) && (is_unprintable(c) || c == '\n' || c == '\t');
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                escape_char(c)
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// One line of plugin-chosen text: nothing kept, a newline is shown as `\u000a` too.
pub fn one_line(text: &str) -> Cow<'_, str> {
    printable(text, &[])
}

/// The first character of `text` that [`is_refused`] refuses, with its character position.
pub fn first_refused(text: &str, multiline: bool) -> Option<(usize, char)> {
    text.chars()
        .enumerate()
        .find(|&(_, c)| is_refused(c, multiline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_characters() {
        for c in [
            '\u{1b}', '\r', '\u{7f}', '\u{0}', '\u{85}', '\u{9b}', '\u{202e}', '\u{2066}',
            '\u{2069}', '\u{200f}', '\u{2028}',
        ] {
            assert!(is_refused(c, true), "{}", escape_char(c));
            assert!(is_refused(c, false), "{}", escape_char(c));
        }
        for c in ['\n', '\t'] {
            assert!(!is_refused(c, true));
            assert!(is_refused(c, false));
        }
        for c in ['a', ' ', 'é', '→', '漢', '🙂'] {
            assert!(!is_refused(c, false), "{c}");
        }
    }

    #[test]
    fn escapes_show_what_the_text_holds() {
        assert_eq!(escape_char('\u{1b}'), "\\u001b");
        assert_eq!(escape_char('\u{e0041}'), "\\u{e0041}");
        assert!(matches!(
            escape_unprintable("plain\n\ttext é"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_unprintable("a\u{1b}[2Jb\u{202e}c\u{200b}\r\n"),
            "a\\u001b[2Jb\\u202ec\\u200b\\u000d\n"
        );
    }

    #[test]
    fn escaped_json_parses_to_the_same_value() {
        let value = serde_json::json!({"x": "a\u{7f}\u{9b}\u{202e}\u{e0041}\u{1b}b\n"});
        let raw = serde_json::to_string_pretty(&value).unwrap();
        let escaped = escape_json(&raw);
        assert!(
            !escaped.chars().any(|c| is_unprintable(c) && c != '\n'),
            "{escaped}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&escaped).unwrap(),
            value
        );
    }
}
