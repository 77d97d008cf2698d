//! `bottle-egress-proxy [--config PATH]`: the egress proxy sidecar's program.
//!
//! Audit lines go to stdout, the program's own logs to stderr. SIGHUP reloads the configuration
//! (a bad one is rejected and the old one stays).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use bottle_egress_proxy::{Proxy, ProxyOptions, load_config};

/// bottle's egress proxy: the agent's only way out.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file (YAML).
    #[arg(long, default_value = bottle_egress_config::DEFAULT_PATH)]
    config: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // In a container stderr is a log file, not a terminal: no colour codes there.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_env("BOTTLE_PROXY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(&cli.config)?;
    let proxy = Proxy::bind(&config, ProxyOptions::default()).await?;
    tracing::info!(listen = %proxy.local_addr(), config = %cli.config.display(), "egress proxy ready");
    let handle = proxy.handle();
    let mut hangups = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let path = cli.config.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match handle.reload_from(&path) {
                Ok(()) => tracing::info!(config = %path.display(), "configuration reloaded"),
                Err(e) => tracing::error!("configuration NOT reloaded, keeping the old one: {e}"),
            }
        }
    });
    proxy.run().await;
    Ok(())
}
