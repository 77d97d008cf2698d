//! A manifest being parsed: where it comes from, and turning every error into a located
//! [`Problem`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{ManifestError, Problem};
use crate::frontmatter::{self, FrontmatterError};
use crate::invalid::{Invalid, WHERE};
use crate::locate;

/// Where a manifest was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The bottle home (`$BOTTLE_HOME`, by default `~/.bottle`).
    Home,
    /// The project: `.bottle/` in the working directory.
    Project,
    /// Built into bottle (see [`crate::defaults`]).
    Embedded,
}

/// The name and place of a manifest being parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The agent or bottle name (the file stem).
    pub name: String,
    /// The file, unless the manifest is embedded.
    pub path: Option<PathBuf>,
    /// Where it was found.
    pub source: Source,
}

impl Origin {
    /// A manifest read from `path`.
    pub fn file(name: impl Into<String>, path: impl Into<PathBuf>, source: Source) -> Self {
        Origin {
            name: name.into(),
            path: Some(path.into()),
            source,
        }
    }

    /// A manifest built into bottle.
    pub fn embedded(name: impl Into<String>) -> Self {
        Origin {
            name: name.into(),
            path: None,
            source: Source::Embedded,
        }
    }

    /// The directory relative paths in the manifest are resolved against.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.path.as_deref().and_then(Path::parent)
    }
}

/// Which kind of manifest, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Agent,
    Bottle,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Bottle => "bottle",
        }
    }
}

/// A manifest split into frontmatter and body, able to place errors in its file.
pub(crate) struct Doc<'a> {
    file: PathBuf,
    kind: Kind,
    pub yaml: &'a str,
    line_offset: usize,
    pub body: &'a str,
}

