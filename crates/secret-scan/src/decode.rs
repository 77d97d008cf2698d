//! Streaming decoders: the views a secret is searched in besides the bytes as they are.
//!
//! Each decoder takes input in chunks of any size and carries its state across chunk boundaries,
//! so decoding a stream piece by piece gives exactly what decoding it whole gives. None of them
//! panics on any input: bytes that do not form a valid escape pass through literally.

use std::borrow::Cow;
use std::io::Write;

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Decompressing would expand the input past the allowed ratio or size: a zip bomb.
    #[error(
        "the {coding} body expands more than {MAX_RATIO}:1 (or past {} MiB); refused as a decompression bomb",
        MAX_DECODED >> 20
    )]
    Bomb {
        /// The content coding.
        coding: &'static str,
    },
    /// The compressed stream is corrupt or truncated.
    #[error("the body is not valid {coding}: {reason}")]
    Corrupt {
        /// The content coding.
        coding: &'static str,
        /// What the decompressor said.
        reason: String,
    },
    /// A content coding that cannot be decoded, hence not scanned.
    #[error(
        "Content-Encoding `{0}` cannot be scanned; send the body uncompressed or as gzip, deflate or br"
    )]
    Unsupported(String),
}

/// A decoder over a stream of bytes.
pub trait StreamDecoder: Send {
    /// Decodes `input`, appending what is certain to `out`; holds back an incomplete tail.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError>;
    /// The stream ended: flushes what was held back.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError>;
    /// Whether decoding `input` now would give exactly `input` and hold nothing back (so a
    /// `finish` after it would add nothing): most text has nothing to decode, and then the
    /// decoder need not copy it. `false` is always correct.
    fn passes_through(&self, _input: &[u8]) -> bool {
        false
    }
}

/// A decoder that changes only escapes: runs of ordinary bytes are copied whole, and only the
/// bytes from an escape's start until it is resolved go through [`Escapes::byte`].
trait Escapes {
    /// The position of the first byte in `input` that starts an escape or is itself changed.
    fn next_special(input: &[u8]) -> Option<usize>;
    /// Whether no escape is in progress (nothing held back).
    fn idle(&self) -> bool;
    /// Reads one byte.
    fn byte(&mut self, b: u8, out: &mut Vec<u8>);
}

/// [`StreamDecoder::feed`] of an [`Escapes`] decoder.
fn feed_escapes<D: Escapes>(decoder: &mut D, input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    let mut at = 0;
    while at < input.len() {
        if decoder.idle() {
            let run = D::next_special(&input[at..]).unwrap_or(input.len() - at);
            out.extend_from_slice(&input[at..at + run]);
            at += run;
            if at == input.len() {
                break;
            }
        }
        decoder.byte(input[at], out);
        at += 1;
    }
}

/// [`StreamDecoder::passes_through`] of an [`Escapes`] decoder.
fn escapes_pass<D: Escapes>(decoder: &D, input: &[u8]) -> bool {
    decoder.idle() && D::next_special(input).is_none()
}

/// Percent-decoding of every `%XX` (either case) and `+` as a space; other bytes pass through.
#[derive(Debug, Default)]
pub struct PercentDecoder {
    /// `%` or `%X` waiting for the rest of its escape.
    pending: Vec<u8>,
}

impl Escapes for PercentDecoder {
    fn next_special(input: &[u8]) -> Option<usize> {
        memchr::memchr2(b'%', b'+', input)
    }

    fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.pending.len() {
            0 if b == b'%' => self.pending.push(b),
            0 if b == b'+' => out.push(b' '),
            0 => out.push(b),
            1 if hex_value(b).is_some() => self.pending.push(b),
            2 if hex_value(b).is_some() => {
                let hi = hex_value(self.pending[1]).unwrap_or(0);
                out.push(hi << 4 | hex_value(b).unwrap_or(0));
                self.pending.clear();
            }
            _ => {
                // Not an escape after all: the held bytes are literal, and `b` starts afresh.
                out.append(&mut self.pending);
                self.byte(b, out);
            }
        }
    }
}

impl StreamDecoder for PercentDecoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        feed_escapes(self, input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        out.append(&mut self.pending);
        Ok(())
    }

    fn passes_through(&self, input: &[u8]) -> bool {
        escapes_pass(self, input)
    }
}

