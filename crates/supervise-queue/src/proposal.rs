//! What travels through the queue, and the checks every proposal passes before it is queued and
//! again before it is applied.

use bottle_egress_config::{Route, is_env_name, is_host, is_host_pattern, method_problem};
use bottle_git_gate_config::Policy;
use serde::{Deserialize, Serialize};

/// Size limits on proposals. A Dockerfile over the limit is refused, not truncated.
#[derive(Debug, Clone, Copy)]
pub struct Limits;

impl Limits {
    /// Longest justification, in bytes.
    pub const JUSTIFICATION: usize = 4 * 1024;
    /// Largest Dockerfile, in bytes.
    pub const DOCKERFILE: usize = 64 * 1024;
    /// Most routes in one proposal.
    pub const ROUTES: usize = 256;
    /// Longest URL or host.
    pub const URL: usize = 2048;
    /// Most proposals of one bottle waiting for the operator at once.
    pub const PENDING: usize = 20;
    /// Most bytes the waiting proposals of one bottle take in the queue, together.
    pub const PENDING_BYTES: u64 = 1024 * 1024;
    /// Largest queue file read (a decision holds at most a modified proposal; `current.json` a
    /// bottle's routes, allowlist and git policies). A bigger file is refused, not read.
    pub const FILE: u64 = 2 * 1024 * 1024;
}

/// The MCP tool a proposal came from. The serialized names are the tool names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// A new set of credential routes for the egress proxy.
    EgressProxyBlock,
    /// A blocked URL whose host should be allowed by the egress firewall.
    FirewallBlock,
    /// A new Dockerfile for the agent's image.
    CapabilityBlock,
    /// A change to a git entry's ref policy.
    GitRuleBlock,
}

impl Tool {
    /// Every tool, in the order they are listed.
    pub const ALL: [Tool; 4] = [
        Tool::EgressProxyBlock,
        Tool::FirewallBlock,
        Tool::CapabilityBlock,
        Tool::GitRuleBlock,
    ];

    /// The MCP tool name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::EgressProxyBlock => "egress-proxy-block",
            Tool::FirewallBlock => "firewall-block",
            Tool::CapabilityBlock => "capability-block",
            Tool::GitRuleBlock => "git-rule-block",
        }
    }
}

/// The change a proposal asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Change {
    /// Replace the egress proxy's credential routes with `routes`.
    Routes {
        /// The whole new set.
        routes: Vec<Route>,
    },
    /// Allow `host` (taken from the blocked `url`) through the egress firewall.
    AllowHost {
        /// The URL that was blocked.
        url: String,
        /// The host to allow, derived from `url`.
        host: String,
    },
    /// Rebuild the agent's image from this Dockerfile.
    Dockerfile {
        /// The whole Dockerfile.
        dockerfile: String,
    },
    /// Replace the ref policy of git entry `repo`.
    GitRule {
        /// The git entry's name.
        repo: String,
        /// The whole new policy.
        policy: Policy,
    },
}

impl Change {
    /// The tool this kind of change belongs to.
    pub fn tool(&self) -> Tool {
        match self {
            Change::Routes { .. } => Tool::EgressProxyBlock,
            Change::AllowHost { .. } => Tool::FirewallBlock,
            Change::Dockerfile { .. } => Tool::CapabilityBlock,
            Change::GitRule { .. } => Tool::GitRuleBlock,
        }
    }
}

/// A request from the agent, waiting for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Unique within the queue, `[0-9a-z-]`, sortable by time of creation.
    pub id: String,
    /// The tool it came from.
    pub tool: Tool,
    /// Why the agent asks, in its words.
    pub justification: String,
    /// RFC 3339 UTC time the proposal was made.
    pub created_at: String,
    /// What it asks for.
    pub change: Change,
}

/// What the operator decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Applied as proposed.
    Approved,
    /// Applied after the operator changed it.
    Modified,
    /// Not applied.
    Rejected,
    /// The bottle went away before a decision.
    Expired,
}

