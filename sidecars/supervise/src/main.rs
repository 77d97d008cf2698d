//! `bottle-supervise --listen ADDR --queue DIR`: the supervise sidecar's program.
//!
//! Logs go to stderr (`BOTTLE_SUPERVISE_LOG=debug` for more). SIGTERM or SIGINT stops it: calls
//! still waiting for a decision return `expired`, then the server closes.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use bottle_supervise::{Options, drop_root, serve};
use bottle_supervise_queue::Queue;

/// bottle's supervise sidecar: an MCP server where the agent asks the operator for changes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:7411")]
    listen: SocketAddr,
    /// The queue directory shared with the host.
    #[arg(long, default_value = bottle_supervise_queue::SIDECAR_QUEUE_DIR)]
    queue: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // In a container stderr is a log file, not a terminal: no colour codes there.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_env("BOTTLE_SUPERVISE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")),
        )
        .init();
    std::fs::create_dir_all(&cli.queue)
        .with_context(|| format!("cannot create the queue directory {}", cli.queue.display()))?;
    // Before the runtime starts its threads; refuses to go on as root.
    match drop_root(&cli.queue).context("the supervise sidecar does not serve as root")? {
        Some((uid, gid)) => tracing::info!(uid, gid, "dropped root: running as the queue's owner"),
        None => tracing::info!("running as a non-root user"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
                _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
            }
            shutdown.cancel();
        }
    });
    let options = Options {
        shutdown,
        ..Options::default()
    };
    serve(cli.listen, Queue::at(cli.queue), options).await?;
    tracing::info!("stopped");
    Ok(())
}
