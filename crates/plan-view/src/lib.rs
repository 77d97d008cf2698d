//! The read-only view of a launch plan that organisation **policy modules** receive.
//!
//! The host builds a [`PlanView`] from its plan once the plan is assembled and validated, serialises
//! it to JSON and hands it to every policy module's `check` (WIT world `policy-module` of package
//! `bottle:plugin@0.1.0`). A module answers with a list of [`Violation`]s; any violation stops the
//! launch. The view names everything a bottle will create or allow — every sidecar, allowed host,
//! credential route, mount, grant, image and the container runtime — and, like the plan, holds **no
//! secret value**: environment variables and secrets appear by name only.
//!
//! # A public contract
//!
//! This crate is the contract between the host and policy modules written by third parties, so it
//! changes carefully:
//!
//! - The JSON document carries [`PlanView::schema`], which is [`PLAN_VIEW_SCHEMA`] for this version.
//!   A change that alters the meaning of an existing field, removes one or changes its type bumps
//!   the schema; a module must refuse a schema it does not know (the SDK's `policy!` does, with rule
//!   `plan-unreadable`).
//! - Adding a field does not bump the schema. Deserialisation ignores fields it does not know, so a
//!   module built against an older version of this crate still reads a newer host's plan.
//! - Every field is required when reading, optional ones (`null`) included: a plan that lacks one
//!   is unreadable rather than quietly read as empty, because an empty list or a missing token is
//!   exactly what lets a policy pass.
//!
//! Lists keep the plan's order (sidecars in start order, egress hosts sorted by host), so the JSON
//! pointers that violations carry ([`Violation::subject`], built with the `pointer_to_*` helpers of
//! [`PlanView`] or with [`pointer()`]) name one element and stay stable between runs of the same plan.
//!
//! This crate depends on `serde` only and compiles for `wasm32-wasip2`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The schema of the view this crate describes; the value of [`PlanView::schema`].
pub const PLAN_VIEW_SCHEMA: u32 = 1;

/// Values of [`RuntimeView::requested`], [`RuntimeView::chosen`] and [`RuntimeView::available`].
pub mod runtimes {
    /// Let the host choose: gVisor's `runsc` when the engine offers it, `runc` otherwise.
    pub const AUTO: &str = "auto";
    /// The engine's default OCI runtime: ordinary Linux containers sharing the host kernel.
    pub const RUNC: &str = "runc";
    /// gVisor: containers behind a user-space kernel.
    pub const RUNSC: &str = "runsc";
}

/// Values of [`GrantView::kind`].
pub mod grant_kinds {
    /// The plugin may ask for this host (or host glob) in the egress allowlist.
    pub const EGRESS: &str = "egress";
    /// The plugin's sidecars may receive this host path (a host file or directory).
    pub const HOST_PATH: &str = "host-path";
    /// The plugin's sidecars may receive the value of this secret (by name).
    pub const SECRET: &str = "secret";
    /// The plugin's sidecars may publish this port on the host.
    pub const PUBLISH_PORT: &str = "publish-port";
}

/// Values of [`PluginView::source`] other than a digest.
pub mod sources {
    /// A plugin embedded in the `bottle` binary.
    pub const BUILT_IN: &str = "built-in";
    /// The prefix of a third-party plugin's source: `sha256:` and the hex digest of its component.
    pub const SHA256_PREFIX: &str = "sha256:";
}

/// The whole plan of one bottle, as policy modules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    /// The schema of this document: [`PLAN_VIEW_SCHEMA`] for the version of this crate.
    pub schema: u32,
    /// The bottle's name (the bottle manifest under `$BOTTLE_HOME`).
    pub bottle: String,
    /// The agent container.
    pub agent: AgentView,
    /// The container runtime the bottle's containers run under.
    pub runtime: RuntimeView,
    /// Every sidecar container, in start order.
    pub sidecars: Vec<SidecarView>,
    /// Every host the bottle may reach through its egress firewall: the manifest's allowlist, the
    /// agent's own hosts and every plugin's egress needs, merged (one entry per host).
    pub egress: Vec<EgressView>,
    /// The credential routes of the egress proxy: hosts whose requests it rewrites on the way out.
    pub routes: Vec<RouteView>,
    /// What each plugin was granted beyond the sandbox defaults: hosts, host paths, secrets, ports.
    pub grants: Vec<GrantView>,
    /// Every plugin loaded for this bottle, built-in or third-party.
    pub plugins: Vec<PluginView>,
    /// Names of every secret the launch will resolve. Values never appear in the view.
    pub secrets: Vec<String>,
}

