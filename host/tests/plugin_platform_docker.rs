//! The plugin platform against a real Docker engine: a third-party plugin made from the template
//! runs beside the agent and is reached by its alias; an organisation policy module stops a real
//! launch before anything is created.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{TestBottle, build_test_image, identity_of, text, write_secret_bottle};

/// `bottle plugins new demo-svc`, built for wasm32-wasip2 in a target dir kept between runs.
fn template_plugin(bottle: &TestBottle) -> PathBuf {
    let dir = bottle.path().join("src/demo-svc");
    let made = bottle.bottle(&["plugins", "new", "demo-svc", "--dir", dir.to_str().unwrap()]);
    assert!(made.status.success(), "{}", text(&made));
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("template-plugin");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--target", "wasm32-wasip2", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));
    target.join("wasm32-wasip2/release/bottle_plugin_demo_svc.wasm")
}

#[test]
fn a_plugin_from_the_template_runs_beside_the_agent_and_is_reached_by_its_alias() {
    let Some(bottle) = TestBottle::new("tplplugin") else {
        return;
    };
    build_test_image(&bottle.docker, "upstream", "bottle-test/upstream:latest");
    let wasm = template_plugin(&bottle);
    let added = bottle.bottle(&["plugins", "add", wasm.to_str().unwrap()]);
    assert!(added.status.success(), "{}", text(&added));
    bottle.write(
        "bottles/test.md",
        "---\ndemo_svc:\n  image: bottle-test/upstream:latest\n  port: 8080\n  \
         command: [python3, -m, http.server, \"8080\", --directory, /srv]\n---\n",
    );
    let launched = bottle.start_detached(&[]);
    let identity = identity_of(&launched);
    // The agent reaches the sidecar by its alias, directly (it is in NO_PROXY), on the internal
    // network; the URL variable the plugin set is in its environment.
    let out = bottle.exec_in_agent(
        &identity,
        "echo \"url=$DEMO_SVC_URL\"; curl -sS --max-time 10 \"$DEMO_SVC_URL/echo.py\" | head -1",
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("url=http://demo-svc:8080"), "{said}");
    assert!(said.contains("HTTPS echo server for bottle"), "{said}");
    let stopped = bottle.bottle(&["stop", &identity]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    bottle.assert_nothing_left();
}

#[test]
fn a_policy_module_stops_a_real_launch_before_anything_is_created() {
    let Some(bottle) = TestBottle::new("policyblock") else {
        return;
    };
    write_secret_bottle(&bottle, "egress:\n  allowlist: [pastebin.com]\n");
    let policy = bottle.path().join("policy");
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::copy(
        PathBuf::from(bottle::plugin::builtin::BUILD_PLUGIN_DIR).join("policy-deny-hosts.wasm"),
        policy.join("deny-hosts.wasm"),
    )
    .unwrap();
    let out = bottle.start_detached(&[]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("policy `deny-hosts`, rule `no-paste-sites`"),
        "{said}"
    );
    assert!(said.contains("pastebin.com"), "{said}");
    assert!(said.contains("nothing was launched"), "{said}");
    bottle.assert_nothing_left();
}
