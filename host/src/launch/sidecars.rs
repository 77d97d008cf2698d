//! Starting sidecars: stage by stage, concurrently within a stage, each healthy before the next
//! stage starts.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use futures_util::future::try_join_all;

use super::ca::MintedCa;
use super::identity::Identity;
use super::ledger::Ledger;
use super::secrets::SecretValues;
use super::{LaunchError, LaunchOptions, Step, at, fault_hook, object_labels, resolve_env};
use crate::docker::{Engine, FileUpload, labels};
use crate::plan::model::{NetworkKind, Plan, ProbePlan, SidecarPlan};

/// Where the host puts the health prober in every sidecar.
pub const PROBE_PATH: &str = "/.bottle/probe";

/// Everything a sidecar start needs besides its plan.
pub struct SidecarContext<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// The teardown record.
    pub ledger: &'a Ledger,
    /// The bottle.
    pub identity: &'a Identity,
    /// Options, for labels.
    pub options: &'a LaunchOptions,
    /// Image reference per sidecar name.
    pub images: &'a BTreeMap<String, String>,
    /// Minted CAs by name.
    pub cas: &'a BTreeMap<String, MintedCa>,
    /// Secret values.
    pub secrets: &'a SecretValues,
    /// The bottle's state directory (for mounts).
    pub state_dir: &'a Path,
}

/// Start every sidecar of `plan`, stage by stage.
pub async fn start_sidecars(ctx: &SidecarContext<'_>, plan: &Plan) -> Result<(), LaunchError> {
    for (index, stage) in plan.stages.iter().enumerate() {
        let starts = stage.iter().map(|name| {
            let sidecar = plan
                .sidecars
                .iter()
                .find(|s| &s.name == name)
                .expect("stages name plan sidecars");
            start_one(ctx, sidecar, index)
        });
        try_join_all(starts).await?;
    }
    fault_hook(Step::Sidecars)
}