/// The agent container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// The agent's name (its agent manifest).
    pub name: String,
    /// The agent's image: an image reference (`repo/name:tag`), `context:<name>` for a build context
    /// shipped with `bottle`, or `dockerfile:<host path>` for the agent's own Dockerfile.
    pub image: String,
    /// Names of the agent's environment variables (the bottle's, the plugins' and the proxy
    /// settings). Names only: values, secret or not, are not part of the view.
    pub env: Vec<String>,
    /// Hosts the agent reaches directly, without its proxy (`NO_PROXY`), in the plan's order.
    pub no_proxy: Vec<String>,
    /// The URL of the agent's HTTP(S) proxy, such as `http://egress-proxy:9099`; `None` when no
    /// sidecar offers the `agent-proxy` role.
    #[serde(deserialize_with = "required")]
    pub proxy: Option<String>,
}

/// A role that decides what may leave the bottle: the one place its name is spelled, for the host
/// (which lets only built-in sidecars fill it) and the plugin SDK (`roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityRole {
    /// The proxy the agent's `HTTP_PROXY`/`HTTPS_PROXY` point at.
    AgentProxy,
    /// The sidecar that decides which hosts the bottle may reach.
    EgressFirewall,
}

impl SecurityRole {
    /// Every security role.
    pub const ALL: [SecurityRole; 2] = [SecurityRole::AgentProxy, SecurityRole::EgressFirewall];

    /// The role's name in contributions and facts.
    pub const fn as_str(self) -> &'static str {
        match self {
            SecurityRole::AgentProxy => "agent-proxy",
            SecurityRole::EgressFirewall => "egress-firewall",
        }
    }

    /// The security role named `name`, if it is one.
    pub fn parse(name: &str) -> Option<SecurityRole> {
        SecurityRole::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// The container runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeView {
    /// What the bottle asks for: [`runtimes::AUTO`], [`runtimes::RUNC`] or [`runtimes::RUNSC`].
    pub requested: String,
    /// The runtime the launch will use, once known; `None` when the host has not asked the engine
    /// (such as in a dry run without an engine).
    #[serde(deserialize_with = "required")]
    pub chosen: Option<String>,
    /// The runtimes the engine offers, such as `["runc", "runsc"]`; empty when unknown.
    pub available: Vec<String>,
}

/// A sidecar container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarView {
    /// The sidecar's name, unique in the plan; also the suffix of its container name.
    pub name: String,
    /// The plugin that contributed it.
    pub plugin: String,
    /// Its image, written like [`AgentView::image`]: an image reference or `context:<name>`.
    pub image: String,
    /// The bottle networks it joins: `internal` (no route out) and/or `egress` (a route out).
    pub networks: Vec<String>,
    /// DNS names other containers reach it by on the internal network.
    pub aliases: Vec<String>,
    /// The port it serves on, if any.
    #[serde(deserialize_with = "required")]
    pub port: Option<u16>,
    /// Directories mounted into it.
    pub mounts: Vec<MountView>,
    /// Names of its environment variables (values are not part of the view).
    pub env: Vec<String>,
    /// Names of the secrets whose values its environment receives.
    pub secrets: Vec<String>,
    /// Host paths copied into it (after `~` expansion), each named by the plugin's manifest section.
    pub host_files: Vec<String>,
    /// Ports it publishes on the host; empty for the built-in sidecars.
    pub published_ports: Vec<u16>,
    /// Fixed name-to-address entries of its `/etc/hosts`.
    pub extra_hosts: Vec<HostEntryView>,
}

