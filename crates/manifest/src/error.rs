//! The errors and warnings this crate reports.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why an agent or bottle could not be loaded.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is malformed or says something invalid.
    #[error("{0}")]
    Invalid(Box<Problem>),
    /// No agent has this name.
    #[error("{}", unknown_agent(name, known, home))]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// The agents that do exist, sorted.
        known: Vec<String>,
        /// The bottle home, to say where to create it.
        home: PathBuf,
    },
    /// No bottle has this name.
    #[error("{}", unknown_bottle(name, agent.as_ref(), known, home))]
    UnknownBottle {
        /// The name asked for.
        name: String,
        /// The agent that asked for it, and its manifest, if an agent did.
        agent: Option<(String, Option<PathBuf>)>,
        /// The bottles that do exist, sorted.
        known: Vec<String>,
        /// The bottle home, to say where to create it.
        home: PathBuf,
    },
}

impl ManifestError {
    /// The located problem, when the error is about a manifest's content.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ManifestError::Invalid(problem) => Some(problem),
            _ => None,
        }
    }
}

impl From<Problem> for ManifestError {
    fn from(problem: Problem) -> Self {
        ManifestError::Invalid(Box::new(problem))
    }
}

/// A problem in a manifest's content, located as precisely as possible.
///
/// Displays as `file:line:column: where: message` followed by an indented `hint:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The manifest file (a descriptive name for the embedded defaults).
    pub file: PathBuf,
    /// The 1-based line in the file, when known.
    pub line: Option<usize>,
    /// The 1-based column in the file, when known.
    pub column: Option<usize>,
    /// Where in the document, as a path such as `git[1].Name`, when it is not in the message.
    pub at: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            // Indent continuation lines so multi-line hints (YAML snippets) stay readable.
            write!(f, "\n  hint:")?;
            for (index, line) in hint.lines().enumerate() {
                match (index, line.is_empty()) {
                    (0, _) => write!(f, " {line}")?,
                    (_, true) => writeln!(f)?,
                    (_, false) => write!(f, "\n    {line}")?,
                }
            }
        }
        Ok(())
    }
}

/// Something discovery skipped or ignored; the caller decides how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What happened and what to do about it, in one sentence or two.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

fn unknown_agent(name: &str, known: &[String], home: &Path) -> String {
    let hint = format!(
        "create {} or .bottle/agents/{name}.md in the project",
        home.join("agents").join(format!("{name}.md")).display()
    );
    if known.is_empty() {
        format!("unknown agent `{name}`: no agents are defined\n  hint: {hint}")
    } else {
        format!(
            "unknown agent `{name}`; known agents: {}\n  hint: pick one of those, or {hint}",
            known.join(", ")
        )
    }
}

fn unknown_bottle(
    name: &str,
    agent: Option<&(String, Option<PathBuf>)>,
    known: &[String],
    home: &Path,
) -> String {
    let what = match agent {
        Some((agent, Some(path))) => {
            format!(
                "agent `{agent}` ({}) uses bottle `{name}`, which does not exist",
                path.display()
            )
        }
        Some((agent, None)) => {
            format!("agent `{agent}` uses bottle `{name}`, which does not exist")
        }
        None => format!("unknown bottle `{name}`"),
    };
    let listing = if known.is_empty() {
        "no bottles are defined".to_string()
    } else {
        format!("known bottles: {}", known.join(", "))
    };
    let fix = match agent {
        Some(_) => "set the agent's `bottle:` to a known bottle, or create",
        None => "create",
    };
    let file = home.join("bottles").join(format!("{name}.md"));
    format!("{what}; {listing}\n  hint: {fix} {}", file.display())
}
