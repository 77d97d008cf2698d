//! Applying an approved change to a running bottle.
//!
//! Two phases, so a bad change leaves everything untouched: [`prepare`] reads the live config
//! files out of the sidecars, computes the new ones and validates them with the same crates the
//! sidecar programs use; only then [`commit`] writes them back and reloads (SIGHUP for the egress
//! proxy, a restart for pipelock, nothing for the gate, which reads its config on every push).
//! A capability change writes nothing into the bottle: it saves the Dockerfile under the state
//! directory, and the decider stops the bottle once the agent has its answer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bottle_egress_config::{EgressConfig, Route, is_host_pattern};
use bottle_git_gate_config::{GateConfig, Policy};
use bottle_supervise_queue::{Change, CurrentConfig, Tool};
use sha2::{Digest, Sha256};

use super::targets::{self, ConfigTarget, Targets};
use crate::docker::{DockerError, Engine, FileUpload};

/// Choices the operator makes beyond approve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Let a route send an existing token to a host it was not sent to before.
    pub allow_new_token_hosts: bool,
}

/// Why a change cannot be applied. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The change breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// A route would send a token to a host it was never sent to, and the operator did not
    /// allow that ([`ApplyOptions::allow_new_token_hosts`]).
    #[error("{0}")]
    NewTokenHost(String),
    /// The bottle lacks what the change needs.
    #[error("this bottle has no {0}, so there is nothing to apply this change to")]
    Missing(&'static str),
    /// The engine failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// Saving the Dockerfile failed.
    #[error("saving the Dockerfile: {0}")]
    Io(#[from] std::io::Error),
}

fn invalid(message: impl Into<String>) -> ApplyError {
    ApplyError::Invalid(message.into())
}

/// How a rewritten file takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// SIGHUP to the container's main process.
    Signal,
    /// Restart the container.
    Restart,
    /// Read on next use.
    Nothing,
}

/// One config file to rewrite.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// Where.
    pub target: ConfigTarget,
    /// The live file (mode and owner are kept).
    pub before: FileUpload,
    /// The new contents.
    pub after: Vec<u8>,
    /// How it takes effect.
    pub reload: Reload,
}

/// A validated change, ready to commit.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Files to rewrite, in order.
    pub files: Vec<FileChange>,
    /// A Dockerfile to save for `bottle resume`.
    pub dockerfile: Option<(PathBuf, String)>,
    /// What the agent may read after the change.
    pub current: CurrentConfig,
}

impl Prepared {
    /// A unified diff of every file the change rewrites.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            let label = format!("{}:{}", f.target.container, f.target.path);
            out.push_str(&super::preview::unified(
                &String::from_utf8_lossy(&f.before.contents),
                &String::from_utf8_lossy(&f.after),
                &label,
            ));
        }
        if let Some((path, text)) = &self.dockerfile {
            let before = std::fs::read_to_string(path).unwrap_or_default();
            out.push_str(&super::preview::unified(&before, text, "agent Dockerfile"));
        }
        out
    }

    /// SHA-256 (hex) of the applied content: every new file, in order.
    pub fn sha256(&self) -> String {
        let mut hash = Sha256::new();
        for f in &self.files {
            hash.update(&f.after);
        }
        if let Some((_, text)) = &self.dockerfile {
            hash.update(text.as_bytes());
        }
        hex::encode(hash.finalize())
    }
}

/// Where an approved Dockerfile waits for `bottle resume`.
pub fn saved_dockerfile(state_dir: &Path) -> PathBuf {
    state_dir.join("agent-image").join("Dockerfile")
}

/// Whether a capability change waits for `bottle resume` (the state directory must be kept).
pub fn resume_pending(state_dir: &Path) -> bool {
    saved_dockerfile(state_dir).exists()
}

