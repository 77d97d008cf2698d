//! Commands on running bottles: `list`, `exec`, `logs`, `stop`, `cleanup`, found by their labels.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Args;
use futures_util::StreamExt;

use super::block_on;
use crate::docker::{Engine, labels};
use crate::home::Home;
use crate::launch::identity::Identity;

/// A running (or orphaned) bottle, from labels.
#[derive(Debug, Default)]
struct Found {
    agent: String,
    owner: String,
    detached: bool,
    created: i64,
    sidecars: Vec<String>,
    agent_running: bool,
    /// The agent container's name, when it exists.
    agent_container: Option<String>,
}

async fn found(engine: &Engine) -> anyhow::Result<BTreeMap<String, Found>> {
    let mut bottles: BTreeMap<String, Found> = BTreeMap::new();
    for c in engine
        .containers_labelled(&[format!("{}=true", labels::MANAGED)])
        .await?
    {
        let l = c.labels.clone().unwrap_or_default();
        let Some(identity) = l.get(labels::IDENTITY) else {
            continue;
        };
        let entry = bottles.entry(identity.clone()).or_default();
        entry.agent = l.get(labels::AGENT).cloned().unwrap_or_default();
        entry.owner = l.get(labels::OWNER).cloned().unwrap_or_default();
        entry.detached = l.get(labels::DETACHED).is_some_and(|d| d == "true");
        match l.get(labels::SIDECAR) {
            Some(sidecar) => entry.sidecars.push(sidecar.clone()),
            None => {
                entry.agent_container = c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_owned());
                entry.created = c.created.unwrap_or(0);
                entry.agent_running = c
                    .state
                    .as_ref()
                    .is_some_and(|s| format!("{s:?}").to_lowercase().contains("running"));
            }
        }
    }
    for (_, l) in engine
        .networks_labelled(&[format!("{}=true", labels::MANAGED)])
        .await?
    {
        // A launch creates its networks first: they carry the owner before any container does.
        if let Some(identity) = l.get(labels::IDENTITY) {
            let entry = bottles.entry(identity.clone()).or_default();
            if entry.owner.is_empty() {
                entry.owner = l.get(labels::OWNER).cloned().unwrap_or_default();
                entry.detached = l.get(labels::DETACHED).is_some_and(|d| d == "true");
            }
        }
    }
    Ok(bottles)
}

impl Found {
    /// In use: its launching process still runs, or it was detached and its agent runs.
    fn live(&self) -> bool {
        owner_alive(&self.owner) || (self.detached && self.agent_running)
    }
}

/// Whether the process named by an owner label (`user@host:pid`) still runs here.
fn owner_alive(owner: &str) -> bool {
    let Some(pid) = owner.rsplit(':').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| cmd.contains("bottle"))
}

/// Arguments of `bottle list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Also the bottles that are gone but kept their state for `bottle resume` (identity, agent,
    /// when, why kept, size).
    #[arg(long)]
    pub all: bool,
}