async fn start_one(
    ctx: &SidecarContext<'_>,
    sidecar: &SidecarPlan,
    order: usize,
) -> Result<(), LaunchError> {
    let fail = at(Step::Sidecars);
    let name = ctx.identity.sidecar_container(&sidecar.name);
    let image = &ctx.images[&sidecar.name];
    let owner = ctx
        .engine
        .image_user(image)
        .await
        .map_err(|e| fail(e.to_string()))?
        .unwrap_or((0, 0));
    let files = sidecar_files(ctx, sidecar, owner).map_err(&fail)?;
    let body = container_body(ctx, sidecar, image, order).map_err(&fail)?;
    let (first, rest) = networks(ctx.identity, sidecar);
    super::create_container(
        ctx.engine,
        ctx.ledger,
        &name,
        body,
        &first,
        &sidecar.aliases,
    )
    .await
    .map_err(&fail)?;
    ctx.engine
        .upload(&name, &files, None)
        .await
        .map_err(|e| fail(e.to_string()))?;
    for network in rest {
        ctx.engine
            .attach_network(&name, &network, &sidecar.aliases)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    ctx.engine
        .start(&name)
        .await
        .map_err(|e| fail(e.to_string()))?;
    wait_healthy(ctx.engine, &name, sidecar).await
}

/// The internal network first (aliases live there), then the others.
fn networks(identity: &Identity, sidecar: &SidecarPlan) -> (String, Vec<String>) {
    let mut names: Vec<String> = sidecar
        .networks
        .iter()
        .map(|n| match n {
            NetworkKind::Internal => identity.internal_network(),
            NetworkKind::Egress => identity.egress_network(),
        })
        .collect();
    let first = names.remove(0);
    (first, names)
}

fn container_body(
    ctx: &SidecarContext<'_>,
    sidecar: &SidecarPlan,
    image: &str,
    order: usize,
) -> Result<ContainerCreateBody, String> {
    let mut labels = object_labels(ctx.identity, ctx.options, "sidecar");
    labels.insert(labels::SIDECAR.into(), sidecar.name.clone());
    labels.insert(labels::ORDER.into(), order.to_string());
    let binds = sidecar
        .mounts
        .iter()
        .map(|m| {
            let dir = ctx.state_dir.join(&m.state_dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let ro = if m.read_only { ":ro" } else { "" };
            Ok(format!("{}:{}{ro}", dir.display(), m.target))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let extra_hosts = sidecar
        .extra_hosts
        .iter()
        .map(|(host, ip)| format!("{host}:{ip}"))
        .collect();
    Ok(ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: (!sidecar.command.is_empty()).then(|| sidecar.command.clone()),
        env: Some(resolve_env(&sidecar.env, ctx.secrets)?),
        labels: Some(labels),
        exposed_ports: (!sidecar.published_ports.is_empty()).then(|| {
            sidecar
                .published_ports
                .iter()
                .map(|p| format!("{p}/tcp"))
                .collect()
        }),
        host_config: Some(HostConfig {
            binds: Some(binds),
            extra_hosts: Some(extra_hosts),
            port_bindings: (!sidecar.published_ports.is_empty()).then(|| published(sidecar)),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Granted ports, published on the host's loopback only.
fn published(sidecar: &SidecarPlan) -> HashMap<String, Option<Vec<PortBinding>>> {
    sidecar
        .published_ports
        .iter()
        .map(|p| {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(p.to_string()),
            };
            (format!("{p}/tcp"), Some(vec![binding]))
        })
        .collect()
}

/// Plan files, CA material, host files and the prober.
fn sidecar_files(
    ctx: &SidecarContext<'_>,
    sidecar: &SidecarPlan,
    owner: (u64, u64),
) -> Result<Vec<FileUpload>, String> {
    let mut files: Vec<FileUpload> = sidecar
        .files
        .iter()
        .map(|f| FileUpload {
            path: f.path.clone(),
            mode: f.mode,
            owner,
            contents: f.contents.clone(),
        })
        .collect();
    for install in &sidecar.cas {
        let ca = ctx
            .cas
            .get(&install.ca)
            .ok_or_else(|| format!("CA `{}` was not minted", install.ca))?;
        files.push(FileUpload {
            path: install.cert_path.clone(),
            mode: 0o644,
            owner,
            contents: ca.cert_pem.clone().into_bytes(),
        });
        if let Some(key_path) = &install.key_path {
            files.push(FileUpload {
                path: key_path.clone(),
                mode: 0o600,
                owner,
                contents: ca.key_pem.clone().into_bytes(),
            });
        }
    }
    for host_file in &sidecar.host_files {
        let contents = std::fs::read(&host_file.host_path).map_err(|e| {
            format!(
                "reading {} for sidecar {}: {e}",
                host_file.host_path, sidecar.name
            )
        })?;
        files.push(FileUpload {
            path: host_file.path.clone(),
            mode: host_file.mode,
            owner,
            contents,
        });
    }
    files.push(FileUpload {
        path: PROBE_PATH.into(),
        mode: 0o755,
        owner: (0, 0),
        contents: crate::assets::PROBE.to_vec(),
    });
    Ok(files)
}

/// Quick first polls (most sidecars are ready within milliseconds), growing to the plugin's interval.
fn backoff(attempt: u32, interval_ms: u32) -> Duration {
    Duration::from_millis(u64::from(interval_ms.min(10 * (attempt + 1))))
}

/// Poll the sidecar's probe until it passes; on failure, the last log lines.
async fn wait_healthy(
    engine: &Engine,
    container: &str,
    sidecar: &SidecarPlan,
) -> Result<(), LaunchError> {
    let fail = at(Step::Sidecars);
    let Some(health) = &sidecar.health else {
        return Ok(());
    };
    let command: Vec<String> = match &health.probe {
        ProbePlan::Tcp(port) => vec![PROBE_PATH.into(), "tcp".into(), port.to_string()],
        ProbePlan::Http { port, path } => vec![
            PROBE_PATH.into(),
            "http".into(),
            port.to_string(),
            path.clone(),
        ],
        ProbePlan::Exec(cmd) => cmd.clone(),
    };
    let mut last = String::new();
    for attempt in 0..health.retries {
        if !engine
            .is_running(container)
            .await
            .map_err(|e| fail(e.to_string()))?
        {
            last = "the container exited".into();
            break;
        }
        match engine.exec(container, &command, Some("0")).await {
            Ok(out) if out.code == 0 => return Ok(()),
            Ok(out) => last = format!("{}{}", out.stdout, out.stderr).trim().to_owned(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(backoff(attempt, health.interval_ms)).await;
    }
    let logs = engine.tail_logs(container, 20).await;
    Err(fail(format!(
        "sidecar `{}` did not become healthy ({}); the agent is not started behind a broken sidecar.\nlast probe: {last}\nlast log lines:\n{logs}",
        sidecar.name,
        command.join(" ")
    )))
}
