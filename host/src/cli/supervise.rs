//! `bottle supervise list|approve|reject`: the operator's side of supervise, for scripts.
//! `bottle dashboard` is the interactive view of the same queues.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Format, block_on};
use crate::docker::Engine;
use crate::home::Home;
use crate::snapshot::rescue;
use crate::supervise::apply::ApplyOptions;
use crate::supervise::{self, DecideError, Decided, Decider, Item, preview};

/// `bottle supervise …`.
#[derive(Debug, Subcommand)]
pub enum SuperviseCommand {
    /// Proposals waiting for a decision, oldest first (with --all, decided ones too).
    List(ListArgs),
    /// One proposal in full: its whole justification, its diff and its decision, if any.
    Show(ShowArgs),
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

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The proposal id (or `<identity>/<id>`).
    pub id: String,
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
    /// For an agent image (which stops the bottle): push the agent's commits that are on no
    /// upstream ref to `bottle/rescue/<identity>` through the git gate without asking.
    #[arg(long)]
    pub rescue: bool,
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
        SuperviseCommand::Show(args) => show(&home, &args),
        SuperviseCommand::Approve(args) => approve(&home, args),
        SuperviseCommand::Reject(args) => reject(&home, &args),
    }
}

fn list(home: &Home, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let items = supervise::items(home, !args.all);
    match args.format {
        Format::Json => {
            let json: Vec<_> = items.iter().map(item_json).collect();
            println!("{}", render_json(&json)?);
        }
        Format::Text => print!("{}", render_list(&items)),
    }
    Ok(ExitCode::SUCCESS)
}

fn show(home: &Home, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let item = supervise::find_item(home, &args.id)?;
    match args.format {
        Format::Json => println!("{}", render_json(&item_json(&item))?),
        Format::Text => print!("{}", render_item(&item)),
    }
    Ok(ExitCode::SUCCESS)
}

/// JSON for a terminal or a script: it parses to the same values, but an unprintable character
/// in a string is a `\uXXXX` escape, never the character itself (serde_json leaves DEL, C1 and
/// bidi controls raw).
pub fn render_json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let text = serde_json::to_string_pretty(value)?;
    Ok(bottle_supervise_queue::text::escape_json(&text).into_owned())
}

/// One proposal in full, every field escaped for display.
pub fn render_item(item: &Item) -> String {
    let p = &item.entry.proposal;
    let shown = preview::shown;
    let mut out = format!(
        "proposal  {}\nbottle    {}\ntool      {}\nasked     {}\nsummary   {}\n",
        shown(&p.id),
        shown(&item.bottle.identity),
        p.tool.name(),
        shown(&p.created_at),
        preview::summary(&p.change),
    );
    match &item.entry.decision {
        Some(d) => out.push_str(&format!(
            "decision  {} at {}: {}\n",
            d.status.as_str(),
            shown(&d.decided_at),
            shown(&d.notes)
        )),
        None => out.push_str("decision  pending\n"),
    }
    out.push_str("\njustification:\n");
    for line in shown(&p.justification).lines() {
        out.push_str(&format!("    {line}\n"));
    }
    let current = item.bottle.queue.current().unwrap_or_default();
    let diff = preview::diff(&current, &p.change, &item.bottle.state_dir);
    out.push_str("\nchange, as a diff against the bottle's current configuration:\n");
    for line in diff.lines() {
        out.push_str(&format!("    {line}\n"));
    }
    out
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
            preview::shown(&p.id),
            preview::shown(&item.bottle.identity),
            p.tool.name(),
            status,
            preview::shown(&p.created_at),
            preview::summary(&p.change),
            preview::shown(p.justification.lines().next().unwrap_or_default()),
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
        if matches!(
            item.entry.proposal.change,
            bottle_supervise_queue::Change::Dockerfile { .. }
        ) {
            rescue_before_stop(&engine, &item.bottle.identity, args.rescue).await?;
        }
        let decider = Decider {
            home,
            engine: &engine,
        };
        let decided = decider.approve(&item, edited, &args.notes, options).await?;
        stop_for_resume(&engine, home, &item.bottle.identity, &decided).await?;
        Ok(decided)
    })?;
    print!("{}", preview::shown(&decided.diff));
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

