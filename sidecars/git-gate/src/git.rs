//! Running git, with the upstream's ssh settings.

use std::path::Path;
use std::process::{Command, Output};

use crate::config::Repo;

/// A git failure, with what git said.
#[derive(Debug, thiserror::Error)]
#[error("`git {args}` failed: {stderr}")]
pub struct GitError {
    /// The arguments.
    pub args: String,
    /// What git printed on stderr.
    pub stderr: String,
}

/// A git command in `dir` that reaches `repo`'s upstream with its key and pinned host key.
pub fn command(dir: &Path, repo: &Repo) -> Command {
    let mut git = Command::new("git");
    git.current_dir(dir);
    git.env(
        "GIT_SSH_COMMAND",
        format!(
            "ssh -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes",
            repo.identity_file, repo.known_hosts
        ),
    );
    git.env("GIT_TERMINAL_PROMPT", "0");
    git
}

/// Run git and return stdout, or the error with stderr.
pub fn run(dir: &Path, repo: &Repo, args: &[&str]) -> Result<String, GitError> {
    let output = command(dir, repo)
        .args(args)
        .output()
        .map_err(|e| GitError {
            args: args.join(" "),
            stderr: e.to_string(),
        })?;
    result(args, output)
}

fn result(args: &[&str], output: Output) -> Result<String, GitError> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(GitError {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Fetch the upstream's branches and tags into the mirror, pruning what it deleted.
pub fn fetch(dir: &Path, repo: &Repo) -> Result<(), GitError> {
    run(dir, repo, &["fetch", "--prune", "--quiet", "origin"]).map(drop)
}

/// Whether `new` descends from `old`.
pub fn is_ancestor(dir: &Path, repo: &Repo, old: &str, new: &str) -> bool {
    command(dir, repo)
        .args(["merge-base", "--is-ancestor", old, new])
        .status()
        .is_ok_and(|s| s.success())
}
