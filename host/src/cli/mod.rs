//! The command line: argument parsing and one module per command.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod agents;
mod allowlist;
mod bottles;
mod dashboard;
mod doctor;
mod kept;
mod manifests;
mod plugins;
mod start;
mod supervise;

/// Run an AI coding agent in a Docker bottle that cannot leak what it must not.
#[derive(Debug, Parser)]
#[command(name = "bottle", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (repeat for more); `BOTTLE_LOG` takes a full filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Launch a bottle for an agent (or print its plan with --dry-run).
    Start(start::StartArgs),
    /// Relaunch a bottle that kept its state (same identity, agent and manifests), with the
    /// agent's ~/.claude copied back and its last conversation continued (`--session`,
    /// `--list-sessions`).
    Resume(start::ResumeArgs),
    /// Running bottles: identity, agent, age, sidecars (`--all`: also kept state to resume).
    List(bottles::ListArgs),
    /// Run a command in a bottle's agent (default: a shell).
    Exec(bottles::ExecArgs),
    /// Logs of a bottle's containers (the egress proxy's audit lines among them).
    Logs(bottles::LogsArgs),
    /// Stop a bottle and remove everything it created (one that is gone: offer to delete its kept
    /// state).
    Stop(bottles::StopArgs),
    /// Remove everything labelled as bottle's that no live bottle owns (`--state`: kept state,
    /// `--images`: old bottle/* images).
    Cleanup(bottles::CleanupArgs),
    /// Check this machine: engine, runtimes, base image, plugin cache (`--isolation`: prove a
    /// bottle's isolation in a throwaway bottle).
    Doctor(doctor::DoctorArgs),
    /// Write a starter agent and bottle into the bottle home (asks their names, or --agent/--bottle).
    Init(manifests::InitArgs),
    /// Edit an agent or a bottle in $VISUAL/$EDITOR; it is replaced only when it is valid.
    Edit(manifests::EditArgs),
    /// Copy claude-bottle's agents and bottles (~/.claude-bottle) into the bottle home, rewritten
    /// where the format changed, and report what was done.
    Migrate(manifests::MigrateArgs),
    /// Agents found, with their bottles and where each file was found.
    Agents,
    /// One agent: its bottle, env names, skills, prompt and sidecars.
    Info(agents::InfoArgs),
    /// Manage plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Watch every bottle's supervise queue and decide interactively (or print it with --once).
    Dashboard(dashboard::DashboardArgs),
    /// Decide what agents asked for through supervise (for scripts; see `dashboard`).
    #[command(subcommand)]
    Supervise(supervise::SuperviseCommand),
    /// What a `bottle start --learn` session reached: `allowlist suggest <identity>` prints the
    /// allowlist to paste into the bottle.
    #[command(subcommand)]
    Allowlist(allowlist::AllowlistCommand),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Start(args) => start::run(args),
        Command::Resume(args) => start::resume(args),
        Command::List(args) => bottles::list(args),
        Command::Exec(args) => bottles::exec(args),
        Command::Logs(args) => bottles::logs(args),
        Command::Stop(args) => bottles::stop(args),
        Command::Cleanup(args) => bottles::cleanup(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Init(args) => manifests::init(args),
        Command::Edit(args) => manifests::edit(args),
        Command::Migrate(args) => manifests::migrate(args),
        Command::Agents => agents::list(),
        Command::Info(args) => agents::info(args),
        Command::Plugins(command) => plugins::run(command),
        Command::Supervise(command) => supervise::run(command),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Allowlist(command) => allowlist::run(command),
    }
}

/// Run a Docker command's future to completion on a fresh runtime. The runtime is then shut down
/// without waiting for blocking threads: a session's stdin reader may still be parked in `read`.
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(future);
    runtime.shutdown_background();
    result
}
