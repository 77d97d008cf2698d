//! Assembling the plan: ask every plugin for its contribution, validate and merge them, resolve roles
//! and start order, compute the facts, and run the second phase.

use std::collections::{BTreeMap, BTreeSet};

use bottle_plan_view::SecurityRole;
use serde_json::{Map, Value};

use crate::plugin::Registry;
use crate::plugin::bindings::bottle::plugin::types::{Diagnostic, Severity};
use crate::plugin::bindings::exports::bottle::plugin::sidecar as wit;
use crate::plugin::runtime::{PluginError, PluginErrorKind};

use super::grants::SectionStrings;
use super::model::*;
use super::order;
use super::validate::{AgentAdditions, Checker};

/// Role whose best provider becomes the agent's proxy.
pub const AGENT_PROXY_ROLE: &str = SecurityRole::AgentProxy.as_str();
/// Role whose best provider is the egress firewall.
pub const EGRESS_FIREWALL_ROLE: &str = SecurityRole::EgressFirewall.as_str();

/// The hosts the default agent (Claude Code) needs, allowed in every bottle (one list with
/// pipelock's plugin: [`bottle_host_pattern::known::CLAUDE_CODE`]).
pub const AGENT_DEFAULT_HOSTS: &[&str] = &bottle_host_pattern::known::CLAUDE_CODE;

/// The internal CIDR a dry run shows, from the documentation range (RFC 5737): the real one is
/// assigned by Docker when the network is created.
pub const DRY_RUN_CIDR: &str = "192.0.2.0/24";

/// Everything the plan needs besides the plugins.
#[derive(Debug, Clone)]
pub struct PlanInput {
    /// The bottle's name.
    pub bottle: String,
    /// The agent, before plugins add to it.
    pub agent: AgentPlan,
    /// Declared secret names.
    pub secrets: BTreeSet<String>,
    /// Every manifest section plugins may read, with defaults applied.
    pub sections: Map<String, Value>,
    /// The manifest's `egress.allowlist`.
    pub allowlist: Vec<String>,
    /// `auto`, `runc` or `runsc`.
    pub runtime: String,
    /// The internal network's CIDR, or [`DRY_RUN_CIDR`].
    pub internal_cidr: String,
    /// CA fingerprints by name, once minted (empty in a dry run).
    pub ca_fingerprints: BTreeMap<String, String>,
    /// The bottle's grants.
    pub grants: super::grants::GrantTable,
}

/// A failure to assemble a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A plugin failed or returned something invalid.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Contributions of different plugins clash.
    #[error("{0}")]
    Conflict(String),
    /// The start order cannot be satisfied.
    #[error(transparent)]
    Cycle(#[from] order::Cycle),
}

/// One active plugin's state between the phases.
struct Active {
    index: usize,
    builtin: bool,
    config: String,
    sidecars: BTreeSet<String>,
}

