//! `cargo bench -p bottle --bench launch`: warm launch and teardown of the default bottle on the
//! real Docker engine, beside a baseline made in the same run, with the agent under runc and under
//! gVisor (runsc), and the egress path's latency from inside each.
//!
//! - **bottle**: `bottle start --detach --yes --no-claude-code` from process start to exit (the
//!   agent is provisioned and ready), then `bottle stop`. The bottle is the embedded default one
//!   (egress proxy + agent) with `runtime: runc` or `runtime: runsc`.
//! - **baseline**: the same two networks and two containers (same images, same files, same health
//!   wait, the agent under the same runtime) created with the minimum of sequential API calls
//!   straight through bollard, then removed.
//! - **egress**: 50 sequential `curl` requests from inside the agent, through the egress proxy
//!   (CONNECT, TLS to the proxy's CA, the proxy's TLS to the upstream), to an HTTPS echo upstream
//!   on the bottle's egress network; the median of curl's own `time_total`.
//!
//! - **self-test**: the same warm launch with and without the isolation self-test
//!   (`BOTTLE_UNSAFE_SKIP_SELF_TEST=1`), interleaved so drift hits both alike: medians side by side,
//!   the time the self-test adds and the ratio, and the self-test's own duration from the launch
//!   record (most of it overlaps provisioning, so it is not what the launch pays).
//!
//! Images are built once before timing (warm). Targets (issue 4): launch ≤ 1.3× the baseline,
//! teardown ≤ 1.5 s; (issue 15) the self-test adds ≤ 150 ms. The runsc rows are skipped, saying
//! why, when the engine lists no runsc.
//!
//! `cargo bench -p bottle --bench launch -- self-test` runs only the self-test rows (a warm-up
//! launch, then the interleaved pairs), for both runtimes.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bottle::docker::{Engine, FileUpload};

const RUNS: usize = 5;
/// Pairs of the self-test rows: the difference of two launches is noisier than either.
const SELF_TEST_RUNS: usize = 9;
const LABEL: &str = "dev.bottle.test";
/// Requests of the egress workload.
const REQUESTS: usize = 50;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Ok(engine) = runtime.block_on(Engine::connect()) else {
        println!(
            "no Docker engine reachable: start dockerd (scripts/docker-engine start) and run again"
        );
        return;
    };
    let available = runtime.block_on(engine.runtimes()).unwrap();
    let only_self_test = std::env::args().skip(1).any(|a| a == "self-test");
    let mut egress = Vec::new();
    let mut self_test = Vec::new();
    for agent_runtime in ["runc", "runsc"] {
        if !available.iter().any(|r| r == agent_runtime) {
            println!(
                "{agent_runtime} rows skipped: the engine lists no {agent_runtime} runtime \
                 (it has: {}); scripts/docker-engine registers gVisor, `bottle doctor` says how",
                available.join(", ")
            );
            continue;
        }
        let home = bench_home(agent_runtime);
        let bottle = env!("CARGO_BIN_EXE_bottle");
        if only_self_test {
            // Warm-up: builds the images and compiles the plugins once.
            let id = start(bottle, home.path());
            stop(bottle, home.path(), &id);
        } else {
            launch_rows(&runtime, &engine, home.path(), agent_runtime);
        }
        self_test.push((agent_runtime, self_test_cost(bottle, home.path())));
        if !only_self_test {
            egress.push((agent_runtime, egress_times(&runtime, &engine, home.path())));
        }
    }
    print_self_test(&self_test);
    if only_self_test {
        return;
    }
    println!(
        "egress through the proxy, {REQUESTS} sequential HTTPS requests from the agent \
         (median of curl's time_total; the loop's wall time per request, curl's start included):"
    );
    for (agent_runtime, (median, per_request)) in &egress {
        println!(
            "  {agent_runtime:<6} {:>7.1} ms per request   {:>7.1} ms per request with curl's start",
            ms(*median),
            ms(*per_request)
        );
    }
    if let [(_, (runc, runc_loop)), (_, (runsc, runsc_loop))] = egress.as_slice() {
        println!(
            "  gVisor adds {:+.1} ms per request ({:.2}×), {:+.1} ms with curl's start ({:.2}×)",
            ms(*runsc) - ms(*runc),
            runsc.as_secs_f64() / runc.as_secs_f64(),
            ms(*runsc_loop) - ms(*runc_loop),
            runsc_loop.as_secs_f64() / runc_loop.as_secs_f64()
        );
    }
    println!(
        "  (a bottle with all four sidecars needs the pipelock image, which this machine cannot pull)"
    );
}

