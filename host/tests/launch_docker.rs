//! Real bottles on the real Docker engine: lifecycle, teardown from every step, secrets, the path
//! out through the egress proxy, isolation, and cleanup after `kill -9`.
//!
//! Every object a test creates carries `dev.bottle.test=<unique label>` (the launcher adds it from
//! `BOTTLE_TEST_LABEL`) and is removed when the test ends, pass or fail. Without an engine these
//! tests skip with a message, except under CI (`CI=true`), where a missing engine is a failure.

mod common;
#[path = "launch_docker/smuggling.rs"]
mod smuggling;

use std::process::Stdio;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use common::*;

#[test]
fn full_lifecycle_leaves_nothing_behind() {
    let Some(bottle) = TestBottle::new("lifecycle") else {
        return;
    };
    write_secret_bottle(&bottle, "");
    let launched = bottle.start_detached(&[]);
    let identity = identity_of(&launched);
    // The preflight says what the engine will run the agent under, and the launch what it got.
    let (preflight, got) = if engine_has_runsc(&bottle.docker) {
        ("runtime: runsc (gVisor)", "agent runtime: runsc (gVisor)")
    } else {
        (
            "runtime: the engine's default (runc)",
            "agent runtime: runc",
        )
    };
    let said = text(&launched);
    assert!(said.contains(preflight) && said.contains(got), "{said}");
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
    assert_default_runtime(&bottle, &identity);
    assert_session_terminal_works(&bottle, &identity);
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

/// Also the explicit `runtime: runc` launch, so runc stays covered on an engine with gVisor.
#[test]
fn secrets_reach_only_where_they_belong() {
    let Some(bottle) = TestBottle::new("secrets") else {
        return;
    };
    write_secret_bottle(&bottle, "runtime: runc\n");
    let launched = bottle.start_detached(&[]);
    let identity = identity_of(&launched);
    assert!(
        text(&launched).contains("agent runtime: runc"),
        "{}",
        text(&launched)
    );
    assert_eq!(agent_runtime(&bottle, &identity), "runc");
    // The agent sees the host's kernel: the probe that finds gVisor elsewhere finds none here.
    let host = std::fs::read_to_string("/proc/version").unwrap();
    let kernel = agent_kernel(&bottle, &identity);
    assert!(kernel.contains(host.trim()), "{kernel}");
    assert!(!kernel.contains("gVisor"), "{kernel}");
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
fn the_agent_reaches_nothing_on_the_host() {
    let Some(bottle) = TestBottle::new("isolation") else {
        return;
    };
    let listener = HostListener::start();
    write_secret_bottle(&bottle, "limits:\n  memory: 1g\n  pids: 300\n");
    // A working tree with an untracked secret file, baked in with --cwd.
    let tree = bottle.write("tree/.env", "TREE_SECRET=untracked-env-file\n");
    let tree = tree.parent().unwrap().to_str().unwrap().to_owned();
    let agent = bottle.agent.get().unwrap().clone();
    let start = [
        "start",
        &agent,
        "--detach",
        "--yes",
        "--no-claude-code",
        "--cwd",
        &tree,
    ];
    let identity = identity_of(&run_with_stdin(
        bottle.command(&start),
        &format!("{PROMPTED_SECRET}\n"),
    ));
    assert_confined(&bottle, &identity);
    let workspace = agent_image(&bottle, &identity);
    assert!(workspace.starts_with("bottle/workspace:"), "{workspace}");
    let env_file = text(&bottle.exec_in_agent(&identity, "cat /workspace/.env"));
    assert!(env_file.contains("untracked-env-file"), "{env_file}");
    let port = listener.port;
    let internal = network_gateway(&bottle, &format!("bottle-net-{identity}"));
    let egress = network_gateway(&bottle, &format!("bottle-egress-{identity}"));
    let docker0 = network_gateway(&bottle, "bridge");
    let mut targets: Vec<String> = host_addresses();
    targets.extend(
        [internal.clone(), egress.clone(), docker0.clone()]
            .into_iter()
            .flatten(),
    );
    assert!(
        targets.len() >= 3,
        "too few host addresses to probe: {targets:?}"
    );

    // The probe sees the positive case: a plain bridge (the bottle's egress network) reaches the
    // listener at docker0's, the egress gateway's and the host's IPv4 addresses.
    let reachable: Vec<&String> = targets.iter().filter(|t| !t.contains(':')).collect();
    let seen = probe_from_egress(&bottle, &identity, &probe_script(&reachable, port));
    for target in [&egress, &docker0].into_iter().flatten() {
        assert!(
            seen.contains(&format!("open {target}")),
            "the probe did not reach the host listener at {target} from a plain bridge: {seen}"
        );
    }
    assert!(listener.accepted() > 0, "the listener saw no connection");
    // …and, from the agent, reaches its sidecar by the same means.
    let sidecar = text(&bottle.exec_in_agent(&identity, &probe_script(&["egress-proxy"], 9099)));
    assert!(sidecar.contains("open egress-proxy"), "{sidecar}");

    let before = listener.accepted();
    let agent = text(&bottle.exec_in_agent(&identity, &probe_script(&targets, port)));
    assert!(
        !agent.contains("open "),
        "the agent reached a listener on the host: {agent}"
    );
    assert!(agent.contains("closed "), "the probe did not run: {agent}");
    assert_eq!(
        listener.accepted(),
        before,
        "the host listener saw the agent"
    );
    assert_no_dns_leaves(&bottle, &identity);
    // A decision of the egress proxy, seen in its logs while it runs…
    bottle.exec_in_agent(
        &identity,
        "curl -sS --max-time 5 https://denied-host.test/ || true",
    );
    let live = text(&bottle.bottle(&["logs", &identity, "egress-proxy"]));
    assert!(live.contains("denied-host.test"), "no audit line: {live}");
    assert!(bottle.bottle(&["stop", &identity]).status.success());
    bottle.assert_nothing_left();
    // …is kept after its container is gone.
    let kept = bottle
        .path()
        .join(format!("audit/sidecars/{identity}/egress-proxy.log"));
    let kept = std::fs::read_to_string(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display()));
    assert!(kept.contains("denied-host.test"), "{kept}");
    // The image holding the tree (and its `.env`) went with the bottle.
    let gone = rt().block_on(bottle.docker.inspect_image(&workspace));
    assert!(
        gone.is_err(),
        "the workspace image {workspace} outlived its bottle"
    );
}

/// A name the agent looks up never leaves the machine as a DNS query (a DNS tunnel is a way out):
/// a capture on every host interface sees the same lookup made from the egress network, then not
/// the agent's, made before it.
fn assert_no_dns_leaves(bottle: &TestBottle, identity: &str) {
    let Some(capture) = DnsCapture::start() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tcpdump is missing (scripts/prerequisites installs it)"
        );
        eprintln!("skipping the DNS check: no tcpdump");
        return;
    };
    let tag = bottle
        .label
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let agent_name = format!("agent-{tag}.example.com");
    let probe_name = format!("probe-{tag}.example.com");
    let agent =
        text(&bottle.exec_in_agent(identity, &format!("getent hosts {agent_name}; echo rc=$?")));
    assert!(agent.contains("rc=2"), "resolved from the agent: {agent}");
    let sidecar = text(&bottle.exec_in_agent(identity, "getent hosts egress-proxy; echo rc=$?"));
    assert!(
        sidecar.contains("rc=0"),
        "sidecar names must still resolve: {sidecar}"
    );
    probe_from_egress(bottle, identity, &format!("getent hosts {probe_name}"));
    let seen = capture.wait_for(&probe_name);
    assert!(
        seen.contains(&probe_name),
        "the capture saw no query at all: {seen}"
    );
    assert!(
        !seen.contains(&agent_name),
        "the agent's lookup left the machine: {seen}"
    );
}

