//! A manifest being parsed: where it comes from, and turning every error into a located
//! [`Problem`].

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::IgnoredAny;

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

/// The YAML deserializer of a frontmatter, tracking the document path of the value it reads.
pub(crate) type Tracked<'t, 'y> =
    serde_path_to_error::Deserializer<'static, 't, yaml_serde::Deserializer<'y>>;

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

    /// Checks the frontmatter is well-formed YAML, before any visitor reads it: a visitor may
    /// stumble on a half-parsed document before the library reports the real cause.
    pub fn check_syntax(&self) -> Result<(), ManifestError> {
        yaml_serde::from_str::<IgnoredAny>(self.yaml)
            .map(drop)
            .map_err(|error| {
                let location = location(&error);
                let text = shift_lines(&without_location(&error, location), self.line_offset);
                let hint = "check indentation and quoting here; quote values that contain `: ` or \
                            ` #`, or start with `*`, `&`, `!`, `[`, `{`, `@`, `%` or a backquote";
                let message = format!("YAML syntax error: {text}");
                self.located(location, None, message, Some(hint.into()))
                    .into()
            })
    }

    /// Reads the frontmatter with `read`, tracking the document path of every value read, so an
    /// error names where it happened without parsing the YAML library's message for it.
    pub fn read<T>(
        &self,
        read: impl for<'t> FnOnce(Tracked<'t, 'a>) -> Result<T, yaml_serde::Error>,
    ) -> Result<T, ManifestError> {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(
            yaml_serde::Deserializer::from_str(self.yaml),
            &mut track,
        );
        read(tracked).map_err(|error| self.value_error(&error, &track.path()))
    }

    /// Places an error found while reading the value at `path`, decoding the [`Invalid`] it may
    /// carry.
    fn value_error(
        &self,
        error: &yaml_serde::Error,
        path: &serde_path_to_error::Path,
    ) -> ManifestError {
        let location = location(error);
        let text = without_location(error, location);
        let segments: Vec<_> = path.iter().collect();
        let full = document_path(&segments);
        let problem = match Invalid::decode(&text) {
            Some((_, invalid)) => {
                let owner = if invalid.of_key {
                    document_path(&segments[..segments.len().saturating_sub(1)])
                } else {
                    full
                };
                self.problem(invalid, owner.as_deref(), location)
            }
            None => {
                // The library starts its own message with the same path; drop it.
                let message = full
                    .as_deref()
                    .and_then(|path| text.strip_prefix(path)?.strip_prefix(": "))
                    .unwrap_or(&text);
                self.library_problem(message, full.as_deref(), location)
            }
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

    fn library_problem(
        &self,
        message: &str,
        path: Option<&str>,
        at: Option<(usize, usize)>,
    ) -> Problem {
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

/// A document path as `git[0].Name`; `None` at the root.
fn document_path(segments: &[&serde_path_to_error::Segment]) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Unknown => path.push_str(if path.is_empty() { "?" } else { ".?" }),
        }
    }
    (!path.is_empty()).then_some(path)
}

/// Where the library placed an error, relative to the frontmatter.
fn location(error: &yaml_serde::Error) -> Option<(usize, usize)> {
    error.location().map(|l| (l.line(), l.column()))
}

/// The library's message without the position it appends (relative to the frontmatter; we give
/// the file's).
fn without_location(error: &yaml_serde::Error, at: Option<(usize, usize)>) -> String {
    let text = error.to_string();
    match at {
        Some((line, column)) => text.replacen(&format!(" at line {line} column {column}"), "", 1),
        None => text,
    }
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
}
