//! The agent's container runtime: which one a bottle gets, what the engine's gVisor entry says,
//! and how to register gVisor when it is missing.
//!
//! Only the agent runs under gVisor. It runs code nobody reviewed (whatever the model writes), so
//! it gets a second kernel between it and the host. The sidecars run bottle's own small programs,
//! hold the secrets and the way out, and are on the egress path of every request: under the ptrace
//! platform each of their syscalls would cost a context switch, for no isolation the agent needs.

use crate::docker::RuntimeEntry;

/// The gVisor runtime's name, as bottles ask for it and engines register it.
pub const RUNSC: &str = "runsc";

/// The engine's own runtime.
pub const RUNC: &str = "runc";

/// The arguments gVisor needs on machines like these, and why, for doctor and refusals.
///
/// - `--platform=ptrace`: works without KVM and on every kernel (the 2022 release Debian 12 ships
///   has no `systrap`, and KVM is rarely available to a CI machine).
/// - `--network=host`: that release thinks it runs in the root network namespace when
///   `/proc/sys/net/core/rmem_default` exists, which newer kernels show in every namespace, and
///   refuses to start with its own network stack. With `--network=host` the sandbox uses the
///   network namespace Docker made for the container (not the host's), so the agent's network is
///   isolated by Docker exactly as under runc.
pub const RUNSC_ARGS: [&str; 2] = ["--platform=ptrace", "--network=host"];

/// Host tasks one agent process costs under gVisor's ptrace platform, rounded up: measured here,
/// 100 sleeping processes in a runsc container took 841 more host tasks (the sandbox's own stubs
/// and tracing threads).
pub const RUNSC_HOST_TASKS_PER_PROCESS: u32 = 10;

/// The pids limit the engine enforces on the agent's container for a bottle's `limits.pids`.
/// Under runc the host sees the agent's own processes. Under runsc it sees the sandbox's tasks,
/// about ten per agent process, and when they reach the limit the whole sandbox stops (gVisor
/// cannot create its next task), not just the agent's next `fork`: without the scale the default
/// 4096 would end an agent at a few hundred processes.
pub fn host_pids_limit(runtime: Option<&str>, pids: u32) -> i64 {
    match runtime {
        Some(RUNSC) => i64::from(pids) * i64::from(RUNSC_HOST_TASKS_PER_PROCESS),
        _ => i64::from(pids),
    }
}

/// The runtime to ask the engine for, from the bottle's `runtime` and the runtimes the engine
/// lists: `runsc` when asked (refused with the fix when the engine has none) or with `auto` when
/// listed; `runc` when asked; the engine's default otherwise.
pub fn choose(requested: &str, available: &[String]) -> Result<Option<String>, String> {
    let has_runsc = available.iter().any(|r| r == RUNSC);
    match requested {
        RUNSC if !has_runsc => Err(format!(
            "the bottle asks for `runtime: runsc`, but the engine lists no runsc runtime (it has: {}); \
             {}; or set `runtime: auto` to use gVisor only where the engine has it",
            if available.is_empty() {
                "none".to_owned()
            } else {
                available.join(", ")
            },
            how_to_register("/usr/bin/runsc"),
        )),
        RUNSC => Ok(Some(RUNSC.into())),
        "auto" if has_runsc => Ok(Some(RUNSC.into())),
        RUNC => Ok(Some(RUNC.into())),
        _ => Ok(None),
    }
}

/// How the preflight names the runtime the agent will get: `runsc (gVisor)`, `runc`, or the
/// request itself when the engine is not known.
pub fn describe(requested: &str, available: &[String]) -> String {
    match choose(requested, available) {
        Ok(Some(name)) if name == RUNSC => format!("{RUNSC} (gVisor)"),
        Ok(Some(name)) => name,
        Ok(None) if available.is_empty() => requested.to_owned(),
        Ok(None) => "the engine's default (runc)".to_owned(),
        Err(_) => format!("{requested} (missing on this engine)"),
    }
}

/// The fix for a missing runsc: install it, register it with these arguments, restart dockerd.
pub fn how_to_register(path: &str) -> String {
    format!(
        "install gVisor (`apt-get install runsc`) and register it in /etc/docker/daemon.json as \
         {}, then restart dockerd; `--platform=ptrace` needs no KVM, and `--network=host` lets \
         this runsc start on newer kernels while the agent stays in the network namespace Docker \
         made for it (see `bottle doctor`)",
        daemon_json(path)
    )
}

