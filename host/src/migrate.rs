//! `bottle migrate`: claude-bottle's agents and bottles (`~/.claude-bottle/{agents,bottles}`)
//! copied into the bottle home, rewritten where bottle's format changed
//! ([`bottle_manifest::migrate`]), each checked as bottle will read it. State is not copied:
//! claude-bottle's sessions are not bottle's to resume. Existing files are never replaced.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use bottle_manifest::{Agent, Bottle, Origin, Source, migrate::Migrated};

/// claude-bottle's home under the user's home.
pub const LEGACY_DIR: &str = ".claude-bottle";

/// The kinds of manifest that are copied, by directory.
const KINDS: [&str; 2] = ["agents", "bottles"];

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Copied as it was.
    Copied,
    /// Copied with these rewrites.
    Rewritten(Vec<String>),
    /// A file of that name is in the bottle home; left alone.
    Exists,
}

/// One file of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The file in claude-bottle's home.
    pub from: PathBuf,
    /// Where it went (or would have gone).
    pub to: PathBuf,
    /// What was done.
    pub action: Action,
    /// What the user should look at.
    pub notes: Vec<String>,
    /// Why bottle cannot read the copy yet, if it cannot.
    pub problem: Option<String>,
}

/// The whole migration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Each manifest found.
    pub items: Vec<Item>,
    /// Entries of claude-bottle's home that were not copied.
    pub skipped: Vec<PathBuf>,
}

/// claude-bottle's home, when it exists and the bottle home does not: the case in which to tell
/// the user about `bottle migrate`.
pub fn unmigrated(bottle_home: &Path) -> Option<PathBuf> {
    let user_home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let legacy = PathBuf::from(user_home).join(LEGACY_DIR);
    (legacy.is_dir() && !bottle_home.exists()).then_some(legacy)
}

/// Copies claude-bottle's manifests from `from` into `home`. `external` are the sections of the
/// installed plugins (a bottle may hold them).
pub fn migrate(from: &Path, home: &Path, external: &BTreeSet<String>) -> anyhow::Result<Report> {
    anyhow::ensure!(
        from.is_dir(),
        "nothing to migrate: {} is not a directory; name claude-bottle's home with --from DIR",
        from.display()
    );
    let mut report = Report::default();
    for entry in sorted_entries(from)? {
        let kind = entry.file_name().map(|n| n.to_string_lossy().into_owned());
        match kind.as_deref() {
            Some(kind) if KINDS.contains(&kind) && entry.is_dir() => {
                for file in sorted_entries(&entry)? {
                    if let Some(item) = migrate_file(&file, kind, home, external)? {
                        report.items.push(item);
                    } else {
                        report.skipped.push(file);
                    }
                }
            }
            _ => report.skipped.push(entry),
        }
    }
    Ok(report)
}

fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    Ok(paths)
}

/// One manifest; `None` when `file` is not one (another extension, a bad name, not a file).
fn migrate_file(
    file: &Path,
    kind: &str,
    home: &Path,
    external: &BTreeSet<String>,
) -> anyhow::Result<Option<Item>> {
    let name = match file.file_stem().map(|s| s.to_string_lossy().into_owned()) {
        Some(name)
            if file.extension().is_some_and(|e| e == "md")
                && bottle_manifest::is_manifest_name(&name)
                && file.is_file() =>
        {
            name
        }
        _ => return Ok(None),
    };
    let to = home.join(kind).join(format!("{name}.md"));
    if to.exists() || to.is_symlink() {
        return Ok(Some(Item {
            from: file.to_path_buf(),
            to,
            action: Action::Exists,
            notes: Vec::new(),
            problem: None,
        }));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let migrated: Migrated = if kind == "agents" {
        bottle_manifest::migrate::agent(&text)
    } else {
        bottle_manifest::migrate::bottle(&text)
    };
    write_new(&to, &migrated.text)?;
    let problem = check(kind, &name, &to, &migrated.text, external).err();
    let action = if migrated.changes.is_empty() {
        Action::Copied
    } else {
        Action::Rewritten(migrated.changes)
    };
    Ok(Some(Item {
        from: file.to_path_buf(),
        to,
        action,
        notes: migrated.notes,
        problem,
    }))
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Whether bottle reads the copy, as `bottle start` would.
fn check(
    kind: &str,
    name: &str,
    path: &Path,
    text: &str,
    external: &BTreeSet<String>,
) -> Result<(), String> {
    let origin = Origin::file(name, path, Source::Home);
    let user_home = std::env::var_os("HOME").map(PathBuf::from);
    let result = if kind == "agents" {
        Agent::parse(text, &origin).map(drop)
    } else {
        Bottle::parse(text, &origin, external, user_home.as_deref()).map(drop)
    };
    result.map_err(|e| e.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.items {
            let what = match &item.action {
                Action::Copied => "copied".to_string(),
                Action::Rewritten(changes) => format!("rewritten: {}", changes.join("; ")),
                Action::Exists => "not copied: it exists in the bottle home".to_string(),
            };
            writeln!(f, "{} → {}: {what}", item.from.display(), item.to.display())?;
            for note in &item.notes {
                writeln!(f, "    note: {note}")?;
            }
            if let Some(problem) = &item.problem {
                writeln!(f, "    does not load yet; fix it with `bottle edit`:")?;
                for line in problem.lines() {
                    writeln!(f, "      {line}")?;
                }
            }
        }
        for path in &self.skipped {
            writeln!(
                f,
                "{}: not copied (only agents/ and bottles/ manifests are; state is not)",
                path.display()
            )?;
        }
        let copied = self
            .items
            .iter()
            .filter(|i| i.action != Action::Exists)
            .count();
        let broken = self.items.iter().filter(|i| i.problem.is_some()).count();
        write!(
            f,
            "{copied} manifest(s) copied, {} left as they were, {broken} to fix",
            self.items.len() - copied
        )
    }
}