/// A bottle home with the default bottle under `agent_runtime`, an upstream it may reach, and an
/// agent `bench` that runs nothing of its own.
fn bench_home(agent_runtime: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let write = |relative: &str, text: &str| {
        let path = home.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let (ca, cert, key) = upstream_certificates();
    write("upstream/ca.pem", &ca);
    write("upstream/cert.pem", &cert);
    write("upstream/key.pem", &key);
    write(
        "agents/bench.md",
        "---\nbottle: bench\ncommand: [\"sleep\", \"300\"]\n---\nBench agent.\n",
    );
    write(
        "bottles/bench.md",
        &format!(
            "---\nenv: {{}}\negress:\n  firewall: builtin\n  allowlist: [upstream.test]\n\
             egress_proxy:\n  upstream_ca: [{}]\n  allow_cidrs: [172.16.0.0/12, 192.168.0.0/16, 10.0.0.0/8]\n\
             supervise: false\nruntime: {agent_runtime}\n---\n",
            home.path().join("upstream/ca.pem").display()
        ),
    );
    home
}

/// Warm launch and teardown of the bench bottle and of the baseline, `RUNS` times; prints medians.
fn launch_rows(
    runtime: &tokio::runtime::Runtime,
    engine: &Engine,
    home: &Path,
    agent_runtime: &str,
) {
    let bottle = env!("CARGO_BIN_EXE_bottle");
    // Warm-up: builds the images and compiles the plugins once.
    let id = start(bottle, home);
    stop(bottle, home, &id);
    let images = images(runtime, engine);

    let (mut ours_up, mut ours_down, mut base_up, mut base_down) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let t = Instant::now();
        let id = start(bottle, home);
        ours_up.push(t.elapsed());
        let t = Instant::now();
        stop(bottle, home, &id);
        ours_down.push(t.elapsed());
        let (up, down) = runtime.block_on(baseline(engine, &images, agent_runtime));
        base_up.push(up);
        base_down.push(down);
    }
    println!(
        "default bottle (egress-proxy + agent under {agent_runtime}), warm images, {RUNS} runs, medians:"
    );
    let (ou, od, bu, bd) = (
        median(&mut ours_up),
        median(&mut ours_down),
        median(&mut base_up),
        median(&mut base_down),
    );
    println!(
        "  launch    bottle {:>7.0} ms   baseline {:>7.0} ms   ratio {:.2} (target ≤ 1.30)",
        ms(ou),
        ms(bu),
        ou.as_secs_f64() / bu.as_secs_f64()
    );
    println!(
        "  teardown  bottle {:>7.0} ms   baseline {:>7.0} ms   (target ≤ 1500 ms: {})",
        ms(od),
        ms(bd),
        if od <= Duration::from_millis(1500) {
            "meets"
        } else {
            "MISSES"
        }
    );
}

/// Launch the bench bottle, start the upstream beside it, run the workload in the agent, and tear
/// both down: the median request time, and the loop's wall time per request.
fn egress_times(
    runtime: &tokio::runtime::Runtime,
    engine: &Engine,
    home: &Path,
) -> (Duration, Duration) {
    let bottle = env!("CARGO_BIN_EXE_bottle");
    let image = runtime.block_on(upstream_image(engine));
    let id = start(bottle, home);
    let upstream = format!("bench-upstream-{id}");
    runtime.block_on(start_upstream(engine, home, &id, &image, &upstream));
    let agent = format!("bottle-{id}");
    let url = "https://upstream.test/allowed/x";
    // Ready once one request passes (the upstream's Python takes a moment to listen).
    let ready = format!(
        "for i in $(seq 100); do curl -sf -o /dev/null {url} && exit 0; sleep 0.2; done; exit 1"
    );
    let exec = |script: &str| {
        let command = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        runtime
            .block_on(engine.exec(&agent, &command, Some("agent")))
            .unwrap()
    };
    let warm = exec(&ready);
    assert_eq!(warm.code, 0, "the upstream never answered: {}", warm.stderr);
    let workload = format!(
        "for i in $(seq {REQUESTS}); do curl -sS -o /dev/null -w '%{{time_total}}\\n' {url}; done"
    );
    let t = Instant::now();
    let out = exec(&workload);
    let per_request = t.elapsed() / REQUESTS as u32;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut times: Vec<Duration> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .collect();
    assert_eq!(times.len(), REQUESTS, "{}", out.stdout);
    stop(bottle, home, &id);
    runtime
        .block_on(engine.remove_container(&upstream))
        .unwrap();
    (median(&mut times), per_request)
}

