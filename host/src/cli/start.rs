//! `bottle start`.

use std::process::ExitCode;

use clap::Args;

use super::Format;
use crate::{prepare, render};

/// Arguments of `bottle start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The agent to start (default: the only agent, or the embedded default when there are no
    /// manifests).
    pub agent: Option<String>,
    /// Print the launch plan and exit without touching Docker.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of the dry run.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Run `bottle start`.
pub fn run(args: StartArgs) -> anyhow::Result<ExitCode> {
    let home = crate::home::Home::from_env()?;
    let cwd = std::env::current_dir()?;
    let mut registry = prepare::load_plugins(&home)?;
    let catalog = prepare::catalog(&home, &cwd);
    let selection = prepare::select(
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
    let plan = prepare::dry_run(&mut registry, &selection)?;
    if !args.dry_run {
        eprintln!("preflight: {}", render::preflight(&plan));
        anyhow::bail!(
            "launching on Docker is not part of this release yet; run `bottle start {} --dry-run` \
             to see the full plan",
            selection.agent.name
        );
    }
    match args.format {
        Format::Text => print!("{}", render::dry_run(&plan)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
    }
    Ok(ExitCode::SUCCESS)
}
