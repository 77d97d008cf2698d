//! The egress proxy's configuration file (`/etc/bottle/egress-proxy.yaml` in its sidecar).
//!
//! The `egress-proxy` plugin renders it (in WebAssembly, so this crate stays free of I/O and heavy
//! dependencies); the proxy program reads it at start and on SIGHUP. It names secrets only by the
//! environment variable that holds them in the proxy's container: a value never appears here.

mod validate;

use serde::{Deserialize, Serialize};

pub use validate::{
    Cidr, Problem, ValidationError, is_env_name, is_host, is_host_pattern, method_problem,
    upstream_proxy_authority,
};

/// The version of the format this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Where the plugin writes the file and the proxy reads it by default.
pub const DEFAULT_PATH: &str = "/etc/bottle/egress-proxy.yaml";

/// The port the proxy listens on.
pub const DEFAULT_PORT: u16 = 9099;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Format version; must be [`FORMAT_VERSION`].
    pub version: u32,
    /// Address to listen on, such as `0.0.0.0:9099`.
    pub listen: String,
    /// Hosts the bottle may reach: host patterns of `bottle-host-pattern` (`*` matches exactly
    /// one DNS label; case-insensitive).
    /// Everything else is refused with 403.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Whether this proxy is the bottle's egress firewall (otherwise a firewall sits upstream, but
    /// `allow` is still enforced).
    #[serde(default)]
    pub firewall: bool,
    /// Upstream HTTP proxy every outgoing connection goes through with CONNECT (pipelock), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_proxy: Option<String>,
    /// TLS interception.
    pub tls: TlsConfig,
    /// Credential-injecting routes.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Hosts tunnelled without interception (SNI still checked).
    #[serde(default)]
    pub passthrough: Vec<String>,
    /// Server-side request forgery guard.
    #[serde(default)]
    pub ssrf: SsrfConfig,
    /// Data loss prevention on outgoing requests.
    #[serde(default)]
    pub dlp: DlpConfig,
    /// Learn mode (`bottle start --learn`): a host off the allowlist is allowed and its requests
    /// audited with `learn: learned` instead of refused. Routes, DLP, the SSRF guard and the git
    /// push refusal apply unchanged; only the proxy that is the firewall may learn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learn: bool,
}

/// TLS interception material, as paths inside the proxy's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The interception CA certificate (PEM) the agent trusts.
    pub ca_cert: String,
    /// Its private key (PEM).
    pub ca_key: String,
    /// Extra roots trusted on the upstream leg besides the public ones (pipelock's CA).
    #[serde(default)]
    pub upstream_roots: Vec<String>,
}

/// A credential route: requests to `host` get a token injected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact host name (case-insensitive).
    pub host: String,
    /// Allowed path prefixes on the normalised path; empty allows every path.
    #[serde(default)]
    pub path_allowlist: Vec<String>,
    /// The credential to inject, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RouteAuth>,
    /// HTTP methods allowed (upper case); empty allows only [`READ_METHODS`]. A route's token is
    /// write access, so every write method must be named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// The methods a route allows when it names none: reads only.
pub const READ_METHODS: &[&str] = &["GET", "HEAD", "OPTIONS"];

/// Methods no route may allow: `TRACE` echoes the request (and an injected token) back, and
/// `CONNECT` would open a tunnel past the route's rules.
pub const NEVER_METHODS: &[&str] = &["TRACE", "CONNECT"];

/// The value the agent holds for a token the proxy injects: not a secret, only enough for the agent
/// to start. Deliberately unlike any real token format, so that the proxy's DLP patterns leave it be.
/// A request to a route that injects a token may carry it (or no credential) and nothing else.
pub const PLACEHOLDER_TOKEN: &str = "bottle-placeholder-token-injected-by-egress-proxy";

impl Route {
    /// The methods this route allows: its own, or [`READ_METHODS`] when it names none.
    pub fn allowed_methods(&self) -> Vec<&str> {
        if self.methods.is_empty() {
            READ_METHODS.to_vec()
        } else {
            self.methods.iter().map(String::as_str).collect()
        }
    }
}

/// How a route's credential is injected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    /// The `Authorization` scheme.
    pub scheme: AuthScheme,
    /// The environment variable of the proxy's container that holds the token.
    pub token_env: String,
}

/// `Authorization: <scheme> <token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthScheme {
    /// `Bearer <token>`.
    Bearer,
    /// `token <token>` (GitHub's classic form).
    #[serde(rename = "token")]
    Token,
}

impl AuthScheme {
    /// The word before the token in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::Bearer => "Bearer",
            AuthScheme::Token => "token",
        }
    }
}

/// Addresses the proxy refuses to dial.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsrfConfig {
    /// CIDRs allowed even though they are private (the bottle's internal network, test upstreams).
    #[serde(default)]
    pub allow_cidrs: Vec<String>,
}

/// What to do on a DLP finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DlpAction {
    /// Refuse the request with 403.
    #[default]
    Block,
    /// Forward it and log a warning.
    Warn,
}

/// Data loss prevention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlpConfig {
    /// Environment variables of the proxy's container whose values must not leave the bottle (except
    /// a route token to its own route), in raw, base64, hex and URL-encoded form.
    #[serde(default)]
    pub secret_env: Vec<String>,
    /// Action for the built-in high-signal patterns (AWS keys, GitHub tokens, private keys, …).
    #[serde(default)]
    pub patterns: DlpAction,
    /// Ignored: bodies are scanned as they stream, whatever their size, and are no longer
    /// refused for being large. Kept so configurations that set it still load.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
}

impl Default for DlpConfig {
    fn default() -> Self {
        DlpConfig {
            secret_env: Vec::new(),
            patterns: DlpAction::Block,
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_max_body() -> u64 {
    1024 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_without_methods_is_read_only() {
        let route: Route = yaml_serde::from_str("host: api.github.com").unwrap();
        assert_eq!(route.allowed_methods(), ["GET", "HEAD", "OPTIONS"]);
        let route: Route = yaml_serde::from_str("host: a.b\nmethods: [GET, POST]").unwrap();
        assert_eq!(route.allowed_methods(), ["GET", "POST"]);
        // An absent list is not written out, so older files read the same.
        let text = yaml_serde::to_string(&Route {
            methods: vec![],
            ..route
        })
        .unwrap();
        assert!(!text.contains("methods"), "{text}");
    }
}
