//! `bottle plugins …`.

use std::process::ExitCode;

use clap::Subcommand;

use super::Format;
use crate::prepare;

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every plugin this host loads: name, version, WIT package, source and sha256.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// Run a plugin command.
pub fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginsCommand::List { format } => list(format),
    }
}

fn list(format: Format) -> anyhow::Result<ExitCode> {
    let home = crate::home::Home::from_env()?;
    let registry = prepare::load_plugins(&home)?;
    let rows: Vec<serde_json::Value> = registry
        .plugins()
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.description.name,
                "version": p.description.version,
                "wit": format!("bottle:plugin@{}", p.wit_version),
                "source": p.source.to_string(),
                "sha256": p.sha256,
                "sections": p.description.sections,
                "summary": p.description.summary,
            })
        })
        .collect();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Text => {
            println!(
                "{:<14} {:<8} {:<20} {:<10} sha256",
                "NAME", "VERSION", "WIT", "SOURCE"
            );
            for p in registry.plugins() {
                println!(
                    "{:<14} {:<8} {:<20} {:<10} {}",
                    p.description.name,
                    p.description.version,
                    format!("bottle:plugin@{}", p.wit_version),
                    p.source.to_string(),
                    &p.sha256[..16],
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
