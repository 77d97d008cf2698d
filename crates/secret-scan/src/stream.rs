//! Scanning a stream chunk by chunk, in every decoded view, without holding the whole stream.
//!
//! The stream first goes through its content decoders (decompression), giving the payload. The
//! payload is searched as it is and in these decoded views: percent-decoded, JSON-unescaped,
//! line-unwrapped (MIME base64), and JSON-unescaped then unwrapped. Each view keeps the last
//! `window - 1` bytes it produced and scans them again with the next chunk, so a match up to
//! `window` bytes long is found wherever the chunk boundaries fall. `window` is at least the
//! longest encoded form of any exact secret.

use std::borrow::Cow;
use std::sync::Arc;

use crate::decode::{
    DecodeError, JsonEscapeDecoder, PercentDecoder, StreamDecoder, UnwrapDecoder, decode, run_chain,
};
use crate::{Finding, Scanner};

/// The least overlap kept for pattern rules, whose matches have no fixed length.
pub const PATTERN_WINDOW: usize = 512;

/// The views, in the order they are scanned: the payload as it is, percent-decoded,
/// JSON-unescaped, line-unwrapped, and JSON-unescaped then unwrapped.
const VIEWS: usize = 5;

/// One decoded view's scanning state: the tail of it seen last.
#[derive(Default)]
struct View {
    tail: Vec<u8>,
    /// Whether pattern rules apply: not in unwrapped views, where joined words would match them.
    patterns: bool,
}

/// Scans a stream in chunks. Findings' offsets are relative to the scanned window, not the
/// stream; what matters is which rule found something.
pub struct StreamScanner {
    scanner: Arc<Scanner>,
    content: Vec<Box<dyn StreamDecoder>>,
    percent: PercentDecoder,
    /// One JSON decoder feeds both JSON views: they see the same payload.
    json: JsonEscapeDecoder,
    views: [View; VIEWS],
    window: usize,
}

impl std::fmt::Debug for StreamScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamScanner")
            .field("window", &self.window)
            .field("views", &self.views.len())
            .finish()
    }
}

/// The findings of one view over one window (offsets relative to that window).
pub type ViewFindings = Vec<Finding>;

impl StreamScanner {
    /// A stream scanner over `scanner`, first decoding the stream with `content` (e.g.
    /// [`crate::decode::content_decoders`]).
    pub fn new(scanner: Arc<Scanner>, content: Vec<Box<dyn StreamDecoder>>) -> StreamScanner {
        let window = scanner.longest_exact_form().max(PATTERN_WINDOW);
        let view = |patterns: bool| View {
            tail: Vec::new(),
            patterns,
        };
        StreamScanner {
            scanner,
            content,
            percent: PercentDecoder::default(),
            json: JsonEscapeDecoder::default(),
            views: [view(true), view(true), view(true), view(false), view(false)],
            window,
        }
    }

    /// The overlap kept between chunks, in decoded bytes.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Scans the next chunk; returns the findings of each view that found something.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<ViewFindings>, DecodeError> {
        self.step(chunk, false)
    }

    /// The stream ended: flushes the decoders and scans what they held back.
    pub fn finish(&mut self) -> Result<Vec<ViewFindings>, DecodeError> {
        self.step(&[], true)
    }

    fn step(&mut self, chunk: &[u8], at_end: bool) -> Result<Vec<ViewFindings>, DecodeError> {
        let payload = run_chain(&mut self.content, chunk, at_end)?;
        // A decoder with nothing to change hands its input back: no copy, and the views below
        // see the same bytes at the same address.
        let percent = decode(&mut self.percent, Cow::Borrowed(&payload), at_end)?;
        let json = decode(&mut self.json, Cow::Borrowed(&payload), at_end)?;
        let unwrap = decode(&mut UnwrapDecoder, Cow::Borrowed(&payload), at_end)?;
        // Unwrapping keeps no state, so unwrapping what JSON left unchanged is `unwrap` again.
        let json_unwrap = if same_bytes(&json, &payload) {
            None
        } else {
            Some(decode(&mut UnwrapDecoder, Cow::Borrowed(&json), at_end)?)
        };
        let decoded: [&[u8]; VIEWS] = [
            &payload,
            &percent,
            &json,
            &unwrap,
            json_unwrap.as_deref().unwrap_or(&unwrap),
        ];
        // A view that decoded to what an earlier one scans, after the same tail, would find the
        // same things (most text has nothing to decode): only its tail moves. Decided before
        // any tail moves.
        let repeats: [bool; VIEWS] = std::array::from_fn(|i| {
            (0..i).any(|j| {
                same_bytes(decoded[i], decoded[j])
                    && self.views[i].tail == self.views[j].tail
                    && (self.views[j].patterns || !self.views[i].patterns)
            })
        });
        let mut found = Vec::new();
        for (i, view) in self.views.iter_mut().enumerate() {
            if decoded[i].is_empty() {
                continue;
            }
            if repeats[i] {
                keep_tail(view, decoded[i], self.window);
                continue;
            }
            let findings = scan_window(&self.scanner, view, decoded[i], self.window);
            if !findings.is_empty() {
                found.push(findings);
            }
        }
        Ok(found)
    }
}

