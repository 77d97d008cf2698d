//! Installed third-party plugins: `bottle plugins add|remove`, and the record kept beside each
//! component (`~/.bottle/plugins/<name>.wasm` + `<name>.json`) with its sha256, so a component
//! that changed after it was added is refused instead of run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::builtin::BUILTINS;
use super::registry::{PluginSource, Registry};
use super::runtime::{PluginError, PluginErrorKind, PluginRuntime};

/// What `bottle plugins add` recorded about a component.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstallRecord {
    /// The plugin's name (from `describe`).
    pub name: String,
    /// Its own version.
    pub version: String,
    /// One line about it.
    pub summary: String,
    /// Manifest sections it reads.
    pub sections: Vec<String>,
    /// The `bottle:plugin` package version it targets.
    pub wit: String,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// Where it was added from.
    pub added_from: PathBuf,
    /// RFC 3339 UTC.
    pub added_at: String,
}

/// What adding took.
#[derive(Debug, Clone)]
pub struct Added {
    /// The record written.
    pub record: InstallRecord,
    /// Whether a plugin of the same name was replaced.
    pub replaced: bool,
    /// Validate + precompile time.
    pub compile_time: Duration,
    /// Instantiate + describe time.
    pub describe_time: Duration,
}

fn load_error(label: &str, message: String) -> PluginError {
    PluginError::new(label, PluginErrorKind::Load(message))
}

/// The record file of a component.
pub fn record_path(component: &Path) -> PathBuf {
    component.with_extension("json")
}

/// Validate `file` (a component of the sidecar world at a served package version, whose
/// `describe` passes the host's checks and whose name is not a built-in's), precompile it into
/// the cache, and install it under `plugins_dir` with its record.
pub fn add(runtime: PluginRuntime, plugins_dir: &Path, file: &Path) -> Result<Added, PluginError> {
    let wasm = runtime.read_component(file)?;
    let mut registry = Registry::new(runtime);
    let started = Instant::now();
    let loaded = registry.add(PluginSource::File(file.to_owned()), None, &wasm)?;
    let elapsed = started.elapsed();
    let name = loaded.description.name.clone();
    if BUILTINS.iter().any(|b| b.name == name) {
        return Err(PluginError::new(
            &name,
            PluginErrorKind::Invalid(format!(
                "`{name}` is the name of a built-in plugin; choose another name"
            )),
        ));
    }
    let record = InstallRecord {
        name: name.clone(),
        version: loaded.description.version.clone(),
        summary: loaded.description.summary.clone(),
        sections: loaded.description.sections.clone(),
        wit: loaded.wit_version.clone(),
        sha256: loaded.sha256.clone(),
        added_from: file.canonicalize().unwrap_or_else(|_| file.to_owned()),
        added_at: crate::clock::now_rfc3339(),
    };
    let target = plugins_dir.join(format!("{name}.wasm"));
    let replaced = target.exists();
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(plugins_dir)?;
        let record = serde_json::to_vec_pretty(&record).expect("records serialize");
        bottle_atomic_file::replace(&record_path(&target), &record, 0o644)?;
        bottle_atomic_file::replace(&target, &wasm, 0o644)
    };
    write().map_err(|e| {
        load_error(
            &name,
            format!("installing into {}: {e}", plugins_dir.display()),
        )
    })?;
    Ok(Added {
        record,
        replaced,
        compile_time: loaded.compile_time,
        describe_time: elapsed.saturating_sub(loaded.compile_time),
    })
}

/// Every installed plugin's record, by name.
pub fn records(plugins_dir: &Path) -> Vec<InstallRecord> {
    let mut records: Vec<InstallRecord> = std::fs::read_dir(plugins_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect();
    records.sort_by(|a, b| a.name.cmp(&b.name));
    records
}

/// Remove an installed plugin (component and record). Built-ins cannot be removed.
pub fn remove(plugins_dir: &Path, name: &str) -> anyhow::Result<InstallRecord> {
    if BUILTINS.iter().any(|b| b.name == name) {
        anyhow::bail!("`{name}` is built in; a bottle turns it off in its manifest instead");
    }
    let record = records(plugins_dir)
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| {
            anyhow::anyhow!("no installed plugin `{name}`; `bottle plugins list` shows them")
        })?;
    let component = plugins_dir.join(format!("{name}.wasm"));
    std::fs::remove_file(&component)?;
    std::fs::remove_file(record_path(&component))?;
    Ok(record)
}

/// Check a component against the record `add` wrote: a component that changed since (or was
/// dropped in by hand) is refused with how to fix it.
pub fn verify(component: &Path, sha256: &str) -> Result<(), PluginError> {
    let label = component.display().to_string();
    let record: InstallRecord = std::fs::read(record_path(component))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            load_error(
                &label,
                format!(
                    "was not installed with `bottle plugins add` (no record beside it); run \
                     `bottle plugins add {label}`"
                ),
            )
        })?;
    if record.sha256 != sha256 {
        return Err(load_error(
            &label,
            format!(
                "changed since it was added (sha256 {} recorded, {} now); if the change is \
                 yours, add it again with `bottle plugins add`",
                &record.sha256[..16],
                &sha256[..16]
            ),
        ));
    }
    Ok(())
}
