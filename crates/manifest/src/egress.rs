//! The `egress` and `egress_proxy` sections: what the bottle may reach, and credential routes.

use std::fmt;

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::invalid::{Invalid, WHERE};
use crate::names;
use crate::strict::{self, Section};

/// The `egress` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Egress {
    /// Which sidecar is the bottle's firewall.
    pub firewall: Firewall,
    /// Extra hosts or host patterns (`*` matches one DNS label) the bottle may reach, canonical.
    pub allowlist: Vec<String>,
    /// An image replacing pipelock's default one.
    pub pipelock_image: Option<String>,
    /// claude-bottle's `egress.dlp_action`, read so that its bottles load; the bottle moves it to
    /// [`EgressProxy::dlp_patterns`] and plugins never see it here.
    #[serde(skip)]
    pub dlp_action: Option<DlpAction>,
}

/// What the egress proxy does when a request matches one of its built-in secret patterns (AWS
/// keys, GitHub tokens, private keys, …). The exact values of the bottle's own secrets are refused
/// either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DlpAction {
    /// Refuse the request (the default).
    #[default]
    Block,
    /// Log the finding and let the request pass.
    Warn,
}

/// The sidecar that is the bottle's egress firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firewall {
    /// The egress proxy (the default).
    #[default]
    Builtin,
    /// pipelock.
    Pipelock,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EgressFields {
    #[serde(default, deserialize_with = "strict::nullable")]
    firewall: Firewall,
    #[serde(default, deserialize_with = "de_allowlist")]
    allowlist: Vec<String>,
    #[serde(default, deserialize_with = "de_image")]
    pipelock_image: Option<String>,
    #[serde(default)]
    dlp_action: Option<DlpAction>,
}

impl Section for Egress {
    const WHAT: &'static str = "the egress section (a mapping)";
    const KEYS: &'static [&'static str] =
        &["firewall", "allowlist", "pipelock_image", "dlp_action"];
    type Fields = EgressFields;

    fn check(f: EgressFields) -> Result<Self, Invalid> {
        Ok(Egress {
            firewall: f.firewall,
            allowlist: f.allowlist,
            pipelock_image: f.pipelock_image,
            dlp_action: f.dlp_action,
        })
    }
}

/// Reads the section from its manifest form.
impl<'de> Deserialize<'de> for Egress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::section(deserializer)
    }
}

fn de_allowlist<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    strict::text_list(d, "host or host pattern", names::host_pattern)
}

fn de_image<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    strict::optional_text(d, "an image reference", |text| {
        names::one_line(text, "image")
    })
}

/// The `egress_proxy` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EgressProxy {
    /// Credential routes, one per host.
    pub routes: Vec<Route>,
    /// Extra CA certificates (PEM files on the host) the proxy trusts on its upstream leg, beside
    /// the public roots: a corporate TLS-inspecting gateway, an internal registry.
    pub upstream_ca: Vec<PathBuf>,
    /// Private address ranges the proxy may connect to (its SSRF guard refuses private, loopback
    /// and link-local addresses otherwise), such as an internal registry's network.
    pub allow_cidrs: Vec<String>,
    /// What a match of a built-in secret pattern does.
    pub dlp_patterns: DlpAction,
    /// Whether the manifest wrote `dlp_patterns` (then claude-bottle's key may not contradict it).
    #[serde(skip)]
    pub(crate) dlp_patterns_written: bool,
    /// Learn mode: set by `bottle start --learn` for one launch, never by a manifest (a bottle
    /// that always learned would be a bottle without an allowlist).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub learn: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EgressProxyFields {
    #[serde(default, deserialize_with = "strict::nullable")]
    routes: Vec<Route>,
    #[serde(default, deserialize_with = "de_upstream_ca")]
    upstream_ca: Vec<String>,
    #[serde(default, deserialize_with = "de_cidrs")]
    allow_cidrs: Vec<String>,
    #[serde(default)]
    dlp_patterns: Option<DlpAction>,
}

fn de_upstream_ca<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    strict::text_list(d, "a path to a PEM certificate", |text| {
        names::one_line(text, "upstream_ca")
    })
}

fn de_cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    strict::text_list(d, "a CIDR such as 10.20.0.0/16", cidr)
}

/// `address/prefix` with a prefix that fits the address family.
fn cidr(text: &str) -> Result<String, Invalid> {
    let bad = || {
        Invalid::new(format!("`{text}` is not a CIDR"))
            .hint("write an address and a prefix length, such as `10.20.0.0/16` or `fd00::/8`")
    };
    let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
    let address: std::net::IpAddr = address.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(text.to_owned())
}

