//! The queue directory: atomic writes, oldest-first listing, one decision per proposal, and caps
//! on what waits for the operator.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::files::{read_bounded, real_dir, write_new, write_replace};
use crate::proposal::{CurrentConfig, Decision, Limits, Proposal, ProposalError};

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
    /// A queue entry is a symlink, not a regular file or too big: it was not read or followed.
    #[error("{path} {message}")]
    Unsafe {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A proposal broke a rule.
    #[error("invalid proposal: {0}")]
    Invalid(#[from] ProposalError),
    /// The bottle has as many proposals waiting as it may.
    #[error(
        "this bottle already has {pending} proposals waiting for the operator, the most it may \
         have ({}); wait for the operator's decisions on them before proposing more",
        Limits::PENDING
    )]
    TooManyPending {
        /// How many wait.
        pending: usize,
    },
    /// The waiting proposals and this one would take more room than they may.
    #[error(
        "the proposals waiting for the operator take {pending_bytes} bytes and this one \
         {size}; together they would pass the limit of {} bytes for waiting proposals. Wait for \
         the operator's decisions, or send a smaller proposal",
        Limits::PENDING_BYTES
    )]
    PendingTooLarge {
        /// Bytes the waiting proposals take.
        pending_bytes: u64,
        /// Bytes this proposal would take.
        size: u64,
    },
    /// The proposal already has a decision.
    #[error("proposal {0} has already been decided")]
    AlreadyDecided(String),
    /// No proposal has this id.
    #[error("no proposal {0} in this queue")]
    NoSuchProposal(String),
}

impl QueueError {
    /// Whether the error is a cap on waiting proposals (the agent's to resolve by waiting), not
    /// a fault of the queue.
    pub fn is_cap(&self) -> bool {
        matches!(
            self,
            QueueError::TooManyPending { .. } | QueueError::PendingTooLarge { .. }
        )
    }
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

/// Held while proposals are counted and written or withdrawn: the sidecar serves calls
/// concurrently, and two calls must not both pass the caps with room for one. One sidecar process
/// writes a queue's proposals, so a lock within the process is enough.
static PROPOSALS_LOCK: Mutex<()> = Mutex::new(());

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

    fn proposal_path(&self, id: &str) -> PathBuf {
        self.root.join(PROPOSALS).join(format!("{id}.json"))
    }

    fn decision_path(&self, id: &str) -> PathBuf {
        self.root.join(DECISIONS).join(format!("{id}.json"))
    }

    /// Write a proposal after checking it and the caps on waiting proposals ([`Limits::PENDING`]
    /// of them, [`Limits::PENDING_BYTES`] together). Fails if one with the same id exists.
    pub fn submit(&self, proposal: &Proposal) -> Result<PathBuf, QueueError> {
        proposal.check()?;
        let bytes = to_json(proposal);
        let _held = PROPOSALS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (pending, pending_bytes) = self.pending_usage()?;
        if pending >= Limits::PENDING {
            return Err(QueueError::TooManyPending { pending });
        }
        let size = bytes.len() as u64;
        if pending_bytes + size > Limits::PENDING_BYTES {
            return Err(QueueError::PendingTooLarge {
                pending_bytes,
                size,
            });
        }
        let path = self.proposal_path(&proposal.id);
        write_new(&path, &bytes)?;
        Ok(path)
    }

