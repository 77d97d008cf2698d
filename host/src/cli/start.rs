//! `bottle start` and `bottle resume`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{Format, block_on};
use crate::lifecycle::{self, StartRequest};
use crate::snapshot::resume::{self, Continue};
use crate::snapshot::{self, sessions};
use crate::{model_login, prepare, render};

/// Arguments of `bottle start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The agent to start (default: the only agent, or the embedded default when there are no
    /// manifests).
    pub agent: Option<String>,
    /// Print the launch plan and exit without touching Docker (also `BOTTLE_DRY_RUN=1`, or
    /// claude-bottle's `CLAUDE_BOTTLE_DRY_RUN=1`).
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of the dry run (text when not given); only with a dry run.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Launch without asking y/N after the preflight.
    #[arg(long, short)]
    pub yes: bool,
    /// Launch and provision, print the identity, and leave the bottle running.
    #[arg(long)]
    pub detach: bool,
    /// Bake this working tree (with .git) into the agent image at /workspace.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Pin the bottle's identity instead of `<agent>[-N]`.
    #[arg(long)]
    pub name: Option<String>,
    /// Build the agent image without Claude Code (it needs the npm registry on this host).
    #[arg(long)]
    pub no_claude_code: bool,
    /// Let a project's own agent (`./.bottle/agents/`) run in a home bottle that holds
    /// credentials without typing the bottle's name (`--yes` does not cover that).
    #[arg(long)]
    pub trust_project_agent: bool,
    /// Start Claude Code in its remote-control mode, to drive the session from claude.ai/code or
    /// the Claude app (needs a Claude login: CLAUDE_CODE_OAUTH_TOKEN).
    #[arg(long)]
    pub remote_control: bool,
    /// Learn mode: the egress proxy allows and records hosts off the allowlist instead of refusing
    /// them (routes, DLP and the SSRF guard unchanged; not with pipelock); afterwards `bottle
    /// allowlist suggest <identity>` prints the allowlist to paste.
    #[arg(long)]
    pub learn: bool,
}

/// Run `bottle start`.
pub fn run(args: StartArgs) -> anyhow::Result<ExitCode> {
    let dry_run = args.dry_run || dry_run_from_env()?;
    if args.format.is_some() && !dry_run {
        anyhow::bail!(
            "--format applies only to a dry run; add --dry-run (or set BOTTLE_DRY_RUN=1), or drop \
             --format to launch"
        );
    }
    let home = crate::home::Home::from_env()?;
    let cwd = std::env::current_dir()?;
    let mut registry = prepare::load_plugins(&home)?;
    let catalog = prepare::catalog(&home, &cwd);
    let mut selection = prepare::select(
        &catalog,
        args.agent.as_deref(),
        &registry.external_sections(),
    )?;
    if selection.embedded {
        eprintln!(
            "note: no manifests under {} — using the embedded default agent `{}` in bottle `{}` \
             (see the README to write your own)",
            home.root().display(),
            selection.agent.name,
            selection.bottle.name
        );
    }
    if let Some(note) = model_login::apply(&mut selection)? {
        eprintln!("{note}");
    }
    if args.remote_control {
        eprintln!("{}", model_login::remote_control(&mut selection)?);
    }
    if args.learn {
        crate::learn::refuse_with_pipelock(&selection.bottle)?;
        selection.bottle.egress_proxy.learn = true;
    }
    let plan = prepare::dry_run(&mut registry, &selection)?;
    if dry_run {
        let findings = prepare::policy_findings(&home, &registry, &plan, engine_runtimes_if_any())?;
        match args.format.unwrap_or(Format::Text) {
            Format::Text => print!("{}", render::dry_run(&plan)),
            Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        }
        if findings.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(prepare::policy_refusal(&findings));
    }
    let request = StartRequest {
        yes: args.yes,
        detach: args.detach,
        cwd: args.cwd.map(|p| p.canonicalize()).transpose()?,
        name: args.name,
        install_claude_code: !args.no_claude_code,
        trust_project_agent: args.trust_project_agent,
        restore: false,
    };
    let code = block_on(lifecycle::start(&home, registry, selection, &plan, request))?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The variables that turn a launch into a dry run: bottle's own, and claude-bottle's name so that
/// scripts written for it keep working.
const DRY_RUN_VARS: [&str; 2] = ["BOTTLE_DRY_RUN", "CLAUDE_BOTTLE_DRY_RUN"];

/// Whether the environment asks for a dry run. A value that is neither yes nor no is an error
/// rather than a guess: reading `BOTTLE_DRY_RUN=ture` as "launch" would start what was meant to
/// be only printed.
fn dry_run_from_env() -> anyhow::Result<bool> {
    let mut wanted = false;
    for name in DRY_RUN_VARS {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        let value = value.to_string_lossy().trim().to_ascii_lowercase();
        wanted |= match value.as_str() {
            "1" | "true" | "yes" | "on" => true,
            "" | "0" | "false" | "no" | "off" => false,
            _ => anyhow::bail!(
                "{name}={value} is neither yes nor no; set it to 1 for a dry run or 0 (or unset \
                 it) to launch"
            ),
        };
    }
    Ok(wanted)
}

/// Arguments of `bottle resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The bottle's identity (`bottle list --all` shows those with kept state).
    pub identity: String,
    /// Continue this conversation (`claude --resume <uuid>`) instead of the last one.
    #[arg(long, value_name = "UUID")]
    pub session: Option<String>,
    /// List the kept conversations (time, id, first prompt line) and exit.
    #[arg(long, conflicts_with = "session")]
    pub list_sessions: bool,
    /// Launch without asking y/N.
    #[arg(long, short)]
    pub yes: bool,
    /// Launch and leave running.
    #[arg(long)]
    pub detach: bool,
    /// Build the agent image without Claude Code.
    #[arg(long)]
    pub no_claude_code: bool,
    /// As for `bottle start`.
    #[arg(long)]
    pub trust_project_agent: bool,
}

