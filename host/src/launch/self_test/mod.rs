//! The isolation self-test: before the agent's command starts, the launcher runs `bottle-probe
//! self-test` inside the agent container — as the agent user, in the agent's own network
//! namespace, under its runtime (runc or runsc) — and refuses the launch if any check fails.
//!
//! It runs beside provisioning ([`SelfTest::run_beside`]), so the launch pays only for what does
//! not overlap: the prober starts as soon as the agent runs; its network checks do not depend on
//! provisioning (which cannot change the agent's network: the container has no capabilities), its
//! file scans wait until the launcher says every file is in place, and its probes keep trying until
//! the launcher says the rest of provisioning is done (never less than their window). The report
//! comes before the agent's command, which never starts unless every check passed.
//!
//! Every check that something must *not* work (a probe) is paired with a control that the same
//! kind of probe *does* work from the same place, and controls run first: a probe that cannot see
//! proves nothing. The checks come from the plan and from what the engine made of it
//! ([`checks::plan_checks`]). For the "no host" check the launcher opens a listener on every host
//! address for the test only (ephemeral port, closed right after) and counts what reaches it.

pub mod checks;
pub mod report;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bottle_probe::fingerprint::{MODULUS, Needle};
use bottle_probe::spec::{self, Seen, Signal, Spec, Timing};

use super::identity::Identity;
use super::provision::{AGENT_HOME, Provisioning};
use super::secrets::SecretValues;
use super::sidecars::PROBE_PATH;
use super::{AGENT_USER, LaunchError, LaunchOptions, SelfTestUse, Step, at};
use crate::docker::Engine;
use crate::plan::assemble::AGENT_CA_CERT;
use crate::plan::model::AGENT_PROMPT_PATH;
use crate::plan::model::{EnvSource, Plan};
use checks::{Fingerprints, Promise, Surroundings};
pub use report::{Report, Row};

/// The escape hatch: with this set to `1` the launch skips the self-test (and says so in red).
pub const SKIP_ENV: &str = "BOTTLE_UNSAFE_SKIP_SELF_TEST";

/// How long the controls may take together: they answer within milliseconds on a sound bottle,
/// so this is reached only on the way to a refusal.
const CONTROL_WAIT: Duration = Duration::from_secs(2);

/// The least time a probe gets at launch before "no answer" counts as not reached (the probes
/// keep trying while provisioning goes on, which usually takes longer). Everything the agent may
/// reach is on its own bridge and answers the controls within a few milliseconds, runsc included;
/// a probe target that has not answered in this time (and in [`PROBE_FACTOR`] times the slowest
/// control's) has no route, or drops the agent's packets. (An unanswered address on the bridge
/// costs an ARP timeout of seconds; waiting for it would blow the launch's budget of 150 ms for
/// nothing.) A DNS answer forwarded to the internet may take longer: `bottle doctor` checks the
/// engine's forwarding with time to spare.
pub const LAUNCH_PROBE_FLOOR: Duration = Duration::from_millis(50);

/// `bottle doctor --isolation` can afford to wait longer.
pub const DOCTOR_PROBE_FLOOR: Duration = Duration::from_secs(1);

/// A probe gets at least this many times the slowest network control's time: on a loaded
/// machine, where the bridge itself is slow, the window grows with it.
pub const PROBE_FACTOR: u32 = 10;

/// Whether the operator turned the self-test off.
pub fn skipped_by_operator() -> bool {
    std::env::var(SKIP_ENV).as_deref() == Ok("1")
}

/// What the self-test needs of the launch.
pub struct SelfTest<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// The bottle.
    pub identity: &'a Identity,
    /// Its plan (with the real CIDR).
    pub plan: &'a Plan,
    /// The values the launch resolved (only fingerprints of them reach the prober).
    pub secrets: &'a SecretValues,
    /// The agent container.
    pub container: &'a str,
    /// The least time probes get.
    pub probe_floor: Duration,
}