/// Build the plan: plan phase, merge, facts, finalize phase.
pub fn assemble(registry: &mut Registry, input: &PlanInput) -> Result<Plan, PlanError> {
    let context = plan_context(registry, input);
    let mut plan = empty_plan(input);
    let mut after_refs: BTreeMap<String, Vec<wit::OrderRef>> = BTreeMap::new();
    let mut active = Vec::new();
    check_grant_names(registry, input)?;
    for index in 0..registry.plugins().len() {
        let plugin = &mut registry.plugins_mut()[index];
        let name = plugin.description.name.clone();
        let config = plugin_config(&plugin.description.sections, &input.sections);
        let outcome = plugin.instance.plan(&config, &context)?;
        let Some(contribution) = outcome.map_err(|d| rejected(&name, &d))? else {
            continue;
        };
        let builtin = plugin.source == crate::plugin::PluginSource::Builtin;
        if !builtin {
            refuse_security_roles(&name, &contribution)?;
        }
        let config_strings =
            SectionStrings::of(&serde_json::from_str(&config).expect("the host wrote this JSON"));
        let mut checker = Checker {
            plugin: &name,
            builtin,
            secrets: &input.secrets,
            config_strings: &config_strings,
            file_bytes: 0,
            grants: &input.grants,
            granted: Default::default(),
        };
        let owned = merge_contribution(&mut plan, &mut after_refs, &mut checker, &contribution)?;
        plan.grants.extend(checker.granted.take());
        active.push(Active {
            index,
            builtin,
            config,
            sidecars: owned,
        });
    }
    resolve_order(&mut plan, &after_refs)?;
    choose_proxies(&mut plan);
    seclude_upstream_firewall(&mut plan);
    let facts = facts(&plan, input);
    for entry in &active {
        let plugin = &mut registry.plugins_mut()[entry.index];
        let name = plugin.description.name.clone();
        let outcome = plugin.instance.finalize(&entry.config, &context, &facts)?;
        let finalization = outcome.map_err(|d| rejected(&name, &d))?;
        merge_finalization(
            &mut plan,
            (name.as_str(), entry.builtin),
            &entry.sidecars,
            input,
            &entry.config,
            &finalization,
        )?;
    }
    finish_agent(&mut plan);
    plan.plugins = registry
        .plugins()
        .iter()
        .enumerate()
        .map(|(i, p)| PluginUse {
            name: p.description.name.clone(),
            version: p.description.version.clone(),
            source: p.source.clone(),
            sha256: p.sha256.clone(),
            wit: p.wit_version.clone(),
            active: active.iter().any(|a| a.index == i),
        })
        .collect();
    Ok(plan)
}

/// The context every plugin call of this plan gets.
pub fn plan_context(registry: &Registry, input: &PlanInput) -> wit::PlanContext {
    wit::PlanContext {
        bottle: input.bottle.clone(),
        agent: input.agent.name.clone(),
        secrets: input.secrets.iter().cloned().collect(),
        plugins: registry
            .plugins()
            .iter()
            .map(|p| wit::PluginRef {
                name: p.description.name.clone(),
                roles: p
                    .description
                    .roles
                    .iter()
                    .map(|(role, priority)| wit::RoleOffer {
                        role: role.clone(),
                        priority: *priority,
                    })
                    .collect(),
            })
            .collect(),
        properties: Vec::new(),
    }
}

/// Roles that decide what may leave the bottle ([`SecurityRole`]) are filled by built-in plugins
/// only: a third-party sidecar that outranked the built-in firewall or proxy would make the host
/// skip a security sidecar.
fn refuse_security_roles(plugin: &str, contribution: &wit::Contribution) -> Result<(), PlanError> {
    for (i, sidecar) in contribution.sidecars.iter().enumerate() {
        if let Some(role) = sidecar
            .roles
            .iter()
            .find(|r| SecurityRole::parse(&r.role).is_some())
        {
            return Err(PluginError::new(
                plugin,
                PluginErrorKind::Invalid(format!(
                    "sidecars[{i}] offers the role `{}`, which only bottle's built-in security \
                     sidecars may fill",
                    role.role
                )),
            )
            .into());
        }
    }
    Ok(())
}

/// `grants:` may only name plugins that are loaded.
fn check_grant_names(registry: &Registry, input: &PlanInput) -> Result<(), PlanError> {
    let loaded: Vec<&str> = registry
        .plugins()
        .iter()
        .map(|p| p.description.name.as_str())
        .collect();
    for plugin in input.grants.by_plugin.keys() {
        if !loaded.contains(&plugin.as_str()) {
            let close = loaded
                .iter()
                .find(|n| strsim::levenshtein(n, plugin) <= 2)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            return Err(PlanError::Conflict(format!(
                "`grants` names plugin `{plugin}`, which is not loaded{close} (loaded: {})",
                loaded.join(", ")
            )));
        }
    }
    Ok(())
}

