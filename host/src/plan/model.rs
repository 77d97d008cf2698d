//! The launch plan: everything the launcher will create, with secrets only by name.
//!
//! The plan is what `--dry-run` prints, what policy modules read, and what the launch stage executes.
//! It holds no secret value: environment entries are [`EnvSource::Secret`] references that the host
//! resolves when it creates a container.

use serde::Serialize;

/// Where the host writes the system prompt in the agent.
pub const AGENT_PROMPT_PATH: &str = "/home/agent/.bottle/system-prompt.md";

/// The whole plan for one bottle.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The bottle's name.
    pub bottle: String,
    /// The agent container.
    pub agent: AgentPlan,
    /// Sidecars in start order.
    pub sidecars: Vec<SidecarPlan>,
    /// Start stages: every sidecar of a stage can start together once the previous stage is healthy.
    pub stages: Vec<Vec<String>>,
    /// Every host the bottle may reach, with why.
    pub egress: Vec<EgressHost>,
    /// The agent's HTTP(S) proxy URL, if any sidecar offers one.
    pub agent_proxy: Option<String>,
    /// The egress firewall the agent proxy chains to, when they differ.
    pub upstream_proxy: Option<String>,
    /// The internal network's CIDR (a placeholder in a dry run).
    pub internal_cidr: String,
    /// CAs the host mints at launch.
    pub cas: Vec<CaPlan>,
    /// CAs the agent trusts: those the agent proxy signs intercepted connections with.
    pub agent_trusts: Vec<String>,
    /// Container runtime choice.
    pub runtime: String,
    /// Plugins that contributed.
    pub plugins: Vec<PluginUse>,
    /// Names of the secrets the launch will resolve.
    pub secrets: Vec<String>,
    /// Every request a plugin made beyond the plain defaults, and what granted it.
    pub grants: Vec<super::grants::GrantUse>,
}

/// A plugin and what it contributed.
#[derive(Debug, Clone, Serialize)]
pub struct PluginUse {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Where it came from; shown as `built-in` or the component's path.
    #[serde(serialize_with = "as_text")]
    pub source: crate::plugin::PluginSource,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// The `bottle:plugin` package version it targets.
    pub wit: String,
    /// Whether it contributed anything to this bottle.
    pub active: bool,
}

fn as_text<S: serde::Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// An environment variable's value in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvSource {
    /// A plain value.
    Literal(String),
    /// The value of the named secret, resolved at container creation.
    Secret(String),
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvEntry {
    /// Name.
    pub name: String,
    /// Value or secret reference.
    pub value: EnvSource,
}

/// A file written into a container.
#[derive(Debug, Clone, Serialize)]
pub struct FilePlan {
    /// Absolute path in the container.
    pub path: String,
    /// Permission bits.
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    /// The contents.
    #[serde(serialize_with = "contents")]
    pub contents: Vec<u8>,
}

/// A host file copied into a container.
#[derive(Debug, Clone, Serialize)]
pub struct HostFilePlan {
    /// Absolute path on the host (after `~` expansion).
    pub host_path: String,
    /// Absolute path in the container.
    pub path: String,
    /// Permission bits.
    #[serde(serialize_with = "octal")]
    pub mode: u32,
}

/// A directory mounted from the bottle's state.
#[derive(Debug, Clone, Serialize)]
pub struct MountPlan {
    /// Directory name under the bottle's state directory.
    pub state_dir: String,
    /// Absolute path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

/// A CA installed into a sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct CaInstallPlan {
    /// `agent` or `firewall`.
    pub ca: String,
    /// Certificate path in the container.
    pub cert_path: String,
    /// Private key path, only for the sidecar that signs with it.
    pub key_path: Option<String>,
}

