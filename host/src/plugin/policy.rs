//! Organisation policy modules: components of the `policy-module` world, found in
//! `$BOTTLE_POLICY_DIR` or `~/.bottle/policy/`, run over a read-only view of the finished plan
//! ([`bottle_plan_view::PlanView`], JSON) before anything is launched.
//!
//! Each module runs in a fresh sandboxed instance under the same limits as plugins (no
//! capabilities, memory cap, fuel budget and deadline per call). A module that traps, runs out of
//! fuel or time, or cannot be loaded fails the launch closed, naming the module; any violation
//! stops the launch with the module, the rule and the offending part of the plan.

use std::path::{Path, PathBuf};

use bottle_egress_config::EgressConfig;
use bottle_plan_view as view;

use super::runtime::{CompiledPolicy, PluginError, PluginErrorKind, PluginRuntime};
use crate::plan::model::{EnvSource, ImagePlan, Plan};

/// Where policy modules are read from: `$BOTTLE_POLICY_DIR`, else `<home>/policy`.
pub fn policy_dir(home_root: &Path) -> PathBuf {
    match std::env::var_os("BOTTLE_POLICY_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => home_root.join("policy"),
    }
}

/// One loaded module.
pub struct LoadedPolicy {
    /// The file it came from.
    pub path: PathBuf,
    /// Compiled, ready to instantiate.
    pub compiled: CompiledPolicy,
}

/// A broken rule, with the module that reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The module's name.
    pub module: String,
    /// The rule's identifier.
    pub rule: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The offending part of the plan, as a JSON pointer.
    pub subject: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "policy `{}`, rule `{}` at {}: {}",
            self.module, self.rule, self.subject, self.message
        )
    }
}

/// Every module in `dir` (none when it does not exist), compiled or loaded from the cache.
pub fn load(runtime: &PluginRuntime, dir: &Path) -> Result<Vec<LoadedPolicy>, PluginError> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PluginError::new(
                &dir.display().to_string(),
                PluginErrorKind::Load(format!("cannot list the policy directory: {e}")),
            ));
        }
    };
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let label = path.display().to_string();
            let wasm = std::fs::read(&path).map_err(|e| {
                PluginError::new(&label, PluginErrorKind::Load(format!("cannot read: {e}")))
            })?;
            let compiled = runtime.compile_policy(&label, &wasm)?;
            Ok(LoadedPolicy { path, compiled })
        })
        .collect()
}

/// Run every module over `view`; the findings of all of them (a module that fails is an error).
pub fn check(
    runtime: &PluginRuntime,
    policies: &[LoadedPolicy],
    view: &view::PlanView,
) -> Result<Vec<Finding>, PluginError> {
    let json = serde_json::to_string(view).expect("plan views serialize");
    let mut findings = Vec::new();
    for policy in policies {
        let label = policy.path.display().to_string();
        let (module, violations) = runtime.check_policy(&policy.compiled, &label, &json)?;
        findings.extend(violations.into_iter().map(|v| Finding {
            module: module.clone(),
            rule: v.rule,
            message: v.message,
            subject: v.subject,
        }));
    }
    Ok(findings)
}

/// What the host knows about runtimes when it builds the view.
#[derive(Debug, Clone, Default)]
pub struct RuntimeFacts {
    /// The runtimes the engine offers (empty when unknown, as in a dry run without an engine).
    pub available: Vec<String>,
}

