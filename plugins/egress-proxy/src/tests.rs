use serde_json::{Value, json};

use super::*;
use sdk::{EnvValue, EnvVar, Guest, MountSource};

/// A bottle with a GitHub route, Claude Code's token injected, and an unauthenticated route.
const ROUTES: &str = r#"{
    "egress": {"firewall": "builtin", "allowlist": ["pypi.org"], "pipelock_image": null},
    "egress_proxy": {"routes": [
        {"host": "api.github.com", "auth": {"scheme": "token", "token_ref": "GH_TOKEN"},
         "path_allowlist": ["/repos/org/app/", "/user"]},
        {"host": "api.anthropic.com", "auth": {"scheme": "Bearer", "token_ref": "CLAUDE_CODE_OAUTH_TOKEN"},
         "path_allowlist": null, "methods": ["GET", "POST"]},
        {"host": "Downloads.Example.com.", "auth": null}
    ]}
}"#;

/// The same routes behind pipelock.
const PIPELOCK: &str = r#"{
    "egress": {"firewall": "pipelock", "allowlist": [], "pipelock_image": "ghcr.io/example/pipelock:1"},
    "egress_proxy": {"routes": [
        {"host": "api.github.com", "auth": {"scheme": "token", "token_ref": "GH_TOKEN"}}
    ]}
}"#;

#[test]
fn describe_names_sections_and_roles() {
    let info = <EgressProxy as Guest>::describe();
    assert_eq!(info.name, "egress-proxy");
    assert_eq!(info.sections, ["egress", "egress_proxy"]);
    let roles: Vec<_> = info
        .roles
        .iter()
        .map(|r| (r.role.as_str(), r.priority))
        .collect();
    assert_eq!(roles, [("agent-proxy", 100), ("egress-firewall", 100)]);
}

#[test]
fn builtin_firewall_is_the_default() {
    let plan = plan("{}", &[]).unwrap();
    let sidecar = &plan.sidecars[0];
    assert_eq!(role_names(sidecar), ["agent-proxy", "egress-firewall"]);
    assert!(sidecar.after.is_empty());
    assert_eq!(sidecar.cas.len(), 1);
    assert!(plan.egress.is_empty());
    assert!(plan.agent.env.is_empty());
}

#[test]
fn inactive_behind_pipelock_without_routes() {
    for config in [
        r#"{"egress": {"firewall": "pipelock"}}"#,
        r#"{"egress": {"firewall": "pipelock"}, "egress_proxy": {"routes": []}}"#,
        r#"{"egress": {"firewall": "pipelock"}, "egress_proxy": {"routes": null}}"#,
        r#"{"egress": {"firewall": "pipelock"}, "egress_proxy": null}"#,
    ] {
        let plan = <EgressProxy as Guest>::plan(config.into(), context(&[])).unwrap();
        assert!(plan.is_none(), "{config}");
    }
}

