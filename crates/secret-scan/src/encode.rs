//! The encoded forms an exact secret is searched in.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// A form an exact secret can appear in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The bytes as they are.
    Raw,
    /// Standard base64, at the given byte alignment (0, 1 or 2 bytes before the secret).
    Base64 {
        /// Bytes preceding the secret in the encoded stream, modulo 3.
        offset: u8,
    },
    /// URL-safe base64 (`-` and `_`), at the given byte alignment.
    Base64Url {
        /// Bytes preceding the secret in the encoded stream, modulo 3.
        offset: u8,
    },
    /// Lower-case hexadecimal.
    HexLower,
    /// Upper-case hexadecimal.
    HexUpper,
    /// Percent-encoding of every byte outside the unreserved set, with upper-case digits.
    UrlEncodedUpper,
    /// The same with lower-case hex digits.
    UrlEncodedLower,
    /// `application/x-www-form-urlencoded` (space as `+`).
    FormEncoded,
}

/// Every searchable form of `secret`: the part of each encoding that does not depend on the bytes
/// around the secret. Forms identical to an earlier one are left out.
pub fn variants(secret: &[u8]) -> Vec<(Encoding, Vec<u8>)> {
    let mut out: Vec<(Encoding, Vec<u8>)> = Vec::with_capacity(12);
    let mut push = |enc: Encoding, form: Vec<u8>| {
        if !form.is_empty() && !out.iter().any(|(_, f)| *f == form) {
            out.push((enc, form));
        }
    };
    push(Encoding::Raw, secret.to_vec());
    for offset in 0..3u8 {
        push(
            Encoding::Base64 { offset },
            base64_core(secret, offset, false),
        );
        push(
            Encoding::Base64Url { offset },
            base64_core(secret, offset, true),
        );
    }
    let hex = to_hex(secret);
    push(Encoding::HexUpper, hex.to_ascii_uppercase());
    push(Encoding::HexLower, hex);
    push(
        Encoding::UrlEncodedUpper,
        percent_encode(secret, true, false),
    );
    push(
        Encoding::UrlEncodedLower,
        percent_encode(secret, false, false),
    );
    push(Encoding::FormEncoded, percent_encode(secret, true, true));
    out
}

/// The base64 characters that depend only on `secret` when it follows `offset` other bytes.
fn base64_core(secret: &[u8], offset: u8, url_safe: bool) -> Vec<u8> {
    let offset = usize::from(offset);
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(secret);
    let encoded = if url_safe {
        URL_SAFE_NO_PAD.encode(&padded)
    } else {
        STANDARD_NO_PAD.encode(&padded)
    };
    // Character i carries bits 6i..6i+6. Skip those touching the prefix; keep only those fully
    // inside the secret (the last partial one depends on what follows).
    let start = (offset * 8).div_ceil(6);
    let end = (offset + secret.len()) * 8 / 6;
    if start >= end {
        return Vec::new();
    }
    encoded.as_bytes()[start..end].to_vec()
}

fn to_hex(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    out
}

fn percent_encode(bytes: &[u8], upper: bool, form: bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if form && b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 0xf)],
            ]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    const SECRET: &[u8] = b"tok/en+with?odd=chars~~\xff";

    fn form(enc: Encoding) -> Vec<u8> {
        variants(SECRET)
            .into_iter()
            .find(|(e, _)| *e == enc)
            .map(|(_, f)| f)
            .unwrap_or_else(|| panic!("no {enc:?} form"))
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn raw_is_the_value() {
        assert_eq!(form(Encoding::Raw), SECRET);
    }

    #[test]
    fn base64_core_is_found_at_every_alignment_and_any_context() {
        for prefix_len in 0..6 {
            for suffix_len in 0..4 {
                let mut data = vec![b'Q'; prefix_len];
                data.extend_from_slice(SECRET);
                data.extend(std::iter::repeat_n(b'z', suffix_len));
                let std_enc = STANDARD.encode(&data);
                let url_enc = URL_SAFE.encode(&data);
                let offset = (prefix_len % 3) as u8;
                assert!(
                    contains(std_enc.as_bytes(), &form(Encoding::Base64 { offset })),
                    "std prefix={prefix_len} suffix={suffix_len}"
                );
                assert!(
                    contains(url_enc.as_bytes(), &form(Encoding::Base64Url { offset })),
                    "url prefix={prefix_len} suffix={suffix_len}"
                );
            }
        }
    }

    #[test]
    fn base64_core_is_long_enough_to_be_specific() {
        for offset in 0..3 {
            assert!(base64_core(b"12345678", offset, false).len() >= 9);
        }
    }

    #[test]
    fn hex_forms() {
        assert_eq!(form(Encoding::HexLower), to_hex(SECRET));
        assert!(
            String::from_utf8(form(Encoding::HexUpper))
                .unwrap()
                .starts_with("746F6B2F")
        );
        assert!(
            String::from_utf8(form(Encoding::HexLower))
                .unwrap()
                .ends_with("7eff")
        );
    }

    #[test]
    fn url_encoded_forms() {
        assert_eq!(
            form(Encoding::UrlEncodedUpper),
            b"tok%2Fen%2Bwith%3Fodd%3Dchars~~%FF"
        );
        assert_eq!(
            form(Encoding::UrlEncodedLower),
            b"tok%2fen%2bwith%3fodd%3dchars~~%ff"
        );
        let v = variants(b"pass word 123");
        assert!(
            v.iter()
                .any(|(e, f)| *e == Encoding::FormEncoded && f == b"pass+word+123")
        );
    }

    #[test]
    fn identical_forms_are_not_repeated() {
        let v = variants(b"abcdefgh12345678");
        let raw_like = v.iter().filter(|(_, f)| f == b"abcdefgh12345678").count();
        assert_eq!(raw_like, 1);
        assert!(!v.iter().any(|(e, _)| *e == Encoding::UrlEncodedUpper));
    }
}
