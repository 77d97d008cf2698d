//! A bottle's host-side directories: its state (`~/.bottle/state/<identity>/`: what `resume`
//! needs, and mounted sidecar directories such as the supervise queue) and its stage
//! (`~/.bottle/run/<identity>/`, 0700: CA material while the bottle runs, removed at teardown).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ca::MintedCa;
use super::identity::Identity;

/// What `bottle resume <identity>` needs to relaunch the same identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// The identity.
    pub identity: String,
    /// Agent name.
    pub agent: String,
    /// Working directory the launch was made from.
    pub cwd: PathBuf,
    /// `--cwd` tree baked into the image, if any.
    pub workspace: Option<PathBuf>,
    /// RFC 3339 time of the launch.
    pub launched_at: String,
    /// What the isolation self-test saw, once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_test: Option<super::self_test::Report>,
}

const RECORD: &str = "launch.json";

pub use crate::clock::now_rfc3339;

/// The state directory of `identity`.
pub fn dir(root: &Path, identity: &Identity) -> PathBuf {
    root.join(identity.as_str())
}

/// Whether a state directory exists (a preserved, resumable bottle).
pub fn exists(root: &Path, identity: &Identity) -> bool {
    dir(root, identity).exists()
}

/// Create the state directory (0700) and write the resume record.
pub fn create(root: &Path, record: &ResumeRecord) -> std::io::Result<PathBuf> {
    let path = root.join(&record.identity);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&path)?;
    let json = serde_json::to_vec_pretty(record).expect("record serializes");
    std::fs::write(path.join(RECORD), json)?;
    Ok(path)
}

/// Rewrite a bottle's launch record with its self-test report.
pub fn record_self_test(
    root: &Path,
    identity: &Identity,
    report: &super::self_test::Report,
) -> std::io::Result<()> {
    let mut record = read(root, identity)?;
    record.self_test = Some(report.clone());
    let json = serde_json::to_vec_pretty(&record).expect("record serializes");
    std::fs::write(dir(root, identity).join(RECORD), json)
}

/// Read a resume record.
pub fn read(root: &Path, identity: &Identity) -> std::io::Result<ResumeRecord> {
    let bytes = std::fs::read(dir(root, identity).join(RECORD))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Write the CA material into a fresh 0700 stage directory, keys 0600.
pub fn write_stage(
    root: &Path,
    identity: &Identity,
    cas: &[&MintedCa],
) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)?;
    let path = root.join(identity.as_str());
    std::fs::DirBuilder::new().mode(0o700).create(&path)?;
    for ca in cas {
        std::fs::write(path.join(format!("{}-ca.pem", ca.name)), &ca.cert_pem)?;
        let key = path.join(format!("{}-ca.key", ca.name));
        std::fs::write(&key, "")?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        std::fs::write(&key, &ca.key_pem)?;
    }
    Ok(path)
}
