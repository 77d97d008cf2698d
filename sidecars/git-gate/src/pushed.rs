//! What a push would send to the upstream, and the secrets in it.
//!
//! A push sends every object reachable from its new ref values that the upstream does not have:
//! the commits (their diffs against every parent, their messages and author/committer fields),
//! annotated tags on the way to a ref's target, and blobs or trees a ref names directly. All of it
//! is scanned, together with the ref names, before anything is forwarded.

use std::path::Path;

use bottle_secret_scan::Scanner;

use crate::ci::{self, CiChange};
use crate::config::Repo;
use crate::git::{self, GitError};
use crate::policy::Update;
use crate::scan::{self, Kind, Leak};

/// What a push would send, inspected.
#[derive(Debug, Default)]
pub struct Inspection {
    /// Every secret in it.
    pub leaks: Vec<Leak>,
    /// Every CI definition its new commits change (only when asked for).
    pub ci_changes: Vec<CiChange>,
}

/// Inspect what `updates` would send to an upstream holding `upstream_tips`; list CI definition
/// changes when `ci_changes` is set.
pub fn inspect(
    dir: &Path,
    repo: &Repo,
    scanner: &Scanner,
    updates: &[Update],
    upstream_tips: &[String],
    ci_changes: bool,
) -> Result<Inspection, GitError> {
    let mut inspection = Inspection::default();
    let mut commit_tips = Vec::new();
    for update in updates.iter().filter(|u| !u.deletes()) {
        inspection
            .leaks
            .extend(scan::scan_ref_name(scanner, &update.name));
        inspection
            .leaks
            .extend(peel(dir, repo, scanner, &update.new, &mut commit_tips)?);
    }
    if commit_tips.is_empty() {
        return Ok(inspection);
    }
    let range = Range::new(&commit_tips, upstream_tips);
    inspection
        .leaks
        .extend(new_commits(dir, repo, scanner, &range)?);
    if ci_changes {
        inspection.ci_changes = changed_paths(dir, repo, &range)?
            .into_iter()
            .filter(|change| ci::is_ci_path(&change.path))
            .collect();
    }
    Ok(inspection)
}

/// The revision arguments for the new commits: the tips, `--not`, the upstream's tips.
struct Range(Vec<String>);

impl Range {
    fn new(tips: &[String], upstream_tips: &[String]) -> Range {
        let mut args = tips.to_vec();
        args.push("--not".into());
        args.extend(upstream_tips.iter().cloned());
        Range(args)
    }

    fn args(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Every path the new commits add, change or delete, against every parent.
fn changed_paths(dir: &Path, repo: &Repo, range: &Range) -> Result<Vec<CiChange>, GitError> {
    let marker = marker_format();
    let mut args = vec![
        "-c",
        "core.quotePath=false",
        "-c",
        "log.showRoot=true",
        "log",
        &marker,
        "--name-only",
        "--diff-merges=separate",
        "--no-renames",
    ];
    args.extend(range.args());
    let listing = git::run_bytes(dir, repo, &args)?;
    let mut commit = String::new();
    let mut changes = Vec::new();
    for line in listing.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match line.strip_prefix(scan::COMMIT_MARKER) {
            Some(id) => commit = String::from_utf8_lossy(id).trim().to_owned(),
            None => changes.push(CiChange {
                commit: commit.clone(),
                path: scan::git_path(line),
            }),
        }
    }
    Ok(changes)
}

/// `--format=` printing [`scan::COMMIT_MARKER`] and the commit id.
fn marker_format() -> String {
    format!(
        "--format={}%H",
        String::from_utf8_lossy(scan::COMMIT_MARKER).replace('\0', "%x00")
    )
}

/// Follow `id` through annotated tags (scanning each) to a commit (remembered in `commit_tips`),
/// a tree or a blob (scanned whole: nothing else says which parts the upstream has).
fn peel(
    dir: &Path,
    repo: &Repo,
    scanner: &Scanner,
    id: &str,
    commit_tips: &mut Vec<String>,
) -> Result<Vec<Leak>, GitError> {
    let mut leaks = Vec::new();
    let mut next = id.to_owned();
    loop {
        let Some(object) = git::objects(dir, repo, std::slice::from_ref(&next))?.pop() else {
            return Ok(leaks);
        };
        match object.kind.as_str() {
            "tag" => {
                leaks.extend(scan::scan_object(
                    scanner,
                    Kind::Tag,
                    &object.id,
                    &object.content,
                ));
                match tag_target(&object.content) {
                    Some(target) => next = target,
                    None => return Ok(leaks),
                }
            }
            "commit" => {
                commit_tips.push(object.id);
                return Ok(leaks);
            }
            "tree" => {
                leaks.extend(tree(dir, repo, scanner, &object.id)?);
                return Ok(leaks);
            }
            _ => {
                leaks.extend(scan::scan_blob(scanner, &object.id, &object.content));
                return Ok(leaks);
            }
        }
    }
}

/// The `object <id>` header of a raw tag.
fn tag_target(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("object "))
        .map(|id| id.trim().to_owned())
}

