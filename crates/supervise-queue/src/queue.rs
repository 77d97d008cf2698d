//! The queue directory: atomic writes, oldest-first listing, one decision per proposal.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::proposal::{CurrentConfig, Decision, Proposal, ProposalError};

/// Something went wrong reading or writing the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file holds something that is not what it should be.
    #[error("{path}: not a valid queue file: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A proposal broke a rule.
    #[error("invalid proposal: {0}")]
    Invalid(#[from] ProposalError),
    /// The proposal already has a decision.
    #[error("proposal {0} has already been decided")]
    AlreadyDecided(String),
    /// No proposal has this id.
    #[error("no proposal {0} in this queue")]
    NoSuchProposal(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One bottle's queue directory.
#[derive(Debug, Clone)]
pub struct Queue {
    root: PathBuf,
}

const PROPOSALS: &str = "proposals";
const DECISIONS: &str = "decisions";
const CURRENT: &str = "current.json";

impl Queue {
    /// The queue at `root` (nothing is created until something is written).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Queue { root: root.into() }
    }

    /// The queue's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh proposal id: milliseconds since the epoch, the process id and a counter, so ids
    /// sort by time and never collide within one sidecar.
    pub fn new_id() -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{millis:013}-{:x}-{n}", std::process::id())
    }

    /// Write a proposal after checking it. Fails if one with the same id exists.
    pub fn submit(&self, proposal: &Proposal) -> Result<PathBuf, QueueError> {
        proposal.check()?;
        let path = self
            .root
            .join(PROPOSALS)
            .join(format!("{}.json", proposal.id));
        write_new(&path, &to_json(proposal))?;
        Ok(path)
    }

    /// Every proposal, oldest first, with its decision if there is one. Files that do not parse
    /// are reported as errors in the list rather than hiding the rest.
    pub fn proposals(&self) -> Result<Vec<Entry>, QueueError> {
        let dir = self.root.join(PROPOSALS);
        let mut entries = Vec::new();
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
            Err(e) => return Err(io(&dir)(e)),
        };
        for item in read {
            let path = item.map_err(io(&dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let proposal: Proposal = read_json(&path)?;
            let decision = self.decision(&proposal.id)?;
            entries.push(Entry { proposal, decision });
        }
        entries.sort_by(|a, b| {
            (&a.proposal.created_at, &a.proposal.id).cmp(&(&b.proposal.created_at, &b.proposal.id))
        });
        Ok(entries)
    }

    /// Proposals without a decision, oldest first.
    pub fn pending(&self) -> Result<Vec<Proposal>, QueueError> {
        Ok(self
            .proposals()?
            .into_iter()
            .filter(|e| e.decision.is_none())
            .map(|e| e.proposal)
            .collect())
    }

    /// The proposal `id`.
    pub fn proposal(&self, id: &str) -> Result<Proposal, QueueError> {
        check_id(id)?;
        let path = self.root.join(PROPOSALS).join(format!("{id}.json"));
        if !path.exists() {
            return Err(QueueError::NoSuchProposal(id.to_owned()));
        }
        read_json(&path)
    }

    /// The decision on `id`, if one was made.
    pub fn decision(&self, id: &str) -> Result<Option<Decision>, QueueError> {
        check_id(id)?;
        let path = self.root.join(DECISIONS).join(format!("{id}.json"));
        match fs::metadata(&path) {
            Ok(_) => read_json(&path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Record a decision. Only one decision per proposal: a second one is refused.
    pub fn decide(&self, decision: &Decision) -> Result<(), QueueError> {
        self.proposal(&decision.id)?;
        let path = self
            .root
            .join(DECISIONS)
            .join(format!("{}.json", decision.id));
        match write_new(&path, &to_json(decision)) {
            Err(QueueError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Err(QueueError::AlreadyDecided(decision.id.clone()))
            }
            other => other,
        }
    }

    /// Publish what the agent may read about the bottle's configuration.
    pub fn publish_current(&self, current: &CurrentConfig) -> Result<(), QueueError> {
        let path = self.root.join(CURRENT);
        write_replace(&path, &to_json(current))
    }

    /// The published configuration (empty when nothing was published).
    pub fn current(&self) -> Result<CurrentConfig, QueueError> {
        let path = self.root.join(CURRENT);
        if !path.exists() {
            return Ok(CurrentConfig::default());
        }
        read_json(&path)
    }
}

/// A proposal and its decision, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The proposal.
    pub proposal: Proposal,
    /// The decision, once made.
    pub decision: Option<Decision>,
}

fn check_id(id: &str) -> Result<(), QueueError> {
    if crate::proposal::is_proposal_id(id) {
        Ok(())
    } else {
        Err(QueueError::NoSuchProposal(id.to_owned()))
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("queue records serialize");
    bytes.push(b'\n');
    bytes
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, QueueError> {
    let bytes = fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| QueueError::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Write to a temporary file in the same directory, then move it into place.
fn stage(path: &Path, bytes: &[u8]) -> Result<PathBuf, QueueError> {
    let dir = path.parent().expect("queue files live in a directory");
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().expect("file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    Ok(tmp)
}

fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), QueueError> {
    let tmp = stage(path, bytes)?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Like [`write_replace`] but refuses to replace an existing file (hard link, then unlink).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), QueueError> {
    let tmp = stage(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked.map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proposal::{Change, Status, Tool};

    fn proposal(id: &str, at: &str) -> Proposal {
        Proposal {
            id: id.into(),
            tool: Tool::FirewallBlock,
            justification: "the docs live there".into(),
            created_at: at.into(),
            change: Change::allow_host_from_url("https://docs.rs/x").unwrap(),
        }
    }

    fn decision(id: &str, status: Status) -> Decision {
        Decision {
            id: id.into(),
            status,
            notes: "ok".into(),
            decided_at: "2026-01-01T00:00:09Z".into(),
            applied: None,
        }
    }

    #[test]
    fn submit_list_decide() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path());
        q.submit(&proposal("2-b", "2026-01-01T00:00:02Z")).unwrap();
        q.submit(&proposal("1-a", "2026-01-01T00:00:01Z")).unwrap();
        let ids: Vec<_> = q.pending().unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["1-a", "2-b"]);
        q.decide(&decision("1-a", Status::Rejected)).unwrap();
        assert_eq!(q.pending().unwrap().len(), 1);
        assert_eq!(q.decision("1-a").unwrap().unwrap().status, Status::Rejected);
        assert!(matches!(
            q.decide(&decision("1-a", Status::Approved)),
            Err(QueueError::AlreadyDecided(_))
        ));
        assert!(matches!(
            q.decide(&decision("9-z", Status::Approved)),
            Err(QueueError::NoSuchProposal(_))
        ));
    }

    #[test]
    fn ids_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path());
        assert!(matches!(
            q.proposal("../x"),
            Err(QueueError::NoSuchProposal(_))
        ));
        let mut p = proposal("../../etc", "t");
        assert!(q.submit(&p).is_err());
        p.id = Queue::new_id();
        q.submit(&p).unwrap();
        assert!(q.submit(&p).is_err(), "same id twice");
    }

    #[test]
    fn current_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path());
        assert_eq!(q.current().unwrap(), CurrentConfig::default());
        let current = CurrentConfig {
            allow: vec!["example.com".into()],
            ..Default::default()
        };
        q.publish_current(&current).unwrap();
        assert_eq!(q.current().unwrap(), current);
    }
}