impl Status {
    /// The word shown to the agent and the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Approved => "approved",
            Status::Modified => "modified",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
        }
    }
}

/// The operator's decision on one proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The proposal's id.
    pub id: String,
    /// What was decided.
    pub status: Status,
    /// The operator's notes (the reason, for a rejection), returned to the agent.
    #[serde(default)]
    pub notes: String,
    /// RFC 3339 UTC time of the decision.
    pub decided_at: String,
    /// The change as applied, when the operator modified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Change>,
}

/// What a tool call returns to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `approved`, `modified`, `rejected` or `expired`.
    pub status: Status,
    /// The operator's notes.
    pub notes: String,
}

impl From<&Decision> for Outcome {
    fn from(decision: &Decision) -> Self {
        Outcome {
            status: decision.status,
            notes: decision.notes.clone(),
        }
    }
}

/// What the host publishes for the agent to read: the bottle's current egress routes and
/// allowlist, and each git entry's policy. Token *environment names* appear; values never do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentConfig {
    /// The egress proxy's credential routes (empty without an egress proxy).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Hosts the bottle may reach.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Git entries and their ref policies.
    #[serde(default)]
    pub git: Vec<GitEntry>,
    /// Which tools this bottle can act on (a bottle without a git gate has no git rules).
    #[serde(default)]
    pub tools: Vec<Tool>,
}

/// A git entry of the bottle, as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitEntry {
    /// The entry's name (the repository served by the gate).
    pub name: String,
    /// Its ref policy.
    pub policy: Policy,
}

/// A proposal that breaks a rule, with the field and a fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ProposalError {
    /// The offending field, such as `routes[2].host`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> ProposalError {
    ProposalError {
        field: field.into(),
        message: message.into(),
    }
}

/// Check a justification: present, bounded, printable.
pub fn check_justification(text: &str) -> Result<(), ProposalError> {
    if text.trim().is_empty() {
        return Err(problem(
            "justification",
            "is empty; say why the change is needed",
        ));
    }
    if text.len() > Limits::JUSTIFICATION {
        return Err(problem(
            "justification",
            format!(
                "is {} bytes; keep it under {} bytes",
                text.len(),
                Limits::JUSTIFICATION
            ),
        ));
    }
    check_plain_text("justification", text, true)
}

/// Refuse control characters, bidi controls and line separators in one field (see
/// [`crate::text::is_refused`]), naming the character as an escape and where it is.
pub fn check_plain_text(field: &str, text: &str, multiline: bool) -> Result<(), ProposalError> {
    let Some((position, c)) = crate::text::first_refused(text, multiline) else {
        return Ok(());
    };
    let what = if crate::text::is_bidi_control(c) {
        "the bidi control"
    } else if c.is_control() {
        "the control character"
    } else {
        "the line separator"
    };
    let allowed = if multiline {
        "plain text with newlines and tabs"
    } else {
        "one line of plain text (no newline or tab)"
    };
    Err(problem(
        field,
        format!(
            "contains {what} {} at character {}; remove it: this field takes {allowed}, and \
             no control, bidi or separator characters (they can make the operator see \
             something other than what is asked)",
            crate::text::escape_char(c),
            position + 1
        ),
    ))
}

/// Fields that hold several lines of text, where newline and tab are allowed.
const MULTILINE_FIELDS: [&str; 2] = ["justification", "dockerfile"];

/// Check every string of `value` (a serialized record) with [`check_plain_text`], named by its
/// path (`routes[2].host`). Walking the serialized form covers every field, including ones
/// added to the config crates later.
fn check_strings(path: &str, value: &serde_json::Value) -> Result<(), ProposalError> {
    match value {
        serde_json::Value::String(text) => {
            check_plain_text(path, text, MULTILINE_FIELDS.contains(&path))
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_strings(&format!("{path}[{i}]"), item)),
        serde_json::Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            check_plain_text(&field, key, false)?;
            check_strings(&field, item)
        }),
        _ => Ok(()),
    }
}

