//! Permission requests and grants.
//!
//! A plugin's contribution *requests* things beyond the plain defaults: an egress host, a secret
//! by name, a host file copied into its sidecar, a port published on the host, a host let through
//! uninspected (`passthrough`), a sidecar on the `egress` network, a CA installed in its sidecar,
//! a host-owned state directory, an agent variable that routes traffic or carries credentials
//! ([`agent_env_is_sensitive`]), an agent file outside the plugin's own area
//! ([`plugin_agent_area`]) and a provisioning step run in the agent. The host grants a request
//! when one of these says so, and records which one in the plan (policy modules see it):
//!
//! - `manifest`: the bottle's `grants:` names it for this plugin;
//! - `section`: the plugin's own manifest section names it. For secrets and host paths any
//!   section counts; for egress and passthrough only the sections whose schema bottle itself
//!   parses and checks ([`HOST_SECTIONS`]: a route's host in `egress_proxy`, a git upstream in
//!   `git`), because the host cannot tell whether a string in a third-party section is meant as a
//!   destination;
//! - `allowlist`: an egress host the bottle's `egress.allowlist` already allows (never a
//!   passthrough: allowing a host is not letting it through uninspected);
//! - `default`: the short, fixed table [`DEFAULT_GRANTS`] of what the built-in plugins need. It
//!   applies to built-in plugins only (by their source, never by name), so a third-party component
//!   gets nothing from it.
//!
//! Anything else stops the plan with the exact lines to add to the bottle manifest. Ports are
//! never implied: publishing one always needs `grants:`. A CA private key (`ca-key`) is in the
//! default table only: no manifest line grants it.

use bottle_host_pattern::HostPattern;
use std::collections::BTreeMap;

use bottle_manifest::grants::Grant;
use serde::Serialize;

/// What the built-in plugins hold by default (applied to built-ins only). The egress proxy and the
/// git gate receive every declared secret, to refuse requests and pushes that carry one (DLP, push
/// scanning); the proxy, pipelock and the gate reach out; the proxy and pipelock intercept TLS with
/// their CA's key; the proxy gives the agent a placeholder model token; the gate writes the agent's
/// `~/.gitconfig`; supervise shares its queue with the host and registers itself in the agent.
pub const DEFAULT_GRANTS: &[(&str, &str, &str)] = &[
    ("egress-proxy", "secret", "*"),
    ("git-gate", "secret", "*"),
    ("egress-proxy", "network", "egress"),
    ("pipelock", "network", "egress"),
    ("git-gate", "network", "egress"),
    ("egress-proxy", "ca", "*"),
    ("egress-proxy", CA_KEY, "agent"),
    ("pipelock", "ca", "firewall"),
    ("pipelock", CA_KEY, "firewall"),
    ("egress-proxy", "agent-env", "CLAUDE_CODE_OAUTH_TOKEN"),
    ("git-gate", "agent-file", "/home/agent/.gitconfig"),
    ("supervise", "state", "supervise-queue"),
    ("supervise", "provision", "*"),
];

/// The request for a CA's private key; granted only by [`DEFAULT_GRANTS`], to built-ins.
pub const CA_KEY: &str = "ca-key";

/// State directories the host itself reads or writes under a bottle's state directory; a plugin
/// mounting one of these names asks for the host's, which needs a grant. Every other state name is
/// the plugin's own, under `plugins/<plugin>/`.
pub const HOST_STATE: &[&str] = &["supervise-queue", "agent-image"];

/// Where a plugin's own state directory `name` lives under the bottle's state directory: its own
/// namespace, so two plugins naming the same state never share it.
pub fn plugin_state_dir(plugin: &str, name: &str) -> String {
    format!("plugins/{plugin}/{name}")
}

/// A plugin's own area in the agent: it may write files there without a grant.
pub fn plugin_agent_area(plugin: &str) -> String {
    format!("/opt/bottle/plugins/{plugin}")
}

