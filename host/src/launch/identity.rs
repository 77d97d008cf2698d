//! Names of a running bottle: its identity and every Docker object derived from it.

/// A bottle instance's identity: the agent's name, with `-N` when that is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(String);

impl Identity {
    /// `base` with suffix `n` (1 means none).
    pub fn numbered(base: &str, n: u32) -> Self {
        if n <= 1 {
            Identity(base.to_owned())
        } else {
            Identity(format!("{base}-{n}"))
        }
    }

    /// An identity as given (resume, stop, exec).
    pub fn from_name(name: &str) -> Self {
        Identity(name.to_owned())
    }

    /// The identity string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The agent container.
    pub fn agent_container(&self) -> String {
        format!("bottle-{}", self.0)
    }

    /// A sidecar's container.
    pub fn sidecar_container(&self, sidecar: &str) -> String {
        format!("bottle-{}-{sidecar}", self.0)
    }

    /// The internal network (no route out).
    pub fn internal_network(&self) -> String {
        format!("bottle-net-{}", self.0)
    }

    /// The egress network.
    pub fn egress_network(&self) -> String {
        format!("bottle-egress-{}", self.0)
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
