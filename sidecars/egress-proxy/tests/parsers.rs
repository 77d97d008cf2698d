//! The proxy's parsers under generated input: the ClientHello reader and path normalisation never
//! panic, and what they accept is what reaches the upstream (no accept-then-misroute).

use std::sync::Arc;

use bottle_egress_proxy::path::NormalPath;
use bottle_egress_proxy::sni::{Hello, parse_client_hello};
use proptest::prelude::*;

/// A ClientHello as rustls sends it for `name`.
fn hello(name: &str) -> Vec<u8> {
    let roots = rustls::RootCertStore::empty();
    let config = rustls::ClientConfig::builder_with_provider(bottle_egress_proxy::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// The handshake of `hello` re-framed into records cut at `cuts` (offsets into the handshake).
fn reframed(hello: &[u8], cuts: &[usize]) -> Vec<u8> {
    let handshake = &hello[5..];
    let mut points: Vec<usize> = cuts.iter().map(|c| c % handshake.len()).collect();
    points.extend([0, handshake.len()]);
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    for pair in points.windows(2) {
        let part = &handshake[pair[0]..pair[1]];
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn host_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 1..5)
        .prop_map(|labels| format!("{}.example", labels.join(".")))
}

/// Path segments that exercise every rule: dots plain and encoded, empty segments, escapes,
/// parameters, separators.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just("..;x".to_owned()),
        Just("%2f".to_owned()),
        Just("%5c".to_owned()),
        Just("%252e".to_owned()),
        Just("%00".to_owned()),
        Just("%".to_owned()),
        "[a-z]{1,3}",
        "[a-z%0-9A-F.;]{1,6}",
    ]
}

/// The reference: resolve decoded segments the way RFC 3986 does, given a path the parser took.
fn resolved(path: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    for raw in path.trim_start_matches('/').split('/') {
        let decoded = raw.replace("%2e", ".").replace("%2E", ".");
        match decoded.as_str() {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            _ => stack.push(raw.to_owned()),
        }
    }
    stack
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn client_hello_parser_survives_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_client_hello(&bytes);
    }

    #[test]
    fn client_hello_parser_survives_records_that_claim_to_be_tls(
        body in prop::collection::vec(any::<u8>(), 0..600),
        len in any::<u16>(),
    ) {
        let mut bytes = vec![0x16, 3, 1];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&body);
        let _ = parse_client_hello(&bytes);
    }

    #[test]
    fn the_name_read_is_the_name_sent_however_the_records_are_cut(
        name in host_name(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let hello = hello(&name);
        let framed = reframed(&hello, &cuts);
        prop_assert_eq!(parse_client_hello(&framed), Hello::Complete(Some(name)));
    }

    #[test]
    fn a_prefix_of_a_hello_is_never_taken_for_a_whole_one(name in host_name(), cut in any::<usize>()) {
        let hello = hello(&name);
        let cut = cut % hello.len();
        prop_assert_eq!(parse_client_hello(&hello[..cut]), Hello::Incomplete);
    }

    #[test]
    fn path_normalisation_survives_any_text(path in "\\PC{0,40}") {
        let _ = NormalPath::parse(&path);
        let _ = NormalPath::parse(&format!("/{path}"));
    }

    #[test]
    fn what_is_forwarded_is_what_was_checked(segments in prop::collection::vec(segment(), 0..8)) {
        let path = format!("/{}", segments.join("/"));
        if let Ok(normal) = NormalPath::parse(&path) {
            let forwarded = normal.forward_form();
            let again = NormalPath::parse(&forwarded).expect("the forward form parses");
            prop_assert_eq!(&again, &normal, "{} forwarded as {}", path, forwarded);
            prop_assert_eq!(again.forward_form(), forwarded.clone());
            prop_assert_eq!(
                forwarded.trim_end_matches('/').trim_start_matches('/').split('/')
                    .filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>(),
                resolved(&path),
                "{} forwarded as {}", path, forwarded
            );
            for s in forwarded.split('/') {
                let lower = s.to_ascii_lowercase();
                prop_assert!(!matches!(lower.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."));
            }
        }
    }

    #[test]
    fn an_allowed_prefix_holds_for_the_forwarded_path(segments in prop::collection::vec(segment(), 0..8)) {
        let prefix = NormalPath::parse("/repos/owner/").unwrap();
        let path = format!("/repos/owner/{}", segments.join("/"));
        if let Ok(normal) = NormalPath::parse(&path)
            && normal.starts_with(&prefix)
        {
            prop_assert!(normal.forward_form().starts_with("/repos/owner/"), "{}", path);
        }
    }
}
