//! Deciding a proposal: approve (as proposed or modified), reject with a reason, or expire when
//! the bottle is gone. Every decision is written to the queue (which answers the waiting agent)
//! and to the audit trail. The operator may also change a running bottle directly
//! ([`Decider::edit`]): applied the same way, audited, with no proposal and no answer.

use std::path::PathBuf;

use bottle_supervise_queue::{Change, Decision, Proposal, QueueError, Status};

use super::apply::{self, ApplyError, ApplyOptions, OperatorEdit};
use super::audit::{self, AuditRecord};
use super::{Item, SupervisedBottle};
use crate::docker::Engine;
use crate::home::Home;
use crate::launch::state::now_rfc3339 as now;

/// Why a decision could not be made. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No proposal with this id.
    #[error("no proposal `{0}`; `bottle supervise list` shows the pending ones")]
    NotFound(String),
    /// The id exists in several bottles.
    #[error("proposal `{id}` exists in several bottles ({}); name it as <identity>/{id}", bottles.join(", "))]
    Ambiguous {
        /// The id.
        id: String,
        /// The bottles that have it.
        bottles: Vec<String>,
    },
    /// Already decided.
    #[error("proposal `{id}` was already decided: {}", status.as_str())]
    AlreadyDecided {
        /// The proposal.
        id: String,
        /// Its decision.
        status: Status,
    },
    /// The bottle is gone; the proposal was expired.
    #[error(
        "bottle `{0}` is not running, so nothing can be applied; the proposal is now expired \
         (kept in the audit log). Relaunch with `bottle resume {0}` and let the agent ask again"
    )]
    NotRunning(String),
    /// An operator edit on a bottle that is not running.
    #[error("bottle `{0}` is not running, so there is nothing to change; nothing was applied")]
    Stopped(String),
    /// An operator edit that changes nothing.
    #[error("the edit changes nothing; nothing was applied")]
    Unchanged,
    /// A rejection needs a reason for the agent.
    #[error("a rejection needs a reason for the agent: pass --notes \"…\"")]
    NeedsReason,
    /// The change cannot be applied.
    #[error("not applied, the bottle is unchanged: {0}")]
    Apply(#[from] ApplyError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The audit log or state failed.
    #[error("writing the audit log: {0}")]
    Io(#[from] std::io::Error),
    /// The engine failed while stopping the bottle.
    #[error("stopping the bottle: {0}")]
    Stop(String),
}

/// What a decision did.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The decision.
    pub status: Status,
    /// What changed, as a unified diff.
    pub diff: String,
    /// The audit file the decision went to.
    pub audit_file: PathBuf,
    /// What the operator should do next, if anything.
    pub next: Option<String>,
}

/// Makes decisions for one bottle home.
pub struct Decider<'a> {
    /// The home (audit log, state).
    pub home: &'a Home,
    /// The engine, for applying.
    pub engine: &'a Engine,
}

