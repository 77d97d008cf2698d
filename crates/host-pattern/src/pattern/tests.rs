use super::*;
use crate::conformance::CASES;

fn pattern(text: &str) -> HostPattern {
    HostPattern::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn problem(text: &str) -> Problem {
    HostPattern::parse(text).unwrap_err().problem().clone()
}

#[test]
fn conformance_table() {
    for (p, host, expected) in CASES {
        assert_eq!(pattern(p).matches(host), *expected, "{p} vs {host}");
    }
}

#[test]
fn star_is_one_whole_label() {
    assert_eq!(problem("api-*.example.com"), Problem::PartialWildcard);
    assert_eq!(problem("a*b"), Problem::PartialWildcard);
    assert_eq!(problem("**.example.com"), Problem::PartialWildcard);
    assert_eq!(problem("*"), Problem::OnlyWildcards);
    assert_eq!(problem("*.*"), Problem::OnlyWildcards);
    assert_eq!(problem("10.0.0.*"), Problem::IpWildcard);
    assert_eq!(problem("*.0.0.1"), Problem::NumericTopLabel);
    assert_eq!(problem("https://*.example.com"), Problem::NotBare);
    assert!(pattern("*.com").is_wildcard());
    assert!(!pattern("a.com").is_wildcard());
    let err = HostPattern::parse("api-*.example.com")
        .unwrap_err()
        .to_string();
    assert!(err.contains("one whole label"), "{err}");
}

#[test]
fn canonical_text_reparses() {
    for text in ["*.Example.COM.", "[::1]", "registry.*.ORG", "10.0.0.1"] {
        let p = pattern(text);
        assert_eq!(pattern(p.as_str()), p, "{text}");
    }
    assert_eq!(pattern("*.Example.COM.").as_str(), "*.example.com");
    assert_eq!(pattern("[::1]").as_str(), "::1");
}

#[test]
fn intersection() {
    for (a, b) in [
        ("*.example.com", "api.example.com"),
        ("*.example.com", "api.*.com"),
        ("registry.*.org", "*.npmjs.org"),
        ("a.com", "A.com."),
        ("::1", "[0::1]"),
    ] {
        assert!(pattern(a).intersects(&pattern(b)), "{a} & {b}");
        assert!(pattern(b).intersects(&pattern(a)), "{b} & {a}");
    }
    for (a, b) in [
        ("*.example.com", "example.com"),
        ("*.example.com", "a.b.example.com"),
        ("*.example.com", "*.example.org"),
        ("a.com", "b.com"),
        ("10.0.0.1", "*.0.1.example"),
        ("10.0.0.1", "10.0.0.2"),
    ] {
        assert!(!pattern(a).intersects(&pattern(b)), "{a} & {b}");
        assert!(!pattern(b).intersects(&pattern(a)), "{b} & {a}");
    }
}

#[test]
fn reaching_a_domain() {
    let domain = |d: &str| HostName::parse(d).unwrap();
    for (p, d) in [
        ("pastebin.com", "pastebin.com"),
        ("www.pastebin.com", "pastebin.com"),
        ("*.pastebin.com", "pastebin.com"),
        ("*.com", "pastebin.com"),
        ("*.*.com", "pastebin.com"),
        ("paste.*.net", "paste.debian.net"),
    ] {
        assert!(pattern(p).reaches_domain(&domain(d)), "{p} reaches {d}");
    }
    for (p, d) in [
        ("pastebin.org", "pastebin.com"),
        ("com", "pastebin.com"),
        ("*.net", "paste.debian.net"),
        ("evilpastebin.com", "pastebin.com"),
        ("10.0.0.1", "pastebin.com"),
    ] {
        assert!(
            !pattern(p).reaches_domain(&domain(d)),
            "{p} does not reach {d}"
        );
    }
}

#[test]
fn covering() {
    for (grant, request) in [
        ("*.pypi.org", "*.pypi.org"),
        ("*.pypi.org", "files.pypi.org"),
        ("*.*.org", "*.pypi.org"),
        ("registry.*.org", "registry.npmjs.org"),
        ("::1", "[::1]"),
    ] {
        assert!(
            pattern(grant).covers(&pattern(request)),
            "{grant} covers {request}"
        );
    }
    for (grant, request) in [
        ("files.pypi.org", "*.pypi.org"),
        ("*.pypi.org", "pypi.org"),
        ("*.pypi.org", "a.files.pypi.org"),
        ("*.pypi.org", "*.*.pypi.org"),
        ("10.0.0.1", "10.0.0.2"),
    ] {
        assert!(
            !pattern(grant).covers(&pattern(request)),
            "{grant} does not cover {request}"
        );
    }
}