/// A CA and a certificate for `upstream.test` signed by it: (ca, cert, key) in PEM.
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

/// The tests' HTTPS echo upstream (`tests/docker/upstream`), built once and kept as a cache.
async fn upstream_image(engine: &Engine) -> String {
    use futures_util::StreamExt;
    let tag = "bottle-test/upstream:latest";
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/docker/upstream");
    let mut archive = tar::Builder::new(Vec::new());
    archive.append_dir_all(".", &dir).unwrap();
    let body = archive.into_inner().unwrap();
    let labels = HashMap::from([(LABEL.to_owned(), "test-image".to_owned())]);
    let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .t(tag)
        .rm(true)
        .labels(&labels)
        .build();
    let mut stream =
        engine
            .client()
            .build_image(options, None, Some(bollard::body_full(body.into())));
    while let Some(step) = stream.next().await {
        let step = step.expect("building the upstream image");
        assert!(step.error_detail.is_none(), "{:?}", step.error_detail);
    }
    tag.to_owned()
}

/// The upstream on the bottle's egress network as `upstream.test`, labelled for the bench.
async fn start_upstream(engine: &Engine, home: &Path, id: &str, image: &str, name: &str) {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        labels: Some(HashMap::from([(LABEL.to_owned(), "bench".to_owned())])),
        ..Default::default()
    };
    let network = format!("bottle-egress-{id}");
    engine
        .create_container(name, body, &network, &["upstream.test".to_owned()])
        .await
        .unwrap();
    let read = |f: &str| std::fs::read(home.join("upstream").join(f)).unwrap();
    let files = [
        FileUpload {
            path: "/srv/cert.pem".into(),
            mode: 0o644,
            owner: (0, 0),
            contents: read("cert.pem"),
        },
        FileUpload {
            path: "/srv/key.pem".into(),
            mode: 0o600,
            owner: (0, 0),
            contents: read("key.pem"),
        },
    ];
    engine.upload(name, &files, None).await.unwrap();
    engine.start(name).await.unwrap();
}

/// The isolation self-test's share of a warm launch, medians of interleaved runs.
struct SelfTestCost {
    with: Duration,
    without: Duration,
    /// The self-test's own duration (the launch record's `took_ms`), overlapping provisioning.
    own: Duration,
}

/// The same launch with and without the self-test (`BOTTLE_UNSAFE_SKIP_SELF_TEST=1`), interleaved
/// so drift hits both alike; the order within a pair alternates so neither always runs second.
fn self_test_cost(bottle: &str, home: &Path) -> SelfTestCost {
    let (mut with, mut without, mut own) = (vec![], vec![], vec![]);
    for run in 0..SELF_TEST_RUNS {
        let order = if run % 2 == 0 { ["0", "1"] } else { ["1", "0"] };
        for skip in order {
            let t = Instant::now();
            let id = start_with(bottle, home, &[("BOTTLE_UNSAFE_SKIP_SELF_TEST", skip)]);
            let took = t.elapsed();
            if skip == "0" {
                with.push(took);
                own.push(recorded_self_test_time(home, &id));
            } else {
                without.push(took);
            }
            stop(bottle, home, &id);
        }
    }
    SelfTestCost {
        with: median(&mut with),
        without: median(&mut without),
        own: median(&mut own),
    }
}

/// The self-test's duration as the launch recorded it.
fn recorded_self_test_time(home: &Path, identity: &str) -> Duration {
    let path = home.join("state").join(identity).join("launch.json");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let took = record["self_test"]["took_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no self-test in {}: {record}", path.display()));
    Duration::from_millis(took)
}

fn print_self_test(rows: &[(&str, SelfTestCost)]) {
    println!(
        "isolation self-test, warm launch of the default bottle, {SELF_TEST_RUNS} interleaved pairs, medians:"
    );
    for (agent_runtime, cost) in rows {
        let added = cost.with.saturating_sub(cost.without);
        println!(
            "  {agent_runtime:<6} with {:>6.0} ms   without {:>6.0} ms   added {:>4.0} ms   ratio {:.3}   \
             self-test itself {:>4.0} ms   (budget: added ≤ 150 ms: {})",
            ms(cost.with),
            ms(cost.without),
            ms(added),
            cost.with.as_secs_f64() / cost.without.as_secs_f64(),
            ms(cost.own),
            if added <= Duration::from_millis(150) {
                "meets"
            } else {
                "MISSES"
            }
        );
    }
}

