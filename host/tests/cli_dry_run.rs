//! `bottle` as a user runs it: a real process, a temporary `BOTTLE_HOME`, manifests on disk.

mod cli_home;

use std::path::PathBuf;

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
            "7 hosts allowed (api.anthropic.com, statsig.anthropic.com, sentry.io, +4 more)"
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
        serde_yaml_ng::from_str(config["contents"].as_str().unwrap()).unwrap();
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
    std::fs::create_dir_all(home.path().join("plugins")).unwrap();
    std::fs::copy(wasm, home.path().join("plugins/hostile.wasm")).unwrap();
    home.write("agents/dev.md", "---\nbottle: work\n---\n");
    home.write("bottles/work.md", "---\ntest_hostile:\n  mode: ok\n---\n");
    let plan = json_plan(&home, Some("dev"));
    assert!(names(&plan["sidecars"]).contains(&"hostile-a".to_owned()));
    let listed = stdout(&home.bottle(&["plugins", "list"]));
    assert!(
        listed.contains("test-hostile") && listed.contains("hostile.wasm"),
        "{listed}"
    );
    home.write("bottles/work.md", "---\ntest_hostile:\n  mode: loop\n---\n");
    let err = stderr_of_failure(&home.bottle(&["start", "dev", "--dry-run"]));
    assert!(
        err.contains("plugin `test-hostile`: did not return within its time limit"),
        "{err}"
    );
}