fn empty_plan(input: &PlanInput) -> Plan {
    let mut plan = Plan {
        bottle: input.bottle.clone(),
        agent: input.agent.clone(),
        sidecars: Vec::new(),
        stages: Vec::new(),
        egress: Vec::new(),
        agent_proxy: None,
        upstream_proxy: None,
        internal_cidr: input.internal_cidr.clone(),
        cas: Vec::new(),
        agent_trusts: Vec::new(),
        runtime: input.runtime.clone(),
        plugins: Vec::new(),
        secrets: input.secrets.iter().cloned().collect(),
        grants: Vec::new(),
    };
    for host in AGENT_DEFAULT_HOSTS {
        add_egress(&mut plan.egress, host_need(host, "agent: Claude Code"));
    }
    for host in &input.allowlist {
        add_egress(
            &mut plan.egress,
            host_need(&host.to_ascii_lowercase(), "manifest: egress.allowlist"),
        );
    }
    plan
}

fn host_need(host: &str, reason: &str) -> EgressHost {
    EgressHost {
        host: host.to_owned(),
        reasons: vec![reason.to_owned()],
        credentialed: false,
        passthrough: false,
    }
}

/// The JSON object of the sections a plugin reads that the manifest has.
pub fn plugin_config(sections: &[String], all: &Map<String, Value>) -> String {
    let view: Map<String, Value> = sections
        .iter()
        .filter_map(|s| all.get(s).map(|v| (s.clone(), v.clone())))
        .collect();
    Value::Object(view).to_string()
}

fn rejected(plugin: &str, diagnostics: &[Diagnostic]) -> PluginError {
    let lines: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let at = if d.path.is_empty() {
                String::new()
            } else {
                format!(" at `{}`", d.path)
            };
            let hint = d
                .hint
                .as_ref()
                .map(|h| format!("\n    fix: {h}"))
                .unwrap_or_default();
            format!("  {level}{at}: {}{hint}", d.message)
        })
        .collect();
    let text = if lines.is_empty() {
        "  (no diagnostics given)".to_owned()
    } else {
        lines.join("\n")
    };
    PluginError::new(plugin, PluginErrorKind::Rejected(text))
}

fn merge_contribution(
    plan: &mut Plan,
    after_refs: &mut BTreeMap<String, Vec<wit::OrderRef>>,
    checker: &mut Checker<'_>,
    contribution: &wit::Contribution,
) -> Result<BTreeSet<String>, PlanError> {
    if contribution.sidecars.len() > super::validate::MAX_SIDECARS_PER_PLUGIN {
        return Err(PluginError::new(
            checker.plugin,
            PluginErrorKind::Invalid(format!(
                "more than {} sidecars",
                super::validate::MAX_SIDECARS_PER_PLUGIN
            )),
        )
        .into());
    }
    let mut owned = BTreeSet::new();
    for (i, spec) in contribution.sidecars.iter().enumerate() {
        let (sidecar, after) = checker.sidecar(&format!("sidecars[{i}]"), spec)?;
        check_unique(plan, &sidecar)?;
        owned.insert(sidecar.name.clone());
        after_refs.insert(sidecar.name.clone(), after);
        plan.sidecars.push(sidecar);
    }
    let additions = checker.agent(&contribution.agent)?;
    merge_agent(plan, checker.plugin, additions)?;
    for (i, need) in contribution.egress.iter().enumerate() {
        let host = checker.egress(&format!("egress[{i}]"), need)?;
        add_egress(&mut plan.egress, host);
    }
    Ok(owned)
}

fn check_unique(plan: &Plan, sidecar: &SidecarPlan) -> Result<(), PlanError> {
    for other in &plan.sidecars {
        if other.name == sidecar.name {
            return Err(PlanError::Conflict(format!(
                "plugins `{}` and `{}` both add a sidecar named `{}`",
                other.plugin, sidecar.plugin, sidecar.name
            )));
        }
        if let Some(alias) = sidecar
            .aliases
            .iter()
            .find(|a| other.aliases.contains(a) || **a == other.name)
        {
            return Err(PlanError::Conflict(format!(
                "plugins `{}` and `{}` both claim the network alias `{alias}`",
                other.plugin, sidecar.plugin
            )));
        }
    }
    Ok(())
}