/// Equal bytes; at once when they are the same slice.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

/// Scans the view's tail followed by `decoded` and keeps the new tail, without joining them
/// whole: the seam (the tail and the first `2 × window` bytes of `decoded`) is scanned for the
/// matches that start in the tail or the first `window` bytes, and `decoded` alone for the ones
/// that start after those. A match is at most `window` long (a pattern's may run on, and is then
/// found shorter, still a match), so each is seen in full in one of the two, with the byte
/// before it (for `\b`). Findings wholly inside the old tail were reported with the previous
/// chunk and are left out.
fn scan_window(scanner: &Scanner, view: &mut View, decoded: &[u8], window: usize) -> Vec<Finding> {
    let scan = |haystack: &[u8]| {
        if view.patterns {
            scanner.scan(haystack)
        } else {
            scanner.scan_exact(haystack)
        }
    };
    let old_tail = view.tail.len();
    let seam_end = decoded.len().min(2 * window);
    let mut seam = std::mem::take(&mut view.tail);
    seam.extend_from_slice(&decoded[..seam_end]);
    let whole = seam_end == decoded.len();
    let mut findings: Vec<Finding> = scan(&seam)
        .into_iter()
        .filter(|f| f.offset + f.len > old_tail && (whole || f.offset < old_tail + window))
        .collect();
    if !whole {
        findings.extend(scan(decoded).into_iter().filter_map(|mut f| {
            (f.offset >= window).then(|| {
                f.offset += old_tail;
                f
            })
        }));
    }
    seam.truncate(old_tail);
    view.tail = seam;
    keep_tail(view, decoded, window);
    findings
}

/// Moves the view's tail past `decoded` without scanning.
fn keep_tail(view: &mut View, decoded: &[u8], window: usize) {
    let keep = window.saturating_sub(1);
    if decoded.len() >= keep {
        view.tail.clear();
        view.tail
            .extend_from_slice(&decoded[decoded.len() - keep..]);
    } else {
        view.tail.extend_from_slice(decoded);
        trim_tail(&mut view.tail, window);
    }
}

fn trim_tail(tail: &mut Vec<u8>, window: usize) {
    let keep = tail.len().min(window.saturating_sub(1));
    tail.drain(..tail.len() - keep);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExactSecret;

    const SECRET: &str = "s3cr3t-Value/42+x";

    fn scanner() -> Arc<Scanner> {
        Arc::new(Scanner::new(vec![], vec![ExactSecret::new("S", SECRET)]).unwrap())
    }

    fn found(s: &mut StreamScanner, chunks: &[&[u8]]) -> bool {
        let mut any = false;
        for c in chunks {
            any |= !s.feed(c).unwrap().is_empty();
        }
        any | !s.finish().unwrap().is_empty()
    }

    #[test]
    fn every_view_finds_its_form() {
        let every_byte: String = SECRET.bytes().map(|b| format!("%{b:02x}")).collect();
        let json: String = SECRET
            .chars()
            .map(|c| format!("\\u{:04X}", c as u32))
            .collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{SECRET}{SECRET}"));
        let mime: String = b64
            .as_bytes()
            .chunks(7)
            .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
            .collect();
        let json_mime = mime.replace("\r\n", "\\r\\n");
        for form in [every_byte, json, mime, json_mime] {
            let mut s = StreamScanner::new(scanner(), vec![]);
            assert!(found(&mut s, &[form.as_bytes()]), "{form}");
        }
        let mut s = StreamScanner::new(scanner(), vec![]);
        assert!(!found(&mut s, &[b"nothing %41 \\u0041 here"]));
    }

    #[test]
    fn words_joined_by_unwrapping_do_not_match_patterns() {
        let s = Arc::new(Scanner::with_builtin_rules(vec![]).unwrap());
        let mut stream = StreamScanner::new(s.clone(), vec![]);
        // Positive: the key in one piece is found.
        assert!(found(&mut stream, &[b"key AKIAIOSFODNN7EXAMPLE"]));
        let mut stream = StreamScanner::new(s, vec![]);
        assert!(!found(
            &mut stream,
            &[b"AKIAIOSF ODNN7EXAMPLE is two words"]
        ));
    }

    #[test]
    fn a_secret_split_across_chunks_is_found_once() {
        let text = format!("aaaa{SECRET}bbbb");
        let (a, b) = text.as_bytes().split_at(9);
        let mut s = StreamScanner::new(scanner(), vec![]);
        assert!(s.feed(a).unwrap().is_empty());
        let second = s.feed(b).unwrap();
        assert!(!second.is_empty());
        // Seen again with the next chunk (it is in the tail) but not reported twice.
        assert!(s.feed(b"cccc").unwrap().is_empty());
    }
}
