//! The git gate in a real bottle: an ssh upstream container on the bottle's egress network, and
//! git run by the agent inside its container, with no change to its habits (`insteadOf`).

mod common;

use std::process::Command;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use common::*;

const UPSTREAM: &str = "ssh://git@git.upstream.test/home/git/app.git";

/// (private key path, public key, host private key, host public key) made with ssh-keygen.
fn keys(dir: &std::path::Path) -> (std::path::PathBuf, String, String, String) {
    for name in ["client", "host"] {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(dir.join(name))
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen failed");
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (
        dir.join("client"),
        read("client.pub"),
        read("host"),
        read("host.pub"),
    )
}

/// Start the upstream on the bottle's egress network and seed `app.git` with a `main` branch.
fn start_upstream(bottle: &TestBottle, identity: &str, authorized: &str, host_key: &str) -> String {
    let image = build_test_image(
        &bottle.docker,
        "git-upstream",
        "bottle-test/git-upstream:latest",
    );
    let files = [
        file("/etc/ssh/ssh_host_ed25519_key", 0o600, (0, 0), host_key),
        file(
            "/home/git/.ssh/authorized_keys",
            0o600,
            (1000, 1000),
            authorized,
        ),
    ];
    let name = start_on_egress(
        bottle,
        identity,
        ("bottle-test-git", &image, "git.upstream.test"),
        &files,
        Some("/home/git"),
    );
    let seed = "set -e; cd /home/git; git init -q --bare -b main app.git; git clone -q app.git /tmp/s 2>/dev/null; cd /tmp/s; \
                echo hello > README; git add README; git -c user.name=u -c user.email=u@x commit -qm first; git push -q origin HEAD:main";
    upstream_exec(&name, seed);
    name
}

fn upstream_exec(container: &str, script: &str) -> String {
    let runtime = rt();
    let engine = runtime.block_on(bottle::docker::Engine::connect()).unwrap();
    let out = runtime
        .block_on(engine.exec(
            container,
            &["su".into(), "git".into(), "-c".into(), script.into()],
            None,
        ))
        .unwrap();
    assert_eq!(out.code, 0, "upstream: {}{}", out.stdout, out.stderr);
    out.stdout
}

/// With supervise beside the gate, and the agent in gVisor where the engine has it.
#[test]
fn the_agent_pushes_only_through_the_gate_and_only_what_passes() {
    let Some(bottle) = TestBottle::new("gate") else {
        return;
    };
    let (key, client_pub, host_key, host_pub) = keys(bottle.path());
    let host_key_line = host_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    bottle.write(
        "bottles/test.md",
        &format!(
            "---\ngit:\n  - Name: app\n    Upstream: {UPSTREAM}\n    IdentityFile: {}\n    KnownHostKey: {host_key_line}\n    protected: [main]\nsupervise: true\n---\n",
            key.display()
        ),
    );
    let agent = bottle.agent.get().unwrap().clone();
    let launch = bottle
        .command(&["start", &agent, "--detach", "--yes", "--no-claude-code"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let identity = identity_of(&launch);
    assert_default_runtime(&bottle, &identity);
    // Supervise answers the agent and knows the gate's repository.
    let routes = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list-egress-routes","arguments":{}}}"#;
    let listed = text(&bottle.exec_in_agent(
        &identity,
        &format!(
            "curl -sS --max-time 30 \"$BOTTLE_SUPERVISE_URL\" -H 'Content-Type: application/json' \
             -H 'Accept: application/json, text/event-stream' -d '{routes}'"
        ),
    ));
    assert!(
        listed.contains("app") && listed.contains("protected"),
        "{listed}"
    );
    let upstream = start_upstream(&bottle, &identity, &client_pub, &host_key);
    let agent_git = |script: &str| {
        let out = bottle.bottle(&[
            "exec",
            &identity,
            "sh",
            "-c",
            &format!("cd /home/agent && {script} 2>&1; echo rc=$?"),
        ]);
        text(&out)
    };
    let git = "git -c user.name=agent -c user.email=agent@bottle.invalid";
    let clone = agent_git(&format!("git clone -q {UPSTREAM} w && cat w/README"));
    assert!(
        clone.contains("hello") && clone.contains("rc=0"),
        "clone through the gate: {clone}"
    );
    let push = agent_git(&format!(
        "cd w && git checkout -qb feature && echo x > code.txt && git add . && {git} commit -qm code && git push -q origin feature"
    ));
    assert!(push.ends_with("rc=0\n"), "a clean push: {push}");
    let upstream_feature = upstream_exec(
        &upstream,
        "git --git-dir=/home/git/app.git log --format=%s feature",
    );
    assert!(
        upstream_feature.contains("code"),
        "the push arrived upstream: {upstream_feature}"
    );
    let leak = agent_git(&format!(
        "cd w && echo AWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH > creds.env && git add . && {git} commit -qm leak && git push origin feature"
    ));
    assert!(
        leak.contains("creds.env:1") && !leak.ends_with("rc=0\n"),
        "a secret is refused: {leak}"
    );
    let upstream_log = upstream_exec(
        &upstream,
        "git --git-dir=/home/git/app.git log --format=%s feature",
    );
    assert!(
        !upstream_log.contains("leak"),
        "nothing of the refused push reached the upstream"
    );
    assert_decisions_logged(&bottle, &identity);
    let protected = agent_git(&format!(
        "cd w && git checkout -q main && echo y > y && git add . && {git} commit -qm y && git push origin main"
    ));
    assert!(
        protected.contains("protected") && !protected.ends_with("rc=0\n"),
        "{protected}"
    );
    // An upstream change is seen at once through the gate.
    upstream_exec(
        &upstream,
        "cd /tmp/s && echo news > NEWS && git add NEWS && git -c user.name=u -c user.email=u@x commit -qm news && git push -q origin HEAD:main",
    );
    let fetched = agent_git("cd w && git fetch -q origin && git log --format=%s origin/main");
    assert!(
        fetched.contains("news"),
        "fetch through the gate: {fetched}"
    );
    let force = agent_git(&format!(
        "cd w && git checkout -q feature && git reset -q --hard HEAD~2 && echo z > z && git add . && {git} commit -qm rewrite && git push --force origin feature"
    ));
    assert!(
        force.contains("force-pushed") && !force.ends_with("rc=0\n"),
        "{force}"
    );
    let direct = agent_git(
        "GIT_SSH_COMMAND='ssh -o ConnectTimeout=3 -o BatchMode=yes' git ls-remote ssh://git@git.upstream.test/home/git/app.git-direct",
    );
    assert!(
        !direct.ends_with("rc=0\n"),
        "the agent reached the upstream directly: {direct}"
    );
    // With the upstream down, reads fail closed with the reason.
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    rt().block_on(bottle.docker.remove_container(&upstream, Some(options)))
        .unwrap();
    let down = agent_git(&format!("git clone -q {UPSTREAM} w2"));
    assert!(
        down.contains("cannot fetch app from its upstream") && !down.ends_with("rc=0\n"),
        "{down}"
    );
    assert_gate_stops_on_sigterm(&bottle, &identity);
    assert!(bottle.bottle(&["stop", &identity]).status.success());
    bottle.assert_nothing_left();
}

/// The accepted push of `feature` and the refused one each left a decision line in
/// `bottle logs <id> git-gate`; the refusal names the file, never the value.
fn assert_decisions_logged(bottle: &TestBottle, identity: &str) {
    let logs = text(&bottle.bottle(&["logs", identity, "git-gate"]));
    let decisions: Vec<serde_json::Value> = logs
        .lines()
        // Each line is `[<container>] <what it wrote>`.
        .filter_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
        .filter(|v: &serde_json::Value| v.get("decision").is_some())
        .collect();
    let on_feature = |decision: &str| {
        decisions
            .iter()
            .filter(|v| v["ref"] == "refs/heads/feature" && v["decision"] == decision)
            .map(|v| v["reason"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        !on_feature("allow").is_empty(),
        "the accepted push is in the gate's log:\n{logs}"
    );
    assert!(
        on_feature("deny").iter().any(|r| r.contains("creds.env")),
        "the refused push is in the gate's log with its file:\n{logs}"
    );
    assert!(
        !logs.contains("AKIAQWERTYUIOPASDFGH"),
        "the secret in the log"
    );
}

/// `docker stop` with a 10 s grace ends the gate by its SIGTERM: it exits 0 (its supervisor's
/// clean stop), not 137 (SIGKILL once the grace ran out).
fn assert_gate_stops_on_sigterm(bottle: &TestBottle, identity: &str) {
    let gate = format!("bottle-{identity}-git-gate");
    let runtime = rt();
    let running = runtime
        .block_on(bottle.docker.inspect_container(&gate, None))
        .unwrap();
    assert_eq!(
        running.state.as_ref().and_then(|s| s.running),
        Some(true),
        "the gate runs before it is stopped"
    );
    let stop = bollard::query_parameters::StopContainerOptionsBuilder::default()
        .t(10)
        .build();
    runtime
        .block_on(bottle.docker.stop_container(&gate, Some(stop)))
        .unwrap();
    let stopped = runtime
        .block_on(bottle.docker.inspect_container(&gate, None))
        .unwrap();
    let code = stopped.state.and_then(|s| s.exit_code);
    assert_ne!(code, Some(137), "the gate ignored SIGTERM and was killed");
    assert_eq!(code, Some(0), "the gate's exit on SIGTERM");
}

#[test]
fn a_wrong_pinned_host_key_refuses_to_forward() {
    let Some(bottle) = TestBottle::new("gate-key") else {
        return;
    };
    let (key, client_pub, host_key, _) = keys(bottle.path());
    // The client's own public key is not the upstream's host key.
    let wrong = client_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    bottle.write(
        "bottles/test.md",
        &format!("---\ngit:\n  - Name: app\n    Upstream: {UPSTREAM}\n    IdentityFile: {}\n    KnownHostKey: {wrong}\n---\n", key.display()),
    );
    let agent = bottle.agent.get().unwrap().clone();
    let launch = bottle
        .command(&["start", &agent, "--detach", "--yes", "--no-claude-code"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let identity = identity_of(&launch);
    let upstream = start_upstream(&bottle, &identity, &client_pub, &host_key);
    let script = format!("git clone -q {UPSTREAM} /tmp/w 2>&1; echo rc=$?");
    let out = text(&bottle.bottle(&["exec", &identity, "sh", "-c", &script]));
    assert!(
        out.contains("Host key verification failed") && !out.contains("rc=0"),
        "{out}"
    );
    assert!(bottle.bottle(&["stop", &identity]).status.success());
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    rt().block_on(bottle.docker.remove_container(&upstream, Some(options)))
        .unwrap();
    bottle.assert_nothing_left();
}

/// An approved agent image stops the bottle. Before that, the operator is shown the agent's
/// commits that are on no upstream ref and, with `--rescue`, they are pushed through the gate to
/// `bottle/rescue/<identity>`; an uncommitted file is reported and left alone (nothing is
/// committed for the agent). The agent's `~/.claude` is kept, marked `capability`.
#[test]
fn an_approved_image_first_offers_to_rescue_unpushed_commits() {
    let Some(bottle) = TestBottle::new("rescue") else {
        return;
    };
    let (key, client_pub, host_key, host_pub) = keys(bottle.path());
    let host_key_line = host_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    bottle.write(
        "bottles/test.md",
        &format!(
            "---\ngit:\n  - Name: app\n    Upstream: {UPSTREAM}\n    IdentityFile: {}\n    KnownHostKey: {host_key_line}\nsupervise: true\n---\n",
            key.display()
        ),
    );
    let agent = bottle.agent.get().unwrap().clone();
    let launch = bottle
        .command(&["start", &agent, "--detach", "--yes", "--no-claude-code"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let identity = identity_of(&launch);
    let upstream = start_upstream(&bottle, &identity, &client_pub, &host_key);
    let git = "git -c user.name=agent -c user.email=agent@bottle.invalid";
    let work = text(&bottle.exec_in_agent(
        &identity,
        &format!(
            "cd /home/agent && git clone -q {UPSTREAM} w && cd w && git checkout -qb feature && \
             echo x > code.txt && git add . && {git} commit -qm 'unpushed work' && \
             echo draft > untracked.txt && mkdir -p /home/agent/.claude/projects/p && \
             echo '{{}}' > /home/agent/.claude/projects/p/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee.jsonl; echo rc=$?"
        ),
    ));
    assert!(work.contains("rc=0"), "{work}");
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"capability-block","arguments":{"justification":"jq","dockerfile":"FROM debian:bookworm-slim\n"}}}"#;
    let waiting = bottle
        .command(&[
            "exec",
            &identity,
            "sh",
            "-c",
            &format!(
                "curl -sS -N --max-time 120 http://supervise:7411/mcp -H 'Content-Type: application/json' \
                 -H 'Accept: application/json, text/event-stream' -d '{body}'"
            ),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let proposals = bottle
        .path()
        .join("state")
        .join(&identity)
        .join("supervise-queue/proposals");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        let found = std::fs::read_dir(&proposals)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_owned)
            })
            .find(|id| !id.starts_with('.'));
        if let Some(id) = found {
            break id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no proposal was queued"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let approved = bottle.bottle(&["supervise", "approve", &id, "--rescue"]);
    let said = text(&approved);
    assert!(approved.status.success(), "{said}");
    assert!(
        said.contains("commits on no upstream ref")
            && said.contains("unpushed work")
            && said.contains("/home/agent/w (feature): 1 commit(s)")
            && said.contains(&format!("pushed to bottle/rescue/{identity}"))
            && said.contains("uncommitted changes"),
        "{said}"
    );
    let _ = waiting.wait_with_output();
    let rescued = upstream_exec(
        &upstream,
        &format!(
            "git --git-dir=/home/git/app.git log --format=%s bottle/rescue/{identity}; git --git-dir=/home/git/app.git ls-tree --name-only bottle/rescue/{identity}"
        ),
    );
    assert!(rescued.contains("unpushed work"), "{rescued}");
    assert!(
        rescued.contains("code.txt") && !rescued.contains("untracked.txt"),
        "{rescued}"
    );
    let record = std::fs::read_to_string(
        bottle
            .path()
            .join("state")
            .join(&identity)
            .join("snapshot.json"),
    )
    .unwrap();
    assert!(record.contains("\"why\": \"capability\""), "{record}");
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    rt().block_on(bottle.docker.remove_container(&upstream, Some(options)))
        .unwrap();
    bottle.assert_nothing_left();
}
