//! From the user's files to a plan: pick the agent and bottle, load the plugins, build the plugin
//! views of the manifest, and assemble.
//!
//! The views are the only part of a manifest a plugin ever sees: its own sections, rendered as JSON
//! with defaults applied. Secret values are not in them (the bottle's `env` is not a section);
//! plugins learn secret *names* from the plan context.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context as _;
use bottle_manifest::{Agent, AgentCommand, Bottle, Catalog, EnvValue};
use serde_json::{Map, Value, json};

use crate::home::Home;
use crate::plan::model::{AgentPlan, EnvEntry, EnvSource, ImagePlan};
use crate::plan::{self, Plan, PlanInput};
use crate::plugin::{PluginRuntime, Registry, RuntimeLimits};

pub use crate::plan::model::AGENT_PROMPT_PATH;

/// The default agent command: Claude Code with its permission prompts off (the bottle is the
/// boundary) and the agent's prompt appended to its system prompt.
pub fn default_command() -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "exec claude --dangerously-skip-permissions --append-system-prompt \"$(cat {AGENT_PROMPT_PATH})\""
        ),
    ]
}

/// The runtime and every plugin of this home (built-ins first).
pub fn load_plugins(home: &Home) -> anyhow::Result<Registry> {
    let runtime = PluginRuntime::new(Some(home.cache_dir()), RuntimeLimits::default())?;
    Ok(Registry::load(runtime, Some(&home.plugins_dir()))?)
}

/// The agent and bottle to plan, and whether they are the embedded defaults.
pub struct Selection {
    /// The agent.
    pub agent: Agent,
    /// Its bottle.
    pub bottle: Bottle,
    /// True when no manifests exist and the embedded defaults are used.
    pub embedded: bool,
}

/// Pick the agent named (or the only one, or the embedded default when there are no manifests).
pub fn select(
    catalog: &Catalog,
    agent: Option<&str>,
    external_sections: &BTreeSet<String>,
) -> anyhow::Result<Selection> {
    if catalog.is_empty() {
        if let Some(name) = agent.filter(|n| *n != bottle_manifest::defaults::AGENT_NAME) {
            anyhow::bail!(
                "no agent `{name}`: there are no agent manifests yet, only the embedded default \
                 agent `{}`; write ~/.bottle/agents/{name}.md to add one",
                bottle_manifest::defaults::AGENT_NAME
            );
        }
        return Ok(Selection {
            agent: bottle_manifest::defaults::agent(),
            bottle: bottle_manifest::defaults::bottle(),
            embedded: true,
        });
    }
    let name = match agent {
        Some(name) => name.to_owned(),
        None => only_agent(catalog)?,
    };
    let (agent, bottle) = catalog.resolve(&name, external_sections)?;
    Ok(Selection {
        agent,
        bottle,
        embedded: false,
    })
}

fn only_agent(catalog: &Catalog) -> anyhow::Result<String> {
    let names: Vec<String> = catalog.agents().map(|e| e.name.clone()).collect();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("no agent manifests found; write ~/.bottle/agents/<name>.md"),
        many => anyhow::bail!("name the agent to start: one of {}", many.join(", ")),
    }
}

/// Plan a selection without creating anything: the dry run.
pub fn dry_run(registry: &mut Registry, selection: &Selection) -> anyhow::Result<Plan> {
    let input = plan_input(&selection.agent, &selection.bottle, plan::DRY_RUN_CIDR);
    plan::assemble(registry, &input).with_context(|| {
        format!(
            "planning bottle `{}` for agent `{}`",
            selection.bottle.name, selection.agent.name
        )
    })
}

/// The plan input for an agent in its bottle.
pub fn plan_input(agent: &Agent, bottle: &Bottle, internal_cidr: &str) -> PlanInput {
    PlanInput {
        bottle: bottle.name.clone(),
        agent: agent_plan(agent, bottle),
        secrets: bottle.secret_names(),
        sections: sections(bottle),
        allowlist: bottle.egress.allowlist.clone(),
        runtime: runtime_name(bottle),
        internal_cidr: internal_cidr.to_owned(),
        ca_fingerprints: Default::default(),
        grants: crate::plan::grants::GrantTable {
            by_plugin: bottle.grants.clone(),
            allowlist: bottle.egress.allowlist.clone(),
            bottle: bottle.path.as_ref().map_or_else(
                || bottle.name.clone(),
                |p| format!("{} ({})", bottle.name, p.display()),
            ),
        },
    }
}

fn runtime_name(bottle: &Bottle) -> String {
    serde_json::to_value(bottle.runtime)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "auto".into())
}

fn agent_plan(agent: &Agent, bottle: &Bottle) -> AgentPlan {
    let command = match &agent.command {
        None => default_command(),
        Some(AgentCommand::Shell(script)) => vec!["sh".into(), "-c".into(), script.clone()],
        Some(AgentCommand::Argv(argv)) => argv.clone(),
    };
    let image = match (&bottle.image, &bottle.dockerfile) {
        (Some(reference), _) => ImagePlan::Reference(reference.clone()),
        (None, Some(dockerfile)) => ImagePlan::Dockerfile(dockerfile.display().to_string()),
        (None, None) => ImagePlan::Context("agent".into()),
    };
    // A route token goes to the egress proxy only: the agent never holds it, even when the bottle's
    // `env` is where its value comes from.
    let route_tokens: BTreeSet<&str> = bottle
        .egress_proxy
        .routes
        .iter()
        .filter_map(|r| r.auth.as_ref().map(|a| a.token_ref.as_str()))
        .collect();
    let env = bottle
        .env
        .iter()
        .filter(|(name, _)| !route_tokens.contains(name.as_str()))
        .map(|(name, value)| EnvEntry {
            name: name.clone(),
            value: match value {
                EnvValue::Literal(v) => EnvSource::Literal(v.clone()),
                // Prompted and host-copied values are secrets: resolved at launch, never shown.
                EnvValue::Prompt { .. } | EnvValue::Host(_) => EnvSource::Secret(name.clone()),
            },
        })
        .collect();
    AgentPlan {
        name: agent.name.clone(),
        image,
        command,
        env,
        files: Vec::new(),
        no_proxy: Vec::new(),
        provision: Vec::new(),
        skills: agent.skills.clone(),
        prompt: agent.prompt.clone(),
        limits: bottle.limits,
    }
}

