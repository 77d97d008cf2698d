//! Which checks a bottle gets, derived from its plan and from what the engine made of it — never
//! a list per sidecar, so a third-party plugin's sidecar is checked like the built-ins.

use bottle_probe::fingerprint::{self, Needle};
use bottle_probe::spec::{Check, Op, Outcome, Phase};
use serde::{Deserialize, Serialize};

use crate::plan::model::{NetworkKind, Plan, ProbePlan, SidecarPlan};

/// Public addresses the agent must not reach directly (well-known anycast resolvers' HTTPS).
pub const PUBLIC_ADDRESSES: &[(&str, u16)] = &[("1.1.1.1", 443), ("2606:4700:4700::1111", 443)];

/// A host no allowlist holds and no resolver knows (RFC 6761): a proxy that answers it with
/// anything but its refusal dialled, or tried to.
pub const REFUSED_HOST: &str = "bottle-self-test.invalid";

/// Where the Docker engine's (and its relatives') sockets live by default.
pub const ENGINE_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
];

/// The public name looked up when the allowlist names no exact host.
const FALLBACK_PUBLIC_NAME: &str = "example.com";

/// What the self-test proves, one promise each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Promise {
    /// Nothing leaves except through the agent proxy.
    NoDirectEgress,
    /// Nothing on the host answers the agent.
    NoHost,
    /// Names outside the bottle do not resolve (no DNS tunnel).
    NoDnsExfiltration,
    /// The agent proxy refuses a host off the allowlist before dialling it.
    ProxyRefuses,
    /// No engine socket in the agent.
    NoEngineSocket,
    /// No route token (a secret only sidecars get) in the agent's environment or files.
    NoRouteToken,
    /// Sidecars outside the internal network (pipelock behind the egress proxy) are out of reach.
    SecludedSidecars,
}

impl Promise {
    /// The check's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Promise::NoDirectEgress => "no direct egress",
            Promise::NoHost => "no host",
            Promise::NoDnsExfiltration => "no DNS exfiltration",
            Promise::ProxyRefuses => "proxy refuses unlisted hosts",
            Promise::NoEngineSocket => "no Docker socket",
            Promise::NoRouteToken => "no route token in the agent",
            Promise::SecludedSidecars => "secluded sidecars unreachable",
        }
    }

    /// How to fix a failure.
    pub fn fix(self) -> &'static str {
        match self {
            Promise::NoDirectEgress => {
                "the agent must be on the bottle's internal network only: let dockerd manage \
                 iptables (no `\"iptables\": false` in daemon.json) so `internal` networks drop \
                 traffic leaving them, and attach nothing else to the agent"
            }
            Promise::NoHost => {
                "the internal bridge must have no address on the host: use a Docker engine whose \
                 bridge driver honours `com.docker.network.bridge.inhibit_ipv4` (20.10 or newer, \
                 rootful) and add no host route or firewall rule into bottle subnets"
            }
            Promise::NoDnsExfiltration => {
                "use Docker Engine 26 or newer (it does not forward DNS from internal networks); \
                 `bottle doctor` checks the engine"
            }
            Promise::ProxyRefuses => {
                "the agent proxy must answer a host off the allowlist with 403 before dialling; \
                 check its config and `bottle logs <identity> <proxy>`"
            }
            Promise::NoEngineSocket => {
                "never mount an engine socket into the agent: remove it from the agent image or \
                 the plugin that adds it"
            }
            Promise::NoRouteToken => {
                "a secret that only sidecars should hold reached the agent: take it out of the \
                 bottle's `env` (route tokens belong in `egress_proxy.routes[].auth.token_ref`) \
                 and out of any plugin file or agent image"
            }
            Promise::SecludedSidecars => {
                "a sidecar the plan keeps off the internal network is reachable: check that no \
                 plugin puts it (or an alias of it) on the internal network"
            }
        }
    }
}

