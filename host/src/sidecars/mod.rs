//! The built-in sidecars whose configuration the host reads and edits while a bottle runs, one
//! module each, all behind one trait ([`LiveSidecar`]).
//!
//! A sidecar's plugin renders its config file at launch; after that the host is the only one that
//! changes it (supervise approvals, the dashboard's direct edits). Everything the host must know
//! about such a sidecar lives in its module here: which plugin makes it, where its config file is
//! and in what format, how a rewrite takes effect, which kinds of change it takes and how it
//! applies them, what of its config the agent may read, and what it adds to the policy view.
//! `supervise`, the dashboard and the policy view iterate over [`ALL`] and name none of them.
//!
//! Adding a sidecar with live edits: one module here, one line in [`ALL`].
//!
//! Architecture Invariant: a config is changed only by parsing it with the crate its program uses
//! (or, for pipelock, by editing the one key bottle owns), validating the result the same way, and
//! serializing it again; a change that does not validate is an [`EditError`] and nothing is
//! written.

pub mod egress_proxy;
pub mod git_gate;
pub mod pipelock;

use bottle_egress_config::Route;
use bottle_git_gate_config::Policy;
use bottle_plan_view::PlanView;
use bottle_supervise_queue::{CurrentConfig, Tool};

use crate::plan::model::{Plan, SidecarPlan};

/// Every built-in sidecar with a live config, in the order changes are applied to them.
pub static ALL: [&dyn LiveSidecar; 3] = [
    &egress_proxy::EgressProxy,
    &pipelock::Pipelock,
    &git_gate::GitGate,
];

/// How a rewritten config file takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// SIGHUP to the container's main process.
    Signal,
    /// Restart the container.
    Restart,
    /// Read on next use.
    Nothing,
}

/// The format of a live config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
}

/// A kind of change a running bottle can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditKind {
    /// The credential routes.
    Routes,
    /// The allowlist of hosts.
    Allow,
    /// A git entry's push policy.
    GitRule,
}

impl EditKind {
    /// The supervise tool that asks for this kind of change.
    pub fn tool(self) -> Tool {
        match self {
            EditKind::Routes => Tool::EgressProxyBlock,
            EditKind::Allow => Tool::FirewallBlock,
            EditKind::GitRule => Tool::GitRuleBlock,
        }
    }

    /// What a bottle lacks when none of its sidecars takes this kind of change.
    pub fn needs(self) -> &'static str {
        match self {
            EditKind::Routes => "egress proxy",
            EditKind::Allow => "egress firewall",
            EditKind::GitRule => "git gate",
        }
    }
}

/// A change to the live config of every sidecar that takes its kind.
#[derive(Debug, Clone, Copy)]
pub enum Edit<'a> {
    /// `routes` become the whole route set.
    Routes {
        /// The new routes.
        routes: &'a [Route],
        /// Let a route send an existing token to a host it was not sent to before.
        allow_new_token_hosts: bool,
    },
    /// Hosts added to and removed from the allowlist.
    Allow {
        /// Hosts to add.
        added: &'a [String],
        /// Hosts to take out (compared without case).
        removed: &'a [String],
    },
    /// `repo`'s policy becomes `policy`.
    GitRule {
        /// The git entry's name.
        repo: &'a str,
        /// Its new policy.
        policy: &'a Policy,
    },
}

impl Edit<'_> {
    /// Its kind.
    pub fn kind(&self) -> EditKind {
        match self {
            Edit::Routes { .. } => EditKind::Routes,
            Edit::Allow { .. } => EditKind::Allow,
            Edit::GitRule { .. } => EditKind::GitRule,
        }
    }
}

/// Why an edit cannot be applied to a sidecar's config. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The live config does not parse, or the new one breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// A route would send a token to a host it was never sent to, and the operator did not allow
    /// that.
    #[error("{0}")]
    NewTokenHost(String),
}

pub(crate) fn invalid(message: impl Into<String>) -> EditError {
    EditError::Invalid(message.into())
}

/// A built-in sidecar whose config file the host reads and rewrites while the bottle runs.
pub trait LiveSidecar: Sync {
    /// The plugin that renders it (the `plugin` of its sidecars in the plan).
    fn plugin(&self) -> &'static str;
    /// Its name in messages to the operator.
    fn label(&self) -> &'static str;
    /// Its config file's path in the container.
    fn config_path(&self) -> &'static str;
    /// Its config file's format.
    fn format(&self) -> Format;
    /// How a rewrite of the config takes effect.
    fn reload(&self) -> Reload;
    /// The kinds of change it takes.
    fn edits(&self) -> &'static [EditKind];
    /// Add what the agent may read about `config` (its live config file) to `current`.
    fn read_current(&self, config: &[u8], current: &mut CurrentConfig);
    /// `config` with `edit` applied and validated; `current` updated where the sidecar owns what
    /// the agent reads. Called only for kinds in [`LiveSidecar::edits`].
    fn edit(
        &self,
        config: &[u8],
        edit: &Edit<'_>,
        current: &mut CurrentConfig,
    ) -> Result<Vec<u8>, EditError>;
    /// Add what the policy view shows of `sidecar`'s config to `view`.
    fn view(&self, _sidecar: &SidecarPlan, _config: &[u8], _view: &mut PlanView) {}
}

impl std::fmt::Debug for dyn LiveSidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.plugin())
    }
}

/// The live sidecar rendered by `plugin`, if it is one.
pub fn by_plugin(plugin: &str) -> Option<&'static dyn LiveSidecar> {
    ALL.iter().copied().find(|s| s.plugin() == plugin)
}

/// The first sidecar of `kind` in `plan` that has its config file, with the file's contents.
pub fn in_plan<'a>(plan: &'a Plan, kind: &dyn LiveSidecar) -> Option<(&'a SidecarPlan, &'a [u8])> {
    plan.sidecars
        .iter()
        .filter(|s| s.plugin == kind.plugin())
        .find_map(|s| {
            s.files
                .iter()
                .find(|f| f.path == kind.config_path())
                .map(|f| (s, f.contents.as_slice()))
        })
}

/// What the agent may read about `plan`'s live configs.
pub fn current_of(plan: &Plan) -> CurrentConfig {
    let mut current = CurrentConfig::default();
    for kind in ALL {
        if let Some((_, config)) = in_plan(plan, kind) {
            kind.read_current(config, &mut current);
        }
    }
    current
}

/// Add every live sidecar's part of the policy view of `plan` to `view`.
pub fn add_to_view(plan: &Plan, view: &mut PlanView) {
    for kind in ALL {
        if let Some((sidecar, config)) = in_plan(plan, kind) {
            kind.view(sidecar, config, view);
        }
    }
}

/// `a` followed by the hosts of `b` it lacks (compared without case).
pub fn merged(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    for host in b {
        if !out.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            out.push(host.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_taken_by_some_sidecar_and_plugins_are_unique() {
        for kind in [EditKind::Routes, EditKind::Allow, EditKind::GitRule] {
            assert!(
                ALL.iter().any(|s| s.edits().contains(&kind)),
                "{kind:?} has no sidecar"
            );
        }
        for (i, s) in ALL.iter().enumerate() {
            assert_eq!(by_plugin(s.plugin()).map(|f| f.plugin()), Some(s.plugin()));
            assert!(ALL[i + 1..].iter().all(|o| o.plugin() != s.plugin()));
            assert!(s.config_path().starts_with('/'), "{s:?}");
        }
        assert!(by_plugin("supervise").is_none());
    }
}