#[test]
fn null_sections_mean_defaults() {
    let plan = plan(r#"{"egress": null, "egress_proxy": null}"#, &[]).unwrap();
    assert_eq!(
        role_names(&plan.sidecars[0]),
        ["agent-proxy", "egress-firewall"]
    );
}

#[test]
fn unreadable_config_is_a_diagnostic() {
    let errors = plan(r#"{"egress": {"firewall": "iptables"}}"#, &[]).unwrap_err();
    assert!(errors[0].message.contains("cannot read"), "{errors:?}");
}

#[test]
fn plan_with_routes_matches_golden() {
    let plan = plan(ROUTES, SECRETS).unwrap();
    bottle_plugin_sdk::assert_golden!("plan-builtin.yaml", &plan_yaml(&plan));
}

#[test]
fn plan_behind_pipelock_matches_golden() {
    let plan = plan(PIPELOCK, SECRETS).unwrap();
    bottle_plugin_sdk::assert_golden!("plan-pipelock.yaml", &plan_yaml(&plan));
}

#[test]
fn sidecar_shape() {
    let plan = plan(ROUTES, SECRETS).unwrap();
    let sidecar = &plan.sidecars[0];
    assert_eq!(sidecar.name, "egress-proxy");
    assert!(matches!(&sidecar.image, Image::Context(c) if c == "egress-proxy"));
    assert_eq!(
        sidecar.command,
        [
            "/bottle-egress-proxy",
            "--config",
            "/etc/bottle/egress-proxy.yaml"
        ]
    );
    assert!(matches!(
        sidecar.networks[..],
        [Network::Internal, Network::Egress]
    ));
    assert_eq!(sidecar.aliases, ["egress-proxy"]);
    assert_eq!(sidecar.port, Some(9099));
    let probe = &sidecar.health.as_ref().unwrap().probe;
    assert!(matches!(probe, Probe::Http(p) if p.port == 9099 && p.path == "/healthz"));
}

#[test]
fn every_secret_reaches_the_sidecar_by_name_only() {
    let plan = plan(
        ROUTES,
        &["Z_TOKEN", "GH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "GH_TOKEN"],
    )
    .unwrap();
    let env: Vec<_> = plan.sidecars[0].env.iter().map(env_pair).collect();
    assert_eq!(
        env,
        [
            (
                "CLAUDE_CODE_OAUTH_TOKEN".to_owned(),
                "secret:CLAUDE_CODE_OAUTH_TOKEN".to_owned()
            ),
            ("GH_TOKEN".to_owned(), "secret:GH_TOKEN".to_owned()),
            ("Z_TOKEN".to_owned(), "secret:Z_TOKEN".to_owned()),
        ]
    );
}

#[test]
fn route_hosts_are_egress_needs() {
    let plan = plan(ROUTES, SECRETS).unwrap();
    let needs: Vec<_> = plan
        .egress
        .iter()
        .map(|n| (n.host.as_str(), n.credentialed, n.passthrough))
        .collect();
    assert_eq!(
        needs,
        [
            ("api.github.com", true, false),
            ("api.anthropic.com", true, false),
            ("downloads.example.com", false, false),
        ]
    );
}

#[test]
fn claude_token_gets_a_placeholder_in_the_agent() {
    let plan = plan(ROUTES, SECRETS).unwrap();
    let env: Vec<_> = plan.agent.env.iter().map(env_pair).collect();
    assert_eq!(
        env,
        [(
            "CLAUDE_CODE_OAUTH_TOKEN".to_owned(),
            format!("literal:{PLACEHOLDER_TOKEN}")
        )]
    );
}

#[test]
fn no_placeholder_without_a_claude_route() {
    let plan = plan(PIPELOCK, SECRETS).unwrap();
    assert!(plan.agent.env.is_empty());
}

#[test]
fn pipelock_chaining_in_the_plan() {
    let plan = plan(PIPELOCK, SECRETS).unwrap();
    let sidecar = &plan.sidecars[0];
    assert_eq!(role_names(sidecar), ["agent-proxy"]);
    assert!(matches!(&sidecar.after[..], [OrderRef::Role(r)] if r == "egress-firewall"));
    let cas: Vec<_> = sidecar
        .cas
        .iter()
        .map(|ca| {
            (
                ca.ca.as_str(),
                ca.cert_path.as_str(),
                ca.key_path.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        cas,
        [
            ("agent", AGENT_CA_CERT, Some(AGENT_CA_KEY)),
            ("firewall", FIREWALL_CA_CERT, None),
        ]
    );
}

#[test]
fn token_ref_must_be_a_declared_secret() {
    let errors = plan(ROUTES, &["GH_TOKEN"]).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    assert_eq!(error.path, "egress_proxy.routes[1].auth.token_ref");
    assert!(error.message.contains("api.anthropic.com"));
    assert!(error.message.contains("CLAUDE_CODE_OAUTH_TOKEN"));
    let hint = error.hint.as_deref().unwrap();
    assert!(hint.contains("declare `CLAUDE_CODE_OAUTH_TOKEN`"), "{hint}");
    assert!(hint.contains("declared: GH_TOKEN"), "{hint}");
}

#[test]
fn duplicate_route_hosts_are_refused() {
    let config = r#"{"egress_proxy": {"routes": [
        {"host": "api.github.com"}, {"host": "pypi.org"}, {"host": "API.GitHub.com."}
    ]}}"#;
    let errors = plan(config, &[]).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "egress_proxy.routes[2].host");
    assert!(errors[0].message.contains("routes[0]"), "{errors:?}");
}

#[test]
fn route_hosts_and_paths_are_checked() {
    let config = r#"{"egress_proxy": {"routes": [
        {"host": "*.github.com"}, {"host": "https://x.com/"}, {"host": "x.org", "path_allowlist": ["repos/"]},
        {"host": "y.org", "methods": ["GET", "post", "TRACE"]}
    ]}}"#;
    let errors = plan(config, &[]).unwrap_err();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "egress_proxy.routes[0].host",
            "egress_proxy.routes[1].host",
            "egress_proxy.routes[2].path_allowlist[0]",
            "egress_proxy.routes[3].methods[1]",
            "egress_proxy.routes[3].methods[2]",
        ]
    );
    assert!(errors[0].message.contains("glob"));
    assert!(
        errors[3]
            .message
            .contains("`post` must be upper case: `POST`")
    );
    assert!(errors[4].message.contains("never allowed"));
}