/// The value of an ASCII hex digit (either case).
pub fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// JSON string escapes: `\uXXXX` (surrogate pairs joined, written as UTF-8; a lone surrogate
/// becomes U+FFFD) and the one-letter escapes. Applied everywhere, not only inside strings, so
/// no parse state can be confused.
#[derive(Debug, Default)]
pub struct JsonEscapeDecoder {
    /// An escape sequence seen in part (at most `\uXXXX\uXXXX`).
    pending: Vec<u8>,
}

/// What to do with the pending bytes of an escape.
enum Escape {
    /// Wait for more input.
    NeedMore,
    /// Write `out`, drop the first `consumed` pending bytes, and read the rest afresh.
    Emit { out: Vec<u8>, consumed: usize },
}

impl Escapes for JsonEscapeDecoder {
    fn next_special(input: &[u8]) -> Option<usize> {
        memchr::memchr(b'\\', input)
    }

    fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.pending.is_empty() && b != b'\\' {
            out.push(b);
            return;
        }
        self.pending.push(b);
        self.resolve(false, out);
    }
}

impl JsonEscapeDecoder {
    fn resolve(&mut self, at_end: bool, out: &mut Vec<u8>) {
        while !self.pending.is_empty() {
            match escape(&self.pending, at_end) {
                Escape::NeedMore => return,
                Escape::Emit {
                    out: decoded,
                    consumed,
                } => {
                    out.extend_from_slice(&decoded);
                    let rest = self.pending.split_off(consumed);
                    self.pending.clear();
                    for b in rest {
                        self.byte(b, out);
                    }
                    if !at_end {
                        return;
                    }
                }
            }
        }
    }
}

/// Decides the escape at the start of `p` (which begins with a backslash).
fn escape(p: &[u8], at_end: bool) -> Escape {
    let literal = |n: usize| Escape::Emit {
        out: p[..n].to_vec(),
        consumed: n,
    };
    let Some(&kind) = p.get(1) else {
        return if at_end { literal(1) } else { Escape::NeedMore };
    };
    let simple = match kind {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        b'/' => Some(b'/'),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        _ => None,
    };
    if let Some(byte) = simple {
        return Escape::Emit {
            out: vec![byte],
            consumed: 2,
        };
    }
    if kind != b'u' {
        return literal(1);
    }
    let unit = match hex4(&p[2..]) {
        Hex4::Value(v) => v,
        Hex4::Short if at_end => return literal(p.len()),
        Hex4::Short => return Escape::NeedMore,
        Hex4::Bad(i) => return literal(2 + i),
    };
    const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();
    let lone = Escape::Emit {
        out: REPLACEMENT.to_vec(),
        consumed: 6,
    };
    match unit {
        0xD800..=0xDBFF => {}
        0xDC00..=0xDFFF => return lone,
        _ => {
            let c = char::from_u32(u32::from(unit)).unwrap_or('\u{fffd}');
            return Escape::Emit {
                out: c.to_string().into_bytes(),
                consumed: 6,
            };
        }
    }
    // A high surrogate: joined with a following `\uDC00`..`\uDFFF`, or alone.
    let next = &p[6..];
    let prefix_ok = next.iter().zip(b"\\u").all(|(a, b)| a == b);
    if !prefix_ok {
        return lone;
    }
    if next.len() < 2 {
        return if at_end { lone } else { Escape::NeedMore };
    }
    match hex4(&next[2..]) {
        Hex4::Value(low @ 0xDC00..=0xDFFF) => {
            let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
            let c = char::from_u32(code).unwrap_or('\u{fffd}');
            Escape::Emit {
                out: c.to_string().into_bytes(),
                consumed: 12,
            }
        }
        Hex4::Short if !at_end => Escape::NeedMore,
        _ => lone,
    }
}

enum Hex4 {
    Value(u16),
    /// Fewer than four bytes, all hex digits so far.
    Short,
    /// The byte at this index is not a hex digit.
    Bad(usize),
}

