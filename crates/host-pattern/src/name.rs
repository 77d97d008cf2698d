//! Host names: DNS names and IP literals in canonical form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{HostError, Problem};

/// The longest DNS name, without the trailing dot.
pub(crate) const MAX_NAME_LEN: usize = 253;
/// The longest DNS label.
pub(crate) const MAX_LABEL_LEN: usize = 63;

/// One host: a DNS name or an IP literal, in canonical form (lower case, no trailing dot, an IP
/// in its standard text form without brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName {
    canonical: String,
    ip: Option<IpAddr>,
}

impl HostName {
    /// Parses a host name or IP literal; the error says what is wrong and how to fix it.
    pub fn parse(text: &str) -> Result<HostName, HostError> {
        let error = |problem| HostError::new(text, "host name", problem);
        if let Some(ip) = ip_literal(text) {
            return Ok(HostName::from(ip));
        }
        let labels = split_name(text).map_err(error)?;
        if labels.iter().any(|l| l.contains('*')) {
            return Err(error(Problem::Wildcard));
        }
        check_labels(&labels).map_err(error)?;
        Ok(HostName {
            canonical: labels.join("."),
            ip: None,
        })
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The address, when this is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The dot-separated labels of a DNS name (an IP literal has none).
    pub(crate) fn labels(&self) -> impl Iterator<Item = &str> {
        self.ip
            .is_none()
            .then(|| self.canonical.split('.'))
            .into_iter()
            .flatten()
    }
}

impl From<IpAddr> for HostName {
    fn from(ip: IpAddr) -> HostName {
        HostName {
            canonical: ip.to_string(),
            ip: Some(ip),
        }
    }
}

impl FromStr for HostName {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostName::parse(s)
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// The address of an IP literal (`10.0.0.1`, `::1`, `[::1]`), if `text` is one.
pub(crate) fn ip_literal(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok()
}

/// The lower-cased labels of a name, after dropping one trailing dot; checks only what every
/// name and pattern shares (characters, lengths, empty labels).
pub(crate) fn split_name(text: &str) -> Result<Vec<String>, Problem> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() {
        return Err(Problem::Empty);
    }
    if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
        let around = matches!(c, ':' | '/' | '@' | '?' | '#' | '[' | ']');
        return Err(if around {
            Problem::NotBare
        } else {
            Problem::BadChar(c)
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Problem::TooLong);
    }
    let labels: Vec<String> = name.split('.').map(str::to_ascii_lowercase).collect();
    if labels.iter().any(String::is_empty) {
        return Err(Problem::EmptyLabel);
    }
    Ok(labels)
}

/// Whether `c` may appear in a name or pattern at all.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*')
}

/// The label rules of a name whose wildcard labels (`*`) are already accounted for.
pub(crate) fn check_labels(labels: &[String]) -> Result<(), Problem> {
    for label in labels.iter().filter(|l| *l != "*") {
        if label.contains('*') {
            return Err(Problem::PartialWildcard);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(Problem::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Problem::HyphenAtEdge);
        }
    }
    let top = labels.last().map(String::as_str).unwrap_or_default();
    if top.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::NumericTopLabel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Problem {
        HostName::parse(text).unwrap_err().problem().clone()
    }

    #[test]
    fn canonical_forms() {
        for (text, canonical) in [
            ("Api.Example.COM.", "api.example.com"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("_acme-challenge.example.com", "_acme-challenge.example.com"),
            ("localhost", "localhost"),
            ("[::FFFF:10.0.0.1]", "::ffff:10.0.0.1"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("10.0.0.1", "10.0.0.1"),
        ] {
            assert_eq!(HostName::parse(text).unwrap().as_str(), canonical, "{text}");
        }
        assert!(HostName::parse("10.0.0.1").unwrap().ip().is_some());
        assert!(HostName::parse("a.b").unwrap().ip().is_none());
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(problem(""), Problem::Empty);
        assert_eq!(problem("."), Problem::Empty);
        assert_eq!(problem("a..b"), Problem::EmptyLabel);
        assert_eq!(problem(".a"), Problem::EmptyLabel);
        assert_eq!(problem("a b"), Problem::BadChar(' '));
        assert_eq!(problem("ex\u{e4}mple.com"), Problem::BadChar('\u{e4}'));
        assert_eq!(problem("https://a.com/"), Problem::NotBare);
        assert_eq!(problem("a.com:443"), Problem::NotBare);
        assert_eq!(problem("user@a.com"), Problem::NotBare);
        assert_eq!(problem("fe80::1%eth0"), Problem::NotBare);
        assert_eq!(problem("-a.com"), Problem::HyphenAtEdge);
        assert_eq!(problem("a-.com"), Problem::HyphenAtEdge);
        assert_eq!(problem("1.2.3"), Problem::NumericTopLabel);
        assert_eq!(problem("010.0.0.1"), Problem::NumericTopLabel);
        assert_eq!(problem("*.a.com"), Problem::Wildcard);
        assert_eq!(problem(&"a".repeat(64)), Problem::LabelTooLong);
        assert_eq!(problem(&"a.".repeat(128)), Problem::TooLong);
        let err = HostName::parse("a.com:443").unwrap_err().to_string();
        assert!(
            err.contains("`a.com:443`") && err.contains("without scheme"),
            "{err}"
        );
    }

    #[test]
    fn errors_echo_a_bounded_printable_excerpt() {
        let err = HostName::parse(&format!("\u{1b}[31m{}", "a".repeat(500)))
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\u{1b}'), "{err}");
        assert!(err.len() < 400, "{err}");
    }
}