    /// How many proposals wait for a decision and how many bytes their files take, from the
    /// directory alone (no file is parsed or followed).
    fn pending_usage(&self) -> Result<(usize, u64), QueueError> {
        let (mut count, mut bytes) = (0, 0);
        for (id, path) in self.proposal_files()? {
            if fs::symlink_metadata(self.decision_path(&id)).is_ok() {
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
            count += 1;
            bytes += meta.len();
        }
        Ok((count, bytes))
    }

    /// Withdraw proposal `id` when its caller went away before a decision: its file is removed,
    /// so the operator no longer sees it. Returns whether it was removed (not when it was
    /// decided meanwhile, or is not there).
    pub fn withdraw(&self, id: &str) -> Result<bool, QueueError> {
        check_id(id)?;
        let _held = PROPOSALS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if fs::symlink_metadata(self.decision_path(id)).is_ok() {
            return Ok(false);
        }
        let path = self.proposal_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// `(id, path)` of every proposal file (`<id>.json`, not a temporary file).
    fn proposal_files(&self) -> Result<Vec<(String, PathBuf)>, QueueError> {
        let dir = self.root.join(PROPOSALS);
        if !real_dir(&dir, false)? {
            return Ok(Vec::new());
        }
        let mut files = Vec::new();
        for item in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = item.map_err(io(&dir))?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"));
            if let Some(id) = id.filter(|id| crate::proposal::is_proposal_id(id)) {
                files.push((id.to_owned(), path));
            }
        }
        Ok(files)
    }

    /// Every proposal, oldest first, with its decision if there is one.
    pub fn proposals(&self) -> Result<Vec<Entry>, QueueError> {
        let mut entries = Vec::new();
        for (id, path) in self.proposal_files()? {
            // Withdrawn between the listing and the read: gone, not an error.
            let Some(proposal) = read_json::<Proposal>(&path)? else {
                continue;
            };
            let decision = self.decision(&id)?;
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
        read_json(&self.proposal_path(id))?.ok_or_else(|| QueueError::NoSuchProposal(id.to_owned()))
    }

    /// The decision on `id`, if one was made.
    pub fn decision(&self, id: &str) -> Result<Option<Decision>, QueueError> {
        check_id(id)?;
        real_dir(&self.root.join(DECISIONS), false)?;
        read_json(&self.decision_path(id))
    }

    /// Record a decision. Only one decision per proposal: a second one is refused.
    pub fn decide(&self, decision: &Decision) -> Result<(), QueueError> {
        self.proposal(&decision.id)?;
        let path = self.decision_path(&decision.id);
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
        Ok(read_json(&self.root.join(CURRENT))?.unwrap_or_default())
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

/// A queue file parsed, read within [`Limits::FILE`] without following symlinks; `None` when it
/// does not exist.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, QueueError> {
    let Some(bytes) = read_bounded(path, Limits::FILE)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| QueueError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })
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

    fn proposal_file(q: &Queue, id: &str) -> PathBuf {
        q.root().join(PROPOSALS).join(format!("{id}.json"))
    }

    #[test]
    fn a_symlinked_queue_file_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path().join("q"));
        // Positive control: the same bytes as a regular file are read.
        q.submit(&proposal("1-a", "2026-01-01T00:00:01Z")).unwrap();
        assert_eq!(q.proposals().unwrap().len(), 1);
        let outside = dir.path().join("elsewhere.json");
        fs::rename(proposal_file(&q, "1-a"), &outside).unwrap();
        std::os::unix::fs::symlink(&outside, proposal_file(&q, "1-a")).unwrap();
        let e = q.proposals().unwrap_err();
        assert!(matches!(e, QueueError::Unsafe { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(matches!(q.proposal("1-a"), Err(QueueError::Unsafe { .. })));

        let current = dir.path().join("current-elsewhere.json");
        fs::write(&current, "{}").unwrap();
        std::os::unix::fs::symlink(&current, q.root().join(CURRENT)).unwrap();
        assert!(matches!(q.current(), Err(QueueError::Unsafe { .. })));

        // A decisions directory that points elsewhere is neither read nor written through.
        fs::remove_file(proposal_file(&q, "1-a")).unwrap();
        q.submit(&proposal("2-b", "2026-01-01T00:00:02Z")).unwrap();
        let target = dir.path().join("decisions-elsewhere");
        fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, q.root().join(DECISIONS)).unwrap();
        assert!(matches!(
            q.decide(&decision("2-b", Status::Rejected)),
            Err(QueueError::Unsafe { .. })
        ));
        assert!(matches!(q.decision("2-b"), Err(QueueError::Unsafe { .. })));
        assert_eq!(
            fs::read_dir(&target).unwrap().count(),
            0,
            "nothing written there"
        );
    }

    #[test]
    fn an_oversize_or_special_queue_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path());
        // Positive control: a published config within the bound is read.
        let current = CurrentConfig {
            allow: vec!["x".repeat(1000); 100],
            ..Default::default()
        };
        q.publish_current(&current).unwrap();
        assert_eq!(q.current().unwrap(), current);
        let mut big = b"{\"allow\": [\"".to_vec();
        big.resize(usize::try_from(Limits::FILE).unwrap() + 1, b'x');
        fs::write(q.root().join(CURRENT), &big).unwrap();
        let e = q.current().unwrap_err();
        assert!(e.to_string().contains("limit of a queue file"), "{e}");