impl<'a> Doc<'a> {
    /// Splits `text` at its `---` lines.
    pub fn split(text: &'a str, origin: &Origin, kind: Kind) -> Result<Doc<'a>, ManifestError> {
        let file = match &origin.path {
            Some(path) => path.clone(),
            None => PathBuf::from(format!("<built-in {} `{}`>", kind.noun(), origin.name)),
        };
        match frontmatter::split(text) {
            Ok(front) => Ok(Doc {
                file,
                kind,
                yaml: front.yaml,
                line_offset: front.line_offset,
                body: front.body,
            }),
            Err(error) => Err(frontmatter_problem(file, kind, error).into()),
        }
    }

    /// Places an error of the YAML library, decoding the [`Invalid`] it may carry.
    pub fn yaml_error(&self, error: &serde_yaml_ng::Error) -> ManifestError {
        let location = error.location().map(|l| (l.line(), l.column()));
        let mut text = error.to_string();
        if let Some((line, column)) = location {
            // The library appends the position relative to the frontmatter; we give the file's.
            text = text.replacen(&format!(" at line {line} column {column}"), "", 1);
        }
        let problem = match Invalid::decode(&text) {
            Some((before, invalid)) => {
                let path = before.strip_suffix(": ").filter(|p| !p.is_empty());
                self.problem(invalid, path, location)
            }
            None => self.library_problem(&text, is_syntax_error(error), location),
        };
        problem.into()
    }

    fn problem(&self, invalid: Invalid, path: Option<&str>, at: Option<(usize, usize)>) -> Problem {
        let mut place = invalid.at.or_else(|| path.map(str::to_string));
        let message = if invalid.message.contains(WHERE) {
            let here = place.take().unwrap_or_else(|| self.root());
            invalid.message.replace(WHERE, &here)
        } else {
            invalid.message
        };
        let found = invalid.find.as_ref().and_then(|find| {
            let from = at.map_or(1, |(line, _)| line);
            locate::find(self.yaml, from, find)
        });
        self.located(found.or(at), place, message, invalid.hint)
    }

    fn library_problem(&self, text: &str, syntax: bool, at: Option<(usize, usize)>) -> Problem {
        let text = shift_lines(text, self.line_offset);
        if syntax {
            let hint = "check indentation and quoting here; quote values that contain `: ` or ` #`, \
                        or start with `*`, `&`, `!`, `[`, `{`, `@`, `%` or a backquote";
            return self.located(
                at,
                None,
                format!("YAML syntax error: {text}"),
                Some(hint.into()),
            );
        }
        let (path, message) = split_path(&text);
        match missing_field(message) {
            Some(key) => {
                let message = format!("missing key `{key}`");
                let place = Some(path.map_or_else(|| self.root(), str::to_string));
                self.located(at, place, message, Some(missing_hint(key)))
            }
            None => {
                let hint = type_hint(message).map(str::to_string);
                self.located(at, path.map(str::to_string), message.to_string(), hint)
            }
        }
    }

    fn located(
        &self,
        at: Option<(usize, usize)>,
        place: Option<String>,
        message: String,
        hint: Option<String>,
    ) -> Problem {
        Problem {
            file: self.file.clone(),
            line: at.map(|(line, _)| line + self.line_offset),
            column: at.map(|(_, column)| column),
            at: place,
            message,
            hint,
        }
    }

    fn root(&self) -> String {
        format!("the {} manifest", self.kind.noun())
    }
}

fn frontmatter_problem(file: PathBuf, kind: Kind, error: FrontmatterError) -> Problem {
    let example = match kind {
        Kind::Agent => "---\nbottle: default\n---\nYou are …",
        Kind::Bottle => "---\nenv: {}\n---\nNotes …",
    };
    let (message, hint) = match error {
        FrontmatterError::Missing => (
            "no frontmatter: the first line must be `---`".to_string(),
            format!("start the file with YAML settings between two `---` lines:\n{example}"),
        ),
        FrontmatterError::Unterminated => (
            "the frontmatter opened on this line is never closed".to_string(),
            "add a line with just `---` after the last setting".to_string(),
        ),
    };
    Problem {
        file,
        line: Some(1),
        column: Some(1),
        at: None,
        message,
        hint: Some(hint),
    }
}

/// Syntax errors come from libyaml, whose errors alone debug-print as a struct.
fn is_syntax_error(error: &serde_yaml_ng::Error) -> bool {
    format!("{error:?}").starts_with("Error {")
}

/// Adds `offset` to every `line N` in a library message, so it matches the file.
fn shift_lines(text: &str, offset: usize) -> String {
    const WORD: &str = "line ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find(WORD) {
        let (before, after) = rest.split_at(index + WORD.len());
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(line) => out.push_str(&(line + offset).to_string()),
            Err(_) => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Splits `git[0].Name: message` into its document path and the message.
fn split_path(text: &str) -> (Option<&str>, &str) {
    match text.split_once(": ") {
        Some((path, message)) if !path.is_empty() && !path.contains([' ', '`']) => {
            (Some(path), message)
        }
        _ => (None, text),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// How to fix the library's common type errors.
fn type_hint(message: &str) -> Option<&'static str> {
    if message.starts_with("unknown variant") {
        Some("use one of the listed values, spelt exactly so")
    } else if message.ends_with("expected a boolean") {
        Some("write `true` or `false`")
    } else if message.ends_with("expected a sequence") {
        Some("write a list: `- item` lines below the key, or `[a, b]`")
    } else if message.starts_with("invalid type") && message.contains("mapping") {
        Some("write a mapping: indented `key: value` lines below the key, or `{key: value}`")
    } else {
        None
    }
}

fn missing_hint(key: &str) -> String {
    match key {
        "bottle" => "add `bottle: <name>`, naming a bottle of the bottle home's bottles/ directory"
            .to_string(),
        "Name" => "add `Name: <name>`: it names the repository in the bottle".to_string(),
        "Upstream" => "add `Upstream: ssh://git@host/path.git`".to_string(),
        "IdentityFile" => {
            "add `IdentityFile: ~/.ssh/<key>`, the private key for this upstream".to_string()
        }
        "KnownHostKey" => {
            "add `KnownHostKey: ssh-ed25519 AAAA…`, as printed by `ssh-keyscan -t ed25519 <host>`"
                .to_string()
        }
        "host" => "add `host: api.example.com`".to_string(),
        other => format!("add the `{other}` key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_every_line_number() {
        assert_eq!(
            shift_lines("x at line 3 column 1, while parsing at line 1 column 2", 1),
            "x at line 4 column 1, while parsing at line 2 column 2"
        );
        assert_eq!(
            shift_lines("a line without number", 1),
            "a line without number"
        );
    }

    #[test]
    fn splits_paths_from_messages() {
        assert_eq!(
            split_path("git[0]: missing field `Name`"),
            (Some("git[0]"), "missing field `Name`")
        );
        assert_eq!(
            split_path("invalid type: string \"x\", expected a boolean"),
            (None, "invalid type: string \"x\", expected a boolean")
        );
    }
}
