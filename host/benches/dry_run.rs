//! `cargo bench -p bottle --bench dry_run`: how long planning takes.
//!
//! Prints, for a bottle that uses all four built-in plugins:
//! - `bottle start --dry-run` as a whole process, cold (empty plugin cache: every component is
//!   compiled) and warm (precompiled components loaded from the cache);
//! - per plugin, in process: compile-or-load, instantiate + describe, and `plan` times.
//!
//! Targets (issue 2): warm ≤ 50 ms, cold ≤ 2 s.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bottle::home::Home;
use bottle::plan::assemble::{plan_context, plugin_config};
use bottle::prepare;

const COLD_RUNS: usize = 5;
const WARM_RUNS: usize = 30;

fn main() {
    let home = tempfile::tempdir().expect("temp home");
    write_manifests(home.path());
    let bottle = env!("CARGO_BIN_EXE_bottle");
    println!(
        "bottle start full --dry-run, bottle with pipelock + egress-proxy + git-gate + supervise"
    );
    let cold = time_runs(COLD_RUNS, || {
        let _ = std::fs::remove_dir_all(home.path().join("cache"));
        run_dry_run(bottle, home.path());
    });
    run_dry_run(bottle, home.path());
    let warm = time_runs(WARM_RUNS, || run_dry_run(bottle, home.path()));
    report("cold (empty cache)", &cold, Duration::from_secs(2));
    report("warm (cached)", &warm, Duration::from_millis(50));
    per_plugin(home.path());
}

fn write_manifests(home: &Path) {
    std::fs::create_dir_all(home.join("agents")).unwrap();
    std::fs::create_dir_all(home.join("bottles")).unwrap();
    let key = home.join("id_ed25519");
    std::fs::write(&key, "not a real key\n").unwrap();
    std::fs::write(
        home.join("agents/full.md"),
        "---\nbottle: full\n---\nBenchmark agent.\n",
    )
    .unwrap();
    let bottle = format!(
        "---\nenv:\n  GH_TOKEN: \"?\"\negress:\n  firewall: pipelock\n  allowlist: [crates.io]\n\
         egress_proxy:\n  routes:\n    - host: api.github.com\n      auth: {{scheme: token, token_ref: GH_TOKEN}}\n\
         git:\n  - Name: app\n    Upstream: ssh://git@git.example.com/org/app.git\n    IdentityFile: {}\n\
         \x20   KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
         supervise: true\n---\n",
        key.display()
    );
    std::fs::write(home.join("bottles/full.md"), bottle).unwrap();
}

fn run_dry_run(bottle: &str, home: &Path) {
    let output = Command::new(bottle)
        .args(["start", "full", "--dry-run", "--format", "json"])
        .env("BOTTLE_HOME", home)
        .current_dir(home)
        .output()
        .expect("run bottle");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn time_runs(runs: usize, mut run: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(label: &str, times: &[Duration], target: Duration) {
    let median = times[times.len() / 2];
    let verdict = if median <= target { "meets" } else { "MISSES" };
    println!(
        "  {label:<20} median {:>8.1} ms  min {:>8.1} ms  max {:>8.1} ms  ({} runs; target ≤ {} ms: {verdict}, ratio {:.2})",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len(),
        target.as_millis(),
        median.as_secs_f64() / target.as_secs_f64(),
    );
}

fn per_plugin(home: &Path) {
    let home = Home::at(home);
    let mut registry = prepare::load_plugins(&home).expect("load plugins");
    let catalog = prepare::catalog(&home, home.root());
    let selection = prepare::select(&catalog, Some("full"), &registry.external_sections()).unwrap();
    let input = prepare::plan_input(
        &selection.agent,
        &selection.bottle,
        bottle::plan::DRY_RUN_CIDR,
    );
    let context = plan_context(&registry, &input);
    println!("per plugin (warm cache, in process):");
    for plugin in registry.plugins_mut() {
        let config = plugin_config(&plugin.description.sections, &input.sections);
        let started = Instant::now();
        let outcome = plugin.instance.plan(&config, &context).expect("plan");
        let plan_time = started.elapsed();
        println!(
            "  {:<14} load {:>7.2} ms ({})  instantiate+describe {:>6.2} ms  plan {:>6.2} ms  active: {}",
            plugin.description.name,
            ms(plugin.compile_time),
            if plugin.cached { "cache" } else { "compiled" },
            ms(plugin.instantiate_time),
            ms(plan_time),
            matches!(outcome, Ok(Some(_))),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