impl Decider<'_> {
    /// Apply `edited` (or the proposal as made) and record the approval.
    pub async fn approve(
        &self,
        item: &Item,
        edited: Option<Change>,
        notes: &str,
        options: ApplyOptions,
    ) -> Result<Decided, DecideError> {
        let (bottle, proposal) = undecided(item)?;
        if !self.running(bottle).await {
            expire(self.home, bottle, proposal)?;
            return Err(DecideError::NotRunning(bottle.identity.clone()));
        }
        let status = if edited.as_ref().is_some_and(|c| *c != proposal.change) {
            Status::Modified
        } else {
            Status::Approved
        };
        let change = edited.unwrap_or_else(|| proposal.change.clone());
        let current = bottle.queue.current()?;
        let targets = bottle.targets();
        let prepared = apply::prepare(
            self.engine,
            &targets,
            &bottle.state_dir,
            &current,
            &change,
            options,
        )
        .await?;
        let diff = prepared.diff();
        apply::commit(self.engine, &prepared).await?;
        let decision = Decision {
            id: proposal.id.clone(),
            status,
            notes: notes.to_owned(),
            decided_at: now(),
            applied: (status == Status::Modified).then(|| change.clone()),
        };
        bottle.queue.decide(&decision)?;
        bottle.queue.publish_current(&prepared.current)?;
        let audit_file = record(
            self.home,
            bottle,
            proposal,
            &decision,
            &diff,
            Some(prepared.sha256()),
        )?;
        let next = match change {
            Change::Dockerfile { .. } => Some(self.stop_for_resume(bottle).await?),
            _ => None,
        };
        Ok(Decided {
            status,
            diff,
            audit_file,
            next,
        })
    }

    /// Change a running bottle directly, without a proposal: validate and apply `edit`, publish
    /// the new current configuration, and write an audit line marked as an operator edit.
    pub async fn edit(
        &self,
        bottle: &SupervisedBottle,
        edit: &OperatorEdit,
        notes: &str,
        options: ApplyOptions,
    ) -> Result<Decided, DecideError> {
        if !self.running(bottle).await {
            return Err(DecideError::Stopped(bottle.identity.clone()));
        }
        let current = bottle.queue.current()?;
        if edit.is_noop(&current) {
            return Err(DecideError::Unchanged);
        }
        let prepared = apply::prepare_edit(
            self.engine,
            &bottle.targets(),
            &bottle.state_dir,
            &current,
            edit,
            options,
        )
        .await?;
        let diff = prepared.diff();
        if diff.is_empty() {
            return Err(DecideError::Unchanged);
        }
        apply::commit(self.engine, &prepared).await?;
        bottle.queue.publish_current(&prepared.current)?;
        let record = AuditRecord {
            time: now(),
            bottle: bottle.identity.clone(),
            proposal: String::new(),
            tool: edit.tool(),
            decision: Status::Approved,
            notes: notes.to_owned(),
            justification: String::new(),
            diff: diff.clone(),
            sha256: Some(prepared.sha256()),
            proposed: None,
            operator_edit: true,
        };
        let audit_file = audit::record(self.home.root(), &record)?;
        Ok(Decided {
            status: Status::Approved,
            diff,
            audit_file,
            next: None,
        })
    }

    /// Record a rejection; `notes` is the reason the agent receives.
    pub fn reject(&self, item: &Item, notes: &str) -> Result<Decided, DecideError> {
        if notes.trim().is_empty() {
            return Err(DecideError::NeedsReason);
        }
        let (bottle, proposal) = undecided(item)?;
        let decision = Decision {
            id: proposal.id.clone(),
            status: Status::Rejected,
            notes: notes.to_owned(),
            decided_at: now(),
            applied: None,
        };
        bottle.queue.decide(&decision)?;
        let audit_file = record(self.home, bottle, proposal, &decision, "", None)?;
        Ok(Decided {
            status: Status::Rejected,
            diff: String::new(),
            audit_file,
            next: None,
        })
    }

    async fn running(&self, bottle: &SupervisedBottle) -> bool {
        let agent = bottle.targets().agent.unwrap_or_default();
        !agent.is_empty() && self.engine.is_running(&agent).await.unwrap_or(false)
    }

    /// Give the sidecar a moment to hand the agent its answer, then stop the bottle and keep its
    /// state, so `bottle resume` builds the new image.
    async fn stop_for_resume(&self, bottle: &SupervisedBottle) -> Result<String, DecideError> {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        crate::lifecycle::remove_bottle(
            self.engine,
            self.home,
            &bottle.identity,
            Some(crate::snapshot::Why::Capability),
        )
        .await
        .map_err(|e| DecideError::Stop(e.to_string()))?;
        Ok(format!(
            "the bottle was stopped with its state kept; relaunch it on the new image with \
             `bottle resume {}`",
            bottle.identity
        ))
    }
}

fn undecided(item: &Item) -> Result<(&SupervisedBottle, &Proposal), DecideError> {
    let proposal = &item.entry.proposal;
    // Read again: another operator may have decided since the list was made.
    if let Some(decision) = item
        .entry
        .decision
        .clone()
        .or(item.bottle.queue.decision(&proposal.id)?)
    {
        return Err(DecideError::AlreadyDecided {
            id: proposal.id.clone(),
            status: decision.status,
        });
    }
    Ok((&item.bottle, proposal))
}

fn record(
    home: &Home,
    bottle: &SupervisedBottle,
    proposal: &Proposal,
    decision: &Decision,
    diff: &str,
    sha256: Option<String>,
) -> Result<PathBuf, DecideError> {
    let record = AuditRecord {
        time: decision.decided_at.clone(),
        bottle: bottle.identity.clone(),
        proposal: proposal.id.clone(),
        tool: proposal.tool,
        decision: decision.status,
        notes: decision.notes.clone(),
        justification: proposal.justification.clone(),
        diff: diff.to_owned(),
        sha256,
        proposed: Some(proposal.clone()),
        operator_edit: false,
    };
    Ok(audit::record(home.root(), &record)?)
}

fn expire(home: &Home, bottle: &SupervisedBottle, proposal: &Proposal) -> Result<(), DecideError> {
    let decision = Decision {
        id: proposal.id.clone(),
        status: Status::Expired,
        notes: format!(
            "bottle `{}` went away before a decision; the proposal is kept in the audit log",
            bottle.identity
        ),
        decided_at: now(),
        applied: None,
    };
    match bottle.queue.decide(&decision) {
        Ok(()) => {
            record(home, bottle, proposal, &decision, "", None)?;
            Ok(())
        }
        Err(QueueError::AlreadyDecided(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Expire every pending proposal of `identity` (at teardown): each gets an `expired` decision
/// and an audit line holding the whole proposal. Returns how many were expired.
pub fn expire_pending(home: &Home, identity: &str) -> usize {
    let Some(bottle) = SupervisedBottle::find(&home.root().join("state"), identity) else {
        return 0;
    };
    let pending = bottle.queue.pending().unwrap_or_default();
    pending
        .iter()
        .filter(|p| match expire(home, &bottle, p) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("could not expire proposal {}: {e}", p.id);
                false
            }
        })
        .count()
}