/// A directory mounted into a sidecar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountView {
    /// What is mounted, as `<kind>:<what>`: `state:<name>` for the directory `<name>` of the
    /// bottle's host state directory, the only kind today. Later kinds get their own prefix.
    pub source: String,
    /// The absolute path in the container.
    pub target: String,
    /// Whether the container may only read it.
    pub read_only: bool,
}

/// A fixed entry of a sidecar's `/etc/hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntryView {
    /// The host name.
    pub host: String,
    /// The address it resolves to.
    pub ip: String,
}

/// A host in the bottle's egress allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressView {
    /// A host name, an IP literal, or a host pattern whose `*` labels each match exactly one DNS
    /// label (`*.example.com` matches `api.example.com`, not `example.com`); lowercase.
    pub host: String,
    /// Why the bottle may reach it: every source that asked (the manifest's allowlist, the agent, a
    /// plugin), joined with `; `.
    pub reason: String,
    /// Requests to it carry credentials injected on the way out (a credential route exists for it).
    pub credentialed: bool,
    /// Connections to it are tunnelled without TLS interception, so neither credential injection
    /// nor the proxy's content checks apply.
    pub passthrough: bool,
}

/// A credential route of the egress proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// The exact host the route applies to, lowercase.
    pub host: String,
    /// Path prefixes requests to the host may use; empty allows every path.
    pub path_allowlist: Vec<String>,
    /// The name of the secret injected into requests to the host; `None` for a route that only
    /// restricts paths.
    #[serde(deserialize_with = "required")]
    pub token: Option<String>,
    /// How the token is injected: the `Authorization` scheme, such as `Bearer` or `token`.
    #[serde(deserialize_with = "required")]
    pub scheme: Option<String>,
}

/// Something a plugin was granted beyond the sandbox defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    /// The plugin holding the grant.
    pub plugin: String,
    /// What kind of grant: one of [`grant_kinds`] (`egress`, `host-path`, `secret`, `publish-port`).
    pub kind: String,
    /// What is granted: a host or host glob, an absolute host path, a secret name, or a port number
    /// written in decimal.
    pub value: String,
}

/// A plugin loaded for the bottle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginView {
    /// The plugin's name.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// Where it comes from: [`sources::BUILT_IN`], or `sha256:<hex>`, the digest of a third-party
    /// component.
    pub source: String,
    /// The WIT package version it targets, such as `0.1.0` (of `bottle:plugin`).
    pub wit: String,
}

/// A broken rule, as a policy module reports it.
///
/// The WIT record of the same name carries the same fields; the SDK converts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule's identifier, `[a-z][a-z0-9-]*`, such as `no-paste-sites`.
    pub rule: String,
    /// What is wrong and how to fix it, for the person launching the bottle.
    pub message: String,
    /// The offending part of the plan as a JSON pointer (RFC 6901) into the view, such as
    /// `/egress/3/host`; empty for the whole plan.
    pub subject: String,
    /// Extra key/value pairs for tools that read violations.
    pub properties: Vec<Property>,
}

/// A key/value pair of a [`Violation`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

impl Violation {
    /// A violation of `rule` by the part of the plan at `subject` (a JSON pointer), explained by
    /// `message`.
    pub fn new(
        rule: impl Into<String>,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Violation {
        Violation {
            rule: rule.into(),
            message: message.into(),
            subject: subject.into(),
            properties: Vec::new(),
        }
    }

    /// The same violation with one more property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Violation {
        self.properties.push(Property {
            key: key.into(),
            value: value.into(),
        });
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = if self.subject.is_empty() {
            "/"
        } else {
            &self.subject
        };
        write!(f, "{} at {}: {}", self.rule, subject, self.message)
    }
}

/// A JSON pointer (RFC 6901) made of `segments`, each escaped (`~` as `~0`, `/` as `~1`).
///
/// ```
/// use bottle_plan_view::pointer;
/// assert_eq!(pointer(&[&"sidecars", &2, &"image"]), "/sidecars/2/image");
/// assert_eq!(pointer(&[&"a/b"]), "/a~1b");
/// assert_eq!(pointer(&[]), "");
/// ```
pub fn pointer(segments: &[&dyn fmt::Display]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        for c in segment.to_string().chars() {
            match c {
                '~' => out.push_str("~0"),
                '/' => out.push_str("~1"),
                c => out.push(c),
            }
        }
    }
    out
}

