use serde_json::{Value, json};

use super::*;
use sdk::{EnvValue, EnvVar, Facts, Guest, MountSource, OrderRef, Probe};

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC7examplekey";

/// Three repositories: two on example.com port 22 (one written scp-like, sharing the host key and
/// an extra host), one on an internal server off port 22 with a key comment and odd spacing.
fn config() -> String {
    json!({"git": [
        {
            "Name": "app",
            "Upstream": "ssh://git@example.com:22/org/app.git",
            "upstream": {"user": "git", "host": "example.com", "port": 22, "path": "/org/app.git"},
            "IdentityFile": "/home/u/.ssh/id_ed25519",
            "KnownHostKey": ED25519,
            "ExtraHosts": {"example.com": "10.1.2.3"},
            "protected": ["main", "release/*"],
            "allow_force_push": false,
            "allowed_refs": [],
            "allow_delete": false
        },
        {
            "Name": "lib",
            "Upstream": "git@example.com:org/lib.git",
            "upstream": {"user": "git", "host": "example.com", "port": null, "path": "/org/lib.git"},
            "IdentityFile": "~/.ssh/id_ed25519",
            "KnownHostKey": ED25519,
            "ExtraHosts": {"example.com": "10.1.2.3"}
        },
        {
            "Name": "tools",
            "Upstream": "ssh://gitea@Git.Internal:2222/infra/tools.git",
            "upstream": {"user": "gitea", "host": "Git.Internal", "port": 2222, "path": "/infra/tools.git"},
            "IdentityFile": "/keys/tools",
            "KnownHostKey": format!("  {RSA}   ci@internal \n"),
            "ExtraHosts": {"git.internal": "fd00::7"},
            "protected": [],
            "allow_force_push": true,
            "allowed_refs": ["refs/heads/agent/*"],
            "allow_delete": true,
            "allow_ci_changes": true
        }
    ]})
    .to_string()
}

#[test]
fn describe_names_the_section() {
    let info = <GitGate as Guest>::describe();
    assert_eq!(info.name, "git-gate");
    assert_eq!(info.sections, ["git"]);
    assert!(info.roles.is_empty());
}

#[test]
fn inactive_without_repositories() {
    for config in ["{}", r#"{"git": []}"#, r#"{"git": null}"#] {
        let plan = <GitGate as Guest>::plan(config.into(), context()).unwrap();
        assert!(plan.is_none(), "{config}");
    }
}

#[test]
fn unreadable_config_is_a_diagnostic() {
    let errors =
        <GitGate as Guest>::plan(r#"{"git": [{"Name": "x"}]}"#.into(), context()).unwrap_err();
    assert!(errors[0].message.contains("cannot read"), "{errors:?}");
}

#[test]
fn plan_matches_golden() {
    bottle_plugin_sdk::assert_golden!("plan.yaml", &plan_yaml(&plan(&config()).unwrap()));
}

#[test]
fn files_match_golden() {
    let plan = plan(&config()).unwrap();
    let sidecar = &plan.sidecars[0];
    bottle_plugin_sdk::assert_golden!("git-gate.yaml", &contents(&sidecar.files, CONFIG_PATH));
    bottle_plugin_sdk::assert_golden!("known_hosts", &contents(&sidecar.files, KNOWN_HOSTS_PATH));
    bottle_plugin_sdk::assert_golden!("gitconfig", &contents(&plan.agent.files, AGENT_GITCONFIG));
}

#[test]
fn sidecar_shape() {
    let plan = plan(&config()).unwrap();
    let sidecar = &plan.sidecars[0];
    assert_eq!(sidecar.name, "git-gate");
    assert!(matches!(&sidecar.image, Image::Context(c) if c == "git-gate"));
    assert_eq!(
        sidecar.command,
        [
            "bottle-git-gate",
            "serve",
            "--config",
            "/etc/bottle/git-gate.yaml"
        ]
    );
    assert!(matches!(
        sidecar.networks[..],
        [Network::Internal, Network::Egress]
    ));
    assert_eq!(sidecar.aliases, ["git-gate"]);
    assert_eq!(sidecar.port, Some(9418));
    assert!(matches!(
        sidecar.health.as_ref().unwrap().probe,
        Probe::Tcp(9418)
    ));
    let files: Vec<_> = sidecar
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode))
        .collect();
    assert_eq!(
        files,
        [
            ("/etc/bottle/git-gate.yaml", 0o644),
            ("/etc/bottle/git-gate/known_hosts", 0o644)
        ]
    );
    assert!(sidecar.env.is_empty() && sidecar.cas.is_empty() && sidecar.roles.is_empty());
    assert!(plan.egress.is_empty());
}