/// Read, change and validate; touches nothing.
pub async fn prepare(
    engine: &Engine,
    targets: &Targets,
    state_dir: &Path,
    current: &CurrentConfig,
    change: &Change,
    options: ApplyOptions,
) -> Result<Prepared, ApplyError> {
    change
        .check()
        .map_err(|e| invalid(format!("the change is malformed: {e}")))?;
    let mut prepared = Prepared {
        files: Vec::new(),
        dockerfile: None,
        current: current.clone(),
    };
    match change {
        Change::Routes { routes } => {
            let target = targets
                .egress_proxy
                .as_ref()
                .ok_or(ApplyError::Missing("egress proxy"))?;
            let before = engine.download(&target.container, &target.path).await?;
            let old = parse_egress(&before.contents)?;
            let new = with_routes(&old, routes, options)?;
            prepared.current.routes = new.routes.clone();
            prepared.current.allow = merged(&prepared.current.allow, &new.allow);
            prepared.files.push(egress_file(target, before, &new));
        }
        Change::AllowHost { host, .. } => {
            if targets.egress_proxy.is_none() && targets.pipelock.is_none() {
                return Err(ApplyError::Missing("egress firewall"));
            }
            if let Some(target) = &targets.egress_proxy {
                let before = engine.download(&target.container, &target.path).await?;
                let new = with_allowed(&parse_egress(&before.contents)?, host)?;
                prepared.files.push(egress_file(target, before, &new));
            }
            if let Some(target) = &targets.pipelock {
                let before = engine.download(&target.container, &target.path).await?;
                let after = pipelock_with_allowed(&before.contents, host)?;
                prepared.files.push(FileChange {
                    target: target.clone(),
                    before,
                    after,
                    reload: Reload::Restart,
                });
            }
            prepared.current.allow = merged(&prepared.current.allow, std::slice::from_ref(host));
        }
        Change::GitRule { repo, policy } => {
            let target = targets
                .git_gate
                .as_ref()
                .ok_or(ApplyError::Missing("git gate"))?;
            let before = engine.download(&target.container, &target.path).await?;
            let old: GateConfig = serde_yaml_ng::from_slice(&before.contents)
                .map_err(|e| invalid(format!("the gate's live config does not parse: {e}")))?;
            let new = with_policy(&old, repo, policy)?;
            prepared.current.git = targets::git_entries(&new);
            let after = serde_yaml_ng::to_string(&new).expect("gate config serializes");
            prepared.files.push(FileChange {
                target: target.clone(),
                before,
                after: after.into_bytes(),
                reload: Reload::Nothing,
            });
        }
        Change::Dockerfile { dockerfile } => {
            prepared.dockerfile = Some((saved_dockerfile(state_dir), dockerfile.clone()));
        }
    }
    Ok(prepared)
}

