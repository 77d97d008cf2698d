//! Real bottles on the real Docker engine: lifecycle, teardown from every step, secrets, the path
//! out through the egress proxy, isolation, and cleanup after `kill -9`.
//!
//! Every object a test creates carries `dev.bottle.test=<unique label>` (the launcher adds it from
//! `BOTTLE_TEST_LABEL`) and is removed when the test ends, pass or fail. Without an engine these
//! tests skip with a message, except under CI (`CI=true`), where a missing engine is a failure.

mod common;

use std::process::Stdio;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use common::*;

#[test]
fn full_lifecycle_leaves_nothing_behind() {
    let Some((bottle, identity)) = TestBottle::launched("lifecycle") else {
        return;
    };
    let names: Vec<String> = bottle
        .containers()
        .iter()
        .filter_map(|c| c.names.as_ref()?.first().cloned())
        .collect();
    assert!(names.contains(&format!("/bottle-{identity}")), "{names:?}");
    assert!(
        names.contains(&format!("/bottle-{identity}-egress-proxy")),
        "{names:?}"
    );
    let networks: Vec<String> = bottle
        .networks()
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    assert!(
        networks.contains(&format!("bottle-net-{identity}"))
            && networks.contains(&format!("bottle-egress-{identity}"))
    );
    let list = text(&bottle.bottle(&["list"]));
    assert!(
        list.contains(&identity) && list.contains("running") && list.contains("egress-proxy"),
        "{list}"
    );
    let env = text(&bottle.exec_in_agent(&identity, "env"));
    assert!(
        env.contains("HTTPS_PROXY=http://egress-proxy:9099"),
        "{env}"
    );
    assert!(env.contains("LEVEL=debug"), "{env}");
    let trust = text(&bottle.exec_in_agent(
        &identity,
        "grep -c 'BEGIN CERTIFICATE' /usr/local/share/ca-certificates/bottle-agent-ca.crt",
    ));
    assert_eq!(trust.trim(), "1", "the agent trusts the bottle CA");
    let stop = bottle.bottle(&["stop", &identity]);
    assert!(stop.status.success(), "{}", text(&stop));
    bottle.assert_nothing_left();
    assert!(
        !bottle.path().join("state").join(&identity).exists(),
        "state removed on stop"
    );
}

#[test]
fn an_interrupted_launch_leaves_nothing_behind_from_any_step() {
    let Some(bottle) = TestBottle::new("faults") else {
        return;
    };
    write_secret_bottle(&bottle, "");
    for step in [
        "networks",
        "cas",
        "images",
        "sidecars",
        "agent",
        "provision",
    ] {
        let output = bottle.start_detached(&[("BOTTLE_FAULT_AT", step)]);
        assert!(
            !output.status.success(),
            "{step}: launch succeeded despite the fault"
        );
        let said = text(&output);
        assert!(
            said.contains(&format!("launch stopped at step `{step}`")),
            "{step}: {said}"
        );
        bottle.assert_nothing_left();
    }
}

#[test]
fn secrets_reach_only_where_they_belong() {
    let Some((bottle, identity)) = TestBottle::launched("secrets") else {
        return;
    };
    let runtime = rt();
    for container in bottle.containers() {
        let id = container.id.clone().unwrap();
        let inspect = runtime
            .block_on(bottle.docker.inspect_container(&id, None))
            .unwrap();
        let config = inspect.config.clone().unwrap();
        let argv = format!("{:?}{:?}", config.cmd, config.entrypoint);
        assert!(
            !argv.contains(PROMPTED_SECRET) && !argv.contains(ROUTE_TOKEN),
            "secret on argv of {id}"
        );
        let role = config
            .labels
            .unwrap_or_default()
            .get("dev.bottle.role")
            .cloned()
            .unwrap_or_default();
        let env = config.env.unwrap_or_default().join("\n");
        if role == "agent" {
            assert!(
                env.contains(&format!("SESSION_SECRET={PROMPTED_SECRET}")),
                "the agent gets its own secret"
            );
            assert!(
                !env.contains(ROUTE_TOKEN),
                "the route token must never reach the agent"
            );
        }
    }
    let agent_env =
        text(&bottle.exec_in_agent(&identity, "env; cat /proc/1/environ | tr '\\0' '\\n'"));
    assert!(!agent_env.contains(ROUTE_TOKEN));
    let logs = text(&bottle.bottle(&["logs", &identity]));
    assert!(
        !logs.contains(PROMPTED_SECRET) && !logs.contains(ROUTE_TOKEN),
        "a secret in the logs"
    );
    assert!(bottle.bottle(&["stop", &identity]).status.success());
    bottle.assert_nothing_left();
}

#[test]
fn the_agent_cannot_reach_anything_directly() {
    let Some((bottle, identity)) = TestBottle::launched("isolation") else {
        return;
    };
    let direct = bottle.exec_in_agent(
        &identity,
        "curl -sS --noproxy '*' --max-time 3 http://1.1.1.1/ ; echo rc=$?",
    );
    assert!(
        !text(&direct).contains("rc=0"),
        "direct connection succeeded: {}",
        text(&direct)
    );
    let dns = bottle.exec_in_agent(&identity, "getent hosts example.com; echo rc=$?");
    assert!(
        text(&dns).contains("rc=2"),
        "public name resolved: {}",
        text(&dns)
    );
    let gateway = bottle.exec_in_agent(&identity, "ip route 2>/dev/null || cat /proc/net/route");
    assert!(
        !text(&gateway).contains("default"),
        "the agent has a default route: {}",
        text(&gateway)
    );
    assert!(bottle.bottle(&["stop", &identity]).status.success());
    bottle.assert_nothing_left();
}

