//! Permission requests and grants.
//!
//! A plugin's contribution *requests* things beyond the plain defaults: an egress host, a secret
//! by name, a host file copied into its sidecar, a port published on the host. The host grants a
//! request when one of these says so, and records which one in the plan (policy modules see it):
//!
//! - `manifest`: the bottle's `grants:` names it for this plugin;
//! - `section`: the plugin's own manifest section names it. For secrets and host paths any
//!   section counts; for egress only the sections whose schema bottle itself parses and checks
//!   ([`HOST_SECTIONS`]: a route's host in `egress_proxy`, a git upstream in `git`), because the
//!   host cannot tell whether a string in a third-party section is meant as a destination;
//! - `allowlist`: an egress host the bottle's `egress.allowlist` already allows;
//! - `default`: the short, fixed table [`DEFAULT_GRANTS`] of what built-in security sidecars need.
//!
//! Anything else stops the plan with the exact lines to add to the bottle manifest. Ports are
//! never implied: publishing one always needs `grants:`.

use bottle_host_pattern::HostPattern;
use std::collections::BTreeMap;

use bottle_manifest::grants::Grant;
use serde::Serialize;

/// What built-in security sidecars hold by default: the egress proxy and the git gate receive
/// every declared secret, to refuse requests and pushes that carry one (DLP, push scanning).
pub const DEFAULT_GRANTS: &[(&str, &str, &str)] =
    &[("egress-proxy", "secret", "*"), ("git-gate", "secret", "*")];

/// Sections bottle defines whose hosts count as granted egress for the plugins that read them.
pub const HOST_SECTIONS: &[&str] = &["egress_proxy", "git", "egress"];

/// Why a request was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantSource {
    /// The bottle's `grants:`.
    Manifest,
    /// The plugin's own section names it.
    Section,
    /// The bottle's `egress.allowlist`.
    Allowlist,
    /// [`DEFAULT_GRANTS`].
    Default,
}

/// A granted request, as the plan records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GrantUse {
    /// The plugin.
    pub plugin: String,
    /// `egress`, `secret`, `host-path` or `publish-port`.
    pub kind: String,
    /// What was granted.
    pub value: String,
    /// Why.
    pub source: GrantSource,
}

/// The bottle's grants and what the error message needs to show the fix.
#[derive(Debug, Clone, Default)]
pub struct GrantTable {
    /// The bottle's `grants:`.
    pub by_plugin: BTreeMap<String, Vec<Grant>>,
    /// The bottle's `egress.allowlist`.
    pub allowlist: Vec<String>,
    /// The bottle's name and manifest path, for the message.
    pub bottle: String,
}

/// Whether the grant or allowlist entry `pattern` covers the requested `host` (itself a host or a
/// host pattern), read by `bottle-host-pattern` as the egress proxy reads it: `*` matches exactly
/// one DNS label. A pattern or request that does not parse grants nothing.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match (HostPattern::parse(pattern), HostPattern::parse(host)) {
        (Ok(pattern), Ok(host)) => pattern.covers(&host),
        _ => false,
    }
}

impl GrantTable {
    /// Why `plugin` may have `value` of `kind`, given the strings of its own sections (all, and
    /// those of [`HOST_SECTIONS`]); `None` when nothing grants it.
    pub fn source(
        &self,
        plugin: &str,
        kind: &str,
        value: &str,
        sections: &SectionStrings,
    ) -> Option<GrantSource> {
        let granted = |g: &Grant| {
            g.kind == kind
                && match kind {
                    "egress" => host_matches(&g.value, value),
                    _ => g.value == value,
                }
        };
        if self
            .by_plugin
            .get(plugin)
            .is_some_and(|gs| gs.iter().any(granted))
        {
            return Some(GrantSource::Manifest);
        }
        let named = match kind {
            "egress" => sections.host_sections.iter().any(|s| names_host(s, value)),
            "secret" | "host-path" => sections.all.contains(value),
            _ => false,
        };
        if named {
            return Some(GrantSource::Section);
        }
        if kind == "egress" && self.allowlist.iter().any(|p| host_matches(p, value)) {
            return Some(GrantSource::Allowlist);
        }
        DEFAULT_GRANTS
            .iter()
            .any(|(p, k, v)| *p == plugin && *k == kind && (*v == "*" || *v == value))
            .then_some(GrantSource::Default)
    }