fn hex4(p: &[u8]) -> Hex4 {
    let mut v = 0u16;
    for i in 0..4 {
        let Some(&b) = p.get(i) else {
            return Hex4::Short;
        };
        match hex_value(b) {
            Some(d) => v = v << 4 | u16::from(d),
            None => return Hex4::Bad(i),
        }
    }
    Hex4::Value(v)
}

impl StreamDecoder for JsonEscapeDecoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        feed_escapes(self, input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        self.resolve(true, out);
        Ok(())
    }

    fn passes_through(&self, input: &[u8]) -> bool {
        escapes_pass(self, input)
    }
}

/// Drops ASCII whitespace, joining line-wrapped (MIME) base64 and base64url into one run that the
/// encoded forms of a secret can be found in.
#[derive(Debug, Default)]
pub struct UnwrapDecoder;

impl StreamDecoder for UnwrapDecoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        out.reserve(input.len());
        for run in input.split(u8::is_ascii_whitespace) {
            out.extend_from_slice(run);
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), DecodeError> {
        Ok(())
    }

    fn passes_through(&self, input: &[u8]) -> bool {
        !input.iter().any(u8::is_ascii_whitespace)
    }
}

/// Most a compressed body may expand, as output bytes per input byte.
pub const MAX_RATIO: u64 = 100;
/// Most a compressed body may expand to in all, whatever its size.
pub const MAX_DECODED: u64 = 1 << 30;
/// Output allowed before the ratio applies: tiny bodies compress far better than 100:1.
const RATIO_SLACK: u64 = 1 << 20;
/// Input handed to a decompressor at once, so one step's output stays small.
const STEP: usize = 1024;
/// Most output one [`STEP`] of input may produce; beyond it no honest body goes.
const MAX_STEP_OUTPUT: usize = 16 << 20;

/// Where a decompressor writes: counts, and refuses output past the bomb bounds before it is
/// stored, so a bomb is never expanded in memory.
#[derive(Debug, Default)]
struct BoundedSink {
    buf: Vec<u8>,
    input: u64,
    output: u64,
    bomb: bool,
}

impl Write for BoundedSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let output = self.output + data.len() as u64;
        let over_ratio = output > RATIO_SLACK && output > self.input.saturating_mul(MAX_RATIO);
        if over_ratio || output > MAX_DECODED || self.buf.len() + data.len() > MAX_STEP_OUTPUT {
            self.bomb = true;
            return Err(std::io::Error::other("decompression bound"));
        }
        self.output = output;
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A write-side decompressor over a [`BoundedSink`].
trait Inflate: Write + Send {
    fn sink(&mut self) -> &mut BoundedSink;
    fn end(&mut self) -> std::io::Result<()>;
}

impl Inflate for flate2::write::GzDecoder<BoundedSink> {
    fn sink(&mut self) -> &mut BoundedSink {
        self.get_mut()
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.try_finish()
    }
}

impl Inflate for flate2::write::ZlibDecoder<BoundedSink> {
    fn sink(&mut self) -> &mut BoundedSink {
        self.get_mut()
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.try_finish()
    }
}

impl Inflate for flate2::write::DeflateDecoder<BoundedSink> {
    fn sink(&mut self) -> &mut BoundedSink {
        self.get_mut()
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.try_finish()
    }
}

impl Inflate for brotli_decompressor::DecompressorWriter<BoundedSink> {
    fn sink(&mut self) -> &mut BoundedSink {
        self.get_mut()
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.close()
    }
}

/// Streaming decompression of one content coding (`gzip`, `deflate`, `br`), bounded against
/// bombs: more than [`MAX_RATIO`]:1 (past the first MiB) or [`MAX_DECODED`] in all is refused.
pub struct Decompressor {
    coding: &'static str,
    inner: Option<Box<dyn Inflate>>,
    /// `deflate` is zlib-wrapped or raw; the first two bytes tell, so they wait here.
    head: Vec<u8>,
    /// Whether any input came: an empty body with a coding header is an empty body.
    fed: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("coding", &self.coding)
            .finish()
    }
}

