//! The two hooks git daemon runs: `access-hook` before every service, `pre-receive` on every push.

use std::io::{BufRead, Write as _};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd as _, RawFd};
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::config::{GateConfig, Repo};
use crate::policy::{self, Update};
use crate::supervisor::LOG_FD_ENV;
use crate::{git, pushed, scan};

/// One decision, as a JSON line in the sidecar's log: the supervisor's pipe when the hook runs
/// under `serve` (git daemon hands a hook's stderr to the client only), else stderr.
fn audit(repo: &str, what: &str, decision: &str, reason: &str) {
    let line =
        serde_json::json!({"repo": repo, "ref": what, "decision": decision, "reason": reason});
    let line = format!("{line}\n");
    if !write_to_decision_log(&line) {
        eprint!("{line}");
    }
}

/// Write `line` to the pipe [`LOG_FD_ENV`] names, if it is one; whether it was written.
fn write_to_decision_log(line: &str) -> bool {
    let Some(fd) = std::env::var(LOG_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    else {
        return false;
    };
    // SAFETY: fstat on a descriptor number only reads its metadata (EBADF if not open).
    let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return false;
    }
    // SAFETY: an open pipe inherited from the supervisor; ManuallyDrop leaves it open.
    let mut pipe = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    // One write: lines up to PIPE_BUF never interleave with another hook's.
    pipe.write_all(line.as_bytes()).is_ok()
}

/// The repository a daemon path names (`/<name>.git` under the base path).
fn repo_for<'c>(config: &'c GateConfig, path: &str) -> Option<&'c Repo> {
    let file = Path::new(path).file_name()?.to_str()?;
    config.repo(file.strip_suffix(".git").unwrap_or(file))
}

/// `access-hook <service> <path> …`: before a read, fetch so the agent sees the upstream's
/// current state; a failed fetch refuses the read. Prints the reason (git daemon sends the first
/// line to the client) and returns the exit code.
pub fn access(config_path: &Path, service: &str, path: &str) -> i32 {
    let config = match crate::config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            println!("git gate misconfigured: {e}");
            return 1;
        }
    };
    let Some(repo) = repo_for(&config, path) else {
        println!("the git gate serves no repository at {path}");
        return 1;
    };
    if service != "upload-pack" {
        return 0;
    }
    let dir = Path::new(path);
    match git::fetch(dir, repo).and_then(|()| point_head(dir, repo)) {
        Ok(()) => 0,
        Err(e) => {
            audit(&repo.name, "fetch", "deny", &e.to_string());
            println!(
                "git gate: cannot fetch {} from its upstream, so it will not serve stale data: {}",
                repo.name,
                failure_reason(&e.stderr)
            );
            1
        }
    }
}

/// Point HEAD at the upstream's default branch (first use; cheap afterwards).
fn point_head(dir: &Path, repo: &Repo) -> Result<(), git::GitError> {
    let symref = git::run(dir, repo, &["ls-remote", "--symref", "origin", "HEAD"])?;
    if let Some(target) = symref
        .lines()
        .find_map(|l| l.strip_prefix("ref: "))
        .and_then(|l| l.split_whitespace().next())
    {
        git::run(dir, repo, &["symbolic-ref", "HEAD", target])?;
    }
    Ok(())
}

/// `pre-receive`: policy, secret scan, then push to the upstream; any failure refuses the push.
pub fn pre_receive(config_path: &Path, repo_name: &str) -> anyhow::Result<()> {
    let config = crate::config::load(config_path)?;
    let repo = config
        .repo(repo_name)
        .with_context(|| format!("no repository `{repo_name}` in the gate's config"))?;
    let dir = std::env::current_dir()?;
    let updates: Vec<Update> = std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| Update::parse(&l))
        .collect();
    // Refs cannot move inside pre-receive's quarantine, so the upstream's tips are listed rather
    // than fetched; the ones this mirror has mark what the upstream already holds.
    let upstream = upstream_state(&dir, repo)?;
    let scanner = scan::scanner(&config.secret_env)?;
    // Every ref is checked before any is forwarded, and one refusal refuses them all: the push
    // lands whole or not at all.
    if let Err(refusal) = check_push(&dir, repo, &scanner, &updates, &upstream) {
        for update in &updates {
            audit(&repo.name, &update.name, "deny", &refusal);
        }
        bail!("{refusal}");
    }
    if let Err(e) = push(&dir, repo, &updates) {
        for update in &updates {
            audit(&repo.name, &update.name, "deny", &format!("{e:#}"));
        }
        return Err(e);
    }
    for update in &updates {
        audit(&repo.name, &update.name, "allow", "pushed to the upstream");
    }
    Ok(())
}

/// What the upstream holds, listed just before a push.
struct Upstream {
    /// Its branch and tag tips that exist in this mirror.
    tips: Vec<String>,
    /// Its default branch (the branch its HEAD names), if it has one.
    default_branch: Option<String>,
}