    /// The message for a request nothing grants: what, and the exact lines to add.
    pub fn refusal(&self, plugin: &str, kind: &str, value: &str, what: &str) -> String {
        format!(
            "{what}, which bottle `{}` does not grant it. If it should, add to the bottle \
             manifest:\n\n  grants:\n    {plugin}:\n      - \"{kind}: {value}\"\n\n(an \
             organisation policy may still forbid it)",
            self.bottle
        )
    }
}

/// The strings of a plugin's configuration: every one, and those under [`HOST_SECTIONS`].
#[derive(Debug, Clone, Default)]
pub struct SectionStrings {
    /// Every string value.
    pub all: std::collections::BTreeSet<String>,
    /// String values under bottle-defined host sections.
    pub host_sections: std::collections::BTreeSet<String>,
}

impl SectionStrings {
    /// Collect from a plugin's configuration object.
    pub fn of(config: &serde_json::Value) -> Self {
        let mut strings = SectionStrings::default();
        collect(config, &mut strings.all);
        if let Some(object) = config.as_object() {
            for (key, value) in object {
                if HOST_SECTIONS.contains(&key.as_str()) {
                    collect(value, &mut strings.host_sections);
                }
            }
        }
        strings
    }
}

fn collect(value: &serde_json::Value, into: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            into.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, into)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect(v, into)),
        _ => {}
    }
}

/// Whether a section string names `host`: the host itself, or a URL / `user@host:path` whose host
/// part it is.
fn names_host(s: &str, host: &str) -> bool {
    let s = s.to_ascii_lowercase();
    let host = host.trim_start_matches("*.");
    if s == host {
        return true;
    }
    let after_scheme = s.split_once("://").map_or(s.as_str(), |(_, r)| r);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let name = authority.split(':').next().unwrap_or_default();
    name == host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> GrantTable {
        let mut by_plugin = BTreeMap::new();
        by_plugin.insert(
            "pg".to_string(),
            vec![Grant {
                kind: "egress".into(),
                value: "*.pypi.org".into(),
            }],
        );
        GrantTable {
            by_plugin,
            allowlist: vec!["docs.rs".into()],
            bottle: "dev".into(),
        }
    }

    #[test]
    fn sources_in_order() {
        let none = SectionStrings::default();
        let t = table();
        assert_eq!(
            t.source("pg", "egress", "files.pypi.org", &none),
            Some(GrantSource::Manifest)
        );
        assert_eq!(
            t.source("pg", "egress", "docs.rs", &none),
            Some(GrantSource::Allowlist)
        );
        assert_eq!(t.source("pg", "egress", "evil.example", &none), None);
        assert_eq!(t.source("other", "egress", "files.pypi.org", &none), None);
        let section = SectionStrings::of(
            &serde_json::json!({"git": [{"upstream": "ssh://git@github.com:22/o/r.git"}]}),
        );
        assert_eq!(
            t.source("git-gate", "egress", "github.com", &section),
            Some(GrantSource::Section)
        );
        let third_party =
            SectionStrings::of(&serde_json::json!({"pg": {"egress": ["github.com"]}}));
        assert_eq!(t.source("pg", "egress", "github.com", &third_party), None);
        assert_eq!(
            t.source("git-gate", "secret", "TOKEN", &none),
            Some(GrantSource::Default)
        );
        assert_eq!(t.source("pg", "secret", "TOKEN", &none), None);
        assert_eq!(t.source("pg", "publish-port", "5432", &none), None);
    }

    #[test]
    fn egress_grants_agree_with_the_proxy() {
        // The old suffix rule let `registry.*.org`-style requests through patterns the proxy
        // never honours; now both read `*` as one label.
        assert!(host_matches("registry.*.org", "registry.npmjs.org"));
        assert!(!host_matches("registry.*.org", "registry.evil.example.org"));
        assert!(!host_matches("*.pypi.org", "a.files.pypi.org"));
        assert!(!host_matches("*", "evil.example"));
        assert!(host_matches("*.pypi.org", "*.pypi.org"));
        assert!(!host_matches("files.pypi.org", "*.pypi.org"));
        for (pattern, host, expected) in bottle_host_pattern::conformance::CASES {
            assert_eq!(host_matches(pattern, host), *expected, "{pattern} vs {host}");
        }
    }

    #[test]
    fn refusal_shows_the_line_to_add() {
        let m = table().refusal(
            "pg",
            "egress",
            "evil.example",
            "plugin `pg` asks to reach `evil.example`",
        );
        assert!(
            m.contains("grants:\n    pg:\n      - \"egress: evil.example\""),
            "{m}"
        );
    }
}