#[test]
fn cleanup_after_kill_9_removes_everything() {
    let Some(bottle) = TestBottle::new("kill9") else {
        return;
    };
    write_secret_bottle(&bottle, "");
    let mut child = bottle
        .command(&[
            "start",
            bottle.agent.get().unwrap(),
            "--yes",
            "--no-claude-code",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(format!("{PROMPTED_SECRET}\n").as_bytes())
            .unwrap();
    }
    // Wait until the agent container exists (the session is then running `sleep 300`).
    let mut launched = false;
    for _ in 0..600 {
        if bottle.containers().iter().any(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get("dev.bottle.role"))
                .map(String::as_str)
                == Some("agent")
        }) {
            launched = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(launched, "the bottle never started");
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap();
    child.wait().unwrap();
    let list = text(&bottle.bottle(&["list"]));
    assert!(list.contains("orphaned"), "{list}");
    let cleanup = bottle.bottle(&["cleanup", "--yes"]);
    assert!(cleanup.status.success(), "{}", text(&cleanup));
    let containers: Vec<_> = bottle
        .containers()
        .into_iter()
        .filter_map(|c| c.names)
        .collect();
    assert!(containers.is_empty(), "{containers:?}");
    assert!(bottle.networks().is_empty());
}

/// Build the test upstream image from `tests/docker/upstream`.
fn build_upstream_image(docker: &Docker) -> String {
    build_test_image(docker, "upstream", "bottle-test/upstream:latest")
}

/// Start the upstream on the bottle's egress network under the alias `upstream.test`.
fn start_upstream(bottle: &TestBottle, identity: &str, image: &str, cert: &str, key: &str) {
    let files = [
        file("/srv/cert.pem", 0o644, (0, 0), cert),
        file("/srv/key.pem", 0o600, (0, 0), key),
    ];
    start_on_egress(
        bottle,
        identity,
        ("bottle-test-upstream", image, "upstream.test"),
        &files,
        None,
    );
}

#[test]
fn the_way_out_is_the_proxy_with_the_token_injected_and_refusals_logged() {
    let Some(bottle) = TestBottle::new("egress") else {
        return;
    };
    let (ca, cert, key) = test_certificates(&["upstream.test"]);
    let ca_path = bottle.write("upstream-ca.pem", &ca);
    write_secret_bottle(
        &bottle,
        &format!(
            "  upstream_ca: [{}]\n  allow_cidrs: [172.16.0.0/12, 192.168.0.0/16, 10.0.0.0/8]\n",
            ca_path.display()
        ),
    );
    let image = build_upstream_image(&bottle.docker);
    let identity = identity_of(&bottle.start_detached(&[]));
    start_upstream(&bottle, &identity, &image, &cert, &key);
    let fetch = |args: &str| {
        text(&bottle.exec_in_agent(&identity, &format!("curl -sS --max-time 10 {args}")))
    };
    let mut seen = String::new();
    for _ in 0..50 {
        seen = fetch("-H 'Authorization: Bearer forged' https://upstream.test/allowed/path");
        if seen.contains("\"method\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        seen.contains(&format!("Bearer {ROUTE_TOKEN}")),
        "the upstream sees the injected token: {seen}"
    );
    assert!(
        !seen.contains("forged"),
        "the agent's own Authorization is stripped: {seen}"
    );
    let code = |args: &str| fetch(&format!("-o /dev/null -w '%{{http_code}}' {args}"));
    assert_eq!(
        code("https://upstream.test/elsewhere"),
        "403",
        "path outside path_allowlist"
    );
    // A refused host is refused at CONNECT, before any TLS: curl reports it as the CONNECT status.
    let connect = fetch("-o /dev/null -w '%{http_connect}' https://not-allowed.test/ 2>/dev/null");
    assert!(
        connect.starts_with("403"),
        "host outside the allowlist: {connect}"
    );
    assert_eq!(
        code("-X POST https://upstream.test/allowed/repo.git/git-receive-pack"),
        "403",
        "git push over HTTPS"
    );
    let logs = text(&bottle.bottle(&["logs", &identity, "egress-proxy"]));
    for refused in ["/elsewhere", "not-allowed.test", "git-receive-pack"] {
        assert!(
            logs.lines()
                .any(|l| l.contains(refused) && l.contains("deny")),
            "no refusal of {refused} in logs:\n{logs}"
        );
    }
    assert!(!logs.contains(ROUTE_TOKEN));
    let stop = bottle.bottle(&["stop", &identity]);
    assert!(
        stop.status.success(),
        "stop with a foreign container on the egress network: {}",
        text(&stop)
    );
    let upstream = format!("bottle-test-upstream-{}", bottle.label);
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    rt().block_on(bottle.docker.remove_container(&upstream, Some(options)))
        .unwrap();
    bottle.assert_nothing_left();
}
