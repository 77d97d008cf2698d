//! Claude Code's native Linux binary for the agent image, packed from the npm registry on the host
//! (containers cannot reach it) and cached under `~/.bottle/cache/claude-code/<version>/claude`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The npm package holding the x86_64 Linux binary.
pub const PACKAGE: &str = "@anthropic-ai/claude-code-linux-x64";

/// A cached binary.
#[derive(Debug, Clone)]
pub struct ClaudeCode {
    /// Its version.
    pub version: String,
    /// The binary on the host.
    pub path: PathBuf,
}

/// Why Claude Code could not be had.
#[derive(Debug, thiserror::Error)]
#[error(
    "getting Claude Code for the agent image: {0}; check that this host reaches the npm registry (`npm view {PACKAGE} version`), or build the agent without it: `bottle start --no-claude-code`"
)]
pub struct ClaudeCodeError(String);

/// The binary of `version` (default: the registry's latest), from the cache or npm.
pub fn fetch(
    cache_dir: &Path,
    version: Option<&str>,
    quiet: bool,
) -> Result<ClaudeCode, ClaudeCodeError> {
    let version = match version {
        Some(v) => v.to_owned(),
        None => latest()?,
    };
    let dir = cache_dir.join("claude-code").join(&version);
    let path = dir.join("claude");
    if path.is_file() {
        return Ok(ClaudeCode { version, path });
    }
    if !quiet {
        eprintln!(
            "packing {PACKAGE}@{version} from npm (once; cached in {})",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| ClaudeCodeError(format!("creating {}: {e}", dir.display())))?;
    let tarball = pack(&dir, &version)?;
    extract_binary(&tarball, &path)?;
    let _ = std::fs::remove_file(&tarball);
    Ok(ClaudeCode { version, path })
}

fn latest() -> Result<String, ClaudeCodeError> {
    let out = npm(&["view", PACKAGE, "version"], None)?;
    let version = out.trim().to_owned();
    if version.is_empty() {
        return Err(ClaudeCodeError("npm gave no version".into()));
    }
    Ok(version)
}

fn pack(dir: &Path, version: &str) -> Result<PathBuf, ClaudeCodeError> {
    let spec = format!("{PACKAGE}@{version}");
    let out = npm(&["pack", &spec, "--silent"], Some(dir))?;
    let name = out.lines().last().unwrap_or_default().trim();
    let tarball = dir.join(name);
    if name.is_empty() || !tarball.is_file() {
        return Err(ClaudeCodeError(format!(
            "npm pack {spec} produced no tarball"
        )));
    }
    Ok(tarball)
}

fn npm(args: &[&str], cwd: Option<&Path>) -> Result<String, ClaudeCodeError> {
    let mut command = Command::new("npm");
    command.args(args);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let output = command
        .output()
        .map_err(|e| ClaudeCodeError(format!("running npm: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ClaudeCodeError(format!(
            "npm {} failed: {}",
            args.join(" "),
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Extract `package/claude` from the npm tarball.
fn extract_binary(tarball: &Path, dest: &Path) -> Result<(), ClaudeCodeError> {
    let fail = |e: std::io::Error| ClaudeCodeError(format!("reading {}: {e}", tarball.display()));
    let file = std::fs::File::open(tarball).map_err(fail)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        if entry.path().map_err(fail)?.as_os_str() == "package/claude" {
            return bottle_atomic_file::replace_with(dest, 0o755, |file| {
                std::io::copy(&mut entry, file).map(drop)
            })
            .map_err(fail);
        }
    }
    Err(ClaudeCodeError(format!(
        "{} has no package/claude",
        tarball.display()
    )))
}