        // A FIFO would block a plain open forever; here it is refused at once.
        fs::create_dir_all(q.root().join(PROPOSALS)).unwrap();
        let fifo = std::ffi::CString::new(
            proposal_file(&q, "3-c")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let e = q.proposal("3-c").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_temporary_name_taken_in_advance_changes_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path());
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        // The names a writer with predictable temporary names would use.
        for name in [
            format!(".{CURRENT}.{}.tmp", std::process::id()),
            format!(".{CURRENT}.tmp"),
        ] {
            std::os::unix::fs::symlink(&victim, q.root().join(name)).unwrap();
        }
        let current = CurrentConfig {
            allow: vec!["example.com".into()],
            ..Default::default()
        };
        q.publish_current(&current).unwrap();
        assert_eq!(q.current().unwrap(), current);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        // A decision created at the same moment as another one: one wins, none is clobbered.
        q.submit(&proposal("1-a", "t")).unwrap();
        let first = decision("1-a", Status::Rejected);
        let second = decision("1-a", Status::Approved);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| q.decide(&first));
            let b = s.spawn(|| q.decide(&second));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
        let kept = q.decision("1-a").unwrap().unwrap().status;
        assert_eq!(
            kept,
            if a.is_ok() {
                Status::Rejected
            } else {
                Status::Approved
            }
        );
        let mode = fs::metadata(q.root().join(CURRENT)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o644,
            "readable by the sidecar's uid"
        );
    }

    #[test]
    fn at_most_twenty_proposals_wait() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path());
        for i in 0..Limits::PENDING {
            q.submit(&proposal(&format!("{i}-a"), "t")).unwrap();
        }
        let e = q.submit(&proposal("20-a", "t")).unwrap_err();
        assert!(
            matches!(e, QueueError::TooManyPending { pending: 20 }),
            "{e}"
        );
        assert!(e.is_cap());
        assert!(
            e.to_string().contains("wait for the operator's decisions"),
            "{e}"
        );
        // A decided one no longer waits, and a withdrawn one is gone: room for two.
        q.decide(&decision("0-a", Status::Rejected)).unwrap();
        assert!(q.withdraw("1-a").unwrap());
        assert!(!q.withdraw("0-a").unwrap(), "a decided proposal stays");
        q.submit(&proposal("20-a", "t")).unwrap();
        q.submit(&proposal("21-a", "t")).unwrap();
        assert!(q.submit(&proposal("22-a", "t")).unwrap_err().is_cap());
        assert_eq!(q.pending().unwrap().len(), Limits::PENDING);
    }

    #[test]
    fn waiting_proposals_take_at_most_one_mib() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::at(dir.path());
        let big = |id: &str| Proposal {
            id: id.into(),
            tool: crate::proposal::Tool::CapabilityBlock,
            justification: "needs tools".into(),
            created_at: "t".into(),
            change: Change::Dockerfile {
                dockerfile: format!("FROM debian\n{}\n", "#".repeat(60 * 1024)),
            },
        };
        let mut queued = 0;
        let e = loop {
            match q.submit(&big(&format!("{queued}-d"))) {
                Ok(_) => queued += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(e, QueueError::PendingTooLarge { .. }), "{e}");
        assert!(e.to_string().contains("1048576 bytes"), "{e}");
        assert!((15..Limits::PENDING).contains(&queued), "{queued}");
        let on_disk: u64 = fs::read_dir(q.root().join(PROPOSALS))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= Limits::PENDING_BYTES, "{on_disk}");
        // A small one still fits.
        q.submit(&proposal("99-s", "t")).unwrap();
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
