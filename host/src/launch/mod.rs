//! The launch stage: turn a plan into running containers on Docker, in order, failing closed.
//!
//! Sequence (each step a [`Step`], named in errors and in the fault-injection hook):
//! 1. orphan probe — nothing this bottle would create may exist already;
//! 2. networks — `bottle-net-<id>` (internal) and `bottle-egress-<id>`; the internal CIDR is read
//!    back and the plan's second phase runs with it;
//! 3. CAs — minted with rcgen, keys 0600 in a 0700 stage directory;
//! 4. sidecars — per start stage, concurrently within a stage: create → copy files → attach
//!    networks → start → health check; a failed check stops the launch with the sidecar's last log
//!    lines;
//! 5. agent — internal network only, secrets through the API, `sleep infinity`;
//! 6. provisioning — CA, system prompt, skills, plugin files, plugin steps;
//! 7. self-test — isolation proven from inside the agent ([`self_test`]), beside provisioning
//!    (its scans once the files are in place); any failure refuses the launch before the agent's
//!    command starts.
//!
//! Every object is recorded in a [`Ledger`] before it is created, so teardown removes exactly what
//! exists, in reverse, on any exit.

pub mod ca;
pub mod identity;
pub mod ledger;
pub mod provision;
pub mod runtime;
pub mod secrets;
pub mod self_test;
pub mod session;
pub mod sidecar_logs;
pub mod sidecars;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::models::{ContainerCreateBody, HostConfig};

use crate::docker::{Engine, labels};
use crate::plan::model::{EnvEntry, EnvSource, Plan};
use identity::Identity;
use ledger::{Created, Ledger};
use secrets::SecretValues;

/// The launch steps, for progress, errors and the test-only fault hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Checking for leftovers.
    Probe,
    /// Creating networks.
    Networks,
    /// Minting CAs.
    Cas,
    /// Building or finding images.
    Images,
    /// Starting sidecars.
    Sidecars,
    /// Creating and starting the agent.
    Agent,
    /// Provisioning the agent.
    Provision,
    /// Proving isolation from inside the agent.
    SelfTest,
}

impl Step {
    /// The step's name, as `BOTTLE_FAULT_AT` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Probe => "probe",
            Step::Networks => "networks",
            Step::Cas => "cas",
            Step::Images => "images",
            Step::Sidecars => "sidecars",
            Step::Agent => "agent",
            Step::Provision => "provision",
            Step::SelfTest => "self-test",
        }
    }
}

/// A failed launch, saying where it stopped.
#[derive(Debug, thiserror::Error)]
#[error("launch stopped at step `{}`: {message}", step.name())]
pub struct LaunchError {
    /// Where.
    pub step: Step,
    /// Why, with the fix when there is one.
    pub message: String,
}

fn at(step: Step) -> impl Fn(String) -> LaunchError {
    move |message| LaunchError { step, message }
}

/// Test-only fault injection: `BOTTLE_FAULT_AT=<step>` fails the launch right after that step's
/// work, so tests can prove teardown leaves nothing behind from any point.
fn fault_hook(step: Step) -> Result<(), LaunchError> {
    match std::env::var("BOTTLE_FAULT_AT") {
        Ok(target) if target == step.name() => Err(LaunchError {
            step,
            message: "fault injected by BOTTLE_FAULT_AT (test hook)".into(),
        }),
        _ => Ok(()),
    }
}

/// Test-only faults that break a bottle's isolation, so tests can prove the self-test refuses
/// such a launch: `BOTTLE_TEST_FAULT=agent-on-egress` attaches the agent to the egress network,
/// `BOTTLE_TEST_FAULT=bridge-host-address` gives the internal bridge an address on the host.
/// The self-test stands between either and a running agent, and the launcher refuses to combine
/// them with skipping it.
pub const TEST_FAULT_ENV: &str = "BOTTLE_TEST_FAULT";

/// Whether the test-only isolation fault `name` is asked for.
pub fn test_fault(name: &str) -> bool {
    std::env::var(TEST_FAULT_ENV).as_deref() == Ok(name)
}

