//! Finding manifests on disk.
//!
//! Bottles are read only from the bottle home: a bottle grants secrets and network access, so a
//! project checked out from elsewhere must not be able to define one. Agents (a prompt, skills, a
//! bottle *name*) may come from the project too, and the project's win.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::agent::Agent;
use crate::bottle::Bottle;
use crate::document::{Origin, Source};
use crate::error::{ManifestError, Warning};
use crate::names;

/// The bottle home from the environment: `$BOTTLE_HOME`, else `$HOME/.bottle`.
pub fn default_home() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    non_empty("BOTTLE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".bottle")))
}

/// A manifest found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The name (the file stem).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Where it was found.
    pub source: Source,
    /// The home agent this project agent hides, if any.
    pub shadows: Option<PathBuf>,
}

impl Entry {
    fn origin(&self) -> Origin {
        Origin::file(&self.name, &self.path, self.source)
    }
}

/// The agents and bottles found on disk; manifests are parsed when asked for.
#[derive(Debug, Clone)]
pub struct Catalog {
    home: PathBuf,
    user_home: Option<PathBuf>,
    agents: BTreeMap<String, Entry>,
    bottles: BTreeMap<String, Entry>,
    warnings: Vec<Warning>,
}

impl Catalog {
    /// Finds `<home>/bottles/*.md`, `<home>/agents/*.md` and the project's `.bottle/agents/*.md`:
    /// in `cwd` and each directory above it up to the repository root (the nearest directory
    /// holding `.git`, as git and cargo find it); the nearest wins. Outside a repository only
    /// `cwd` is the project. Agents found this way are still the project's ([`Source::Project`]).
    ///
    /// Never fails: unreadable directories and badly named files become [`Catalog::warnings`].
    /// `~/` in manifests expands against `$HOME` (see [`Catalog::with_user_home`]).
    pub fn discover(home: &Path, cwd: &Path) -> Catalog {
        let mut warnings = Vec::new();
        let bottles = scan(&home.join("bottles"), Source::Home, &mut warnings);
        let mut agents = scan(&home.join("agents"), Source::Home, &mut warnings);
        // Farthest first, so that a nearer project's agent replaces a farther one's.
        for project in project_dirs(home, cwd).iter().rev() {
            warn_project_bottles(&project.join("bottles"), home, &mut warnings);
            let local = scan(&project.join("agents"), Source::Project, &mut warnings);
            overlay(&mut agents, local);
        }
        Catalog {
            home: home.to_path_buf(),
            user_home: std::env::var_os("HOME").map(PathBuf::from),
            agents,
            bottles,
            warnings,
        }
    }

    /// Sets the directory `~/` expands to in manifests (`None`: `~/` is an error).
    pub fn with_user_home(mut self, user_home: Option<PathBuf>) -> Catalog {
        self.user_home = user_home;
        self
    }

    /// The bottle home this catalog was read from.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// What discovery skipped or ignored, for the caller to log.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Whether no agent and no bottle were found: the caller then uses [`crate::defaults`].
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.bottles.is_empty()
    }

    /// The agents, sorted by name.
    pub fn agents(&self) -> impl Iterator<Item = &Entry> {
        self.agents.values()
    }

    /// The bottles, sorted by name.
    pub fn bottles(&self) -> impl Iterator<Item = &Entry> {
        self.bottles.values()
    }

    /// Where the agent `name` was found.
    pub fn agent_entry(&self, name: &str) -> Option<&Entry> {
        self.agents.get(name)
    }

    /// Where the bottle `name` was found.
    pub fn bottle_entry(&self, name: &str) -> Option<&Entry> {
        self.bottles.get(name)
    }

    /// Reads and checks the agent `name`.
    pub fn agent(&self, name: &str) -> Result<Agent, ManifestError> {
        let entry = self
            .agents
            .get(name)
            .ok_or_else(|| ManifestError::UnknownAgent {
                name: name.to_string(),
                known: self.agents.keys().cloned().collect(),
                home: self.home.clone(),
            })?;
        Agent::parse(&read(&entry.path)?, &entry.origin())
    }

    /// Reads and checks the bottle `name`, keeping the sections of `external_sections`.
    pub fn bottle(
        &self,
        name: &str,
        external_sections: &BTreeSet<String>,
    ) -> Result<Bottle, ManifestError> {
        let entry = self
            .bottles
            .get(name)
            .ok_or_else(|| self.unknown_bottle(name, None))?;
        Bottle::parse(
            &read(&entry.path)?,
            &entry.origin(),
            external_sections,
            self.user_home.as_deref(),
        )
    }

    /// Reads the agent `agent_name` and the bottle it names.
    pub fn resolve(
        &self,
        agent_name: &str,
        external_sections: &BTreeSet<String>,
    ) -> Result<(Agent, Bottle), ManifestError> {
        let agent = self.agent(agent_name)?;
        if !self.bottles.contains_key(&agent.bottle) {
            return Err(self.unknown_bottle(&agent.bottle, Some(&agent)));
        }
        let bottle = self.bottle(&agent.bottle, external_sections)?;
        Ok((agent, bottle))
    }

    fn unknown_bottle(&self, name: &str, agent: Option<&Agent>) -> ManifestError {
        ManifestError::UnknownBottle {
            name: name.to_string(),
            agent: agent.map(|a| (a.name.clone(), a.path.clone())),
            known: self.bottles.keys().cloned().collect(),
            home: self.home.clone(),
        }
    }
}

