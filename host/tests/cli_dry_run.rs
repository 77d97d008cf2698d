//! `bottle` as a user runs it: a real process, a temporary `BOTTLE_HOME`, manifests on disk.

mod cli_home;

use std::path::{Path, PathBuf};

use cli_home::{Home, SECRET_VALUE, json_plan, names, stderr_of_failure, stdout};
use serde_json::Value;

#[test]
fn with_no_manifests_the_embedded_default_is_planned() {
    let home = Home::new();
    let output = home.bottle(&["start", "--dry-run"]);
    let text = stdout(&output);
    assert!(String::from_utf8_lossy(&output.stderr).contains("embedded default agent `claude`"));
    assert!(
        text.contains("bottle `default` for agent `claude`"),
        "{text}"
    );
    assert!(
        text.contains(
            "6 hosts allowed (api.anthropic.com, statsig.anthropic.com, claude.ai, +3 more)"
        ),
        "{text}"
    );
    assert!(
        text.contains("sidecar `egress-proxy` (plugin egress-proxy)"),
        "{text}"
    );
    assert!(
        text.contains("    | listen: 0.0.0.0:9099"),
        "rendered files are shown in full: {text}"
    );
    let plan = json_plan(&home, None);
    assert_eq!(names(&plan["sidecars"]), ["egress-proxy"]);
    assert_eq!(plan["agent_proxy"], "http://egress-proxy:9099");
}