/// The read-only view policy modules receive. It holds names of secrets, never values.
pub fn view_of(plan: &Plan, runtimes: &RuntimeFacts) -> view::PlanView {
    use crate::launch::runtime::{self, RUNC, RUNSC};
    let chosen = match runtime::choose(&plan.runtime, &runtimes.available) {
        Ok(Some(name)) => Some(name),
        // Asked for by name where the engine lacks it: the launch refuses it, the view says it.
        Err(_) => Some(RUNSC.to_owned()),
        Ok(None) if runtimes.available.is_empty() => None,
        Ok(None) => Some(RUNC.to_owned()),
    };
    view::PlanView {
        schema: view::PLAN_VIEW_SCHEMA,
        bottle: plan.bottle.clone(),
        agent: view::AgentView {
            name: plan.agent.name.clone(),
            image: image(&plan.agent.image),
            env: plan.agent.env.iter().map(|e| e.name.clone()).collect(),
            no_proxy: plan.agent.no_proxy.clone(),
            proxy: plan.agent_proxy.clone(),
        },
        runtime: view::RuntimeView {
            requested: plan.runtime.clone(),
            chosen,
            available: runtimes.available.clone(),
        },
        sidecars: plan.sidecars.iter().map(sidecar).collect(),
        egress: plan
            .egress
            .iter()
            .map(|e| view::EgressView {
                host: e.host.clone(),
                reason: e.reasons.join("; "),
                credentialed: e.credentialed,
                passthrough: e.passthrough,
            })
            .collect(),
        routes: routes(plan),
        grants: plan
            .grants
            .iter()
            .map(|g| view::GrantView {
                plugin: g.plugin.clone(),
                kind: g.kind.clone(),
                value: g.value.clone(),
            })
            .collect(),
        plugins: plan
            .plugins
            .iter()
            .map(|p| view::PluginView {
                name: p.name.clone(),
                version: p.version.clone(),
                source: if p.source == "built-in" {
                    view::sources::BUILT_IN.to_owned()
                } else {
                    format!("{}{}", view::sources::SHA256_PREFIX, p.sha256)
                },
                wit: p.wit.clone(),
            })
            .collect(),
        secrets: plan.secrets.clone(),
    }
}

fn image(image: &ImagePlan) -> String {
    match image {
        ImagePlan::Reference(r) => r.clone(),
        ImagePlan::Context(c) => format!("context:{c}"),
        ImagePlan::Dockerfile(d) => format!("dockerfile:{d}"),
    }
}

fn sidecar(s: &crate::plan::model::SidecarPlan) -> view::SidecarView {
    view::SidecarView {
        name: s.name.clone(),
        plugin: s.plugin.clone(),
        image: image(&s.image),
        networks: s
            .networks
            .iter()
            .map(|n| {
                serde_json::to_value(n)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect(),
        aliases: s.aliases.clone(),
        port: s.port,
        mounts: s
            .mounts
            .iter()
            .map(|m| view::MountView {
                source: format!("state:{}", m.state_dir),
                target: m.target.clone(),
                read_only: m.read_only,
            })
            .collect(),
        env: s.env.iter().map(|e| e.name.clone()).collect(),
        secrets: s
            .env
            .iter()
            .filter_map(|e| match &e.value {
                EnvSource::Secret(name) => Some(name.clone()),
                EnvSource::Literal(_) => None,
            })
            .collect(),
        host_files: s.host_files.iter().map(|h| h.host_path.clone()).collect(),
        published_ports: s.published_ports.clone(),
        extra_hosts: s
            .extra_hosts
            .iter()
            .map(|(host, ip)| view::HostEntryView {
                host: host.clone(),
                ip: ip.clone(),
            })
            .collect(),
    }
}

/// The credential routes the egress proxy will enforce, read from the config file it will get,
/// with each token named by the secret behind its environment variable.
fn routes(plan: &Plan) -> Vec<view::RouteView> {
    use crate::supervise::targets::{EGRESS_PROXY, sidecar_file};
    let Some((sidecar, config)) = sidecar_file(plan, EGRESS_PROXY)
        .and_then(|(s, bytes)| Some((s, yaml_serde::from_slice::<EgressConfig>(bytes).ok()?)))
    else {
        return Vec::new();
    };
    let secret_of = |env: &str| {
        sidecar
            .env
            .iter()
            .find(|e| e.name == env)
            .map(|e| match &e.value {
                EnvSource::Secret(name) => name.clone(),
                EnvSource::Literal(_) => env.to_owned(),
            })
    };
    config
        .routes
        .iter()
        .map(|r| view::RouteView {
            host: r.host.clone(),
            path_allowlist: r.path_allowlist.clone(),
            token: r
                .auth
                .as_ref()
                .map(|a| secret_of(&a.token_env).unwrap_or_else(|| a.token_env.clone())),
            scheme: r.auth.as_ref().map(|a| a.scheme.as_str().to_owned()),
        })
        .collect()
}
