//! `bottle doctor --isolation`: the launch's isolation self-test, run in a throwaway bottle and
//! shown whole (every check, control and probe), for people or for CI.

use std::process::ExitCode;

use super::super::{Format, block_on};
use crate::home::Home;
use crate::{lifecycle, prepare};

/// Launch, test, remove; print the report; fail when any check failed.
pub fn run(agent: Option<&str>, format: Format) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    let cwd = std::env::current_dir()?;
    let mut registry = prepare::load_plugins(&home)?;
    let catalog = prepare::catalog(&home, &cwd);
    let selection = prepare::select(&catalog, agent, &registry.external_sections())?;
    let plan = prepare::dry_run(&mut registry, &selection)?;
    eprintln!(
        "launching a throwaway bottle `{}` for agent `{}` (secrets are placeholders) …",
        selection.bottle.name, selection.agent.name
    );
    let report = block_on(lifecycle::throwaway_self_test(
        &home, registry, &selection, &plan,
    ))?;
    match format {
        Format::Text => print!("{}", report.table()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
