//! The built-in agent and bottle, used when the catalog is empty.
//!
//! They are ordinary manifests parsed by the same code, so they cannot drift from the format.

use std::collections::BTreeSet;

use crate::agent::Agent;
use crate::bottle::Bottle;
use crate::document::Origin;

/// The built-in agent's name.
pub const AGENT_NAME: &str = "claude";

/// The built-in bottle's name.
pub const BOTTLE_NAME: &str = "default";

/// The built-in agent manifest, as a file would hold it.
pub const AGENT_MD: &str = include_str!("../defaults/agent.md");

/// The built-in bottle manifest, as a file would hold it.
pub const BOTTLE_MD: &str = include_str!("../defaults/bottle.md");

/// The built-in agent `claude`, running in the bottle `default`.
pub fn agent() -> Agent {
    // The text is fixed and covered by tests, so a failure here is a bug in this crate.
    Agent::parse(AGENT_MD, &Origin::embedded(AGENT_NAME)).expect("the built-in agent is valid")
}

/// The built-in bottle `default`: the built-in firewall, no secrets, no git upstreams.
pub fn bottle() -> Bottle {
    Bottle::parse(
        BOTTLE_MD,
        &Origin::embedded(BOTTLE_NAME),
        &BTreeSet::new(),
        None,
    )
    .expect("the built-in bottle is valid")
}
