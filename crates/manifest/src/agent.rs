//! Agent manifests: `agents/<name>.md` in the bottle home or the project.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::document::{Doc, Kind, Origin, Source};
use crate::error::ManifestError;
use crate::frontmatter::trim_blank_lines;
use crate::invalid::Invalid;
use crate::names;
use crate::strict::{self, Section};

/// A parsed, checked agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// The agent's name (its file stem).
    pub name: String,
    /// Its manifest, unless embedded.
    pub path: Option<PathBuf>,
    /// Where it was found.
    pub source: Source,
    /// The bottle it runs in.
    pub bottle: String,
    /// Skills copied in at launch from `~/.claude/skills/<name>`.
    pub skills: Vec<String>,
    /// The command to run; `None` runs Claude Code the host's default way.
    pub command: Option<AgentCommand>,
    /// The system prompt: the Markdown body without leading and trailing blank lines.
    pub prompt: String,
}

/// How the agent's command is given. Serializes as in the manifest: a string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AgentCommand {
    /// A string, run with `sh -c`.
    Shell(String),
    /// A list: the program and its arguments, run directly.
    Argv(Vec<String>),
}

impl Agent {
    /// Parses an agent manifest.
    pub fn parse(text: &str, origin: &Origin) -> Result<Agent, ManifestError> {
        let doc = Doc::split(text, origin, Kind::Agent)?;
        // Syntax errors first, as for bottles.
        doc.check_syntax()?;
        let front: AgentFrontmatter = doc.read(|tracked| strict::section(tracked))?;
        Ok(Agent {
            name: origin.name.clone(),
            path: origin.path.clone(),
            source: origin.source,
            bottle: front.bottle,
            skills: front.skills,
            command: front.command,
            prompt: trim_blank_lines(doc.body),
        })
    }
}

struct AgentFrontmatter {
    bottle: String,
    skills: Vec<String>,
    command: Option<AgentCommand>,
}

#[derive(Deserialize)]
pub(crate) struct AgentFields {
    #[serde(deserialize_with = "de_bottle")]
    bottle: String,
    #[serde(default, deserialize_with = "de_skills")]
    skills: Vec<String>,
    #[serde(default)]
    command: Option<AgentCommand>,
    // Claude Code sub-agent keys (`name`, `description`, `model`, …) are accepted by
    // `KEYS` and ignored here, so one file can serve both.
}

impl Section for AgentFrontmatter {
    const WHAT: &'static str = "a mapping of agent settings";
    const KEYS: &'static [&'static str] = &[
        "bottle",
        "skills",
        "command",
        "name",
        "description",
        "model",
        "color",
        "memory",
        "tools",
    ];
    type Fields = AgentFields;

    fn check(f: AgentFields) -> Result<Self, Invalid> {
        Ok(AgentFrontmatter {
            bottle: f.bottle,
            skills: f.skills,
            command: f.command,
        })
    }
}

fn de_bottle<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    strict::text(d, "a bottle name", names::manifest_name)
}

fn de_skills<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    strict::text_list(d, "skill name", |text| names::item_name(text, "skill name"))
}

/// Reads a string or a list of strings.
impl<'de> Deserialize<'de> for AgentCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> Visitor<'de> for CommandVisitor {
    type Value = AgentCommand;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a shell command (a string) or a program and its arguments (a list)")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<AgentCommand, E> {
        if text.trim().is_empty() || text.contains('\0') {
            return Err(Invalid::new("`command` is empty or contains NUL")
                .hint("give a shell command, or remove `command` to run Claude Code")
                .into_de());
        }
        Ok(AgentCommand::Shell(text.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AgentCommand, A::Error> {
        let mut argv: Vec<String> = Vec::new();
        while let Some(arg) = seq.next_element::<String>()? {
            argv.push(arg);
        }
        let bad = argv.first().is_none_or(|program| program.is_empty())
            || argv.iter().any(|arg| arg.contains('\0'));
        if bad {
            return Err(
                Invalid::new("`command` has no program, or an argument contains NUL")
                    .hint("list the program first, then its arguments: `[claude, --verbose]`")
                    .into_de(),
            );
        }
        Ok(AgentCommand::Argv(argv))
    }
}
