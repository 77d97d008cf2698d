//! A configuration compiled into the policy the proxy enforces.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bottle_egress_config::{Cidr, EgressConfig, ValidationError, upstream_proxy_authority};
use bottle_secret_scan::ExactSecret;
use http::HeaderValue;

use crate::dlp::Dlp;
use crate::host::{HostSet, canonical_host};
use crate::path::NormalPath;
use crate::ssrf::SsrfGuard;
use crate::tls::{TlsError, TlsState};
use crate::token_guard::RouteToken;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration `{path}`: {source}")]
    Read {
        /// Its path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML for the format.
    #[error("cannot parse the configuration `{path}`: {message}")]
    Parse {
        /// Its path.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// Fields have invalid values.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A route's token variable is not set.
    #[error("route `{host}`: environment variable `{env}` (its token) is not set or empty")]
    MissingToken {
        /// The route.
        host: String,
        /// The variable.
        env: String,
    },
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The DLP could not be built.
    #[error("DLP: {0}")]
    Dlp(#[from] crate::dlp::DlpError),
}

/// Reads and validates the configuration file at `path`.
pub fn load_config(path: &Path) -> Result<EgressConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let config: EgressConfig = yaml_serde::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    config.validate()?;
    Ok(config)
}

/// A credential route, compiled.
#[derive(Debug)]
pub struct RoutePolicy {
    /// Its host (canonical).
    pub host: String,
    /// Allowed path prefixes; empty allows every path.
    pub path_allowlist: Vec<NormalPath>,
    /// Methods allowed (the route's own, or reads only when it names none).
    pub methods: Vec<String>,
    /// The `Authorization` value to inject (marked sensitive).
    pub authorization: Option<HeaderValue>,
    /// The injected token, to cut out of what the host answers.
    pub token: Option<RouteToken>,
}

/// Looks up environment variables (the process environment, or a map in tests).
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Everything one configuration decides.
#[derive(Debug)]
pub struct Policy {
    /// Where to listen (only read at start).
    pub listen: SocketAddr,
    /// Hosts that may be reached.
    pub allow: HostSet,
    /// Hosts tunnelled without interception.
    pub passthrough: HostSet,
    /// Credential routes by host.
    pub routes: HashMap<String, RoutePolicy>,
    /// The SSRF guard.
    pub ssrf: SsrfGuard,
    /// The DLP.
    pub dlp: Arc<Dlp>,
    /// The upstream proxy (`host`, `port`), if any.
    pub upstream_proxy: Option<(String, u16)>,
    /// TLS material.
    pub tls: Arc<TlsState>,
    /// Warnings worth logging when this policy takes effect.
    pub warnings: Vec<String>,
    /// Learn mode: hosts off the allowlist are let through and audited as learned.
    pub learn: bool,
}

/// Whether a host may be reached, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Allowed by the allowlist, a route or passthrough.
    Listed,
    /// Off the allowlist, let through because the proxy is learning.
    Learned,
    /// Refused.
    Refused,
}