fn start(bottle: &str, home: &Path) -> String {
    start_with(bottle, home, &[])
}

fn start_with(bottle: &str, home: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(bottle)
        .args(["start", "bench", "--detach", "--yes", "--no-claude-code"])
        .envs(env.iter().copied())
        .env("BOTTLE_HOME", home)
        .env("BOTTLE_TEST_LABEL", "bench")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stop(bottle: &str, home: &Path, identity: &str) {
    let out = Command::new(bottle)
        .args(["stop", identity])
        .env("BOTTLE_HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image tags the warm-up built: (egress proxy, agent).
fn images(runtime: &tokio::runtime::Runtime, engine: &Engine) -> (String, String) {
    let find = |repo: &str| {
        let list = runtime
            .block_on(
                engine
                    .client()
                    .list_images(None::<bollard::query_parameters::ListImagesOptions>),
            )
            .unwrap();
        list.into_iter()
            .flat_map(|i| i.repo_tags)
            .find(|t| t.starts_with(repo))
            .unwrap_or_else(|| panic!("no {repo} image"))
    };
    (find("bottle/egress-proxy:"), find("bottle/agent:"))
}

/// Create and remove the same objects with the minimum of sequential calls.
async fn baseline(
    engine: &Engine,
    (proxy, agent): &(String, String),
    agent_runtime: &str,
) -> (Duration, Duration) {
    let mut labels = HashMap::new();
    labels.insert(LABEL.to_owned(), "bench-baseline".to_owned());
    let t = Instant::now();
    let cidr = engine
        .create_network("bench-net", true, &labels)
        .await
        .unwrap();
    engine
        .create_network("bench-egress", false, &labels)
        .await
        .unwrap();
    let config = format!(
        "version: 1\nlisten: 0.0.0.0:9099\nallow: [api.anthropic.com]\nfirewall: true\ntls:\n  ca_cert: /etc/bottle/ca/agent-ca.pem\n  ca_key: /etc/bottle/ca/agent-ca.key\nssrf:\n  allow_cidrs: [{cidr}]\n"
    );
    let ca = bottle::launch::ca::mint("agent", "bench").unwrap();
    let body = ContainerCreateBody {
        image: Some(proxy.clone()),
        labels: Some(labels.clone()),
        cmd: Some(vec![
            "/bottle-egress-proxy".into(),
            "--config".into(),
            "/etc/bottle/egress-proxy.yaml".into(),
        ]),
        ..Default::default()
    };
    engine
        .create_container("bench-proxy", body, "bench-net", &["egress-proxy".into()])
        .await
        .unwrap();
    let owner = (65534, 65534);
    let files = [
        FileUpload {
            path: "/etc/bottle/egress-proxy.yaml".into(),
            mode: 0o644,
            owner,
            contents: config.into_bytes(),
        },
        FileUpload {
            path: "/etc/bottle/ca/agent-ca.pem".into(),
            mode: 0o644,
            owner,
            contents: ca.cert_pem.into_bytes(),
        },
        FileUpload {
            path: "/etc/bottle/ca/agent-ca.key".into(),
            mode: 0o600,
            owner,
            contents: ca.key_pem.into_bytes(),
        },
        FileUpload {
            path: "/.bottle/probe".into(),
            mode: 0o755,
            owner: (0, 0),
            contents: bottle::assets::PROBE.to_vec(),
        },
    ];
    engine.upload("bench-proxy", &files, None).await.unwrap();
    engine
        .attach_network("bench-proxy", "bench-egress", &[])
        .await
        .unwrap();
    engine.start("bench-proxy").await.unwrap();
    let probe = [
        "/.bottle/probe".to_owned(),
        "http".into(),
        "9099".into(),
        "/healthz".into(),
    ];
    while engine
        .exec("bench-proxy", &probe, Some("0"))
        .await
        .unwrap()
        .code
        != 0
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = ContainerCreateBody {
        image: Some(agent.clone()),
        labels: Some(labels.clone()),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        host_config: Some(HostConfig {
            runtime: Some(agent_runtime.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    engine
        .create_container("bench-agent", body, "bench-net", &[])
        .await
        .unwrap();
    engine.start("bench-agent").await.unwrap();
    let up = t.elapsed();
    let t = Instant::now();
    engine.remove_container("bench-agent").await.unwrap();
    engine.remove_container("bench-proxy").await.unwrap();
    engine.remove_network("bench-net").await.unwrap();
    engine.remove_network("bench-egress").await.unwrap();
    (up, t.elapsed())
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
