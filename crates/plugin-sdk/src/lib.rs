//! The guest side of the `bottle:plugin` WIT package.
//!
//! A sidecar plugin implements [`Guest`] and exports it with [`plugin!`]:
//!
//! ```ignore
//! use bottle_plugin_sdk::{Guest, PluginInfo, PlanContext, Contribution, Facts, Finalization, Diagnostic};
//! struct MyPlugin;
//! impl Guest for MyPlugin { /* describe, plan, finalize */ }
//! bottle_plugin_sdk::plugin!(MyPlugin);
//! ```
//!
//! The helpers here build the WIT records with the empty defaults a plugin rarely needs to spell out,
//! parse the plugin's configuration with serde, and turn parse errors into diagnostics.

#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "sidecar-plugin",
        pub_export_macro: true,
        export_macro_name: "export_sidecar",
        default_bindings_module: "bottle_plugin_sdk::bindings",
    });
}

pub use bindings::bottle::plugin::host::LogLevel;
pub use bindings::bottle::plugin::types::{Diagnostic, Property, Severity};
pub use bindings::export_sidecar;
pub use bindings::exports::bottle::plugin::sidecar::{
    AgentContribution, CaInstall, Contribution, EgressNeed, EnvValue, EnvVar, Facts, File,
    Finalization, Guest, HealthCheck, HostEntry, HostFile, HttpProbe, Image, Mount, MountSource,
    Network, OrderRef, PlacedEnv, PlacedFile, PlanContext, PluginInfo, PluginRef, Probe,
    ProvisionStep, RoleOffer, SidecarFact, SidecarSpec, Target,
};

/// Well-known role names shared by the built-in plugins.
pub mod roles {
    /// The proxy the agent's `HTTP_PROXY`/`HTTPS_PROXY` point at.
    pub const AGENT_PROXY: &str = "agent-proxy";
    /// The sidecar that decides which hosts the bottle may reach.
    pub const EGRESS_FIREWALL: &str = "egress-firewall";
}

/// Well-known CA names (see `ca-install` in the WIT).
pub mod cas {
    /// The CA the agent trusts: the egress proxy's interception CA.
    pub const AGENT: &str = "agent";
    /// pipelock's interception CA (ECDSA P-256), trusted by the egress proxy on its upstream leg.
    pub const FIREWALL: &str = "firewall";
}

/// Write a line to the host's log.
pub fn log(level: LogLevel, message: &str) {
    bindings::bottle::plugin::host::log(level, message);
}

/// An error diagnostic at `path` with an optional fix.
pub fn error(
    path: impl Into<String>,
    message: impl Into<String>,
    hint: Option<&str>,
) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        path: path.into(),
        message: message.into(),
        hint: hint.map(str::to_owned),
    }
}

/// Parse the plugin's configuration (the JSON object of its manifest sections) into `T`.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, Vec<Diagnostic>> {
    serde_json::from_str(config).map_err(|e| {
        vec![error(
            "",
            format!("the host passed a configuration this plugin cannot read: {e}"),
            Some("check the section against the plugin's documentation"),
        )]
    })
}

/// A file record.
pub fn file(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> File {
    File {
        path: path.to_owned(),
        contents: contents.into(),
        mode,
    }
}

/// A literal environment variable.
pub fn literal(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: EnvValue::Literal(value.into()),
    }
}

/// An environment variable whose value is the named secret, resolved by the host.
pub fn secret(name: &str, secret: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: EnvValue::Secret(secret.to_owned()),
    }
}

/// An empty agent contribution.
pub fn no_agent_changes() -> AgentContribution {
    AgentContribution {
        env: Vec::new(),
        files: Vec::new(),
        no_proxy: Vec::new(),
        provision: Vec::new(),
        properties: Vec::new(),
    }
}

/// A sidecar spec with everything but the name and image empty.
pub fn sidecar(name: &str, image: Image) -> SidecarSpec {
    SidecarSpec {
        name: name.to_owned(),
        image,
        command: Vec::new(),
        networks: vec![Network::Internal],
        aliases: Vec::new(),
        port: None,
        health: None,
        env: Vec::new(),
        files: Vec::new(),
        host_files: Vec::new(),
        mounts: Vec::new(),
        cas: Vec::new(),
        extra_hosts: Vec::new(),
        roles: Vec::new(),
        after: Vec::new(),
        properties: Vec::new(),
    }
}

/// A health check polling a TCP port every 100 ms for up to 10 s.
pub fn tcp_health(port: u16) -> HealthCheck {
    HealthCheck {
        probe: Probe::Tcp(port),
        interval_ms: 100,
        timeout_ms: 1_000,
        retries: 100,
    }
}

/// An egress need.
pub fn egress(host: &str, reason: &str) -> EgressNeed {
    EgressNeed {
        host: host.to_owned(),
        reason: reason.to_owned(),
        credentialed: false,
        passthrough: false,
    }
}

/// An empty finalization.
pub fn nothing_to_finalize() -> Finalization {
    Finalization {
        files: Vec::new(),
        env: Vec::new(),
        properties: Vec::new(),
    }
}

/// Export `$ty` (an implementation of [`Guest`]) as the component's `sidecar` interface.
///
/// The export exists only when compiling for WebAssembly, so a plugin crate also builds natively and
/// its rendering logic can be unit-tested with plain `cargo test`.
#[macro_export]
macro_rules! plugin {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::export_sidecar!($ty);
    };
}
