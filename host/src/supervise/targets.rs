//! What a bottle's changes can touch: the containers and config files of its egress proxy,
//! pipelock and git gate, found in the plan at launch and kept in the state directory, and the
//! configuration the agent may read (published into the queue as `current.json`).

use std::path::Path;

use bottle_egress_config::EgressConfig;
use bottle_git_gate_config::GateConfig;
use bottle_supervise_queue::{CurrentConfig, GitEntry, Queue, STATE_DIR_NAME, Tool};
use serde::{Deserialize, Serialize};

use crate::launch::identity::Identity;
use crate::plan::model::{Plan, SidecarPlan};

/// The plugin, sidecar file and reload method of each thing a change can touch.
pub const EGRESS_PROXY: (&str, &str) = ("egress-proxy", bottle_egress_config::DEFAULT_PATH);
/// pipelock's config file.
pub const PIPELOCK: (&str, &str) = ("pipelock", "/etc/pipelock.yaml");
/// The git gate's config file.
pub const GIT_GATE: (&str, &str) = ("git-gate", "/etc/bottle/git-gate.yaml");

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
    /// The egress proxy's config (reloaded with SIGHUP).
    #[serde(default)]
    pub egress_proxy: Option<ConfigTarget>,
    /// pipelock's config (applied by a restart).
    #[serde(default)]
    pub pipelock: Option<ConfigTarget>,
    /// The git gate's config (read on every push).
    #[serde(default)]
    pub git_gate: Option<ConfigTarget>,
}

impl Targets {
    /// The tools this bottle can act on.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools = Vec::new();
        if self.egress_proxy.is_some() {
            tools.push(Tool::EgressProxyBlock);
        }
        if self.egress_proxy.is_some() || self.pipelock.is_some() {
            tools.push(Tool::FirewallBlock);
        }
        tools.push(Tool::CapabilityBlock);
        if self.git_gate.is_some() {
            tools.push(Tool::GitRuleBlock);
        }
        tools
    }
}

const FILE: &str = "supervise-targets.json";

/// The first sidecar of `plugin` that has a file at `path`, with the file's contents.
pub fn sidecar_file<'a>(
    plan: &'a Plan,
    (plugin, path): (&str, &str),
) -> Option<(&'a SidecarPlan, &'a [u8])> {
    plan.sidecars
        .iter()
        .filter(|s| s.plugin == plugin)
        .find_map(|s| {
            s.files
                .iter()
                .find(|f| f.path == path)
                .map(|f| (s, f.contents.as_slice()))
        })
}

/// The targets of `plan` launched as `identity`.
pub fn from_plan(plan: &Plan, identity: &Identity) -> Targets {
    let target = |which| {
        sidecar_file(plan, which).map(|(s, _)| ConfigTarget {
            container: identity.sidecar_container(&s.name),
            path: which.1.to_owned(),
        })
    };
    Targets {
        agent: Some(identity.agent_container()),
        egress_proxy: target(EGRESS_PROXY),
        pipelock: target(PIPELOCK),
        git_gate: target(GIT_GATE),
    }
}

/// What the agent may read about `plan`'s configuration.
pub fn current_from_plan(plan: &Plan, targets: &Targets) -> CurrentConfig {
    let mut current = CurrentConfig {
        tools: targets.tools(),
        ..Default::default()
    };
    if let Some((_, bytes)) = sidecar_file(plan, EGRESS_PROXY)
        && let Ok(config) = yaml_serde::from_slice::<EgressConfig>(bytes)
    {
        current.routes = config.routes;
        current.allow = config.allow;
    }
    if let Some((_, bytes)) = sidecar_file(plan, PIPELOCK) {
        merge_allow(&mut current.allow, &pipelock_allowlist(bytes));
    }
    if let Some((_, bytes)) = sidecar_file(plan, GIT_GATE)
        && let Ok(config) = yaml_serde::from_slice::<GateConfig>(bytes)
    {
        current.git = git_entries(&config);
    }
    current
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

/// pipelock's `api_allowlist`.
pub fn pipelock_allowlist(yaml: &[u8]) -> Vec<String> {
    yaml_serde::from_slice::<yaml_serde::Value>(yaml)
        .ok()
        .and_then(|v| {
            v.get("api_allowlist")?.as_sequence().map(|s| {
                s.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn merge_allow(into: &mut Vec<String>, more: &[String]) {
    for host in more {
        if !into.contains(host) {
            into.push(host.clone());
        }
    }
}

/// At launch: record the targets and publish the current config, when the bottle has a queue.
pub fn publish(plan: &Plan, identity: &Identity, state_dir: &Path) -> std::io::Result<()> {
    let queue_dir = state_dir.join(STATE_DIR_NAME);
    if !plan.sidecars.iter().any(|s| s.plugin == "supervise") {
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
