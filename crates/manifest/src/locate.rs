//! Find the line of a `key: value` pair in frontmatter text.
//!
//! The YAML library places syntax and type errors itself; this is for problems that involve several
//! values (a repeated `Name`, a host mapped twice), where the library only knows the enclosing
//! mapping. A plain text search is enough for the block style manifests are written in; when it
//! finds nothing the caller keeps the enclosing mapping's position.

use crate::invalid::Find;

/// The 1-based (line, column) of the match in `yaml`, searching from line `from` (1-based).
pub(crate) fn find(yaml: &str, from: usize, what: &Find) -> Option<(usize, usize)> {
    yaml.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .filter_map(|(index, line)| matches(line, what).map(|column| (index + 1, column)))
        .nth(what.skip)
}

/// The 1-based column of the key when `line` holds the pair.
fn matches(line: &str, what: &Find) -> Option<usize> {
    let (column, rest) = key_start(line, what.top_level)?;
    let after = strip_key(rest, &what.key)?;
    let value = after.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with([' ', '\t'])) {
        return None;
    }
    match &what.value {
        None => Some(column),
        Some(wanted) => scalar_text(value)
            .eq_ignore_ascii_case(wanted)
            .then_some(column),
    }
}

/// Skips indentation and sequence dashes; returns the 1-based column where the key starts.
fn key_start(line: &str, top_level: bool) -> Option<(usize, &str)> {
    if top_level {
        return (!line.starts_with([' ', '\t', '-', '#'])).then_some((1, line));
    }
    let mut rest = line.trim_start();
    while let Some(after) = rest.strip_prefix('-') {
        if !after.starts_with([' ', '\t']) {
            break;
        }
        rest = after.trim_start();
    }
    Some((line.len() - rest.len() + 1, rest))
}

/// The text after `key`, written bare or quoted.
fn strip_key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    for quote in ["", "\"", "'"] {
        let Some(after) = text.strip_prefix(quote) else {
            continue;
        };
        if let Some(after) = after.strip_prefix(key).and_then(|a| a.strip_prefix(quote)) {
            return Some(after);
        }
    }
    None
}

/// The text of a one-line scalar: inside its quotes, or before a ` # comment`.
fn scalar_text(value: &str) -> &str {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            return inner.split(quote).next().unwrap_or_default();
        }
    }
    value.split(" #").next().unwrap_or_default().trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: Option<&str>, skip: usize) -> Find {
        Find {
            key: key.into(),
            value: value.map(Into::into),
            skip,
            top_level: false,
        }
    }

    const YAML: &str =
        "git:\n  - Name: app\n    Upstream: x\n  - \"Name\": 'app'  # again\nimage: x\n";

    #[test]
    fn finds_nth_occurrence_in_sequences() {
        assert_eq!(find(YAML, 1, &pair("Name", Some("app"), 0)), Some((2, 5)));
        assert_eq!(find(YAML, 1, &pair("Name", Some("APP"), 1)), Some((4, 5)));
        assert_eq!(find(YAML, 3, &pair("Name", None, 0)), Some((4, 5)));
        assert_eq!(find(YAML, 1, &pair("Name", Some("other"), 0)), None);
    }

    #[test]
    fn top_level_ignores_nested_keys() {
        let top = Find {
            key: "Upstream".into(),
            value: None,
            skip: 0,
            top_level: true,
        };
        assert_eq!(find(YAML, 1, &top), None);
        let image = Find {
            key: "image".into(),
            ..top
        };
        assert_eq!(find(YAML, 1, &image), Some((5, 1)));
    }

    #[test]
    fn key_prefixes_do_not_match() {
        assert_eq!(find("Names: a\n", 1, &pair("Name", None, 0)), None);
    }
}
