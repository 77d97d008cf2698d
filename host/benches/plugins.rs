//! `cargo bench -p bottle --bench plugins`: the plugin platform's costs.
//!
//! Prints:
//! - `bottle plugins add` in process (validate + precompile into an empty cache, then describe)
//!   per plugin, and the same with the component already cached;
//! - planning a bottle with 20 third-party plugins enabled and 5 policy modules loaded: plugin
//!   loading from the warm cache, `assemble` (plan + finalize of 24 plugins), and the policy
//!   check, median and p90 over repeated runs. Target (issue 7): plan + policies ≤ 100 ms warm.
//!
//! The 20 plugins are copies of `tests/plugins/bench` that differ only in their name (rewritten
//! in the component's bytes), so each is a distinct component with its own cache entry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bottle::plugin::builtin::BUILD_PLUGIN_DIR;
use bottle::plugin::{PluginRuntime, Registry, RuntimeLimits, install, policy};
use bottle::policy_view;
use serde_json::json;

const PLUGINS: usize = 20;
const POLICIES: usize = 5;
const RUNS: usize = 30;

fn main() {
    let home = tempfile::tempdir().expect("temp home");
    let staged = home.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    let template = std::fs::read(Path::new(BUILD_PLUGIN_DIR).join("test-bench.wasm")).unwrap();
    let files: Vec<PathBuf> = (0..PLUGINS)
        .map(|i| {
            let path = staged.join(format!("bench-{i:02}.wasm"));
            std::fs::write(&path, renamed(&template, i)).unwrap();
            path
        })
        .collect();
    add_times(home.path(), &files);
    let policies = stage_policies(home.path());
    planning(home.path(), &policies);
}

/// The bench component with `00` in its name and section replaced by `i`.
fn renamed(wasm: &[u8], i: usize) -> Vec<u8> {
    let mut out = wasm.to_vec();
    for needle in [&b"bench-plugin-00"[..], &b"bench_plugin_00"[..]] {
        let at = out
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("the name is in the component");
        let digits = format!("{i:02}");
        out[at + needle.len() - 2..at + needle.len()].copy_from_slice(digits.as_bytes());
    }
    out
}

fn runtime(home: &Path) -> PluginRuntime {
    PluginRuntime::new(Some(home.join("cache")), RuntimeLimits::default()).unwrap()
}

fn add_times(home: &Path, files: &[PathBuf]) {
    let plugins_dir = home.join("plugins");
    let mut cold = Vec::new();
    for file in files {
        let started = Instant::now();
        install::add(runtime(home), &plugins_dir, file).unwrap();
        cold.push(started.elapsed());
    }
    let mut warm = Vec::new();
    for file in files {
        let started = Instant::now();
        install::add(runtime(home), &plugins_dir, file).unwrap();
        warm.push(started.elapsed());
    }
    let size = std::fs::metadata(&files[0]).unwrap().len();
    println!(
        "bottle plugins add, {} components of {} KiB each",
        files.len(),
        size / 1024
    );
    report("  add, cold cache (validate + precompile)", &mut cold);
    report("  add, warm cache (validate + load)", &mut warm);
}

/// deny-hosts, credential-hygiene and renamed copies of them, into `<home>/policy`.
fn stage_policies(home: &Path) -> PathBuf {
    let dir = home.join("policy");
    std::fs::create_dir_all(&dir).unwrap();
    let sources = ["policy-deny-hosts", "policy-credential-hygiene"];
    for i in 0..POLICIES {
        let source = sources[i % 2];
        let mut wasm =
            std::fs::read(Path::new(BUILD_PLUGIN_DIR).join(format!("{source}.wasm"))).unwrap();
        // Distinct bytes → distinct cache entries, as distinct modules would have: a custom
        // section (id 0, ignored by the runtime) with the copy's number.
        let payload = format!("bench-copy-{i}");
        let name = b"bottle-bench";
        let size = 1 + name.len() + payload.len();
        wasm.extend_from_slice(&[0, size as u8, name.len() as u8]);
        wasm.extend_from_slice(name);
        wasm.extend_from_slice(payload.as_bytes());
        std::fs::write(dir.join(format!("{i}-{source}.wasm")), &wasm).unwrap();
    }
    dir
}

fn bottle_sections() -> serde_json::Map<String, serde_json::Value> {
    (0..PLUGINS)
        .map(|i| {
            (
                format!("bench_plugin_{i:02}"),
                json!({"port": 8000 + i, "env": {"MODE": "bench"}}),
            )
        })
        .collect()
}

fn planning(home: &Path, policy_dir: &Path) {
    let mut load = Vec::new();
    let mut assemble = Vec::new();
    let mut check = Vec::new();
    let mut total = Vec::new();
    let mut whole = Vec::new();
    let mut policies_loaded = 0;
    for run in 0..=RUNS {
        let started = Instant::now();
        let mut registry = Registry::load(runtime(home), Some(&home.join("plugins"))).unwrap();
        let modules = policy::load(registry.runtime(), policy_dir).unwrap();
        let loaded = started.elapsed();
        let mut input = bottle::prepare::check_input(bottle_sections());
        input.secrets.clear();
        let started = Instant::now();
        let plan = bottle::plan::assemble(&mut registry, &input).unwrap();
        let planned = started.elapsed();
        let started = Instant::now();
        let view = policy_view::view_of(&plan, &policy_view::RuntimeFacts::default());
        let findings = policy::check(registry.runtime(), &modules, &view).unwrap();
        let checked = started.elapsed();
        let bench = plan
            .sidecars
            .iter()
            .filter(|s| s.plugin.starts_with("bench-plugin-"));
        assert_eq!(bench.count(), PLUGINS, "every bench plugin contributed");
        assert!(findings.is_empty(), "{findings:?}");
        policies_loaded = modules.len();
        if run > 0 {
            load.push(loaded);
            assemble.push(planned);
            check.push(checked);
            total.push(planned + checked);
            whole.push(loaded + planned + checked);
        }
    }
    println!(
        "planning with {} plugins loaded ({PLUGINS} third-party enabled) and {policies_loaded} policy modules, warm cache, {RUNS} runs",
        PLUGINS + bottle::plugin::builtin::BUILTINS.len()
    );
    report("  load plugins + policies (cache)", &mut load);
    report("  assemble (plan + finalize)", &mut assemble);
    report("  policy check (5 modules)", &mut check);
    report("  plan + policies", &mut total);
    let median = report("  load + plan + policies (what a launch pays)", &mut whole);
    println!(
        "  target ≤ 100 ms: {} ({:.2}× the target)",
        if median <= Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        },
        median.as_secs_f64() / 0.1
    );
}

/// Print median and p90; returns the median.
fn report(label: &str, times: &mut [Duration]) -> Duration {
    times.sort();
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    println!("{label:<44} median {median:>10.2?}  p90 {p90:>10.2?}");
    median
}
