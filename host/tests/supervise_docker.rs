//! Supervise against a real Docker engine: the agent asks through the supervise sidecar (curl
//! speaking MCP JSON-RPC from inside the agent container), the operator decides with
//! `bottle supervise approve|reject`, and an approved host is reachable on the very next request.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    TestBottle, assert_default_runtime, build_test_image, file, identity_of, start_on_egress,
    test_certificates, text, write_secret_bottle,
};

/// `tools/call` of `tool` with `arguments` (JSON), from inside the agent, as a running process.
fn call_tool(bottle: &TestBottle, identity: &str, tool: &str, arguments: &str) -> Child {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
    );
    let script = format!(
        "curl -sS -N --max-time 120 http://supervise:7411/mcp -H 'Content-Type: application/json' \
         -H 'Accept: application/json, text/event-stream' -d '{body}'"
    );
    bottle
        .command(&["exec", identity, "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn queue_dir(bottle: &TestBottle, identity: &str) -> PathBuf {
    bottle
        .path()
        .join("state")
        .join(identity)
        .join("supervise-queue")
}

/// The id of the one pending proposal, waiting for the sidecar to queue it.
fn wait_for_proposal(queue: &Path, not: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids: Vec<String> = std::fs::read_dir(queue.join("proposals"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_owned)
            })
            .filter(|id| !id.starts_with('.') && !not.contains(id))
            .collect();
        if let Some(id) = ids.into_iter().next() {
            return id;
        }
        assert!(Instant::now() < deadline, "no proposal was queued");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn answer(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

fn audit_lines(bottle: &TestBottle) -> Vec<serde_json::Value> {
    bottle::supervise::audit::read_all(bottle.path())
}

#[test]
fn the_agent_asks_the_operator_decides_and_the_next_request_passes() {
    let Some(bottle) = TestBottle::new("supervise") else {
        return;
    };
    let (ca, cert, key) = test_certificates(&["upstream.test", "other.test"]);
    let ca_path = bottle.write("upstream-ca.pem", &ca);
    write_secret_bottle(
        &bottle,
        &format!(
            "  upstream_ca: [{}]\n  allow_cidrs: [172.16.0.0/12, 192.168.0.0/16, 10.0.0.0/8]\nsupervise: true\n",
            ca_path.display()
        ),
    );
    let image = build_test_image(&bottle.docker, "upstream", "bottle-test/upstream:latest");
    let identity = identity_of(&bottle.start_detached(&[]));
    assert_default_runtime(&bottle, &identity);
    let files = [
        file("/srv/cert.pem", 0o644, (0, 0), &cert),
        file("/srv/key.pem", 0o600, (0, 0), &key),
    ];
    start_on_egress(
        &bottle,
        &identity,
        ("bottle-test-other", &image, "other.test"),
        &files,
        None,
    );
    let connect = |url: &str| {
        text(&bottle.exec_in_agent(
            &identity,
            &format!(
                "curl -sS --max-time 10 -o /dev/null -w '%{{http_connect}}' {url} 2>/dev/null; true"
            ),
        ))
    };
    assert!(
        connect("https://other.test/x").starts_with("403"),
        "blocked before"
    );

    // The agent asks; the call blocks until the operator approves.
    let queue = queue_dir(&bottle, &identity);
    let waiting = call_tool(
        &bottle,
        &identity,
        "firewall-block",
        r#"{"justification":"the test fixtures live there","url":"https://other.test/x"}"#,
    );
    let first = wait_for_proposal(&queue, &[]);
    let listed = text(&bottle.bottle(&["supervise", "list"]));
    assert!(
        listed.contains(&first) && listed.contains("allow other.test"),
        "{listed}"
    );
    let once = text(&bottle.bottle(&["dashboard", "--once"]));
    assert!(once.contains(&first), "{once}");
    let approved = bottle.bottle(&["supervise", "approve", &first, "--notes", "fine"]);
    assert!(approved.status.success(), "{}", text(&approved));
    let said = answer(waiting);
    assert!(
        said.contains(r#"\"status\":\"approved\""#) || said.contains(r#""status":"approved""#),
        "{said}"
    );
    // The very next request passes the proxy (reloaded by SIGHUP, no restart).
    let fetched =
        text(&bottle.exec_in_agent(&identity, "curl -sS --max-time 10 https://other.test/x"));
    assert!(fetched.contains("\"method\""), "after approval: {fetched}");

    // A rejection returns the operator's reason to the agent.
    let waiting = call_tool(
        &bottle,
        &identity,
        "firewall-block",
        r#"{"justification":"need pypi","url":"https://pypi.org/simple/"}"#,
    );
    let second = wait_for_proposal(&queue, std::slice::from_ref(&first));
    let rejected = bottle.bottle(&["supervise", "reject", &second, "--notes", "use the mirror"]);
    assert!(rejected.status.success(), "{}", text(&rejected));
    let said = answer(waiting);
    assert!(
        said.contains("rejected") && said.contains("use the mirror"),
        "{said}"
    );
    assert!(
        connect("https://pypi.org/").starts_with("403"),
        "still blocked"
    );

    // A route that would send the bottle's token to a new host needs the operator's explicit
    // approval: plain approve is refused and nothing changes.
    let waiting = call_tool(
        &bottle,
        &identity,
        "egress-proxy-block",
        r#"{"justification":"mirror","routes":[{"host":"other.test","path_allowlist":["/"],"auth":{"scheme":"Bearer","token_env":"ROUTE_TOKEN"}}]}"#,
    );
    let third = wait_for_proposal(&queue, &[first.clone(), second.clone()]);
    let current_before = std::fs::read(queue.join("current.json")).unwrap();
    let refused = bottle.bottle(&["supervise", "approve", &third]);
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("--allow-new-token-host"), "{said}");
    assert_eq!(
        std::fs::read(queue.join("current.json")).unwrap(),
        current_before
    );
    assert!(
        text(&bottle.bottle(&["supervise", "list"])).contains(&third),
        "still pending"
    );

    // Audit: one line per decision, with diff and sha256 for the applied one.
    let audit = audit_lines(&bottle);
    let approved_line = audit
        .iter()
        .find(|l| l["proposal"] == first.as_str())
        .unwrap();
    assert_eq!(approved_line["decision"], "approved");
    assert!(
        approved_line["diff"]
            .as_str()
            .unwrap()
            .contains("+- other.test"),
        "{approved_line}"
    );
    assert_eq!(approved_line["sha256"].as_str().unwrap().len(), 64);
    let rejected_line = audit
        .iter()
        .find(|l| l["proposal"] == second.as_str())
        .unwrap();
    assert_eq!(rejected_line["notes"], "use the mirror");

    // The bottle goes away: the pending proposal is expired (the agent gets its answer), not lost.
    let stopped = bottle.bottle(&["stop", &identity]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    // Expired by the host before any container went: the waiting call hears it from the sidecar
    // (not a cut connection, nor the sidecar's own shutdown answer).
    let said = answer_or_gone(waiting);
    assert!(
        said.contains(r#"\"status\":\"expired\""#) && said.contains("went away before a decision"),
        "the waiting call should get the host's expired decision: {said}"
    );
    let audit = audit_lines(&bottle);
    let expired = audit
        .iter()
        .find(|l| l["proposal"] == third.as_str())
        .unwrap();
    assert_eq!(expired["decision"], "expired");
    assert_eq!(expired["proposed"]["change"]["kind"], "routes");
    let other = format!("bottle-test-other-{}", bottle.label);
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .build();
    common::rt()
        .block_on(bottle.docker.remove_container(&other, Some(options)))
        .unwrap();
    bottle.assert_nothing_left();
}

/// The exec of a call whose bottle was stopped ends one way or another; its output, if any.
fn answer_or_gone(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bad_proposals_are_refused_by_the_sidecar_and_queue_nothing() {
    let Some(bottle) = TestBottle::new("supervisebad") else {
        return;
    };
    write_secret_bottle(&bottle, "supervise: true\n");
    let identity = identity_of(&bottle.start_detached(&[]));
    let queue = queue_dir(&bottle, &identity);
    let big = "#".repeat(70 * 1024);
    for (tool, arguments, expect) in [
        (
            "egress-proxy-block",
            r#"{"justification":"x","routes":[{"host":"not a host"}]}"#.to_owned(),
            "not a host name",
        ),
        (
            "capability-block",
            format!(r#"{{"justification":"x","dockerfile":"FROM debian\n{big}"}}"#),
            "limit",
        ),
        (
            "firewall-block",
            r#"{"url":"https://a.example/"}"#.to_owned(),
            "justification",
        ),
    ] {
        let said = answer(call_tool(&bottle, &identity, tool, &arguments));
        assert!(said.contains(expect), "{tool}: {said}");
        assert!(
            said.contains("isError") || said.contains("error"),
            "{tool}: {said}"
        );
    }
    let proposals = std::fs::read_dir(queue.join("proposals"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(proposals, 0, "nothing was queued");
    let stopped = bottle.bottle(&["stop", &identity]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    bottle.assert_nothing_left();
}

#[test]
fn an_approved_dockerfile_is_saved_and_the_bottle_stopped_for_resume() {
    let Some(bottle) = TestBottle::new("supervisecap") else {
        return;
    };
    write_secret_bottle(&bottle, "supervise: true\n");
    let identity = identity_of(&bottle.start_detached(&[]));
    let queue = queue_dir(&bottle, &identity);
    let dockerfile = "FROM debian:bookworm-slim\\nRUN apt-get update && apt-get install -y jq\\n";
    let waiting = call_tool(
        &bottle,
        &identity,
        "capability-block",
        &format!(r#"{{"justification":"jq for the json fixtures","dockerfile":"{dockerfile}"}}"#),
    );
    let id = wait_for_proposal(&queue, &[]);
    let approved = bottle.bottle(&["supervise", "approve", &id]);
    let said = text(&approved);
    assert!(approved.status.success(), "{said}");
    assert!(
        said.contains(&format!("bottle resume {identity}")),
        "{said}"
    );
    let _ = answer_or_gone(waiting);
    let saved = bottle
        .path()
        .join("state")
        .join(&identity)
        .join("agent-image/Dockerfile");
    let text_saved = std::fs::read_to_string(&saved).unwrap();
    assert!(text_saved.contains("install -y jq"), "{text_saved}");
    // The bottle is gone, its state kept for `bottle resume`.
    bottle.assert_nothing_left();
}