/// Run `bottle resume`: relaunch a preserved identity with the same agent and working tree, its
/// kept `~/.claude` copied back and its conversation continued.
pub fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let home = crate::home::Home::from_env()?;
    let identity = crate::launch::identity::Identity::from_name(&args.identity);
    let record =
        crate::launch::state::read(&home.root().join("state"), &identity).map_err(|e| {
            anyhow::anyhow!(
                "no preserved state for `{}` ({e}); `bottle list --all` shows the bottles that \
                 can be resumed",
                args.identity
            )
        })?;
    let state_dir = crate::launch::state::dir(&home.root().join("state"), &identity);
    if args.list_sessions {
        print!(
            "{}",
            render_sessions(&args.identity, &sessions::list(&state_dir))
        );
        return Ok(ExitCode::SUCCESS);
    }
    let which = chosen_session(&args, &state_dir)?;
    let mut registry = prepare::load_plugins(&home)?;
    let catalog = prepare::catalog(&home, &record.cwd);
    let mut selection =
        prepare::select(&catalog, Some(&record.agent), &registry.external_sections())?;
    // Before the approved Dockerfile below: the login replaces the embedded bottle.
    if let Some(note) = model_login::apply(&mut selection)? {
        eprintln!("{note}");
    }
    if let Some(which) = which {
        eprintln!("{}", continue_note(&mut selection.agent, &which));
    } else if snapshot::has_copy(&state_dir) {
        eprintln!(
            "no conversation was kept; the agent's ~/.claude is copied back and it starts anew"
        );
    }
    let approved = crate::supervise::apply::saved_dockerfile(&state_dir);
    if approved.exists() {
        // An operator approved a new agent image through supervise: build it, as if the agent's
        // manifest named this Dockerfile.
        eprintln!(
            "using the agent Dockerfile approved through supervise: {}",
            approved.display()
        );
        selection.bottle.image = None;
        selection.bottle.dockerfile = Some(approved);
    }
    let plan = prepare::dry_run(&mut registry, &selection)?;
    let request = StartRequest {
        yes: args.yes,
        detach: args.detach,
        cwd: record.workspace.clone(),
        name: Some(record.identity.clone()),
        install_claude_code: !args.no_claude_code,
        trust_project_agent: args.trust_project_agent,
        restore: true,
    };
    let code = block_on(lifecycle::start(&home, registry, selection, &plan, request))?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Which conversation to continue: the one named (it must be kept), else the last one when any
/// is kept, else none.
fn chosen_session(
    args: &ResumeArgs,
    state_dir: &std::path::Path,
) -> anyhow::Result<Option<Continue>> {
    let kept = sessions::list(state_dir);
    let Some(id) = &args.session else {
        return Ok((!kept.is_empty()).then_some(Continue::Last));
    };
    if !sessions::is_session_id(id) {
        anyhow::bail!(
            "--session takes a session id such as 0f0e0d0c-0b0a-4909-8807-060504030201; \
             `bottle resume {} --list-sessions` lists them",
            args.identity
        );
    }
    if !kept.iter().any(|s| &s.id == id) {
        anyhow::bail!(
            "no conversation {id} is kept for `{}`; `bottle resume {0} --list-sessions` lists \
             the kept ones",
            args.identity
        );
    }
    Ok(Some(Continue::Session(id.clone())))
}

/// Rewrite the agent's command to continue, and say what resuming does for this agent.
fn continue_note(agent: &mut bottle_manifest::Agent, which: &Continue) -> String {
    let how = match which {
        Continue::Last => "claude --continue: the last conversation".to_owned(),
        Continue::Session(id) => format!("claude --resume {id}"),
    };
    if resume::continue_command(agent, which) {
        format!("resuming with the agent's ~/.claude copied back; Claude Code starts with {how}")
    } else {
        format!(
            "agent `{}` runs its own command, not Claude Code: its ~/.claude is copied back and \
             the command runs as written (only Claude Code gets the continue flag)",
            agent.name
        )
    }
}

/// The kept conversations, newest first.
fn render_sessions(identity: &str, kept: &[sessions::Session]) -> String {
    if kept.is_empty() {
        return format!("no conversations are kept for `{identity}`\n");
    }
    let mut out = format!("{:<16}  {:<36}  FIRST PROMPT\n", "WHEN (UTC)", "SESSION");
    for session in kept {
        out.push_str(&format!(
            "{:<16}  {:<36}  {}\n",
            sessions::shown_time(session.modified),
            session.id,
            session.first_prompt
        ));
    }
    out
}

/// The engine's runtimes when an engine answers quickly; none otherwise (a dry run needs no
/// engine, and then policies see the runtime as unknown).
fn engine_runtimes_if_any() -> Vec<String> {
    let ask = async {
        let engine = crate::docker::Engine::connect().await?;
        Ok(engine.runtimes().await?)
    };
    block_on(async {
        Ok(tokio::time::timeout(std::time::Duration::from_secs(2), ask)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("engine timeout")))
            .unwrap_or_default())
    })
    .unwrap_or_default()
}