fn merge_agent(plan: &mut Plan, plugin: &str, additions: AgentAdditions) -> Result<(), PlanError> {
    for entry in additions.env {
        if let Some(existing) = plan.agent.env.iter_mut().find(|e| e.name == entry.name) {
            // A plugin may replace a bottle variable (the egress proxy's placeholder token), which
            // is what keeps a real token out of the agent.
            tracing::debug!(plugin, name = %entry.name, "plugin replaces an agent variable");
            *existing = entry;
        } else {
            plan.agent.env.push(entry);
        }
    }
    for file in additions.files {
        if plan.agent.files.iter().any(|f| f.path == file.path) {
            return Err(PlanError::Conflict(format!(
                "plugin `{plugin}` writes `{}` in the agent, which another plugin already writes",
                file.path
            )));
        }
        plan.agent.files.push(file);
    }
    for host in additions.no_proxy {
        if !plan.agent.no_proxy.contains(&host) {
            plan.agent.no_proxy.push(host);
        }
    }
    plan.agent.provision.extend(additions.provision);
    Ok(())
}

fn add_egress(list: &mut Vec<EgressHost>, host: EgressHost) {
    match list.iter_mut().find(|h| h.host == host.host) {
        Some(existing) => {
            existing.credentialed |= host.credentialed;
            existing.passthrough |= host.passthrough;
            for reason in host.reasons {
                if !existing.reasons.contains(&reason) {
                    existing.reasons.push(reason);
                }
            }
        }
        None => list.push(host),
    }
}

/// Resolve `after` references into sidecar names, check for cycles and sort sidecars by stage.
fn resolve_order(
    plan: &mut Plan,
    refs: &BTreeMap<String, Vec<wit::OrderRef>>,
) -> Result<(), PlanError> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sidecar in &plan.sidecars {
        let mut deps = BTreeSet::new();
        for reference in &refs[&sidecar.name] {
            match reference {
                wit::OrderRef::Sidecar(name) => {
                    if !plan.sidecars.iter().any(|s| &s.name == name) {
                        return Err(PluginError::new(
                            &sidecar.plugin,
                            PluginErrorKind::Invalid(format!(
                                "sidecar `{}` starts after `{name}`, which is not in the plan",
                                sidecar.name
                            )),
                        )
                        .into());
                    }
                    deps.insert(name.clone());
                }
                wit::OrderRef::Role(role) => deps.extend(
                    plan.sidecars
                        .iter()
                        .filter(|s| {
                            s.name != sidecar.name && s.roles.iter().any(|(r, _)| r == role)
                        })
                        .map(|s| s.name.clone()),
                ),
            }
        }
        graph.insert(sidecar.name.clone(), deps);
    }
    plan.stages = order::stages(&graph)?;
    let rank: BTreeMap<&str, usize> = plan
        .stages
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let rank: BTreeMap<String, usize> = rank.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    plan.sidecars.sort_by_key(|s| rank[&s.name]);
    for sidecar in &mut plan.sidecars {
        sidecar.after = graph[&sidecar.name].iter().cloned().collect();
    }
    Ok(())
}

/// The best provider of `role`: highest priority, then name for determinism.
fn provider<'p>(plan: &'p Plan, role: &str) -> Option<&'p SidecarPlan> {
    plan.sidecars
        .iter()
        .filter_map(|s| {
            s.roles
                .iter()
                .find(|(r, _)| r == role)
                .map(|(_, p)| (*p, s))
        })
        .max_by(|(pa, a), (pb, b)| pa.cmp(pb).then(b.name.cmp(&a.name)))
        .map(|(_, s)| s)
}

fn proxy_url(sidecar: &SidecarPlan) -> Option<String> {
    let host = sidecar.aliases.first().unwrap_or(&sidecar.name);
    sidecar.port.map(|port| format!("http://{host}:{port}"))
}

