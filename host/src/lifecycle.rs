//! The whole life of a bottle: resolve secrets, launch, provision, run the session (or detach), and
//! tear down on every exit — normal, error, Ctrl-C, SIGTERM or panic.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::docker::{Engine, labels};
use crate::home::Home;
use crate::image::{ImageBuilder, ImageOptions};
use crate::launch::ca::{self, MintedCa};
use crate::launch::identity::Identity;
use crate::launch::ledger::{Created, Ledger};
use crate::launch::provision::{AGENT_HOME, Provisioning};
use crate::launch::secrets::{self, SecretValues};
use crate::launch::sidecars::SidecarContext;
use crate::launch::{self, LaunchError, LaunchOptions, Running, Step, state};
use crate::plan::model::{ImagePlan, Plan};
use crate::plan::{self, PlanInput};
use crate::plugin::Registry;
use crate::prepare::{self, Selection};
use crate::render;
use crate::snapshot;

/// What `bottle start` asked for.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Skip the y/N confirmation.
    pub yes: bool,
    /// Launch and return, leaving the bottle running.
    pub detach: bool,
    /// Bake this tree into the agent image at /workspace.
    pub cwd: Option<PathBuf>,
    /// A pinned identity.
    pub name: Option<String>,
    /// Install Claude Code into the agent image.
    pub install_claude_code: bool,
    /// A project's agent may run in a credentialed home bottle without the typed confirmation.
    pub trust_project_agent: bool,
    /// Copy the bottle's kept `~/.claude` back into the agent before its command starts.
    pub restore: bool,
}

/// Launch the selection and run it to the end; returns the process exit code.
pub async fn start(
    home: &Home,
    registry: Registry,
    selection: Selection,
    dry_plan: &Plan,
    request: StartRequest,
) -> anyhow::Result<i32> {
    let interactive = std::io::stdin().is_terminal();
    let claim = crate::trust::project_claim(&selection).filter(|_| !request.trust_project_agent);
    if let Some(claim) = claim.as_ref().filter(|_| !interactive) {
        return Err(claim.refusal());
    }
    if !request.yes && !interactive {
        anyhow::bail!("no terminal to confirm the launch on; pass --yes to launch without asking");
    }
    let engine = Engine::connect().await?;
    let runtimes = engine.runtimes().await?;
    let findings = prepare::policy_findings(home, &registry, dry_plan, runtimes.clone())?;
    if !findings.is_empty() {
        return Err(prepare::policy_refusal(&findings));
    }
    // A bottle that needs gVisor stops here, before anything is asked or created.
    launch::runtime::choose(&dry_plan.runtime, &runtimes).map_err(|e| anyhow::anyhow!(e))?;
    let runtime = launch::runtime::describe(&dry_plan.runtime, &runtimes);
    eprintln!("preflight: {}", render::preflight_on(dry_plan, &runtime));
    if selection.bottle.egress_proxy.learn {
        eprintln!("{}", crate::learn::banner());
    }
    if launch::self_test::skipped_by_operator() {
        eprintln!("{}", render::self_test_skipped());
        if std::env::var_os(launch::TEST_FAULT_ENV).is_some() {
            anyhow::bail!(
                "{} and {} together would launch a bottle with broken isolation; unset one of them",
                launch::self_test::SKIP_ENV,
                launch::TEST_FAULT_ENV
            );
        }
    }
    if let Some(claim) = claim {
        eprint!("{}", claim.question());
        if !claim.allowed_by(&read_answer()?) {
            eprintln!("not launched");
            return Ok(1);
        }
    } else if !request.yes && !confirm()? {
        eprintln!("not launched");
        return Ok(1);
    }
    let secrets = secrets::resolve(&selection.bottle)?;
    let options = launch_options(home, &selection, &request);
    let identity = launch::choose_identity(&engine, &options).await?;
    let record = state::ResumeRecord {
        identity: identity.to_string(),
        agent: selection.agent.name.clone(),
        cwd: std::env::current_dir()?,
        workspace: request.cwd.clone(),
        launched_at: state::now_rfc3339(),
        self_test: None,
    };
    let state_dir = state::create(&options.state_root, &record)
        .context("creating the bottle's state directory")?;
    let ledger = Ledger::default();
    let outcome = supervise_launch(
        &engine, &ledger, registry, &selection, &options, &identity, secrets, state_dir,
    )
    .await;
    finish(
        &engine,
        &ledger,
        &options,
        &identity,
        outcome,
        request.detach,
    )
    .await
}

