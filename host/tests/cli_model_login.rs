//! The operator's Claude login and `--remote-control`, through the real binary (no engine needed):
//! the embedded default bottle lends `CLAUDE_CODE_OAUTH_TOKEN` (or claude-bottle's
//! `CLAUDE_BOTTLE_OAUTH_TOKEN`) to api.anthropic.com through the egress proxy, the agent holds the
//! placeholder, nothing is written to the home, and the value is never printed.

mod cli_home;

use std::process::{Command, Output};

use cli_home::{Home, SECRET_VALUE, stderr_of_failure, stdout};
use serde_json::Value;

const PLACEHOLDER: &str = "bottle-placeholder-token-injected-by-egress-proxy";

/// `bottle args…` in `home` with exactly the login variables given.
fn bottle(home: &Home, args: &[&str], login: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bottle"));
    command
        .args(args)
        .env("BOTTLE_HOME", home.path())
        .env("HOME", home.path())
        .env_remove("CLAUDE_CODE_OAUTH_TOKEN")
        .env_remove("CLAUDE_BOTTLE_OAUTH_TOKEN")
        .env_remove("BOTTLE_DRY_RUN")
        .env_remove("CLAUDE_BOTTLE_DRY_RUN")
        .current_dir(home.path());
    for (k, v) in login {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn planned(home: &Home, args: &[&str], login: &[(&str, &str)]) -> (Value, String) {
    let mut all = vec!["start", "--dry-run", "--format", "json"];
    all.extend(args);
    let output = bottle(home, &all, login);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (serde_json::from_str(&stdout(&output)).unwrap(), shown)
}

fn model_routes(plan: &Value) -> Vec<Value> {
    let config = plan["sidecars"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["contents"].as_str().unwrap_or_default().to_owned())
        .collect::<String>();
    let config: yaml_serde::Value = yaml_serde::from_str(&config).unwrap_or_default();
    let routes = serde_json::to_value(&config["routes"]).unwrap();
    routes
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["host"] == "api.anthropic.com")
        .collect()
}

fn agent_env(plan: &Value, name: &str) -> Option<Value> {
    plan["agent"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].clone())
}

#[test]
fn the_login_becomes_a_model_api_route_and_the_agent_holds_the_placeholder() {
    let home = Home::new();
    let login = [("CLAUDE_CODE_OAUTH_TOKEN", SECRET_VALUE)];
    let (plan, shown) = planned(&home, &[], &login);
    let [route] = model_routes(&plan).try_into().unwrap_or_else(|r: Vec<_>| {
        panic!("one api.anthropic.com route: {r:?}\n{shown}");
    });
    assert_eq!(
        route["auth"]["token_env"], "CLAUDE_CODE_OAUTH_TOKEN",
        "{route}"
    );
    assert_eq!(route["auth"]["scheme"], "Bearer", "{route}");
    assert_eq!(
        route["methods"],
        serde_json::json!(["GET", "POST"]),
        "{route}"
    );
    assert_eq!(
        agent_env(&plan, "CLAUDE_CODE_OAUTH_TOKEN"),
        Some(serde_json::json!({"literal": PLACEHOLDER})),
        "the agent holds the placeholder"
    );
    assert!(shown.contains("using your Claude login from CLAUDE_CODE_OAUTH_TOKEN"));
    assert!(!shown.contains(SECRET_VALUE), "the token is never shown");
    let text = bottle(&home, &["start", "--dry-run"], &login);
    let text = format!("{}{}", stdout(&text), String::from_utf8_lossy(&text.stderr));
    assert!(
        text.contains("api.anthropic.com [credentials injected]"),
        "{text}"
    );
    assert!(!text.contains(SECRET_VALUE), "the token is never shown");
    let written: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "cache")
        .collect();
    assert!(written.is_empty(), "no manifest is written: {written:?}");
}

#[test]
fn without_a_login_there_is_no_route_and_claude_bottles_name_works_with_a_note() {
    let home = Home::new();
    let (plan, _) = planned(&home, &[], &[]);
    assert!(model_routes(&plan).is_empty());
    assert_eq!(agent_env(&plan, "CLAUDE_CODE_OAUTH_TOKEN"), None);

    let legacy = [("CLAUDE_BOTTLE_OAUTH_TOKEN", SECRET_VALUE)];
    let (plan, shown) = planned(&home, &[], &legacy);
    assert_eq!(model_routes(&plan).len(), 1, "{shown}");
    assert!(
        shown.contains("CLAUDE_BOTTLE_OAUTH_TOKEN is claude-bottle's name"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET_VALUE));
}

#[test]
fn an_operators_own_bottle_is_left_as_written() {
    let home = Home::new();
    home.write("agents/dev.md", "---\nbottle: plain\n---\nHi.\n");
    home.write("bottles/plain.md", "---\nenv: {}\n---\n");
    let login = [("CLAUDE_CODE_OAUTH_TOKEN", SECRET_VALUE)];
    let (plan, shown) = planned(&home, &["dev"], &login);
    assert!(model_routes(&plan).is_empty(), "{shown}");
    assert!(!shown.contains("using your Claude login"));
}

#[test]
fn remote_control_is_in_the_command_and_the_preflight_only_with_the_flag() {
    let home = Home::new();
    let (plan, _) = planned(&home, &["--remote-control"], &[]);
    let command = plan["agent"]["command"].to_string();
    assert!(
        command.contains("exec claude --remote-control "),
        "{command}"
    );
    let text = stdout(&bottle(
        &home,
        &["start", "--dry-run", "--remote-control"],
        &[],
    ));
    assert!(
        text.contains("· remote control: on (through api.anthropic.com, no other host added)"),
        "{text}"
    );
    let without = stdout(&bottle(&home, &["start", "--dry-run"], &[]));
    assert!(!without.contains("remote control"), "{without}");
    assert!(!without.contains("--remote-control"), "{without}");

    home.write(
        "agents/own.md",
        "---\nbottle: plain\ncommand: [sleep, \"1\"]\n---\nHi.\n",
    );
    home.write("bottles/plain.md", "---\nenv: {}\n---\n");
    let refused = stderr_of_failure(&bottle(
        &home,
        &["start", "own", "--dry-run", "--remote-control"],
        &[],
    ));
    assert!(
        refused.contains("agent `own` runs its own `command:`"),
        "{refused}"
    );
}
