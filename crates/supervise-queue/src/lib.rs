//! The supervise queue of one bottle: a directory shared by the supervise sidecar (which writes
//! proposals and waits for decisions) and the host (which lists proposals, writes decisions and
//! publishes the bottle's current configuration).
//!
//! ```text
//! <queue>/
//!   proposals/<id>.json   written by the sidecar, once, atomically (Proposal)
//!   decisions/<id>.json   written by the host, once, atomically (Decision)
//!   current.json          written by the host: what the agent may read (CurrentConfig)
//! ```
//!
//! On the host the queue is `~/.bottle/state/<identity>/supervise-queue/`, mounted into the
//! sidecar at `/var/lib/bottle/queue`. Files are written to a temporary name and renamed, so a
//! reader never sees half a file; a decision is created with `create_new`, so two operators
//! cannot both decide the same proposal.

mod files;
mod proposal;
mod queue;
pub mod text;

pub use proposal::{
    Change, CurrentConfig, Decision, GitEntry, Limits, Outcome, Proposal, ProposalError, Status,
    Tool, check_justification, check_plain_text, host_of_url,
};
pub use queue::{Entry, Queue, QueueError};

/// The queue directory inside the supervise sidecar.
pub const SIDECAR_QUEUE_DIR: &str = "/var/lib/bottle/queue";

/// The queue's directory name under a bottle's host state directory.
pub const STATE_DIR_NAME: &str = "supervise-queue";