fn read(path: &Path) -> Result<String, ManifestError> {
    fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The project's `.bottle` directories, nearest first: `cwd`'s and, inside a repository, each one
/// above it up to the repository root. The bottle home itself is never one of them (when working
/// in `~`, or in a home kept under git).
fn project_dirs(home: &Path, cwd: &Path) -> Vec<PathBuf> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let dirs: Vec<&Path> = match repository_root(cwd) {
        Some(root) => cwd
            .ancestors()
            .take_while(|d| *d != root)
            .chain([root])
            .collect(),
        None => vec![cwd],
    };
    dirs.into_iter()
        .map(|dir| dir.join(".bottle"))
        .filter(|project| !same(project, home))
        .collect()
}

/// The nearest directory at or above `cwd` holding `.git` (a directory, or the file of a
/// worktree or submodule), as git finds the top of a working tree.
fn repository_root(cwd: &Path) -> Option<&Path> {
    cwd.ancestors().find(|dir| dir.join(".git").exists())
}

/// Project agents replace home agents of the same name, remembering what they hide.
fn overlay(agents: &mut BTreeMap<String, Entry>, local: BTreeMap<String, Entry>) {
    for (name, mut entry) in local {
        entry.shadows = agents.remove(&name).map(|home| home.path);
        agents.insert(name, entry);
    }
}

/// The `*.md` files of `dir` with valid names; a missing directory is simply empty.
fn scan(dir: &Path, source: Source, warnings: &mut Vec<Warning>) -> BTreeMap<String, Entry> {
    let mut found = BTreeMap::new();
    for path in markdown_files(dir, warnings) {
        if let Some(name) = checked_name(&path, warnings) {
            let shadows = None;
            found.insert(
                name.clone(),
                Entry {
                    name,
                    path,
                    source,
                    shadows,
                },
            );
        }
    }
    found
}

/// The `*.md` entries of `dir`, sorted; other files are not manifests and are ignored.
fn markdown_files(dir: &Path, warnings: &mut Vec<Warning>) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            warnings.push(warning(dir, format!("cannot read this directory: {error}")));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();
    paths
}

/// The file's stem when it is a valid name and the file is a regular file.
fn checked_name(path: &Path, warnings: &mut Vec<Warning>) -> Option<String> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned())?;
    if !names::is_manifest_name(&stem) {
        let rule = names::MANIFEST_NAME_RULE;
        warnings.push(warning(
            path,
            format!("skipped: `{stem}` is not a valid name (names are {rule}); rename the file"),
        ));
        return None;
    }
    if !path.is_file() {
        warnings.push(warning(path, "skipped: not a regular file".to_string()));
        return None;
    }
    Some(stem)
}

/// Bottles in the project are never read; say so for each one, and how to use it.
fn warn_project_bottles(dir: &Path, home: &Path, warnings: &mut Vec<Warning>) {
    for path in markdown_files(dir, warnings) {
        let file = path.file_name().map(PathBuf::from).unwrap_or_default();
        let target = home.join("bottles").join(file);
        warnings.push(warning(
            &path,
            format!(
                "ignored: bottles are only read from {}, because the bottle home is the trust \
                 boundary (a project must not grant itself secrets or network access); if you \
                 trust this bottle, move it to {}",
                home.join("bottles").display(),
                target.display()
            ),
        ));
    }
}

fn warning(path: &Path, message: String) -> Warning {
    Warning {
        path: path.to_path_buf(),
        message,
    }
}
