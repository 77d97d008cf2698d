//! The git gate: each git entry's push policy, in [`bottle_git_gate_config::GateConfig`] (YAML),
//! read by the gate on every push, so a rewrite needs no reload.

use bottle_git_gate_config::{GateConfig, Policy};
use bottle_supervise_queue::{CurrentConfig, GitEntry};

use super::{Edit, EditError, EditKind, Format, LiveSidecar, Reload, invalid};

/// The git gate.
#[derive(Debug, Clone, Copy)]
pub struct GitGate;

impl LiveSidecar for GitGate {
    fn plugin(&self) -> &'static str {
        "git-gate"
    }

    fn label(&self) -> &'static str {
        "git gate"
    }

    fn config_path(&self) -> &'static str {
        bottle_git_gate_config::DEFAULT_PATH
    }

    fn format(&self) -> Format {
        Format::Yaml
    }

    fn reload(&self) -> Reload {
        Reload::Nothing
    }

    fn edits(&self) -> &'static [EditKind] {
        &[EditKind::GitRule]
    }

    fn read_current(&self, config: &[u8], current: &mut CurrentConfig) {
        if let Ok(config) = yaml_serde::from_slice::<GateConfig>(config) {
            current.git = git_entries(&config);
        }
    }

    fn edit(
        &self,
        config: &[u8],
        edit: &Edit<'_>,
        current: &mut CurrentConfig,
    ) -> Result<Vec<u8>, EditError> {
        let Edit::GitRule { repo, policy } = *edit else {
            return Err(invalid("the git gate takes only git rules"));
        };
        let old: GateConfig = yaml_serde::from_slice(config)
            .map_err(|e| invalid(format!("the gate's live config does not parse: {e}")))?;
        let new = with_policy(&old, repo, policy)?;
        current.git = git_entries(&new);
        Ok(yaml_serde::to_string(&new)
            .expect("gate config serializes")
            .into_bytes())
    }
}

/// The git entries of a gate config as the agent sees them.
pub fn git_entries(config: &GateConfig) -> Vec<GitEntry> {
    config
        .repos
        .iter()
        .map(|r| GitEntry {
            name: r.name.clone(),
            policy: r.policy.clone(),
        })
        .collect()
}

/// The gate config with `repo`'s policy replaced.
pub fn with_policy(old: &GateConfig, repo: &str, policy: &Policy) -> Result<GateConfig, EditError> {
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