/// `bottle list [--all]`.
pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    block_on(async {
        let engine = Engine::connect().await?;
        let bottles = found(&engine).await?;
        if args.all {
            let running = bottles.keys().cloned().collect();
            let kept = super::kept::kept(&home, &running);
            if !kept.is_empty() {
                print!("{}", super::kept::render(&kept));
                if !bottles.is_empty() {
                    println!();
                }
            }
        }
        if bottles.is_empty() {
            println!("no bottles running");
            return Ok(ExitCode::SUCCESS);
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        println!(
            "{:<24} {:<16} {:<8} {:<10} {:<8} SIDECARS",
            "IDENTITY", "AGENT", "AGE", "STATE", "RUNTIME"
        );
        for (identity, b) in &bottles {
            let state = if !b.live() {
                "orphaned"
            } else if b.agent_running {
                "running"
            } else {
                "starting"
            };
            let mut sidecars = b.sidecars.clone();
            sidecars.sort();
            let runtime = agent_runtime(&engine, b).await;
            println!(
                "{identity:<24} {:<16} {:<8} {state:<10} {runtime:<8} {}",
                b.agent,
                age(now - b.created),
                sidecars.join(",")
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The runtime the agent container really got (its `HostConfig.Runtime`), `-` without an agent.
async fn agent_runtime(engine: &Engine, bottle: &Found) -> String {
    let Some(container) = &bottle.agent_container else {
        return "-".to_owned();
    };
    engine
        .container_runtime(container)
        .await
        .unwrap_or_else(|_| "?".to_owned())
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// Arguments of `bottle exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The bottle.
    pub identity: String,
    /// The command (default: a login shell).
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// `bottle exec <identity> [cmd…]`: run a command in the agent as the agent user.
pub fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let engine = Engine::connect().await?;
        let container = Identity::from_name(&args.identity).agent_container();
        if !engine.container_exists(&container).await? {
            anyhow::bail!(
                "no bottle `{}`; `bottle list` shows the running ones",
                args.identity
            );
        }
        let command = if args.command.is_empty() {
            vec!["bash".into(), "-l".into()]
        } else {
            args.command
        };
        if std::io::stdin().is_terminal() {
            let code = crate::launch::session::attach(&engine, &container, &command, "/home/agent")
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        let out = engine.exec(&container, &command, Some("agent")).await?;
        print!("{}", out.stdout);
        eprint!("{}", out.stderr);
        Ok(ExitCode::from(out.code.clamp(0, 255) as u8))
    })
}

/// Arguments of `bottle logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The bottle.
    pub identity: String,
    /// A sidecar (default: the agent proxy's audit log is in `egress-proxy`; without a name, every
    /// container of the bottle).
    pub sidecar: Option<String>,
    /// Keep following.
    #[arg(short, long)]
    pub follow: bool,
}

/// `bottle logs <identity> [sidecar] [-f]`.
pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let engine = Engine::connect().await?;
        let identity = Identity::from_name(&args.identity);
        let containers: Vec<String> = match &args.sidecar {
            Some(sidecar) => vec![identity.sidecar_container(sidecar)],
            None => {
                let filter = [format!("{}={}", labels::IDENTITY, args.identity)];
                engine
                    .containers_labelled(&filter)
                    .await?
                    .iter()
                    .filter_map(|c| {
                        c.names
                            .as_ref()?
                            .first()
                            .map(|n| n.trim_start_matches('/').to_owned())
                    })
                    .collect()
            }
        };
        if containers.is_empty() {
            anyhow::bail!(
                "no bottle `{}`; `bottle list` shows the running ones",
                args.identity
            );
        }
        for container in containers {
            let options = bollard::query_parameters::LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .follow(args.follow)
                .build();
            let mut stream = engine.client().logs(&container, Some(options));
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| anyhow::anyhow!("reading logs of {container}: {e}"))?;
                for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
                    println!("[{container}] {line}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Arguments of `bottle stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The bottle's identity.
    pub identity: String,
    /// For a bottle that is not running but kept its state: delete that state without asking.
    #[arg(long, short)]
    pub yes: bool,
}

/// `bottle stop <identity>`: remove a running bottle; for one that is gone but kept its state,
/// say so and offer to delete the state.
pub fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    let identity = args.identity.as_str();
    block_on(async {
        let engine = Engine::connect().await?;
        let filter = [format!("{}={identity}", labels::IDENTITY)];
        let running = !engine.containers_labelled(&filter).await?.is_empty()
            || !engine.networks_labelled(&filter).await?.is_empty();
        if !running {
            let deleted = super::kept::stop_kept(&home, identity, args.yes)?;
            return Ok(if deleted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        let removed = crate::lifecycle::remove_bottle(&engine, &home, identity, None).await?;
        eprintln!("stopped `{identity}` ({removed} objects removed)");
        Ok(ExitCode::SUCCESS)
    })
}

/// Arguments of `bottle cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Remove without asking.
    #[arg(long, short)]
    pub yes: bool,
    /// Delete the state kept for `bottle resume` by bottles that are not running.
    #[arg(long)]
    pub state: bool,
    /// Remove `bottle/*` images no launch needs (older builds, workspace images).
    #[arg(long)]
    pub images: bool,
}

/// `bottle cleanup`: remove every labelled object no live bottle owns; with `--state` /
/// `--images`, prune kept state and old images instead.
pub fn cleanup(args: CleanupArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    block_on(async {
        let engine = Engine::connect().await?;
        let bottles = found(&engine).await?;
        if args.state || args.images {
            let mut done = true;
            if args.state {
                let running = bottles.keys().cloned().collect();
                done &= super::kept::prune_state(&home, &running, args.yes)?;
            }
            if args.images {
                done &= super::kept::prune_images(&engine, args.yes).await?;
            }
            return Ok(if done {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        let orphans: Vec<String> = bottles
            .into_iter()
            .filter(|(_, b)| !b.live())
            .map(|(identity, _)| identity)
            .collect();
        if orphans.is_empty() {
            println!("nothing to clean up");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "left behind by bottles that are gone: {}",
            orphans.join(", ")
        );
        if !super::kept::confirm("remove them", args.yes)? {
            return Ok(ExitCode::from(1));
        }
        for identity in &orphans {
            // The launcher is gone: its agent's ~/.claude is kept as after a crash.
            let removed = crate::lifecycle::remove_bottle(
                &engine,
                &home,
                identity,
                Some(crate::snapshot::Why::Crash),
            )
            .await?;
            println!("removed {identity} ({removed} objects)");
        }
        Ok(ExitCode::SUCCESS)
    })
}