/// List the upstream: refs cannot move inside pre-receive's quarantine, so its tips are listed
/// rather than fetched; the ones this mirror has mark what the upstream already holds.
fn upstream_state(dir: &Path, repo: &Repo) -> anyhow::Result<Upstream> {
    let listed = git::run(dir, repo, &["ls-remote", "--symref", "origin"])
        .map_err(|e| anyhow::anyhow!("cannot reach the upstream before pushing: {}", e.stderr))?;
    let default_branch = listed.lines().find_map(|line| {
        let (target, name) = line.strip_prefix("ref: ")?.split_once('\t')?;
        (name == "HEAD").then(|| target.strip_prefix("refs/heads/"))?
    });
    let listed_tips: Vec<String> = listed
        .lines()
        .filter(|line| !line.starts_with("ref: "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let tips = git::existing(dir, repo, &listed_tips)
        .map_err(|e| anyhow::anyhow!("listing the upstream's tips: {e}"))?;
    Ok(Upstream {
        tips,
        default_branch: default_branch.map(str::to_owned),
    })
}

/// The policy for every ref, then the secret scan of everything the push would send, then the
/// CI definitions its commits change.
fn check_push(
    dir: &Path,
    repo: &Repo,
    scanner: &bottle_secret_scan::Scanner,
    updates: &[Update],
    upstream: &Upstream,
) -> Result<(), String> {
    for update in updates {
        let facts = policy::Facts {
            fast_forward: update.creates()
                || update.deletes()
                || git::is_ancestor(dir, repo, &update.old, &update.new),
            default_branch: upstream.default_branch.clone(),
        };
        policy::check(&repo.policy, update, &facts).map_err(|r| r.0)?;
    }
    let inspection = pushed::inspect(
        dir,
        repo,
        scanner,
        updates,
        &upstream.tips,
        !repo.policy.allow_ci_changes,
    )
    .map_err(|e| e.to_string())?;
    if !inspection.leaks.is_empty() {
        return Err(format!(
            "{}; remove the secret from the history (e.g. rewrite the commit) and push again; \
             no ref of this push was updated",
            listed(&inspection.leaks)
        ));
    }
    if !inspection.ci_changes.is_empty() {
        return Err(format!(
            "{}; no ref of this push was updated",
            listed(&inspection.ci_changes)
        ));
    }
    Ok(())
}

/// The first [`MAX_FINDINGS_SAID`] findings, and how many more.
fn listed<T: std::fmt::Display>(findings: &[T]) -> String {
    let mut said: Vec<String> = findings
        .iter()
        .take(MAX_FINDINGS_SAID)
        .map(T::to_string)
        .collect();
    if findings.len() > MAX_FINDINGS_SAID {
        said.push(format!("and {} more", findings.len() - MAX_FINDINGS_SAID));
    }
    said.join("; ")
}

/// How many findings a refusal lists.
const MAX_FINDINGS_SAID: usize = 10;

/// Forward every update to the upstream in one atomic push: it takes all of them or none.
fn push(dir: &Path, repo: &Repo, updates: &[Update]) -> anyhow::Result<()> {
    let refspecs: Vec<String> = updates
        .iter()
        .map(|update| {
            let force = if repo.policy.allow_force_push {
                "+"
            } else {
                ""
            };
            if update.deletes() {
                format!(":{}", update.name)
            } else {
                format!("{force}{}:{}", update.new, update.name)
            }
        })
        .collect();
    // Pushing to the URL, not the remote, so no ref of this mirror moves inside the quarantine;
    // git moves them itself once this hook accepts.
    let mut args = vec!["push", "--porcelain", "--atomic", repo.upstream.as_str()];
    args.extend(refspecs.iter().map(String::as_str));
    // The hook runs inside the push's quarantine; an upstream reached by a local path (tests)
    // would inherit that marker and refuse its own ref updates. Objects stay readable through
    // GIT_OBJECT_DIRECTORY, which git itself clears for the receiving side.
    let output = git::command(dir, repo)
        .args(&args)
        .env_remove("GIT_QUARANTINE_PATH")
        .output()
        .context("running git push")?;
    if !output.status.success() {
        let names: Vec<&str> = updates.iter().map(|u| u.name.as_str()).collect();
        bail!(
            "the upstream refused {}: {}",
            names.join(", "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The line of ssh/git's stderr that says what went wrong: a known diagnosis first, else the first
/// line with words (ssh's warnings start with a banner of `@`).
pub fn failure_reason(stderr: &str) -> &str {
    const KNOWN: &[&str] = &[
        "Host key verification failed",
        "Permission denied",
        "Could not resolve hostname",
        "Connection refused",
        "Connection timed out",
        "does not appear to be a git repository",
    ];
    let lines = || stderr.lines().map(str::trim);
    lines()
        .find(|l| KNOWN.iter().any(|k| l.contains(k)))
        .or_else(|| lines().find(|l| l.chars().any(char::is_alphabetic) && !l.starts_with('@')))
        .unwrap_or("unknown error")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_diagnosis_is_picked_out_of_ssh_noise() {
        let stderr = "@@@@@@@@\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nHost key verification failed.\nfatal: Could not read from remote repository.";
        assert_eq!(
            super::failure_reason(stderr),
            "Host key verification failed."
        );
        assert_eq!(super::failure_reason("fatal: boom\n"), "fatal: boom");
    }
}