#[test]
fn route_hosts_follow_the_proxy_grammar() {
    // The proxy refuses these as hosts, so the plugin must not render them into a route.
    let config = r#"{"egress_proxy": {"routes": [
        {"host": "-api.github.com"}, {"host": "1.2.3"}, {"host": "api.github.com"}
    ]}}"#;
    let errors = plan(config, &[]).unwrap_err();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["egress_proxy.routes[0].host", "egress_proxy.routes[1].host"]
    );
    assert!(
        errors[0].hint.as_deref().unwrap().contains("`-`"),
        "{errors:?}"
    );
}

#[test]
fn finalize_with_routes_matches_golden() {
    let text = finalize(ROUTES, SECRETS, facts(None)).unwrap();
    bottle_plugin_sdk::assert_golden!("egress-proxy-builtin.yaml", &text);
}

#[test]
fn finalize_behind_pipelock_matches_golden() {
    let text = finalize(PIPELOCK, SECRETS, facts(Some("http://pipelock:8888"))).unwrap();
    bottle_plugin_sdk::assert_golden!("egress-proxy-pipelock.yaml", &text);
}

#[test]
fn finalize_places_one_file_in_the_sidecar() {
    let out =
        <EgressProxy as Guest>::finalize(ROUTES.into(), context(SECRETS), facts(None)).unwrap();
    assert_eq!(out.files.len(), 1);
    let placed = &out.files[0];
    assert!(matches!(&placed.target, Target::Sidecar(s) if s == "egress-proxy"));
    assert_eq!(placed.file.path, "/etc/bottle/egress-proxy.yaml");
    assert_eq!(placed.file.mode, 0o644);
    assert!(out.env.is_empty());
}

#[test]
fn builtin_config_contents() {
    let config = parsed(ROUTES, SECRETS, facts(None));
    assert!(config.firewall);
    assert_eq!(config.upstream_proxy, None);
    assert!(config.tls.upstream_roots.is_empty());
    assert_eq!(
        config.allow,
        [
            "*.pythonhosted.org",
            "api.anthropic.com",
            "api.github.com",
            "downloads.example.com",
            "pypi.org",
            "registry.npmjs.org",
        ]
    );
    assert_eq!(config.passthrough, ["registry.npmjs.org"]);
    assert!(config.ssrf.allow_cidrs.is_empty());
    assert_eq!(
        config.dlp.secret_env,
        ["CLAUDE_CODE_OAUTH_TOKEN", "DATABASE_URL", "GH_TOKEN"]
    );
    assert_eq!(config.dlp.patterns, bottle_egress_config::DlpAction::Block);
}

