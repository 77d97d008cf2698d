//! The guest side of the `bottle:plugin` WIT package: sidecar plugins and policy modules.
//!
//! # Sidecar plugins
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
//! parse the plugin's configuration with serde ([`parse_config`], or one section at a time with
//! [`parse_section`]), and turn parse errors into diagnostics.
//!
//! # Policy modules
//!
//! An organisation's policy module implements [`Policy`] over the read-only [`PlanView`] and exports
//! it with [`policy!`]:
//!
//! ```
//! use bottle_plugin_sdk::{Policy, PlanView, Violation};
//! struct NoRunc;
//! impl Policy for NoRunc {
//!     fn name() -> String {
//!         "no-runc".into()
//!     }
//!     fn check(plan: &PlanView) -> Vec<Violation> {
//!         if plan.runtime.chosen.as_deref() == Some("runc") {
//!             vec![Violation::new(
//!                 "no-runc",
//!                 PlanView::pointer_to_runtime("chosen"),
//!                 "this organisation runs agents under gVisor only: set `runtime: runsc`",
//!             )]
//!         } else {
//!             Vec::new()
//!         }
//!     }
//! }
//! bottle_plugin_sdk::policy!(NoRunc);
//! ```
//!
//! The SDK parses the plan's JSON into a [`PlanView`]; see [`policy!`] for what happens when it
//! cannot, or when `check` panics. A crate may export one world only: `plugin!` or `policy!`.

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

/// The bindings of world `policy-module`. They reuse the sidecar bindings' `types` and `host`
/// interfaces: one [`Property`] type, and one `host.log` import behind [`log`] for plugins and
/// policy modules alike.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod policy_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "policy-module",
        pub_export_macro: true,
        export_macro_name: "export_policy",
        default_bindings_module: "bottle_plugin_sdk::policy_bindings",
        with: {
            "bottle:plugin/types@0.1.0": crate::bindings::bottle::plugin::types,
            "bottle:plugin/host@0.1.0": crate::bindings::bottle::plugin::host,
        },
    });
}

pub mod sections;
#[cfg(feature = "testing")]
pub mod testing;

pub use bottle_plan_view as plan_view;
pub use bottle_plan_view::{PlanView, Violation};
pub use policy_bindings::export_policy;

pub use bindings::bottle::plugin::host::LogLevel;
pub use bindings::bottle::plugin::types::{Diagnostic, Property, Severity};
pub use bindings::export_sidecar;
pub use bindings::exports::bottle::plugin::sidecar::{
    AgentContribution, CaInstall, Contribution, EgressNeed, EnvValue, EnvVar, Facts, File,
    Finalization, Guest, HealthCheck, HostEntry, HostFile, HttpProbe, Image, Mount, MountSource,
    Network, OrderRef, PlacedEnv, PlacedFile, PlanContext, PluginInfo, PluginRef, Probe,
    ProvisionStep, RoleOffer, SidecarFact, SidecarSpec, Target,
};

/// Well-known role names shared by the built-in plugins (spelled once, in
/// [`bottle_plan_view::SecurityRole`], which the host reads too).
pub mod roles {
    use bottle_plan_view::SecurityRole;