/// Every section a plugin may read, as JSON with defaults applied.
pub fn sections(bottle: &Bottle) -> Map<String, Value> {
    let mut sections = Map::new();
    sections.insert("egress".into(), egress_view(bottle));
    sections.insert("egress_proxy".into(), egress_proxy_view(bottle));
    sections.insert(
        "git".into(),
        Value::Array(bottle.git.iter().map(git_view).collect()),
    );
    sections.insert("supervise".into(), Value::Bool(bottle.supervise));
    for (name, value) in &bottle.sections {
        sections.insert(name.clone(), value.clone());
    }
    sections
}

fn egress_view(bottle: &Bottle) -> Value {
    json!({
        "firewall": bottle.egress.firewall,
        "allowlist": bottle.egress.allowlist,
        "pipelock_image": bottle.egress.pipelock_image,
    })
}

fn egress_proxy_view(bottle: &Bottle) -> Value {
    let routes: Vec<Value> = bottle
        .egress_proxy
        .routes
        .iter()
        .map(|r| {
            json!({
                "host": r.host,
                "auth": r.auth.as_ref().map(|a| json!({"scheme": a.scheme, "token_ref": a.token_ref})),
                "path_allowlist": r.path_allowlist,
                "methods": r.methods,
            })
        })
        .collect();
    let mut view = json!({
        "routes": routes,
        "upstream_ca": bottle.egress_proxy.upstream_ca.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "allow_cidrs": bottle.egress_proxy.allow_cidrs,
        "dlp_patterns": bottle.egress_proxy.dlp_patterns,
    });
    // Only when on, so the view of every other launch stays as it was.
    if bottle.egress_proxy.learn {
        view["learn"] = Value::Bool(true);
    }
    view
}

fn git_view(repo: &bottle_manifest::GitRepo) -> Value {
    json!({
        "Name": repo.name,
        "Upstream": repo.upstream.to_string(),
        "upstream": {
            "user": repo.upstream.user,
            "host": repo.upstream.host,
            "port": repo.upstream.port,
            "path": repo.upstream.path,
        },
        "IdentityFile": repo.identity_file.display().to_string(),
        "KnownHostKey": repo.known_host_key,
        "ExtraHosts": repo.extra_hosts.iter().map(|(h, ip)| (h.clone(), Value::String(ip.to_string()))).collect::<Map<_, _>>(),
        "protected": repo.protected,
        "allow_force_push": repo.allow_force_push,
        "allowed_refs": repo.allowed_refs,
        "allow_delete": repo.allow_delete,
        "allow_ci_changes": repo.allow_ci_changes,
    })
}

/// The catalog for this home and working directory.
pub fn catalog(home: &Home, cwd: &Path) -> Catalog {
    if let Some(legacy) = crate::migrate::unmigrated(home.root()) {
        eprintln!(
            "note: found claude-bottle's {} but no {}; import its agents and bottles with: \
             bottle migrate",
            legacy.display(),
            home.root().display()
        );
    }
    let catalog = Catalog::discover(home.root(), cwd);
    for warning in catalog.warnings() {
        tracing::warn!("{warning}");
    }
    catalog
}

/// The plan input `bottle plugins check` uses: the embedded default agent and bottle, with the
/// given manifest sections added (or replacing the defaults').
pub fn check_input(extra: Map<String, Value>) -> PlanInput {
    let agent = bottle_manifest::defaults::agent();
    let bottle = bottle_manifest::defaults::bottle();
    let mut input = plan_input(&agent, &bottle, plan::DRY_RUN_CIDR);
    input.sections.extend(extra);
    input
}

/// Run the organisation's policy modules over `plan`; every violation found. A module that
/// cannot be loaded or fails is an error (the launch fails closed).
pub fn policy_findings(
    home: &Home,
    registry: &Registry,
    plan: &crate::plan::Plan,
    runtimes: Vec<String>,
) -> anyhow::Result<Vec<crate::plugin::policy::Finding>> {
    use crate::plugin::policy;
    let dir = policy::policy_dir(home);
    let modules = policy::load(registry.runtime(), &dir)?;
    if modules.is_empty() {
        return Ok(Vec::new());
    }
    let view = crate::policy_view::view_of(
        plan,
        &crate::policy_view::RuntimeFacts {
            available: runtimes,
        },
    );
    Ok(policy::check(registry.runtime(), &modules, &view)?)
}

/// The error that stops a launch on policy violations.
pub fn policy_refusal(findings: &[crate::plugin::policy::Finding]) -> anyhow::Error {
    let lines: Vec<String> = findings.iter().map(|f| format!("  - {f}")).collect();
    anyhow::anyhow!(
        "organisation policy forbids this launch ({} violation{}):\n{}\nnothing was launched; \
         change the bottle or ask whoever ships the policy modules",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )
}
