//! Host names: canonical form, `host:port` authorities and allowlist globs.

use std::fmt;
use std::net::IpAddr;

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
/// Names may hold ASCII letters, digits, `-`, `_` and `.`; anything else (percent signs, `@`,
/// spaces, non-ASCII) is refused so no two spellings reach the same policy decision differently.
pub fn canonical_host(host: &str) -> Option<String> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !host.split('.').any(str::is_empty);
    valid.then(|| host.to_ascii_lowercase())
}

/// One allowlist entry: a host, or a glob where `*` matches any run of characters.
/// `*.x.com` also matches `x.com` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGlob {
    pattern: String,
}

impl HostGlob {
    /// A glob from an entry of the configuration (case and a trailing dot do not matter).
    pub fn new(pattern: &str) -> HostGlob {
        let p = pattern.trim();
        let p = p
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(p);
        let pattern = match p.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => p.strip_suffix('.').unwrap_or(p).to_ascii_lowercase(),
        };
        HostGlob { pattern }
    }

    /// Whether the canonical `host` matches.
    pub fn matches(&self, host: &str) -> bool {
        if let Some(base) = self.pattern.strip_prefix("*.")
            && host == base
        {
            return true;
        }
        wildcard(self.pattern.as_bytes(), host.as_bytes())
    }
}

/// A list of [`HostGlob`]s.
#[derive(Debug, Clone, Default)]
pub struct HostSet {
    exact: std::collections::HashSet<String>,
    globs: Vec<HostGlob>,
}

impl HostSet {
    /// The set of `patterns`.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a String>) -> HostSet {
        let mut set = HostSet::default();
        for p in patterns {
            let glob = HostGlob::new(p);
            if glob.pattern.contains('*') {
                set.globs.push(glob);
            } else {
                set.exact.insert(glob.pattern);
            }
        }
        set
    }

    /// Whether the canonical `host` matches any entry.
    pub fn matches(&self, host: &str) -> bool {
        self.exact.contains(host) || self.globs.iter().any(|g| g.matches(host))
    }
}

/// Classic `*` wildcard matching with backtracking to the last star.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
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
        HostGlob::new(pattern).matches(&canonical_host(host).unwrap())
    }

    #[test]
    fn globs() {
        assert!(m("*.github.com", "api.github.com"));
        assert!(m("*.github.com", "a.b.github.com"));
        assert!(m("*.github.com", "github.com"));
        assert!(m("*.github.com", "API.GitHub.COM."));
        assert!(!m("*.github.com", "evilgithub.com"));
        assert!(!m("*.github.com", "github.com.evil.net"));
        assert!(m("github.com", "GITHUB.com"));
        assert!(!m("github.com", "api.github.com"));
        assert!(m("registry.*.org", "registry.npmjs.org"));
        assert!(!m("registry.*.org", "registry.npmjs.org.evil"));
        assert!(m("*", "anything.example"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("[::1]", "::1"));
        assert!(m("0:0::1", "[::1]"));
        assert!(m("Example.COM.", "example.com"));
    }

    #[test]
    fn host_set() {
        let set = HostSet::new(&["a.com".to_string(), "*.b.com".to_string()]);
        assert!(set.matches("a.com"));
        assert!(set.matches("b.com"));
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