impl SelfTest<'_> {
    /// Provision the agent and run every check beside it: the prober learns when the files are
    /// in place and when provisioning is done. `Err` when provisioning failed or the test itself
    /// could not run.
    pub async fn run_beside(&self, provisioning: &Provisioning<'_>) -> Result<Report, LaunchError> {
        let (signal, signals) = tokio::sync::mpsc::unbounded_channel();
        let tell = move |s: Signal| {
            // A prober that is gone has reported (or failed) already; its report says which.
            let _ = signal.send(s.line().as_bytes().to_vec());
        };
        let provision = async move {
            provisioning.place_files().await?;
            tell(Signal::FilesPlaced);
            provisioning.run_steps().await?;
            tell(Signal::End);
            Ok::<(), LaunchError>(())
        };
        let (_, report) = tokio::try_join!(provision, self.run(signals))?;
        Ok(report)
    }

    /// Run every check, the launcher's signals going to the prober's stdin; `Err` only when the
    /// test itself could not run.
    pub async fn run(
        &self,
        signals: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    ) -> Result<Report, LaunchError> {
        let fail = at(Step::SelfTest);
        let started = Instant::now();
        let listener = HostListener::open().await.map_err(&fail)?;
        let around = self.surroundings(listener.port).await.map_err(&fail)?;
        let prints = self.fingerprints().map_err(&fail)?;
        let planned = checks::plan_checks(self.plan, &around, &prints);
        let spec = Spec {
            control_ms: CONTROL_WAIT.as_millis() as u64,
            probe_floor_ms: self.probe_floor.as_millis() as u64,
            probe_factor: PROBE_FACTOR,
            checks: planned.iter().map(|p| p.check.clone()).collect(),
        };
        let prepared = started.elapsed();
        let (seen, timing, said) = self.probe(&spec, signals).await.map_err(&fail)?;
        tracing::debug!(
            prepared_ms = prepared.as_millis() as u64,
            probed_ms = (started.elapsed() - prepared).as_millis() as u64,
            "self-test: host side prepared, prober done"
        );
        let mut rows = report::judge(&planned, &seen, &said);
        // Closed only now: whatever reached the listener while the prober ran is counted.
        rows.extend(listener.close().await);
        Ok(Report::new(rows, started.elapsed().as_millis() as u64).with_timing(timing))
    }

    async fn probe(
        &self,
        spec: &Spec,
        signals: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    ) -> Result<(Vec<Seen>, Option<Timing>, String), String> {
        let env = [format!("{}={}", spec::ENV, spec.render())];
        let cmd = [PROBE_PATH.to_owned(), "self-test".to_owned()];
        let out = self
            .engine
            .exec_with_input(self.container, &cmd, Some(AGENT_USER), &env, signals)
            .await
            .map_err(|e| e.to_string())?;
        let said = format!("exit {}; {}", out.code, out.stderr.trim());
        Ok((
            Seen::parse_all(&out.stdout),
            Timing::parse_all(&out.stdout),
            said,
        ))
    }

    async fn surroundings(&self, listener_port: u16) -> Result<Surroundings, String> {
        let (internal_name, egress_name) = (
            self.identity.internal_network(),
            self.identity.egress_network(),
        );
        let (internal, egress, bridges) = tokio::join!(
            self.engine.network_addresses(&internal_name),
            self.engine.network_addresses(&egress_name),
            self.engine.bridge_gateways(),
        );
        let (internal, egress) = (
            internal.map_err(|e| e.to_string())?,
            egress.map_err(|e| e.to_string())?,
        );
        let egress_members = egress
            .members
            .into_iter()
            .filter_map(|(container, ip)| {
                let sidecar = self
                    .plan
                    .sidecars
                    .iter()
                    .find(|s| self.identity.sidecar_container(&s.name) == container)?;
                Some((sidecar.name.clone(), ip))
            })
            .collect();
        Ok(Surroundings {
            internal_gateways: internal.gateways,
            egress_gateways: egress.gateways,
            egress_members,
            bridge_gateways: bridges.map_err(|e| e.to_string())?,
            listener_port,
        })
    }

    /// Fingerprints of every secret only sidecars get, and of a value and bytes known to be in
    /// the agent (the controls). Bases are drawn fresh for every run.
    fn fingerprints(&self) -> Result<Fingerprints, String> {
        let bases = random_bases()?;
        let tokens = sidecar_only_secrets(self.plan)
            .into_iter()
            .filter_map(|name| {
                let value = self.secrets.get(&name)?;
                Some((name, Needle::of(value.as_bytes(), bases)))
            })
            .collect();
        let env_control = self.plan.agent.env.iter().find_map(|e| match &e.value {
            EnvSource::Literal(v) if v.len() >= 8 => Some((
                format!("the value of {}", e.name),
                Needle::of(v.as_bytes(), bases),
            )),
            _ => None,
        });
        let prompt = self.plan.agent.prompt.as_bytes();
        let file_control = (!prompt.is_empty()).then(|| {
            let head = &prompt[..prompt.len().min(32)];
            (
                "the start of the system prompt".to_owned(),
                Needle::of(head, bases),
            )
        });
        Ok(Fingerprints {
            tokens,
            env_control,
            file_control,
            files: self.files_put_in_agent(),
        })
    }

    /// What provisioning wrote into the agent.
    fn files_put_in_agent(&self) -> Vec<String> {
        let mut files = vec![AGENT_PROMPT_PATH.to_owned()];
        files.extend(self.plan.agent.files.iter().map(|f| f.path.clone()));
        if !self.plan.agent.skills.is_empty() {
            files.push(format!("{AGENT_HOME}/.claude/skills"));
        }
        if !self.plan.agent_trusts.is_empty() {
            files.push(AGENT_CA_CERT.to_owned());
        }
        files
    }
}

