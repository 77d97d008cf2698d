//! Property tests of the host matcher: parsing never panics, canonical text round-trips, `*`
//! never spans a dot, and matching agrees with a plain reference implementation.

use bottle_host_pattern::{HostName, HostPattern};
use proptest::prelude::*;

/// A label from a small alphabet, so random patterns and hosts often line up.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("Ab".to_owned()),
        Just("x-1".to_owned()),
        "[a-z][a-z0-9]{0,3}",
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..5).prop_map(|l| l.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    let part = prop_oneof![label(), Just("*".to_owned())];
    prop::collection::vec(part, 1..5).prop_map(|l| l.join("."))
}

/// The rule written as plainly as possible: same number of labels, each `*` or equal ignoring
/// case.
fn reference(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| *p == "*" || p.eq_ignore_ascii_case(h))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parsing_never_panics(text in any::<String>()) {
        let _ = HostPattern::parse(&text);
        let _ = HostName::parse(&text);
    }

    #[test]
    fn parsing_near_misses_never_panics(text in "[a-zA-Z0-9*.:\\[\\]_-]{0,40}") {
        let _ = HostPattern::parse(&text);
        let _ = HostName::parse(&text);
    }

    #[test]
    fn canonical_text_round_trips(text in "[a-zA-Z0-9*.:\\[\\]_-]{0,40}") {
        if let Ok(p) = HostPattern::parse(&text) {
            prop_assert_eq!(HostPattern::parse(&p.to_string()).unwrap(), p.clone());
        }
        if let Ok(h) = HostName::parse(&text) {
            prop_assert_eq!(HostName::parse(h.as_str()).unwrap(), h.clone());
            prop_assert!(HostPattern::from(h.clone()).matches_host(&h));
        }
    }

    #[test]
    fn star_never_spans_a_dot(p in pattern(), h in host()) {
        if let Ok(parsed) = HostPattern::parse(&p)
            && parsed.matches(&h)
        {
            prop_assert_eq!(p.split('.').count(), h.split('.').count());
        }
    }

    #[test]
    fn matching_agrees_with_the_reference(p in pattern(), h in host()) {
        if let Ok(parsed) = HostPattern::parse(&p) {
            prop_assert_eq!(parsed.matches(&h), reference(&p, &h), "{} vs {}", p, h);
        }
    }

    #[test]
    fn covering_implies_matching(a in pattern(), b in pattern(), h in host()) {
        if let (Ok(pa), Ok(pb)) = (HostPattern::parse(&a), HostPattern::parse(&b))
            && pa.covers(&pb)
            && pb.matches(&h)
        {
            prop_assert!(pa.matches(&h), "{} covers {} but not {}", a, b, h);
        }
    }

    #[test]
    fn intersection_agrees_with_a_witness(a in pattern(), b in pattern(), h in host()) {
        if let (Ok(pa), Ok(pb)) = (HostPattern::parse(&a), HostPattern::parse(&b))
            && pa.matches(&h)
            && pb.matches(&h)
        {
            prop_assert!(pa.intersects(&pb), "{} and {} both match {}", a, b, h);
        }
    }
}
