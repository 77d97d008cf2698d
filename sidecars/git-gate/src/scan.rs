//! Secret scan of what a push sends: added lines of patches, commit and tag objects, blobs, paths.
//!
//! Every function here works on bytes git already printed; [`crate::pushed`] decides which
//! objects a push would send and feeds them in.

use bottle_secret_scan::{ExactSecret, Scanner};

/// What kind of object a leak was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A commit (its diff against a parent, or the commit object itself).
    Commit,
    /// An annotated tag object.
    Tag,
    /// A tree pushed directly (not through a commit).
    Tree,
    /// A blob pushed directly.
    Blob,
    /// The name of a pushed ref.
    Ref,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tag => "tag object",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Ref => "ref",
        }
    }
}

/// Where in the object the secret sits (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// An added line of a file.
    Line {
        /// The file's path.
        file: String,
        /// Line number in the new file.
        line: usize,
    },
    /// The path of a file (not shown: it holds the secret).
    Path,
    /// A header field of a commit or tag object (`author`, `committer`, `tagger`, `tag`, …).
    Header(String),
    /// A line of a commit or tag message.
    Message(usize),
    /// A line of a blob pushed directly.
    Content(usize),
    /// The ref's name (not shown: it holds the secret).
    RefName,
}

/// A secret found in what a push sends, located without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The kind of object.
    pub kind: Kind,
    /// The object's id (empty for a ref name).
    pub object: String,
    /// Where in it.
    pub place: Place,
    /// The rule (or secret label) that matched.
    pub rule: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = format!("{} {}", self.kind.word(), short(&self.object));
        match &self.place {
            Place::Line { file, line } => write!(f, "{what} adds a secret at {file}:{line}"),
            Place::Path => write!(f, "{what} adds a file whose path holds a secret"),
            Place::Header(field) => write!(f, "{what} holds a secret in its `{field}` field"),
            Place::Message(line) => write!(f, "{what} holds a secret in its message, line {line}"),
            Place::Content(line) => write!(f, "{what} holds a secret at line {line}"),
            Place::RefName => write!(f, "a pushed ref's name holds a secret"),
        }?;
        write!(f, " (rule {})", self.rule)
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The scanner: built-in patterns plus the exact values of `secret_env`'s variables.
pub fn scanner(secret_env: &[String]) -> Result<Scanner, bottle_secret_scan::Error> {
    let exact = secret_env
        .iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|value| ExactSecret::new(name.clone(), value))
        })
        .collect();
    Scanner::with_builtin_rules(exact)
}

/// One leak per finding of `scanner` in `text`.
fn find(
    scanner: &Scanner,
    text: &[u8],
    kind: Kind,
    object: &str,
    place: impl Fn() -> Place,
) -> Vec<Leak> {
    scanner
        .scan(text)
        .into_iter()
        .map(|finding| Leak {
            kind,
            object: object.to_owned(),
            place: place(),
            rule: finding.rule,
        })
        .collect()
}

/// The marker line `git log --format=%x00commit %H` prints before each commit's patch.
pub const COMMIT_MARKER: &[u8] = b"\0commit ";

/// Where the patch parser is.
enum Patch {
    /// Between hunks: `diff --git`, extended headers, `---`/`+++`, `@@`, commit markers.
    Headers,
    /// Inside a hunk: exactly this many removed and added lines follow, whatever they look like
    /// (a content line `++x` is shown as `+++x` and is content, not a header).
    Hunk { old: usize, new: usize },
}

/// Scan a `git log -p -m --unified=0 --format=%x00commit %H` stream (or one commit's patch, with
/// `commit` naming it): every added line, with its file and line, and every new file's path.
pub fn scan_patch(scanner: &Scanner, commit: &str, patch: &[u8]) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let mut commit = commit.to_owned();
    let (mut file, mut line) = (String::new(), 0usize);
    let mut state = Patch::Headers;
    for text in patch.split(|&b| b == b'\n') {
        match &mut state {
            Patch::Hunk { old, new } => {
                match text.first() {
                    Some(b'+') => {
                        // The place is built only for a finding: this loop runs per added line.
                        let at = || Place::Line {
                            file: file.clone(),
                            line,
                        };
                        leaks.extend(find(scanner, &text[1..], Kind::Commit, &commit, at));
                        line += 1;
                        *new = new.saturating_sub(1);
                    }
                    Some(b'-') => *old = old.saturating_sub(1),
                    // "\ No newline at end of file" belongs to the line before it.
                    Some(b'\\') => {}
                    _ => {
                        line += 1;
                        *old = old.saturating_sub(1);
                        *new = new.saturating_sub(1);
                    }
                }
                if *old == 0 && *new == 0 {
                    state = Patch::Headers;
                }
            }
            Patch::Headers => {
                if let Some(id) = text.strip_prefix(COMMIT_MARKER) {
                    commit = String::from_utf8_lossy(id).trim().to_owned();
                } else if text.starts_with(b"diff ") {
                    file.clear();
                } else if let Some(path) = text.strip_prefix(b"+++ ") {
                    file = new_path(path);
                    if !file.is_empty() {
                        let found = find(scanner, file.as_bytes(), Kind::Commit, &commit, || {
                            Place::Path
                        });
                        if !found.is_empty() {
                            // The path holds the secret: it must not appear in a report.
                            file = "<a path holding a secret>".into();
                        }
                        leaks.extend(found);
                    }
                } else if let Some((start, old, new)) =
                    text.strip_prefix(b"@@ ").and_then(hunk_counts)
                {
                    line = start;
                    if old > 0 || new > 0 {
                        state = Patch::Hunk { old, new };
                    }
                }
            }
        }
    }
    leaks
}

