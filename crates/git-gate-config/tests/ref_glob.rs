//! The ref glob matcher agrees with the plain backtracking definition it replaced.

use bottle_git_gate_config::ref_glob;
use proptest::prelude::*;

/// `*` matches within a path segment, `**` across segments; everything else literally.
fn reference(g: &[u8], t: &[u8]) -> bool {
    match g {
        [] => t.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| reference(rest, &t[i..])),
        [b'*', rest @ ..] => (0..=t.len())
            .take_while(|&i| i == 0 || t[i - 1] != b'/')
            .any(|i| reference(rest, &t[i..])),
        [c, rest @ ..] => t.first() == Some(c) && reference(rest, &t[1..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_the_reference(glob in "[ab/*]{0,8}", name in "[ab/]{0,10}") {
        prop_assert_eq!(
            ref_glob::matches(&glob, &name),
            reference(glob.as_bytes(), name.as_bytes()),
            "{} vs {}", glob, name
        );
    }

    #[test]
    fn check_never_panics(glob in any::<String>()) {
        let _ = ref_glob::check(&glob);
    }
}