/// `bottle doctor --isolation`: launch the selection as a throwaway bottle (every secret a random
/// placeholder, no Claude Code, no session), run the self-test, and remove everything again.
pub async fn throwaway_self_test(
    home: &Home,
    registry: Registry,
    selection: &Selection,
    dry_plan: &Plan,
) -> anyhow::Result<launch::self_test::Report> {
    let engine = Engine::connect().await?;
    let request = StartRequest {
        yes: true,
        detach: true,
        cwd: None,
        name: Some(format!("doctor-isolation-{}", std::process::id())),
        install_claude_code: false,
        trust_project_agent: false,
        restore: false,
    };
    let mut options = launch_options(home, selection, &request);
    options.self_test = launch::SelfTestUse::Report;
    let identity = launch::choose_identity(&engine, &options).await?;
    let mut secrets = SecretValues::default();
    for name in &dry_plan.secrets {
        secrets.insert(
            name,
            &format!("doctor-placeholder-{name}-{}", std::process::id()),
        );
    }
    let record = state::ResumeRecord {
        identity: identity.to_string(),
        agent: selection.agent.name.clone(),
        cwd: std::env::current_dir()?,
        workspace: None,
        launched_at: state::now_rfc3339(),
        self_test: None,
    };
    let state_dir = state::create(&options.state_root, &record)
        .context("creating the throwaway bottle's state directory")?;
    let ledger = Ledger::default();
    let input = prepare::plan_input(&selection.agent, &selection.bottle, plan::DRY_RUN_CIDR);
    let launched = tokio::select! {
        outcome = run_bottle(&engine, &ledger, registry, input, &options, &identity, &secrets, &state_dir) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted by Ctrl-C")),
    };
    let failures = ledger.teardown(&engine).await;
    let _ = std::fs::remove_dir_all(&state_dir);
    if !failures.is_empty() {
        eprintln!(
            "teardown could not remove everything ({}); run `bottle cleanup`",
            failures.join("; ")
        );
    }
    match launched? {
        Outcome::Detached(running) => running
            .self_test
            .ok_or_else(|| anyhow::anyhow!("the throwaway bottle ran no self-test")),
        _ => anyhow::bail!("the throwaway bottle did not come up"),
    }
}

fn confirm() -> anyhow::Result<bool> {
    eprint!("launch this bottle? [y/N] ");
    Ok(matches!(read_answer()?.trim(), "y" | "Y" | "yes"))
}

fn read_answer() -> anyhow::Result<String> {
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer)
}

fn launch_options(home: &Home, selection: &Selection, request: &StartRequest) -> LaunchOptions {
    let input = prepare::plan_input(&selection.agent, &selection.bottle, plan::DRY_RUN_CIDR);
    LaunchOptions {
        detach: request.detach,
        cwd: request.cwd.clone(),
        name: request.name.clone(),
        install_claude_code: request.install_claude_code,
        cache_dir: home.cache_dir(),
        state_root: home.root().join("state"),
        stage_root: home.root().join("run"),
        runtime: input.runtime,
        agent: selection.agent.name.clone(),
        bottle: selection.bottle.name.clone(),
        restore: request.restore,
        self_test: if launch::self_test::skipped_by_operator() {
            launch::SelfTestUse::Skip
        } else {
            launch::SelfTestUse::Enforce
        },
        learn: selection.bottle.egress_proxy.learn,
    }
}