/// A path as git prints it: C-quoted when it has special characters.
pub fn git_path(raw: &[u8]) -> String {
    String::from_utf8_lossy(&unquoted(raw)).into_owned()
}

fn unquoted(raw: &[u8]) -> Vec<u8> {
    if raw.first() == Some(&b'"') {
        unquote(raw)
    } else {
        raw.to_vec()
    }
}

/// The path of a `+++ ` line: `b/<path>`, C-quoted when git quotes it, `/dev/null` for a
/// deletion (empty). git ends the line with a tab when the path has a space.
fn new_path(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\t").unwrap_or(raw);
    let path = unquoted(raw);
    if path == b"/dev/null" {
        return String::new();
    }
    let path = path.strip_prefix(b"b/").unwrap_or(&path);
    String::from_utf8_lossy(path).into_owned()
}

/// Undo git's C-style quoting of a path (`"a\tb\303\251"`).
fn unquote(quoted: &[u8]) -> Vec<u8> {
    let inner = quoted.strip_prefix(b"\"").unwrap_or(quoted);
    let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(d @ b'0'..=b'7') => {
                let mut value = u32::from(d - b'0');
                for _ in 0..2 {
                    if let Some(&next @ b'0'..=b'7') = bytes.peek() {
                        value = value * 8 + u32::from(next - b'0');
                        bytes.next();
                    }
                }
                out.push(value as u8);
            }
            Some(b'a') => out.push(7),
            Some(b'b') => out.push(8),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'v') => out.push(11),
            Some(b'f') => out.push(12),
            Some(b'r') => out.push(b'\r'),
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

/// The new-file start line and the removed and added counts of a hunk header
/// `-a[,b] +c[,d] @@` (a missing count is 1).
fn hunk_counts(hunk: &[u8]) -> Option<(usize, usize, usize)> {
    let text = std::str::from_utf8(hunk).ok()?;
    let mut parts = text.split_whitespace();
    let range = |part: &str| -> Option<(usize, usize)> {
        let mut numbers = part.split(',');
        let start = numbers.next()?.parse().ok()?;
        let count = numbers.next().map_or(Some(1), |n| n.parse().ok())?;
        Some((start, count))
    };
    let (_, old) = range(parts.next()?.strip_prefix('-')?)?;
    let (start, new) = range(parts.next()?.strip_prefix('+')?)?;
    Some((start, old, new))
}

/// Scan a raw commit or tag object (`git cat-file <type> <id>`): every header line, named by its
/// field (continuation lines belong to the field above), then every message line.
pub fn scan_object(scanner: &Scanner, kind: Kind, id: &str, raw: &[u8]) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let mut lines = raw.split(|&b| b == b'\n');
    let mut field = String::new();
    for header in lines.by_ref() {
        if header.is_empty() {
            break;
        }
        if header.first() != Some(&b' ') {
            let name = header.split(|&b| b == b' ').next().unwrap_or_default();
            field = String::from_utf8_lossy(name).into_owned();
        }
        leaks.extend(find(scanner, header, kind, id, || {
            Place::Header(field.clone())
        }));
    }
    for (index, text) in lines.enumerate() {
        leaks.extend(find(scanner, text, kind, id, || Place::Message(index + 1)));
    }
    leaks
}

/// Scan a blob pushed directly, line by line.
pub fn scan_blob(scanner: &Scanner, id: &str, content: &[u8]) -> Vec<Leak> {
    content
        .split(|&b| b == b'\n')
        .enumerate()
        .flat_map(|(index, text)| find(scanner, text, Kind::Blob, id, || Place::Content(index + 1)))
        .collect()
}

