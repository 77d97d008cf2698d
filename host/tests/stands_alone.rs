//! The repository stands alone: no source, test, build file or script reaches a path outside the
//! workspace. A test that reads `../shared/…` passes on a developer's machine and fails in a user's
//! plain clone, so relative paths are checked here rather than trusted to review.
//!
//! A relative path (`../…`) in a tracked file is read from the two places such a path is resolved
//! from: the file's directory and its crate's directory (`CARGO_MANIFEST_DIR` joins, `include_*!`;
//! the workspace root for scripts). Where either reading climbs above the repository root, the
//! other must name an existing path inside it.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Extensions and names of files whose paths are resolved when something builds, tests or runs.
const CHECKED: [&str; 7] = ["rs", "toml", "sh", "py", "wit", "yaml", "yml"];

#[test]
fn no_tracked_file_reaches_outside_the_repository() {
    let root = workspace_root();
    let mut escapes = Vec::new();
    let mut checked = 0;
    for file in tracked_files(&root) {
        // This file's own strings are sample paths for the check, not paths it reads.
        if !is_checked(&file) || root.join(&file).ends_with(file!()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        checked += 1;
        for (line_no, line) in text.lines().enumerate() {
            for path in relative_paths(line) {
                if !resolves_inside(&root, &file, path) {
                    escapes.push(format!("{}:{}: {path}", file.display(), line_no + 1));
                }
            }
            if line.contains(&["/work", "/shared/"].concat()) {
                escapes.push(format!("{}:{}: absolute path", file.display(), line_no + 1));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} files checked: the walk is broken"
    );
    assert!(
        escapes.is_empty(),
        "paths that leave the repository (a plain clone has nothing beside it; bring the data \
         into the repository):\n{}",
        escapes.join("\n")
    );
}

#[test]
fn the_check_sees_an_escape_and_accepts_paths_inside() {
    let root = workspace_root();
    let tests = Path::new("plugins/pipelock/src/tests.rs");
    // The path the pipelock tests used before their reference data moved into the repository.
    let escape = ["../../..", "/shared/reference/pipelock"].concat();
    assert_eq!(relative_paths(&format!(".join(\"{escape}\")")), [&escape]);
    assert!(!resolves_inside(&root, tests, &escape));
    // From the crate directory and from the file's directory, paths inside resolve.
    assert!(resolves_inside(&root, tests, "../reference/SOURCE"));
    assert!(resolves_inside(&root, tests, "../../../wit/plugin.wit"));
    assert!(resolves_inside(&root, Path::new("scripts/test"), "../host"));
    assert!(!resolves_inside(
        &root,
        Path::new("scripts/test"),
        "../../x"
    ));
    // Hostile-path test data climbs from no base.
    assert!(resolves_inside(&root, tests, "../etc"));
    assert!(relative_paths("no paths here; a .. b").is_empty());
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The files git tracks; outside a checkout (a source archive), every file below the root.
fn tracked_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output();
    match listed {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .collect(),
        _ => walk(root, Path::new("")),
    }
}

fn walk(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return files;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') && name != ".ci" {
            continue;
        }
        let rel = dir.join(&name);
        match entry.file_type() {
            Ok(t) if t.is_dir() => files.extend(walk(root, &rel)),
            Ok(t) if t.is_file() => files.push(rel),
            _ => {}
        }
    }
    files
}

/// Source, build and data files by extension; scripts (no extension) under `scripts/` and `.ci/`.
fn is_checked(file: &Path) -> bool {
    match file.extension().and_then(|e| e.to_str()) {
        Some(ext) => CHECKED.contains(&ext) || file.ends_with("Dockerfile"),
        None => {
            file.starts_with("scripts") || file.starts_with(".ci") || file.ends_with("Dockerfile")
        }
    }
}

/// Every path in `line` that begins with `../`, cut at the first character a path does not hold.
fn relative_paths(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("../") {
        // Only the start of a path: `a/../b` is inside a longer path found from its start.
        let starts = at == 0 || !is_path_char(rest.as_bytes()[at - 1]);
        let tail = &rest[at..];
        let end = tail
            .bytes()
            .position(|b| !is_path_char(b))
            .unwrap_or(tail.len());
        if starts {
            found.push(&tail[..end]);
        }
        rest = &tail[end.max(3)..];
    }
    found
}

fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'_' | b'-')
}

/// Whether `path` stays inside the repository: it is suspect only when, read from the file's
/// directory or its crate's directory (`CARGO_MANIFEST_DIR` joins, `include_*!`), it climbs above
/// the root — and then it passes only if the other reading names an existing path inside.
/// (Hostile-path test data such as `../etc` climbs from no base and is left alone.)
fn resolves_inside(root: &Path, file: &Path, path: &str) -> bool {
    let dir = file.parent().unwrap_or(Path::new(""));
    let krate = dir
        .ancestors()
        .find(|d| root.join(d).join("Cargo.toml").is_file())
        .unwrap_or(Path::new(""));
    let readings = [normalise(&dir.join(path)), normalise(&krate.join(path))];
    readings.iter().all(Option::is_some)
        || readings
            .iter()
            .flatten()
            .any(|inside| root.join(inside).exists())
}

/// Resolve `.` and `..` without touching the file system; `None` when it climbs above the root.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir if !out.pop() => return None,
            Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    Some(out)
}