impl Decompressor {
    /// A decompressor for the content coding `name` (case-insensitive).
    pub fn new(name: &str) -> Result<Decompressor, DecodeError> {
        let (coding, inner): (&'static str, Option<Box<dyn Inflate>>) =
            match name.to_ascii_lowercase().as_str() {
                "gzip" | "x-gzip" => (
                    "gzip",
                    Some(Box::new(flate2::write::GzDecoder::new(
                        BoundedSink::default(),
                    ))),
                ),
                "deflate" => ("deflate", None),
                "br" => (
                    "br",
                    Some(Box::new(brotli_decompressor::DecompressorWriter::new(
                        BoundedSink::default(),
                        4096,
                    ))),
                ),
                _ => return Err(DecodeError::Unsupported(name.to_string())),
            };
        Ok(Decompressor {
            coding,
            inner,
            head: Vec::new(),
            fed: false,
        })
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> DecodeError {
        DecodeError::Corrupt {
            coding: self.coding,
            reason: e.to_string(),
        }
    }

    /// The decoder, once it is known (for `deflate`, after two bytes or at the end).
    fn inflater(&mut self, input: &[u8], at_end: bool) -> Option<(Box<dyn Inflate>, Vec<u8>)> {
        if let Some(inner) = self.inner.take() {
            return Some((inner, input.to_vec()));
        }
        self.head.extend_from_slice(input);
        if self.head.len() < 2 && !at_end {
            return None;
        }
        let zlib = self.head.len() >= 2
            && self.head[0] & 0x0f == 8
            && (u16::from(self.head[0]) << 8 | u16::from(self.head[1])) % 31 == 0;
        let inner: Box<dyn Inflate> = if zlib {
            Box::new(flate2::write::ZlibDecoder::new(BoundedSink::default()))
        } else {
            Box::new(flate2::write::DeflateDecoder::new(BoundedSink::default()))
        };
        Some((inner, std::mem::take(&mut self.head)))
    }

    fn write(
        &mut self,
        inner: &mut dyn Inflate,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        for step in input.chunks(STEP) {
            inner.sink().input += step.len() as u64;
            let written = inner.write_all(step);
            out.append(&mut inner.sink().buf);
            if inner.sink().bomb {
                return Err(DecodeError::Bomb {
                    coding: self.coding,
                });
            }
            written.map_err(|e| self.corrupt(e))?;
        }
        Ok(())
    }
}

impl StreamDecoder for Decompressor {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        self.fed |= !input.is_empty();
        let Some((mut inner, input)) = self.inflater(input, false) else {
            return Ok(());
        };
        let result = self.write(&mut *inner, &input, out);
        self.inner = Some(inner);
        result
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        if !self.fed {
            return Ok(());
        }
        let Some((mut inner, input)) = self.inflater(&[], true) else {
            return Ok(());
        };
        self.write(&mut *inner, &input, out)?;
        let ended = inner.end();
        out.append(&mut inner.sink().buf);
        if inner.sink().bomb {
            return Err(DecodeError::Bomb {
                coding: self.coding,
            });
        }
        ended.map_err(|e| self.corrupt(e))
    }
}

/// The decompressors for a `Content-Encoding` header value, in the order they must run (the
/// reverse of the order the codings were applied). `identity` is no coding.
pub fn content_decoders(header: &str) -> Result<Vec<Box<dyn StreamDecoder>>, DecodeError> {
    let mut decoders: Vec<Box<dyn StreamDecoder>> = Vec::new();
    for name in header.split(',').map(str::trim).rev() {
        if name.is_empty() || name.eq_ignore_ascii_case("identity") {
            continue;
        }
        decoders.push(Box::new(Decompressor::new(name)?));
    }
    Ok(decoders)
}

/// Runs `input` through `chain` (each decoder feeding the next), flushing each at `at_end`.
/// What no decoder changes stays borrowed from the input.
pub fn run_chain<'a>(
    chain: &mut [Box<dyn StreamDecoder>],
    input: &'a [u8],
    at_end: bool,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let mut current = Cow::Borrowed(input);
    for decoder in chain.iter_mut() {
        current = decode(decoder.as_mut(), current, at_end)?;
    }
    Ok(current)
}