/// Every path and file of a tree pushed directly.
fn tree(dir: &Path, repo: &Repo, scanner: &Scanner, id: &str) -> Result<Vec<Leak>, GitError> {
    let listing = git::run_bytes(dir, repo, &["ls-tree", "-r", "-z", "--full-tree", id])?;
    // `<mode> <type> <id>\t<path>\0`, paths unquoted thanks to -z.
    let entries: Vec<(String, String)> = listing
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let tab = entry.iter().position(|&b| b == b'\t')?;
            let meta = String::from_utf8_lossy(&entry[..tab]);
            let mut fields = meta.split(' ');
            let (_, kind, blob) = (fields.next()?, fields.next()?, fields.next()?);
            (kind == "blob").then(|| {
                (
                    blob.to_owned(),
                    String::from_utf8_lossy(&entry[tab + 1..]).into_owned(),
                )
            })
        })
        .collect();
    let ids: Vec<String> = entries.iter().map(|(blob, _)| blob.clone()).collect();
    let blobs = git::objects(dir, repo, &ids)?;
    Ok(entries
        .iter()
        .zip(&blobs)
        .flat_map(|((_, path), blob)| scan::scan_tree_file(scanner, id, path, &blob.content))
        .collect())
}

/// The commits reachable from `tips` and not from the upstream's: their objects (messages,
/// author, committer, embedded tags) and their diffs against every parent.
fn new_commits(
    dir: &Path,
    repo: &Repo,
    scanner: &Scanner,
    range: &Range,
) -> Result<Vec<Leak>, GitError> {
    let mut args = vec!["rev-list"];
    args.extend(range.args());
    let ids: Vec<String> = git::run(dir, repo, &args)?
        .lines()
        .map(str::to_owned)
        .collect();
    let mut leaks: Vec<Leak> = git::objects(dir, repo, &ids)?
        .iter()
        .flat_map(|c| scan::scan_object(scanner, Kind::Commit, &c.id, &c.content))
        .collect();

    let marker = marker_format();
    let mut args = vec![
        // Paths quoted only where they must be; the root commit's diff shown too; the prefixes
        // fixed whatever the configuration says.
        "-c",
        "core.quotePath=false",
        "-c",
        "log.showRoot=true",
        "log",
        &marker,
        "--patch",
        // Every merge is diffed against each of its parents: content a merge adds on either side.
        "--diff-merges=separate",
        "--unified=0",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        // A single NUL makes git call a file binary and print no lines at all; a secret in such a
        // file must still be seen.
        "--text",
        "--no-textconv",
        "--src-prefix=a/",
        "--dst-prefix=b/",
    ];
    args.extend(range.args());
    let patch = git::run_bytes(dir, repo, &args)?;
    leaks.extend(scan::scan_patch(scanner, "", &patch));
    Ok(leaks)
}