    /// The proxy the agent's `HTTP_PROXY`/`HTTPS_PROXY` point at.
    pub const AGENT_PROXY: &str = SecurityRole::AgentProxy.as_str();
    /// The sidecar that decides which hosts the bottle may reach.
    pub const EGRESS_FIREWALL: &str = SecurityRole::EgressFirewall.as_str();
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

/// Parse one section of the plugin's configuration into `T`: `Ok(None)` when the configuration does
/// not have it (or has it as `null`). A value `T` cannot read becomes one error diagnostic whose
/// path leads from the section to the offending value, such as `egress_proxy.routes[1].host`.
///
/// ```
/// # use bottle_plugin_sdk::parse_section;
/// #[derive(serde::Deserialize)]
/// struct Gate { port: u16 }
/// let config = r#"{"git_gate": {"port": "nine"}}"#;
/// let problems = parse_section::<Gate>(config, "git_gate").err().unwrap();
/// assert_eq!(problems[0].path, "git_gate.port");
/// assert!(parse_section::<Gate>("{}", "git_gate").unwrap().is_none());
/// ```
pub fn parse_section<T: serde::de::DeserializeOwned>(
    config: &str,
    section: &str,
) -> Result<Option<T>, Vec<Diagnostic>> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(config)
        .map_err(|e| {
            vec![error(
                "",
                format!("the host passed a configuration this plugin cannot read: {e}"),
                Some("the configuration must be a JSON object of manifest sections"),
            )]
        })?;
    let value = match object.remove(section) {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(value) => value,
    };
    serde_path_to_error::deserialize(value)
        .map(Some)
        .map_err(|e| {
            let mut path = section.to_owned();
            for segment in e.path() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => {
                        path.push_str(&format!("[{index}]"))
                    }
                    serde_path_to_error::Segment::Map { key }
                    | serde_path_to_error::Segment::Enum { variant: key } => {
                        path.push('.');
                        path.push_str(key);
                    }
                    serde_path_to_error::Segment::Unknown => path.push_str(".?"),
                }
            }
            let hint = format!("check the `{section}` section against the plugin's documentation");
            vec![error(path, e.into_inner().to_string(), Some(&hint))]
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

/// A sidecar plugin with a typed configuration: the SDK parses the JSON of its manifest sections
/// into [`SidecarPlugin::Config`] (a value it cannot read is an error diagnostic, as with
/// [`parse_config`]) before each call, and a plugin with nothing to add after the plan keeps the
/// default no-op [`SidecarPlugin::finalize`]. Every `SidecarPlugin` is a [`Guest`], so
/// [`plugin!`] exports it as it is.
///
/// ```
/// use bottle_plugin_sdk::{Contribution, Diagnostic, PlanContext, PluginInfo, SidecarPlugin};
/// #[derive(serde::Deserialize)]
/// struct Config {
///     #[serde(default)]
///     hello: bool,
/// }
/// struct Hello;
/// impl SidecarPlugin for Hello {
///     type Config = Config;
///     fn describe() -> PluginInfo {
///         PluginInfo {
///             name: "hello".into(),
///             version: "0.1.0".into(),
///             summary: "says hello".into(),
///             sections: vec!["hello".into()],
///             roles: vec![],
///             properties: vec![],
///         }
///     }
///     fn plan(config: Config, _: PlanContext) -> Result<Option<Contribution>, Vec<Diagnostic>> {
///         if !config.hello {
///             return Ok(None); // nothing to do for this bottle
///         }
///         Ok(None) // a real plugin returns its sidecars here
///     }
///     // `finalize` is left out: nothing to add once the plan is assembled.
/// }
/// bottle_plugin_sdk::plugin!(Hello);
/// ```
pub trait SidecarPlugin {
    /// The manifest sections the plugin reads, as one serde type.
    type Config: serde::de::DeserializeOwned;

    /// Name, version, sections read and roles offered.
    fn describe() -> PluginInfo;

    /// The plugin's contribution for this bottle; `None` when it has nothing to do.
    fn plan(
        config: Self::Config,
        context: PlanContext,
    ) -> Result<Option<Contribution>, Vec<Diagnostic>>;

    /// Files and variables that need the assembled plan's facts; nothing by default.
    fn finalize(
        _config: Self::Config,
        _context: PlanContext,
        _facts: Facts,
    ) -> Result<Finalization, Vec<Diagnostic>> {
        Ok(nothing_to_finalize())
    }
}

impl<T: SidecarPlugin> Guest for T {
    fn describe() -> PluginInfo {
        <T as SidecarPlugin>::describe()
    }

    fn plan(config: String, context: PlanContext) -> Result<Option<Contribution>, Vec<Diagnostic>> {
        <T as SidecarPlugin>::plan(parse_config(&config)?, context)
    }

    fn finalize(
        config: String,
        context: PlanContext,
        facts: Facts,
    ) -> Result<Finalization, Vec<Diagnostic>> {
        <T as SidecarPlugin>::finalize(parse_config(&config)?, context, facts)
    }
}

/// An organisation policy: rules over the finished plan of a bottle.
///
/// Implement it and export it with [`policy!`]. Both functions are pure: a policy module runs in the
/// same sandbox as a plugin (no files, network, environment or clock, a deadline and a memory cap).
pub trait Policy {
    /// The module's name, `[a-z][a-z0-9-]*`, shown with each of its violations.
    fn name() -> String;

