//! Running git, with the upstream's ssh settings.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
    run_bytes(dir, repo, args).map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// Run git and return stdout as bytes (file contents and paths need not be UTF-8).
pub fn run_bytes(dir: &Path, repo: &Repo, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let output = command(dir, repo)
        .args(args)
        .output()
        .map_err(|e| GitError {
            args: args.join(" "),
            stderr: e.to_string(),
        })?;
    result(args, output)
}

fn result(args: &[&str], output: Output) -> Result<Vec<u8>, GitError> {
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(GitError {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// One object as `git cat-file --batch` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its id.
    pub id: String,
    /// `commit`, `tree`, `blob` or `tag`.
    pub kind: String,
    /// Its raw content.
    pub content: Vec<u8>,
}

/// Read many objects with one `git cat-file --batch`.
pub fn objects(dir: &Path, repo: &Repo, ids: &[String]) -> Result<Vec<Object>, GitError> {
    let out = cat_file(dir, repo, "--batch", ids)?;
    parse_batch(&out).map_err(|stderr| GitError {
        args: "cat-file --batch".into(),
        stderr,
    })
}

/// The ones of `ids` this repository has, with one `git cat-file --batch-check`.
pub fn existing(dir: &Path, repo: &Repo, ids: &[String]) -> Result<Vec<String>, GitError> {
    let out = cat_file(dir, repo, "--batch-check=%(objectname)", ids)?;
    // A missing object is answered `<id> missing`; a present one by its bare id.
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter(|line| !line.contains(' '))
        .map(str::to_owned)
        .collect())
}

/// Feed `ids` to `git cat-file <mode>` and return what it printed.
fn cat_file(dir: &Path, repo: &Repo, mode: &str, ids: &[String]) -> Result<Vec<u8>, GitError> {
    let failed = |stderr: String| GitError {
        args: format!("cat-file {mode}"),
        stderr,
    };
    let mut child = command(dir, repo)
        .args(["cat-file", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input: String = ids.iter().map(|id| format!("{id}\n")).collect();
    // A writer thread: git answers while it reads, and a full stdout pipe would block both sides.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let _ = writer.join();
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    Ok(output.stdout)
}

/// Parse `<id> <type> <size>\n<content>\n` records; `<id> missing` is an error.
fn parse_batch(mut out: &[u8]) -> Result<Vec<Object>, String> {
    let mut objects = Vec::new();
    while !out.is_empty() {
        let end = out
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("cat-file: truncated header")?;
        let header = String::from_utf8_lossy(&out[..end]).into_owned();
        let mut parts = header.split(' ');
        let (id, kind, size) = (parts.next(), parts.next(), parts.next());
        let (Some(id), Some(kind), Some(size)) = (id, kind, size) else {
            return Err(format!("cat-file: {header}"));
        };
        let size: usize = size.parse().map_err(|_| format!("cat-file: {header}"))?;
        let content = out
            .get(end + 1..end + 1 + size)
            .ok_or("cat-file: truncated object")?;
        objects.push(Object {
            id: id.to_owned(),
            kind: kind.to_owned(),
            content: content.to_vec(),
        });
        out = out.get(end + 2 + size..).unwrap_or_default();
    }
    Ok(objects)
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
