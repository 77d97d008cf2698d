//! The shapes of names and hosts a manifest may use.

use bottle_host_pattern::{HostError, HostName, HostPattern};

use crate::invalid::Invalid;

/// The rule for agent and bottle names (file stems), for messages.
pub const MANIFEST_NAME_RULE: &str =
    "a lowercase letter followed by lowercase letters, digits and `-` ([a-z][a-z0-9-]*)";

/// Whether `name` is a valid agent or bottle name.
pub fn is_manifest_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An agent or bottle name, as written in a manifest (the agent's `bottle:`).
pub(crate) fn manifest_name(name: &str) -> Result<String, Invalid> {
    if is_manifest_name(name) {
        return Ok(name.to_string());
    }
    Err(
        Invalid::new(format!("`{name}` is not a valid bottle name")).hint(format!(
            "names are {MANIFEST_NAME_RULE}, as in `bottles/<name>.md`"
        )),
    )
}

/// Whether `name` is an environment variable name.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn env_name(name: &str) -> Result<String, Invalid> {
    if is_env_name(name) {
        return Ok(name.to_string());
    }
    Err(
        Invalid::new(format!("`{name}` is not a valid environment variable name")).hint(
            "use letters, digits and `_`, not starting with a digit ([A-Za-z_][A-Za-z0-9_]*)",
        ),
    )
}

/// A repository or skill name: `[A-Za-z0-9._-]+`, and not `.` or `..` (it becomes a directory).
pub(crate) fn item_name(name: &str, what: &str) -> Result<String, Invalid> {
    let charset = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !name.is_empty() && name.chars().all(charset) && name != "." && name != ".." {
        return Ok(name.to_string());
    }
    Err(Invalid::new(format!("`{name}` is not a valid {what}"))
        .hint("use letters, digits, `.`, `_` and `-` ([A-Za-z0-9._-]+), not `.` or `..`"))
}

/// A host name for a route or a git upstream: canonical (lowercased); no scheme, path or port.
pub(crate) fn host(text: &str) -> Result<String, Invalid> {
    let bare = bare_host_hint(text)?;
    HostName::parse(&bare)
        .map(|host| host.to_string())
        .map_err(|e| invalid_host(&e))
}

/// An allowlist entry: a host, or a host pattern whose `*` labels each match one DNS label.
pub(crate) fn host_pattern(text: &str) -> Result<String, Invalid> {
    let bare = bare_host_hint(text)?;
    HostPattern::parse(&bare)
        .map(|pattern| pattern.to_string())
        .map_err(|e| invalid_host(&e))
}

fn invalid_host(e: &HostError) -> Invalid {
    Invalid::new(e.summary()).hint(e.hint())
}

/// Rejects URLs and `host:port`, suggesting the bare host.
fn bare_host_hint(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(trimmed);
    if unbracketed.parse::<std::net::IpAddr>().is_ok() {
        // An IPv6 literal's colons are not a port.
        return Ok(trimmed.to_owned());
    }
    let without_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    let bare = without_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let bare = bare.rsplit_once('@').map_or(bare, |(_, host)| host);
    let bare = match bare.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => bare,
    };
    if bare == trimmed {
        return Ok(trimmed.to_ascii_lowercase());
    }
    Err(
        Invalid::new(format!("`{text}` is not a bare host name")).hint(format!(
            "write just the host, without scheme, user, port or path: `{}`",
            bare.to_ascii_lowercase()
        )),
    )
}

/// A path prefix of a route's `path_allowlist`.
pub(crate) fn path_prefix(text: &str) -> Result<String, Invalid> {
    if text.starts_with('/') && !text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Ok(text.to_string());
    }
    Err(
        Invalid::new(format!("`{text}` is not a path prefix")).hint(format!(
            "path prefixes start with `/` and contain no spaces, such as `/{}`",
            text.trim().trim_start_matches('/')
        )),
    )
}

/// An HTTP method of a route's `methods`, upper-cased. TRACE and CONNECT are refused: TRACE echoes
/// the injected token back to the agent, CONNECT would tunnel past the route's rules.
pub(crate) fn http_method(text: &str) -> Result<String, Invalid> {
    let method = text.trim().to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
        return Err(Invalid::new(format!("`{text}` is not an HTTP method"))
            .hint("name methods such as `GET`, `POST`, `PUT`, `PATCH`, `DELETE`"));
    }
    if method == "TRACE" || method == "CONNECT" {
        return Err(
            Invalid::new(format!("`{method}` is never allowed on a route")).hint(
                "TRACE echoes the injected token back, CONNECT skips the route's rules; remove it",
            ),
        );
    }
    Ok(method)
}

/// A branch or ref glob of the git gate's settings, by the gate's own grammar.
pub(crate) fn ref_glob(text: &str) -> Result<String, Invalid> {
    match bottle_git_gate_config::ref_glob::check(text) {
        Ok(()) => Ok(text.to_string()),
        // The error already says how to write one.
        Err(e) => Err(Invalid::new(e.to_string())),
    }
}

/// Free text that must fit on one line and hold no NUL (image names and the like).
pub(crate) fn one_line(text: &str, what: &str) -> Result<String, Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new(format!("the {what} is empty"))
            .hint(format!("give a {what}, or remove the key")));
    }
    if text.contains(['\0', '\n', '\r']) {
        return Err(
            Invalid::new(format!("the {what} contains a newline or NUL"))
                .hint(format!("write the {what} on one line")),
        );
    }
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names() {
        assert!(is_manifest_name("dev-2"));
        assert!(!is_manifest_name("Dev"));
        assert!(!is_manifest_name("2dev"));
        assert!(!is_manifest_name(""));
        assert!(!is_manifest_name("a_b"));
    }

    #[test]
    fn hosts_are_bare_and_lowercase() {
        assert_eq!(host("API.GitHub.com").unwrap(), "api.github.com");
        let err = host("https://api.github.com/").unwrap_err();
        assert!(err.hint.unwrap().contains("`api.github.com`"));
        assert!(host("api.github.com:443").is_err());
        assert!(host("bad host").is_err());
        assert!(host("-x.com").is_err());
        assert_eq!(host_pattern("*.Example.com").unwrap(), "*.example.com");
        assert_eq!(host_pattern("registry.*.org").unwrap(), "registry.*.org");
        let err = host_pattern("api-*.example.com").unwrap_err();
        assert!(err.hint.unwrap().contains("one whole label"));
        assert!(host_pattern("*").is_err());
    }

    #[test]
    fn allowlist_patterns_agree_with_the_shared_table() {
        for (pattern, host, expected) in bottle_host_pattern::conformance::CASES {
            let pattern = HostPattern::parse(&host_pattern(pattern).unwrap()).unwrap();
            assert_eq!(pattern.matches(host), *expected, "{pattern} vs {host}");
        }
    }

    #[test]
    fn ref_globs_follow_the_gate() {
        assert_eq!(ref_glob("release/*").unwrap(), "release/*");
        let err = ref_glob("a/../b").unwrap_err();
        assert!(err.message.contains("`..`"), "{}", err.message);
    }

    #[test]
    fn item_names_exclude_dot_dirs() {
        assert!(item_name("repo.git", "x").is_ok());
        assert!(item_name("..", "x").is_err());
        assert!(item_name("a/b", "x").is_err());
    }
}
