//! `grants:`: what a bottle lets each plugin have beyond the plain defaults.
//!
//! ```yaml
//! grants:
//!   postgres:                  # the plugin's name
//!     - "egress: pypi.org"     # reach this host (a host pattern is allowed: `*` = one label)
//!     - "secret: PG_PASSWORD"  # receive this secret (by name; the host injects the value)
//!     - "host-path: ~/data"    # have this host file copied into its sidecar
//!     - "publish-port: 5432"   # publish this port of its sidecar on the host's loopback
//! ```
//!
//! A plugin's contribution *requests*; the host grants a request only when the bottle names it
//! here (or, for egress, secrets and host paths, when the plugin's own section names it) and no
//! organisation policy forbids it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::invalid::Invalid;

/// The kinds of grant.
pub const KINDS: &[&str] = &["egress", "secret", "host-path", "publish-port"];

/// One grant to one plugin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// `egress`, `secret`, `host-path` or `publish-port`.
    pub kind: String,
    /// The host, secret name, host path or port.
    pub value: String,
}

impl Grant {
    /// The manifest form, `kind: value`.
    pub fn line(&self) -> String {
        format!("{}: {}", self.kind, self.value)
    }
}

/// Parse `grants:` (plugin name → list of `kind: value`).
pub(crate) fn parse(
    raw: BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<Grant>>, Invalid> {
    let mut out = BTreeMap::new();
    for (plugin, lines) in raw {
        let mut grants = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let at = format!("grants.{plugin}[{i}]");
            let (kind, value) = line.split_once(':').ok_or_else(|| {
                Invalid::new(format!("`{line}` is not of the form `kind: value`"))
                    .at(at.clone())
                    .hint("for example `egress: pypi.org` or `publish-port: 5432`")
            })?;
            let (kind, value) = (kind.trim(), value.trim());
            if !KINDS.contains(&kind) {
                return Err(Invalid::new(format!("`{kind}` is not a kind of grant"))
                    .at(at)
                    .hint(format!("the kinds are {}", KINDS.join(", "))));
            }
            if value.is_empty() {
                return Err(Invalid::new(format!("grant `{kind}` has no value")).at(at));
            }
            if kind == "publish-port" && value.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(Invalid::new(format!("`{value}` is not a port number")).at(at));
            }
            // An egress grant is read like an allowlist entry, so it is one.
            let value = match kind {
                "egress" => crate::names::host_pattern(value).map_err(|e| e.at(at))?,
                _ => value.to_owned(),
            };
            grants.push(Grant {
                kind: kind.to_owned(),
                value,
            });
        }
        out.insert(plugin, grants);
    }
    Ok(out)
}

/// Parse a `grants:` mapping outside a manifest (for `bottle plugins check`); the error says
/// where and how to fix it.
pub fn parse_standalone(
    raw: BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<Grant>>, String> {
    parse(raw).map_err(|e| {
        let at = e.at.map(|a| format!("{a}: ")).unwrap_or_default();
        let hint = e.hint.map(|h| format!(" ({h})")).unwrap_or_default();
        format!("{at}{}{hint}", e.message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(line: &str) -> Result<BTreeMap<String, Vec<Grant>>, Invalid> {
        parse(BTreeMap::from([("pg".to_owned(), vec![line.to_owned()])]))
    }

    #[test]
    fn egress_grants_are_host_patterns() {
        let parsed = grants("egress: *.PyPI.org").unwrap();
        assert_eq!(parsed["pg"][0].value, "*.pypi.org");
        // Once `*` granted every host; now it is no pattern, and the error says why.
        for bad in ["*", "api-*.x.com", "https://x.com/"] {
            let err = grants(&format!("egress: {bad}")).unwrap_err();
            assert_eq!(err.at.as_deref(), Some("grants.pg[0]"), "{bad}");
            assert!(err.hint.is_some(), "{bad}: {}", err.message);
        }
        assert_eq!(grants("secret: TOKEN").unwrap()["pg"][0].value, "TOKEN");
    }
}
