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

/// A DNS host name or a `*.`-prefixed glob of one, as allowlists take them.
pub fn is_host_pattern(s: &str) -> bool {
    let name = s.strip_prefix("*.").unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
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
    }
}