impl Change {
    /// The rules a change must follow on its own, before anything compares it with the current
    /// configuration (the host does that on approval).
    pub fn check(&self) -> Result<(), ProposalError> {
        // Before the other rules, so a refusal names the character rather than the shape.
        let value = serde_json::to_value(self).expect("a change serializes");
        check_strings("", &value)?;
        match self {
            Change::Routes { routes } => check_routes(routes),
            Change::AllowHost { url, host } => check_allow_host(url, host),
            Change::Dockerfile { dockerfile } => check_dockerfile(dockerfile),
            Change::GitRule { repo, policy } => check_git_rule(repo, policy),
        }
    }

    /// A blocked-URL change, with the host taken from `url`.
    pub fn allow_host_from_url(url: &str) -> Result<Change, ProposalError> {
        check_plain_text("url", url, false)?;
        let host = host_of_url(url)?;
        let change = Change::AllowHost {
            url: url.to_owned(),
            host,
        };
        change.check()?;
        Ok(change)
    }
}

/// The host of an `http(s)://` URL, lowercased, without port or user info.
pub fn host_of_url(url: &str) -> Result<String, ProposalError> {
    if url.len() > Limits::URL {
        return Err(problem("url", "is too long"));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| problem("url", "must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let host = host.to_ascii_lowercase();
    if !is_host(&host) {
        return Err(problem(
            "url",
            format!("`{host}` is not a host name; give the full URL that was blocked"),
        ));
    }
    Ok(host)
}

fn check_routes(routes: &[Route]) -> Result<(), ProposalError> {
    if routes.len() > Limits::ROUTES {
        return Err(problem(
            "routes",
            format!("{} routes; at most {}", routes.len(), Limits::ROUTES),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, route) in routes.iter().enumerate() {
        let field = format!("routes[{i}]");
        if !is_host(&route.host) {
            return Err(problem(
                format!("{field}.host"),
                format!(
                    "`{}` is not a host name (an exact name such as api.example.com)",
                    route.host
                ),
            ));
        }
        if !seen.insert(route.host.to_ascii_lowercase()) {
            return Err(problem(
                format!("{field}.host"),
                format!("`{}` has two routes; merge them", route.host),
            ));
        }
        for (j, prefix) in route.path_allowlist.iter().enumerate() {
            if !prefix.starts_with('/') || prefix.contains("..") {
                return Err(problem(
                    format!("{field}.path_allowlist[{j}]"),
                    format!("`{prefix}` must be an absolute path prefix without `..`"),
                ));
            }
        }
        for (j, method) in route.methods.iter().enumerate() {
            if let Some(message) = method_problem(method) {
                return Err(problem(format!("{field}.methods[{j}]"), message));
            }
        }
        if let Some(auth) = &route.auth
            && !is_env_name(&auth.token_env)
        {
            return Err(problem(
                format!("{field}.auth.token_env"),
                format!("`{}` is not an environment variable name", auth.token_env),
            ));
        }
    }
    Ok(())
}

fn check_allow_host(url: &str, host: &str) -> Result<(), ProposalError> {
    if host_of_url(url)? != *host {
        return Err(problem("host", "does not match the URL's host"));
    }
    if !is_host_pattern(host) {
        return Err(problem("host", format!("`{host}` is not a host name")));
    }
    Ok(())
}

fn check_dockerfile(dockerfile: &str) -> Result<(), ProposalError> {
    if dockerfile.len() > Limits::DOCKERFILE {
        return Err(problem(
            "dockerfile",
            format!(
                "is {} bytes; the limit is {} bytes",
                dockerfile.len(),
                Limits::DOCKERFILE
            ),
        ));
    }
    let first = dockerfile.lines().map(str::trim).find(|l| {
        !l.is_empty() && !l.starts_with('#') && !l.to_ascii_uppercase().starts_with("ARG")
    });
    match first {
        Some(line) if line.to_ascii_uppercase().starts_with("FROM ") => Ok(()),
        _ => Err(problem(
            "dockerfile",
            "must start with a FROM instruction (after comments and ARGs)",
        )),
    }
}

fn check_git_rule(repo: &str, policy: &Policy) -> Result<(), ProposalError> {
    if !bottle_git_gate_config::is_repo_name(repo) {
        return Err(problem(
            "repo",
            format!("`{repo}` is not a git entry name; see list-egress-routes for the entries"),
        ));
    }
    for (field, refs) in [
        ("policy.protected", &policy.protected),
        ("policy.allowed_refs", &policy.allowed_refs),
    ] {
        for (i, glob) in refs.iter().enumerate() {
            if let Err(e) = bottle_git_gate_config::ref_glob::check(glob) {
                return Err(problem(format!("{field}[{i}]"), e.to_string()));
            }
        }
    }
    Ok(())
}

/// Whether `id` can be a proposal id: `[0-9a-z-]`, 1 to 64 characters (so it is also a safe
/// file name in the queue).
pub fn is_proposal_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Proposal {
    /// Every rule a queued proposal follows: a plain id, a justification, a change matching the tool.
    pub fn check(&self) -> Result<(), ProposalError> {
        check_plain_text("id", &self.id, false)?;
        if !is_proposal_id(&self.id) {
            return Err(problem("id", format!("`{}` is not a proposal id", self.id)));
        }
        check_justification(&self.justification)?;
        check_plain_text("created_at", &self.created_at, false)?;
        if self.change.tool() != self.tool {
            return Err(problem(
                "change",
                format!("does not belong to tool {}", self.tool.name()),
            ));
        }
        self.change.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(
            host_of_url("https://Example.com:8443/x?y").unwrap(),
            "example.com"
        );
        assert_eq!(host_of_url("http://u:p@h.io/").unwrap(), "h.io");
        assert!(host_of_url("ftp://h.io/").is_err());
        assert!(host_of_url("https:///x").is_err());
    }

    #[test]
    fn dockerfile_rules() {
        assert!(check_dockerfile("# c\nARG X=1\nFROM debian\nRUN true\n").is_ok());
        assert!(check_dockerfile("RUN true\n").is_err());
        let big = format!("FROM x\n{}", "#".repeat(Limits::DOCKERFILE));
        let err = check_dockerfile(&big).unwrap_err();
        assert!(err.message.contains("limit"), "{err}");
    }

    #[test]
    fn git_rules_take_the_gate_ref_globs() {
        let policy = |glob: &str| Policy {
            protected: vec![glob.into()],
            ..Policy::default()
        };
        assert!(check_git_rule("app", &policy("release/**")).is_ok());
        // A control character is no whitespace, but no ref glob either.
        for bad in ["a\u{1b}[2Jb", "a/../b", ""] {
            let err = check_git_rule("app", &policy(bad)).unwrap_err();
            assert_eq!(err.field, "policy.protected[0]", "{bad:?}");
            assert!(!err.message.contains('\u{1b}'), "{err}");
        }
    }

    #[test]
    fn routes_rules() {
        let route = |host: &str| Route {
            host: host.into(),
            path_allowlist: vec![],
            methods: vec![],
            auth: None,
        };
        assert!(check_routes(&[route("api.x.com")]).is_ok());
        let mut writes = route("api.x.com");
        writes.methods = vec!["GET".into(), "PUT".into()];
        assert!(check_routes(std::slice::from_ref(&writes)).is_ok());
        writes.methods.push("TRACE".into());
        assert_eq!(
            check_routes(&[writes]).unwrap_err().field,
            "routes[0].methods[2]"
        );
        assert_eq!(
            check_routes(&[route("api.x.com"), route("API.x.com")])
                .unwrap_err()
                .field,
            "routes[1].host"
        );
        assert_eq!(
            check_routes(&[route("not a host")]).unwrap_err().field,
            "routes[0].host"
        );
    }

    fn routes_proposal(host: &str, path: &str, token_env: &str) -> Proposal {
        Proposal {
            id: "1-a".into(),
            tool: Tool::EgressProxyBlock,
            justification: "need it\n\tindented".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            change: Change::Routes {
                routes: vec![Route {
                    host: host.into(),
                    path_allowlist: vec![path.into()],
                    auth: Some(bottle_egress_config::RouteAuth {
                        scheme: bottle_egress_config::AuthScheme::Bearer,
                        token_env: token_env.into(),
                    }),
                    methods: Vec::new(),
                }],
            },
        }
    }

    #[test]
    fn control_characters_are_refused_in_every_field() {
        // Positive control: the same proposal without them passes, newline and tab included.
        assert!(
            routes_proposal("api.x.com", "/repos/", "TOKEN")
                .check()
                .is_ok()
        );
        let esc = '\u{1b}';
        let cases = [
            (
                routes_proposal(&format!("api{esc}.x.com"), "/r/", "T"),
                "routes[0].host",
            ),
            (
                routes_proposal("a.io", "/r/\u{202e}txt.exe", "T"),
                "routes[0].path_allowlist[0]",
            ),
            (
                routes_proposal("a.io", "/r/\n", "T"),
                "routes[0].path_allowlist[0]",
            ),
            (
                routes_proposal("a.io", "/r/", "T\r"),
                "routes[0].auth.token_env",
            ),
        ];
        for (proposal, field) in cases {
            let e = proposal.check().unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        let mut p = routes_proposal("a.io", "/", "T");
        p.justification = "fine\u{7f}".into();
        let e = p.check().unwrap_err();
        assert_eq!(e.field, "justification");
        assert!(e.message.contains("\\u007f at character 5"), "{e}");
        assert!(e.message.contains("remove it"), "{e}");
        p.justification = "ok".into();
        p.created_at = "2026\u{2066}".into();
        assert_eq!(p.check().unwrap_err().field, "created_at");

        let dockerfile = |text: &str| Change::Dockerfile {
            dockerfile: text.into(),
        };
        assert!(dockerfile("FROM x\n\tRUN true\n").check().is_ok());
        let e = dockerfile("FROM x\r\nRUN true\n").check().unwrap_err();
        assert_eq!(e.field, "dockerfile");
        assert!(e.message.contains("\\u000d"), "{e}");
        assert!(dockerfile("FROM x\n\u{9b}31m").check().is_err(), "C1 CSI");

        let e = Change::allow_host_from_url("https://a.io/\u{1b}[2J").unwrap_err();
        assert_eq!(e.field, "url");
        assert!(e.message.contains("one line of plain text"), "{e}");
        assert!(Change::allow_host_from_url("https://a.io/x").is_ok());

        let rule = |name: &str| Change::GitRule {
            repo: "app".into(),
            policy: Policy {
                protected: vec!["main".into()],
                allowed_refs: vec![name.into()],
                ..Policy::default()
            },
        };
        assert!(rule("agent/*").check().is_ok());
        let e = rule("agent/\u{202d}x").check().unwrap_err();
        assert_eq!(e.field, "policy.allowed_refs[0]");
        assert!(e.message.contains("bidi control \\u202d"), "{e}");
        let e = Change::GitRule {
            repo: "ap\u{1b}p".into(),
            policy: Policy::default(),
        }
        .check()
        .unwrap_err();
        assert_eq!(e.field, "repo");
    }

    #[test]
    fn tool_and_change_must_agree() {
        let p = Proposal {
            id: "1-a".into(),
            tool: Tool::FirewallBlock,
            justification: "need it".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            change: Change::Dockerfile {
                dockerfile: "FROM x".into(),
            },
        };
        assert_eq!(p.check().unwrap_err().field, "change");
    }
}
