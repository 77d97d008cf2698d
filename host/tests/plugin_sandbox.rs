//! The plugin sandbox against real components: the built-ins and a deliberately hostile plugin
//! (`tests/plugins/hostile`), each misbehaviour a clean error that names the plugin.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use bottle::plan::model::{AgentPlan, ImagePlan, NetworkKind, Plan, SidecarPlan};
use bottle::plan::{DRY_RUN_CIDR, PlanError, PlanInput, assemble};
use bottle::plugin::builtin::BUILD_PLUGIN_DIR;
use bottle::plugin::{PluginRuntime, PluginSource, Registry, RuntimeLimits};
use serde_json::json;

/// One cache directory for the whole test binary, so each component is compiled once.
fn cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_owned()
}

fn registry_with_hostile() -> Registry {
    registry_with_hostile_under(RuntimeLimits::default())
}

fn registry_with_hostile_under(limits: RuntimeLimits) -> Registry {
    let runtime = PluginRuntime::new(Some(cache_dir()), limits).unwrap();
    let mut registry = Registry::load(runtime, None).unwrap();
    let path = PathBuf::from(BUILD_PLUGIN_DIR).join("test-hostile.wasm");
    let wasm = std::fs::read(&path).unwrap();
    registry.add(PluginSource::File(path), None, &wasm).unwrap();
    registry
}

fn input(mode: &str) -> PlanInput {
    let mut sections = serde_json::Map::new();
    sections.insert("test_hostile".into(), json!({ "mode": mode }));
    PlanInput {
        bottle: "test".into(),
        agent: AgentPlan {
            name: "agent".into(),
            image: ImagePlan::Context("agent".into()),
            command: vec!["true".into()],
            env: Vec::new(),
            files: Vec::new(),
            no_proxy: Vec::new(),
            provision: Vec::new(),
            skills: Vec::new(),
            prompt: String::new(),
            limits: Default::default(),
        },
        secrets: BTreeSet::from(["DECLARED".to_owned()]),
        sections,
        allowlist: Vec::new(),
        runtime: "auto".into(),
        internal_cidr: DRY_RUN_CIDR.into(),
        ca_fingerprints: Default::default(),
        grants: Default::default(),
    }
}

/// Plan with the hostile plugin in `mode`; the error text.
fn hostile_error(mode: &str) -> String {
    hostile_error_under(mode, RuntimeLimits::default())
}

fn hostile_error_under(mode: &str, limits: RuntimeLimits) -> String {
    let mut registry = registry_with_hostile_under(limits);
    let started = Instant::now();
    let err = assemble(&mut registry, &input(mode)).expect_err(mode);
    eprintln!("{mode}: failed in {:?}: {err}", started.elapsed());
    let text = err.to_string();
    assert!(
        text.contains("plugin `test-hostile`"),
        "{mode}: error does not name the plugin: {text}"
    );
    text
}

