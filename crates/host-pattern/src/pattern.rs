//! Allowlist host patterns: a host, or a DNS name with `*` labels, each matching one label.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{HostError, Problem};
use crate::name::{HostName, check_labels, ip_literal, split_name};

/// The label that matches any one label.
const ANY: &str = "*";

/// A host pattern of an allowlist (see the crate docs for the grammar).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPattern {
    canonical: String,
    shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Shape {
    /// An IP literal: matches that address only.
    Ip(IpAddr),
    /// A DNS name, possibly with `*` labels.
    Name { wildcard: bool },
}

impl HostPattern {
    /// Parses a pattern; the error says what is wrong and how to fix it.
    pub fn parse(text: &str) -> Result<HostPattern, HostError> {
        let error = |problem| HostError::new(text, "host pattern", problem);
        if let Some(ip) = ip_literal(text) {
            return Ok(HostPattern::from(HostName::from(ip)));
        }
        let labels = split_name(text).map_err(error)?;
        check_labels(&labels).map_err(error)?;
        let literal: Vec<&String> = labels.iter().filter(|l| *l != ANY).collect();
        let wildcard = literal.len() < labels.len();
        if literal.is_empty() {
            return Err(error(Problem::OnlyWildcards));
        }
        if wildcard
            && literal
                .iter()
                .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(error(Problem::IpWildcard));
        }
        Ok(HostPattern {
            canonical: labels.join("."),
            shape: Shape::Name { wildcard },
        })
    }

    /// The canonical text; it parses back to the same pattern.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Whether any label is `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.shape, Shape::Name { wildcard: true })
    }

    /// Whether `host` (any spelling [`HostName::parse`] takes) matches; text that is no host
    /// name matches nothing.
    pub fn matches(&self, host: &str) -> bool {
        HostName::parse(host).is_ok_and(|h| self.matches_host(&h))
    }

    /// Whether the parsed `host` matches.
    pub fn matches_host(&self, host: &HostName) -> bool {
        match (self.shape, host.ip()) {
            (Shape::Ip(ip), Some(other)) => ip == other,
            (Shape::Name { wildcard: false }, None) => self.canonical == host.as_str(),
            (Shape::Name { wildcard: true }, None) => {
                labels_agree(self.labels(), host.labels(), |p, h| p == ANY || p == h)
            }
            _ => false,
        }
    }

    /// Whether every host `other` matches, this pattern matches too (how a grant covers a
    /// requested pattern). For a plain host `other`, the same as [`HostPattern::matches_host`].
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self.shape, other.shape) {
            (Shape::Ip(a), Shape::Ip(b)) => a == b,
            (Shape::Name { .. }, Shape::Name { .. }) => {
                labels_agree(self.labels(), other.labels(), |mine, theirs| {
                    mine == ANY || mine == theirs
                })
            }
            _ => false,
        }
    }

    /// Whether some host matches both patterns.
    pub fn intersects(&self, other: &HostPattern) -> bool {
        match (self.shape, other.shape) {
            (Shape::Ip(a), Shape::Ip(b)) => a == b,
            (Shape::Name { .. }, Shape::Name { .. }) => {
                labels_agree(self.labels(), other.labels(), compatible)
            }
            _ => false,
        }
    }

    /// Whether some host this pattern matches is `domain` or one of its subdomains (how a deny
    /// list of domains reads a pattern).
    pub fn reaches_domain(&self, domain: &HostName) -> bool {
        match (self.shape, domain.ip()) {
            (Shape::Ip(ip), Some(other)) => ip == other,
            (Shape::Name { .. }, None) => {
                let mine: Vec<&str> = self.labels().collect();
                let theirs: Vec<&str> = domain.labels().collect();
                mine.len() >= theirs.len()
                    && mine[mine.len() - theirs.len()..]
                        .iter()
                        .zip(&theirs)
                        .all(|(p, d)| compatible(p, d))
            }
            _ => false,
        }
    }

    fn labels(&self) -> impl Iterator<Item = &str> {
        self.canonical.split('.')
    }
}

/// Whether two labels of patterns can stand for the same label.
fn compatible(a: &str, b: &str) -> bool {
    a == ANY || b == ANY || a == b
}

/// Whether both label sequences have the same length and agree label by label.
fn labels_agree<'a>(
    a: impl Iterator<Item = &'a str>,
    b: impl Iterator<Item = &'a str>,
    agree: impl Fn(&str, &str) -> bool,
) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.collect(), b.collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| agree(x, y))
}

impl From<HostName> for HostPattern {
    fn from(host: HostName) -> HostPattern {
        let shape = match host.ip() {
            Some(ip) => Shape::Ip(ip),
            None => Shape::Name { wildcard: false },
        };
        HostPattern {
            canonical: host.as_str().to_owned(),
            shape,
        }
    }
}

impl FromStr for HostPattern {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostPattern::parse(s)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

#[cfg(test)]
mod tests;