/// What a check expects of its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Connected.
    Reached,
    /// Refused, unreachable or no answer.
    NotReached,
    /// The name resolves.
    Resolves,
    /// It does not (or no answer).
    DoesNotResolve,
    /// A 2xx answer.
    Success,
    /// Exactly this status.
    Status(u16),
    /// The path exists.
    Exists,
    /// It does not.
    Absent,
    /// The fingerprinted value is there.
    Found,
    /// It is not.
    Clean,
}

impl Expect {
    /// Whether `outcome` is what was expected.
    pub fn met_by(self, outcome: Outcome) -> bool {
        use Outcome as O;
        match self {
            Expect::Reached => outcome == O::Open,
            Expect::NotReached => matches!(outcome, O::Closed | O::Timeout),
            Expect::Resolves => outcome == O::Resolved,
            Expect::DoesNotResolve => matches!(outcome, O::Unresolved | O::Timeout),
            Expect::Success => matches!(outcome, O::Status(200..=299)),
            Expect::Status(code) => outcome == O::Status(code),
            Expect::Exists => outcome == O::Exists,
            Expect::Absent => outcome == O::Absent,
            Expect::Found => outcome == O::Found,
            Expect::Clean => outcome == O::Clean,
        }
    }

    /// In words, for the report's `expected` column.
    pub fn words(self) -> String {
        match self {
            Expect::Reached => "answers".into(),
            Expect::NotReached => "no answer".into(),
            Expect::Resolves => "resolves".into(),
            Expect::DoesNotResolve => "does not resolve".into(),
            Expect::Success => "HTTP 2xx".into(),
            Expect::Status(code) => format!("HTTP {code}"),
            Expect::Exists => "exists".into(),
            Expect::Absent => "absent".into(),
            Expect::Found => "found".into(),
            Expect::Clean => "not found".into(),
        }
    }
}

/// One planned check: the promise it serves, whether it is a control, what it looks at.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The promise.
    pub promise: Promise,
    /// What is looked at, in words (`TCP 1.1.1.1:443 (public address)`).
    pub what: String,
    /// What must happen.
    pub expect: Expect,
    /// The prober's check.
    pub check: Check,
}

impl Planned {
    /// Whether this is a positive control.
    pub fn is_control(&self) -> bool {
        self.check.phase == Phase::Control
    }
}

/// What the engine made of the bottle, and the host side of the test.
#[derive(Debug, Clone, Default)]
pub struct Surroundings {
    /// The internal network's gateway addresses (assigned, not on the host when isolated).
    pub internal_gateways: Vec<String>,
    /// The egress network's gateway addresses (on the host).
    pub egress_gateways: Vec<String>,
    /// `(sidecar name, address)` of the bottle's sidecars on the egress network.
    pub egress_members: Vec<(String, String)>,
    /// Every bridge's gateway on the engine (docker0, other bottles', any compose network).
    pub bridge_gateways: Vec<String>,
    /// The port of the launcher's listener on the host.
    pub listener_port: u16,
}

/// Fingerprints the token check needs, computed by the launcher from values it holds.
#[derive(Debug, Clone, Default)]
pub struct Fingerprints {
    /// `(secret name, needle)` for every secret only sidecars get.
    pub tokens: Vec<(String, Needle)>,
    /// A value known to be in the agent's environment (the control of the environment scan).
    pub env_control: Option<(String, Needle)>,
    /// Bytes known to be in a file the host put there (the control of the file scan).
    pub file_control: Option<(String, Needle)>,
    /// The files (or directories) the host put into the agent.
    pub files: Vec<String>,
}

/// Builds the list, numbering checks as they are added.
struct Builder {
    out: Vec<Planned>,
}

impl Builder {
    fn add(&mut self, promise: Promise, phase: Phase, what: String, expect: Expect, op: Op) {
        let prefix = if phase == Phase::Control { "c" } else { "p" };
        let id = format!("{prefix}{}", self.out.len() + 1);
        self.out.push(Planned {
            promise,
            what,
            expect,
            check: Check { id, phase, op },
        });
    }