/// Where a plan names a host; see [`PlanView::host_mentions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPlace<'a> {
    /// An entry of the egress allowlist ([`PlanView::egress`]).
    Egress {
        /// Why the bottle may reach it ([`EgressView::reason`]).
        reason: &'a str,
    },
    /// A credential route ([`PlanView::routes`]).
    Route,
    /// An `egress` grant of a plugin ([`PlanView::grants`]).
    Grant {
        /// The plugin holding the grant.
        plugin: &'a str,
    },
    /// The agent's `NO_PROXY` ([`AgentView::no_proxy`]).
    NoProxy,
    /// A DNS alias of a sidecar ([`SidecarView::aliases`]).
    SidecarAlias {
        /// The sidecar's name.
        sidecar: &'a str,
    },
    /// An `/etc/hosts` entry of a sidecar ([`SidecarView::extra_hosts`]).
    SidecarExtraHost {
        /// The sidecar's name.
        sidecar: &'a str,
    },
}

impl fmt::Display for HostPlace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPlace::Egress { .. } => write!(f, "the bottle's egress allowlist"),
            HostPlace::Route => write!(f, "the egress proxy's credential routes"),
            HostPlace::Grant { plugin } => write!(f, "the egress grants of plugin `{plugin}`"),
            HostPlace::NoProxy => write!(f, "the agent's NO_PROXY"),
            HostPlace::SidecarAlias { sidecar } => {
                write!(f, "the DNS aliases of sidecar `{sidecar}`")
            }
            HostPlace::SidecarExtraHost { sidecar } => {
                write!(f, "the /etc/hosts entries of sidecar `{sidecar}`")
            }
        }
    }
}

/// One place where a plan names a host or host pattern; see [`PlanView::host_mentions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMention<'a> {
    /// The host, host glob or `NO_PROXY` entry, exactly as the plan writes it.
    pub host: &'a str,
    /// A JSON pointer to it.
    pub subject: String,
    /// What kind of place it is.
    pub place: HostPlace<'a>,
}

impl Default for PlanView {
    /// An empty plan of the current schema, a starting point for tests.
    fn default() -> PlanView {
        PlanView {
            schema: PLAN_VIEW_SCHEMA,
            bottle: String::new(),
            agent: AgentView::default(),
            runtime: RuntimeView::default(),
            sidecars: Vec::new(),
            egress: Vec::new(),
            routes: Vec::new(),
            grants: Vec::new(),
            plugins: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

impl PlanView {
    /// `/egress/<index>/host`: the host of an egress allowlist entry.
    pub fn pointer_to_egress(index: usize) -> String {
        pointer(&[&"egress", &index, &"host"])
    }

    /// `/routes/<index>/host`: the host of a credential route.
    pub fn pointer_to_route(index: usize) -> String {
        PlanView::pointer_to_route_field(index, "host")
    }

    /// `/routes/<index>/<field>`, such as `/routes/0/path_allowlist`.
    pub fn pointer_to_route_field(index: usize, field: &str) -> String {
        pointer(&[&"routes", &index, &field])
    }

    /// `/sidecars/<index>/<field>`, such as `/sidecars/2/image`.
    pub fn pointer_to_sidecar(index: usize, field: &str) -> String {
        pointer(&[&"sidecars", &index, &field])
    }

    /// `/sidecars/<index>/<field>/<item>`, one element of a sidecar's list, such as
    /// `/sidecars/1/aliases/0`.
    pub fn pointer_to_sidecar_item(index: usize, field: &str, item: usize) -> String {
        pointer(&[&"sidecars", &index, &field, &item])
    }

    /// `/grants/<index>/value`: what a grant grants.
    pub fn pointer_to_grant(index: usize) -> String {
        pointer(&[&"grants", &index, &"value"])
    }

    /// `/agent/<field>`, such as `/agent/image`.
    pub fn pointer_to_agent(field: &str) -> String {
        pointer(&[&"agent", &field])
    }

    /// `/agent/no_proxy/<index>`: one `NO_PROXY` entry of the agent.
    pub fn pointer_to_no_proxy(index: usize) -> String {
        pointer(&[&"agent", &"no_proxy", &index])
    }

    /// `/runtime/<field>`: `requested`, `chosen` or `available`.
    pub fn pointer_to_runtime(field: &str) -> String {
        pointer(&[&"runtime", &field])
    }

    /// `/plugins/<index>/<field>`, such as `/plugins/3/source`.
    pub fn pointer_to_plugin(index: usize, field: &str) -> String {
        pointer(&[&"plugins", &index, &field])
    }

    /// The sidecar called `name`, with its index.
    pub fn sidecar(&self, name: &str) -> Option<(usize, &SidecarView)> {
        self.sidecars
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
    }

    /// The plugin called `name`, with its index.
    pub fn plugin(&self, name: &str) -> Option<(usize, &PluginView)> {
        self.plugins
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
    }

    /// The routes that inject a credential ([`RouteView::token`] is set), with their indices.
    pub fn credential_routes(&self) -> impl Iterator<Item = (usize, &RouteView)> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, route)| route.token.is_some())
    }

