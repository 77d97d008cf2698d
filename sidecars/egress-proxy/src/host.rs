//! Host names: canonical form, `host:port` authorities and allowlist globs.

use std::fmt;
use std::net::IpAddr;

use bottle_host_pattern::{HostName, HostPattern};

/// Why an authority was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid host[:port]")]
pub struct BadAuthority(pub String);

/// Where a request goes: a canonical host and a port.
///
/// The host is lower case without a trailing dot; an IPv6 literal is kept without brackets in its
/// canonical text form, an IPv4-mapped one as written by [`std::net::Ipv6Addr`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Canonical host.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Target {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; `default_port` when no port is given.
    pub fn parse(authority: &str, default_port: u16) -> Result<Target, BadAuthority> {
        let bad = || BadAuthority(authority.chars().take(200).collect());
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad());
            }
            (v6, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        };
        let host = canonical_host(host).ok_or_else(bad)?;
        Ok(Target { host, port })
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `host:port`, with brackets around an IPv6 literal.
    pub fn authority(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The canonical form of a host name or IP literal, or `None` if it is not one.
///
/// The grammar is `bottle-host-pattern`'s: ASCII letters, digits, `-` and `_` in dot-separated
/// labels; anything else (percent signs, `@`, spaces, non-ASCII) is refused so no two spellings
/// reach the same policy decision differently.
pub fn canonical_host(host: &str) -> Option<String> {
    HostName::parse(host).ok().map(|h| h.as_str().to_owned())
}

/// A list of allowlist entries, read by `bottle-host-pattern` (`*` matches one DNS label).
#[derive(Debug, Clone, Default)]
pub struct HostSet {
    exact: std::collections::HashSet<String>,
    wildcards: Vec<HostPattern>,
}

impl HostSet {
    /// The set of `patterns`. The configuration was validated before; an entry that still does not
    /// parse matches nothing (fail closed).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a String>) -> HostSet {
        let mut set = HostSet::default();
        for pattern in patterns
            .into_iter()
            .filter_map(|p| HostPattern::parse(p).ok())
        {
            if pattern.is_wildcard() {
                set.wildcards.push(pattern);
            } else {
                set.exact.insert(pattern.as_str().to_owned());
            }
        }
        set
    }

    /// Whether the canonical `host` matches any entry.
    pub fn matches(&self, host: &str) -> bool {
        self.exact.contains(host) || self.wildcards.iter().any(|p| p.matches(host))
    }
}

/// Whether the request's Host header agrees with the real target: absent, or exactly one that
/// parses to the same host and port. The target — never this header — decides policy; a
/// disagreeing header is refused so the upstream cannot be told a different story.
pub fn host_header_matches(headers: &http::HeaderMap, target: &Target) -> bool {
    let hosts: Vec<&http::HeaderValue> = headers.get_all(http::header::HOST).iter().collect();
    match hosts.as_slice() {
        [] => true,
        [one] => one
            .to_str()
            .ok()
            .and_then(|h| Target::parse(h, target.port).ok())
            .is_some_and(|h| &h == target),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, host: &str) -> bool {
        HostSet::new(&[pattern.to_owned()]).matches(&canonical_host(host).unwrap())
    }

    #[test]
    fn allowlist_agrees_with_the_shared_table() {
        for (pattern, host, expected) in bottle_host_pattern::conformance::CASES {
            assert_eq!(m(pattern, host), *expected, "{pattern} vs {host}");
        }
    }

    #[test]
    fn star_matches_one_label() {
        // The old any-run glob let `registry.*.org` reach `registry.evil.example.org`.
        assert!(m("registry.*.org", "registry.npmjs.org"));
        assert!(!m("registry.*.org", "registry.evil.example.org"));
        assert!(m("*.github.com", "api.github.com"));
        assert!(!m("*.github.com", "a.b.github.com"));
        assert!(!m("*.github.com", "github.com"));
        // Entries the grammar refuses match nothing.
        assert!(!m("*", "anything"));
        assert!(!m("a*b*c", "aXXbYYc"));
    }

    #[test]
    fn host_set() {
        let set = HostSet::new(&["a.com".to_string(), "*.b.com".to_string()]);
        assert!(set.matches("a.com"));
        assert!(!set.matches("b.com"));
        assert!(set.matches("x.b.com"));
        assert!(!set.matches("x.a.com"));
    }

    #[test]
    fn canonical_hosts() {
        assert_eq!(
            canonical_host("Api.Example.com.").unwrap(),
            "api.example.com"
        );
        assert_eq!(
            canonical_host("[::FFFF:10.0.0.1]").unwrap(),
            "::ffff:10.0.0.1"
        );
        assert_eq!(canonical_host("[0:0:0:0:0:0:0:1]").unwrap(), "::1");
        for bad in [
            "",
            "a b",
            "evil.com%2f",
            "user@host",
            "a..b",
            ".",
            "ex\u{e4}mple.com",
            "a/b",
        ] {
            assert!(canonical_host(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn targets() {
        let t = Target::parse("Example.com:8443", 443).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("example.com", 8443));
        assert_eq!(Target::parse("example.com", 443).unwrap().port, 443);
        let t = Target::parse("[::1]:80", 443).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(t.to_string(), "[::1]:80");
        assert_eq!(Target::parse("[::1]", 443).unwrap().port, 443);
        for bad in [
            "a:0", "a:x", "a:99999", "[::1", "[nope]:1", "::1", "a@b:1", ":80",
        ] {
            assert!(Target::parse(bad, 80).is_err(), "{bad:?}");
        }
    }
}
