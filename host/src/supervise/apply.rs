//! Applying an approved change to a running bottle.
//!
//! Two phases, so a bad change leaves everything untouched: [`prepare`] reads the live config
//! files out of the sidecars, computes the new ones and validates them with the same crates the
//! sidecar programs use; only then [`commit`] writes them back and reloads each the way its
//! [`LiveSidecar`](crate::sidecars::LiveSidecar) says (a signal, a restart, or nothing). Which
//! sidecars a change touches is theirs to say ([`crate::sidecars`]); nothing here names one.
//! A capability change writes nothing into the bottle: it saves the Dockerfile under the state
//! directory, and the bottle is stopped once the agent has its answer
//! ([`Decided::stop_for_resume`](super::Decided::stop_for_resume)).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bottle_egress_config::{Route, is_host_pattern};
use bottle_supervise_queue::{Change, CurrentConfig, Tool};
use sha2::{Digest, Sha256};

use super::targets::{ConfigTarget, Targets};
use crate::docker::{DockerError, Engine, FileUpload};
pub use crate::sidecars::Reload;
use crate::sidecars::{Edit, EditError, EditKind, merged};

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

impl From<EditError> for ApplyError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Invalid(message) => ApplyError::Invalid(message),
            EditError::NewTokenHost(message) => ApplyError::NewTokenHost(message),
        }
    }
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
            let edit = Edit::Routes {
                routes,
                allow_new_token_hosts: options.allow_new_token_hosts,
            };
            edit_sidecars(engine, targets, &edit, &mut prepared).await?;
        }
        Change::AllowHost { host, .. } => {
            let added = std::slice::from_ref(host);
            let edit = Edit::Allow {
                added,
                removed: &[],
            };
            edit_sidecars(engine, targets, &edit, &mut prepared).await?;
            prepared.current.allow = merged(&prepared.current.allow, added);
        }
        Change::GitRule { repo, policy } => {
            let edit = Edit::GitRule { repo, policy };
            edit_sidecars(engine, targets, &edit, &mut prepared).await?;
        }
        Change::Dockerfile { dockerfile } => {
            prepared.dockerfile = Some((saved_dockerfile(state_dir), dockerfile.clone()));
        }
    }
    Ok(prepared)
}

/// Apply `edit` to the live config of every sidecar of the bottle that takes it, in
/// [`crate::sidecars::ALL`]'s order; a bottle with none of them has nothing to apply it to.
async fn edit_sidecars(
    engine: &Engine,
    targets: &Targets,
    edit: &Edit<'_>,
    prepared: &mut Prepared,
) -> Result<(), ApplyError> {
    require(targets, edit.kind())?;
    for (kind, target) in targets.taking(edit.kind()) {
        let before = engine.download(&target.container, &target.path).await?;
        let after = kind.edit(&before.contents, edit, &mut prepared.current)?;
        prepared.files.push(FileChange {
            target: target.clone(),
            before,
            after,
            reload: kind.reload(),
        });
    }
    Ok(())
}

/// Whether the bottle has a sidecar that takes `kind`; the error names what it lacks.
pub fn require(targets: &Targets, kind: EditKind) -> Result<(), ApplyError> {
    if targets.takes(kind) {
        Ok(())
    } else {
        Err(ApplyError::Missing(kind.needs()))
    }
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
    let mut prepared = Prepared {
        files: Vec::new(),
        dockerfile: None,
        current: current.clone(),
    };
    let edit = Edit::Allow {
        added: &added,
        removed: &removed,
    };
    edit_sidecars(engine, targets, &edit, &mut prepared).await?;
    prepared.current.allow = merged(&[], allow);
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_edits_know_when_nothing_changes() {
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
    fn a_bottle_without_a_sidecar_for_the_change_says_what_it_lacks() {
        let none = Targets::new(Some("agent".into()));
        for (kind, lacks) in [
            (EditKind::Routes, "egress proxy"),
            (EditKind::Allow, "egress firewall"),
            (EditKind::GitRule, "git gate"),
        ] {
            let err = require(&none, kind).unwrap_err();
            assert!(err.to_string().contains(&format!("no {lacks},")), "{err}");
        }
        let pipelock = none.with_config(
            &crate::sidecars::pipelock::Pipelock,
            ConfigTarget {
                container: "p".into(),
                path: "/etc/pipelock.yaml".into(),
            },
        );
        assert!(require(&pipelock, EditKind::Allow).is_ok());
        assert!(require(&pipelock, EditKind::Routes).is_err());
    }
}
