//! The read-only view of a finished plan that organisation policy modules receive
//! ([`bottle_plan_view::PlanView`]): names of secrets, never values.
//!
//! Built here, above the plan, the live sidecars and the runtime choice, because it reads all
//! three; [`crate::plugin::policy`] only runs the modules over it.
//!
//! Architecture Invariant: the view holds no secret value and no file contents; what a sidecar's
//! config adds to it comes from that sidecar's module ([`crate::sidecars::LiveSidecar::view`]).

use bottle_plan_view as view;

use crate::plan::model::{EnvSource, ImagePlan, Plan};
use crate::plugin::PluginSource;

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
    let mut plan_view = view::PlanView {
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
        routes: Vec::new(),
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
                source: if p.source == PluginSource::Builtin {
                    view::sources::BUILT_IN.to_owned()
                } else {
                    format!("{}{}", view::sources::SHA256_PREFIX, p.sha256)
                },
                wit: p.wit.clone(),
            })
            .collect(),
        secrets: plan.secrets.clone(),
    };
    crate::sidecars::add_to_view(plan, &mut plan_view);
    plan_view
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
