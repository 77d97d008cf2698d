//! The size cap of a kept `~/.claude`: when the copy is over [`CAP`], the oldest files go first,
//! transcripts last, so the newest conversations survive; what was dropped is recorded.

use std::path::{Path, PathBuf};

/// The most a bottle's kept Claude Code state may take on the host (64 MiB).
pub const CAP: u64 = 64 << 20;

/// One file of the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// Path relative to the copy's root.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
}

impl Kept {
    /// A conversation transcript (`projects/<dir>/<session>.jsonl`).
    pub fn is_transcript(&self) -> bool {
        self.path.starts_with("projects") && self.path.extension().is_some_and(|e| e == "jsonl")
    }
}

/// Which files to drop so the rest fits in `cap`: everything that is not a transcript, oldest
/// first, then transcripts, oldest first. Empty when it fits already.
pub fn over_cap(files: &[Kept], cap: u64) -> Vec<PathBuf> {
    let mut total: u64 = files.iter().map(|f| f.size).sum();
    if total <= cap {
        return Vec::new();
    }
    let mut order: Vec<&Kept> = files.iter().collect();
    order.sort_by_key(|f| (f.is_transcript(), f.mtime, std::cmp::Reverse(f.size)));
    let mut dropped = Vec::new();
    for file in order {
        if total <= cap {
            break;
        }
        total -= file.size;
        dropped.push(file.path.clone());
    }
    dropped
}

/// Every regular file below `root`, with size and time (links are not followed; the guard never
/// makes any).
pub fn walk(root: &Path) -> std::io::Result<Vec<Kept>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                found.push(Kept {
                    path: entry
                        .path()
                        .strip_prefix(root)
                        .unwrap_or(&entry.path())
                        .to_path_buf(),
                    size: meta.len(),
                    mtime,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(path: &str, size: u64, mtime: u64) -> Kept {
        Kept {
            path: path.into(),
            size,
            mtime,
        }
    }

    #[test]
    fn under_the_cap_nothing_is_dropped() {
        let files = [
            kept("projects/p/a.jsonl", 10, 1),
            kept("todos/t.json", 5, 2),
        ];
        assert!(over_cap(&files, 15).is_empty());
    }

    #[test]
    fn over_the_cap_the_newest_transcripts_survive() {
        let files = [
            kept("projects/p/old.jsonl", 40, 100),
            kept("projects/p/new.jsonl", 40, 300),
            kept("projects/p/mid.jsonl", 40, 200),
            kept("todos/t.json", 5, 400),
            kept("statsig/cache", 10, 50),
        ];
        let dropped = over_cap(&files, 60);
        assert_eq!(
            dropped,
            [
                PathBuf::from("statsig/cache"),
                "todos/t.json".into(),
                "projects/p/old.jsonl".into(),
                "projects/p/mid.jsonl".into()
            ]
        );
        let kept_size: u64 = files
            .iter()
            .filter(|f| !dropped.contains(&f.path))
            .map(|f| f.size)
            .sum();
        assert!(kept_size <= 60);
        // A single transcript larger than the cap goes too: the cap holds.
        assert_eq!(over_cap(&[kept("projects/p/x.jsonl", 100, 1)], 60).len(), 1);
    }
}
