//! Checks of a configuration's syntax, shared by the proxy (at start and on reload) and anyone
//! who renders the file. Pure: no I/O, no environment.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use bottle_host_pattern::{HostName, HostPattern};

use crate::{EgressConfig, FORMAT_VERSION};

/// One problem in a configuration, located by its field path (such as `routes[0].host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The problems, in field order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid egress proxy configuration:")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// An IP network such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits are ignored).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the network. IPv4-mapped IPv6 addresses count as their IPv4 form.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// Whether `pattern` is a host pattern the proxy accepts (see `bottle-host-pattern`: a host, an
/// IP literal, or a name whose `*` labels each match one label).
pub fn is_host_pattern(pattern: &str) -> bool {
    HostPattern::parse(pattern).is_ok()
}

/// Whether `host` is a host name or IP literal (no wildcard).
pub fn is_host(host: &str) -> bool {
    HostName::parse(host).is_ok()
}

/// Whether `name` can be an environment variable name.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The `host:port` of an `upstream_proxy` value (`host:port` or `http://host:port[/]`).
pub fn upstream_proxy_authority(value: &str) -> Option<(&str, u16)> {
    let rest = value.strip_prefix("http://").unwrap_or(value);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (is_host(host) && !rest.contains('/') && !rest.contains('@')).then_some((host, port))
}

/// What is wrong with `method` as a route method, if anything.
pub fn method_problem(method: &str) -> Option<String> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Some(format!(
            "`{method}` is not an HTTP method (letters only, such as POST)"
        ));
    }
    let upper = method.to_ascii_uppercase();
    if crate::NEVER_METHODS.contains(&upper.as_str()) {
        return Some(format!(
            "`{method}` is never allowed on a route (TRACE echoes the injected token, CONNECT skips the route's rules)"
        ));
    }
    (method != upper).then(|| format!("`{method}` must be upper case: `{upper}`"))
}

