//! The audit trail: one JSON line per event (supervise decisions and operator edits, launches'
//! self-tests), in `~/.bottle/audit/<YYYY-MM-DD>.jsonl` (0600, directory 0700), appended and never
//! rewritten.
//!
//! Architecture Invariant: lines are only appended, one `write` call each; nothing here reads a
//! line back except for tests and `supervise list --all`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The audit directory of a bottle home.
pub fn dir(home_root: &Path) -> PathBuf {
    crate::home::Home::at(home_root).audit_dir()
}

/// Append any event (a launch's self-test, say) as one line of the file for `time`'s day.
pub fn append(home_root: &Path, time: &str, record: &impl Serialize) -> std::io::Result<PathBuf> {
    let dir = dir(home_root);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let day = time.get(..10).unwrap_or("undated");
    let path = dir.join(format!("{day}.jsonl"));
    let mut line = serde_json::to_vec(record).expect("audit records serialize");
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?;
    // One write call per line: appends of a line this size do not interleave.
    file.write_all(&line)?;
    Ok(path)
}

/// Every record in the audit directory, oldest file first (for tests and `supervise list --all`).
pub fn read_all(home_root: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir(home_root))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}