#[test]
fn a_well_behaved_run_of_the_hostile_plugin_plans() {
    let mut registry = registry_with_hostile();
    let plan = assemble(&mut registry, &input("ok")).unwrap();
    assert!(
        plan.sidecars
            .iter()
            .any(|s| s.name == "hostile-a" && s.plugin == "test-hostile")
    );
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline() {
    // Fuel to spare: the clock stops it.
    let limits = RuntimeLimits {
        call_fuel: u64::MAX / 2,
        ..RuntimeLimits::default()
    };
    let text = hostile_error_under("loop", limits);
    assert!(text.contains("time limit"), "{text}");
    let text = hostile_error_under("finalize-loop", limits);
    assert!(text.contains("time limit"), "{text}");
}

#[test]
fn infinite_loop_is_stopped_when_its_fuel_runs_out() {
    // Time to spare: the fuel budget stops it, however fast or slow the machine.
    let limits = RuntimeLimits {
        call_fuel: 50_000_000,
        call_deadline: std::time::Duration::from_secs(60),
        ..RuntimeLimits::default()
    };
    for mode in ["loop", "finalize-loop"] {
        let text = hostile_error_under(mode, limits);
        assert!(text.contains("fuel budget of 50000000"), "{text}");
    }
}

#[test]
fn memory_bomb_hits_the_cap() {
    let text = hostile_error("memory");
    assert!(text.contains("memory limit of 64 MiB"), "{text}");
}

#[test]
fn panic_is_a_crash() {
    let text = hostile_error("panic");
    assert!(text.contains("crashed"), "{text}");
    assert!(
        text.contains("the hostile plugin panics on purpose"),
        "{text}"
    );
}

#[test]
fn huge_output_is_refused() {
    // The size check is under test, not the clock: building 24 MiB under fuel metering on a busy
    // machine may take longer than the default deadline.
    let limits = RuntimeLimits {
        call_deadline: std::time::Duration::from_secs(60),
        ..RuntimeLimits::default()
    };
    let text = hostile_error_under("huge", limits);
    assert!(text.contains("more than 8 MiB"), "{text}");
}

#[test]
fn a_call_returning_more_than_16_mib_is_refused_with_the_plugins_name() {
    let limits = RuntimeLimits {
        call_deadline: std::time::Duration::from_secs(60),
        ..RuntimeLimits::default()
    };
    // Positive control: 12 MiB comes back and reaches validation (refused there for its files).
    let text = hostile_error_under("huge", limits);
    assert!(!text.contains("a call may return"), "{text}");
    let text = hostile_error_under("huge-return", limits);
    assert!(
        text.contains("more than the 16 MiB a call may return"),
        "{text}"
    );
}

#[test]
fn path_traversal_is_refused() {
    let text = hostile_error("traversal");
    assert!(text.contains("`..` segment"), "{text}");
    assert!(text.contains("/etc/../root/.ssh/authorized_keys"), "{text}");
}

#[test]
fn newline_in_env_value_is_refused() {
    let text = hostile_error("newline");
    assert!(
        text.contains("the value of `EVIL` contains a newline"),
        "{text}"
    );
}

#[test]
fn start_order_cycle_is_named() {
    let mut registry = registry_with_hostile();
    let err = assemble(&mut registry, &input("cycle")).unwrap_err();
    assert!(matches!(err, PlanError::Cycle(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("hostile-a → hostile-b → hostile-a"), "{text}");
}

#[test]
fn undeclared_secret_is_refused() {
    let text = hostile_error("undeclared-secret");
    assert!(
        text.contains("secret `NOT_DECLARED`, which the bottle does not declare"),
        "{text}"
    );
}

#[test]
fn host_file_not_named_by_the_manifest_is_refused() {
    let text = hostile_error("unnamed-host-file");
    assert!(text.contains("/etc/shadow"), "{text}");
    assert!(text.contains("does not grant"), "{text}");
    assert!(text.contains("- \"host-path: /etc/shadow\""), "{text}");
}

#[test]
fn requests_beyond_the_defaults_need_a_grant_and_show_the_line_to_add() {
    for (mode, line) in [
        ("ungranted-egress", "egress: paste.example"),
        ("declared-secret", "secret: DECLARED"),
        ("publish-port", "publish-port: 5432"),
    ] {
        let text = hostile_error(mode);
        assert!(text.contains("plugin `test-hostile`"), "{mode}: {text}");
        assert!(
            text.contains("grants:\n    test-hostile:"),
            "{mode}: {text}"
        );
        assert!(text.contains(&format!("- \"{line}\"")), "{mode}: {text}");
    }
}

#[test]
fn granted_requests_pass_and_are_recorded_in_the_plan() {
    for (mode, kind, value) in [
        ("ungranted-egress", "egress", "*.example"),
        ("declared-secret", "secret", "DECLARED"),
        ("publish-port", "publish-port", "5432"),
    ] {
        let mut registry = registry_with_hostile();
        let mut input = input(mode);
        let mut grants = vec![grant(kind, value)];
        if mode == "publish-port" {
            // A published port is reached from the host's side: the sidecar is on the egress
            // network, which is a grant of its own.
            grants.push(grant("network", "egress"));
        }
        input.grants.by_plugin.insert("test-hostile".into(), grants);
        let plan =
            bottle::plan::assemble(&mut registry, &input).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(
            plan.grants
                .iter()
                .any(|g| g.plugin == "test-hostile" && g.kind == kind),
            "{mode}: {:?}",
            plan.grants
        );
        if mode == "publish-port" {
            let sidecar = plan
                .sidecars
                .iter()
                .find(|s| s.name == "hostile-a")
                .unwrap();
            assert_eq!(sidecar.published_ports, [5432]);
        }
    }
}

#[test]
fn grants_for_a_plugin_that_is_not_loaded_are_an_error() {
    let mut registry = registry_with_hostile();
    let mut input = input("none");
    input
        .grants
        .by_plugin
        .insert("test-hostle".into(), Vec::new());
    let text = bottle::plan::assemble(&mut registry, &input)
        .unwrap_err()
        .to_string();
    assert!(text.contains("did you mean `test-hostile`"), "{text}");
}

#[test]
fn finalize_may_not_write_into_another_plugins_sidecar() {
    let text = hostile_error("foreign-target");
    assert!(
        text.contains("targets sidecar `egress-proxy`, which this plugin did not add"),
        "{text}"
    );
}

#[test]
fn a_component_that_is_not_a_plugin_is_refused_with_its_path() {
    let runtime = PluginRuntime::new(None, RuntimeLimits::default()).unwrap();
    let mut registry = Registry::new(runtime);
    let path = PathBuf::from("/plugins/garbage.wasm");
    let Err(err) = registry.add(PluginSource::File(path), None, b"\0asm garbage") else {
        panic!("garbage loaded as a plugin");
    };
    let text = err.to_string();
    assert!(
        text.contains("plugin `/plugins/garbage.wasm`: not a valid bottle plugin component"),
        "{text}"
    );
}

#[test]
fn precompiled_components_are_cached_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cold = Registry::load(
        PluginRuntime::new(Some(dir.path().into()), RuntimeLimits::default()).unwrap(),
        None,
    )
    .unwrap();
    assert!(cold.plugins().iter().all(|p| !p.cached));
    let warm = Registry::load(
        PluginRuntime::new(Some(dir.path().into()), RuntimeLimits::default()).unwrap(),
        None,
    )
    .unwrap();
    assert!(warm.plugins().iter().all(|p| p.cached));
    let names: Vec<&str> = warm
        .plugins()
        .iter()
        .map(|p| p.description.name.as_str())
        .collect();
    assert_eq!(names, ["pipelock", "egress-proxy", "git-gate", "supervise"]);
}

#[test]
fn a_third_party_sidecar_cannot_take_a_security_role() {
    let text = hostile_error("firewall-role");
    assert!(
        text.contains("offers the role `egress-firewall`, which only bottle's built-in security sidecars may fill"),
        "{text}"
    );
}

#[test]
fn a_plugins_reason_reaches_the_operator_escaped() {
    // Refused without a grant: the refusal quotes the reason, escaped.
    let text = hostile_error("terminal-reason");
    assert!(text.contains("asks to reach `paste.example`"), "{text}");
    assert!(
        text.contains("fetch\\u001b[2J\\u000ddocs \\u202e"),
        "{text}"
    );
    assert!(!text.contains(['\u{1b}', '\r', '\u{202e}']), "{text:?}");

    // Granted: the dry run shows the reason, escaped, beside the host it explains.
    let mut registry = registry_with_hostile();
    let mut input = input("terminal-reason");
    input.grants.by_plugin.insert(
        "test-hostile".into(),
        vec![bottle_manifest::grants::Grant {
            kind: "egress".into(),
            value: "paste.example".into(),
        }],
    );
    let plan = bottle::plan::assemble(&mut registry, &input).unwrap();
    let shown = bottle::render::dry_run(&plan);
    let line = shown
        .lines()
        .find(|l| l.contains("paste.example —"))
        .unwrap_or_else(|| panic!("no allowlist line for the host:\n{shown}"));
    assert!(
        line.contains("test-hostile: fetch\\u001b[2J\\u000ddocs"),
        "{line}"
    );
    assert!(!shown.contains(['\u{1b}', '\r', '\u{202e}']), "{shown:?}");
}

fn grant(kind: &str, value: &str) -> bottle_manifest::grants::Grant {
    bottle_manifest::grants::Grant {
        kind: kind.into(),
        value: value.into(),
    }
}

fn hostile_sidecar(plan: &Plan) -> &SidecarPlan {
    plan.sidecars
        .iter()
        .find(|s| s.name == "hostile-a")
        .expect("the hostile sidecar is in the plan")
}

/// Each contribution that needs a grant: the hostile mode asking for it, the manifest line that
/// grants it, and how to see in the plan that it was taken.
type Seen = fn(&Plan) -> bool;
const NEEDS_A_GRANT: &[(&str, &str, Seen)] = &[
    ("egress-network", "network: egress", |p| {
        hostile_sidecar(p).networks.contains(&NetworkKind::Egress)
    }),
    ("ca-cert", "ca: agent", |p| {
        hostile_sidecar(p)
            .cas
            .iter()
            .any(|c| c.ca == "agent" && c.key_path.is_none())
    }),
    ("host-state", "state: supervise-queue", |p| {
        hostile_sidecar(p)
            .mounts
            .iter()
            .any(|m| m.state_dir == "supervise-queue")
    }),
    ("agent-env", "agent-env: ANTHROPIC_BASE_URL", |p| {
        p.agent.env.iter().any(|e| e.name == "ANTHROPIC_BASE_URL")
    }),
    ("agent-file", "agent-file: /home/agent/.bashrc", |p| {
        p.agent
            .files
            .iter()
            .any(|f| f.path == "/home/agent/.bashrc")
    }),
    ("provision", "provision: install hooks", |p| {
        p.agent.provision.iter().any(|s| s.name == "install hooks")
    }),
    ("passthrough", "passthrough: files.example", |p| {
        p.egress
            .iter()
            .any(|h| h.host == "files.example" && h.passthrough)
    }),
    ("credentialed", "passthrough: files.example", |p| {
        p.egress
            .iter()
            .any(|h| h.host == "files.example" && h.credentialed)
    }),
    (
        "finalize-agent-env",
        "agent-env: HTTPS_PROXY_OVERRIDE_BASE_URL",
        |p| {
            p.agent
                .env
                .iter()
                .any(|e| e.name == "HTTPS_PROXY_OVERRIDE_BASE_URL")
        },
    ),
    (
        "finalize-agent-file",
        "agent-file: /home/agent/.claude",
        |p| {
            p.agent
                .files
                .iter()
                .any(|f| f.path == "/home/agent/.claude/settings.json")
        },
    ),
];

/// The hostile plugin's input with `files.example` on the allowlist: reaching it is granted, so
/// what the passthrough modes are refused for is skipping inspection, not the host.
fn sandbox_input(mode: &str, grants: &[&str]) -> PlanInput {
    let mut input = input(mode);
    input.allowlist = vec!["files.example".into()];
    input.grants.allowlist = input.allowlist.clone();
    let grants = grants
        .iter()
        .map(|line| {
            let (kind, value) = line.split_once(": ").unwrap();
            grant(kind, value)
        })
        .collect();
    input.grants.by_plugin.insert("test-hostile".into(), grants);
    input
}

#[test]
fn each_sandbox_contribution_is_refused_without_its_grant() {
    for (mode, line, _) in NEEDS_A_GRANT {
        let mut registry = registry_with_hostile();
        let text = assemble(&mut registry, &sandbox_input(mode, &[]))
            .expect_err(mode)
            .to_string();
        assert!(text.contains("plugin `test-hostile`"), "{mode}: {text}");
        assert!(text.contains("does not grant"), "{mode}: {text}");
        let (kind, _) = line.split_once(": ").unwrap();
        let add = format!("grants:\n    test-hostile:\n      - \"{kind}: ");
        assert!(text.contains(&add), "{mode}: {text}");
    }
}

#[test]
fn each_sandbox_contribution_is_taken_with_its_grant() {
    for (mode, line, seen) in NEEDS_A_GRANT {
        let mut registry = registry_with_hostile();
        let plan = assemble(&mut registry, &sandbox_input(mode, &[*line]))
            .unwrap_or_else(|e| panic!("{mode} with `{line}`: {e}"));
        assert!(seen(&plan), "{mode}: not in the plan");
        let (kind, _) = line.split_once(": ").unwrap();
        assert!(
            plan.grants
                .iter()
                .any(|g| g.plugin == "test-hostile" && g.kind == kind),
            "{mode}: {:?}",
            plan.grants
        );
    }
}

#[test]
fn the_refusal_names_the_exact_line_to_add() {
    for (mode, line) in [
        ("egress-network", "network: egress"),
        ("ca-cert", "ca: agent"),
        ("host-state", "state: supervise-queue"),
        ("agent-env", "agent-env: ANTHROPIC_BASE_URL"),
        ("agent-file", "agent-file: /home/agent/.bashrc"),
        ("provision", "provision: install hooks"),
        ("passthrough", "passthrough: files.example"),
        (
            "finalize-agent-file",
            "agent-file: /home/agent/.claude/settings.json",
        ),
    ] {
        let mut registry = registry_with_hostile();
        let text = assemble(&mut registry, &sandbox_input(mode, &[]))
            .expect_err(mode)
            .to_string();
        assert!(text.contains(&format!("- \"{line}\"")), "{mode}: {text}");
    }
}

#[test]
fn an_allowlisted_host_is_not_a_passthrough() {
    // Positive control: the same host without the passthrough flag is granted by the allowlist.
    let mut registry = registry_with_hostile();
    let plan = assemble(&mut registry, &sandbox_input("ok", &[])).unwrap();
    assert!(
        plan.egress
            .iter()
            .any(|h| h.host == "files.example" && !h.passthrough)
    );
    let mut registry = registry_with_hostile();
    let text = assemble(
        &mut registry,
        &sandbox_input("passthrough", &["egress: files.example"]),
    )
    .expect_err("passthrough")
    .to_string();
    assert!(text.contains("to pass uninspected"), "{text}");
}

#[test]
fn a_ca_private_key_is_never_accepted_even_with_a_grant() {
    // Positive control: the certificate alone is accepted with `ca: agent`.
    let mut registry = registry_with_hostile();
    assemble(&mut registry, &sandbox_input("ca-cert", &["ca: agent"])).unwrap();
    // A `ca-key` line cannot be written in a manifest; put it in the table directly anyway.
    for grants in [&["ca: agent"][..], &["ca: agent", "ca-key: agent"][..]] {
        let mut registry = registry_with_hostile();
        let text = assemble(&mut registry, &sandbox_input("ca-key", grants))
            .expect_err("ca-key")
            .to_string();
        assert!(text.contains("plugin `test-hostile`"), "{text}");
        assert!(
            text.contains("private key, which no plugin but bottle's built-in egress proxy"),
            "{text}"
        );
        assert!(!text.contains("add to the bottle manifest"), "{text}");
    }
}

#[test]
fn state_is_namespaced_per_plugin() {
    let mut registry = registry_with_hostile();
    let plan = assemble(&mut registry, &sandbox_input("own-state", &[])).unwrap();
    let dirs: Vec<&str> = hostile_sidecar(&plan)
        .mounts
        .iter()
        .map(|m| m.state_dir.as_str())
        .collect();
    assert_eq!(dirs, ["plugins/test-hostile/data"]);
}

#[test]
fn a_plugins_own_agent_area_needs_no_grant() {
    let mut registry = registry_with_hostile();
    let plan = assemble(&mut registry, &sandbox_input("own-agent-file", &[])).unwrap();
    assert!(
        plan.agent
            .files
            .iter()
            .any(|f| f.path == "/opt/bottle/plugins/test-hostile/notes.txt")
    );
}

/// Load only the hostile plugin under `limits`; the error text when it is refused.
fn hostile_load_error(limits: RuntimeLimits, cache: Option<PathBuf>) -> String {
    let mut registry = Registry::new(PluginRuntime::new(cache, limits).unwrap());
    let path = PathBuf::from(BUILD_PLUGIN_DIR).join("test-hostile.wasm");
    let wasm = std::fs::read(&path).unwrap();
    match registry.add(PluginSource::File(path), None, &wasm) {
        Ok(_) => panic!("loaded under {limits:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_store_counts_bound_what_a_plugin_instantiates() {
    // Positive control: under the default limits it loads (and plans, see the test above).
    let mut registry = Registry::new(PluginRuntime::new(None, RuntimeLimits::default()).unwrap());
    let path = PathBuf::from(BUILD_PLUGIN_DIR).join("test-hostile.wasm");
    registry
        .add(
            PluginSource::File(path),
            None,
            &std::fs::read(PathBuf::from(BUILD_PLUGIN_DIR).join("test-hostile.wasm")).unwrap(),
        )
        .unwrap();
    for (limits, says) in [
        (
            RuntimeLimits {
                instances: 1,
                ..RuntimeLimits::default()
            },
            "instance count too high",
        ),
        (
            RuntimeLimits {
                memories: 0,
                ..RuntimeLimits::default()
            },
            "memory count too high",
        ),
        (
            RuntimeLimits {
                tables: 0,
                ..RuntimeLimits::default()
            },
            "table count too high",
        ),
        (
            RuntimeLimits {
                table_elements: 0,
                ..RuntimeLimits::default()
            },
            "a table grew past",
        ),
    ] {
        let text = hostile_load_error(limits, Some(cache_dir()));
        assert!(text.contains("test-hostile"), "{text}");
        assert!(text.contains(says), "{says}: {text}");
        assert!(
            text.contains("needs more than its sandbox allows"),
            "{text}"
        );
    }
}

#[test]
fn a_component_too_large_to_compile_is_refused() {
    let text = hostile_load_error(
        RuntimeLimits {
            component_bytes: 1024,
            ..RuntimeLimits::default()
        },
        None,
    );
    assert!(text.contains("test-hostile.wasm"), "{text}");
    assert!(
        text.contains("more than the 1024 bytes bottle compiles"),
        "{text}"
    );
}

#[test]
fn a_compile_past_its_deadline_is_abandoned() {
    // No cache: the component must really be compiled.
    let text = hostile_load_error(
        RuntimeLimits {
            compile_deadline: std::time::Duration::from_millis(1),
            ..RuntimeLimits::default()
        },
        None,
    );
    assert!(text.contains("test-hostile.wasm"), "{text}");
    assert!(text.contains("did not compile within 1ms"), "{text}");
}

#[test]
fn a_component_file_over_the_cap_is_refused_before_it_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.wasm");
    std::fs::write(&path, vec![0u8; 2048]).unwrap();
    let runtime = |cap| {
        PluginRuntime::new(
            None,
            RuntimeLimits {
                component_bytes: cap,
                ..RuntimeLimits::default()
            },
        )
        .unwrap()
    };
    // Positive control: under a cap it fits, it is read.
    assert_eq!(runtime(4096).read_component(&path).unwrap().len(), 2048);
    let text = runtime(1024).read_component(&path).unwrap_err().to_string();
    assert!(text.contains("big.wasm"), "{text}");
    assert!(
        text.contains("is 2048 bytes, more than the 1024 bytes bottle compiles"),
        "{text}"
    );
}