/// After an approval that asks for it ([`Decided::stop_for_resume`]): give the sidecar a moment to
/// hand the agent its answer, then stop the bottle and keep its state, so `bottle resume` builds
/// the new image.
pub async fn stop_for_resume(
    engine: &Engine,
    home: &Home,
    identity: &str,
    decided: &Decided,
) -> Result<(), DecideError> {
    if !decided.stop_for_resume {
        return Ok(());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    crate::lifecycle::remove_bottle(
        engine,
        home,
        identity,
        Some(crate::snapshot::Why::Capability),
    )
    .await
    .map(drop)
    .map_err(|e| DecideError::Stop(e.to_string()))
}

/// An approved agent image stops the bottle: first show the agent's commits that are on no
/// upstream ref and offer to push them to `bottle/rescue/<identity>` (y/N; `--rescue` says yes).
/// Nothing is committed for the agent.
async fn rescue_before_stop(engine: &Engine, identity: &str, yes: bool) -> anyhow::Result<()> {
    let agent = crate::launch::identity::Identity::from_name(identity).agent_container();
    if !engine.is_running(&agent).await.unwrap_or(false) {
        return Ok(());
    }
    let found = match rescue::find(engine, &agent).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("could not look for the agent's unpushed commits: {e}");
            return Ok(());
        }
    };
    if found.is_empty() {
        return Ok(());
    }
    eprint!("{}", found.warning(identity));
    if found.unpushed.is_empty() {
        return Ok(());
    }
    let push = yes
        || (std::io::stdin().is_terminal()
            && super::kept::ask(&format!(
                "push them through the git gate to bottle/rescue/{identity}"
            ))?);
    if !push {
        eprintln!("not pushed (`--rescue` pushes them without asking)");
        return Ok(());
    }
    for line in rescue::push(engine, &agent, identity, &found).await {
        eprintln!("  {line}");
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::SupervisedBottle;
    use bottle_supervise_queue::text::is_unprintable;
    use bottle_supervise_queue::{Change, Decision, Entry, Proposal, Queue, Status, Tool};

    /// A proposal and decision as files written by something other than the sidecar and the
    /// host could hold them.
    fn hostile_item(dir: &std::path::Path) -> Item {
        Item {
            bottle: SupervisedBottle {
                identity: "b1".into(),
                state_dir: dir.into(),
                queue: Queue::at(dir.join("q")),
            },
            entry: Entry {
                proposal: Proposal {
                    id: "1-a".into(),
                    tool: Tool::CapabilityBlock,
                    justification: "fine\u{1b}[2K\rapproved by admin\n\u{202e}gpj.exe\u{85}".into(),
                    created_at: "2026-01-01T00:00:00Z".into(),
                    change: Change::Dockerfile {
                        dockerfile: "FROM x\nRUN \u{1b}]8;;http://evil\u{7}curl\u{7f}\n".into(),
                    },
                },
                decision: Some(Decision {
                    id: "1-a".into(),
                    status: Status::Rejected,
                    notes: "no\u{1b}[1A".into(),
                    decided_at: "2026-01-01T00:00:01Z".into(),
                    applied: None,
                }),
            },
        }
    }

    fn unprintable(text: &str) -> Vec<char> {
        text.chars()
            .filter(|&c| c != '\n' && is_unprintable(c))
            .collect()
    }

    #[test]
    fn list_and_show_escape_what_a_terminal_would_act_on() {
        let dir = tempfile::tempdir().unwrap();
        let item = hostile_item(dir.path());
        let list = render_list(std::slice::from_ref(&item));
        // Positive control: the proposal is listed, with its justification and diff.
        assert!(list.contains("1-a") && list.contains("why: fine"), "{list}");
        assert!(list.contains("+RUN"), "{list}");
        assert!(unprintable(&list).is_empty(), "{list:?}");
        assert!(list.contains("fine\\u001b[2K\\u000dapproved"), "{list}");
        let shown = render_item(&item);
        assert!(unprintable(&shown).is_empty(), "{shown:?}");
        for escape in [
            "\\u202egpj.exe\\u0085",
            "RUN \\u001b]8;;http://evil\\u0007curl\\u007f",
            "no\\u001b[1A",
        ] {
            assert!(shown.contains(escape), "{escape} in {shown}");
        }
    }

    #[test]
    fn json_output_escapes_but_keeps_the_values() {
        let dir = tempfile::tempdir().unwrap();
        let item = hostile_item(dir.path());
        let json = render_json(&item_json(&item)).unwrap();
        assert!(unprintable(&json).is_empty(), "{json:?}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, item_json(&item), "the same values");
        assert!(json.contains("\\u202e"), "{json}");
    }
}
