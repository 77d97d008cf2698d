//! A bottle home, a project and a user home in a temporary directory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use bottle_manifest::{Agent, Bottle, Catalog, ManifestError, Problem};
use tempfile::TempDir;

/// github.com's published ed25519 host key.
pub const GITHUB_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

pub struct Fixture {
    _dir: TempDir,
    pub home: PathBuf,
    pub cwd: PathBuf,
    pub user_home: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let fixture = Fixture {
            home: root.join("bottle-home"),
            cwd: root.join("project"),
            user_home: root.join("user"),
            _dir: dir,
        };
        for dir in [&fixture.home, &fixture.cwd, &fixture.user_home] {
            fs::create_dir_all(dir).unwrap();
        }
        fixture
    }

    fn write(&self, path: PathBuf, text: &str) -> PathBuf {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    pub fn bottle_file(&self, name: &str, text: &str) -> PathBuf {
        self.write(self.home.join("bottles").join(format!("{name}.md")), text)
    }

    pub fn agent_file(&self, name: &str, text: &str) -> PathBuf {
        self.write(self.home.join("agents").join(format!("{name}.md")), text)
    }

    pub fn project_agent_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.cwd.join(".bottle/agents").join(format!("{name}.md"));
        self.write(path, text)
    }

    pub fn project_bottle_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.cwd.join(".bottle/bottles").join(format!("{name}.md"));
        self.write(path, text)
    }

    /// A file under the user's home, such as an SSH key.
    pub fn user_file(&self, relative: &str) -> PathBuf {
        self.write(self.user_home.join(relative), "key")
    }

    pub fn catalog(&self) -> Catalog {
        Catalog::discover(&self.home, &self.cwd).with_user_home(Some(self.user_home.clone()))
    }

    /// Writes `bottles/b.md` with this frontmatter and parses it.
    pub fn bottle(&self, yaml: &str) -> Result<Bottle, ManifestError> {
        self.bottle_with(yaml, &BTreeSet::new())
    }

    pub fn bottle_with(
        &self,
        yaml: &str,
        external: &BTreeSet<String>,
    ) -> Result<Bottle, ManifestError> {
        self.bottle_file("b", &format!("---\n{yaml}---\nnotes\n"));
        self.catalog().bottle("b", external)
    }

    /// Writes `agents/a.md` with this frontmatter and parses it.
    pub fn agent(&self, yaml: &str) -> Result<Agent, ManifestError> {
        self.agent_file("a", &format!("---\n{yaml}---\nprompt\n"));
        self.catalog().agent("a")
    }

    pub fn bottle_path(&self) -> PathBuf {
        self.home.join("bottles/b.md")
    }

    pub fn agent_path(&self) -> PathBuf {
        self.home.join("agents/a.md")
    }
}

/// The located problem of a failed parse.
pub fn problem<T: std::fmt::Debug>(result: Result<T, ManifestError>) -> Problem {
    match result.unwrap_err() {
        ManifestError::Invalid(problem) => *problem,
        other => panic!("expected a located problem, got: {other}"),
    }
}

/// Asserts the problem is at `line` of `file` and its display contains every `part`.
pub fn assert_problem(problem: &Problem, file: &Path, line: usize, parts: &[&str]) {
    let text = problem.to_string();
    assert_eq!(problem.file, file, "{text}");
    assert_eq!(problem.line, Some(line), "{text}");
    assert!(
        text.starts_with(&format!("{}:{line}:", file.display())),
        "{text}"
    );
    for part in parts {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

/// A minimal valid git entry, with its key created under the user's home.
pub fn git_entry(fixture: &Fixture, name: &str) -> String {
    fixture.user_file(".ssh/id_test");
    format!(
        "  - Name: {name}\n    Upstream: ssh://git@github.com/org/{name}.git\n    \
         IdentityFile: ~/.ssh/id_test\n    KnownHostKey: {GITHUB_KEY}\n"
    )
}
