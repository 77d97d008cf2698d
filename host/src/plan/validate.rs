//! Validation of what a plugin returns, and its conversion into the plan model.
//!
//! Nothing a plugin returns is used before it passes here. Every rule failure is an error naming the
//! plugin and the exact place in its output (`sidecars[0].files[1].path`).

use std::collections::BTreeSet;

use super::grants::{self as grant, GrantTable, GrantUse, SectionStrings};
use crate::names;
use crate::plugin::bindings::exports::bottle::plugin::sidecar as wit;
use crate::plugin::runtime::{PluginError, PluginErrorKind};

use super::model::*;

/// Bounds on one plugin's output.
pub const MAX_FILE_BYTES_PER_PLUGIN: usize = 8 << 20;
/// Sidecars one plugin may add.
pub const MAX_SIDECARS_PER_PLUGIN: usize = 16;
/// Entries in any one list of a contribution.
pub const MAX_LIST_LEN: usize = 1024;
/// Length of any one string (not file contents).
pub const MAX_STRING_LEN: usize = 16 << 10;

/// The CA names the host mints.
pub const CA_NAMES: &[&str] = &["agent", "firewall"];

/// Paths in the agent that the host writes itself and plugins may not touch.
pub const AGENT_HOST_OWNED: &[&str] = &[
    "/home/agent/.bottle",
    "/usr/local/share/ca-certificates",
    "/etc/ssl",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/sudoers",
];

/// Paths in every sidecar that the host writes itself.
pub const SIDECAR_HOST_OWNED: &[&str] = &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// The sidecar property asking for a port to be published on the host.
pub const PUBLISH_PORT: &str = "publish-port";

/// Agent variables the host sets; plugins may not.
pub const AGENT_RESERVED_ENV: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];

/// What a validator needs to know about the plugin and the bottle.
pub struct Checker<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// Whether it is built into bottle (only built-ins get the default grants).
    pub builtin: bool,
    /// Declared secret names.
    pub secrets: &'a BTreeSet<String>,
    /// The string values of the plugin's configuration (what its sections name).
    pub config_strings: &'a SectionStrings,
    /// Running total of file bytes.
    pub file_bytes: usize,
    /// The bottle's grants.
    pub grants: &'a GrantTable,
    /// Requests granted so far, for the plan.
    pub granted: std::cell::RefCell<Vec<GrantUse>>,
}

type Checked<T> = Result<T, PluginError>;