    fn connect(&mut self, promise: Promise, phase: Phase, host: &str, port: u16, why: &str) {
        let expect = if phase == Phase::Control {
            Expect::Reached
        } else {
            Expect::NotReached
        };
        let what = format!("TCP {} ({why})", authority(host, port));
        let op = Op::Connect {
            host: host.to_owned(),
            port,
        };
        self.add(promise, phase, what, expect, op);
    }

    fn resolve(&mut self, promise: Promise, phase: Phase, name: &str, why: &str) {
        let expect = if phase == Phase::Control {
            Expect::Resolves
        } else {
            Expect::DoesNotResolve
        };
        let op = Op::Resolve {
            name: name.to_owned(),
        };
        self.add(
            promise,
            phase,
            format!("lookup of {name} ({why})"),
            expect,
            op,
        );
    }
}

/// `host:port`, with brackets around an IPv6 literal.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The sidecar's name on the internal network (its first alias, as the plan's proxy URL uses).
fn dns_name(sidecar: &SidecarPlan) -> &str {
    sidecar.aliases.first().unwrap_or(&sidecar.name)
}

fn on_internal(sidecar: &SidecarPlan) -> bool {
    sidecar.networks.contains(&NetworkKind::Internal)
}

/// The agent proxy's host and port, from the plan's proxy URL.
fn agent_proxy(plan: &Plan) -> Option<(String, u16)> {
    let url = plan.agent_proxy.as_deref()?;
    let authority = url.split("://").nth(1)?.trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// Every check for this bottle, controls and probes, in the order they are reported.
pub fn plan_checks(plan: &Plan, around: &Surroundings, prints: &Fingerprints) -> Vec<Planned> {
    let mut b = Builder { out: Vec::new() };
    let proxy = agent_proxy(plan);
    let reachable: Vec<&SidecarPlan> = plan
        .sidecars
        .iter()
        .filter(|s| on_internal(s) && s.port.is_some())
        .collect();
    direct_egress(&mut b, plan, around, proxy.as_ref(), &reachable);
    host(&mut b, around, &reachable);
    dns(&mut b, plan, &reachable);
    // A learning proxy (`bottle start --learn`) lets unlisted hosts through by design: its
    // promise is not to refuse them, so that check is not made (every other one is).
    if let Some(proxy) = &proxy
        && !crate::sidecars::egress_proxy::learning(plan)
    {
        proxy_refuses(&mut b, plan, proxy);
    }
    engine_socket(&mut b);
    route_tokens(&mut b, prints);
    secluded(&mut b, plan, &reachable);
    b.out
}

fn direct_egress(
    b: &mut Builder,
    plan: &Plan,
    around: &Surroundings,
    proxy: Option<&(String, u16)>,
    reachable: &[&SidecarPlan],
) {
    const P: Promise = Promise::NoDirectEgress;
    match (proxy, reachable.first()) {
        (Some((host, port)), _) => b.connect(P, Phase::Control, host, *port, "the agent proxy"),
        (None, Some(s)) => b.connect(
            P,
            Phase::Control,
            dns_name(s),
            s.port.unwrap_or(0),
            "a sidecar",
        ),
        (None, None) => {}
    }
    for (ip, port) in PUBLIC_ADDRESSES {
        b.connect(P, Phase::Probe, ip, *port, "a public address");
    }
    for gateway in &around.egress_gateways {
        b.connect(
            P,
            Phase::Probe,
            gateway,
            around.listener_port,
            "the egress network's gateway, host listener",
        );
    }
    for (sidecar, ip) in &around.egress_members {
        if let Some(port) = plan
            .sidecars
            .iter()
            .find(|s| &s.name == sidecar)
            .and_then(|s| s.port)
        {
            b.connect(
                P,
                Phase::Probe,
                ip,
                port,
                &format!("{sidecar} on the egress network"),
            );
        }
    }
}

fn host(b: &mut Builder, around: &Surroundings, reachable: &[&SidecarPlan]) {
    const P: Promise = Promise::NoHost;
    for sidecar in reachable {
        let why = format!("sidecar {}", sidecar.name);
        b.connect(
            P,
            Phase::Control,
            dns_name(sidecar),
            sidecar.port.unwrap_or(0),
            &why,
        );
    }
    let mut seen: Vec<&String> = around.egress_gateways.iter().collect();
    let internal = around
        .internal_gateways
        .iter()
        .map(|g| (g, "the internal network's gateway, host listener"));
    let bridges = around
        .bridge_gateways
        .iter()
        .map(|g| (g, "a Docker bridge's host address, host listener"));
    for (gateway, why) in internal.chain(bridges) {
        if !seen.contains(&gateway) {
            seen.push(gateway);
            b.connect(P, Phase::Probe, gateway, around.listener_port, why);
        }
    }
}

fn dns(b: &mut Builder, plan: &Plan, reachable: &[&SidecarPlan]) {
    const P: Promise = Promise::NoDnsExfiltration;
    if let Some(sidecar) = reachable.first() {
        b.resolve(P, Phase::Control, dns_name(sidecar), "a sidecar");
    }
    let public = plan
        .egress
        .iter()
        .map(|h| h.host.as_str())
        .find(|h| !h.contains('*') && h.parse::<std::net::IpAddr>().is_err())
        .unwrap_or(FALLBACK_PUBLIC_NAME);
    b.resolve(P, Phase::Probe, public, "a public name");
}

fn proxy_refuses(b: &mut Builder, plan: &Plan, (host, port): &(String, u16)) {
    const P: Promise = Promise::ProxyRefuses;
    let health = plan
        .sidecars
        .iter()
        .find(|s| dns_name(s) == host || &s.name == host)
        .and_then(|s| s.health.as_ref())
        .map(|h| &h.probe);
    match health {
        Some(ProbePlan::Http { port: hp, path }) if hp == port => {
            let op = Op::Http {
                host: host.clone(),
                port: *port,
                target: path.clone(),
            };
            let what = format!("GET {path} of the agent proxy {}", authority(host, *port));
            b.add(P, Phase::Control, what, Expect::Success, op);
        }
        _ => b.connect(P, Phase::Control, host, *port, "the agent proxy"),
    }
    let target = format!("http://{REFUSED_HOST}/");
    let what = format!("GET {target} through the agent proxy");
    let op = Op::Http {
        host: host.clone(),
        port: *port,
        target,
    };
    b.add(P, Phase::Probe, what, Expect::Status(403), op);
}

fn engine_socket(b: &mut Builder) {
    const P: Promise = Promise::NoEngineSocket;
    let path = crate::launch::sidecars::PROBE_PATH.to_owned();
    let what = format!("{path} (the prober itself)");
    b.add(P, Phase::Control, what, Expect::Exists, Op::Path { path });
    for socket in ENGINE_SOCKETS {
        let op = Op::Path {
            path: (*socket).to_owned(),
        };
        b.add(P, Phase::Probe, (*socket).to_owned(), Expect::Absent, op);
    }
}

fn route_tokens(b: &mut Builder, prints: &Fingerprints) {
    const P: Promise = Promise::NoRouteToken;
    if prints.tokens.is_empty() {
        return;
    }
    let files = prints.files.clone();
    if let Some((what, needle)) = &prints.env_control {
        let op = Op::ScanEnv {
            needle: fingerprint::format(needle),
        };
        b.add(
            P,
            Phase::Control,
            format!("{what} in the agent's environment"),
            Expect::Found,
            op,
        );
    }
    if let Some((what, needle)) = &prints.file_control {
        let op = Op::ScanFiles {
            needle: fingerprint::format(needle),
            paths: files.clone(),
        };
        b.add(
            P,
            Phase::Control,
            format!("{what} in the agent's files"),
            Expect::Found,
            op,
        );
    }
    for (name, needle) in &prints.tokens {
        let travelling = fingerprint::format(needle);
        let op = Op::ScanEnv {
            needle: travelling.clone(),
        };
        b.add(
            P,
            Phase::Probe,
            format!("the value of {name} in the agent's environment"),
            Expect::Clean,
            op,
        );
        let op = Op::ScanFiles {
            needle: travelling,
            paths: files.clone(),
        };
        b.add(
            P,
            Phase::Probe,
            format!("the value of {name} in files the host put in the agent"),
            Expect::Clean,
            op,
        );
    }
}

fn secluded(b: &mut Builder, plan: &Plan, reachable: &[&SidecarPlan]) {
    const P: Promise = Promise::SecludedSidecars;
    let secluded: Vec<&SidecarPlan> = plan.sidecars.iter().filter(|s| !on_internal(s)).collect();
    if secluded.is_empty() {
        return;
    }
    if let Some(sidecar) = reachable.first() {
        b.resolve(
            P,
            Phase::Control,
            dns_name(sidecar),
            "a sidecar on the internal network",
        );
    }
    for sidecar in secluded {
        let mut names = vec![sidecar.name.clone()];
        names.extend(
            sidecar
                .aliases
                .iter()
                .filter(|a| **a != sidecar.name)
                .cloned(),
        );
        for name in names {
            b.resolve(
                P,
                Phase::Probe,
                &name,
                &format!("sidecar {} off the internal network", sidecar.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{AgentPlan, HealthPlan, ImagePlan};

    fn sidecar(name: &str, networks: &[NetworkKind], port: u16) -> SidecarPlan {
        SidecarPlan {
            name: name.into(),
            plugin: name.into(),
            image: ImagePlan::Reference("x".into()),
            command: vec![],
            networks: networks.to_vec(),
            aliases: vec![name.into()],
            port: Some(port),
            health: Some(HealthPlan {
                probe: ProbePlan::Http {
                    port,
                    path: "/healthz".into(),
                },
                interval_ms: 10,
                timeout_ms: 10,
                retries: 1,
            }),
            env: vec![],
            files: vec![],
            host_files: vec![],
            mounts: vec![],
            cas: vec![],
            extra_hosts: vec![],
            roles: vec![],
            after: vec![],
            published_ports: vec![],
        }
    }

    /// The egress proxy fronting pipelock (kept off the internal network) and a third-party
    /// sidecar nobody wrote a check for.
    fn plan() -> Plan {
        use NetworkKind::{Egress, Internal};
        Plan {
            bottle: "b".into(),
            agent: AgentPlan {
                name: "a".into(),
                image: ImagePlan::Context("agent".into()),
                command: vec![],
                env: vec![],
                files: vec![],
                no_proxy: vec![],
                provision: vec![],
                skills: vec![],
                prompt: String::new(),
                limits: Default::default(),
            },
            sidecars: vec![
                sidecar("egress-proxy", &[Internal, Egress], 9099),
                sidecar("pipelock", &[Egress], 8888),
                sidecar("modelserver", &[Internal], 8080),
            ],
            stages: vec![],
            egress: vec![],
            agent_proxy: Some("http://egress-proxy:9099".into()),
            upstream_proxy: Some("http://pipelock:8888".into()),
            internal_cidr: "172.30.0.0/16".into(),
            cas: vec![],
            agent_trusts: vec![],
            runtime: "auto".into(),
            plugins: vec![],
            secrets: vec![],
            grants: vec![],
        }
    }

    fn around() -> Surroundings {
        Surroundings {
            internal_gateways: vec!["172.30.0.1".into()],
            egress_gateways: vec!["172.31.0.1".into()],
            egress_members: vec![
                ("egress-proxy".into(), "172.31.0.2".into()),
                ("pipelock".into(), "172.31.0.3".into()),
            ],
            bridge_gateways: vec!["172.17.0.1".into(), "172.31.0.1".into()],
            listener_port: 4242,
        }
    }

    fn described(checks: &[Planned], promise: Promise, control: bool) -> Vec<String> {
        checks
            .iter()
            .filter(|c| c.promise == promise && c.is_control() == control)
            .map(|c| c.what.clone())
            .collect()
    }

    #[test]
    fn checks_come_from_the_plan_and_every_promise_has_a_control() {
        let checks = plan_checks(&plan(), &around(), &Fingerprints::default());
        let host = described(&checks, Promise::NoHost, false);
        assert!(
            host.iter().any(|w| w.starts_with("TCP 172.30.0.1:4242")),
            "{host:?}"
        );
        assert!(
            host.iter().any(|w| w.starts_with("TCP 172.17.0.1:4242")),
            "{host:?}"
        );
        // The egress gateway is probed once, as part of direct egress.
        assert!(!host.iter().any(|w| w.contains("172.31.0.1")), "{host:?}");
        let controls = described(&checks, Promise::NoHost, true);
        assert!(
            controls.iter().any(|w| w.contains("modelserver:8080")),
            "{controls:?}"
        );
        let egress = described(&checks, Promise::NoDirectEgress, false);
        for target in [
            "1.1.1.1:443",
            "172.31.0.1:4242",
            "172.31.0.2:9099",
            "172.31.0.3:8888",
        ] {
            assert!(
                egress.iter().any(|w| w.contains(target)),
                "{target}: {egress:?}"
            );
        }
        let secluded = described(&checks, Promise::SecludedSidecars, false);
        assert_eq!(
            secluded,
            ["lookup of pipelock (sidecar pipelock off the internal network)"]
        );
        let refusal = checks
            .iter()
            .find(|c| c.promise == Promise::ProxyRefuses && !c.is_control())
            .unwrap();
        assert_eq!(refusal.expect, Expect::Status(403));
        for promise in [
            Promise::NoDirectEgress,
            Promise::NoHost,
            Promise::NoDnsExfiltration,
            Promise::ProxyRefuses,
            Promise::NoEngineSocket,
            Promise::SecludedSidecars,
        ] {
            assert!(
                !described(&checks, promise, true).is_empty(),
                "{promise:?} has no control"
            );
            assert!(
                !described(&checks, promise, false).is_empty(),
                "{promise:?} has no probe"
            );
        }
        // Without route tokens there is nothing to look for.
        assert!(described(&checks, Promise::NoRouteToken, false).is_empty());
    }

    #[test]
    fn route_tokens_are_looked_for_by_fingerprint_only() {
        let needle = Needle::of(b"route-token-value", [3, 5]);
        let prints = Fingerprints {
            tokens: vec![("ROUTE_TOKEN".into(), needle)],
            env_control: Some((
                "the value of HTTPS_PROXY".into(),
                Needle::of(b"http://x", [3, 5]),
            )),
            file_control: None,
            files: vec!["/home/agent/.bottle/system-prompt.md".into()],
        };
        let checks = plan_checks(&plan(), &around(), &prints);
        let spec = bottle_probe::spec::Spec {
            control_ms: 1,
            probe_floor_ms: 1,
            probe_factor: 1,
            checks: checks.iter().map(|c| c.check.clone()).collect(),
        }
        .render();
        assert!(!spec.contains("route-token-value"), "{spec}");
        assert!(spec.contains(&fingerprint::format(&needle)), "{spec}");
        assert_eq!(described(&checks, Promise::NoRouteToken, false).len(), 2);
        assert_eq!(described(&checks, Promise::NoRouteToken, true).len(), 1);
    }
}
