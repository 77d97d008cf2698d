//! Supervise's lines in the audit trail ([`crate::audit`]): one per decision and per operator edit.

use std::path::{Path, PathBuf};

use bottle_supervise_queue::{Proposal, Status, Tool};
use serde::Serialize;

pub use crate::audit::{append, dir, read_all};

/// One decision.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC.
    pub time: String,
    /// The bottle's identity.
    pub bottle: String,
    /// The proposal's id (empty for an operator edit).
    pub proposal: String,
    /// The tool it came from.
    pub tool: Tool,
    /// What was decided.
    pub decision: Status,
    /// The operator's notes.
    pub notes: String,
    /// The agent's justification.
    pub justification: String,
    /// Unified diff of what changed (empty when nothing did).
    pub diff: String,
    /// SHA-256 of the applied content, when something was applied.
    pub sha256: Option<String>,
    /// The proposal as it was made (kept so an expired one is not lost); none for an operator
    /// edit.
    pub proposed: Option<Proposal>,
    /// The operator changed the bottle directly, without a proposal (`tool` names the kind of
    /// change, `decision` is `approved`).
    pub operator_edit: bool,
}

/// Append `record` to today's file.
pub fn record(home_root: &Path, record: &AuditRecord) -> std::io::Result<PathBuf> {
    append(home_root, &record.time, record)
}