/// `input` through one decoder, flushing it at `at_end`; `input` itself when the decoder would
/// not change it.
pub fn decode<'a>(
    decoder: &mut dyn StreamDecoder,
    input: Cow<'a, [u8]>,
    at_end: bool,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    if decoder.passes_through(&input) {
        return Ok(input);
    }
    let mut out = Vec::with_capacity(input.len());
    decoder.feed(&input, &mut out)?;
    if at_end {
        decoder.finish(&mut out)?;
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(d: &mut dyn StreamDecoder, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        d.feed(input, &mut out).unwrap();
        d.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn percent_decodes_every_byte_and_plus() {
        let mut d = PercentDecoder::default();
        assert_eq!(whole(&mut d, b"%68%75+%4e%4E%%4x%2"), b"hu NN%%4x%2");
    }

    #[test]
    fn json_escapes_and_surrogates() {
        let mut d = JsonEscapeDecoder::default();
        let got = whole(
            &mut d,
            br#"\u0068\u0069\n\"\ud83d\ude00\ud83dx\uDC00\q\u12"#,
        );
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "hi\n\"\u{1f600}\u{fffd}x\u{fffd}\\q\\u12"
        );
    }

    #[test]
    fn unwrap_joins_lines() {
        assert_eq!(whole(&mut UnwrapDecoder, b"aGVs\r\nbG8=\n"), b"aGVsbG8=");
    }

    #[test]
    fn gzip_deflate_br_decode() {
        use std::io::Write;
        let text = b"hello compressed world".repeat(10);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&text).unwrap();
        for (name, data) in [
            ("gzip", gz.finish().unwrap()),
            ("deflate", z.finish().unwrap()),
            ("deflate", raw.finish().unwrap()),
        ] {
            let mut d = Decompressor::new(name).unwrap();
            assert_eq!(whole(&mut d, &data), text, "{name}");
        }
        // Ten X then ten Y, a compressed brotli stream (from the decompressor's own tests).
        let br = [
            0x1b, 0x13, 0x00, 0x00, 0xa4, 0xb0, 0xb2, 0xea, 0x81, 0x47, 0x02, 0x8a,
        ];
        let mut d = Decompressor::new("br").unwrap();
        assert_eq!(whole(&mut d, &br), b"XXXXXXXXXXYYYYYYYYYY");
        assert_eq!(
            whole(
                &mut Decompressor::new("br").unwrap(),
                &brotli_stored(b"hello")
            ),
            b"hello"
        );
    }

    /// `data` as a brotli stream of one uncompressed meta-block (at most 64 KiB).
    pub(crate) fn brotli_stored(data: &[u8]) -> Vec<u8> {
        // Bits, least significant first: WBITS=16 (0), ISLAST=0, MNIBBLES=4 (00), MLEN-1 in 16
        // bits, ISUNCOMPRESSED=1, padding; then the data; then ISLAST=1, ISLASTEMPTY=1.
        let header = ((data.len() as u32 - 1) << 4) | (1 << 20);
        let mut out = header.to_le_bytes()[..3].to_vec();
        out.extend_from_slice(data);
        out.push(0x03);
        out
    }

    #[test]
    fn bombs_are_refused_without_expanding() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 50 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        let mut d = Decompressor::new("gzip").unwrap();
        let mut out = Vec::new();
        let err = d
            .feed(&bomb, &mut out)
            .and_then(|()| d.finish(&mut out))
            .unwrap_err();
        assert_eq!(err, DecodeError::Bomb { coding: "gzip" });
        assert!(out.len() <= (2 << 20), "expanded {} bytes", out.len());
        assert!(err.to_string().contains("100:1"), "{err}");
    }

    #[test]
    fn corrupt_and_unknown_codings_are_errors() {
        let mut d = Decompressor::new("gzip").unwrap();
        let mut out = Vec::new();
        let r = d.feed(b"not gzip at all", &mut out);
        let r = r.and_then(|()| d.finish(&mut out));
        assert!(matches!(r, Err(DecodeError::Corrupt { .. })), "{r:?}");
        let e = content_decoders("gzip, zstd").err().unwrap();
        assert!(e.to_string().contains("zstd"), "{e}");
        assert_eq!(content_decoders("identity").unwrap().len(), 0);
        // No body at all is not corrupt.
        assert_eq!(whole(&mut Decompressor::new("gzip").unwrap(), b""), b"");
    }
}