#[test]
fn dlp_patterns_warn_reaches_the_proxy_config() {
    let config = r#"{"egress_proxy": {"routes": [], "dlp_patterns": "warn"}}"#;
    let config = parsed(config, SECRETS, facts(None));
    assert_eq!(config.dlp.patterns, bottle_egress_config::DlpAction::Warn);
    // The bottle's own secrets are still searched for, whatever the patterns do.
    assert!(!config.dlp.secret_env.is_empty());
}

#[test]
fn extra_upstream_cas_and_private_ranges() {
    let config = r#"{"egress_proxy": {"routes": [],
        "upstream_ca": ["/home/u/corp-ca.pem", "/etc/ssl/internal.pem"],
        "allow_cidrs": ["10.20.0.0/16"]}}"#;
    let plan = plan(config, SECRETS).unwrap();
    let files: Vec<_> = plan.sidecars[0]
        .host_files
        .iter()
        .map(|f| (f.host_path.as_str(), f.path.as_str(), f.mode))
        .collect();
    assert_eq!(
        files,
        [
            (
                "/home/u/corp-ca.pem",
                "/etc/bottle/ca/upstream-0.pem",
                0o644
            ),
            (
                "/etc/ssl/internal.pem",
                "/etc/bottle/ca/upstream-1.pem",
                0o644
            ),
        ]
    );
    let rendered = parsed(config, SECRETS, facts(None));
    assert_eq!(
        rendered.tls.upstream_roots,
        [
            "/etc/bottle/ca/upstream-0.pem",
            "/etc/bottle/ca/upstream-1.pem"
        ]
    );
    assert_eq!(rendered.ssrf.allow_cidrs, ["10.20.0.0/16"]);
}

#[test]
fn pipelock_chaining_in_the_config() {
    let config = parsed(PIPELOCK, SECRETS, facts(Some("http://pipelock:8888")));
    assert!(!config.firewall);
    assert_eq!(
        config.upstream_proxy.as_deref(),
        Some("http://pipelock:8888")
    );
    assert_eq!(config.tls.upstream_roots, [FIREWALL_CA_CERT]);
    assert_eq!(config.tls.ca_key, AGENT_CA_KEY);
}

#[test]
fn pipelock_without_an_upstream_is_refused() {
    let errors = finalize(PIPELOCK, SECRETS, facts(None)).unwrap_err();
    assert_eq!(errors[0].path, "egress.firewall");
}

