//! Does gVisor really start here? A registered runsc can still refuse every container: the 2022
//! release Debian 12 ships stops with "cannot run with network enabled in root network namespace"
//! on newer kernels unless it is registered with `--network=host`. One throwaway container under
//! runsc shows it, with the engine's own words when it fails.

use bollard::models::{ContainerCreateBody, HostConfig};

use super::dns::doctor_labels;
use crate::docker::Engine;
use crate::launch::runtime::RUNSC;

/// What the trial container said: gVisor's boot line, or why it did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum Trial {
    /// It started, and its kernel log begins with gVisor's boot line.
    Started(String),
    /// It started, but not as gVisor (what it printed instead).
    NotGvisor(String),
    /// The engine could not start it (the engine's error).
    Refused(String),
}

/// Start a container of `image` under runsc, read its kernel log, and remove it again.
pub async fn trial(engine: &Engine, image: &str) -> anyhow::Result<Trial> {
    let name = format!("bottle-doctor-runsc-{}", std::process::id());
    let result = run(engine, image, &name).await;
    let _ = engine.remove_container(&name).await;
    result
}

async fn run(engine: &Engine, image: &str, name: &str) -> anyhow::Result<Trial> {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["sleep".into(), "60".into()]),
        labels: Some(doctor_labels()),
        host_config: Some(HostConfig {
            runtime: Some(RUNSC.into()),
            network_mode: Some("none".into()),
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    engine.create_container(name, body, "none", &[]).await?;
    if let Err(e) = engine.start(name).await {
        return Ok(Trial::Refused(e.source.to_string()));
    }
    let cmd = ["dmesg".to_owned()];
    let out = engine.exec(name, &cmd, None).await?;
    let first = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    Ok(if first.contains("Starting gVisor") {
        Trial::Started(first)
    } else {
        Trial::NotGvisor(format!("{}{}", out.stdout, out.stderr).trim().to_owned())
    })
}