fn choose_proxies(plan: &mut Plan) {
    let agent_proxy = provider(plan, AGENT_PROXY_ROLE);
    let firewall = provider(plan, EGRESS_FIREWALL_ROLE);
    let upstream_proxy = match (agent_proxy, firewall) {
        (Some(a), Some(f)) if a.name != f.name => proxy_url(f),
        _ => None,
    };
    // The agent sees certificates signed by whatever CA its proxy holds the key of.
    let agent_trusts = agent_proxy
        .map(|p| {
            p.cas
                .iter()
                .filter(|c| c.key_path.is_some())
                .map(|c| c.ca.clone())
                .collect()
        })
        .unwrap_or_default();
    plan.agent_proxy = agent_proxy.and_then(proxy_url);
    plan.agent_trusts = agent_trusts;
    plan.upstream_proxy = upstream_proxy;
    let mut cas: BTreeMap<String, CaPlan> = BTreeMap::new();
    for sidecar in &plan.sidecars {
        for install in &sidecar.cas {
            let ca = cas.entry(install.ca.clone()).or_insert_with(|| CaPlan {
                name: install.ca.clone(),
                algorithm: "ECDSA P-256".into(),
                key_holders: Vec::new(),
            });
            if install.key_path.is_some() {
                ca.key_holders.push(sidecar.name.clone());
            }
        }
    }
    plan.cas = cas.into_values().collect();
}

/// When the agent's proxy chains to a separate firewall, the firewall leaves the internal network:
/// the agent must not be able to skip its proxy (exact-value DLP, credential routes, the push
/// block) by naming the firewall as its proxy. The agent proxy reaches the firewall on the egress
/// network, where the agent is not.
fn seclude_upstream_firewall(plan: &mut Plan) {
    if plan.upstream_proxy.is_none() {
        return;
    }
    let on_egress = |s: &SidecarPlan| s.networks.contains(&NetworkKind::Egress);
    let (Some(proxy), Some(firewall)) = (
        provider(plan, AGENT_PROXY_ROLE),
        provider(plan, EGRESS_FIREWALL_ROLE),
    ) else {
        return;
    };
    if !on_egress(proxy) || !on_egress(firewall) {
        return;
    }
    let firewall = firewall.name.clone();
    if let Some(sidecar) = plan.sidecars.iter_mut().find(|s| s.name == firewall) {
        sidecar.networks.retain(|n| *n != NetworkKind::Internal);
    }
}

