//! `grants:`: what a bottle lets each plugin have beyond the plain defaults.
//!
//! ```yaml
//! grants:
//!   postgres:                  # the plugin's name
//!     - "egress: pypi.org"     # reach this host (a host pattern is allowed: `*` = one label)
//!     - "secret: PG_PASSWORD"  # receive this secret (by name; the host injects the value)
//!     - "host-path: ~/data"    # have this host file copied into its sidecar
//!     - "publish-port: 5432"   # publish this port of its sidecar on the host's loopback
//!     - "passthrough: pypi.org"          # let this host through uninspected (no TLS interception)
//!     - "network: egress"                # a sidecar on the egress network (outside the bottle)
//!     - "ca: agent"                      # the agent CA's certificate (never its key) in its sidecar
//!     - "state: supervise-queue"         # mount a host-owned state directory
//!     - "agent-env: ANTHROPIC_BASE_URL"  # set an agent variable that routes traffic or credentials
//!     - "agent-file: /home/agent/.bashrc" # write an agent file outside its own area (or a directory)
//!     - "provision: warm the cache"      # run this provisioning step in the agent (`*`: any)
//! ```
//!
//! A CA's private key is never grantable: only bottle's built-in egress proxy and pipelock hold one.
//!
//! A plugin's contribution *requests*; the host grants a request only when the bottle names it
//! here (or, for egress, secrets and host paths, when the plugin's own section names it) and no
//! organisation policy forbids it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::invalid::Invalid;

/// The kinds of grant.
pub const KINDS: &[&str] = &[
    "egress",
    "secret",
    "host-path",
    "publish-port",
    "passthrough",
    "network",
    "ca",
    "state",
    "agent-env",
    "agent-file",
    "provision",
];

/// Kinds that look like grants but can never be given in a manifest, and why.
pub const NEVER_GRANTED: &[(&str, &str)] = &[(
    "ca-key",
    "a CA's private key stays with bottle's built-in egress proxy and pipelock; no other plugin \
     may hold one",
)];

/// One grant to one plugin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// One of [`KINDS`].
    pub kind: String,
    /// The host, secret name, host path, port, network, CA, state name, variable, agent path or
    /// provisioning step.
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
            if let Some((_, why)) = NEVER_GRANTED.iter().find(|(k, _)| *k == kind) {
                return Err(Invalid::new(format!("`{kind}` cannot be granted: {why}"))
                    .at(at)
                    .hint(format!(
                        "remove `{line}`; `ca: <name>` grants the certificate only"
                    )));
            }
            if !KINDS.contains(&kind) {
                return Err(Invalid::new(format!("`{kind}` is not a kind of grant"))
                    .at(at)
                    .hint(format!("the kinds are {}", KINDS.join(", "))));
            }
            if value.is_empty() {
                return Err(Invalid::new(format!("grant `{kind}` has no value")).at(at));
            }
            check_value(kind, value).map_err(|e| e.at(at.clone()))?;
            // Egress and passthrough grants are read like allowlist entries, so they are ones.
            let value = match kind {
                "egress" | "passthrough" => {
                    crate::names::host_pattern(value).map_err(|e| e.at(at))?
                }
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

/// The value rules of the kinds that have them.
fn check_value(kind: &str, value: &str) -> Result<(), Invalid> {
    match kind {
        "publish-port" if value.parse::<u16>().map_or(true, |p| p == 0) => {
            Err(Invalid::new(format!("`{value}` is not a port number")))
        }
        "network" if value != "egress" => Err(Invalid::new(format!(
            "`{value}` is not a network a plugin needs granted"
        ))
        .hint("the only one is `network: egress`; `internal` needs no grant")),
        "ca" if !["agent", "firewall"].contains(&value) => {
            Err(Invalid::new(format!("`{value}` is not a CA bottle mints"))
                .hint("the CAs are `agent` and `firewall`"))
        }
        "agent-file" if !value.starts_with('/') => Err(Invalid::new(format!(
            "`{value}` is not an absolute path in the agent"
        ))
        .hint("for example `agent-file: /home/agent/.bashrc`")),
        _ => Ok(()),
    }
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

    fn one(line: &str) -> Result<Vec<Grant>, String> {
        let raw = BTreeMap::from([("pg".to_owned(), vec![line.to_owned()])]);
        parse_standalone(raw).map(|mut g| g.remove("pg").unwrap())
    }

    #[test]
    fn the_sandbox_kinds_parse() {
        for line in [
            "passthrough: pypi.org",
            "network: egress",
            "ca: agent",
            "state: supervise-queue",
            "agent-env: ANTHROPIC_BASE_URL",
            "agent-file: /home/agent/.bashrc",
            "provision: *",
        ] {
            let grants = one(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(grants[0].line(), line);
        }
    }

    #[test]
    fn a_ca_key_is_never_grantable() {
        let e = one("ca-key: agent").unwrap_err();
        assert!(e.contains("`ca-key` cannot be granted"), "{e}");
        assert!(e.contains("built-in egress proxy and pipelock"), "{e}");
    }

    #[test]
    fn values_are_checked_per_kind() {
        for (line, says) in [
            ("network: internet", "`internet` is not a network"),
            ("ca: mine", "`mine` is not a CA bottle mints"),
            ("agent-file: .bashrc", "not an absolute path"),
            ("publish-port: 0", "not a port number"),
        ] {
            let e = one(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
            assert!(e.starts_with("grants.pg[0]: "), "{line}: {e}");
        }
    }
}
