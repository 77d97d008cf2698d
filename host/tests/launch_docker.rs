//! Real bottles on the real Docker engine: lifecycle, teardown from every step, secrets, the path
//! out through the egress proxy, isolation, and cleanup after `kill -9`.
//!
//! Every object a test creates carries `dev.bottle.test=<unique label>` (the launcher adds it from
//! `BOTTLE_TEST_LABEL`) and is removed when the test ends, pass or fail. Without an engine these
//! tests skip with a message, except under CI (`CI=true`), where a missing engine is a failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

const TEST_LABEL_KEY: &str = "dev.bottle.test";
const PROMPTED_SECRET: &str = "prompted-secret-value-7f3a9c";
const ROUTE_TOKEN: &str = "route-token-value-b81d22e0";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn docker() -> Option<Docker> {
    let connected = rt().block_on(async {
        let docker = Docker::connect_with_local_defaults().ok()?;
        docker.negotiate_version().await.ok()
    });
    if connected.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide a Docker engine (.ci/run starts dockerd)"
        );
        eprintln!("skipping: no Docker engine reachable");
    }
    connected
}

/// A bottle home for one test, and everything labelled for it.
struct TestBottle {
    agent: std::cell::OnceCell<String>,
    home: tempfile::TempDir,
    label: String,
    docker: Docker,
}

impl TestBottle {
    fn new(name: &str) -> Option<Self> {
        let docker = docker()?;
        let label = format!("{name}-{}", std::process::id());
        let bottle = TestBottle {
            agent: Default::default(),
            home: tempfile::tempdir().unwrap(),
            label,
            docker,
        };
        // Identities are global to the engine: each test, in each test run, has its own agent.
        let agent = format!("t-{name}-{}", std::process::id());
        let manifest = "---\nbottle: test\ncommand: [\"sleep\", \"300\"]\n---\nTest agent.\n";
        bottle.write(&format!("agents/{agent}.md"), manifest);
        bottle.agent.set(agent).unwrap();
        Some(bottle)
    }

    /// A new test bottle with the secret bottle manifest, launched detached; its identity.
    fn launched(name: &str) -> Option<(Self, String)> {
        let bottle = TestBottle::new(name)?;
        write_secret_bottle(&bottle, "");
        let identity = identity_of(&bottle.start_detached(&[]));
        Some((bottle, identity))
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bottle"));
        command
            .args(args)
            .env("BOTTLE_HOME", self.path())
            .env("HOME", self.path())
            .env("BOTTLE_TEST_LABEL", &self.label)
            .env("ROUTE_TOKEN", ROUTE_TOKEN)
            .env_remove("BOTTLE_FAULT_AT")
            .current_dir(self.path());
        command
    }

    /// `bottle start <agent> --detach --yes --no-claude-code`, answering the prompted secret on stdin.
    fn start_detached(&self, extra_env: &[(&str, &str)]) -> Output {
        let agent = self.agent.get().unwrap().clone();
        let mut command = self.command(&["start", &agent, "--detach", "--yes", "--no-claude-code"]);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        run_with_stdin(command, &format!("{PROMPTED_SECRET}\n"))
    }

    fn bottle(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    fn containers(&self) -> Vec<bollard::models::ContainerSummary> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_owned(),
            vec![format!("{TEST_LABEL_KEY}={}", self.label)],
        );
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        rt().block_on(self.docker.list_containers(Some(options)))
            .unwrap()
    }

    fn networks(&self) -> Vec<bollard::models::Network> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_owned(),
            vec![format!("{TEST_LABEL_KEY}={}", self.label)],
        );
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        rt().block_on(self.docker.list_networks(Some(options)))
            .unwrap()
    }

    fn assert_nothing_left(&self) {
        let containers: Vec<_> = self
            .containers()
            .into_iter()
            .filter_map(|c| c.names)
            .collect();
        assert!(
            containers.is_empty(),
            "containers left behind: {containers:?}"
        );
        let networks: Vec<_> = self.networks().into_iter().filter_map(|n| n.name).collect();
        assert!(networks.is_empty(), "networks left behind: {networks:?}");
        let run = self.path().join("run");
        let staged: Vec<_> = std::fs::read_dir(&run)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            staged.is_empty(),
            "stage directories left behind: {staged:?}"
        );
    }

    fn exec_in_agent(&self, identity: &str, script: &str) -> Output {
        self.bottle(&["exec", identity, "sh", "-c", script])
    }
}