/// How the launch task ended.
enum Outcome {
    /// The session ran; its exit code.
    Exited(i64),
    /// Detached after provisioning.
    Detached(Box<Running>),
    /// Failed.
    Failed(anyhow::Error),
    /// Interrupted by a signal.
    Interrupted(&'static str),
}

/// Run launch + session as a task, racing Ctrl-C and SIGTERM; a panic in the task is an outcome
/// too, so teardown always runs.
#[allow(clippy::too_many_arguments)]
async fn supervise_launch(
    engine: &Engine,
    ledger: &Ledger,
    registry: Registry,
    selection: &Selection,
    options: &LaunchOptions,
    identity: &Identity,
    secrets: SecretValues,
    state_dir: PathBuf,
) -> Outcome {
    let task = {
        let (engine, ledger, options, identity) = (
            engine.clone(),
            ledger.clone(),
            options.clone(),
            identity.clone(),
        );
        let input = prepare::plan_input(&selection.agent, &selection.bottle, plan::DRY_RUN_CIDR);
        tokio::spawn(async move {
            run_bottle(
                &engine, &ledger, registry, input, &options, &identity, &secrets, &state_dir,
            )
            .await
        })
    };
    let terminated = signal(tokio::signal::unix::SignalKind::terminate());
    // A closed terminal (SIGHUP) would otherwise kill the launcher with the bottle still up.
    let hung_up = signal(tokio::signal::unix::SignalKind::hangup());
    let mut task = task;
    let interrupted = tokio::select! {
        joined = &mut task => return match joined {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::Failed(e),
            Err(e) if e.is_panic() => Outcome::Failed(anyhow::anyhow!("the launcher panicked; everything it created is removed")),
            Err(e) => Outcome::Failed(e.into()),
        },
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminated => "SIGTERM",
        _ = hung_up => "SIGHUP",
    };
    // Stop the launch or session where it is; dropping it restores the terminal.
    task.abort();
    let _ = task.await;
    Outcome::Interrupted(interrupted)
}

/// Resolves when `kind` arrives (never, if the handler cannot be installed).
async fn signal(kind: tokio::signal::unix::SignalKind) {
    match tokio::signal::unix::signal(kind) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Tear down unless detached, keep or delete the state directory, and pick the exit code.
async fn finish(
    engine: &Engine,
    ledger: &Ledger,
    options: &LaunchOptions,
    identity: &Identity,
    outcome: Outcome,
    detach: bool,
) -> anyhow::Result<i32> {
    if let Outcome::Detached(running) = &outcome {
        println!("{}", running.identity);
        eprintln!(
            "bottle `{}` is running: `bottle exec {0}`, `bottle logs {0}`, `bottle stop {0}`",
            running.identity
        );
        return Ok(0);
    }
    debug_assert!(!detach || !matches!(outcome, Outcome::Exited(_)));
    let started = Instant::now();
    let home_root = options.state_root.parent().unwrap_or(&options.state_root);
    let home = Home::at(home_root);
    // Before any container goes: the supervise sidecar still runs and hands each waiting call its
    // `expired` answer, and every expiry is audited with the whole proposal.
    let mut expired = expire_before_teardown(&home, identity.as_str()).await;
    launch::sidecar_logs::keep(engine, home_root, identity.as_str()).await;
    crate::learn::record::keep(home_root, identity.as_str());
    let state_dir = state::dir(&options.state_root, identity);
    let (why, detail) = why_kept(&outcome);
    keep_session(engine, identity, &state_dir, why, &detail).await;
    let failures = ledger.teardown(engine).await;
    // Whatever the agent queued between the expiry and its container's removal.
    expired += crate::supervise::expire_pending(&home, identity.as_str());
    tracing::info!("teardown took {:?}", started.elapsed());
    let (code, error) = match outcome {
        Outcome::Exited(code) => (code as i32, None),
        Outcome::Failed(e) => (1, Some(e)),
        Outcome::Interrupted(what) => (
            130,
            Some(anyhow::anyhow!(
                "interrupted by {what}; the bottle was torn down"
            )),
        ),
        Outcome::Detached(_) => unreachable!("handled above"),
    };
    if expired > 0 {
        eprintln!("{expired} pending supervise proposal(s) expired; they are in the audit log");
    }
    if crate::supervise::apply::resume_pending(&state_dir) {
        eprintln!("an approved agent image waits: relaunch with `bottle resume {identity}`");
    } else if snapshot::has_copy(&state_dir) {
        eprintln!(
            "the agent's Claude Code state is kept in {}; `bottle resume {identity}` continues the \
             conversation",
            state_dir.display()
        );
    } else if code == 0 {
        let _ = std::fs::remove_dir_all(&state_dir);
    } else {
        eprintln!(
            "state kept in {}; relaunch with `bottle resume {identity}`",
            state_dir.display()
        );
    }
    if !failures.is_empty() {
        eprintln!(
            "teardown could not remove everything ({}); run `bottle cleanup`",
            failures.join("; ")
        );
    }
    match error {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

/// Why the bottle is going away, for the kept state's record.
fn why_kept(outcome: &Outcome) -> (snapshot::Why, String) {
    match outcome {
        Outcome::Exited(code) => (snapshot::Why::Exit, format!("exit code {code}")),
        Outcome::Failed(e) => (
            snapshot::Why::Crash,
            e.to_string().lines().next().unwrap_or_default().to_owned(),
        ),
        Outcome::Interrupted(what) => (snapshot::Why::Interrupt, (*what).to_owned()),
        Outcome::Detached(_) => (snapshot::Why::Exit, String::new()),
    }
}

/// Copy the agent's `~/.claude` into the bottle's state before its container goes. A failure
/// is reported, never fatal: teardown must go on.
pub async fn keep_session(
    engine: &Engine,
    identity: &Identity,
    state_dir: &std::path::Path,
    why: snapshot::Why,
    detail: &str,
) -> Option<snapshot::Record> {
    let started = Instant::now();
    match snapshot::take(engine, &identity.agent_container(), state_dir, why, detail).await {
        Ok(Some(record)) => {
            tracing::info!(
                "kept {} file(s), {} bytes of the agent's ~/.claude in {:?}",
                record.files,
                record.bytes,
                started.elapsed()
            );
            if record.cut {
                eprintln!(
                    "the agent's Claude Code state was cut to fit ({} file(s) dropped{}); the \
                     newest transcripts are kept",
                    record.dropped_count,
                    record
                        .stopped
                        .as_deref()
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default()
                );
            }
            Some(record)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("could not keep the agent's Claude Code state: {e:#}");
            None
        }
    }
}

/// How long the supervise sidecar gets to pass expired decisions to the calls waiting on them
/// (it looks for decisions every 200 ms).
const EXPIRY_HANDOVER: std::time::Duration = std::time::Duration::from_millis(600);

/// Expire the bottle's pending proposals while its containers still run, and give the sidecar a
/// moment to answer the waiting calls. Returns how many were expired.
pub async fn expire_before_teardown(home: &Home, identity: &str) -> usize {
    let expired = crate::supervise::expire_pending(home, identity);
    if expired > 0 {
        tokio::time::sleep(EXPIRY_HANDOVER).await;
    }
    expired
}

/// Launch, provision, and run the session or detach.
#[allow(clippy::too_many_arguments)]
async fn run_bottle(
    engine: &Engine,
    ledger: &Ledger,
    mut registry: Registry,
    mut input: PlanInput,
    options: &LaunchOptions,
    identity: &Identity,
    secrets: &SecretValues,
    state_dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let progress = Progress::new(spinner());
    let dry = plan::assemble(&mut registry, &input)?;
    progress.step("checking for leftovers");
    launch::probe_orphans(engine, identity, &dry).await?;
    progress.step("creating networks");
    input.internal_cidr = launch::create_networks(engine, ledger, identity, options).await?;
    progress.step("minting CAs");
    let cas = mint_cas(ledger, options, identity, &dry)?;
    input.ca_fingerprints = cas
        .iter()
        .map(|(name, ca)| (name.clone(), ca.sha256.clone()))
        .collect();
    let plan = plan::assemble(&mut registry, &input)?;
    progress.step("preparing images");
    let (images, agent_image) = prepare_images(engine, options, &plan, &progress.bar).await?;
    // The working tree baked into the image goes with the bottle (torn down after its containers).
    if agent_image.starts_with(crate::docker::WORKSPACE_IMAGE_PREFIX) {
        ledger.record(Created::WorkspaceImage(agent_image.clone()));
    }
    progress.step("starting sidecars");
    let ctx = SidecarContext {
        engine,
        ledger,
        identity,
        options,
        images: &images,
        cas: &cas,
        secrets,
        state_dir,
    };
    // The agent container is created while the sidecars start, and started only after.
    let agent = launch::create_agent(
        engine,
        ledger,
        identity,
        options,
        &plan,
        &agent_image,
        secrets,
    );
    let (_, agent) = tokio::try_join!(launch::start_sidecars(&ctx, &plan), agent)?;
    crate::supervise::targets::publish(&plan, identity, state_dir)
        .context("publishing the bottle's config to its supervise queue")?;
    progress.step("starting the agent");
    launch::start_agent(engine, &agent).await?;
    // Before provisioning: what the host places (skills, plugin files) wins over the old copy.
    let restored = if options.restore {
        progress.step("restoring the agent's Claude Code state");
        snapshot::restore(engine, &agent, state_dir)
            .await
            .map_err(|e| LaunchError {
                step: Step::Provision,
                message: format!("copying the kept ~/.claude back: {e:#}"),
            })?
    } else {
        0
    };
    progress.step("provisioning the agent");
    let skills_root = home_dir().join(".claude/skills");
    // What the engine really gave the agent (not what was planned): provisioning fits gVisor by
    // it, and the operator is told it.
    let runtime = engine
        .container_runtime(&agent)
        .await
        .map_err(|e| launch::LaunchError {
            step: launch::Step::Provision,
            message: format!("reading the agent's runtime: {e}"),
        })?;
    let provisioning = Provisioning {
        engine,
        container: &agent,
        runtime: &runtime,
        plan: &plan,
        cas: &cas,
        skills_root,
    };
    // The self-test runs beside provisioning; the agent's command waits for both.
    let test = launch::self_test::SelfTest {
        engine,
        identity,
        plan: &plan,
        secrets,
        container: &agent,
        probe_floor: launch::self_test::probe_floor(options.self_test),
    };
    let self_test = launch::self_test::prove_beside(test, options, &provisioning).await?;
    progress.step("ready");
    progress.bar.finish_and_clear();
    report_agent_runtime(&runtime);
    if restored > 0 {
        eprintln!("restored {restored} file(s) of the agent's ~/.claude");
    }
    if options.learn {
        eprintln!("{}", crate::learn::banner());
    }
    if let Some(fp) = cas.get("agent").map(|ca| ca::colon_fingerprint(&ca.sha256)) {
        eprintln!("agent CA fingerprint (SHA-256): {fp}");
    }
    let ca_fingerprints = input.ca_fingerprints.clone();
    if options.detach {
        return Ok(Outcome::Detached(Box::new(Running {
            identity: identity.clone(),
            plan,
            agent_container: agent,
            ca_fingerprints,
            self_test,
        })));
    }
    let workdir = if options.cwd.is_some() {
        "/workspace"
    } else {
        AGENT_HOME
    };
    let code = launch::session::attach(engine, &agent, &plan.agent.command, workdir)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(Outcome::Exited(code))
}

/// Say what the agent really runs under, as the engine recorded it.
fn report_agent_runtime(runtime: &str) {
    if runtime == launch::runtime::RUNSC {
        eprintln!("agent runtime: runsc (gVisor)");
    } else {
        eprintln!("agent runtime: {runtime}");
    }
}

/// The spinner plus a debug log line per step with the time since the launch began.
struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    fn new(bar: ProgressBar) -> Self {
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn step(&self, message: &'static str) {
        tracing::debug!(
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "launch: {message}"
        );
        self.bar.set_message(message);
    }
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Mint every CA some sidecar installs, and stage them.
fn mint_cas(
    ledger: &Ledger,
    options: &LaunchOptions,
    identity: &Identity,
    plan: &Plan,
) -> Result<BTreeMap<String, MintedCa>, LaunchError> {
    let fail = |m: String| LaunchError {
        step: Step::Cas,
        message: m,
    };
    let mut cas = BTreeMap::new();
    for planned in &plan.cas {
        let minted = ca::mint(&planned.name, identity.as_str()).map_err(|e| fail(e.to_string()))?;
        cas.insert(planned.name.clone(), minted);
    }
    ledger.record(Created::StageDir(
        options.stage_root.join(identity.as_str()),
    ));
    state::write_stage(
        &options.stage_root,
        identity,
        &cas.values().collect::<Vec<_>>(),
    )
    .map_err(|e| fail(format!("writing the stage directory: {e}")))?;
    if std::env::var("BOTTLE_FAULT_AT").as_deref() == Ok(Step::Cas.name()) {
        return Err(fail("fault injected by BOTTLE_FAULT_AT (test hook)".into()));
    }
    Ok(cas)
}

/// Build or find every image: one per sidecar, and the agent's.
async fn prepare_images(
    engine: &Engine,
    options: &LaunchOptions,
    plan: &Plan,
    progress: &ProgressBar,
) -> Result<(BTreeMap<String, String>, String), LaunchError> {
    let fail = |m: String| LaunchError {
        step: Step::Images,
        message: m,
    };
    let builder = ImageBuilder::new(
        engine.client(),
        ImageOptions {
            install_claude_code: options.install_claude_code,
            claude_code_version: None,
            cache_dir: options.cache_dir.clone(),
            quiet: progress.is_hidden(),
        },
    );
    let mut images = BTreeMap::new();
    for sidecar in &plan.sidecars {
        let image = builder
            .ensure(&sidecar.image)
            .await
            .map_err(|e| fail(e.to_string()))?;
        images.insert(sidecar.name.clone(), image);
    }
    let mut agent = builder
        .ensure(&plan.agent.image)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if let Some(cwd) = &options.cwd {
        agent = builder
            .workspace_image(&agent, cwd)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    if std::env::var("BOTTLE_FAULT_AT").as_deref() == Ok(Step::Images.name()) {
        return Err(fail("fault injected by BOTTLE_FAULT_AT (test hook)".into()));
    }
    Ok((images, agent))
}

/// Remove every object labelled with `identity`: agent first, then sidecars in reverse start
/// order, then networks and the stage directory. With `keep`, the agent's `~/.claude` is copied
/// into the state directory first (recorded with that reason) and the state stays; without, the
/// state directory goes too.
pub async fn remove_bottle(
    engine: &Engine,
    home: &Home,
    identity: &str,
    keep: Option<snapshot::Why>,
) -> anyhow::Result<usize> {
    let filter = vec![format!("{}={identity}", labels::IDENTITY)];
    let mut containers = engine.containers_labelled(&filter).await?;
    let workspace_images: Vec<String> = containers
        .iter()
        .filter_map(|c| c.image.clone())
        .filter(|i| i.starts_with(crate::docker::WORKSPACE_IMAGE_PREFIX))
        .collect();
    containers.sort_by_key(|c| {
        let labels = c.labels.clone().unwrap_or_default();
        let agent_first = labels.get(labels::ROLE).map(String::as_str) != Some("agent");
        let order: i64 = labels
            .get(labels::ORDER)
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        (agent_first, -order)
    });
    // While the supervise sidecar still runs: waiting calls get their `expired` answer.
    expire_before_teardown(home, identity).await;
    crate::launch::sidecar_logs::keep(engine, home.root(), identity).await;
    crate::learn::record::keep(home.root(), identity);
    if let Some(why) = keep.filter(|_| !containers.is_empty()) {
        let state_dir = home.root().join("state").join(identity);
        keep_session(engine, &Identity::from_name(identity), &state_dir, why, "").await;
    }
    let mut removed = 0;
    for container in &containers {
        if let Some(name) = container.names.as_ref().and_then(|n| n.first()) {
            engine
                .remove_container(name.trim_start_matches('/'))
                .await?;
            removed += 1;
        }
    }
    for (name, _) in engine.networks_labelled(&filter).await? {
        engine.remove_network(&name).await?;
        removed += 1;
    }
    for image in workspace_images {
        engine.remove_workspace_image(&image).await?;
    }
    let _ = std::fs::remove_dir_all(home.root().join("run").join(identity));
    // Whatever was queued between the expiry above and the sidecar's removal.
    crate::supervise::expire_pending(home, identity);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(home.root().join("state").join(identity));
    }
    Ok(removed)
}

/// Whether the bottle's plan uses images that are not built here (for doctor).
pub fn reference_images(plan: &Plan) -> Vec<String> {
    plan.sidecars
        .iter()
        .filter_map(|s| match &s.image {
            ImagePlan::Reference(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}
