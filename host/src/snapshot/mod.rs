//! Sessions that survive: the agent user's Claude Code state (`~/.claude`: transcripts, todos,
//! the settings it wrote; never credentials) is copied out of the agent at every teardown into
//! `~/.bottle/state/<identity>/claude/` (0700 directories, 0600 files, at most [`cap::CAP`]), with
//! why and when in `snapshot.json`, and copied back by `bottle resume` before the agent's command
//! starts.
//!
//! The archive comes from the agent's container, so the agent writes every byte of it: it is
//! streamed through [`guard`] (plain files below `.claude/` only, bounded as it streams) into a
//! fresh directory, trimmed to the cap, and only then swapped in place of the previous copy. A
//! teardown that finds no container (another process took the copy and removed it) leaves the
//! previous copy alone.

pub mod cap;
pub mod guard;
pub mod rescue;
pub mod resume;
pub mod sessions;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::docker::{Engine, FileUpload};
use crate::launch::provision::{AGENT_HOME, AGENT_UID};

/// The directory copied out of the agent.
pub const CLAUDE_DIR: &str = "/home/agent/.claude";
/// The copy's directory inside a bottle's state directory.
pub const COPY: &str = "claude";
/// The record of the copy, beside it.
pub const RECORD: &str = "snapshot.json";

/// The guard's bounds: a file at most the cap, twice the cap written before the trim, 1 GiB read
/// from the stream, 50 000 entries.
pub const LIMITS: guard::Limits = guard::Limits {
    entry: cap::CAP,
    total: 2 * cap::CAP,
    streamed: 1 << 30,
    entries: 50_000,
};

/// How long one copy may take before it is cut.
const COPY_TIME: Duration = Duration::from_secs(120);

/// Why a bottle's state was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// The session ended (its command exited).
    Exit,
    /// The launch or the launcher failed, or the launcher was gone (`bottle cleanup`).
    Crash,
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupt,
    /// An approved agent image: stopped to be rebuilt.
    Capability,
}

impl Why {
    /// The word shown in `bottle list --all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Exit => "exit",
            Why::Crash => "crash",
            Why::Interrupt => "interrupt",
            Why::Capability => "capability",
        }
    }
}

/// `snapshot.json`: what was kept, when and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 time of the copy.
    pub kept_at: String,
    /// Why the bottle went away.
    pub why: Why,
    /// More about it (exit code, signal, the error's first line).
    #[serde(default)]
    pub detail: String,
    /// Files kept.
    pub files: usize,
    /// Bytes kept.
    pub bytes: u64,
    /// Whether anything was left out for the cap or a bound (see `dropped` and `stopped`).
    pub cut: bool,
    /// Files dropped to fit the cap (oldest first; at most 20 named).
    #[serde(default)]
    pub dropped: Vec<String>,
    /// How many files were dropped for the cap.
    #[serde(default)]
    pub dropped_count: usize,
    /// Entries the guard refused, with why (at most 20 named).
    #[serde(default)]
    pub refused: Vec<String>,
    /// How many entries the guard refused.
    #[serde(default)]
    pub refused_count: usize,
    /// The bound that stopped the copy early, if one did.
    #[serde(default)]
    pub stopped: Option<String>,
}