/// The `daemon.json` snippet that registers runsc at `path` with [`RUNSC_ARGS`].
pub fn daemon_json(path: &str) -> String {
    let args: Vec<String> = RUNSC_ARGS.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "{{\"runtimes\":{{\"runsc\":{{\"path\":\"{path}\",\"runtimeArgs\":[{}]}}}}}}",
        args.join(",")
    )
}

/// The gVisor platform an engine's runsc entry runs on: its `--platform` argument, or gVisor's
/// default when it names none.
pub fn platform(entry: &RuntimeEntry) -> String {
    entry
        .args
        .iter()
        .find_map(|a| a.strip_prefix("--platform=").map(str::to_owned))
        .unwrap_or_else(|| "gVisor's default (none named)".to_owned())
}

/// What is worth saying about an entry's arguments: the network mode when it is not gVisor's own.
pub fn network(entry: &RuntimeEntry) -> Option<String> {
    entry
        .args
        .iter()
        .find_map(|a| a.strip_prefix("--network=").map(str::to_owned))
}

/// The version of the runtime at `path`, by running it, only when that path is an executable on
/// this machine (an engine elsewhere, behind `DOCKER_HOST`, has its own files); `None` otherwise.
pub fn local_version(path: &str) -> Option<String> {
    let file = std::path::Path::new(path);
    if !file.is_absolute() || !file.is_file() || is_remote_engine() {
        return None;
    }
    let out = std::process::Command::new(file)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let said = String::from_utf8_lossy(&out.stdout);
    // `runsc version 0.0~20221219.0` then `spec: 1.0.2-dev`.
    let first = said.lines().next()?.trim();
    (out.status.success() && !first.is_empty()).then(|| first.to_owned())
}

/// Whether the engine is reached over the network, where its files are not this machine's.
fn is_remote_engine() -> bool {
    std::env::var("DOCKER_HOST")
        .map(|h| !h.is_empty() && !h.starts_with("unix://"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn auto_picks_runsc_only_when_the_engine_lists_it() {
        let with = names(&["io.containerd.runc.v2", "runc", "runsc"]);
        let without = names(&["io.containerd.runc.v2", "runc"]);
        assert_eq!(choose("auto", &with), Ok(Some("runsc".into())));
        assert_eq!(choose("auto", &without), Ok(None));
        assert_eq!(choose("runc", &with), Ok(Some("runc".into())));
        assert_eq!(choose("runsc", &with), Ok(Some("runsc".into())));
    }

    #[test]
    fn runsc_fails_closed_with_the_fix_when_missing() {
        let refused = choose("runsc", &names(&["runc"])).unwrap_err();
        assert!(refused.contains("`runtime: runsc`"), "{refused}");
        assert!(refused.contains("it has: runc"), "{refused}");
        assert!(refused.contains("apt-get install runsc"), "{refused}");
        assert!(
            refused.contains(
                r#"{"runtimes":{"runsc":{"path":"/usr/bin/runsc","runtimeArgs":["--platform=ptrace","--network=host"]}}}"#
            ),
            "{refused}"
        );
        assert!(refused.contains("`runtime: auto`"), "{refused}");
        let snippet: serde_json::Value = serde_json::from_str(&daemon_json("/x/runsc")).unwrap();
        assert_eq!(
            snippet["runtimes"]["runsc"]["runtimeArgs"][1],
            "--network=host"
        );
    }

    #[test]
    fn the_preflight_names_what_the_engine_will_run() {
        let with = names(&["runc", "runsc"]);
        assert_eq!(describe("auto", &with), "runsc (gVisor)");
        assert_eq!(
            describe("auto", &names(&["runc"])),
            "the engine's default (runc)"
        );
        assert_eq!(describe("auto", &[]), "auto");
        assert_eq!(
            describe("runsc", &names(&["runc"])),
            "runsc (missing on this engine)"
        );
        assert_eq!(describe("runc", &with), "runc");
    }

    #[test]
    fn under_gvisor_the_host_pids_limit_counts_the_sandbox_tasks() {
        assert_eq!(host_pids_limit(None, 300), 300);
        assert_eq!(host_pids_limit(Some("runc"), 300), 300);
        assert_eq!(host_pids_limit(Some("runsc"), 300), 3000);
    }

    #[test]
    fn the_platform_comes_from_the_runtime_arguments() {
        let entry = RuntimeEntry {
            name: "runsc".into(),
            path: "/usr/bin/runsc".into(),
            args: names(&["--platform=ptrace", "--network=host"]),
        };
        assert_eq!(platform(&entry), "ptrace");
        assert_eq!(network(&entry).as_deref(), Some("host"));
        let bare = RuntimeEntry {
            args: vec![],
            ..entry
        };
        assert!(platform(&bare).contains("default"));
        assert_eq!(network(&bare), None);
    }
}
