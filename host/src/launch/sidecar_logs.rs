//! The sidecars' own decision lines outlive their containers: the egress proxy's allow/deny lines
//! and the git gate's push decisions are copied into `~/.bottle/audit/sidecars/<identity>/` (0600 in
//! 0700 directories) before teardown removes the containers that hold them.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::docker::{Engine, labels};

/// Where a bottle's sidecar logs are kept.
pub fn dir(home_root: &Path, identity: &str) -> PathBuf {
    crate::audit::dir(home_root).join("sidecars").join(identity)
}

/// Copy the logs of every sidecar of `identity` into [`dir`]; returns the files written. Failures
/// are logged, never fatal: teardown must go on.
pub async fn keep(engine: &Engine, home_root: &Path, identity: &str) -> Vec<PathBuf> {
    let filter = vec![
        format!("{}={identity}", labels::IDENTITY),
        format!("{}=sidecar", labels::ROLE),
    ];
    let containers = match engine.containers_labelled(&filter).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("keeping sidecar logs: {e}");
            return Vec::new();
        }
    };
    let mut kept = Vec::new();
    for container in containers {
        let labels = container.labels.unwrap_or_default();
        let (Some(sidecar), Some(name)) = (
            labels.get(labels::SIDECAR),
            container.names.and_then(|n| n.into_iter().next()),
        ) else {
            continue;
        };
        let logs = engine.all_logs(name.trim_start_matches('/')).await;
        match write(&dir(home_root, identity), sidecar, &logs) {
            Ok(path) => kept.push(path),
            Err(e) => tracing::warn!("keeping the logs of sidecar {sidecar}: {e}"),
        }
    }
    kept
}

/// Append `logs` to `<dir>/<sidecar>.log` (a resumed bottle adds to what its last run left).
fn write(dir: &Path, sidecar: &str, logs: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(format!("{sidecar}.log"));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(logs)?;
    Ok(path)
}