    /// The grants of `kind` (one of [`grant_kinds`]), with their indices.
    pub fn grants_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (usize, &'a GrantView)> {
        self.grants
            .iter()
            .enumerate()
            .filter(move |(_, grant)| grant.kind == kind)
    }

    /// Every place the plan names a host, in a fixed order: egress allowlist, credential routes,
    /// `egress` grants, the agent's `NO_PROXY`, then each sidecar's aliases and `/etc/hosts`
    /// entries. Each comes with a JSON pointer to it.
    pub fn host_mentions(&self) -> Vec<HostMention<'_>> {
        let mut out = Vec::new();
        for (i, egress) in self.egress.iter().enumerate() {
            out.push(HostMention {
                host: &egress.host,
                subject: PlanView::pointer_to_egress(i),
                place: HostPlace::Egress {
                    reason: &egress.reason,
                },
            });
        }
        for (i, route) in self.routes.iter().enumerate() {
            out.push(HostMention {
                host: &route.host,
                subject: PlanView::pointer_to_route(i),
                place: HostPlace::Route,
            });
        }
        for (i, grant) in self.grants_of(grant_kinds::EGRESS) {
            out.push(HostMention {
                host: &grant.value,
                subject: PlanView::pointer_to_grant(i),
                place: HostPlace::Grant {
                    plugin: &grant.plugin,
                },
            });
        }
        for (i, host) in self.agent.no_proxy.iter().enumerate() {
            out.push(HostMention {
                host,
                subject: PlanView::pointer_to_no_proxy(i),
                place: HostPlace::NoProxy,
            });
        }
        for (i, sidecar) in self.sidecars.iter().enumerate() {
            for (j, alias) in sidecar.aliases.iter().enumerate() {
                out.push(HostMention {
                    host: alias,
                    subject: PlanView::pointer_to_sidecar_item(i, "aliases", j),
                    place: HostPlace::SidecarAlias {
                        sidecar: &sidecar.name,
                    },
                });
            }
            for (j, entry) in sidecar.extra_hosts.iter().enumerate() {
                out.push(HostMention {
                    host: &entry.host,
                    subject: pointer(&[&"sidecars", &i, &"extra_hosts", &j, &"host"]),
                    place: HostPlace::SidecarExtraHost {
                        sidecar: &sidecar.name,
                    },
                });
            }
        }
        out
    }
}

impl RuntimeView {
    /// Whether the engine offers `runtime` (compared without regard to case).
    pub fn offers(&self, runtime: &str) -> bool {
        self.available
            .iter()
            .any(|r| r.trim().eq_ignore_ascii_case(runtime))
    }
}

/// Deserialise an `Option` field that must be present (as `null` when it has no value): serde would
/// otherwise read a missing `Option` field as `None`.
fn required<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

#[cfg(test)]
mod tests;