#[test]
fn identity_files_are_host_file_references() {
    let plan = plan(&config()).unwrap();
    let files: Vec<_> = plan.sidecars[0]
        .host_files
        .iter()
        .map(|f| (f.host_path.as_str(), f.path.as_str(), f.mode))
        .collect();
    assert_eq!(
        files,
        [
            (
                "/home/u/.ssh/id_ed25519",
                "/etc/bottle/git-gate/keys/app",
                0o600
            ),
            ("~/.ssh/id_ed25519", "/etc/bottle/git-gate/keys/lib", 0o600),
            ("/keys/tools", "/etc/bottle/git-gate/keys/tools", 0o600),
        ]
    );
}

#[test]
fn extra_hosts_are_merged() {
    let plan = plan(&config()).unwrap();
    let hosts: Vec<_> = plan.sidecars[0]
        .extra_hosts
        .iter()
        .map(|h| (h.host.as_str(), h.ip.as_str()))
        .collect();
    assert_eq!(
        hosts,
        [("example.com", "10.1.2.3"), ("git.internal", "fd00::7")]
    );
}

#[test]
fn agent_reaches_the_gate_directly() {
    let plan = plan(&config()).unwrap();
    assert_eq!(plan.agent.no_proxy, ["git-gate"]);
    assert!(plan.agent.env.is_empty());
    let file = &plan.agent.files[0];
    assert_eq!(
        (file.path.as_str(), file.mode),
        ("/home/agent/.gitconfig", 0o644)
    );
}

#[test]
fn known_hosts_uses_brackets_off_port_22() {
    let text = contents(
        &plan(&config()).unwrap().sidecars[0].files,
        KNOWN_HOSTS_PATH,
    );
    let lines: Vec<_> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            format!("example.com {ED25519}"),
            format!("[git.internal]:2222 {RSA} ci@internal"),
        ]
    );
}

#[test]
fn scp_like_spelling_only_on_port_22() {
    let repos = repos(&config());
    assert_eq!(
        repos[0].upstream_spellings(),
        [
            "ssh://git@example.com:22/org/app.git",
            "ssh://git@example.com/org/app.git",
            "git@example.com:org/app.git",
        ]
    );
    assert_eq!(
        repos[1].upstream_spellings(),
        [
            "git@example.com:org/lib.git",
            "ssh://git@example.com/org/lib.git",
            "ssh://git@example.com:22/org/lib.git",
        ]
    );
    assert_eq!(
        repos[2].upstream_spellings(),
        ["ssh://gitea@Git.Internal:2222/infra/tools.git"]
    );
    assert_eq!(repos[2].upstream.scp_like(), None);
}

#[test]
fn ipv6_upstream_is_bracketed_in_urls() {
    let repos = repos(
        &json!({"git": [{"Name": "v6", "Upstream": "ssh://[fd00::1]/r.git",
            "upstream": {"host": "fd00::1", "path": "/r.git"}, "IdentityFile": "k", "KnownHostKey": ED25519}]})
        .to_string(),
    );
    assert_eq!(
        repos[0].upstream_spellings(),
        [
            "ssh://[fd00::1]/r.git",
            "ssh://[fd00::1]:22/r.git",
            "[fd00::1]:r.git"
        ]
    );
    assert_eq!(repos[0].upstream.known_hosts_name(), "fd00::1");
}

#[test]
fn gitconfig_quotes_values_git_would_misread() {
    assert_eq!(value("git@host:org/app.git"), "git@host:org/app.git");
    assert_eq!(value("ssh://h/a#b"), "\"ssh://h/a#b\"");
    assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
}

#[test]
fn gate_config_round_trips() {
    let plan = plan(&config()).unwrap();
    let text = contents(&plan.sidecars[0].files, CONFIG_PATH);
    assert!(text.starts_with(HEADER));
    let back: GateConfig = yaml_serde::from_str(&text).unwrap();
    assert_eq!(back, gate_config(&repos(&config()), &[]));
    assert_eq!(
        back.repos[2].identity_file,
        "/etc/bottle/git-gate/keys/tools"
    );
    assert!(back.repos[2].policy.allow_force_push);
    assert_eq!(back.repos[0].policy.protected, ["main", "release/*"]);
}