impl Policy {
    /// Compiles `config`, reading the TLS files and the secrets from `env`.
    pub fn compile(config: &EgressConfig, env: &EnvLookup) -> Result<Policy, ConfigError> {
        config.validate()?;
        let mut warnings = Vec::new();
        let mut routes = HashMap::new();
        let mut secrets = Vec::new();
        for route in &config.routes {
            let host =
                canonical_host(&route.host).unwrap_or_else(|| route.host.to_ascii_lowercase());
            let path_allowlist = route
                .path_allowlist
                .iter()
                .map(|p| {
                    NormalPath::parse(p).map_err(|e| {
                        ConfigError::Invalid(ValidationError {
                            problems: vec![bottle_egress_config::Problem {
                                field: format!("routes[{host}].path_allowlist"),
                                message: format!("`{p}`: {e}"),
                            }],
                        })
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut route_token = None;
            let authorization = match &route.auth {
                None => None,
                Some(auth) => {
                    let token =
                        env(&auth.token_env)
                            .filter(|t| !t.is_empty())
                            .ok_or_else(|| ConfigError::MissingToken {
                                host: host.clone(),
                                env: auth.token_env.clone(),
                            })?;
                    let mut value =
                        HeaderValue::from_str(&format!("{} {}", auth.scheme.as_str(), token))
                            .map_err(|_| ConfigError::MissingToken {
                                host: host.clone(),
                                env: format!(
                                    "{} (holds characters not allowed in a header)",
                                    auth.token_env
                                ),
                            })?;
                    value.set_sensitive(true);
                    route_token = Some(RouteToken::new(&token));
                    secrets.push((
                        ExactSecret::new(auth.token_env.clone(), token),
                        Some(host.clone()),
                    ));
                    Some(value)
                }
            };
            routes.insert(
                host.clone(),
                RoutePolicy {
                    host,
                    path_allowlist,
                    methods: route
                        .allowed_methods()
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                    authorization,
                    token: route_token,
                },
            );
        }
        for name in &config.dlp.secret_env {
            match env(name) {
                Some(value) if !value.is_empty() => {
                    secrets.push((ExactSecret::new(name.clone(), value), None))
                }
                _ => warnings.push(format!(
                    "dlp.secret_env: `{name}` is not set; nothing to protect"
                )),
            }
        }
        let dlp = Arc::new(Dlp::new(secrets, config.dlp.patterns)?);
        let allow_cidrs = config
            .ssrf
            .allow_cidrs
            .iter()
            .filter_map(|c| c.parse::<Cidr>().ok())
            .collect();
        let upstream_proxy = config
            .upstream_proxy
            .as_deref()
            .and_then(upstream_proxy_authority)
            .map(|(h, p)| (h.to_string(), p));
        if config.learn {
            warnings.push(
                "LEARN MODE: hosts off the allowlist are allowed and recorded, not refused".into(),
            );
        }
        if !config.firewall && upstream_proxy.is_none() {
            warnings.push(
                "firewall is false but no upstream_proxy is set: this proxy is the only filter"
                    .into(),
            );
        }
        Ok(Policy {
            listen: config.listen.parse().map_err(|_| {
                ConfigError::Invalid(ValidationError {
                    problems: vec![bottle_egress_config::Problem {
                        field: "listen".into(),
                        message: "not an address".into(),
                    }],
                })
            })?,
            allow: HostSet::new(&config.allow),
            passthrough: HostSet::new(&config.passthrough),
            routes,
            ssrf: SsrfGuard::new(allow_cidrs),
            dlp,
            upstream_proxy,
            tls: Arc::new(TlsState::load(&config.tls)?),
            warnings,
            learn: config.learn,
        })
    }

    /// Whether `host` (canonical) may be reached: allowed, a route, or passthrough.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.routes.contains_key(host) || self.allow.matches(host) || self.passthrough.matches(host)
    }

    /// Whether `host` (canonical) may be reached. Learn mode widens only this answer: a learned
    /// host gets no route (routes are looked up by their own host alone), so no token.
    pub fn admission(&self, host: &str) -> Admission {
        if self.host_allowed(host) {
            Admission::Listed
        } else if self.learn {
            Admission::Learned
        } else {
            Admission::Refused
        }
    }

    /// What the audit says about `host` in learn mode; nothing when not learning.
    pub fn learn_tag(&self, host: &str) -> Option<crate::audit::Learn> {
        match (self.learn, self.admission(host)) {
            (false, _) | (_, Admission::Refused) => None,
            (true, Admission::Listed) => Some(crate::audit::Learn::Listed),
            (true, Admission::Learned) => Some(crate::audit::Learn::Learned),
        }
    }

    /// The route for `host`, if any.
    pub fn route(&self, host: &str) -> Option<&RoutePolicy> {
        self.routes.get(host)
    }
}