impl Drop for TestBottle {
    fn drop(&mut self) {
        let runtime = rt();
        for container in self.containers() {
            if let Some(id) = container.id {
                let options = RemoveContainerOptionsBuilder::default().force(true).build();
                let _ = runtime.block_on(self.docker.remove_container(&id, Some(options)));
            }
        }
        for network in self.networks() {
            if let Some(id) = network.id {
                let _ = runtime.block_on(self.docker.remove_network(&id));
            }
        }
    }
}

fn run_with_stdin(mut command: Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn identity_of(output: &Output) -> String {
    assert!(output.status.success(), "launch failed:\n{}", text(output));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

/// A bottle with a prompted secret and a credential route whose token comes from the host.
fn write_secret_bottle(bottle: &TestBottle, extra: &str) {
    bottle.write(
        "bottles/test.md",
        &format!(
            "---\nenv:\n  SESSION_SECRET: \"?\"\n  LEVEL: debug\negress_proxy:\n  routes:\n    - host: upstream.test\n      \
             auth: {{scheme: Bearer, token_ref: ROUTE_TOKEN}}\n      path_allowlist: [/allowed/]\n{extra}---\n"
        ),
    );
}

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
    use futures_util::StreamExt;
    let tag = "bottle-test/upstream:latest".to_owned();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/docker/upstream");
    let mut archive = tar::Builder::new(Vec::new());
    archive.append_dir_all(".", &dir).unwrap();
    let body = archive.into_inner().unwrap();
    let mut labels = HashMap::new();
    labels.insert(TEST_LABEL_KEY.to_owned(), "upstream-image".to_owned());
    let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .t(&tag)
        .rm(true)
        .labels(&labels)
        .build();
    rt().block_on(async {
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(body.into())));
        while let Some(step) = stream.next().await {
            let step = step.expect("building the test upstream image");
            assert!(step.error_detail.is_none(), "{:?}", step.error_detail);
        }
    });
    tag
}

/// A certificate for `upstream.test` signed by a fresh test CA: (ca_pem, cert_pem, key_pem).
fn upstream_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["upstream.test".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// Start the upstream on the bottle's egress network under the alias `upstream.test`.
fn start_upstream(bottle: &TestBottle, identity: &str, image: &str, cert: &str, key: &str) {
    use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
    let name = format!("bottle-test-upstream-{}", bottle.label);
    let mut endpoints = HashMap::new();
    endpoints.insert(
        format!("bottle-egress-{identity}"),
        EndpointSettings {
            aliases: Some(vec!["upstream.test".into()]),
            ..Default::default()
        },
    );
    let mut labels = HashMap::new();
    labels.insert(TEST_LABEL_KEY.to_owned(), bottle.label.clone());
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        labels: Some(labels),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&name)
        .build();
    let runtime = rt();
    runtime
        .block_on(bottle.docker.create_container(Some(options), body))
        .unwrap();
    let files = [
        bottle::docker::FileUpload {
            path: "/srv/cert.pem".into(),
            mode: 0o644,
            owner: (0, 0),
            contents: cert.as_bytes().to_vec(),
        },
        bottle::docker::FileUpload {
            path: "/srv/key.pem".into(),
            mode: 0o600,
            owner: (0, 0),
            contents: key.as_bytes().to_vec(),
        },
    ];
    let archive = bottle::docker::tar_of(&files, None);
    let upload = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path("/")
        .build();
    runtime
        .block_on(bottle.docker.upload_to_container(
            &name,
            Some(upload),
            bollard::body_full(archive.into()),
        ))
        .unwrap();
    runtime
        .block_on(bottle.docker.start_container(&name, None))
        .unwrap();
}

#[test]
fn the_way_out_is_the_proxy_with_the_token_injected_and_refusals_logged() {
    let Some(bottle) = TestBottle::new("egress") else {
        return;
    };
    let (ca, cert, key) = upstream_certificates();
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