/// A CA the host mints.
#[derive(Debug, Clone, Serialize)]
pub struct CaPlan {
    /// `agent` or `firewall`.
    pub name: String,
    /// Key algorithm.
    pub algorithm: String,
    /// Sidecars that hold its private key.
    pub key_holders: Vec<String>,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImagePlan {
    /// An image reference.
    Reference(String),
    /// A build context under `docker/`.
    Context(String),
    /// A Dockerfile on the host (the agent's `dockerfile` override).
    Dockerfile(String),
}

/// Networks of a bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// No route out.
    Internal,
    /// A route out.
    Egress,
}

/// A readiness probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbePlan {
    /// TCP connect.
    Tcp(u16),
    /// HTTP GET, 2xx.
    Http {
        /// Port.
        port: u16,
        /// Path.
        path: String,
    },
    /// A command exiting 0.
    Exec(Vec<String>),
}

/// A health check.
#[derive(Debug, Clone, Serialize)]
pub struct HealthPlan {
    /// What is probed.
    pub probe: ProbePlan,
    /// Between attempts.
    pub interval_ms: u32,
    /// Per attempt.
    pub timeout_ms: u32,
    /// Attempts before the launch fails.
    pub retries: u32,
}

/// One sidecar container.
#[derive(Debug, Clone, Serialize)]
pub struct SidecarPlan {
    /// Unique name.
    pub name: String,
    /// The plugin that contributed it.
    pub plugin: String,
    /// Image.
    pub image: ImagePlan,
    /// Command (empty: image default).
    pub command: Vec<String>,
    /// Networks.
    pub networks: Vec<NetworkKind>,
    /// DNS aliases on the internal network.
    pub aliases: Vec<String>,
    /// Serving port.
    pub port: Option<u16>,
    /// Health check.
    pub health: Option<HealthPlan>,
    /// Environment.
    pub env: Vec<EnvEntry>,
    /// Files written before start.
    pub files: Vec<FilePlan>,
    /// Host files copied in.
    pub host_files: Vec<HostFilePlan>,
    /// State mounts.
    pub mounts: Vec<MountPlan>,
    /// CAs installed.
    pub cas: Vec<CaInstallPlan>,
    /// Extra `/etc/hosts` entries.
    pub extra_hosts: Vec<(String, String)>,
    /// Roles offered, with priority.
    pub roles: Vec<(String, i32)>,
    /// Sidecars this one starts after (resolved).
    pub after: Vec<String>,
    /// Ports published on the host's loopback (each granted by the bottle).
    pub published_ports: Vec<u16>,
}

/// A provisioning command in the agent.
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionPlan {
    /// Shown in progress.
    pub name: String,
    /// The plugin that asked for it.
    pub plugin: String,
    /// The command.
    pub command: Vec<String>,
}

/// The agent container.
#[derive(Debug, Clone, Serialize)]
pub struct AgentPlan {
    /// The agent's name.
    pub name: String,
    /// Image override or default context.
    pub image: ImagePlan,
    /// The agent's command.
    pub command: Vec<String>,
    /// Environment: the bottle's, the plugins', and the proxy settings.
    pub env: Vec<EnvEntry>,
    /// Files written into the agent.
    pub files: Vec<FilePlan>,
    /// Hosts reached without the proxy.
    pub no_proxy: Vec<String>,
    /// Provisioning steps from plugins, in order.
    pub provision: Vec<ProvisionPlan>,
    /// Skills copied in.
    pub skills: Vec<String>,
    /// The system prompt.
    pub prompt: String,
    /// Memory, process and CPU limits of the agent's container (the bottle's `limits`).
    pub limits: bottle_manifest::Limits,
}

/// A host in the egress allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressHost {
    /// Host or glob, lowercase.
    pub host: String,
    /// Why, from every source that asked.
    pub reasons: Vec<String>,
    /// Credentials are injected on requests to it.
    pub credentialed: bool,
    /// Tunnelled without interception.
    pub passthrough: bool,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

fn contents<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => s.serialize_str(text),
        Err(_) => s.serialize_str(&format!("<{} bytes of binary data>", bytes.len())),
    }
}
