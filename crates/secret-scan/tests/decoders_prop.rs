//! Property tests of the streaming decoders and the stream scanner: no panic on any input, the
//! same output whatever the chunking, and a secret found at any offset in any chunking.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use bottle_secret_scan::decode::{
    Decompressor, JsonEscapeDecoder, PercentDecoder, StreamDecoder, UnwrapDecoder,
};
use bottle_secret_scan::stream::StreamScanner;
use bottle_secret_scan::{ExactSecret, Scanner};
use proptest::prelude::*;

/// Splits `data` at the given cut points (taken modulo its length).
fn chunks<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// A named way to make a fresh decoder.
type MakeDecoder = (&'static str, fn() -> Box<dyn StreamDecoder>);

fn decoders() -> Vec<MakeDecoder> {
    vec![
        ("percent", || Box::new(PercentDecoder::default())),
        ("json", || Box::new(JsonEscapeDecoder::default())),
        ("unwrap", || Box::new(UnwrapDecoder)),
        ("gzip", || Box::new(Decompressor::new("gzip").unwrap())),
        ("deflate", || {
            Box::new(Decompressor::new("deflate").unwrap())
        }),
        ("br", || Box::new(Decompressor::new("br").unwrap())),
    ]
}

/// Decodes in the given pieces; `Err` if the decoder refused the input.
fn decode(d: &mut dyn StreamDecoder, pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for p in pieces {
        d.feed(p, &mut out).map_err(|e| e.to_string())?;
    }
    d.finish(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Input biased towards escapes, so the interesting states are reached.
fn escapy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"%".to_vec()),
        Just(b"+".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\\u".to_vec()),
        Just(b"\\ud83d".to_vec()),
        Just(b"\\uDE00".to_vec()),
        Just(b"\r\n".to_vec()),
        "[0-9a-fA-F]{1,4}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        for (_, make) in decoders() {
            let _ = decode(&mut *make(), &chunks(&data, &cuts));
        }
    }

    #[test]
    fn any_chunking_decodes_like_one_shot(data in escapy(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let gz = gzip(&data);
        for (name, make) in decoders() {
            let input = if name == "gzip" { &gz } else { &data };
            let whole = decode(&mut *make(), &[input]);
            let pieces = decode(&mut *make(), &chunks(input, &cuts));
            prop_assert_eq!(&whole, &pieces, "{}", name);
        }
        prop_assert_eq!(decode(&mut *decoders()[3].1(), &chunks(&gz, &cuts)), Ok(data));
    }

    #[test]
    fn a_secret_at_any_offset_in_any_chunking_is_found(
        secret in "[!-~]{8,40}",
        before in "[a-z ]{0,300}",
        after in "[a-z ]{0,50}",
        form in 0..5usize,
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let encoded = match form {
            0 => secret.clone(),
            1 => secret.bytes().map(|b| format!("%{b:02X}")).collect(),
            2 => secret.chars().map(|c| format!("\\u{:04x}", c as u32)).collect(),
            3 => base64::engine::general_purpose::STANDARD
                .encode(&secret)
                .as_bytes()
                .chunks(5)
                .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
                .collect(),
            _ => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{before}{secret}")),
        };
        let body = format!("{before}{encoded}{after}");
        let scanner = Arc::new(Scanner::new(vec![], vec![ExactSecret::new("S", secret.as_str())]).unwrap());
        let mut s = StreamScanner::new(scanner, vec![]);
        let mut found = false;
        for c in chunks(body.as_bytes(), &cuts) {
            found |= !s.feed(c).unwrap().is_empty();
        }
        found |= !s.finish().unwrap().is_empty();
        prop_assert!(found, "form {} not found in {:?}", form, body);
    }

    #[test]
    fn a_decoder_that_passes_input_through_would_not_change_it(
        prefix in escapy(),
        data in escapy(),
    ) {
        for (name, make) in decoders() {
            let mut d = make();
            let mut out = Vec::new();
            if d.feed(&prefix, &mut out).is_err() || !d.passes_through(&data) {
                continue;
            }
            out.clear();
            d.feed(&data, &mut out).unwrap();
            d.finish(&mut out).unwrap();
            prop_assert_eq!(&out, &data, "{}", name);
        }
    }

    #[test]
    fn long_streams_in_any_chunking_find_all_one_scan_finds(
        words in proptest::collection::vec(prop_oneof![
            "[a-z]{1,12}",
            Just("AKIAQWERTYUIOPASDFGH".to_owned()),
            Just("ghp_0123456789abcdefghijABCDEFGHIJ0123456789".to_owned()),
            Just("s3cr3t-Value/42+x".to_owned()),
            Just("%73%33%63%72%33%74%2d%56%61%6c%75%65%2f%34%32%2b%78".to_owned()),
        ], 0..600),
        separators in proptest::collection::vec(prop_oneof![Just(" "), Just(""), Just("\n"), Just("x")], 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let body: String = words
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{w}{}", separators[i % separators.len()]))
            .collect();
        let scanner = Arc::new(
            Scanner::with_builtin_rules(vec![ExactSecret::new("S", "s3cr3t-Value/42+x")]).unwrap(),
        );
        let rules = |pieces: &[&[u8]]| {
            let mut s = StreamScanner::new(scanner.clone(), vec![]);
            let mut rules = std::collections::BTreeSet::new();
            let mut found = Vec::new();
            for p in pieces {
                found.extend(s.feed(p).unwrap());
            }
            found.extend(s.finish().unwrap());
            for f in found.into_iter().flatten() {
                rules.insert(f.rule);
            }
            rules
        };
        let whole = rules(&[body.as_bytes()]);
        let chunked = rules(&chunks(body.as_bytes(), &cuts));
        // Nothing is missed. A chunk may end where a pattern's trailing `\b` then matches (the
        // next byte is not there yet), so patterns may find more, never exact values.
        prop_assert!(whole.is_subset(&chunked), "{:?} missed in {:?}", whole, body);
        prop_assert_eq!(whole.contains("exact:S"), chunked.contains("exact:S"));
    }
}
