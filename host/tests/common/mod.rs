//! The harness of the Docker tests: a bottle home per test, labelled objects removed at the end.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

pub const TEST_LABEL_KEY: &str = "dev.bottle.test";
pub const PROMPTED_SECRET: &str = "prompted-secret-value-7f3a9c";
pub const ROUTE_TOKEN: &str = "route-token-value-b81d22e0";

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn docker() -> Option<Docker> {
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
pub struct TestBottle {
    pub agent: std::cell::OnceCell<String>,
    pub home: tempfile::TempDir,
    pub label: String,
    pub docker: Docker,
}

impl TestBottle {
    pub fn new(name: &str) -> Option<Self> {
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
    pub fn launched(name: &str) -> Option<(Self, String)> {
        let bottle = TestBottle::new(name)?;
        write_secret_bottle(&bottle, "");
        let identity = identity_of(&bottle.start_detached(&[]));
        Some((bottle, identity))
    }

    pub fn path(&self) -> &Path {
        self.home.path()
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
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
    pub fn start_detached(&self, extra_env: &[(&str, &str)]) -> Output {
        let agent = self.agent.get().unwrap().clone();
        let mut command = self.command(&["start", &agent, "--detach", "--yes", "--no-claude-code"]);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        run_with_stdin(command, &format!("{PROMPTED_SECRET}\n"))
    }

    pub fn bottle(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn containers(&self) -> Vec<bollard::models::ContainerSummary> {
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

    pub fn networks(&self) -> Vec<bollard::models::Network> {
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

    pub fn assert_nothing_left(&self) {
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

    pub fn exec_in_agent(&self, identity: &str, script: &str) -> Output {
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

pub fn run_with_stdin(mut command: Command, input: &str) -> Output {
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

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn identity_of(output: &Output) -> String {
    assert!(output.status.success(), "launch failed:\n{}", text(output));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

/// A bottle with a prompted secret and a credential route whose token comes from the host.
pub fn write_secret_bottle(bottle: &TestBottle, extra: &str) {
    bottle.write(
        "bottles/test.md",
        &format!(
            "---\nenv:\n  SESSION_SECRET: \"?\"\n  LEVEL: debug\negress_proxy:\n  routes:\n    - host: upstream.test\n      \
             auth: {{scheme: Bearer, token_ref: ROUTE_TOKEN}}\n      path_allowlist: [/allowed/]\n{extra}---\n"
        ),
    );
}

/// Build `tests/docker/<dir>` as `tag` (labelled as a test image; kept as a cache between runs).
pub fn build_test_image(docker: &Docker, dir: &str, tag: &str) -> String {
    use futures_util::StreamExt;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/docker")
        .join(dir);
    let mut archive = tar::Builder::new(Vec::new());
    archive.append_dir_all(".", &dir).unwrap();
    let body = archive.into_inner().unwrap();
    let mut labels = HashMap::new();
    labels.insert(TEST_LABEL_KEY.to_owned(), "test-image".to_owned());
    let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .t(tag)
        .rm(true)
        .labels(&labels)
        .build();
    rt().block_on(async {
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(body.into())));
        while let Some(step) = stream.next().await {
            let step = step.expect("building a test image");
            assert!(step.error_detail.is_none(), "{:?}", step.error_detail);
        }
    });
    tag.to_owned()
}

/// Start a test container on the bottle's egress network under `alias`, with `files` copied in
/// before it starts; labelled for this test. Returns its name.
pub fn start_on_egress(
    bottle: &TestBottle,
    identity: &str,
    (name, image, alias): (&str, &str, &str),
    files: &[bottle::docker::FileUpload],
    owned_root: Option<&str>,
) -> String {
    start_on_egress_as(bottle, identity, (name, image, &[alias]), files, owned_root)
}

/// [`start_on_egress`] under several aliases.
pub fn start_on_egress_as(
    bottle: &TestBottle,
    identity: &str,
    (name, image, aliases): (&str, &str, &[&str]),
    files: &[bottle::docker::FileUpload],
    owned_root: Option<&str>,
) -> String {
    use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
    let name = format!("{name}-{}", bottle.label);
    let mut endpoints = HashMap::new();
    let endpoint = EndpointSettings {
        aliases: Some(aliases.iter().map(|a| a.to_string()).collect()),
        ..Default::default()
    };
    endpoints.insert(format!("bottle-egress-{identity}"), endpoint);
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
    let archive = bottle::docker::tar_of(files, owned_root);
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
    name
}

/// A file for [`start_on_egress`].
pub fn file(
    path: &str,
    mode: u32,
    owner: (u64, u64),
    contents: &str,
) -> bottle::docker::FileUpload {
    bottle::docker::FileUpload {
        path: path.into(),
        mode,
        owner,
        contents: contents.as_bytes().to_vec(),
    }
}

/// A server certificate for `names` signed by a fresh test CA: (ca_pem, cert_pem, key_pem).
pub fn test_certificates(names: &[&str]) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// Whether the engine lists gVisor's `runsc`. Under CI it must (`scripts/docker-engine` registers
/// it with the engine it starts), so the gVisor checks never skip there.
pub fn engine_has_runsc(docker: &Docker) -> bool {
    let info = rt().block_on(docker.info()).expect("engine info");
    let has = info.runtimes.unwrap_or_default().contains_key("runsc");
    assert!(
        has || std::env::var("CI").is_err(),
        "CI must register runsc with its engine (scripts/docker-engine does)"
    );
    has
}

/// The runtime the agent container runs under, as the engine recorded it (`HostConfig.Runtime`).
pub fn agent_runtime(bottle: &TestBottle, identity: &str) -> String {
    let inspect = rt()
        .block_on(
            bottle
                .docker
                .inspect_container(&format!("bottle-{identity}"), None),
        )
        .expect("inspect the agent");
    inspect
        .host_config
        .and_then(|h| h.runtime)
        .unwrap_or_default()
}

/// What the agent's kernel says about itself: `/proc/version` and the first lines of `dmesg`.
pub fn agent_kernel(bottle: &TestBottle, identity: &str) -> String {
    text(&bottle.exec_in_agent(identity, "cat /proc/version; dmesg 2>&1 | head -n 3"))
}

/// The agent runs under gVisor: the engine recorded runsc, and from inside, the kernel is gVisor's
/// (its boot line, and a `/proc/version` that is not the host's).
pub fn assert_agent_in_gvisor(bottle: &TestBottle, identity: &str) {
    assert_eq!(agent_runtime(bottle, identity), "runsc");
    let seen = agent_kernel(bottle, identity);
    assert!(
        seen.contains("Starting gVisor"),
        "no gVisor boot line: {seen}"
    );
    let host = std::fs::read_to_string("/proc/version").unwrap();
    assert!(
        !seen.contains(host.trim()),
        "the agent sees the host's kernel: {seen}"
    );
    // coreutils work: gVisor 2022-12 refuses their statx flag, the preloaded shim retries without.
    let listed = text(&bottle.exec_in_agent(
        identity,
        "ls -d /home/agent && stat -c %U /home/agent && ls /nonexistent; echo rc=$?",
    ));
    assert!(
        listed.contains("/home/agent\nagent\n") && listed.contains("No such file or directory"),
        "{listed}"
    );
    let list = text(&bottle.bottle(&["list"]));
    let row = list.lines().find(|l| l.starts_with(identity)).unwrap_or("");
    assert!(
        row.contains(" runsc "),
        "`bottle list` shows the runtime: {list}"
    );
}

/// The default `runtime: auto` put the agent under gVisor when the engine has it, else runc.
pub fn assert_default_runtime(bottle: &TestBottle, identity: &str) {
    if engine_has_runsc(&bottle.docker) {
        assert_agent_in_gvisor(bottle, identity);
    } else {
        assert_eq!(agent_runtime(bottle, identity), "runc");
    }
}

/// The value of a cgroup file of a container, read on the host (where the limit is enforced, and
/// visible under runc and gVisor alike): `v1` names the controller's file, `v2` the unified one.
pub fn host_cgroup_value(
    bottle: &TestBottle,
    container: &str,
    (controller, v1): (&str, &str),
    v2: &str,
) -> String {
    let inspect = rt()
        .block_on(bottle.docker.inspect_container(container, None))
        .expect("inspect");
    let pid = inspect
        .state
        .and_then(|s| s.pid)
        .expect("a running container");
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v1_path = cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| format!("/sys/fs/cgroup/{controller}{path}/{v1}"))
    });
    let file = v1_path.unwrap_or_else(|| {
        let path = cgroups
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a cgroup v2 line");
        format!("/sys/fs/cgroup{path}/{v2}")
    });
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_owned()
}

/// What a container wrote to its stdout so far.
pub fn container_stdout(bottle: &TestBottle, container: &str) -> String {
    use futures_util::StreamExt;
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .build();
    rt().block_on(async {
        let mut out = String::new();
        let mut stream = bottle.docker.logs(container, Some(options));
        while let Some(chunk) = stream.next().await {
            out.push_str(&chunk.expect("reading a container's log").to_string());
        }
        out
    })
}
