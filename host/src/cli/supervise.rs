//! `bottle supervise list|approve|reject`: the operator's side of supervise, for scripts.
//! `bottle dashboard` is the interactive view of the same queues.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Format, block_on};
use crate::docker::Engine;
use crate::home::Home;
use crate::supervise::apply::ApplyOptions;
use crate::supervise::{self, Decider, Item, preview};

/// `bottle supervise …`.
#[derive(Debug, Subcommand)]
pub enum SuperviseCommand {
    /// Proposals waiting for a decision, oldest first (with --all, decided ones too).
    List(ListArgs),
    /// Apply a proposal to its running bottle and answer the agent.
    Approve(ApproveArgs),
    /// Refuse a proposal; the reason is returned to the agent.
    Reject(RejectArgs),
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include decided proposals.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Arguments of `approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The proposal id (or `<identity>/<id>`).
    pub id: String,
    /// Notes returned to the agent.
    #[arg(long, default_value = "")]
    pub notes: String,
    /// Edit the change in `$EDITOR` before applying it.
    #[arg(long)]
    pub edit: bool,
    /// Allow a route to send an existing token to a host it was never sent to.
    #[arg(long)]
    pub allow_new_token_host: bool,
}

/// Arguments of `reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The proposal id (or `<identity>/<id>`).
    pub id: String,
    /// The reason, returned to the agent.
    #[arg(long)]
    pub notes: String,
}

/// Run `bottle supervise …`.
pub fn run(command: SuperviseCommand) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    match command {
        SuperviseCommand::List(args) => list(&home, &args),
        SuperviseCommand::Approve(args) => approve(&home, args),
        SuperviseCommand::Reject(args) => reject(&home, &args),
    }
}

fn list(home: &Home, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let items = supervise::items(home, !args.all);
    match args.format {
        Format::Json => {
            let json: Vec<_> = items.iter().map(item_json).collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Text => print!("{}", render_list(&items)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The proposals as a table, then each one's justification and diff (for `--once` too).
pub fn render_list(items: &[Item]) -> String {
    if items.is_empty() {
        return "no pending proposals\n".into();
    }
    let mut out = String::new();
    for item in items {
        let p = &item.entry.proposal;
        let status = item
            .entry
            .decision
            .as_ref()
            .map_or("pending", |d| d.status.as_str());
        out.push_str(&format!(
            "{}  {}  {}  {}  {}\n    {}\n    why: {}\n",
            p.id,
            item.bottle.identity,
            p.tool.name(),
            status,
            p.created_at,
            preview::summary(&p.change),
            p.justification.lines().next().unwrap_or_default(),
        ));
        let current = item.bottle.queue.current().unwrap_or_default();
        let diff = preview::diff(&current, &p.change, &item.bottle.state_dir);
        for line in diff.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

fn item_json(item: &Item) -> serde_json::Value {
    serde_json::json!({
        "bottle": item.bottle.identity,
        "proposal": item.entry.proposal,
        "decision": item.entry.decision,
    })
}

fn approve(home: &Home, args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let item = supervise::find_item(home, &args.id)?;
    let edited = if args.edit {
        Some(edit_in_editor(&item.entry.proposal.change)?)
    } else {
        None
    };
    let options = ApplyOptions {
        allow_new_token_hosts: args.allow_new_token_host,
    };
    let decided = block_on(async {
        let engine = Engine::connect().await?;
        let decider = Decider {
            home,
            engine: &engine,
        };
        Ok(decider.approve(&item, edited, &args.notes, options).await?)
    })?;
    print!("{}", decided.diff);
    eprintln!(
        "{} {} ({}); audit: {}",
        decided.status.as_str(),
        item.entry.proposal.id,
        item.bottle.identity,
        decided.audit_file.display()
    );
    if let Some(next) = decided.next {
        eprintln!("{next}");
    }
    Ok(ExitCode::SUCCESS)
}

fn reject(home: &Home, args: &RejectArgs) -> anyhow::Result<ExitCode> {
    let item = supervise::find_item(home, &args.id)?;
    let decided = block_on(async {
        let engine = Engine::connect().await?;
        let decider = Decider {
            home,
            engine: &engine,
        };
        Ok(decider.reject(&item, &args.notes)?)
    })?;
    eprintln!(
        "rejected {} ({}); audit: {}",
        item.entry.proposal.id,
        item.bottle.identity,
        decided.audit_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Open the change as YAML in `$EDITOR` (`$VISUAL`, else `vi`) and parse the result.
pub fn edit_in_editor(
    change: &bottle_supervise_queue::Change,
) -> anyhow::Result<bottle_supervise_queue::Change> {
    let text = edit_text("bottle-proposal-", &preview::editable(change))?;
    preview::parse_edited(change, &text).map_err(anyhow::Error::msg)
}

/// Open `initial` in `$EDITOR` (`$VISUAL`, else `vi`) as a YAML file and return what was saved.
pub fn edit_text(prefix: &str, initial: &str) -> anyhow::Result<String> {
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".yaml")
        .tempfile()?;
    file.write_all(initial.as_bytes())?;
    file.flush()?;
    let editor = ["VISUAL", "EDITOR"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    // `$EDITOR` may carry arguments (`code --wait`); run it through the shell like git does.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "the editor exited with {status}; nothing was applied"
    );
    Ok(std::fs::read_to_string(file.path())?)
}