#[test]
fn all_four_plugins_contribute_in_start_order() {
    let home = Home::new();
    home.full();
    let plan = json_plan(&home, Some("dev"));
    assert_eq!(
        plan["stages"],
        serde_json::json!([["git-gate", "pipelock", "supervise"], ["egress-proxy"]])
    );
    assert_eq!(
        names(&plan["sidecars"]),
        ["git-gate", "pipelock", "supervise", "egress-proxy"]
    );
    assert_eq!(plan["agent_proxy"], "http://egress-proxy:9099");
    assert_eq!(plan["upstream_proxy"], "http://pipelock:8888");
    // The agent cannot name pipelock as its proxy and skip the egress proxy: pipelock is not on
    // the agent's network, while the egress proxy, which reaches it, is on both.
    let networks = |name: &str| {
        plan["sidecars"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["networks"]
            .clone()
    };
    assert_eq!(
        networks("egress-proxy"),
        serde_json::json!(["internal", "egress"])
    );
    assert_eq!(networks("pipelock"), serde_json::json!(["egress"]));
    assert_eq!(plan["agent_trusts"], serde_json::json!(["agent"]));
    let agent_env: Vec<&str> = plan["agent"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        !agent_env.contains(&"GH_TOKEN"),
        "a route token must never reach the agent: {agent_env:?}"
    );
    let placeholder = plan["agent"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "CLAUDE_CODE_OAUTH_TOKEN")
        .unwrap();
    assert!(
        placeholder["value"]["literal"]
            .as_str()
            .unwrap()
            .contains("placeholder")
    );
    let proxy = &plan["sidecars"][3];
    assert_eq!(
        proxy["env"],
        serde_json::json!([
            {"name": "CLAUDE_CODE_OAUTH_TOKEN", "value": {"secret": "CLAUDE_CODE_OAUTH_TOKEN"}},
            {"name": "GH_TOKEN", "value": {"secret": "GH_TOKEN"}},
        ])
    );
    let no_proxy = plan["agent"]["no_proxy"].as_array().unwrap();
    assert!(
        no_proxy.contains(&Value::from("supervise")) && no_proxy.contains(&Value::from("git-gate"))
    );
    let gitconfig = plan["agent"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/home/agent/.gitconfig")
        .unwrap();
    assert!(
        gitconfig["contents"]
            .as_str()
            .unwrap()
            .contains("git://git-gate/app.git")
    );
}

#[test]
fn no_secret_value_is_printed_in_any_format() {
    let home = Home::new();
    home.full();
    for format in ["text", "json"] {
        let output = home.bottle(&["start", "dev", "--dry-run", "--format", format]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{all}");
        assert!(
            !all.contains(SECRET_VALUE),
            "{format} output leaks a secret value"
        );
    }
    let info = home.bottle(&["info", "dev"]);
    assert!(!String::from_utf8_lossy(&info.stdout).contains(SECRET_VALUE));
}

#[test]
fn pipelock_config_allows_the_union_and_passes_credentialed_hosts_through() {
    let home = Home::new();
    home.full();
    let plan = json_plan(&home, Some("dev"));
    let pipelock = plan["sidecars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "pipelock")
        .unwrap();
    let config = pipelock["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/pipelock.yaml")
        .unwrap();
    let yaml: serde_json::Value =
        yaml_serde::from_str(config["contents"].as_str().unwrap()).unwrap();
    let allow: Vec<&str> = yaml["api_allowlist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for host in [
        "api.github.com",
        "crates.io",
        "api.anthropic.com",
        "egress-proxy",
        "supervise",
        "git-gate",
    ] {
        assert!(allow.contains(&host), "{host} missing from {allow:?}");
    }
    let passthrough = &yaml["tls_interception"]["passthrough_domains"];
    assert!(
        passthrough
            .as_array()
            .unwrap()
            .contains(&Value::from("api.github.com"))
    );
    assert_eq!(
        yaml["ssrf"]["ip_allowlist"],
        serde_json::json!([bottle::plan::DRY_RUN_CIDR])
    );
}

#[test]
fn route_methods_reach_the_proxy_config() {
    let home = Home::new();
    home.full();
    let plan = json_plan(&home, Some("dev"));
    let proxy = plan["sidecars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "egress-proxy")
        .unwrap();
    let config = proxy["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/bottle/egress-proxy.yaml")
        .unwrap();
    let yaml: serde_json::Value =
        yaml_serde::from_str(config["contents"].as_str().unwrap()).unwrap();
    let route = |host: &str| {
        yaml["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["host"] == host)
            .unwrap()
            .clone()
    };
    // Named methods go through; a route without them stays read only (no `methods` written).
    assert_eq!(
        route("api.anthropic.com")["methods"],
        serde_json::json!(["GET", "POST"])
    );
    assert!(route("api.github.com").get("methods").is_none());
}

#[test]
fn a_manifest_error_stops_everything_with_file_line_and_fix() {
    let home = Home::new();
    home.write("agents/dev.md", "---\nbottle: work\n---\n");
    let bottle = home.write(
        "bottles/work.md",
        "---\negress:\n  firewall: builtin\negres_proxy:\n  routes: []\n---\n",
    );
    let err = stderr_of_failure(&home.bottle(&["start", "dev", "--dry-run"]));
    assert!(err.contains(&bottle.display().to_string()), "{err}");
    assert!(err.contains("did you mean `egress_proxy`"), "{err}");
    assert!(err.contains("work.md:4:"), "the line of the key: {err}");
}

#[test]
fn an_agent_naming_an_unknown_bottle_lists_the_known_ones() {
    let home = Home::new();
    home.write("agents/dev.md", "---\nbottle: nowhere\n---\n");
    home.write("bottles/work.md", "---\n---\n");
    let err = stderr_of_failure(&home.bottle(&["start", "dev", "--dry-run"]));
    assert!(err.contains("nowhere") && err.contains("work"), "{err}");
}

#[test]
fn without_a_terminal_a_launch_needs_yes() {
    let home = Home::new();
    let err = stderr_of_failure(&home.bottle(&["start"]));
    assert!(
        err.contains("no terminal to confirm the launch on; pass --yes"),
        "{err}"
    );
}

#[test]
fn a_project_agent_needs_explicit_trust_for_a_credentialed_home_bottle() {
    let home = Home::new();
    home.full();
    home.write(
        ".bottle/agents/dev.md",
        "---\nbottle: work\n---\nProject prompt.\n",
    );
    let no_engine = [("DOCKER_HOST", Path::new("unix:///nonexistent/docker.sock"))];
    let err = stderr_of_failure(&home.bottle_with(&["start", "dev", "--yes"], &no_engine));
    assert!(
        err.contains("the project's agent")
            && err.contains("your bottle `work`")
            && err.contains("GH_TOKEN")
            && err.contains("--trust-project-agent"),
        "{err}"
    );
    // With the flag the launch goes past that check (and stops at the missing engine).
    let trusted = ["start", "dev", "--yes", "--trust-project-agent"];
    let err = stderr_of_failure(&home.bottle_with(&trusted, &no_engine));
    assert!(!err.contains("project's agent"), "{err}");
    assert!(err.to_lowercase().contains("docker"), "{err}");
    // A home agent in the same bottle is covered by --yes as before.
    std::fs::remove_file(home.path().join(".bottle/agents/dev.md")).unwrap();
    let err = stderr_of_failure(&home.bottle_with(&["start", "dev", "--yes"], &no_engine));
    assert!(!err.contains("project's agent"), "{err}");
}

#[test]
fn plugins_list_shows_the_built_ins_with_digests() {
    let home = Home::new();
    let out = stdout(&home.bottle(&["plugins", "list", "--format", "json"]));
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        names(&list),
        ["pipelock", "egress-proxy", "git-gate", "supervise"]
    );
    for plugin in list.as_array().unwrap() {
        assert_eq!(plugin["source"], "built-in");
        assert_eq!(plugin["wit"], "bottle:plugin@0.1.0");
        assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64);
    }
}

#[test]
fn agents_and_info_say_where_files_were_found() {
    let home = Home::new();
    home.full();
    home.write(
        ".bottle/agents/dev.md",
        "---\nbottle: work\n---\nProject prompt.\n",
    );
    let agents = stdout(&home.bottle(&["agents"]));
    assert!(
        agents.contains("dev") && agents.contains("work") && agents.contains("shadows"),
        "{agents}"
    );
    let info = stdout(&home.bottle(&["info", "dev"]));
    assert!(
        info.contains("Project prompt."),
        "the project agent wins: {info}"
    );
    assert!(
        info.contains("sidecars: git-gate, pipelock, supervise, egress-proxy"),
        "{info}"
    );
    assert!(
        info.contains("secrets:  CLAUDE_CODE_OAUTH_TOKEN, GH_TOKEN"),
        "{info}"
    );
}

#[test]
fn an_external_plugin_reads_its_own_section() {
    let home = Home::new();
    let wasm = PathBuf::from(bottle::plugin::builtin::BUILD_PLUGIN_DIR).join("test-hostile.wasm");
    let added = home.bottle(&["plugins", "add", wasm.to_str().unwrap()]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    home.write("agents/dev.md", "---\nbottle: work\n---\n");
    home.write("bottles/work.md", "---\ntest_hostile:\n  mode: ok\n---\n");
    let plan = json_plan(&home, Some("dev"));
    assert!(names(&plan["sidecars"]).contains(&"hostile-a".to_owned()));
    let listed = stdout(&home.bottle(&["plugins", "list"]));
    assert!(
        listed.contains("test-hostile") && listed.contains("test-hostile.wasm"),
        "{listed}"
    );
    home.write("bottles/work.md", "---\ntest_hostile:\n  mode: loop\n---\n");
    let err = stderr_of_failure(&home.bottle(&["start", "dev", "--dry-run"]));
    assert!(
        err.contains("plugin `test-hostile`: did not return within its time limit")
            || err.contains("plugin `test-hostile`: used up its fuel budget"),
        "{err}"
    );
}

#[test]
fn plugins_add_validates_records_and_refuses_a_changed_component() {
    let home = Home::new();
    let wasm = PathBuf::from(bottle::plugin::builtin::BUILD_PLUGIN_DIR).join("test-hostile.wasm");
    let added = home.bottle(&["plugins", "add", wasm.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&added.stderr);
    assert!(added.status.success(), "{said}");
    assert!(
        said.contains("bottle:plugin@0.1.0") && said.contains("precompiled"),
        "{said}"
    );
    let info = stdout(&home.bottle(&["plugins", "info", "test-hostile"]));
    let record: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(record["wit"], "0.1.0");
    assert_eq!(record["sha256"].as_str().unwrap().len(), 64);
    // A component swapped after `add` is refused with how to fix it.
    let installed = home.path().join("plugins/test-hostile.wasm");
    let mut bytes = std::fs::read(&installed).unwrap();
    bytes.extend_from_slice(b"\0tampered");
    std::fs::write(&installed, bytes).unwrap();
    let err = stderr_of_failure(&home.bottle(&["plugins", "list"]));
    assert!(err.contains("changed since it was added"), "{err}");
    // A file dropped in by hand, without `add`, is refused too.
    std::fs::copy(&wasm, home.path().join("plugins/dropped.wasm")).unwrap();
    let removed = home.bottle(&["plugins", "remove", "test-hostile"]);
    assert!(removed.status.success());
    let err = stderr_of_failure(&home.bottle(&["plugins", "list"]));
    assert!(err.contains("bottle plugins add"), "{err}");
    // Not a component at all, and a built-in's name.
    let junk = home.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let err = stderr_of_failure(&home.bottle(&["plugins", "add", junk.to_str().unwrap()]));
    assert!(err.contains("not a valid bottle plugin component"), "{err}");
    let err = stderr_of_failure(&home.bottle(&["plugins", "remove", "egress-proxy"]));
    assert!(err.contains("built in"), "{err}");
}

#[test]
fn an_ungranted_request_stops_the_plan_until_the_bottle_grants_it() {
    let home = Home::new();
    let wasm = PathBuf::from(bottle::plugin::builtin::BUILD_PLUGIN_DIR).join("test-hostile.wasm");
    assert!(
        home.bottle(&["plugins", "add", wasm.to_str().unwrap()])
            .status
            .success()
    );
    home.write("agents/dev.md", "---\nbottle: work\n---\n");
    home.write(
        "bottles/work.md",
        "---\ntest_hostile:\n  mode: ungranted-egress\n---\n",
    );
    let err = stderr_of_failure(&home.bottle(&["start", "dev", "--dry-run"]));
    assert!(err.contains("asks to reach `paste.example`"), "{err}");
    assert!(
        err.contains("grants:\n    test-hostile:\n      - \"egress: paste.example\""),
        "{err}"
    );
    home.write(
        "bottles/work.md",
        "---\ntest_hostile:\n  mode: ungranted-egress\ngrants:\n  test-hostile: [\"egress: paste.example\"]\n---\n",
    );
    let plan = json_plan(&home, Some("dev"));
    let hosts: Vec<&str> = plan["egress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert!(hosts.contains(&"paste.example"), "{hosts:?}");
    assert!(
        plan["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["plugin"] == "test-hostile" && g["source"] == "manifest"),
        "{}",
        plan["grants"]
    );
    home.write(
        "bottles/work.md",
        "---\ntest_hostile:\n  mode: ok\ngrants:\n  test-hostle: [\"egress: x.example\"]\n---\n",
    );
    let err = stderr_of_failure(&home.bottle(&["start", "dev", "--dry-run"]));
    assert!(err.contains("did you mean `test-hostile`"), "{err}");
}

fn built(name: &str) -> PathBuf {
    PathBuf::from(bottle::plugin::builtin::BUILD_PLUGIN_DIR).join(format!("{name}.wasm"))
}

#[test]
fn policy_modules_stop_the_plan_naming_module_rule_and_subject() {
    let home = Home::new();
    home.full();
    json_plan(&home, Some("dev"));
    let policy = home.path().join("policy");
    std::fs::create_dir_all(&policy).unwrap();
    for name in ["policy-credential-hygiene", "policy-deny-hosts"] {
        std::fs::copy(built(name), policy.join(format!("{name}.wasm"))).unwrap();
    }
    // The second route (api.anthropic.com) carries a token and has no path_allowlist.
    let out = home.bottle(&["start", "dev", "--dry-run"]);
    let err = stderr_of_failure(&out);
    assert!(
        err.contains("policy `credential-hygiene`, rule `route-path-allowlist` at /routes/1"),
        "{err}"
    );
    assert!(err.contains("nothing was launched"), "{err}");
    assert!(!err.contains("deny-hosts"), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("start order"),
        "the plan is still shown"
    );
    // A paste site anywhere in the plan is refused by the other module.
    let text = std::fs::read_to_string(home.path().join("bottles/work.md")).unwrap();
    home.write(
        "bottles/work.md",
        &text.replace(
            "allowlist: [crates.io]",
            "allowlist: [crates.io, pastebin.com]",
        ),
    );
    let err = stderr_of_failure(&home.bottle(&["start", "dev", "--dry-run"]));
    assert!(
        err.contains("policy `deny-hosts`, rule `no-paste-sites`"),
        "{err}"
    );
    assert!(err.contains("pastebin.com"), "{err}");
}

#[test]
fn policy_modules_come_from_bottle_policy_dir_when_set() {
    let home = Home::new();
    home.write("agents/dev.md", "---\nbottle: work\n---\n");
    home.write(
        "bottles/work.md",
        "---\negress:\n  allowlist: [paste.ee]\n---\n",
    );
    json_plan(&home, Some("dev"));
    let org = tempfile::tempdir().unwrap();
    std::fs::copy(built("policy-deny-hosts"), org.path().join("deny.wasm")).unwrap();
    let out = home.bottle_with(
        &["start", "dev", "--dry-run", "--format", "json"],
        &[("BOTTLE_POLICY_DIR", org.path())],
    );
    let err = stderr_of_failure(&out);
    assert!(err.contains("rule `no-paste-sites` at /egress/"), "{err}");
    // A module that is not a policy component fails closed, naming the file.
    std::fs::write(org.path().join("broken.wasm"), b"junk").unwrap();
    let err = stderr_of_failure(&home.bottle_with(
        &["start", "dev", "--dry-run"],
        &[("BOTTLE_POLICY_DIR", org.path())],
    ));
    assert!(err.contains("broken.wasm"), "{err}");
}

#[test]
fn a_plugin_for_a_package_version_this_host_does_not_serve_is_refused() {
    let home = Home::new();
    let err = stderr_of_failure(&home.bottle(&[
        "plugins",
        "add",
        built("test-future").to_str().unwrap(),
    ]));
    assert!(
        err.contains("targets bottle:plugin@0.9.0, but this host serves 0.1.0"),
        "{err}"
    );
    assert!(!home.path().join("plugins").exists(), "nothing installed");
}

#[test]
fn plugins_check_prints_the_contribution_or_the_plugins_complaint() {
    let home = Home::new();
    let config = home.write("check.yaml", "test_hostile:\n  mode: ok\n");
    let wasm = built("test-hostile");
    let out = stdout(&home.bottle(&[
        "plugins",
        "check",
        wasm.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(
        out.contains("sidecar `hostile-a` (plugin test-hostile)"),
        "{out}"
    );
    home.write("check.yaml", "test_hostile:\n  mode: ungranted-egress\n");
    let err = stderr_of_failure(&home.bottle(&[
        "plugins",
        "check",
        wasm.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(err.contains("\"egress: paste.example\""), "{err}");
    home.write(
        "check.yaml",
        "test_hostile:\n  mode: ungranted-egress\ngrants:\n  test-hostile: [\"egress: paste.example\"]\n",
    );
    let out = stdout(&home.bottle(&[
        "plugins",
        "check",
        wasm.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(out.contains("paste.example"), "{out}");
}