/// Provision the agent and, unless the operator skipped it, run the self-test beside it; record
/// the report in the launch record and the audit log, and refuse the launch when it failed (unless
/// only a report is wanted, as by `bottle doctor --isolation`).
pub async fn prove_beside(
    test: SelfTest<'_>,
    options: &LaunchOptions,
    provisioning: &Provisioning<'_>,
) -> Result<Option<Report>, LaunchError> {
    if options.self_test == SelfTestUse::Skip {
        tracing::warn!("self-test skipped ({SKIP_ENV}=1)");
        provisioning.run().await?;
        return Ok(None);
    }
    let report = test.run_beside(provisioning).await?;
    tracing::info!("isolation self-test:\n{}", report.table());
    let home_root = options.state_root.parent().unwrap_or(&options.state_root);
    if let Err(e) = record(home_root, &options.state_root, test.identity, &report) {
        tracing::warn!("could not record the self-test: {e}");
    }
    if !report.passed && options.self_test == SelfTestUse::Enforce {
        return Err(LaunchError {
            step: Step::SelfTest,
            message: report.refusal(),
        });
    }
    Ok(Some(report))
}

/// The least time probes get, by what the launch does with the self-test.
pub fn probe_floor(use_: SelfTestUse) -> Duration {
    match use_ {
        SelfTestUse::Report => DOCTOR_PROBE_FLOOR,
        _ => LAUNCH_PROBE_FLOOR,
    }
}

/// One self-test in the audit log.
#[derive(serde::Serialize)]
struct AuditLine<'a> {
    time: String,
    bottle: &'a str,
    event: &'static str,
    #[serde(flatten)]
    report: &'a Report,
}

/// Keep the report in the bottle's launch record and as a line of the audit log.
pub fn record(
    home_root: &std::path::Path,
    state_root: &std::path::Path,
    identity: &Identity,
    report: &Report,
) -> std::io::Result<()> {
    let line = AuditLine {
        time: super::state::now_rfc3339(),
        bottle: identity.as_str(),
        event: "self-test",
        report,
    };
    crate::audit::append(home_root, &line.time, &line)?;
    if super::state::exists(state_root, identity) {
        super::state::record_self_test(state_root, identity, report)?;
    }
    Ok(())
}

