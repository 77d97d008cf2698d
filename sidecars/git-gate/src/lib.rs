//! The git gate: the only way an agent in a bottle can write to a git upstream.
//!
//! The gate serves one bare mirror per configured repository over `git daemon` on the bottle's
//! internal network. Before every read it fetches from the upstream, so the agent always sees the
//! upstream's current state (a failed fetch fails the read). Every push runs the `pre-receive`
//! hook: ref policy, a secret scan of exactly the new commits, then the push to the upstream,
//! whose answer the agent sees. Only if the upstream accepts do the gate's refs move.
//!
//! The configuration (`/etc/bottle/git-gate.yaml`) is written by the `git-gate` plugin; the hooks
//! re-read it on every invocation, so a policy change takes effect with the next push.

pub mod ci;
pub mod config;
pub mod git;
pub mod hooks;
pub mod policy;
pub mod pushed;
pub mod scan;
pub mod serve;
pub mod supervisor;

/// The environment switch that lets tests use a local upstream (a path or `file://` URL).
/// Production refuses anything but `ssh://`.
pub const ALLOW_LOCAL_UPSTREAM: &str = "BOTTLE_GATE_ALLOW_LOCAL_UPSTREAM";
