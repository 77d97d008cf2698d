//! What a bottle's changes can touch: the containers and config files of its live sidecars
//! ([`crate::sidecars`]), found in the plan at launch and kept in the state directory, and the
//! configuration the agent may read (published into the queue as `current.json`).

use std::collections::BTreeMap;
use std::path::Path;

use bottle_supervise_queue::{CurrentConfig, Queue, STATE_DIR_NAME, Tool};
use serde::{Deserialize, Serialize};

use crate::launch::identity::Identity;
use crate::plan::model::Plan;
use crate::sidecars::{self, EditKind, LiveSidecar};

/// A config file in a running sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigTarget {
    /// The container's name.
    pub container: String,
    /// The file's path in it.
    pub path: String,
}

/// Everything a change can touch in one bottle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// The agent container.
    #[serde(default)]
    pub agent: Option<String>,
    /// Each live sidecar's config file, by [`record_key`] (`null` in records of bottles that
    /// lack the sidecar).
    #[serde(flatten)]
    configs: BTreeMap<String, Option<ConfigTarget>>,
}

/// The key of `kind` in the record: its plugin's name with `_` for `-`, the field names of the
/// first record format, so a bottle launched by an older `bottle` is still found.
fn record_key(kind: &dyn LiveSidecar) -> String {
    kind.plugin().replace('-', "_")
}

impl Targets {
    /// A bottle whose agent runs in `agent`, with no live sidecars yet.
    pub fn new(agent: Option<String>) -> Targets {
        Targets {
            agent,
            configs: BTreeMap::new(),
        }
    }

    /// With `kind`'s config at `target`.
    pub fn with_config(mut self, kind: &dyn LiveSidecar, target: ConfigTarget) -> Targets {
        self.configs.insert(record_key(kind), Some(target));
        self
    }

    /// Where `kind`'s config is in this bottle.
    pub fn config(&self, kind: &dyn LiveSidecar) -> Option<&ConfigTarget> {
        self.configs.get(&record_key(kind))?.as_ref()
    }

    /// Each live sidecar of this bottle with its config, in [`sidecars::ALL`]'s order.
    pub fn live(&self) -> impl Iterator<Item = (&'static dyn LiveSidecar, &ConfigTarget)> {
        sidecars::ALL
            .iter()
            .filter_map(|&kind| Some((kind, self.config(kind)?)))
    }

    /// Each live sidecar of this bottle that takes `edit`, with its config.
    pub fn taking(
        &self,
        edit: EditKind,
    ) -> impl Iterator<Item = (&'static dyn LiveSidecar, &ConfigTarget)> {
        self.live()
            .filter(move |(kind, _)| kind.edits().contains(&edit))
    }

    /// Whether some sidecar of this bottle takes `edit`.
    pub fn takes(&self, edit: EditKind) -> bool {
        self.taking(edit).next().is_some()
    }

    /// The tools this bottle can act on.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools = Vec::new();
        for kind in [EditKind::Routes, EditKind::Allow] {
            if self.takes(kind) {
                tools.push(kind.tool());
            }
        }
        tools.push(Tool::CapabilityBlock);
        if self.takes(EditKind::GitRule) {
            tools.push(EditKind::GitRule.tool());
        }
        tools
    }
}

const FILE: &str = "supervise-targets.json";

/// The plugin whose sidecar holds the queue; a bottle without it has nothing to publish.
const SUPERVISE_PLUGIN: &str = "supervise";

/// The targets of `plan` launched as `identity`.
pub fn from_plan(plan: &Plan, identity: &Identity) -> Targets {
    sidecars::ALL.iter().fold(
        Targets::new(Some(identity.agent_container())),
        |targets, &kind| match sidecars::in_plan(plan, kind) {
            Some((sidecar, _)) => targets.with_config(
                kind,
                ConfigTarget {
                    container: identity.sidecar_container(&sidecar.name),
                    path: kind.config_path().to_owned(),
                },
            ),
            None => targets,
        },
    )
}

/// What the agent may read about `plan`'s configuration.
pub fn current_from_plan(plan: &Plan, targets: &Targets) -> CurrentConfig {
    CurrentConfig {
        tools: targets.tools(),
        ..sidecars::current_of(plan)
    }
}

/// At launch: record the targets and publish the current config, when the bottle has a queue.
pub fn publish(plan: &Plan, identity: &Identity, state_dir: &Path) -> std::io::Result<()> {
    let queue_dir = state_dir.join(STATE_DIR_NAME);
    if !plan.sidecars.iter().any(|s| s.plugin == SUPERVISE_PLUGIN) {
        return Ok(());
    }
    let targets = from_plan(plan, identity);
    write(state_dir, &targets)?;
    Queue::at(queue_dir)
        .publish_current(&current_from_plan(plan, &targets))
        .map_err(std::io::Error::other)
}

/// Write the targets record.
pub fn write(state_dir: &Path, targets: &Targets) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(targets).expect("targets serialize");
    std::fs::write(state_dir.join(FILE), json)
}

/// Read the targets record.
pub fn read(state_dir: &Path) -> Option<Targets> {
    let bytes = std::fs::read(state_dir.join(FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecars::{egress_proxy::EgressProxy, git_gate::GitGate, pipelock::Pipelock};

    #[test]
    fn a_record_of_the_first_format_still_reads() {
        let json = r#"{"agent":"a","egress_proxy":{"container":"e","path":"/etc/bottle/egress-proxy.yaml"},
                      "pipelock":null,"git_gate":{"container":"g","path":"/etc/bottle/git-gate.yaml"}}"#;
        let targets: Targets = serde_json::from_str(json).unwrap();
        assert_eq!(targets.agent.as_deref(), Some("a"));
        assert_eq!(targets.config(&EgressProxy).unwrap().container, "e");
        assert_eq!(targets.config(&Pipelock), None);
        assert_eq!(targets.config(&GitGate).unwrap().container, "g");
        assert_eq!(
            targets.tools(),
            [
                Tool::EgressProxyBlock,
                Tool::FirewallBlock,
                Tool::CapabilityBlock,
                Tool::GitRuleBlock
            ]
        );
        let again: Targets =
            serde_json::from_slice(&serde_json::to_vec(&targets).unwrap()).unwrap();
        assert_eq!(again, targets);
    }

    #[test]
    fn a_bottle_with_only_pipelock_can_change_its_allowlist_only() {
        let target = ConfigTarget {
            container: "p".into(),
            path: Pipelock.config_path().into(),
        };
        let targets = Targets::new(None).with_config(&Pipelock, target);
        assert_eq!(
            targets.tools(),
            [Tool::FirewallBlock, Tool::CapabilityBlock]
        );
        assert_eq!(Targets::new(None).tools(), [Tool::CapabilityBlock]);
    }
}