fn facts(plan: &Plan, input: &PlanInput) -> wit::Facts {
    wit::Facts {
        internal_cidr: input.internal_cidr.clone(),
        sidecars: plan
            .sidecars
            .iter()
            .map(|s| wit::SidecarFact {
                name: s.name.clone(),
                plugin: s.plugin.clone(),
                aliases: s.aliases.clone(),
                port: s.port,
                roles: s
                    .roles
                    .iter()
                    .map(|(role, priority)| wit::RoleOffer {
                        role: role.clone(),
                        priority: *priority,
                    })
                    .collect(),
            })
            .collect(),
        egress: plan
            .egress
            .iter()
            .map(|h| wit::EgressNeed {
                host: h.host.clone(),
                reason: h.reasons.join("; "),
                credentialed: h.credentialed,
                passthrough: h.passthrough,
            })
            .collect(),
        agent_proxy: plan.agent_proxy.clone(),
        upstream_proxy: plan.upstream_proxy.clone(),
        cas: plan
            .sidecars
            .iter()
            .flat_map(|s| s.cas.iter())
            .map(|c| wit::CaFact {
                ca: c.ca.clone(),
                cert_path: c.cert_path.clone(),
                sha256: input
                    .ca_fingerprints
                    .get(&c.ca)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect(),
        properties: Vec::new(),
    }
}

fn merge_finalization(
    plan: &mut Plan,
    (plugin, builtin): (&str, bool),
    own: &BTreeSet<String>,
    input: &PlanInput,
    config: &str,
    finalization: &wit::Finalization,
) -> Result<(), PlanError> {
    let config_strings =
        SectionStrings::of(&serde_json::from_str(config).expect("the host wrote this JSON"));
    let mut checker = Checker {
        plugin,
        builtin,
        secrets: &input.secrets,
        config_strings: &config_strings,
        file_bytes: 0,
        grants: &input.grants,
        granted: Default::default(),
    };
    for (i, placed) in finalization.files.iter().enumerate() {
        let at = format!("finalize.files[{i}]");
        match &placed.target {
            wit::Target::Agent => {
                let file = checker.agent_file(&at, &placed.file)?;
                upsert_file(&mut plan.agent.files, file);
            }
            wit::Target::Sidecar(name) => {
                let sidecar = own_sidecar(plan, plugin, own, name, &at)?;
                let mut owned: Vec<&str> = super::validate::SIDECAR_HOST_OWNED.to_vec();
                owned.extend(sidecar.cas.iter().map(|c| c.cert_path.as_str()));
                owned.extend(sidecar.cas.iter().filter_map(|c| c.key_path.as_deref()));
                let file = checker.file(&at, &placed.file, &owned)?;
                upsert_file(&mut own_sidecar(plan, plugin, own, name, &at)?.files, file);
            }
        }
    }
    for (i, placed) in finalization.env.iter().enumerate() {
        let at = format!("finalize.env[{i}]");
        match &placed.target {
            wit::Target::Agent => {
                let entry = checker.agent_env(&at, &placed.var)?;
                merge_agent(
                    plan,
                    plugin,
                    AgentAdditions {
                        env: vec![entry],
                        ..Default::default()
                    },
                )?;
            }
            wit::Target::Sidecar(name) => {
                let entry = checker.env(&at, &placed.var)?;
                let env = &mut own_sidecar(plan, plugin, own, name, &at)?.env;
                env.retain(|e| e.name != entry.name);
                env.push(entry);
            }
        }
    }
    for used in checker.granted.take() {
        if !plan.grants.contains(&used) {
            plan.grants.push(used);
        }
    }
    Ok(())
}

fn own_sidecar<'p>(
    plan: &'p mut Plan,
    plugin: &str,
    own: &BTreeSet<String>,
    name: &str,
    at: &str,
) -> Result<&'p mut SidecarPlan, PluginError> {
    if !own.contains(name) {
        return Err(PluginError::new(
            plugin,
            PluginErrorKind::Invalid(format!(
                "{at}: targets sidecar `{name}`, which this plugin did not add"
            )),
        ));
    }
    Ok(plan
        .sidecars
        .iter_mut()
        .find(|s| s.name == name)
        .expect("own sidecars are in the plan"))
}

fn upsert_file(files: &mut Vec<FilePlan>, file: FilePlan) {
    files.retain(|f| f.path != file.path);
    files.push(file);
}

/// Where the agent's CA certificate is installed, and the bundle it is added to.
pub const AGENT_CA_CERT: &str = "/usr/local/share/ca-certificates/bottle-agent-ca.crt";
/// The system bundle after `update-ca-certificates`.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The proxy, NO_PROXY and CA variables of the agent.
fn finish_agent(plan: &mut Plan) {
    let mut no_proxy: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    no_proxy.extend(plan.agent.no_proxy.iter().cloned());
    plan.agent.no_proxy = no_proxy;
    let mut host_env: Vec<(&str, String)> = Vec::new();
    if let Some(proxy) = &plan.agent_proxy {
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            host_env.push((name, proxy.clone()));
        }
        let joined = plan.agent.no_proxy.join(",");
        host_env.push(("NO_PROXY", joined.clone()));
        host_env.push(("no_proxy", joined));
    }
    if !plan.agent_trusts.is_empty() {
        host_env.push(("NODE_EXTRA_CA_CERTS", AGENT_CA_CERT.into()));
        host_env.push(("SSL_CERT_FILE", SYSTEM_CA_BUNDLE.into()));
        host_env.push(("REQUESTS_CA_BUNDLE", SYSTEM_CA_BUNDLE.into()));
    }
    for (name, value) in host_env {
        plan.agent.env.retain(|e| e.name != name);
        plan.agent.env.push(EnvEntry {
            name: name.into(),
            value: EnvSource::Literal(value),
        });
    }
}