/// What the launch does with the self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTestUse {
    /// Run it and refuse the launch on any failure (the default).
    Enforce,
    /// Run it and hand back the report whatever it says (`bottle doctor --isolation`).
    Report,
    /// Do not run it (`BOTTLE_UNSAFE_SKIP_SELF_TEST=1`).
    Skip,
}

/// What the caller decided before the launch.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Leave the bottle running and return (no session).
    pub detach: bool,
    /// Bake this working tree into a derived agent image at /workspace.
    pub cwd: Option<PathBuf>,
    /// A pinned identity (no numeric-suffix retries).
    pub name: Option<String>,
    /// Install Claude Code into the agent image.
    pub install_claude_code: bool,
    /// Directory for image build caches.
    pub cache_dir: PathBuf,
    /// Where state directories live (`~/.bottle/state`).
    pub state_root: PathBuf,
    /// Where stage directories live (`~/.bottle/run`).
    pub stage_root: PathBuf,
    /// `auto`, `runc` or `runsc`.
    pub runtime: String,
    /// Manifest names for labels.
    pub agent: String,
    /// The bottle manifest's name.
    pub bottle: String,
    /// Whether and how the isolation self-test runs.
    pub self_test: SelfTestUse,
    /// Copy the bottle's kept `~/.claude` back into the agent (`bottle resume`).
    pub restore: bool,
    /// Learn mode (`bottle start --learn`): the egress proxy lets hosts off the allowlist through
    /// and records them; shown before the session.
    pub learn: bool,
}

/// A launched bottle.
pub struct Running {
    /// Its identity.
    pub identity: Identity,
    /// The plan it runs (with the real CIDR and fingerprints).
    pub plan: Plan,
    /// The agent container's name.
    pub agent_container: String,
    /// The agent CA's fingerprint, when there is one.
    pub ca_fingerprints: BTreeMap<String, String>,
    /// What the isolation self-test saw (none when skipped).
    pub self_test: Option<self_test::Report>,
}

/// The labels of every object of this bottle.
pub fn object_labels(
    identity: &Identity,
    options: &LaunchOptions,
    role: &str,
) -> HashMap<String, String> {
    let mut map = HashMap::new();
    map.insert(labels::MANAGED.into(), "true".into());
    map.insert(labels::IDENTITY.into(), identity.to_string());
    map.insert(labels::ROLE.into(), role.into());
    map.insert(labels::AGENT.into(), options.agent.clone());
    map.insert(labels::BOTTLE.into(), options.bottle.clone());
    map.insert(labels::OWNER.into(), owner());
    map.insert(labels::DETACHED.into(), options.detach.to_string());
    if let Ok(test) = std::env::var("BOTTLE_TEST_LABEL") {
        map.insert(labels::TEST.into(), test);
    }
    map
}

/// `user@host:pid` of this process: while it lives, the bottle is in use.
fn owner() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{user}@{}:{}", host.trim(), std::process::id())
}

/// Choose a free identity: the pinned name, or the agent's name with the first free `-N`.
pub async fn choose_identity(
    engine: &Engine,
    options: &LaunchOptions,
) -> Result<Identity, LaunchError> {
    let fail = at(Step::Probe);
    if let Some(name) = &options.name {
        return Ok(Identity::from_name(name));
    }
    for n in 1..100 {
        let candidate = Identity::numbered(&options.agent, n);
        let label = [format!("{}={candidate}", labels::IDENTITY)];
        let taken = engine
            .container_exists(&candidate.agent_container())
            .await
            .map_err(|e| fail(e.to_string()))?
            || !engine
                .containers_labelled(&label)
                .await
                .map_err(|e| fail(e.to_string()))?
                .is_empty()
            || !engine
                .networks_labelled(&label)
                .await
                .map_err(|e| fail(e.to_string()))?
                .is_empty()
            || state::exists(&options.state_root, &candidate);
        if !taken {
            return Ok(candidate);
        }
    }
    Err(fail(format!(
        "no free identity for agent `{}` after 99 tries; run `bottle cleanup`",
        options.agent
    )))
}