/// Secrets some sidecar's environment names and the agent's does not: route tokens and the like.
pub fn sidecar_only_secrets(plan: &Plan) -> Vec<String> {
    let secret = |e: &crate::plan::model::EnvEntry| match &e.value {
        EnvSource::Secret(name) => Some(name.clone()),
        EnvSource::Literal(_) => None,
    };
    let agents: Vec<String> = plan.agent.env.iter().filter_map(secret).collect();
    let mut names: Vec<String> = plan
        .sidecars
        .iter()
        .flat_map(|s| s.env.iter().filter_map(secret))
        .filter(|n| !agents.contains(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Two bases in `2..MODULUS-1` from the kernel's random source.
fn random_bases() -> Result<[u64; 2], String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?,
        &mut bytes,
    )
    .map_err(|e| format!("/dev/urandom: {e}"))?;
    let base = |chunk: &[u8]| {
        let n = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        2 + n % (MODULUS - 3)
    };
    Ok([base(&bytes[..8]), base(&bytes[8..])])
}

/// A TCP listener on every host address (IPv6 and IPv4 when the host has IPv6), on an ephemeral
/// port, for one self-test: it records who connects, and closes when the test ends.
struct HostListener {
    port: u16,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostListener {
    async fn open() -> Result<HostListener, String> {
        let socket = match tokio::net::TcpListener::bind("[::]:0").await {
            Ok(socket) => socket,
            Err(_) => tokio::net::TcpListener::bind("0.0.0.0:0")
                .await
                .map_err(|e| format!("opening the host listener: {e}"))?,
        };
        let port = socket.local_addr().map_err(|e| e.to_string())?.port();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let sink = peers.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = socket.accept().await {
                sink.lock().expect("listener peers").push(peer);
                drop(stream);
            }
        });
        let listener = HostListener { port, peers, task };
        listener.prove_it_answers().await?;
        Ok(listener)
    }

    /// The listener's own control: the host reaches it on loopback before the agent tries.
    async fn prove_it_answers(&self) -> Result<(), String> {
        let own = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| {
                format!(
                    "the host listener on port {} does not answer the host: {e}",
                    self.port
                )
            })?;
        drop(own);
        for _ in 0..200 {
            if !self.peers.lock().expect("listener peers").is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(format!(
            "the host listener on port {} accepted nothing from the host",
            self.port
        ))
    }

    /// Close the listener; a row for what it saw besides the host's own connection.
    async fn close(mut self) -> Vec<Row> {
        self.task.abort();
        let _ = (&mut self.task).await;
        let peers = self.peers.lock().expect("listener peers").clone();
        let from_bottle: Vec<String> = peers.iter().skip(1).map(SocketAddr::to_string).collect();
        let control = Row::judged(
            Promise::NoHost,
            true,
            format!(
                "the launcher's listener on the host (port {}) answers the host: answers",
                self.port
            ),
            format!(
                "accepted {}",
                peers.first().map(SocketAddr::to_string).unwrap_or_default()
            ),
            !peers.is_empty(),
        );
        let probe = Row::judged(
            Promise::NoHost,
            false,
            format!(
                "the launcher's listener on the host (port {}) accepts nothing from the bottle: nothing",
                self.port
            ),
            if from_bottle.is_empty() {
                "nothing".to_owned()
            } else {
                format!("connections from {}", from_bottle.join(", "))
            },
            from_bottle.is_empty(),
        );
        vec![control, probe]
    }
}

impl Drop for HostListener {
    /// A self-test abandoned mid-way (provisioning failed) leaves no listener behind.
    fn drop(&mut self) {
        self.task.abort();
    }
}