/// Write every file and reload; save the Dockerfile.
pub async fn commit(engine: &Engine, prepared: &Prepared) -> Result<(), ApplyError> {
    for f in &prepared.files {
        let mut file = f.before.clone();
        file.contents = f.after.clone();
        engine.upload(&f.target.container, &[file], None).await?;
        match f.reload {
            Reload::Signal => engine.signal(&f.target.container, "SIGHUP").await?,
            Reload::Restart => engine.restart(&f.target.container, 5).await?,
            Reload::Nothing => {}
        }
    }
    if let Some((path, text)) = &prepared.dockerfile {
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// A change the operator makes to a running bottle directly, without a proposal (the dashboard's
/// `e`). Applied through the same validation as an approved proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorEdit {
    /// The whole new set of credential routes, applied as a routes proposal would be (a token
    /// still may not move to a new host unless [`ApplyOptions`] says so).
    Routes(Vec<Route>),
    /// The whole new allowlist: hosts missing from the current one are added to the egress
    /// proxy's `allow` (and pipelock's `api_allowlist`), hosts left out are removed from both.
    Allow(Vec<String>),
}

impl OperatorEdit {
    /// The tool whose kind of change this is (for the audit log).
    pub fn tool(&self) -> Tool {
        match self {
            OperatorEdit::Routes(_) => Tool::EgressProxyBlock,
            OperatorEdit::Allow(_) => Tool::FirewallBlock,
        }
    }

    /// Whether applying it to `current` would change nothing.
    pub fn is_noop(&self, current: &CurrentConfig) -> bool {
        match self {
            OperatorEdit::Routes(routes) => *routes == current.routes,
            OperatorEdit::Allow(allow) => {
                let set = |l: &[String]| -> BTreeSet<String> {
                    l.iter().map(|h| h.to_ascii_lowercase()).collect()
                };
                set(allow) == set(&current.allow)
            }
        }
    }
}

/// Like [`prepare`], for an operator's direct edit.
pub async fn prepare_edit(
    engine: &Engine,
    targets: &Targets,
    state_dir: &Path,
    current: &CurrentConfig,
    edit: &OperatorEdit,
    options: ApplyOptions,
) -> Result<Prepared, ApplyError> {
    let allow = match edit {
        OperatorEdit::Routes(routes) => {
            let change = Change::Routes {
                routes: routes.clone(),
            };
            return prepare(engine, targets, state_dir, current, &change, options).await;
        }
        OperatorEdit::Allow(allow) => allow,
    };
    for (i, host) in allow.iter().enumerate() {
        if !is_host_pattern(host) {
            return Err(invalid(format!(
                "allow[{i}]: `{host}` is not a host or host pattern (such as api.example.com or \
                 *.example.com; `*` stands for one whole label)"
            )));
        }
    }
    let has = |list: &[String], host: &str| list.iter().any(|h| h.eq_ignore_ascii_case(host));
    let added: Vec<String> = allow
        .iter()
        .filter(|h| !has(&current.allow, h))
        .cloned()
        .collect();
    let removed: Vec<String> = current
        .allow
        .iter()
        .filter(|h| !has(allow, h))
        .cloned()
        .collect();
    if let Some(route) = current.routes.iter().find(|r| has(&removed, &r.host)) {
        return Err(invalid(format!(
            "`{}` is the host of a credential route, so it stays allowed; remove the route \
             first (edit the routes)",
            route.host
        )));
    }
    if targets.egress_proxy.is_none() && targets.pipelock.is_none() {
        return Err(ApplyError::Missing("egress firewall"));
    }
    let mut prepared = Prepared {
        files: Vec::new(),
        dockerfile: None,
        current: current.clone(),
    };
    if let Some(target) = &targets.egress_proxy {
        let before = engine.download(&target.container, &target.path).await?;
        let mut new = parse_egress(&before.contents)?;
        new.allow.retain(|h| !has(&removed, h));
        new.allow = merged(&new.allow, &added);
        let new = validated(new)?;
        prepared.files.push(egress_file(target, before, &new));
    }
    if let Some(target) = &targets.pipelock {
        let before = engine.download(&target.container, &target.path).await?;
        let after = pipelock_with_allow_delta(&before.contents, &added, &removed)?;
        prepared.files.push(FileChange {
            target: target.clone(),
            before,
            after,
            reload: Reload::Restart,
        });
    }
    prepared.current.allow = merged(&[], allow);
    Ok(prepared)
}

fn parse_egress(bytes: &[u8]) -> Result<EgressConfig, ApplyError> {
    serde_yaml_ng::from_slice(bytes).map_err(|e| {
        invalid(format!(
            "the egress proxy's live config does not parse: {e}"
        ))
    })
}

fn egress_file(target: &ConfigTarget, before: FileUpload, new: &EgressConfig) -> FileChange {
    let after = serde_yaml_ng::to_string(new).expect("egress config serializes");
    FileChange {
        target: target.clone(),
        before,
        after: after.into_bytes(),
        reload: Reload::Signal,
    }
}

fn merged(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    for host in b {
        if !out.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            out.push(host.clone());
        }
    }
    out
}

fn validated(config: EgressConfig) -> Result<EgressConfig, ApplyError> {
    config
        .validate()
        .map_err(|e| invalid(format!("the new egress proxy config is invalid: {e}")))?;
    Ok(config)
}