/// Fail when anything this bottle would create exists already (an orphan of a killed launch).
pub async fn probe_orphans(
    engine: &Engine,
    identity: &Identity,
    plan: &Plan,
) -> Result<(), LaunchError> {
    let fail = at(Step::Probe);
    let mut found = Vec::new();
    let mut containers = vec![identity.agent_container()];
    containers.extend(
        plan.sidecars
            .iter()
            .map(|s| identity.sidecar_container(&s.name)),
    );
    for name in containers {
        if engine
            .container_exists(&name)
            .await
            .map_err(|e| fail(e.to_string()))?
        {
            found.push(format!("container {name}"));
        }
    }
    for name in [identity.internal_network(), identity.egress_network()] {
        if engine
            .network_exists(&name)
            .await
            .map_err(|e| fail(e.to_string()))?
        {
            found.push(format!("network {name}"));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(fail(format!(
        "these already exist, probably left by a launch that was killed: {}; remove them with `bottle cleanup`",
        found.join(", ")
    )))
}

/// Create both networks; returns the internal CIDR.
pub async fn create_networks(
    engine: &Engine,
    ledger: &Ledger,
    identity: &Identity,
    options: &LaunchOptions,
) -> Result<String, LaunchError> {
    let fail = at(Step::Networks);
    let labels = object_labels(identity, options, "network");
    let (internal_name, egress_name) = (identity.internal_network(), identity.egress_network());
    let (internal, egress) = tokio::join!(
        create_network(engine, ledger, &internal_name, true, &labels),
        create_network(engine, ledger, &egress_name, false, &labels),
    );
    let cidr = internal.map_err(&fail)?;
    egress.map_err(&fail)?;
    if cidr.is_empty() {
        return Err(fail(format!(
            "the engine gave network {} no subnet",
            identity.internal_network()
        )));
    }
    fault_hook(Step::Networks)?;
    Ok(cidr)
}

/// Create one network, recorded for teardown unless its name turns out to be someone else's.
async fn create_network(
    engine: &Engine,
    ledger: &Ledger,
    name: &str,
    internal: bool,
    labels: &HashMap<String, String>,
) -> Result<String, String> {
    let entry = Created::Network(name.to_owned());
    ledger.record(entry.clone());
    let host_address = !internal || test_fault("bridge-host-address");
    engine
        .create_bridge(name, internal, host_address, labels)
        .await
        .map_err(|e| {
            if crate::docker::is_conflict(&e) {
                ledger.forget(&entry);
            }
            e.to_string()
        })
}

/// Create a container, recorded for teardown unless its name turns out to be someone else's.
pub async fn create_container(
    engine: &Engine,
    ledger: &Ledger,
    name: &str,
    body: ContainerCreateBody,
    network: &str,
    aliases: &[String],
) -> Result<String, String> {
    let entry = Created::Container(name.to_owned());
    ledger.record(entry.clone());
    engine
        .create_container(name, body, network, aliases)
        .await
        .map_err(|e| {
            if crate::docker::is_conflict(&e) {
                ledger.forget(&entry);
            }
            e.to_string()
        })
}

/// `NAME=value` for a container's environment, resolving secret references.
pub fn resolve_env(env: &[EnvEntry], secrets: &SecretValues) -> Result<Vec<String>, String> {
    env.iter()
        .map(|entry| match &entry.value {
            EnvSource::Literal(value) => Ok(format!("{}={value}", entry.name)),
            EnvSource::Secret(name) => secrets
                .get(name)
                .map(|value| format!("{}={value}", entry.name))
                .ok_or_else(|| format!("secret `{name}` for `{}` was not resolved", entry.name)),
        })
        .collect()
}

/// The container runtime for the agent: `runsc` when asked (refused with the fix when the engine
/// has none), or with `auto` when the engine lists it; see [`runtime::choose`].
pub async fn agent_runtime(
    engine: &Engine,
    requested: &str,
) -> Result<Option<String>, LaunchError> {
    let fail = at(Step::Agent);
    let available = engine.runtimes().await.map_err(|e| fail(e.to_string()))?;
    runtime::choose(requested, &available).map_err(fail)
}

/// Create and start the agent container: internal network only, `sleep infinity`, secrets
/// through the API.
/// Create the agent container (not started: it starts only once every sidecar is healthy, so
/// creating it can overlap the sidecars' start).
pub async fn create_agent(
    engine: &Engine,
    ledger: &Ledger,
    identity: &Identity,
    options: &LaunchOptions,
    plan: &Plan,
    image: &str,
    secrets: &SecretValues,
) -> Result<String, LaunchError> {
    let fail = at(Step::Agent);
    let runtime = agent_runtime(engine, &options.runtime).await?;
    let env = resolve_env(&plan.agent.env, secrets).map_err(&fail)?;
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        // An explicit empty entrypoint: an image's own (an approved Dockerfile's) never runs.
        entrypoint: Some(Vec::new()),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        user: Some(AGENT_USER.into()),
        env: Some(env),
        labels: Some(object_labels(identity, options, "agent")),
        hostname: Some(identity.to_string()),
        host_config: Some(agent_host_config(runtime, &plan.agent.limits)),
        ..Default::default()
    };
    let name = identity.agent_container();
    create_container(
        engine,
        ledger,
        &name,
        body,
        &identity.internal_network(),
        &["agent".to_owned()],
    )
    .await
    .map_err(&fail)?;
    // The prober for the self-test, placed before the agent (or anything of it) runs.
    let prober = crate::docker::FileUpload {
        path: sidecars::PROBE_PATH.into(),
        mode: 0o755,
        owner: (0, 0),
        contents: crate::assets::PROBE.to_vec(),
    };
    engine
        .upload(&name, &[prober], None)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if test_fault("agent-on-egress") {
        engine
            .attach_network(&name, &identity.egress_network(), &[])
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(name)
}

/// The user the agent container's processes run as: the image's unprivileged `agent`.
pub const AGENT_USER: &str = "agent";

/// How the agent's container is confined beyond its network.
///
/// - No capabilities at all: the agent user needs none, and the launcher's own root steps (trusting
///   the CA: appending to a root-owned file) need none either. This takes away raw sockets, chown,
///   mknod, setuid/setgid and everything else a root shell in the container could use.
/// - `no-new-privileges`: a setuid binary in an approved image cannot raise the agent to root.
/// - Memory (no swap beyond it), processes and CPUs from the bottle's `limits`: a runaway or hostile
///   agent cannot take the host down.
/// - `init`: a reaper as PID 1, so the agent's orphans do not pile up as zombies.
/// - No DNS beyond the bottle's own names.
fn agent_host_config(runtime: Option<String>, limits: &bottle_manifest::Limits) -> HostConfig {
    let memory = i64::try_from(limits.memory_bytes).unwrap_or(i64::MAX);
    let pids = runtime::host_pids_limit(runtime.as_deref(), limits.pids);
    HostConfig {
        runtime,
        init: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        memory: Some(memory),
        memory_swap: Some(memory),
        pids_limit: Some(pids),
        nano_cpus: limits.cpus.map(|c| (c * 1e9) as i64),
        // Docker's DNS answers sidecar names itself and forwards every other name to these
        // servers from the agent's own namespace, where nothing listens: a lookup of
        // `<secret>.attacker.example` never leaves as a query, whatever resolver the host has.
        dns: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    }
}

/// Start the created agent container.
pub async fn start_agent(engine: &Engine, name: &str) -> Result<(), LaunchError> {
    engine
        .start(name)
        .await
        .map_err(|e| at(Step::Agent)(e.to_string()))?;
    fault_hook(Step::Agent)
}

pub use sidecars::start_sidecars;
