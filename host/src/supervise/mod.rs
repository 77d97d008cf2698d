//! Supervise, the operator's side: every bottle's queue, decisions, applying approved changes to
//! a running bottle, and the audit trail.
//!
//! The agent asks through the supervise sidecar (`sidecars/supervise`), which writes a proposal
//! into the bottle's queue (`~/.bottle/state/<identity>/supervise-queue/`) and blocks until a
//! decision file appears. Here the host:
//!
//! - finds the queues ([`bottles`]) and what each bottle's changes can touch ([`targets`]);
//! - shows a proposal as a diff against the bottle's current configuration ([`preview`]);
//! - applies an approved change after validating it, without restarting the bottle where it can
//!   ([`apply`]): each live sidecar that takes the change ([`crate::sidecars`]) rewrites its
//!   config and reloads it its own way; a Dockerfile is saved and the bottle stopped for
//!   `bottle resume`;
//! - writes one audit line per decision ([`audit`]);
//! - expires what is still pending when a bottle goes away ([`expire_pending`]).

pub mod apply;
pub mod audit;
pub mod decide;
pub mod preview;
pub mod targets;

use std::path::{Path, PathBuf};

use bottle_supervise_queue::{Entry, Queue, STATE_DIR_NAME};

use crate::home::Home;

pub use decide::{DecideError, Decided, Decider, expire_pending};
pub use targets::Targets;

/// A bottle that has a supervise queue.
#[derive(Debug, Clone)]
pub struct SupervisedBottle {
    /// Its identity.
    pub identity: String,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// Its queue.
    pub queue: Queue,
}

impl SupervisedBottle {
    /// The bottle `identity` under `state_root`, if it has a queue.
    pub fn find(state_root: &Path, identity: &str) -> Option<SupervisedBottle> {
        let state_dir = state_root.join(identity);
        let queue_dir = state_dir.join(STATE_DIR_NAME);
        queue_dir.is_dir().then(|| SupervisedBottle {
            identity: identity.to_owned(),
            state_dir,
            queue: Queue::at(queue_dir),
        })
    }

    /// What changes can touch in this bottle (written at launch).
    pub fn targets(&self) -> Targets {
        targets::read(&self.state_dir).unwrap_or_default()
    }
}

/// Every bottle of `home` with a supervise queue, by identity.
pub fn bottles(home: &Home) -> Vec<SupervisedBottle> {
    let root = home.state_dir();
    let mut found: Vec<_> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| SupervisedBottle::find(&root, &e.file_name().to_string_lossy()))
        .collect();
    found.sort_by(|a, b| a.identity.cmp(&b.identity));
    found
}

/// One proposal with the bottle it belongs to.
#[derive(Debug, Clone)]
pub struct Item {
    /// The bottle.
    pub bottle: SupervisedBottle,
    /// The proposal and its decision.
    pub entry: Entry,
}

/// Every proposal of every bottle, oldest first; with `pending_only`, only those without a
/// decision. A queue that cannot be read is reported and skipped.
pub fn items(home: &Home, pending_only: bool) -> Vec<Item> {
    let mut items = Vec::new();
    for bottle in bottles(home) {
        match bottle.queue.proposals() {
            Ok(entries) => items.extend(
                entries
                    .into_iter()
                    .filter(|e| !pending_only || e.decision.is_none())
                    .map(|entry| Item {
                        bottle: bottle.clone(),
                        entry,
                    }),
            ),
            Err(e) => tracing::warn!("skipping the queue of {}: {e}", bottle.identity),
        }
    }
    items.sort_by(|a, b| {
        let key = |i: &Item| {
            (
                i.entry.proposal.created_at.clone(),
                i.entry.proposal.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    items
}

/// Find a proposal by id, or by `<identity>/<id>` when ids collide across bottles.
pub fn find_item(home: &Home, id: &str) -> Result<Item, DecideError> {
    let (bottle, id) = match id.split_once('/') {
        Some((bottle, id)) => (Some(bottle), id),
        None => (None, id),
    };
    let matches: Vec<Item> = items(home, false)
        .into_iter()
        .filter(|i| i.entry.proposal.id == id && bottle.is_none_or(|b| b == i.bottle.identity))
        .collect();
    match matches.len() {
        0 => Err(DecideError::NotFound(id.to_owned())),
        1 => Ok(matches.into_iter().next().expect("one")),
        _ => Err(DecideError::Ambiguous {
            id: id.to_owned(),
            bottles: matches.iter().map(|i| i.bottle.identity.clone()).collect(),
        }),
    }
}
