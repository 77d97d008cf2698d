//! `bottle agents` and `bottle info`.

use std::process::ExitCode;

use clap::Args;

use crate::{prepare, render};

/// Arguments of `bottle info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The agent.
    pub agent: String,
}

/// `bottle agents`: every agent, its bottle, and where its file was found.
pub fn list() -> anyhow::Result<ExitCode> {
    let home = crate::home::Home::from_env()?;
    let cwd = std::env::current_dir()?;
    let catalog = prepare::catalog(&home, &cwd);
    if catalog.is_empty() {
        println!(
            "no agents under {} or ./.bottle/agents; `bottle start` uses the embedded default agent `{}`",
            home.root().display(),
            bottle_manifest::defaults::AGENT_NAME
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20} {:<20} FILE", "AGENT", "BOTTLE");
    for entry in catalog.agents() {
        let bottle = match catalog.agent(&entry.name) {
            Ok(agent) => agent.bottle,
            Err(e) => format!("(error: {})", first_line(&e.to_string())),
        };
        let shadows = entry
            .shadows
            .as_ref()
            .map(|p| format!("  (shadows {})", p.display()))
            .unwrap_or_default();
        println!(
            "{:<20} {:<20} {}{shadows}",
            entry.name,
            bottle,
            entry.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `bottle info <agent>`: its bottle, env names, skills, prompt and sidecars.
pub fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let home = crate::home::Home::from_env()?;
    let cwd = std::env::current_dir()?;
    let mut registry = prepare::load_plugins(&home)?;
    let catalog = prepare::catalog(&home, &cwd);
    let selection = prepare::select(&catalog, Some(&args.agent), &registry.external_sections())?;
    let agent = &selection.agent;
    let bottle = &selection.bottle;
    let found = match catalog.agents().find(|e| e.name == agent.name) {
        Some(entry) => {
            let shadows = entry
                .shadows
                .as_ref()
                .map(|p| format!(", shadows {}", p.display()))
                .unwrap_or_default();
            format!("{}{shadows}", entry.path.display())
        }
        None => "embedded default".to_owned(),
    };
    println!("agent:    {} ({found})", agent.name);
    println!("bottle:   {}", bottle.name);
    let env: Vec<String> = bottle.env.keys().cloned().collect();
    println!(
        "env:      {}",
        if env.is_empty() {
            "(none)".into()
        } else {
            env.join(", ")
        }
    );
    let secrets: Vec<String> = bottle.secret_names().into_iter().collect();
    println!(
        "secrets:  {}",
        if secrets.is_empty() {
            "(none)".into()
        } else {
            secrets.join(", ")
        }
    );
    println!(
        "skills:   {}",
        if agent.skills.is_empty() {
            "(none)".into()
        } else {
            agent.skills.join(", ")
        }
    );
    let plan = prepare::dry_run(&mut registry, &selection)?;
    let sidecars: Vec<&str> = plan.sidecars.iter().map(|s| s.name.as_str()).collect();
    println!(
        "sidecars: {}",
        if sidecars.is_empty() {
            "(none)".into()
        } else {
            sidecars.join(", ")
        }
    );
    println!("preflight: {}", render::preflight(&plan));
    println!("prompt:\n{}", indent(&agent.prompt));
    Ok(ExitCode::SUCCESS)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
