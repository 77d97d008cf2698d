//! `bottle doctor`: what this machine has for running bottles, with a fix for each problem.

mod dns;
mod gvisor;
mod isolation;

use std::process::ExitCode;

use super::{Format, block_on};
use crate::docker::Engine;
use crate::home::Home;
use crate::launch::runtime;

/// The base image the embedded image contexts build from.
const BASE_IMAGE: &str = "debian:bookworm-slim";

struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: &str) {
        println!("ok    {what}: {detail}");
    }

    fn warn(&self, what: &str, detail: &str, fix: &str) {
        println!("note  {what}: {detail}\n      fix: {fix}");
    }

    fn fail(&mut self, what: &str, detail: &str, fix: &str) {
        self.problems += 1;
        println!("FAIL  {what}: {detail}\n      fix: {fix}");
    }
}

/// Arguments of `bottle doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Launch a throwaway bottle (the agent `bottle start` would pick, or `--agent`) and run the
    /// isolation self-test in it: a table of check, expected, seen and fix; non-zero on failure.
    #[arg(long)]
    pub isolation: bool,
    /// The agent whose bottle `--isolation` launches.
    #[arg(long, requires = "isolation")]
    pub agent: Option<String>,
    /// Output format of `--isolation`.
    #[arg(long, value_enum, default_value = "text", requires = "isolation")]
    pub format: Format,
}

/// Run the checks.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    if args.isolation {
        return isolation::run(args.agent.as_deref(), args.format);
    }
    let home = Home::from_env()?;
    let mut report = Report { problems: 0 };
    check_plugins(&home, &mut report);
    block_on(async {
        check_engine(&mut report).await;
        Ok(())
    })?;
    Ok(if report.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn check_plugins(home: &Home, report: &mut Report) {
    match crate::prepare::load_plugins(home) {
        Ok(registry) => {
            let cached = registry.plugins().iter().filter(|p| p.cached).count();
            report.ok(
                "plugins",
                &format!(
                    "{} loaded, {cached} from the precompiled cache at {}",
                    registry.plugins().len(),
                    home.cache_dir().display()
                ),
            );
        }
        Err(e) => report.fail(
            "plugins",
            &format!("{e:#}"),
            "remove or fix the plugin named above in ~/.bottle/plugins",
        ),
    }
}

async fn check_engine(report: &mut Report) {
    let engine = match Engine::connect().await {
        Ok(engine) => engine,
        Err(e) => {
            report.fail(
                "docker engine",
                &e.to_string(),
                "install docker.io and start dockerd (or set DOCKER_HOST)",
            );
            return;
        }
    };
    report.ok(
        "docker engine",
        &format!("reachable, API {}", engine.api_version()),
    );
    check_runsc(&engine, report).await;
    check_bottle_images(&engine, report).await;
    match engine.image_exists(BASE_IMAGE).await {
        Ok(true) => {
            report.ok("base image", BASE_IMAGE);
            check_internal_dns(&engine, report).await;
            check_gvisor_starts(&engine, report).await;
        }
        Ok(false) => report.fail(
            "base image",
            &format!("{BASE_IMAGE} is missing"),
            "docker pull debian:bookworm-slim, or without a registry: docker/bootstrap-base.sh",
        ),
        Err(e) => report.fail("base image", &e.to_string(), "check the engine"),
    }
}

/// Whether gVisor is registered, which version and platform, and how to register it when not.
async fn check_runsc(engine: &Engine, report: &mut Report) {
    let entries = match engine.runtime_entries().await {
        Ok(entries) => entries,
        Err(e) => {
            report.fail(
                "runtimes",
                &e.to_string(),
                "check that dockerd answers `info`",
            );
            return;
        }
    };
    let Some(runsc) = entries.iter().find(|e| e.name == runtime::RUNSC) else {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        report.warn(
            "runsc",
            &format!(
                "not registered (runtimes: {}); `runtime: auto` runs the agent under runc,                  `runtime: runsc` refuses to launch",
                names.join(", ")
            ),
            &runtime::how_to_register("/usr/bin/runsc"),
        );
        return;
    };
    report.ok("runsc", &runsc_detail(runsc));
}

/// `registered at /usr/bin/runsc (runsc version …), platform ptrace, network host; …`.
fn runsc_detail(entry: &crate::docker::RuntimeEntry) -> String {
    let version = runtime::local_version(&entry.path)
        .unwrap_or_else(|| "version unknown: not an executable on this machine".to_owned());
    let network = runtime::network(entry)
        .map(|n| format!(", network {n}"))
        .unwrap_or_default();
    let args = if entry.args.is_empty() {
        "no runtimeArgs".to_owned()
    } else {
        format!("runtimeArgs {}", entry.args.join(" "))
    };
    format!(
        "registered at {} ({version}), platform {}{network} ({args}); `runtime: auto` runs the \
         agent under gVisor",
        entry.path,
        runtime::platform(entry),
    )
}

async fn check_bottle_images(engine: &Engine, report: &mut Report) {
    let mut filters = std::collections::HashMap::new();
    filters.insert(
        "label".to_owned(),
        vec![format!("{}=true", crate::docker::labels::MANAGED)],
    );
    let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    match engine.client().list_images(Some(options)).await {
        Ok(images) => {
            let tags: Vec<String> = images.into_iter().flat_map(|i| i.repo_tags).collect();
            if tags.is_empty() {
                report.warn(
                    "bottle images",
                    "none built yet",
                    "the first `bottle start` builds them (needs the base image)",
                );
            } else {
                report.ok("bottle images", &tags.join(", "));
            }
        }
        Err(e) => report.fail("bottle images", &e.to_string(), "check the engine"),
    }
}

/// When runsc is registered: does a container really start under it?
async fn check_gvisor_starts(engine: &Engine, report: &mut Report) {
    const WHAT: &str = "runsc start";
    let registered = engine
        .runtimes()
        .await
        .is_ok_and(|r| r.iter().any(|r| r == runtime::RUNSC));
    if !registered {
        return;
    }
    match gvisor::trial(engine, BASE_IMAGE).await {
        Ok(gvisor::Trial::Started(line)) => report.ok(
            WHAT,
            &format!("a container under runsc boots gVisor (`{line}`)"),
        ),
        Ok(gvisor::Trial::NotGvisor(said)) => report.fail(
            WHAT,
            &format!("the runsc runtime started a container that is not gVisor: {said}"),
            "point the engine's runsc entry at gVisor's runsc binary",
        ),
        Ok(gvisor::Trial::Refused(why)) => report.fail(
            WHAT,
            &format!("the engine could not start a container under runsc: {why}"),
            &runtime::how_to_register("/usr/bin/runsc"),
        ),
        Err(e) => report.fail(
            WHAT,
            &format!("{e:#}"),
            "check that the engine can create containers",
        ),
    }
}

async fn check_internal_dns(engine: &Engine, report: &mut Report) {
    const WHAT: &str = "internal DNS";
    match dns::probe(engine, BASE_IMAGE).await {
        Ok(seen) => match dns::verdict(&seen) {
            Some(Ok(detail)) => report.ok(WHAT, &detail),
            Some(Err((detail, fix))) => report.fail(WHAT, &detail, &fix),
            None => report.warn(
                WHAT,
                "could not tell: public names do not resolve from an ordinary network either",
                "run doctor where the host resolves names to check the engine",
            ),
        },
        Err(e) => report.fail(
            WHAT,
            &format!("{e:#}"),
            "check that the engine can create networks and containers",
        ),
    }
}