#[test]
fn finalize_checks_the_routes_too() {
    let errors = finalize(ROUTES, &[], facts(None)).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn routes_map_to_the_proxy_format() {
    let config = parsed(ROUTES, SECRETS, facts(None));
    let github = &config.routes[0];
    assert_eq!(github.host, "api.github.com");
    assert_eq!(github.path_allowlist, ["/repos/org/app/", "/user"]);
    let auth = github.auth.as_ref().unwrap();
    assert_eq!(
        (auth.scheme, auth.token_env.as_str()),
        (AuthScheme::Token, "GH_TOKEN")
    );
    assert_eq!(
        config.routes[1].auth.as_ref().unwrap().scheme,
        AuthScheme::Bearer
    );
    assert!(config.routes[1].path_allowlist.is_empty());
    // No `methods`: read only; named ones pass through as written.
    assert!(github.methods.is_empty());
    assert_eq!(github.allowed_methods(), ["GET", "HEAD", "OPTIONS"]);
    assert_eq!(config.routes[1].methods, ["GET", "POST"]);
    assert_eq!(config.routes[2].host, "downloads.example.com");
    assert!(config.routes[2].auth.is_none());
}

#[test]
fn rendered_config_round_trips() {
    for (config, upstream) in [
        (ROUTES, None),
        (PIPELOCK, Some("http://pipelock:8888")),
        ("{}", None),
    ] {
        let text = finalize(config, SECRETS, facts(upstream)).unwrap();
        assert!(text.starts_with(HEADER));
        let back: EgressConfig = yaml_serde::from_str(&text).unwrap();
        let expected = egress_config(
            &serde_json::from_str(config).unwrap(),
            &context(SECRETS),
            &facts(upstream),
        )
        .unwrap();
        assert_eq!(back, expected);
        assert_eq!(back.version, FORMAT_VERSION);
        assert_eq!(back.listen, "0.0.0.0:9099");
    }
}

// Helpers.

const SECRETS: &[&str] = &["GH_TOKEN", "DATABASE_URL", "CLAUDE_CODE_OAUTH_TOKEN"];

fn context(secrets: &[&str]) -> PlanContext {
    PlanContext {
        bottle: "demo".into(),
        agent: "claude".into(),
        secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        plugins: Vec::new(),
        properties: Vec::new(),
    }
}

/// The facts of a plan with the ROUTES hosts, an allowlist with odd spellings and a passthrough host.
fn facts(upstream_proxy: Option<&str>) -> Facts {
    let need = |host: &str, passthrough: bool| EgressNeed {
        passthrough,
        ..sdk::egress(host, "test")
    };
    Facts {
        internal_cidr: "172.30.0.0/24".into(),
        sidecars: Vec::new(),
        egress: vec![
            need("api.github.com", false),
            need("api.anthropic.com", false),
            need("downloads.example.com", false),
            need("PyPI.org", false),
            need("pypi.org.", false),
            need("*.pythonhosted.org", false),
            need("registry.npmjs.org", true),
            need(" ", false),
        ],
        agent_proxy: Some("http://egress-proxy:9099".into()),
        upstream_proxy: upstream_proxy.map(str::to_owned),
        cas: Vec::new(),
        properties: Vec::new(),
    }
}

fn plan(config: &str, secrets: &[&str]) -> Result<Contribution, Vec<Diagnostic>> {
    <EgressProxy as Guest>::plan(config.into(), context(secrets)).map(|plan| plan.expect("active"))
}

fn finalize(config: &str, secrets: &[&str], facts: Facts) -> Result<String, Vec<Diagnostic>> {
    let out = <EgressProxy as Guest>::finalize(config.into(), context(secrets), facts)?;
    Ok(String::from_utf8(out.files[0].file.contents.clone()).unwrap())
}

fn parsed(config: &str, secrets: &[&str], facts: Facts) -> EgressConfig {
    yaml_serde::from_str(&finalize(config, secrets, facts).unwrap()).unwrap()
}

fn role_names(sidecar: &SidecarSpec) -> Vec<&str> {
    sidecar.roles.iter().map(|r| r.role.as_str()).collect()
}

fn env_pair(var: &EnvVar) -> (String, String) {
    let value = match &var.value {
        EnvValue::Literal(v) => format!("literal:{v}"),
        EnvValue::Secret(s) => format!("secret:{s}"),
    };
    (var.name.clone(), value)
}

/// A readable YAML view of a contribution, with file contents as text.
fn plan_yaml(plan: &Contribution) -> String {
    let value = json!({
        "sidecars": plan.sidecars.iter().map(sidecar_json).collect::<Vec<_>>(),
        "agent": {
            "env": plan.agent.env.iter().map(env_json).collect::<Vec<_>>(),
            "files": plan.agent.files.iter().map(file_json).collect::<Vec<_>>(),
            "no_proxy": plan.agent.no_proxy,
            "provision": plan.agent.provision.iter().map(|p| json!({"name": p.name, "command": p.command})).collect::<Vec<_>>(),
        },
        "egress": plan.egress.iter().map(|n| json!({
            "host": n.host, "reason": n.reason, "credentialed": n.credentialed, "passthrough": n.passthrough,
        })).collect::<Vec<_>>(),
    });
    yaml_serde::to_string(&value).unwrap()
}

fn sidecar_json(s: &SidecarSpec) -> Value {
    json!({
        "name": s.name,
        "image": match &s.image { Image::Reference(r) => format!("reference {r}"), Image::Context(c) => format!("context {c}") },
        "command": s.command,
        "networks": s.networks.iter().map(|n| match n { Network::Internal => "internal", Network::Egress => "egress" }).collect::<Vec<_>>(),
        "aliases": s.aliases,
        "port": s.port,
        "health": s.health.as_ref().map(|h| json!({
            "probe": match &h.probe {
                Probe::Tcp(port) => format!("tcp {port}"),
                Probe::Http(p) => format!("http {}{}", p.port, p.path),
                Probe::Exec(cmd) => format!("exec {}", cmd.join(" ")),
            },
            "interval_ms": h.interval_ms, "timeout_ms": h.timeout_ms, "retries": h.retries,
        })),
        "env": s.env.iter().map(env_json).collect::<Vec<_>>(),
        "files": s.files.iter().map(file_json).collect::<Vec<_>>(),
        "host_files": s.host_files.iter().map(|f| json!({"host_path": f.host_path, "path": f.path, "mode": format!("{:o}", f.mode)})).collect::<Vec<_>>(),
        "mounts": s.mounts.iter().map(|m| json!({
            "source": match &m.source { MountSource::State(d) => format!("state {d}") },
            "target": m.target, "read_only": m.read_only,
        })).collect::<Vec<_>>(),
        "cas": s.cas.iter().map(|c| json!({"ca": c.ca, "cert_path": c.cert_path, "key_path": c.key_path})).collect::<Vec<_>>(),
        "extra_hosts": s.extra_hosts.iter().map(|h| format!("{} {}", h.host, h.ip)).collect::<Vec<_>>(),
        "roles": s.roles.iter().map(|r| format!("{} {}", r.role, r.priority)).collect::<Vec<_>>(),
        "after": s.after.iter().map(|o| match o { OrderRef::Sidecar(n) => format!("sidecar {n}"), OrderRef::Role(r) => format!("role {r}") }).collect::<Vec<_>>(),
    })
}

fn env_json(var: &EnvVar) -> Value {
    let (name, value) = env_pair(var);
    json!(format!("{name}={value}"))
}

fn file_json(f: &sdk::File) -> Value {
    json!({"path": f.path, "mode": format!("{:o}", f.mode), "contents": String::from_utf8_lossy(&f.contents)})
}

#[test]
fn learn_mode_reaches_the_config_only_when_asked_and_never_behind_pipelock() {
    let off = parsed(
        ROUTES,
        &["GH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"],
        facts(None),
    );
    assert!(!off.learn);
    let learning = ROUTES.replacen(
        r#""egress_proxy": {"routes""#,
        r#""egress_proxy": {"learn": true, "routes""#,
        1,
    );
    assert_ne!(learning, ROUTES);
    let on = parsed(
        &learning,
        &["GH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"],
        facts(None),
    );
    assert!(on.learn);
    on.validate().unwrap();
    // Learn mode changes nothing else: the same routes, allowlist and DLP.
    assert_eq!(EgressConfig { learn: false, ..on }, off);

    let pipelock = PIPELOCK.replacen(
        r#""egress_proxy": {"routes""#,
        r#""egress_proxy": {"learn": true, "routes""#,
        1,
    );
    let errors = finalize(
        &pipelock,
        &["GH_TOKEN"],
        facts(Some("http://pipelock:8888")),
    )
    .unwrap_err();
    assert!(
        errors.iter().any(|d| d.message.contains("learn mode")),
        "{errors:?}"
    );
}
