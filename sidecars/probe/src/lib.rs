//! The bottle prober: health checks of a sidecar's own service, and the isolation self-test the
//! launcher runs inside the agent before the agent's command starts.
//!
//! The library holds what the launcher shares with the static binary: the self-test's wire format
//! ([`spec`]) and the keyed fingerprints that let the prober find a route token without being
//! given it ([`fingerprint`]).

pub mod fingerprint;
pub mod run;
pub mod spec;