/// Copy `~/.claude` out of the agent `container` into `state_dir`, replacing the previous copy.
/// `Ok(None)` when there is nothing to copy (no container, no `~/.claude`): the previous copy, if
/// any, stays.
pub async fn take(
    engine: &Engine,
    container: &str,
    state_dir: &Path,
    why: Why,
    detail: &str,
) -> anyhow::Result<Option<Record>> {
    make_private_dir(state_dir)?;
    let fresh = state_dir.join(format!("{COPY}.new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::DirBuilder::new().mode(0o700).create(&fresh)?;
    let extracted =
        match tokio::time::timeout(COPY_TIME, stream_into(engine, container, &fresh)).await {
            Ok(Ok(Some(extracted))) => extracted,
            Ok(Ok(None)) => {
                let _ = std::fs::remove_dir_all(&fresh);
                return Ok(None);
            }
            Ok(Err(e)) => {
                let _ = std::fs::remove_dir_all(&fresh);
                return Err(e);
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&fresh);
                anyhow::bail!("copying {CLAUDE_DIR} took over {COPY_TIME:?}");
            }
        };
    let files = cap::walk(&fresh)?;
    let dropped = cap::over_cap(&files, cap::CAP);
    for path in &dropped {
        std::fs::remove_file(fresh.join(path))?;
    }
    let kept: Vec<&cap::Kept> = files
        .iter()
        .filter(|f| !dropped.contains(&f.path))
        .collect();
    let record = Record {
        kept_at: crate::launch::state::now_rfc3339(),
        why,
        detail: detail.chars().take(200).collect(),
        files: kept.len(),
        bytes: kept.iter().map(|f| f.size).sum(),
        cut: !dropped.is_empty() || extracted.stopped.is_some(),
        dropped: dropped
            .iter()
            .take(guard::MAX_REPORTED)
            .map(|p| p.display().to_string())
            .collect(),
        dropped_count: dropped.len(),
        refused: extracted.skipped,
        refused_count: extracted.skipped_count,
        stopped: extracted.stopped,
    };
    swap_in(state_dir, &fresh)?;
    write_private(
        &state_dir.join(RECORD),
        &serde_json::to_vec_pretty(&record)?,
    )?;
    Ok(Some(record))
}

/// Stream the engine's archive of `~/.claude` through the guard into `dest`; none when the
/// container or the directory does not exist.
async fn stream_into(
    engine: &Engine,
    container: &str,
    dest: &Path,
) -> anyhow::Result<Option<guard::Extracted>> {
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(CLAUDE_DIR)
        .build();
    let mut stream = engine
        .client()
        .download_from_container(container, Some(options));
    let first = match stream.next().await {
        None => return Ok(None),
        Some(Err(e)) if is_missing(&e) => return Ok(None),
        Some(Err(e)) => anyhow::bail!("copying {CLAUDE_DIR} out of {container}: {e}"),
        Some(Ok(chunk)) => chunk,
    };
    // A small bounded channel: the archive is never held whole, the guard reads as it arrives.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
    let dest = dest.to_path_buf();
    let extraction = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            next: move || rx.blocking_recv(),
            current: Vec::new(),
            at: 0,
        };
        guard::extract(reader, &dest, LIMITS)
    });
    let mut chunk = Ok(first.to_vec());
    loop {
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            break; // the guard stopped reading (a bound), or the stream broke
        }
        chunk = match stream.next().await {
            None => break,
            Some(Ok(bytes)) => Ok(bytes.to_vec()),
            Some(Err(e)) => Err(std::io::Error::other(e.to_string())),
        };
    }
    drop(tx);
    Ok(Some(extraction.await??))
}

fn is_missing(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A blocking reader over chunks handed across a channel.
struct ChannelReader<F> {
    next: F,
    current: Vec<u8>,
    at: usize,
}

impl<F: FnMut() -> Option<std::io::Result<Vec<u8>>>> std::io::Read for ChannelReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.current.len() {
            match (self.next)() {
                None => return Ok(0),
                Some(chunk) => {
                    self.current = chunk?;
                    self.at = 0;
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Put `fresh` in place of the copy, then remove the old one.
fn swap_in(state_dir: &Path, fresh: &Path) -> std::io::Result<()> {
    let copy = state_dir.join(COPY);
    let old = state_dir.join(format!("{COPY}.old-{}", std::process::id()));
    if copy.exists() {
        std::fs::rename(&copy, &old)?;
    }
    std::fs::rename(fresh, &copy)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn make_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Write a 0600 file under a temporary name, then rename it over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    std::io::Write::write_all(&mut file, bytes)?;
    std::fs::rename(&temporary, path)
}

/// The record of a bottle's copy, if it has one.
pub fn read_record(state_dir: &Path) -> Option<Record> {
    let bytes = std::fs::read(state_dir.join(RECORD)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether a bottle's state holds a copy of `~/.claude`.
pub fn has_copy(state_dir: &Path) -> bool {
    state_dir.join(COPY).is_dir()
}

/// Copy the kept `~/.claude` back into the agent `container`, owned by the agent user; how many
/// files. Done before provisioning, so what the host places (skills, plugin files) wins.
pub async fn restore(engine: &Engine, container: &str, state_dir: &Path) -> anyhow::Result<usize> {
    let root = state_dir.join(COPY);
    if !root.is_dir() {
        return Ok(0);
    }
    let mut files = Vec::new();
    for kept in cap::walk(&root)? {
        files.push(FileUpload {
            path: format!("{CLAUDE_DIR}/{}", kept.path.display()),
            mode: 0o600,
            owner: AGENT_UID,
            contents: std::fs::read(root.join(&kept.path))?,
        });
    }
    engine.upload(container, &files, Some(AGENT_HOME)).await?;
    Ok(files.len())
}

/// Bytes a bottle's state directory takes (links not followed).
pub fn size_of(dir: &Path) -> u64 {
    cap::walk(dir)
        .map(|files| files.iter().map(|f| f.size).sum())
        .unwrap_or(0)
}

/// Where each bottle's state lives.
pub fn state_root(home: &crate::home::Home) -> PathBuf {
    home.root().join("state")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_over_chunks_reads_them_in_order() {
        let mut chunks = vec![Ok(b"ab".to_vec()), Ok(Vec::new()), Ok(b"cde".to_vec())].into_iter();
        let mut reader = ChannelReader {
            next: move || chunks.next(),
            current: Vec::new(),
            at: 0,
        };
        let mut out = String::new();
        std::io::Read::read_to_string(&mut reader, &mut out).unwrap();
        assert_eq!(out, "abcde");
    }
}