impl EgressConfig {
    /// Checks everything that can be checked without I/O; returns every problem at once.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = Vec::new();
        let mut problem =
            |field: String, message: String| problems.push(Problem { field, message });
        if self.version != FORMAT_VERSION {
            problem(
                "version".into(),
                format!(
                    "unsupported version {} (this proxy reads {FORMAT_VERSION})",
                    self.version
                ),
            );
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            problem(
                "listen".into(),
                format!("`{}` is not an address such as 0.0.0.0:9099", self.listen),
            );
        }
        for (field, list) in [("allow", &self.allow), ("passthrough", &self.passthrough)] {
            for (i, pattern) in list.iter().enumerate() {
                if let Err(e) = HostPattern::parse(pattern) {
                    problem(format!("{field}[{i}]"), e.to_string());
                }
            }
        }
        if let Some(proxy) = &self.upstream_proxy
            && upstream_proxy_authority(proxy).is_none()
        {
            problem(
                "upstream_proxy".into(),
                format!("`{proxy}` is not host:port or http://host:port"),
            );
        }
        if self.learn && (!self.firewall || self.upstream_proxy.is_some()) {
            problem(
                "learn".into(),
                "learn mode needs this proxy to be the bottle's firewall (no upstream proxy): a \
                 firewall behind it would still refuse what it learns"
                    .into(),
            );
        }
        if self.tls.ca_cert.is_empty() {
            problem(
                "tls.ca_cert".into(),
                "must name the CA certificate file".into(),
            );
        }
        if self.tls.ca_key.is_empty() {
            problem("tls.ca_key".into(), "must name the CA key file".into());
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !is_host(&route.host) {
                problem(
                    format!("routes[{i}].host"),
                    format!("`{}` is not a host name", route.host),
                );
            }
            if self.routes[..i]
                .iter()
                .any(|r| r.host.eq_ignore_ascii_case(&route.host))
            {
                problem(
                    format!("routes[{i}].host"),
                    format!("`{}` has more than one route", route.host),
                );
            }
            for (j, prefix) in route.path_allowlist.iter().enumerate() {
                if !prefix.starts_with('/') {
                    problem(
                        format!("routes[{i}].path_allowlist[{j}]"),
                        format!("`{prefix}` must start with `/`"),
                    );
                }
            }
            for (j, method) in route.methods.iter().enumerate() {
                if let Some(message) = method_problem(method) {
                    problem(format!("routes[{i}].methods[{j}]"), message);
                }
            }
            if let Some(auth) = &route.auth
                && !is_env_name(&auth.token_env)
            {
                problem(
                    format!("routes[{i}].auth.token_env"),
                    format!("`{}` is not an environment variable name", auth.token_env),
                );
            }
        }
        for (i, cidr) in self.ssrf.allow_cidrs.iter().enumerate() {
            if let Err(e) = cidr.parse::<Cidr>() {
                problem(format!("ssrf.allow_cidrs[{i}]"), e);
            }
        }
        for (i, name) in self.dlp.secret_env.iter().enumerate() {
            if !is_env_name(name) {
                problem(
                    format!("dlp.secret_env[{i}]"),
                    format!("`{name}` is not an environment variable name"),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn good() -> EgressConfig {
        EgressConfig {
            version: FORMAT_VERSION,
            listen: "0.0.0.0:9099".into(),
            allow: vec!["*.github.com".into(), "10.1.2.3".into(), "[::1]".into()],
            firewall: true,
            upstream_proxy: Some("http://pipelock:8888".into()),
            tls: TlsConfig {
                ca_cert: "/ca.pem".into(),
                ca_key: "/ca.key".into(),
                upstream_roots: vec![],
            },
            routes: vec![Route {
                host: "api.github.com".into(),
                path_allowlist: vec!["/repos/".into()],
                auth: Some(RouteAuth {
                    scheme: AuthScheme::Bearer,
                    token_env: "GH_TOKEN".into(),
                }),
                methods: vec!["GET".into(), "POST".into()],
            }],
            passthrough: vec![],
            ssrf: SsrfConfig {
                allow_cidrs: vec!["127.0.0.0/8".into(), "fd00::/8".into()],
            },
            dlp: DlpConfig::default(),
            learn: false,
        }
    }

    #[test]
    fn learn_mode_only_in_the_firewall() {
        let mut config = good();
        config.learn = true;
        let e = config.validate().unwrap_err();
        assert_eq!(e.problems[0].field, "learn", "{e}");
        config.upstream_proxy = None;
        config.validate().unwrap();
        config.firewall = false;
        assert!(config.validate().is_err());
        // Off by default, and not written when off: files of older hosts read the same.
        let text = yaml_serde::to_string(&good()).unwrap();
        assert!(!text.contains("learn"), "{text}");
    }

    #[test]
    fn good_config_passes() {
        good().validate().unwrap();
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut c = good();
        c.version = 9;
        c.listen = "nowhere".into();
        c.allow.push("bad host/".into());
        c.upstream_proxy = Some("http://user@proxy:1/x".into());
        c.routes[0].path_allowlist.push("repos".into());
        c.routes.push(c.routes[0].clone());
        c.routes[1].methods = vec!["post".into(), "TRACE".into(), "GET /x".into()];
        c.ssrf.allow_cidrs.push("10.0.0.0/33".into());
        c.dlp.secret_env.push("1BAD".into());
        let err = c.validate().unwrap_err();
        let fields: Vec<_> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "version",
                "listen",
                "allow[3]",
                "upstream_proxy",
                "routes[0].path_allowlist[1]",
                "routes[1].host",
                "routes[1].path_allowlist[1]",
                "routes[1].methods[0]",
                "routes[1].methods[1]",
                "routes[1].methods[2]",
                "ssrf.allow_cidrs[2]",
                "dlp.secret_env[0]"
            ]
        );
        assert!(err.to_string().contains("unsupported version 9"));
        let text = err.to_string();
        assert!(text.contains("`post` must be upper case: `POST`"), "{text}");
        assert!(text.contains("`TRACE` is never allowed"), "{text}");
    }

    #[test]
    fn allow_entries_follow_the_one_label_grammar() {
        let mut c = good();
        c.allow = vec!["registry.*.org".into(), "*.github.com".into()];
        c.validate().unwrap();
        // Each of these was accepted by the old any-run-of-characters glob.
        for bad in ["*", "api-*.github.com", "*.*", "**.github.com"] {
            let mut c = good();
            c.allow.push(bad.into());
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("allow[3]"), "{bad}: {err}");
        }
        let mut c = good();
        c.allow.push("api-*.github.com".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("one whole label"), "{err}");
    }

    #[test]
    fn cidr_contains() {
        let net: Cidr = "100.64.0.0/10".parse().unwrap();
        assert!(net.contains("100.127.255.255".parse().unwrap()));
        assert!(!net.contains("100.128.0.0".parse().unwrap()));
        assert!(net.contains("::ffff:100.64.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "fc00::/7".parse().unwrap();
        assert!(v6.contains("fd00:ec2::254".parse().unwrap()));
        assert!(!v6.contains("2001:db8::1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(one.prefix, 32);
    }

    #[test]
    fn upstream_proxy_forms() {
        assert_eq!(
            upstream_proxy_authority("pipelock:8888"),
            Some(("pipelock", 8888))
        );
        assert_eq!(
            upstream_proxy_authority("http://10.0.0.2:3128/"),
            Some(("10.0.0.2", 3128))
        );
        assert_eq!(
            upstream_proxy_authority("http://[::1]:3128"),
            Some(("::1", 3128))
        );
        assert_eq!(upstream_proxy_authority("https://x:1"), None);
        assert_eq!(upstream_proxy_authority("x"), None);
    }
}