#[test]
fn missing_key_material_is_refused() {
    let config = json!({"git": [{"Name": "app", "Upstream": "ssh://git@example.com/a.git",
        "upstream": {"user": "git", "host": "example.com", "port": 2200, "path": "/a.git"},
        "KnownHostKey": "example.com ssh-ed25519 AAAA"}]});
    let errors = plan(&config.to_string()).unwrap_err();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["git[0].IdentityFile", "git[0].KnownHostKey"]);
    let hint = errors[1].hint.as_deref().unwrap();
    assert!(hint.contains("ssh-keyscan -p 2200 example.com"), "{hint}");
}

#[test]
fn unsafe_values_are_refused() {
    let mut config: Value = serde_json::from_str(&config()).unwrap();
    config["git"][0]["Name"] = json!("../etc");
    config["git"][1]["Upstream"] = json!("git@example.com:org/lib.git\n[core]");
    config["git"][1]["KnownHostKey"] = json!(format!("{ED25519}\n@revoked * {RSA}"));
    config["git"][2]["ExtraHosts"] = json!({"git.internal": "not-an-ip"});
    let errors = plan(&config.to_string()).unwrap_err();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "git[0].Name",
            "git[1].Upstream",
            "git[1].KnownHostKey",
            "git[2].ExtraHosts.git.internal",
        ]
    );
}

#[test]
fn duplicates_are_refused() {
    let mut config: Value = serde_json::from_str(&config()).unwrap();
    config["git"][1]["Name"] = json!("app");
    config["git"][2]["Upstream"] = json!("ssh://git@example.com:22/org/app.git");
    config["git"][2]["ExtraHosts"] = json!({"Example.com": "10.9.9.9"});
    let errors = plan(&config.to_string()).unwrap_err();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "git[1].Name",
            "git[2].Upstream",
            "git[2].ExtraHosts.example.com"
        ]
    );
    assert!(errors[0].message.contains("git[0]"), "{errors:?}");
    assert!(errors[2].message.contains("10.1.2.3"), "{errors:?}");
}

#[test]
fn finalize_adds_nothing() {
    let facts = Facts {
        internal_cidr: "172.30.0.0/24".into(),
        sidecars: Vec::new(),
        egress: Vec::new(),
        agent_proxy: None,
        upstream_proxy: None,
        cas: Vec::new(),
        properties: Vec::new(),
    };
    let out = <GitGate as Guest>::finalize(config(), context(), facts).unwrap();
    assert!(out.files.is_empty() && out.env.is_empty());
}

// Helpers.

fn context() -> PlanContext {
    PlanContext {
        bottle: "demo".into(),
        agent: "claude".into(),
        secrets: Vec::new(),
        plugins: Vec::new(),
        properties: Vec::new(),
    }
}

fn repos(config: &str) -> Vec<RepoSpec> {
    serde_json::from_str::<Config>(config).unwrap().git
}

fn plan(config: &str) -> Result<Contribution, Vec<Diagnostic>> {
    <GitGate as Guest>::plan(config.into(), context()).map(|plan| plan.expect("active"))
}

fn contents(files: &[sdk::File], path: &str) -> String {
    let file = files.iter().find(|f| f.path == path).unwrap();
    String::from_utf8(file.contents.clone()).unwrap()
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
    let value = match &var.value {
        EnvValue::Literal(v) => format!("literal:{v}"),
        EnvValue::Secret(s) => format!("secret:{s}"),
    };
    json!(format!("{}={value}", var.name))
}

fn file_json(f: &sdk::File) -> Value {
    json!({"path": f.path, "mode": format!("{:o}", f.mode), "contents": String::from_utf8_lossy(&f.contents)})
}

#[test]
fn the_gate_gets_the_bottle_secrets_by_name_for_its_scan() {
    let mut context = context();
    context.secrets = vec!["GH_TOKEN".into()];
    let plan = <GitGate as Guest>::plan(config(), context)
        .unwrap()
        .unwrap();
    let sidecar = &plan.sidecars[0];
    assert!(
        matches!(&sidecar.env[..], [sdk::EnvVar { name, value: sdk::EnvValue::Secret(s) }] if name == "GH_TOKEN" && s == "GH_TOKEN")
    );
    let file = sidecar
        .files
        .iter()
        .find(|f| f.path == CONFIG_PATH)
        .unwrap();
    let text = String::from_utf8(file.contents.clone()).unwrap();
    assert!(text.contains("secret_env:\n- GH_TOKEN"), "{text}");
}