impl Checker<'_> {
    /// Grant the plugin's request for `value` of `kind`, or refuse it with the lines to add.
    fn request(&self, at: &str, kind: &str, value: &str, what: &str) -> Checked<()> {
        match self
            .grants
            .source(self.plugin, self.builtin, kind, value, self.config_strings)
        {
            Some(source) => {
                let used = GrantUse {
                    plugin: self.plugin.to_owned(),
                    kind: kind.to_owned(),
                    value: value.to_owned(),
                    source,
                };
                let mut granted = self.granted.borrow_mut();
                if !granted.contains(&used) {
                    granted.push(used);
                }
                Ok(())
            }
            None => Err(self.fail(
                at,
                self.grants
                    .refusal(self.plugin, kind, value, &format!("it {what}")),
            )),
        }
    }

    fn fail(&self, at: &str, message: impl std::fmt::Display) -> PluginError {
        PluginError::new(
            self.plugin,
            // Messages quote what the plugin sent; keep only the newlines of our own layout.
            PluginErrorKind::Invalid(format!(
                "{at}: {}",
                bottle_supervise_queue::text::printable(&message.to_string(), &['\n'])
            )),
        )
    }

    fn string(&self, at: &str, s: &str) -> Checked<()> {
        if s.len() > MAX_STRING_LEN {
            return Err(self.fail(at, format!("longer than {MAX_STRING_LEN} bytes")));
        }
        if s.contains('\0') {
            return Err(self.fail(at, "contains a NUL byte"));
        }
        Ok(())
    }

    fn list<T>(&self, at: &str, list: &[T]) -> Checked<()> {
        if list.len() > MAX_LIST_LEN {
            return Err(self.fail(at, format!("more than {MAX_LIST_LEN} entries")));
        }
        Ok(())
    }

    fn slug(&self, at: &str, s: &str) -> Checked<()> {
        if names::is_slug(s) {
            Ok(())
        } else {
            Err(self.fail(at, format!("`{s}` is not of the form [a-z][a-z0-9-]*")))
        }
    }

    /// An absolute container path with no `..`, no empty or `.` segment, not under `owned`.
    pub fn container_path(&self, at: &str, path: &str, owned: &[&str]) -> Checked<()> {
        self.string(at, path)?;
        if !path.starts_with('/') || path.len() < 2 {
            return Err(self.fail(at, format!("`{path}` is not an absolute path")));
        }
        if path[1..]
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(self.fail(
                at,
                format!("`{path}` has an empty, `.` or `..` segment; give a plain absolute path"),
            ));
        }
        if let Some(root) = owned.iter().find(|root| is_under(path, root)) {
            return Err(self.fail(
                at,
                format!("`{path}` is under `{root}`, which the host owns"),
            ));
        }
        Ok(())
    }

    /// A variable name and value: name `[A-Za-z_][A-Za-z0-9_]*`, no NUL or newline, declared secret.
    pub fn env(&self, at: &str, var: &wit::EnvVar) -> Checked<EnvEntry> {
        if !names::is_env_name(&var.name) {
            return Err(self.fail(at, format!("`{}` is not a valid variable name", var.name)));
        }
        let value = match &var.value {
            wit::EnvValue::Literal(v) => {
                self.string(at, v)?;
                if v.contains(['\n', '\r']) {
                    return Err(self.fail(
                        at,
                        format!("the value of `{}` contains a newline", var.name),
                    ));
                }
                EnvSource::Literal(v.clone())
            }
            wit::EnvValue::Secret(name) => {
                if !self.secrets.contains(name) {
                    return Err(self.fail(
                        at,
                        format!(
                            "`{}` refers to secret `{name}`, which the bottle does not declare",
                            var.name
                        ),
                    ));
                }
                self.request(at, "secret", name, &format!("asks for secret `{name}`"))?;
                EnvSource::Secret(name.clone())
            }
        };
        Ok(EnvEntry {
            name: var.name.clone(),
            value,
        })
    }

    /// A file record.
    pub fn file(&mut self, at: &str, file: &wit::File, owned: &[&str]) -> Checked<FilePlan> {
        self.container_path(&format!("{at}.path"), &file.path, owned)?;
        self.file_bytes += file.contents.len();
        if self.file_bytes > MAX_FILE_BYTES_PER_PLUGIN {
            return Err(self.fail(
                at,
                format!(
                    "files add up to more than {} MiB",
                    MAX_FILE_BYTES_PER_PLUGIN >> 20
                ),
            ));
        }
        if file.mode > 0o7777 {
            return Err(self.fail(at, format!("mode {:o} is not a permission mode", file.mode)));
        }
        Ok(FilePlan {
            path: file.path.clone(),
            mode: file.mode,
            contents: file.contents.clone(),
        })
    }

    /// A whole sidecar spec.
    pub fn sidecar(
        &mut self,
        at: &str,
        spec: &wit::SidecarSpec,
    ) -> Checked<(SidecarPlan, Vec<wit::OrderRef>)> {
        self.slug(&format!("{at}.name"), &spec.name)?;
        let at = format!("sidecars[{}]", spec.name);
        let image = match &spec.image {
            wit::Image::Reference(r) if !r.is_empty() && !r.contains(char::is_whitespace) => {
                self.string(&at, r)?;
                ImagePlan::Reference(r.clone())
            }
            wit::Image::Context(c) => {
                self.slug(&format!("{at}.image"), c)?;
                ImagePlan::Context(c.clone())
            }
            wit::Image::Reference(r) => {
                return Err(self.fail(&at, format!("image `{r}` is not a reference")));
            }
        };
        self.list(&format!("{at}.command"), &spec.command)?;
        self.list(&format!("{at}.aliases"), &spec.aliases)?;
        self.list(&format!("{at}.env"), &spec.env)?;
        self.list(&format!("{at}.files"), &spec.files)?;
        self.list(&format!("{at}.host_files"), &spec.host_files)?;
        self.list(&format!("{at}.mounts"), &spec.mounts)?;
        for arg in &spec.command {
            self.string(&format!("{at}.command"), arg)?;
        }
        if spec.networks.is_empty() {
            return Err(self.fail(&at, "names no network; give `internal`, `egress` or both"));
        }
        for alias in &spec.aliases {
            self.slug(&format!("{at}.aliases"), alias)?;
        }
        let cas = self.cas(&at, &spec.cas)?;
        let mut owned: Vec<&str> = SIDECAR_HOST_OWNED.to_vec();
        owned.extend(cas.iter().map(|c| c.cert_path.as_str()));
        owned.extend(cas.iter().filter_map(|c| c.key_path.as_deref()));
        let env = spec
            .env
            .iter()
            .map(|v| self.env(&format!("{at}.env"), v))
            .collect::<Checked<Vec<_>>>()?;
        let files = spec
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| self.file(&format!("{at}.files[{i}]"), f, &owned))
            .collect::<Checked<Vec<_>>>()?;
        let host_files = spec
            .host_files
            .iter()
            .map(|h| self.host_file(&format!("{at}.host_files"), h, &owned))
            .collect::<Checked<Vec<_>>>()?;
        let mounts = spec
            .mounts
            .iter()
            .map(|m| self.mount(&format!("{at}.mounts"), m))
            .collect::<Checked<Vec<_>>>()?;
        let extra_hosts = spec
            .extra_hosts
            .iter()
            .map(|h| self.host_entry(&format!("{at}.extra_hosts"), h))
            .collect::<Checked<Vec<_>>>()?;
        let roles = spec
            .roles
            .iter()
            .map(|r| {
                self.slug(&format!("{at}.roles"), &r.role)
                    .map(|()| (r.role.clone(), r.priority))
            })
            .collect::<Checked<Vec<_>>>()?;
        self.list(&format!("{at}.after"), &spec.after)?;
        let health = spec
            .health
            .as_ref()
            .map(|h| self.health(&at, h))
            .transpose()?;
        let published_ports = self.published_ports(&at, spec)?;
        if spec.networks.contains(&wit::Network::Egress) {
            self.request(
                &at,
                "network",
                "egress",
                &format!(
                    "puts sidecar `{}` on the `egress` network, outside the bottle",
                    spec.name
                ),
            )?;
        }
        Ok((
            SidecarPlan {
                name: spec.name.clone(),
                plugin: self.plugin.to_owned(),
                image,
                command: spec.command.clone(),
                networks: networks(&spec.networks),
                aliases: spec.aliases.clone(),
                port: spec.port,
                health,
                env,
                files,
                host_files,
                mounts,
                cas,
                extra_hosts,
                roles,
                after: Vec::new(),
                published_ports,
            },
            spec.after.clone(),
        ))
    }

    fn cas(&self, at: &str, cas: &[wit::CaInstall]) -> Checked<Vec<CaInstallPlan>> {
        cas.iter()
            .map(|ca| {
                if !CA_NAMES.contains(&ca.ca.as_str()) {
                    return Err(self.fail(
                        at,
                        format!("unknown CA `{}`; the host mints {CA_NAMES:?}", ca.ca),
                    ));
                }
                self.container_path(&format!("{at}.cas"), &ca.cert_path, SIDECAR_HOST_OWNED)?;
                self.request(
                    &format!("{at}.cas"),
                    "ca",
                    &ca.ca,
                    &format!("asks for the `{}` CA's certificate in its sidecar", ca.ca),
                )?;
                if let Some(key) = &ca.key_path {
                    self.container_path(&format!("{at}.cas"), key, SIDECAR_HOST_OWNED)?;
                    self.ca_key(&format!("{at}.cas"), &ca.ca)?;
                }
                Ok(CaInstallPlan {
                    ca: ca.ca.clone(),
                    cert_path: ca.cert_path.clone(),
                    key_path: ca.key_path.clone(),
                })
            })
            .collect()
    }

    /// A CA's private key: only the built-ins of the default table hold one; no grant gives it.
    fn ca_key(&self, at: &str, ca: &str) -> Checked<()> {
        if self
            .grants
            .source(
                self.plugin,
                self.builtin,
                grant::CA_KEY,
                ca,
                self.config_strings,
            )
            .is_none()
        {
            return Err(self.fail(
                at,
                format!(
                    "it asks for the `{ca}` CA's private key, which no plugin but bottle's \
                     built-in egress proxy and pipelock may hold, and no grant can give; install \
                     the certificate only (no key path)"
                ),
            ));
        }
        self.request(at, grant::CA_KEY, ca, "")
    }

    fn host_file(&self, at: &str, file: &wit::HostFile, owned: &[&str]) -> Checked<HostFilePlan> {
        self.container_path(at, &file.path, owned)?;
        self.request(
            at,
            "host-path",
            &file.host_path,
            &format!(
                "asks for host file `{}` to be copied into its sidecar",
                file.host_path
            ),
        )?;
        Ok(HostFilePlan {
            host_path: expand_home(&file.host_path),
            path: file.path.clone(),
            mode: file.mode & 0o7777,
        })
    }

    fn mount(&self, at: &str, mount: &wit::Mount) -> Checked<MountPlan> {
        let wit::MountSource::State(dir) = &mount.source;
        self.slug(at, dir)?;
        self.container_path(at, &mount.target, SIDECAR_HOST_OWNED)?;
        let state_dir = if grant::HOST_STATE.contains(&dir.as_str()) {
            self.request(
                at,
                "state",
                dir,
                &format!("asks to mount the host's `{dir}` state directory"),
            )?;
            dir.clone()
        } else {
            grant::plugin_state_dir(self.plugin, dir)
        };
        Ok(MountPlan {
            state_dir,
            target: mount.target.clone(),
            read_only: mount.read_only,
        })
    }

    fn host_entry(&self, at: &str, entry: &wit::HostEntry) -> Checked<(String, String)> {
        if !names::is_dns_name(&entry.host) {
            return Err(self.fail(at, format!("`{}` is not a host name", entry.host)));
        }
        let ip: std::net::IpAddr = entry
            .ip
            .parse()
            .map_err(|_| self.fail(at, format!("`{}` is not an IP address", entry.ip)))?;
        Ok((entry.host.to_ascii_lowercase(), ip.to_string()))
    }

    fn health(&self, at: &str, health: &wit::HealthCheck) -> Checked<HealthPlan> {
        let probe = match &health.probe {
            wit::Probe::Tcp(port) => ProbePlan::Tcp(*port),
            wit::Probe::Http(http) => {
                if !http.path.starts_with('/') {
                    return Err(
                        self.fail(at, format!("health path `{}` must start with /", http.path))
                    );
                }
                self.string(at, &http.path)?;
                ProbePlan::Http {
                    port: http.port,
                    path: http.path.clone(),
                }
            }
            wit::Probe::Exec(cmd) if !cmd.is_empty() => ProbePlan::Exec(cmd.clone()),
            wit::Probe::Exec(_) => {
                return Err(self.fail(at, "an exec health check needs a command"));
            }
        };
        if health.retries == 0 || health.interval_ms == 0 {
            return Err(self.fail(
                at,
                "a health check needs retries and an interval above zero",
            ));
        }
        Ok(HealthPlan {
            probe,
            interval_ms: health.interval_ms,
            timeout_ms: health.timeout_ms,
            retries: health.retries,
        })
    }

    /// Ports the sidecar asks to publish on the host's loopback (`publish-port` properties);
    /// each needs a grant.
    fn published_ports(&self, at: &str, spec: &wit::SidecarSpec) -> Checked<Vec<u16>> {
        let mut ports = Vec::new();
        let requests = spec.properties.iter().filter(|p| p.key == PUBLISH_PORT);
        if requests.clone().next().is_some() && !spec.networks.contains(&wit::Network::Egress) {
            return Err(self.fail(
                at,
                "publishes a port but is not on the `egress` network; Docker publishes ports \
                 only from a network with a route to the host",
            ));
        }
        for property in requests {
            let port: u16 = property
                .value
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    self.fail(
                        at,
                        format!("publish-port `{}` is not a port number", property.value),
                    )
                })?;
            self.request(
                at,
                "publish-port",
                &property.value,
                &format!(
                    "asks to publish port {port} of sidecar `{}` on the host",
                    spec.name
                ),
            )?;
            ports.push(port);
        }
        Ok(ports)
    }

    /// An egress need.
    pub fn egress(&self, at: &str, need: &wit::EgressNeed) -> Checked<EgressHost> {
        let host = need.host.to_ascii_lowercase();
        if !names::is_host_pattern(&host) {
            return Err(self.fail(
                at,
                format!(
                    "`{}` is not a host name or host pattern (`*` stands for one whole label, \
                     as in `*.example.com`)",
                    need.host
                ),
            ));
        }
        self.string(at, &need.reason)?;
        self.request(
            at,
            "egress",
            &host,
            &format!(
                "asks to reach `{host}` ({})",
                bottle_supervise_queue::text::one_line(&need.reason)
            ),
        )?;
        // Pipelock lets credentialed hosts through uninspected too, so either flag is a request
        // to skip inspection, which the allowlist alone does not grant.
        if need.passthrough || need.credentialed {
            self.request(
                at,
                "passthrough",
                &host,
                &format!("asks for `{host}` to pass uninspected (no TLS interception)"),
            )?;
        }
        Ok(EgressHost {
            host,
            reasons: vec![format!("{}: {}", self.plugin, need.reason)],
            credentialed: need.credentialed,
            passthrough: need.passthrough,
        })
    }

    /// The agent part of a contribution, checked; returns (env, files, no_proxy, provision).
    pub fn agent(&mut self, agent: &wit::AgentContribution) -> Checked<AgentAdditions> {
        self.list("agent.env", &agent.env)?;
        self.list("agent.files", &agent.files)?;
        self.list("agent.no_proxy", &agent.no_proxy)?;
        self.list("agent.provision", &agent.provision)?;
        let env = agent
            .env
            .iter()
            .map(|v| self.agent_env("agent.env", v))
            .collect::<Checked<Vec<_>>>()?;
        let files = agent
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| self.agent_file(&format!("agent.files[{i}]"), f))
            .collect::<Checked<Vec<_>>>()?;
        for host in &agent.no_proxy {
            if !names::is_no_proxy_entry(host) {
                return Err(self.fail("agent.no_proxy", format!("`{host}` is not a host name")));
            }
        }
        let provision = agent
            .provision
            .iter()
            .map(|step| {
                self.string("agent.provision", &step.name)?;
                if step.command.is_empty() {
                    return Err(self.fail(
                        "agent.provision",
                        format!("step `{}` has no command", step.name),
                    ));
                }
                self.request(
                    "agent.provision",
                    "provision",
                    &step.name,
                    &format!("asks to run step `{}` in the agent", step.name),
                )?;
                Ok(ProvisionPlan {
                    name: step.name.clone(),
                    plugin: self.plugin.to_owned(),
                    command: step.command.clone(),
                })
            })
            .collect::<Checked<Vec<_>>>()?;
        Ok(AgentAdditions {
            env,
            files,
            no_proxy: agent.no_proxy.clone(),
            provision,
        })
    }

    /// An agent variable: a valid one that the host does not reserve; one that routes traffic or
    /// carries credentials only when granted.
    pub fn agent_env(&self, at: &str, var: &wit::EnvVar) -> Checked<EnvEntry> {
        if AGENT_RESERVED_ENV.contains(&var.name.as_str()) {
            return Err(self.fail(
                at,
                format!("`{}` is set by the host; plugins cannot set it", var.name),
            ));
        }
        if grant::agent_env_is_sensitive(&var.name) {
            self.request(
                at,
                "agent-env",
                &var.name,
                &format!(
                    "sets the agent variable `{}`, which routes traffic, carries credentials or \
                     changes what runs",
                    var.name
                ),
            )?;
        }
        self.env(at, var)
    }

    /// An agent file: anywhere the host does not own; outside the plugin's own area
    /// ([`grant::plugin_agent_area`]) only when granted.
    pub fn agent_file(&mut self, at: &str, file: &wit::File) -> Checked<FilePlan> {
        let checked = self.file(at, file, AGENT_HOST_OWNED)?;
        if !is_under(&file.path, &grant::plugin_agent_area(self.plugin)) {
            self.request(
                at,
                "agent-file",
                &file.path,
                &format!(
                    "writes `{}` in the agent, outside its own area `{}/`",
                    file.path,
                    grant::plugin_agent_area(self.plugin)
                ),
            )?;
        }
        Ok(checked)
    }
}

/// What a plugin adds to the agent.
#[derive(Debug, Default)]
pub struct AgentAdditions {
    /// Environment.
    pub env: Vec<EnvEntry>,
    /// Files.
    pub files: Vec<FilePlan>,
    /// NO_PROXY hosts.
    pub no_proxy: Vec<String>,
    /// Provisioning steps.
    pub provision: Vec<ProvisionPlan>,
}

fn networks(list: &[wit::Network]) -> Vec<NetworkKind> {
    let set: BTreeSet<NetworkKind> = list
        .iter()
        .map(|n| match n {
            wit::Network::Internal => NetworkKind::Internal,
            wit::Network::Egress => NetworkKind::Egress,
        })
        .collect();
    set.into_iter().collect()
}

/// Whether `path` is `root` or below it.
pub fn is_under(path: &str, root: &str) -> bool {
    path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Expand a leading `~/` against `$HOME`.
pub fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{}/{rest}", home.trim_end_matches('/')),
        _ => path.to_owned(),
    }
}
