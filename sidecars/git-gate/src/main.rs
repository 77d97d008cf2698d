//! `bottle-git-gate`: the git gate sidecar's program.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The only way an agent in a bottle can push.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prepare the mirrors and become git daemon.
    Serve {
        /// The configuration the git-gate plugin rendered.
        #[arg(long, default_value = bottle_git_gate_config::DEFAULT_PATH)]
        config: PathBuf,
        /// Where the bare mirrors live.
        #[arg(long, default_value = "/var/lib/bottle-gate")]
        data: PathBuf,
        /// Override the config's listen address (`host:port`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// git daemon's access hook (service, path, host, canonical host, ip, port).
    AccessHook {
        /// The configuration.
        #[arg(long)]
        config: PathBuf,
        /// What git daemon passes.
        args: Vec<String>,
    },
    /// The pre-receive hook of one repository.
    PreReceive {
        /// The configuration.
        #[arg(long)]
        config: PathBuf,
        /// The repository's name.
        #[arg(long)]
        repo: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve {
            config,
            data,
            listen,
        } => match bottle_git_gate::serve::serve(&config, &data, listen.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::AccessHook { config, args } => {
            let service = args.first().map(String::as_str).unwrap_or_default();
            let path = args.get(1).map(String::as_str).unwrap_or_default();
            ExitCode::from(bottle_git_gate::hooks::access(&config, service, path) as u8)
        }
        Command::PreReceive { config, repo } => {
            match bottle_git_gate::hooks::pre_receive(&config, &repo) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("git gate: {e:#}");
    ExitCode::FAILURE
}
