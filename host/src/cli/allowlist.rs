//! `bottle allowlist suggest`: the allowlist a learning session (`bottle start --learn`) showed
//! the bottle needs.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Format;
use crate::learn::{record, suggest};

/// `bottle allowlist …`.
#[derive(Debug, Subcommand)]
pub enum AllowlistCommand {
    /// Print the minimal `egress.allowlist` (globbed where 3+ hosts share a domain) and the
    /// routes' paths a `bottle start --learn` session used, ready to paste into the bottle.
    Suggest(SuggestArgs),
}

/// Arguments of `bottle allowlist suggest`.
#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// The identity the learning bottle ran as (`bottle start --learn` prints it).
    pub identity: String,
    /// Output format: bottle manifest YAML (text, the default) or JSON.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Run an `allowlist` subcommand.
pub fn run(command: AllowlistCommand) -> anyhow::Result<ExitCode> {
    match command {
        AllowlistCommand::Suggest(args) => suggest_cmd(args),
    }
}

fn suggest_cmd(args: SuggestArgs) -> anyhow::Result<ExitCode> {
    let home = crate::home::Home::from_env()?;
    let learned = record::read(home.root(), &args.identity)?;
    let suggestion = suggest::suggest(&learned);
    match args.format {
        Format::Text => print!("{}", suggest::render_yaml(&suggestion)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&suggestion)?),
    }
    Ok(ExitCode::SUCCESS)
}
