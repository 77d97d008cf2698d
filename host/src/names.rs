//! The naming rules shared by manifests, plugins and containers.

/// `[a-z][a-z0-9-]*`, at most 63 characters: plugin, sidecar, role and context names, which also end
/// up in container names and DNS aliases.
pub fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

/// `[a-z][a-z0-9_]*`: manifest section keys.
pub fn is_section(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// `[A-Za-z_][A-Za-z0-9_]*`: environment variable names.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('A'..='Z' | 'a'..='z' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A host pattern as allowlists take them (`bottle-host-pattern`: `*` matches one DNS label).
pub fn is_host_pattern(s: &str) -> bool {
    bottle_host_pattern::HostPattern::parse(s).is_ok()
}

/// A DNS host name (no IP literal, no wildcard), as `/etc/hosts` entries take them.
pub fn is_dns_name(s: &str) -> bool {
    bottle_host_pattern::HostName::parse(s).is_ok_and(|h| h.ip().is_none())
}

/// A `NO_PROXY` entry: a host name or IP, with an optional leading `.` or `*.` (HTTP clients read
/// both as the domain and its subdomains; no other wildcard).
pub fn is_no_proxy_entry(s: &str) -> bool {
    let name = s
        .strip_prefix("*.")
        .or_else(|| s.strip_prefix('.'))
        .unwrap_or(s);
    bottle_host_pattern::HostName::parse(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(is_slug("egress-proxy"));
        assert!(!is_slug("Egress"));
        assert!(!is_slug("1abc"));
        assert!(!is_slug(""));
        assert!(!is_slug("a_b"));
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("GH_TOKEN"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name(""));
    }

    #[test]
    fn host_patterns() {
        assert!(is_host_pattern("api.github.com"));
        assert!(is_host_pattern("*.github.com"));
        assert!(!is_host_pattern("https://x.com"));
        assert!(!is_host_pattern("x.com/path"));
        assert!(!is_host_pattern("*."));
        assert!(!is_host_pattern("a..b"));
        assert!(is_host_pattern("registry.*.org"));
        assert!(!is_host_pattern("api-*.x.com"));
        assert!(!is_host_pattern("*"));
        assert!(is_dns_name("db.internal"));
        assert!(!is_dns_name("*.x.com"));
        assert!(!is_dns_name("10.0.0.1"));
        assert!(is_no_proxy_entry(".example.com"));
        assert!(is_no_proxy_entry("*.example.com"));
        assert!(is_no_proxy_entry("localhost"));
        assert!(!is_no_proxy_entry("registry.*.org"));
    }
}
