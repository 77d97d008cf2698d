//! `bottle init`, `bottle edit` and `bottle migrate`: writing the manifests themselves.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bottle_manifest::{Agent, Bottle, Entry, Origin};
use clap::Args;

use crate::edit::{self, Outcome};
use crate::home::Home;
use crate::{migrate, prepare, starter};

/// Arguments of `bottle init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The agent's name (asked on a terminal when not given).
    #[arg(long)]
    pub agent: Option<String>,
    /// The bottle's name (asked on a terminal when not given).
    #[arg(long)]
    pub bottle: Option<String>,
}

/// Run `bottle init`.
pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    let agent = name_or_ask(args.agent, "agent", "dev")?;
    let bottle = name_or_ask(args.bottle, "bottle", "work")?;
    let written = starter::write(home.root(), &agent, &bottle)?;
    println!(
        "wrote {} (the agent: its prompt, skills, command)",
        written.agent.display()
    );
    println!(
        "wrote {} (the bottle: hosts, credentials, git upstreams)",
        written.bottle.display()
    );
    println!("next:");
    println!(
        "  bottle edit --bottle {bottle}     # allow hosts, add credentials or a git upstream"
    );
    println!("  bottle edit --agent {agent}       # the agent's prompt");
    println!("  bottle start {agent} --dry-run    # what would launch");
    println!("  bottle start {agent}");
    Ok(ExitCode::SUCCESS)
}

/// The given name, or one asked for on the terminal (Enter takes `default`).
fn name_or_ask(given: Option<String>, what: &str, default: &str) -> anyhow::Result<String> {
    if let Some(name) = given {
        return Ok(name);
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "no terminal to ask for the {what}'s name on; pass --agent NAME --bottle NAME"
    );
    eprint!("{what} name [{default}]: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let answer = answer.trim();
    Ok(if answer.is_empty() { default } else { answer }.to_string())
}

/// Arguments of `bottle edit`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["name", "agent", "bottle"])))]
pub struct EditArgs {
    /// An agent or a bottle (when both have this name, say which with --agent or --bottle).
    pub name: Option<String>,
    /// The agent of this name.
    #[arg(long, conflicts_with_all = ["name", "bottle"])]
    pub agent: Option<String>,
    /// The bottle of this name.
    #[arg(long, conflicts_with_all = ["name", "agent"])]
    pub bottle: Option<String>,
}

/// Which manifest to edit.
enum Target {
    Agent(Entry),
    Bottle(Entry),
}

/// Run `bottle edit`.
pub fn edit(args: EditArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    let catalog = prepare::catalog(&home, &std::env::current_dir()?);
    let agent = |name: &str| catalog.agent_entry(name).cloned();
    let bottle = |name: &str| catalog.bottle_entry(name).cloned();
    let target = match (&args.name, &args.agent, &args.bottle) {
        (_, Some(name), _) => agent(name).map(Target::Agent),
        (_, _, Some(name)) => bottle(name).map(Target::Bottle),
        (Some(name), ..) => match (agent(name), bottle(name)) {
            (Some(_), Some(_)) => anyhow::bail!(
                "both an agent and a bottle are named `{name}`; say which: \
                 `bottle edit --agent {name}` or `bottle edit --bottle {name}`"
            ),
            (a, b) => a.map(Target::Agent).or(b.map(Target::Bottle)),
        },
        (None, None, None) => unreachable!("clap requires one of them"),
    };
    let Some(target) = target else {
        let name = args.name.or(args.agent).or(args.bottle).unwrap_or_default();
        anyhow::bail!(
            "no agent or bottle `{name}` under {} (`bottle agents` lists them; `bottle init` \
             writes a first pair)",
            home.root().display()
        );
    };
    let (entry, check) = checker(target, &home)?;
    match edit::edit(&entry.path, &*check, &edit::run_editor)? {
        Outcome::Saved => println!("saved {}", entry.path.display()),
        Outcome::Unchanged => println!("no changes to {}", entry.path.display()),
        Outcome::Abandoned(why) => {
            anyhow::bail!("{why}; {} keeps its old contents", entry.path.display())
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A check that a text is a valid manifest of the target's kind, as `bottle start` reads it.
type Check = Box<dyn Fn(&str) -> Result<(), String>>;

/// The target's entry and the check its edits must pass.
fn checker(target: Target, home: &Home) -> anyhow::Result<(Entry, Check)> {
    match target {
        Target::Agent(entry) => {
            let origin = Origin::file(&entry.name, &entry.path, entry.source);
            let check = move |text: &str| {
                Agent::parse(text, &origin)
                    .map(drop)
                    .map_err(|e| e.to_string())
            };
            Ok((entry, Box::new(check)))
        }
        Target::Bottle(entry) => {
            // A bottle may hold the sections of installed plugins.
            let external = prepare::load_plugins(home)?.external_sections();
            let user_home = std::env::var_os("HOME").map(PathBuf::from);
            let origin = Origin::file(&entry.name, &entry.path, entry.source);
            let check = move |text: &str| {
                Bottle::parse(text, &origin, &external, user_home.as_deref())
                    .map(drop)
                    .map_err(|e| e.to_string())
            };
            Ok((entry, Box::new(check)))
        }
    }
}

/// Arguments of `bottle migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// claude-bottle's home (default: ~/.claude-bottle).
    #[arg(long)]
    pub from: Option<PathBuf>,
}

/// Run `bottle migrate`.
pub fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    let from = match args.from {
        Some(dir) => dir,
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(migrate::LEGACY_DIR))
            .ok_or_else(|| {
                anyhow::anyhow!("HOME is not set; name claude-bottle's home with --from DIR")
            })?,
    };
    let external = prepare::load_plugins(&home)?.external_sections();
    let report = migrate::migrate(&from, home.root(), &external)?;
    println!("{report}");
    println!(
        "claude-bottle's files are left as they were in {}; `bottle agents` lists what bottle reads",
        from.display()
    );
    Ok(ExitCode::SUCCESS)
}