    /// The violations `plan` commits: one per broken rule and offending part of the plan, each
    /// naming that part with a JSON pointer ([`Violation::subject`]). Empty allows the launch.
    fn check(plan: &PlanView) -> Vec<Violation>;
}

/// The rule of the violation the SDK reports for a plan the module cannot read: not JSON, another
/// schema than [`plan_view::PLAN_VIEW_SCHEMA`], or a field missing or of the wrong type.
pub const PLAN_UNREADABLE: &str = "plan-unreadable";

/// The rule of the violation the SDK reports when [`Policy::check`] panics and the panic can be
/// caught (see [`policy!`]).
pub const POLICY_PANICKED: &str = "policy-panicked";

/// Read the JSON plan the host hands to `check`. A plan this module cannot read is one
/// [`PLAN_UNREADABLE`] violation whose subject points at the offending part, never a panic.
pub fn parse_plan(json: &str) -> Result<PlanView, Violation> {
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: u32,
    }
    let unreadable = |subject: String, problem: String| {
        Violation::new(
            PLAN_UNREADABLE,
            subject,
            format!(
                "this policy module cannot read the plan: {problem}; it reads plan view schema {} \
                 (built with bottle-plugin-sdk {}), so rebuild it against the plan view of this \
                 bottle version",
                plan_view::PLAN_VIEW_SCHEMA,
                env!("CARGO_PKG_VERSION"),
            ),
        )
    };
    let schema = serde_json::from_str::<Schema>(json)
        .map_err(|e| unreadable(String::new(), e.to_string()))?
        .schema;
    if schema != plan_view::PLAN_VIEW_SCHEMA {
        return Err(unreadable(
            plan_view::pointer(&[&"schema"]),
            format!("the host sent schema {schema}"),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let segments: Vec<String> = e
            .path()
            .iter()
            .map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key }
                | serde_path_to_error::Segment::Enum { variant: key } => key.clone(),
                serde_path_to_error::Segment::Unknown => "?".to_owned(),
            })
            .collect();
        let segments: Vec<&dyn std::fmt::Display> = segments
            .iter()
            .map(|s| s as &dyn std::fmt::Display)
            .collect();
        unreadable(plan_view::pointer(&segments), e.into_inner().to_string())
    })
}

/// What the exported `check` does: parse `json` ([`parse_plan`]) and run `P::check` on it,
/// turning a caught panic into one [`POLICY_PANICKED`] violation. Public so that a policy's native
/// tests can run it exactly as the host will.
pub fn check_plan<P: Policy>(json: &str) -> Vec<Violation> {
    let plan = match parse_plan(json) {
        Ok(plan) => plan,
        Err(violation) => return vec![violation],
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| P::check(&plan))) {
        Ok(violations) => violations,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            vec![Violation::new(
                POLICY_PANICKED,
                "",
                format!(
                    "policy module `{}` failed while checking the plan ({what}); the launch is refused \
                     until the module is fixed",
                    P::name()
                ),
            )]
        }
    }
}

#[doc(hidden)]
pub fn __check_for_host<P: Policy>(
    json: &str,
) -> Vec<policy_bindings::exports::bottle::plugin::policy::Violation> {
    check_plan::<P>(json)
        .into_iter()
        .map(
            |v| policy_bindings::exports::bottle::plugin::policy::Violation {
                rule: v.rule,
                message: v.message,
                subject: v.subject,
                properties: v
                    .properties
                    .into_iter()
                    .map(|p| Property {
                        key: p.key,
                        value: p.value,
                    })
                    .collect(),
            },
        )
        .collect()
}

/// Export `$ty` (an implementation of [`Policy`]) as the component's `policy` interface (world
/// `policy-module`).
///
/// The exported `check` parses the plan with [`parse_plan`] and calls [`Policy::check`]; see
/// [`check_plan`]. A plan the module cannot read is a [`PLAN_UNREADABLE`] violation, never a panic.
///
/// **Panics fail the launch closed.** Natively, and wherever panics unwind, a panic in `check` is
/// caught and reported as one [`POLICY_PANICKED`] violation. Policy modules for `wasm32-wasip2` are
/// built with `panic = "abort"` (the workspace's `plugin` profile; the target does not unwind), so
/// there a panic traps instead: the host reports the trap as an error naming the module (with the
/// panic message, which goes to the module's stderr) and does not launch. Either way, nothing starts.
///
/// The export exists only when compiling for WebAssembly, so a policy crate also builds natively and
/// its rules can be unit-tested with plain `cargo test`.
#[macro_export]
macro_rules! policy {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __BottlePolicyExport;
            impl $crate::policy_bindings::exports::bottle::plugin::policy::Guest
                for __BottlePolicyExport
            {
                fn name() -> ::std::string::String {
                    <$ty as $crate::Policy>::name()
                }
                fn check(
                    plan: ::std::string::String,
                ) -> ::std::vec::Vec<
                    $crate::policy_bindings::exports::bottle::plugin::policy::Violation,
                > {
                    $crate::__check_for_host::<$ty>(&plan)
                }
            }
            $crate::export_policy!(__BottlePolicyExport);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            fn implements_policy<P: $crate::Policy>() {}
            implements_policy::<$ty>();
        };
    };
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

#[cfg(test)]
mod tests;