/// The egress config with `routes` as its whole route set. A token may only go to a host it
/// already went to, unless the operator says otherwise; a token the proxy does not hold is refused.
pub fn with_routes(
    old: &EgressConfig,
    routes: &[Route],
    options: ApplyOptions,
) -> Result<EgressConfig, ApplyError> {
    let held: BTreeSet<&str> = old
        .routes
        .iter()
        .filter_map(|r| r.auth.as_ref().map(|a| a.token_env.as_str()))
        .collect();
    for (i, route) in routes.iter().enumerate() {
        let Some(auth) = &route.auth else { continue };
        if !held.contains(auth.token_env.as_str()) {
            return Err(invalid(format!(
                "routes[{i}].auth.token_env: `{}` is not a token this bottle holds (it holds: {}); \
                 a new credential needs the bottle manifest changed and a new launch",
                auth.token_env,
                held.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        let sent_before = old.routes.iter().any(|o| {
            o.host.eq_ignore_ascii_case(&route.host)
                && o.auth.as_ref().map(|a| &a.token_env) == Some(&auth.token_env)
        });
        if !sent_before && !options.allow_new_token_hosts {
            return Err(ApplyError::NewTokenHost(format!(
                "routes[{i}] would send the token in `{}` to `{}`, which it was never sent to; \
                 if that is intended, approve with --allow-new-token-host (in the dashboard: `A`)",
                auth.token_env, route.host
            )));
        }
    }
    let mut new = old.clone();
    new.routes = routes.to_vec();
    let route_hosts: Vec<String> = routes.iter().map(|r| r.host.clone()).collect();
    new.allow = merged(&old.allow, &route_hosts);
    validated(new)
}

/// The egress config with `host` allowed.
pub fn with_allowed(old: &EgressConfig, host: &str) -> Result<EgressConfig, ApplyError> {
    let mut new = old.clone();
    new.allow = merged(&old.allow, &[host.to_owned()]);
    validated(new)
}

/// pipelock's config with `host` in `api_allowlist`; everything else kept as it is.
pub fn pipelock_with_allowed(yaml: &[u8], host: &str) -> Result<Vec<u8>, ApplyError> {
    pipelock_with_allow_delta(yaml, &[host.to_owned()], &[])
}

/// pipelock's config with `added` in `api_allowlist` and `removed` taken out of it; everything
/// else kept as it is.
pub fn pipelock_with_allow_delta(
    yaml: &[u8],
    added: &[String],
    removed: &[String],
) -> Result<Vec<u8>, ApplyError> {
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_slice(yaml)
        .map_err(|e| invalid(format!("pipelock's live config does not parse: {e}")))?;
    let list = value
        .get_mut("api_allowlist")
        .and_then(|v| v.as_sequence_mut())
        .ok_or_else(|| invalid("pipelock's live config has no api_allowlist"))?;
    list.retain(|h| {
        !h.as_str()
            .is_some_and(|h| removed.iter().any(|r| r.eq_ignore_ascii_case(h)))
    });
    for host in added {
        if !list.iter().any(|h| h.as_str() == Some(host)) {
            list.push(serde_yaml_ng::Value::String(host.clone()));
        }
    }
    Ok(serde_yaml_ng::to_string(&value)
        .expect("yaml serializes")
        .into_bytes())
}

/// The gate config with `repo`'s policy replaced.
pub fn with_policy(
    old: &GateConfig,
    repo: &str,
    policy: &Policy,
) -> Result<GateConfig, ApplyError> {
    let mut new = old.clone();
    let names: Vec<&str> = old.repos.iter().map(|r| r.name.as_str()).collect();
    let entry = new
        .repos
        .iter_mut()
        .find(|r| r.name == repo)
        .ok_or_else(|| {
            invalid(format!(
                "repo: `{repo}` is not a git entry of this bottle (it has: {})",
                names.join(", ")
            ))
        })?;
    entry.policy = policy.clone();
    new.check()
        .map_err(|e| invalid(format!("the new gate config is invalid: {e}")))?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottle_egress_config::{AuthScheme, RouteAuth, TlsConfig};

    fn route(host: &str, token: Option<&str>) -> Route {
        Route {
            host: host.into(),
            path_allowlist: vec!["/api/".into()],
            methods: vec![],
            auth: token.map(|t| RouteAuth {
                scheme: AuthScheme::Bearer,
                token_env: t.into(),
            }),
        }
    }

    fn egress() -> EgressConfig {
        EgressConfig {
            version: bottle_egress_config::FORMAT_VERSION,
            listen: "0.0.0.0:9099".into(),
            allow: vec!["api.github.com".into()],
            firewall: true,
            upstream_proxy: None,
            tls: TlsConfig {
                ca_cert: "/etc/bottle/ca.pem".into(),
                ca_key: "/etc/bottle/ca.key".into(),
                upstream_roots: vec![],
            },
            routes: vec![route("api.github.com", Some("ROUTE_TOKEN_0"))],
            passthrough: vec![],
            ssrf: Default::default(),
            dlp: Default::default(),
            learn: false,
        }
    }

    #[test]
    fn a_token_may_not_move_to_a_new_host_without_the_operator() {
        let routes = [route("evil.example", Some("ROUTE_TOKEN_0"))];
        let err = with_routes(&egress(), &routes, ApplyOptions::default()).unwrap_err();
        assert!(matches!(err, ApplyError::NewTokenHost(_)), "{err:?}");
        assert!(err.to_string().contains("--allow-new-token-host"), "{err}");
        let ok = with_routes(
            &egress(),
            &routes,
            ApplyOptions {
                allow_new_token_hosts: true,
            },
        )
        .unwrap();
        assert!(ok.allow.contains(&"evil.example".to_string()));
    }

    #[test]
    fn unknown_tokens_are_refused_and_known_routes_pass() {
        let err = with_routes(
            &egress(),
            &[route("api.github.com", Some("STOLEN"))],
            ApplyOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("not a token this bottle holds"),
            "{err}"
        );
        let routes = [
            route("api.github.com", Some("ROUTE_TOKEN_0")),
            route("docs.example", None),
        ];
        let new = with_routes(&egress(), &routes, ApplyOptions::default()).unwrap();
        assert_eq!(new.routes.len(), 2);
        assert!(new.allow.contains(&"docs.example".to_string()));
    }

    #[test]
    fn a_method_change_applies_and_a_trace_does_not() {
        let mut writes = route("api.github.com", Some("ROUTE_TOKEN_0"));
        writes.methods = vec!["GET".into(), "POST".into()];
        let new = with_routes(&egress(), &[writes.clone()], ApplyOptions::default()).unwrap();
        assert_eq!(new.routes[0].methods, ["GET", "POST"]);
        // What the proxy reloads carries the methods.
        let text = serde_yaml_ng::to_string(&new).unwrap();
        assert!(text.contains("methods:\n  - GET\n  - POST"), "{text}");
        writes.methods.push("TRACE".into());
        let err = with_routes(&egress(), &[writes], ApplyOptions::default()).unwrap_err();
        assert!(err.to_string().contains("routes[0].methods[2]"), "{err}");
    }

    #[test]
    fn allow_and_pipelock() {
        let new = with_allowed(&egress(), "pypi.org").unwrap();
        assert_eq!(new.allow, ["api.github.com", "pypi.org"]);
        let yaml = b"version: 1\napi_allowlist:\n- a.example\nmode: strict\n";
        let after = String::from_utf8(pipelock_with_allowed(yaml, "b.example").unwrap()).unwrap();
        assert!(
            after.contains("- b.example") && after.contains("mode: strict"),
            "{after}"
        );
        assert!(pipelock_with_allowed(b"mode: strict\n", "b.example").is_err());
    }

    #[test]
    fn allowlist_edits_add_and_remove_and_know_when_nothing_changes() {
        let yaml = b"api_allowlist:\n- a.example\n- B.example\nmode: strict\n";
        let after =
            pipelock_with_allow_delta(yaml, &["c.example".into()], &["b.example".into()]).unwrap();
        let after = String::from_utf8(after).unwrap();
        assert!(
            after.contains("- a.example\n- c.example") && !after.contains("B.example"),
            "{after}"
        );
        assert!(after.contains("mode: strict"), "{after}");
        let current = CurrentConfig {
            allow: vec!["a.example".into(), "b.example".into()],
            ..Default::default()
        };
        let same = OperatorEdit::Allow(vec!["B.example".into(), "a.example".into()]);
        assert!(same.is_noop(&current));
        assert!(!OperatorEdit::Allow(vec!["a.example".into()]).is_noop(&current));
        assert!(OperatorEdit::Routes(vec![]).is_noop(&current));
        assert_eq!(OperatorEdit::Routes(vec![]).tool(), Tool::EgressProxyBlock);
    }

    #[test]
    fn git_rule_needs_a_known_repo() {
        let gate = GateConfig {
            version: bottle_git_gate_config::FORMAT_VERSION,
            listen: "0.0.0.0:9418".into(),
            repos: vec![bottle_git_gate_config::GateRepo {
                name: "app".into(),
                upstream: "ssh://git@h/app.git".into(),
                identity_file: "/k".into(),
                known_hosts: "/kh".into(),
                policy: Policy::default(),
            }],
            secret_env: vec![],
        };
        let policy = Policy {
            protected: vec!["main".into()],
            ..Default::default()
        };
        assert_eq!(
            with_policy(&gate, "app", &policy).unwrap().repos[0].policy,
            policy
        );
        let err = with_policy(&gate, "other", &policy).unwrap_err();
        assert!(err.to_string().contains("it has: app"), "{err}");
    }
}
