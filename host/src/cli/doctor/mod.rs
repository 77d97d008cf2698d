//! `bottle doctor`: what this machine has for running bottles, with a fix for each problem.

mod dns;
mod isolation;

use std::process::ExitCode;

use super::{Format, block_on};
use crate::docker::Engine;
use crate::home::Home;

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
    match engine.runtimes().await {
        Ok(runtimes) if runtimes.iter().any(|r| r == "runsc") => {
            report.ok("runsc", "gVisor runtime present; `runtime: auto` uses it")
        }
        Ok(runtimes) => report.warn(
            "runsc",
            &format!("not registered (runtimes: {})", runtimes.join(", ")),
            "install gVisor and add it to /etc/docker/daemon.json for a stronger sandbox",
        ),
        Err(e) => report.fail(
            "runtimes",
            &e.to_string(),
            "check that dockerd answers `info`",
        ),
    }
    check_bottle_images(&engine, report).await;
    match engine.image_exists(BASE_IMAGE).await {
        Ok(true) => {
            report.ok("base image", BASE_IMAGE);
            check_internal_dns(&engine, report).await;
        }
        Ok(false) => report.fail(
            "base image",
            &format!("{BASE_IMAGE} is missing"),
            "docker pull debian:bookworm-slim, or without a registry: docker/bootstrap-base.sh",
        ),
        Err(e) => report.fail("base image", &e.to_string(), "check the engine"),
    }
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
