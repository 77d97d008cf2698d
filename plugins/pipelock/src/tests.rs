//! Native tests: the plan, the rendered config against golden files, and the rendered config
//! against pipelock v2.3.0's reference (the keys its loader accepts and the values its docs allow).

use std::path::{Path, PathBuf};

use yaml_serde::Value;

use super::*;
use sdk::{EgressNeed, Guest, Probe, SidecarFact};

// ---------------------------------------------------------------------------------------------
// plan

#[test]
fn inactive_without_egress_section_or_with_builtin_firewall() {
    for config in [
        "{}",
        r#"{"egress": {}}"#,
        r#"{"egress": {"firewall": "builtin", "allowlist": ["x.com"]}}"#,
    ] {
        let plan = <Pipelock as Guest>::plan(config.into(), context()).unwrap();
        assert!(plan.is_none(), "{config} should not start pipelock");
    }
}

#[test]
fn active_with_the_default_image() {
    let plan = plan_for(r#"{"egress": {"firewall": "pipelock", "pipelock_image": null}}"#);
    assert!(matches!(&plan.sidecars[0].image, Image::Reference(r) if r == DEFAULT_IMAGE));
    assert_eq!(DEFAULT_IMAGE, "ghcr.io/luckypipewrench/pipelock:2.3.0");
}

#[test]
fn active_with_an_overridden_image() {
    let plan = plan_for(
        r#"{"egress": {"firewall": "pipelock", "pipelock_image": "registry.local/pipelock@sha256:abc"}}"#,
    );
    assert!(
        matches!(&plan.sidecars[0].image, Image::Reference(r) if r == "registry.local/pipelock@sha256:abc")
    );
}

#[test]
fn sidecar_sits_on_both_networks_and_offers_both_roles() {
    let plan = plan_for(r#"{"egress": {"firewall": "pipelock"}}"#);
    assert_eq!(plan.sidecars.len(), 1);
    let sidecar = &plan.sidecars[0];
    assert_eq!(sidecar.name, "pipelock");
    assert!(matches!(
        sidecar.networks[..],
        [Network::Internal, Network::Egress]
    ));
    assert_eq!(sidecar.aliases, ["pipelock"]);
    assert_eq!(sidecar.port, Some(8888));
    let health = sidecar.health.as_ref().unwrap();
    assert!(matches!(health.probe, Probe::Tcp(8888)));
    let roles: Vec<_> = sidecar
        .roles
        .iter()
        .map(|r| (r.role.as_str(), r.priority))
        .collect();
    assert_eq!(roles, [("egress-firewall", 100), ("agent-proxy", 10)]);
    assert!(plan.egress.is_empty());
    assert!(plan.agent.env.is_empty() && plan.agent.provision.is_empty());
}

#[test]
fn command_runs_pipelock_with_the_rendered_config() {
    let plan = plan_for(r#"{"egress": {"firewall": "pipelock"}}"#);
    assert_eq!(
        plan.sidecars[0].command,
        [
            "run",
            "--config",
            "/etc/pipelock.yaml",
            "--listen",
            "0.0.0.0:8888"
        ]
    );
}

#[test]
fn firewall_ca_with_key_lands_where_the_config_points() {
    let plan = plan_for(r#"{"egress": {"firewall": "pipelock"}}"#);
    let cas = &plan.sidecars[0].cas;
    assert_eq!(cas.len(), 1);
    assert_eq!(cas[0].ca, "firewall");
    let yaml = parse(&render(&[], &typical_facts()).unwrap());
    assert_eq!(
        at(&yaml, "tls_interception.ca_cert").as_str(),
        Some(cas[0].cert_path.as_str())
    );
    assert_eq!(
        at(&yaml, "tls_interception.ca_key").as_str(),
        cas[0].key_path.as_deref()
    );
}

#[test]
fn describe_names_the_section_and_roles() {
    let info = <Pipelock as Guest>::describe();
    assert_eq!(info.name, "pipelock");
    assert_eq!(info.sections, ["egress"]);
    assert_eq!(info.roles.len(), 2);
}

#[test]
fn bad_configuration_is_a_diagnostic() {
    let blank = r#"{"egress": {"firewall": "pipelock", "pipelock_image": "  "}}"#;
    let errors = <Pipelock as Guest>::plan(blank.into(), context()).unwrap_err();
    assert_eq!(errors[0].path, "egress.pipelock_image");
    let unknown = r#"{"egress": {"firewall": "iptables"}}"#;
    assert!(<Pipelock as Guest>::plan(unknown.into(), context()).is_err());
}

// ---------------------------------------------------------------------------------------------
// finalize

#[test]
fn finalize_places_the_config_in_the_sidecar() {
    let config = r#"{"egress": {"firewall": "pipelock"}}"#;
    let done = <Pipelock as Guest>::finalize(config.into(), context(), typical_facts()).unwrap();
    assert_eq!(done.files.len(), 1);
    let placed = &done.files[0];
    assert!(matches!(&placed.target, Target::Sidecar(name) if name == "pipelock"));
    assert_eq!(placed.file.path, "/etc/pipelock.yaml");
    assert_eq!(placed.file.mode, 0o644);
    assert!(
        String::from_utf8(placed.file.contents.clone())
            .unwrap()
            .starts_with("# ")
    );
}

#[test]
fn golden_typical() {
    let manifest = ["*.PyPI.org".to_owned(), "registry.npmjs.org".to_owned()];
    check_golden("typical", &render(&manifest, &typical_facts()).unwrap());
}

#[test]
fn golden_minimal() {
    check_golden("minimal", &render(&[], &minimal_facts()).unwrap());
}

#[test]
fn allowlist_is_facts_plus_claude_hosts_plus_sidecar_aliases() {
    let yaml = parse(&render(&["extra.example.org".into()], &typical_facts()).unwrap());
    let allow = strings(at(&yaml, "api_allowlist"));
    for host in render::CLAUDE_HOSTS {
        assert!(allow.contains(&host.to_owned()), "{host} missing");
    }
    for host in [
        "egress-proxy",
        "supervise",
        "pipelock",
        "api.github.com",
        "mcp.example.com",
    ] {
        assert!(allow.contains(&host.to_owned()), "{host} missing");
    }
    assert!(allow.contains(&"extra.example.org".to_owned()));
    let mut sorted = allow.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(allow, sorted, "allowlist must be sorted and unique");
}

#[test]
fn claude_hosts_are_allowed_even_without_facts() {
    let yaml = parse(&render(&[], &minimal_facts()).unwrap());
    let allow = strings(at(&yaml, "api_allowlist"));
    assert!(
        render::CLAUDE_HOSTS
            .iter()
            .all(|h| allow.contains(&(*h).to_owned()))
    );
    // sentry.io ingest takes any DSN: a channel out, so it is not a default.
    assert!(!allow.contains(&"sentry.io".to_owned()), "{allow:?}");
}

#[test]
fn passthrough_is_the_model_api_plus_credentialed_and_passthrough_hosts() {
    let yaml = parse(&render(&[], &typical_facts()).unwrap());
    let passthrough = strings(at(&yaml, "tls_interception.passthrough_domains"));
    assert_eq!(
        passthrough,
        [
            "api.anthropic.com",
            "api.github.com",
            "pinned.example.net",
            "uploads.github.com"
        ]
    );
}

#[test]
fn duplicate_and_uppercase_hosts_are_normalised() {
    let mut facts = minimal_facts();
    facts.egress = vec![
        need("Example.COM", true),
        need("example.com.", false),
        need(" example.com ", true),
        need("API.Anthropic.com", false),
    ];
    let yaml = parse(&render(&["EXAMPLE.com".into()], &facts).unwrap());
    let allow = strings(at(&yaml, "api_allowlist"));
    assert_eq!(allow.iter().filter(|h| *h == "example.com").count(), 1);
    assert!(allow.iter().all(|h| *h == h.to_lowercase()));
    let passthrough = strings(at(&yaml, "tls_interception.passthrough_domains"));
    assert_eq!(passthrough, ["api.anthropic.com", "example.com"]);
}

#[test]
fn bad_cidr_is_an_error_diagnostic() {
    for cidr in [
        "",
        "nonsense",
        "172.30.0.0",
        "172.30.0.5/24",
        "0.0.0.0/0",
        "::/0",
        "10.0.0.0/33",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0.0/8\nmode: audit",
        "fd00::1/64",
    ] {
        let mut facts = minimal_facts();
        facts.internal_cidr = cidr.into();
        let errors = render(&[], &facts).unwrap_err();
        assert_eq!(errors.len(), 1, "{cidr:?}");
        assert!(matches!(errors[0].severity, sdk::Severity::Error));
        assert!(errors[0].message.contains("CIDR"), "{}", errors[0].message);
    }
}

#[test]
fn good_cidrs_are_accepted() {
    for cidr in ["172.30.0.0/24", "10.0.0.0/8", "10.1.2.3/32", "fd00:1::/64"] {
        assert_eq!(validate_cidr(cidr), Ok(()), "{cidr}");
    }
}

#[test]
fn hostile_hosts_are_error_diagnostics() {
    let hostile = [
        "*",
        "*.com",
        "",
        "evil.com\nmode: audit",
        "a b.com",
        "https://x.com",
        "x.com:443",
        "ex*ample.com",
        "..com",
    ];
    let mut facts = minimal_facts();
    facts.egress = hostile.iter().map(|h| need(h, false)).collect();
    facts.egress.push(need("*", true)); // also bad in passthrough: reported once
    let errors = render(&["*.org".into()], &facts).unwrap_err();
    assert_eq!(errors.len(), hostile.len() + 1);
    assert_eq!(errors[0].path, "egress.allowlist[0]");
    assert!(errors[1..].iter().all(|e| e.path.is_empty()));
}

#[test]
fn wildcards_of_concrete_domains_are_kept() {
    assert_eq!(
        normalize_host("*.GitHubUserContent.com").unwrap(),
        "*.githubusercontent.com"
    );
    assert!(normalize_host("*.co.uk").is_ok());
}

#[test]
fn patterns_pipelock_cannot_express_are_refused_with_the_reason() {
    // Valid in bottle's grammar, but pipelock reads `*` only as a leading `*.`.
    for pattern in ["registry.*.org", "*.*.example.com"] {
        let why = normalize_host(pattern).unwrap_err();
        assert!(why.contains("leading `*.`"), "{pattern}: {why}");
    }
    // Refused by the grammar itself, with its hint.
    let why = normalize_host("api-*.example.com").unwrap_err();
    assert!(why.contains("one whole label"), "{why}");
    assert_eq!(normalize_host(" Example.COM. ").unwrap(), "example.com");
}

// ---------------------------------------------------------------------------------------------
// against pipelock v2.3.0's reference

#[test]
fn every_rendered_key_is_one_pipelock_2_3_0_accepts() {
    let schema: serde_json::Value =
        serde_json::from_str(&reference("config-keys-v2.3.0.json")).unwrap();
    for facts in [typical_facts(), minimal_facts()] {
        let yaml = parse(&render(&["*.pypi.org".into()], &facts).unwrap());
        let mut problems = Vec::new();
        walk_keys(&yaml, &schema, "", &mut problems);
        assert!(
            problems.is_empty(),
            "keys pipelock v2.3.0 rejects: {problems:#?}"
        );
    }
}

#[test]
fn key_walker_accepts_shipped_presets_and_rejects_typos() {
    let schema: serde_json::Value =
        serde_json::from_str(&reference("config-keys-v2.3.0.json")).unwrap();
    for preset in ["strict.yaml", "claude-code.yaml", "balanced.yaml"] {
        let yaml = parse(&reference(&format!("configs/{preset}")));
        let mut problems = Vec::new();
        walk_keys(&yaml, &schema, "", &mut problems);
        assert!(problems.is_empty(), "{preset}: {problems:#?}");
    }
    let typo = parse("forward_proxy:\n  enable: true\ndlp:\n  patterns:\n    - nam: x\n");
    let mut problems = Vec::new();
    walk_keys(&typo, &schema, "", &mut problems);
    assert_eq!(problems, ["forward_proxy.enable", "dlp.patterns[0].nam"]);
}

#[test]
fn rendered_values_have_the_documented_types_and_enums() {
    let doc = reference("configuration.md");
    let yaml = parse(&render(&[], &typical_facts()).unwrap());
    // configuration.md, "Top-Level Fields": version int 1; mode strict/balanced/audit; enforce bool.
    assert!(doc.contains(r#"mode: balanced                # "strict", "balanced", or "audit""#));
    assert_eq!(at(&yaml, "version").as_u64(), Some(1));
    assert_enum(&yaml, "mode", &["strict", "balanced", "audit"], "strict");
    // "Request Body Scanning": action warn|block, header_mode sensitive|all.
    assert!(doc.contains("`warn` logs only, `block` rejects"));
    assert!(doc.contains(r#"header_mode: sensitive    # "sensitive" (listed headers) or "all""#));
    assert_enum(
        &yaml,
        "request_body_scanning.action",
        &["warn", "block"],
        "block",
    );
    assert_enum(
        &yaml,
        "request_body_scanning.header_mode",
        &["sensitive", "all"],
        "all",
    );
    // "Logging": format json|text, output stdout|file|both.
    assert!(doc.contains("| `format` | `\"json\"` | json or text |"));
    assert!(doc.contains("| `output` | `\"stdout\"` | stdout, file, or both |"));
    assert_enum(&yaml, "logging.format", &["json", "text"], "json");
    assert_enum(
        &yaml,
        "logging.output",
        &["stdout", "file", "both"],
        "stdout",
    );
    for key in BOOLEAN_KEYS {
        assert!(at(&yaml, key).is_bool(), "{key} must be a boolean");
    }
    assert_eq!(at(&yaml, "sentry.enabled").as_bool(), Some(false));
    assert_eq!(at(&yaml, "enforce").as_bool(), Some(true));
}

#[test]
fn rendered_lists_and_addresses_have_the_documented_shapes() {
    let yaml = parse(&render(&[], &typical_facts()).unwrap());
    for key in [
        "api_allowlist",
        "tls_interception.passthrough_domains",
        "ssrf.ip_allowlist",
    ] {
        let list = at(&yaml, key)
            .as_sequence()
            .unwrap_or_else(|| panic!("{key} not a list"));
        assert!(
            !list.is_empty() && list.iter().all(Value::is_string),
            "{key}"
        );
    }
    assert_eq!(strings(at(&yaml, "ssrf.ip_allowlist")), ["172.30.0.0/24"]);
    assert_eq!(
        at(&yaml, "fetch_proxy.listen").as_str(),
        Some("0.0.0.0:8888")
    );
    for key in ["tls_interception.ca_cert", "tls_interception.ca_key"] {
        assert!(
            at(&yaml, key).as_str().unwrap().starts_with('/'),
            "{key} must be absolute"
        );
    }
}

/// Keys whose documented type is bool.
const BOOLEAN_KEYS: [&str; 9] = [
    "enforce",
    "forward_proxy.enabled",
    "forward_proxy.sni_verification",
    "tls_interception.enabled",
    "request_body_scanning.enabled",
    "request_body_scanning.scan_headers",
    "logging.include_allowed",
    "logging.include_blocked",
    "sentry.enabled",
];

// ---------------------------------------------------------------------------------------------
// helpers

/// Check `yaml` at `key` is `expected` and among the documented `allowed` values.
fn assert_enum(yaml: &Value, key: &str, allowed: &[&str], expected: &str) {
    let value = at(yaml, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key} not a string"));
    assert!(
        allowed.contains(&value),
        "{key}: {value} not in {allowed:?}"
    );
    assert_eq!(value, expected, "{key}");
}

/// Record every key of `yaml` the key tree `schema` lacks. An object schema node is a section, or
/// a list of records with those keys; a `null` node is a leaf of the key tree (a scalar or a list
/// or map of scalars, though `redaction`, whose keys the tree does not expand, is also `null`), so
/// nothing below it can be checked here.
fn walk_keys(yaml: &Value, schema: &serde_json::Value, path: &str, problems: &mut Vec<String>) {
    let serde_json::Value::Object(keys) = schema else {
        return;
    };
    match yaml {
        Value::Mapping(map) => {
            for (key, value) in map {
                let name = key.as_str().unwrap_or("<non-string key>");
                let child = join(path, name);
                match keys.get(name) {
                    Some(sub) => walk_keys(value, sub, &child, problems),
                    None => problems.push(child),
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_keys(item, schema, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Null => {}
        _ => problems.push(format!("{path}: a scalar where pipelock expects a section")),
    }
}

/// `a.b` from a parent path and a key.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The value at a dotted path.
fn at<'a>(yaml: &'a Value, dotted: &str) -> &'a Value {
    dotted.split('.').fold(yaml, |value, key| {
        value
            .get(key)
            .unwrap_or_else(|| panic!("{dotted}: no `{key}`"))
    })
}

/// A YAML list of strings.
fn strings(value: &Value) -> Vec<String> {
    let list = value.as_sequence().expect("a list");
    list.iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// Parse YAML text.
fn parse(text: &str) -> Value {
    yaml_serde::from_str(text).expect("valid YAML")
}

/// A file of pipelock's v2.3.0 reference data, kept in the plugin's `reference/` directory.
fn reference(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "pipelock reference data {} is missing ({e}): it ships in the repository, see \
             plugins/pipelock/README.md",
            path.display()
        )
    })
}

/// Compare `rendered` with `tests/golden/<name>.yaml`; `BOTTLE_BLESS=1` rewrites the file instead.
fn check_golden(name: &str, rendered: &str) {
    let path = golden_path(name);
    if std::env::var("BOTTLE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, rendered).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} unreadable ({e}); run with BOTTLE_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        rendered == expected,
        "{} differs from the rendering; review, then run with BOTTLE_BLESS=1 to accept:\n{rendered}",
        path.display()
    );
}

/// Where a golden file lives.
fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.yaml"))
}

/// Plan for an active config.
fn plan_for(config: &str) -> Contribution {
    <Pipelock as Guest>::plan(config.into(), context())
        .unwrap()
        .expect("pipelock is active")
}

/// A plan context.
fn context() -> PlanContext {
    PlanContext {
        bottle: "b".into(),
        agent: "a".into(),
        secrets: Vec::new(),
        plugins: Vec::new(),
        properties: Vec::new(),
    }
}

/// An egress need.
fn need(host: &str, credentialed: bool) -> EgressNeed {
    EgressNeed {
        credentialed,
        ..sdk::egress(host, "test")
    }
}

/// A sidecar fact with one alias, its name.
fn sidecar(name: &str, plugin: &str) -> SidecarFact {
    SidecarFact {
        name: name.into(),
        plugin: plugin.into(),
        aliases: vec![name.into()],
        port: None,
        roles: Vec::new(),
    }
}

/// Facts as the host would give them for a bottle with credential routes, a manifest allowlist, a
/// plugin need, a pinned host and three sidecars.
fn typical_facts() -> Facts {
    let mut egress: Vec<EgressNeed> = render::CLAUDE_HOSTS
        .iter()
        .map(|h| sdk::egress(h, "Claude Code"))
        .collect();
    egress.extend([
        sdk::egress("*.PyPI.org", "manifest allowlist"),
        sdk::egress("registry.npmjs.org", "manifest allowlist"),
        sdk::egress("*.githubusercontent.com", "manifest allowlist"),
        EgressNeed {
            credentialed: true,
            ..sdk::egress("api.github.com", "route github")
        },
        EgressNeed {
            credentialed: true,
            ..sdk::egress("API.GitHub.com", "route github (duplicate)")
        },
        EgressNeed {
            credentialed: true,
            ..sdk::egress("uploads.github.com", "route github uploads")
        },
        EgressNeed {
            passthrough: true,
            ..sdk::egress("pinned.example.net", "certificate-pinned service")
        },
        sdk::egress("mcp.example.com", "plugin remote-mcp"),
    ]);
    Facts {
        internal_cidr: "172.30.0.0/24".into(),
        sidecars: vec![
            sidecar("egress-proxy", "egress-proxy"),
            sidecar("pipelock", "pipelock"),
            sidecar("supervise", "supervise"),
        ],
        egress,
        agent_proxy: Some("http://egress-proxy:3128".into()),
        upstream_proxy: Some("http://pipelock:8888".into()),
        cas: Vec::new(),
        properties: Vec::new(),
    }
}

/// Facts with nothing but pipelock itself and an internal network.
fn minimal_facts() -> Facts {
    Facts {
        internal_cidr: "10.89.0.0/24".into(),
        sidecars: vec![sidecar("pipelock", "pipelock")],
        egress: Vec::new(),
        agent_proxy: Some("http://pipelock:8888".into()),
        upstream_proxy: None,
        cas: Vec::new(),
        properties: Vec::new(),
    }
}