impl Section for EgressProxy {
    const WHAT: &'static str = "the egress_proxy section (a mapping with `routes`, `upstream_ca`, \
                                `allow_cidrs`, `dlp_patterns`)";
    const KEYS: &'static [&'static str] = &["routes", "upstream_ca", "allow_cidrs", "dlp_patterns"];
    type Fields = EgressProxyFields;

    fn check(f: EgressProxyFields) -> Result<Self, Invalid> {
        for (index, route) in f.routes.iter().enumerate() {
            if let Some(first) = f.routes[..index].iter().position(|r| r.host == route.host) {
                return Err(Invalid::new(format!(
                    "host `{}` has two routes: routes[{first}] and routes[{index}]",
                    route.host
                ))
                .at(format!("egress_proxy.routes[{index}].host"))
                .hint("merge them into one route; `path_allowlist` takes several prefixes")
                .find("host", Some(&route.host), 1));
            }
        }
        Ok(EgressProxy {
            routes: f.routes,
            upstream_ca: f.upstream_ca.into_iter().map(PathBuf::from).collect(),
            allow_cidrs: f.allow_cidrs,
            dlp_patterns: f.dlp_patterns.unwrap_or_default(),
            dlp_patterns_written: f.dlp_patterns.is_some(),
            learn: false,
        })
    }
}

/// Reads the section from its manifest form.
impl<'de> Deserialize<'de> for EgressProxy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::section(deserializer)
    }
}

/// A credential route: requests to `host` get a token injected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The exact host, lowercased.
    pub host: String,
    /// The credential to inject, if any.
    pub auth: Option<Auth>,
    /// Allowed path prefixes (each starting with `/`); `None` allows every path.
    pub path_allowlist: Option<Vec<String>>,
    /// Allowed HTTP methods, upper case; `None` allows reads only (GET, HEAD, OPTIONS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteFields {
    #[serde(deserialize_with = "de_host")]
    host: String,
    #[serde(default)]
    auth: Option<Auth>,
    #[serde(default, deserialize_with = "de_path_allowlist")]
    path_allowlist: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_methods")]
    methods: Option<Vec<String>>,
}

impl Section for Route {
    const WHAT: &'static str =
        "a route (a mapping with `host`, and optionally `auth`, `path_allowlist` and `methods`)";
    const KEYS: &'static [&'static str] = &["host", "auth", "path_allowlist", "methods"];
    type Fields = RouteFields;

    fn check(f: RouteFields) -> Result<Self, Invalid> {
        Ok(Route {
            host: f.host,
            auth: f.auth,
            path_allowlist: f.path_allowlist,
            methods: f.methods,
        })
    }
}

/// Reads a route from its manifest form.
impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::section(deserializer)
    }
}

fn de_host<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    strict::text(d, "a host name", names::host)
}

fn de_path_allowlist<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    strict::optional_nonempty_list(d, "path prefix", names::path_prefix)
}

fn de_methods<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    strict::optional_nonempty_list(d, "HTTP method", names::http_method)
}

/// How a route's credential is injected: `Authorization: <scheme> <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Auth {
    /// The word before the token.
    pub scheme: AuthScheme,
    /// The host environment variable holding the token (a secret: only its name travels).
    pub token_ref: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthFields {
    #[serde(default)]
    scheme: Option<AuthScheme>,
    #[serde(default, deserialize_with = "de_token_ref")]
    token_ref: Option<String>,
}

impl Section for Auth {
    const WHAT: &'static str = "an auth mapping (`scheme` and `token_ref`)";
    const KEYS: &'static [&'static str] = &["scheme", "token_ref"];
    type Fields = AuthFields;

    fn check(f: AuthFields) -> Result<Self, Invalid> {
        match (f.scheme, f.token_ref) {
            (Some(scheme), Some(token_ref)) => Ok(Auth { scheme, token_ref }),
            (None, None) => Err(Invalid::new(format!("{WHERE} is empty")).hint(
                "give both `scheme: Bearer` (or `token`) and `token_ref: HOST_ENV_VAR`, or remove \
                 `auth` to forward requests without a credential",
            )),
            (Some(_), None) => Err(Invalid::new(format!(
                "{WHERE} has `scheme` but no `token_ref`"
            ))
            .hint("add `token_ref: HOST_ENV_VAR`, naming the host variable that holds the token")),
            (None, Some(_)) => Err(Invalid::new(format!(
                "{WHERE} has `token_ref` but no `scheme`"
            ))
            .hint("add `scheme: Bearer` or `scheme: token`")),
        }
    }
}

/// Reads an auth mapping from its manifest form.
impl<'de> Deserialize<'de> for Auth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::section(deserializer)
    }
}

fn de_token_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    strict::optional_text(d, "an environment variable name", names::env_name)
}

/// The scheme of an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Bearer <token>`.
    Bearer,
    /// `token <token>` (GitHub's classic form).
    Token,
}

impl AuthScheme {
    /// The word as written in manifests and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::Bearer => "Bearer",
            AuthScheme::Token => "token",
        }
    }

    fn parse(text: &str) -> Result<AuthScheme, Invalid> {
        match text {
            "Bearer" => Ok(AuthScheme::Bearer),
            "token" => Ok(AuthScheme::Token),
            _ => Err(Invalid::new(format!("`{text}` is not an auth scheme"))
                .hint("use `Bearer` or `token` (spelt exactly so)")),
        }
    }
}

impl fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serializes as `Bearer` or `token`.
impl Serialize for AuthScheme {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Reads `Bearer` or `token`.
impl<'de> Deserialize<'de> for AuthScheme {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::text(deserializer, "`Bearer` or `token`", AuthScheme::parse)
    }
}
