//! The command line: argument parsing and one module per command.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod agents;
mod plugins;
mod start;

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
    /// Plan (and, in a later release, launch) a bottle for an agent.
    Start(start::StartArgs),
    /// Agents found, with their bottles and where each file was found.
    Agents,
    /// One agent: its bottle, env names, skills, prompt and sidecars.
    Info(agents::InfoArgs),
    /// Manage plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Start(args) => start::run(args),
        Command::Agents => agents::list(),
        Command::Info(args) => agents::info(args),
        Command::Plugins(command) => plugins::run(command),
    }
}