/// `tcpdump` on every interface for DNS, run by pid and killed on drop.
struct DnsCapture {
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl DnsCapture {
    fn start() -> Option<DnsCapture> {
        use std::io::BufRead;
        let mut child = std::process::Command::new("tcpdump")
            .args(["-i", "any", "-n", "-l", "udp port 53 or tcp port 53"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (out, err) = (child.stdout.take()?, child.stderr.take()?);
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        // tcpdump says "listening on …" once the capture is armed (after any warnings).
        let mut said = String::new();
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            said.push_str(&line);
            if line.contains("listening on") {
                break;
            }
        }
        assert!(said.contains("listening on"), "tcpdump: {said}");
        Some(DnsCapture { child, seen })
    }

    /// What was captured once `name` shows up (or after 30 s).
    fn wait_for(&self, name: &str) -> String {
        for _ in 0..300 {
            if self.seen.lock().unwrap().contains(name) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for DnsCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The image the agent container runs.
fn agent_image(bottle: &TestBottle, identity: &str) -> String {
    let inspect = rt()
        .block_on(
            bottle
                .docker
                .inspect_container(&format!("bottle-{identity}"), None),
        )
        .unwrap();
    inspect.config.and_then(|c| c.image).unwrap()
}

/// The agent runs as `agent` with no capabilities, no way to gain privileges, and the bottle's
/// memory and process limits (cgroup v1 or v2 files, whichever the engine uses).
fn assert_confined(bottle: &TestBottle, identity: &str) {
    let status = text(&bottle.exec_in_agent(identity, "cat /proc/self/status"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{name} not in /proc/self/status: {status}"))
            .to_owned()
    };
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(
        field("CapBnd:"),
        "0000000000000000",
        "capabilities not dropped"
    );
    // gVisor's /proc/self/status has no NoNewPrivs line; prctl answers under both runtimes.
    let privileges = text(&bottle.exec_in_agent(identity, "setpriv --dump"));
    assert!(
        privileges.contains("no_new_privs: 1"),
        "no-new-privileges not set: {privileges}"
    );
    let init = text(&bottle.exec_in_agent(identity, "grep '^Uid:' /proc/1/status"));
    assert!(
        init.starts_with("Uid:\t1000\t"),
        "PID 1 is not the agent user: {init}"
    );
    // Root inside the container (as the launcher's provisioning runs) has no capabilities either.
    let root = exec_as_root(
        bottle,
        &format!("bottle-{identity}"),
        "id -u; grep ^CapEff: /proc/self/status",
    );
    assert!(root.starts_with("0\n"), "not root: {root}");
    assert!(root.contains("CapEff:\t0000000000000000"), "{root}");
    // Read on the host, where the engine enforces them: gVisor shows the agent no cgroup files.
    let agent = format!("bottle-{identity}");
    let memory = host_cgroup_value(
        bottle,
        &agent,
        ("memory", "memory.limit_in_bytes"),
        "memory.max",
    );
    let pids = host_cgroup_value(bottle, &agent, ("pids", "pids.max"), "pids.max");
    // Under gVisor the host counts the sandbox's tasks, about ten per agent process.
    let host_pids = if agent_runtime(bottle, identity) == "runsc" {
        "3000"
    } else {
        "300"
    };
    assert_eq!(
        [memory.as_str(), pids.as_str()],
        ["1073741824", host_pids],
        "limits not applied"
    );
    // A hundred processes, a third of the bottle's limit, run and the agent lives on.
    let many = text(&bottle.exec_in_agent(
        identity,
        "for i in $(seq 100); do sleep 3 & done; ps -e --no-headers | wc -l; wait; echo done",
    ));
    let counted: usize = many
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(counted > 100 && many.contains("done"), "{many}");
    let alive = rt()
        .block_on(bottle.docker.inspect_container(&agent, None))
        .unwrap();
    assert_eq!(
        alive.state.and_then(|s| s.running),
        Some(true),
        "the agent died"
    );
}

/// What the interactive session relies on works in the agent's runtime: a TTY exec sees the size
/// the launcher sets (as `bottle start` does on SIGWINCH), and Ctrl-C typed into the terminal
/// interrupts the command.
fn assert_session_terminal_works(bottle: &TestBottle, identity: &str) {
    use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecResults};
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let script = "for i in $(seq 300); do s=$(stty size); [ \"$s\" = '37 111' ] && break; \
                  sleep 0.1; done; echo \"size=$s\"; exec sleep 300";
    let container = format!("bottle-{identity}");
    let docker = &bottle.docker;
    let (said, code) = rt().block_on(async {
        let options = CreateExecOptions {
            cmd: Some(vec!["sh", "-c", script]),
            user: Some("agent"),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(true),
            ..Default::default()
        };
        let exec = docker.create_exec(&container, options).await.unwrap();
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = docker.start_exec(&exec.id, None).await.unwrap()
        else {
            panic!("the engine did not attach the terminal");
        };
        let size = ResizeExecOptions {
            height: 37,
            width: 111,
        };
        docker.resize_exec(&exec.id, size).await.unwrap();
        let mut said = String::new();
        // Bounded so a broken runtime fails the test instead of hanging it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !said.contains('\n') || !said.contains("size=") {
            match tokio::time::timeout_at(deadline, output.next()).await {
                Ok(Some(Ok(chunk))) => said.push_str(&chunk.to_string()),
                _ => break,
            }
        }
        input.write_all(b"\x03").await.unwrap();
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, output.next()).await {
            said.push_str(&chunk.to_string());
        }
        let code = docker.inspect_exec(&exec.id).await.unwrap().exit_code;
        (said, code)
    });
    assert!(
        said.contains("size=37 111"),
        "the resize did not arrive: {said}"
    );
    assert_eq!(
        code,
        Some(130),
        "Ctrl-C did not interrupt the command: {said}"
    );
}

/// Run `script` as root in `container` through the engine; its output.
fn exec_as_root(bottle: &TestBottle, container: &str, script: &str) -> String {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures_util::StreamExt;
    rt().block_on(async {
        let options = CreateExecOptions {
            cmd: Some(vec!["sh", "-c", script]),
            user: Some("0"),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = bottle.docker.create_exec(container, options).await.unwrap();
        let mut out = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            bottle.docker.start_exec(&exec.id, None).await.unwrap()
        {
            while let Some(Ok(chunk)) = output.next().await {
                out.push_str(&chunk.to_string());
            }
        }
        out
    })
}

/// A shell loop that tries a TCP connection to each target and prints `open T` or `closed T`.
fn probe_script(targets: &[impl AsRef<str>], port: u16) -> String {
    let list: Vec<&str> = targets.iter().map(AsRef::as_ref).collect();
    format!(
        "for t in {}; do if timeout 3 bash -c \"exec 3<>/dev/tcp/$t/{port}\" 2>/dev/null; \
         then echo \"open $t\"; else echo \"closed $t\"; fi; done",
        list.join(" ")
    )
}

/// A TCP listener on every host address (0.0.0.0, ephemeral port) counting what it accepts.
struct HostListener {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HostListener {
    fn start() -> HostListener {
        let socket = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        // Detached: the thread ends with the test process.
        std::thread::spawn(move || {
            for stream in socket.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        HostListener { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Every address this host has (`hostname -I`), IPv4 and IPv6.
fn host_addresses() -> Vec<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The gateway address the engine assigned to a network (it may have no host-side address).
fn network_gateway(bottle: &TestBottle, network: &str) -> Option<String> {
    let inspect = rt()
        .block_on(bottle.docker.inspect_network(network, None))
        .unwrap_or_else(|e| panic!("inspect {network}: {e}"));
    inspect.ipam?.config?.into_iter().find_map(|c| c.gateway)
}

/// Run `script` in a labelled throwaway container on the bottle's egress network; its output.
fn probe_from_egress(bottle: &TestBottle, identity: &str, script: &str) -> String {
    use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
    let name = format!("probe-{}", bottle.label);
    let endpoints = std::collections::HashMap::from([(
        format!("bottle-egress-{identity}"),
        EndpointSettings::default(),
    )]);
    let labels =
        std::collections::HashMap::from([(TEST_LABEL_KEY.to_owned(), bottle.label.clone())]);
    let body = ContainerCreateBody {
        image: Some("debian:bookworm-slim".into()),
        cmd: Some(vec!["bash".into(), "-c".into(), script.into()]),
        labels: Some(labels),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&name)
        .build();
    rt().block_on(async {
        use futures_util::StreamExt;
        let docker = &bottle.docker;
        docker.create_container(Some(options), body).await.unwrap();
        docker.start_container(&name, None).await.unwrap();
        let mut wait = docker.wait_container(&name, None);
        while wait.next().await.is_some() {}
        let logs = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let mut out = String::new();
        let mut stream = docker.logs(&name, Some(logs));
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&chunk.to_string());
        }
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = docker.remove_container(&name, Some(remove)).await;
        out
    })
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

/// Start the upstream on the bottle's egress network under the aliases `upstream.test` (the
/// route's host) and [`smuggling::DLP_HOST`]; its container's name.
fn start_upstream(
    bottle: &TestBottle,
    identity: &str,
    image: &str,
    cert: &str,
    key: &str,
) -> String {
    let files = [
        file("/srv/cert.pem", 0o644, (0, 0), cert),
        file("/srv/key.pem", 0o600, (0, 0), key),
    ];
    start_on_egress_as(
        bottle,
        identity,
        (
            "bottle-test-upstream",
            image,
            &["upstream.test", smuggling::DLP_HOST],
        ),
        &files,
        None,
    )
}

#[test]
fn the_way_out_is_the_proxy_with_the_token_injected_and_refusals_logged() {
    let Some(bottle) = TestBottle::new("egress") else {
        return;
    };
    let (ca, cert, key) = test_certificates(&["upstream.test", smuggling::DLP_HOST]);
    let ca_path = bottle.write("upstream-ca.pem", &ca);
    write_secret_bottle(
        &bottle,
        &format!(
            "  upstream_ca: [{}]\n  allow_cidrs: [172.16.0.0/12, 192.168.0.0/16, 10.0.0.0/8]\n\
             egress:\n  allowlist: [{}]\n",
            ca_path.display(),
            smuggling::DLP_HOST
        ),
    );
    let image = build_upstream_image(&bottle.docker);
    let identity = identity_of(&bottle.start_detached(&[]));
    // The CA trust and the proxy below are checked from an agent in gVisor (where the engine has it).
    assert_default_runtime(&bottle, &identity);
    let upstream = start_upstream(&bottle, &identity, &image, &cert, &key);
    let fetch = |args: &str| {
        text(&bottle.exec_in_agent(&identity, &format!("curl -sS --max-time 10 {args}")))
    };
    let mut seen = String::new();
    for _ in 0..50 {
        seen = fetch("https://upstream.test/allowed/path");
        if seen.contains("\"method\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The upstream saw a token of the route token's length and echoed it; the proxy cut it out of
    // the answer (only the route's own token is cut), so the agent never reads it.
    assert!(
        seen.contains(&format!("Bearer {}", "*".repeat(ROUTE_TOKEN.len()))),
        "the upstream sees the injected token, the agent its cut echo: {seen}"
    );
    assert!(!seen.contains(ROUTE_TOKEN), "the token is cut: {seen}");
    let code = |args: &str| fetch(&format!("-o /dev/null -w '%{{http_code}}' {args}"));
    assert_eq!(
        code("-H 'Authorization: Bearer forged' https://upstream.test/allowed/forged"),
        "403",
        "the agent's own Authorization beside the route's token"
    );
    assert_eq!(
        code("-X PUT https://upstream.test/allowed/write"),
        "403",
        "a write method the route does not name"
    );
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
    for refused in [
        "/elsewhere",
        "not-allowed.test",
        "git-receive-pack",
        "/allowed/forged",
        "/allowed/write",
    ] {
        assert!(
            logs.lines()
                .any(|l| l.contains(refused) && l.contains("deny")),
            "no refusal of {refused} in logs:\n{logs}"
        );
    }
    assert!(!logs.contains(ROUTE_TOKEN));
    smuggling::assert_secret_never_leaves(&bottle, &identity, &upstream);
    smuggling::assert_websocket_frames_scanned(&bottle, &identity, &upstream);
    let stop = bottle.bottle(&["stop", &identity]);
    assert!(
        stop.status.success(),
        "stop with a foreign container on the egress network: {}",
        text(&stop)
    );
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    rt().block_on(bottle.docker.remove_container(&upstream, Some(options)))
        .unwrap();
    bottle.assert_nothing_left();
}

#[test]
fn doctor_proves_internal_networks_resolve_no_public_names() {
    let Some(bottle) = TestBottle::new("doctor") else {
        return;
    };
    let out = bottle.bottle(&["doctor"]);
    let shown = text(&out);
    // The verdict line says both halves: the control lookup resolved on an ordinary network (so
    // the probe works) and the same lookup failed on an internal one.
    assert!(
        shown.contains(
            "ok    internal DNS: deb.debian.org resolves on an ordinary network (\
             "
        ) && shown.contains("and not on an internal one"),
        "{shown}"
    );
    // gVisor: registered with its version and platform, and a container under it really boots.
    if engine_has_runsc(&bottle.docker) {
        assert!(
            shown.contains("ok    runsc: registered at ")
                && shown.contains("(runsc version ")
                && shown.contains("platform ptrace"),
            "{shown}"
        );
        assert!(
            shown.contains("ok    runsc start: a container under runsc boots gVisor"),
            "{shown}"
        );
    } else {
        assert!(shown.contains("apt-get install runsc"), "{shown}");
    }
    bottle.assert_nothing_left();
}