/// Agent variables named exactly that route traffic, carry credentials or change what runs.
pub const SENSITIVE_AGENT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "ENV",
    "BASH_ENV",
    "PROMPT_COMMAND",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PERL5LIB",
    "PERL5OPT",
    "RUBYLIB",
    "RUBYOPT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "XDG_CONFIG_HOME",
];

/// Prefixes (compared in upper case) of agent variables that need a grant.
pub const SENSITIVE_AGENT_ENV_PREFIXES: &[&str] = &[
    "ANTHROPIC_",
    "CLAUDE_",
    "GIT_",
    "SSH_",
    "LD_",
    "DYLD_",
    "NPM_CONFIG_",
    "PIP_",
    "DOCKER_",
    "AWS_",
    "GH_",
    "GITHUB_",
    "OPENAI_",
];

/// Suffixes (compared in upper case) of agent variables that need a grant.
pub const SENSITIVE_AGENT_ENV_SUFFIXES: &[&str] = &[
    "_PROXY",
    "_BASE_URL",
    "_TOKEN",
    "_API_KEY",
    "_SECRET",
    "_PASSWORD",
    "_CA_BUNDLE",
    "_CAINFO",
];

/// Whether an agent variable routes traffic, carries credentials or changes what runs, so that a
/// plugin setting it needs an `agent-env` grant.
pub fn agent_env_is_sensitive(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SENSITIVE_AGENT_ENV.contains(&upper.as_str())
        || SENSITIVE_AGENT_ENV_PREFIXES
            .iter()
            .any(|p| upper.starts_with(p))
        || SENSITIVE_AGENT_ENV_SUFFIXES
            .iter()
            .any(|s| upper.ends_with(s))
}

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
    /// A kind of `bottle_manifest::grants::KINDS`, or `ca-key`.
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
    /// those of [`HOST_SECTIONS`]) and whether it is built in; `None` when nothing grants it.
    pub fn source(
        &self,
        plugin: &str,
        builtin: bool,
        kind: &str,
        value: &str,
        sections: &SectionStrings,
    ) -> Option<GrantSource> {
        let by_default = || {
            builtin
                && DEFAULT_GRANTS
                    .iter()
                    .any(|(p, k, v)| *p == plugin && *k == kind && (*v == "*" || *v == value))
        };
        if kind == CA_KEY {
            return by_default().then_some(GrantSource::Default);
        }
        if self.by_plugin.get(plugin).is_some_and(|gs| {
            gs.iter()
                .any(|g| g.kind == kind && covers(kind, &g.value, value))
        }) {
            return Some(GrantSource::Manifest);
        }
        let named = match kind {
            "egress" | "passthrough" => sections.host_sections.iter().any(|s| names_host(s, value)),
            "secret" | "host-path" => sections.all.contains(value),
            _ => false,
        };
        if named {
            return Some(GrantSource::Section);
        }
        if kind == "egress" && self.allowlist.iter().any(|p| host_matches(p, value)) {
            return Some(GrantSource::Allowlist);
        }
        by_default().then_some(GrantSource::Default)
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

/// Whether a manifest grant's `granted` value covers the requested `value` of `kind`.
fn covers(kind: &str, granted: &str, value: &str) -> bool {
    match kind {
        "egress" | "passthrough" => host_matches(granted, value),
        "agent-file" => super::validate::is_under(value, granted.trim_end_matches('/')),
        "provision" => granted == "*" || granted == value,
        _ => granted == value,
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
            t.source("pg", false, "egress", "files.pypi.org", &none),
            Some(GrantSource::Manifest)
        );
        assert_eq!(
            t.source("pg", false, "egress", "docs.rs", &none),
            Some(GrantSource::Allowlist)
        );
        assert_eq!(t.source("pg", false, "egress", "evil.example", &none), None);
        assert_eq!(
            t.source("other", false, "egress", "files.pypi.org", &none),
            None
        );
        let section = SectionStrings::of(
            &serde_json::json!({"git": [{"upstream": "ssh://git@github.com:22/o/r.git"}]}),
        );
        assert_eq!(
            t.source("git-gate", true, "egress", "github.com", &section),
            Some(GrantSource::Section)
        );
        let third_party =
            SectionStrings::of(&serde_json::json!({"pg": {"egress": ["github.com"]}}));
        assert_eq!(
            t.source("pg", false, "egress", "github.com", &third_party),
            None
        );
        assert_eq!(
            t.source("git-gate", true, "secret", "TOKEN", &none),
            Some(GrantSource::Default)
        );
        assert_eq!(t.source("pg", false, "secret", "TOKEN", &none), None);
        assert_eq!(t.source("pg", false, "publish-port", "5432", &none), None);
    }

    #[test]
    fn the_default_table_is_for_built_ins_only() {
        let none = SectionStrings::default();
        let t = table();
        assert_eq!(
            t.source("egress-proxy", true, CA_KEY, "agent", &none),
            Some(GrantSource::Default)
        );
        // A third-party component that somehow carries a built-in's name gets nothing from it.
        assert_eq!(
            t.source("egress-proxy", false, CA_KEY, "agent", &none),
            None
        );
        assert_eq!(t.source("git-gate", false, "secret", "TOKEN", &none), None);
        assert_eq!(
            t.source("git-gate", false, "network", "egress", &none),
            None
        );
    }

    #[test]
    fn a_ca_key_is_never_granted_by_the_manifest() {
        let mut t = table();
        t.by_plugin.insert(
            "pg".into(),
            vec![Grant {
                kind: CA_KEY.into(),
                value: "agent".into(),
            }],
        );
        let none = SectionStrings::default();
        assert_eq!(t.source("pg", false, CA_KEY, "agent", &none), None);
    }

    #[test]
    fn passthrough_needs_its_own_grant_not_the_allowlist() {
        let none = SectionStrings::default();
        let mut t = table();
        assert_eq!(
            t.source("pg", false, "egress", "docs.rs", &none),
            Some(GrantSource::Allowlist)
        );
        assert_eq!(t.source("pg", false, "passthrough", "docs.rs", &none), None);
        t.by_plugin.get_mut("pg").unwrap().push(Grant {
            kind: "passthrough".into(),
            value: "docs.rs".into(),
        });
        assert_eq!(
            t.source("pg", false, "passthrough", "docs.rs", &none),
            Some(GrantSource::Manifest)
        );
    }

    #[test]
    fn sensitive_agent_variables() {
        for name in [
            "ANTHROPIC_BASE_URL",
            "OPENROUTER_BASE_URL",
            "FTP_PROXY",
            "ftp_proxy",
            "CLAUDE_CONFIG_DIR",
            "GIT_SSH_COMMAND",
            "SSH_AUTH_SOCK",
            "LD_PRELOAD",
            "PATH",
            "NODE_OPTIONS",
            "PYTHONPATH",
            "GH_TOKEN",
        ] {
            assert!(agent_env_is_sensitive(name), "{name}");
        }
        for name in ["BOTTLE_SUPERVISE_URL", "RUST_LOG", "TERM", "LANG"] {
            assert!(!agent_env_is_sensitive(name), "{name}");
        }
    }

    #[test]
    fn agent_file_grants_cover_a_directory() {
        assert!(covers(
            "agent-file",
            "/home/agent/.ssh/",
            "/home/agent/.ssh/config"
        ));
        assert!(covers(
            "agent-file",
            "/home/agent/.bashrc",
            "/home/agent/.bashrc"
        ));
        assert!(!covers(
            "agent-file",
            "/home/agent/.ssh",
            "/home/agent/.sshx"
        ));
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
            assert_eq!(
                host_matches(pattern, host),
                *expected,
                "{pattern} vs {host}"
            );
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