/// Scan one file of a tree pushed directly: its path, then its lines.
pub fn scan_tree_file(scanner: &Scanner, tree: &str, path: &str, content: &[u8]) -> Vec<Leak> {
    let mut leaks = find(scanner, path.as_bytes(), Kind::Tree, tree, || Place::Path);
    let file = if leaks.is_empty() {
        path.to_owned()
    } else {
        "<a path holding a secret>".to_owned()
    };
    for (index, text) in content.split(|&b| b == b'\n').enumerate() {
        let at = Place::Line {
            file: file.clone(),
            line: index + 1,
        };
        leaks.extend(find(scanner, text, Kind::Tree, tree, || at.clone()));
    }
    leaks
}

/// Scan a pushed ref's name (it reaches the upstream too).
pub fn scan_ref_name(scanner: &Scanner, name: &str) -> Vec<Leak> {
    find(scanner, name.as_bytes(), Kind::Ref, "", || Place::RefName)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

    fn scan(patch: &str) -> Vec<Leak> {
        scan_patch(&scanner(&[]).unwrap(), "abcdef0123456789", patch.as_bytes())
    }

    #[test]
    fn finds_the_file_and_line_of_an_added_key() {
        let patch = format!(
            "diff --git a/x b/conf/x.env\n--- a/conf/x.env\n+++ b/conf/x.env\n@@ -3,0 +4,2 @@\n+NAME=ok\n+AWS_KEY={KEY}\n"
        );
        let leaks = scan(&patch);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        assert_eq!(
            leaks[0].place,
            Place::Line {
                file: "conf/x.env".into(),
                line: 5
            }
        );
        let said = leaks[0].to_string();
        assert!(said.contains("conf/x.env:5") && said.contains("abcdef012345"));
        assert!(
            !said.contains("AKIA"),
            "a leak report never shows the value"
        );
    }

    #[test]
    fn removed_lines_are_not_findings() {
        let patch = format!("+++ b/a\n@@ -1 +1 @@\n-{KEY}\n+clean\n");
        assert!(scan(&patch).is_empty());
    }

    #[test]
    fn an_added_line_that_looks_like_a_header_is_content() {
        // The file line `++ k=<key>` is shown as `+++ k=<key>`: content, by the hunk's count.
        let patch = format!(
            "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+++ k={KEY}\n+@@ -1 +1 @@\n"
        );
        let leaks = scan(&patch);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        assert_eq!(
            leaks[0].place,
            Place::Line {
                file: "f".into(),
                line: 1
            }
        );
    }

    #[test]
    fn a_removed_line_that_looks_like_a_header_does_not_end_the_hunk() {
        let patch = format!("+++ b/f\n@@ -1,2 +1 @@\n--- x\n-@@ -9 +9 @@\n+{KEY}\n");
        let leaks = scan(&patch);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
    }

    #[test]
    fn commit_markers_name_each_commit_and_quoted_paths_are_unquoted() {
        let patch = format!(
            "\0commit 1111\n+++ \"b/a\\tb\"\n@@ -0,0 +1 @@\n+{KEY}\n\0commit 2222\n+++ b/with space\t\n@@ -0,0 +7 @@\n+{KEY}\n"
        );
        let leaks = scan(&patch);
        assert_eq!(leaks.len(), 2, "{leaks:?}");
        assert_eq!(leaks[0].object, "1111");
        assert_eq!(
            leaks[0].place,
            Place::Line {
                file: "a\tb".into(),
                line: 1
            }
        );
        assert_eq!(leaks[1].object, "2222");
        assert_eq!(
            leaks[1].place,
            Place::Line {
                file: "with space".into(),
                line: 7
            }
        );
    }

    #[test]
    fn a_path_holding_a_secret_is_found_and_never_shown() {
        let patch = format!("+++ b/keys/{KEY}.txt\n@@ -0,0 +1 @@\n+{KEY}\n");
        let leaks = scan(&patch);
        assert_eq!(leaks[0].place, Place::Path);
        for leak in &leaks {
            assert!(!leak.to_string().contains("AKIA"), "{leak}");
        }
    }

    #[test]
    fn commit_headers_and_messages_are_scanned_by_field_and_line() {
        let raw = format!(
            "tree 1\nauthor A <{KEY}@x> 1 +0000\ncommitter C <c@x> 1 +0000\n\nsubject\n\nkey {KEY}\n"
        );
        let leaks = scan_object(
            &scanner(&[]).unwrap(),
            Kind::Commit,
            "c0ffee",
            raw.as_bytes(),
        );
        let places: Vec<_> = leaks.iter().map(|l| l.place.clone()).collect();
        assert_eq!(places, [Place::Header("author".into()), Place::Message(3)]);
        assert!(leaks[1].to_string().contains("message, line 3"));
    }

    #[test]
    fn hunk_headers_parse() {
        assert_eq!(hunk_counts(b"-3,0 +4,2 @@"), Some((4, 0, 2)));
        assert_eq!(hunk_counts(b"-1 +1 @@ fn x()"), Some((1, 1, 1)));
        assert_eq!(hunk_counts(b"garbage"), None);
    }
}
