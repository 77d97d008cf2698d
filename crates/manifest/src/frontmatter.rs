//! Split a Markdown file into its YAML frontmatter and its body.

/// The delimiter line, before and after the frontmatter.
const FENCE: &str = "---";

/// A manifest split at its `---` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frontmatter<'a> {
    /// The YAML between the fences.
    pub yaml: &'a str,
    /// The file line the YAML starts on, minus one: add it to a line of `yaml` to get a file line.
    pub line_offset: usize,
    /// Everything after the closing fence.
    pub body: &'a str,
}

/// Why a file has no usable frontmatter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrontmatterError {
    /// The first line is not `---`.
    Missing,
    /// No `---` line closes the frontmatter.
    Unterminated,
}

/// Splits `text`; the first line must be `---` (a byte-order mark and trailing spaces are fine).
pub(crate) fn split(text: &str) -> Result<Frontmatter<'_>, FrontmatterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = LineSpans::new(text);
    match lines.next() {
        Some((_, end, line)) if is_fence(line) => split_after(text, end, lines),
        _ => Err(FrontmatterError::Missing),
    }
}

fn split_after<'a>(
    text: &'a str,
    yaml_start: usize,
    lines: LineSpans<'a>,
) -> Result<Frontmatter<'a>, FrontmatterError> {
    for (start, end, line) in lines {
        if is_fence(line) {
            return Ok(Frontmatter {
                yaml: &text[yaml_start..start],
                line_offset: 1,
                body: &text[end..],
            });
        }
    }
    Err(FrontmatterError::Unterminated)
}

fn is_fence(line: &str) -> bool {
    line.trim_end() == FENCE
}

/// Lines with their byte span: (start, end including the newline, text without it).
struct LineSpans<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> LineSpans<'a> {
    fn new(text: &'a str) -> Self {
        LineSpans { text, position: 0 }
    }
}

impl<'a> Iterator for LineSpans<'a> {
    type Item = (usize, usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.position >= self.text.len() {
            return None;
        }
        let start = self.position;
        let rest = &self.text[start..];
        let (line, end) = match rest.find('\n') {
            Some(index) => (&rest[..index], start + index + 1),
            None => (rest, self.text.len()),
        };
        self.position = end;
        Some((start, end, line))
    }
}

/// The body without its leading and trailing blank lines.
pub(crate) fn trim_blank_lines(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_yaml_and_body() {
        let doc = split("---\na: 1\n---\n\nHello\n").unwrap();
        assert_eq!(doc.yaml, "a: 1\n");
        assert_eq!(doc.body, "\nHello\n");
        assert_eq!(doc.line_offset, 1);
    }

    #[test]
    fn accepts_crlf_bom_and_empty_frontmatter() {
        let doc = split("\u{feff}---\r\n---\r\nbody").unwrap();
        assert_eq!(doc.yaml, "");
        assert_eq!(doc.body, "body");
    }

    #[test]
    fn reports_missing_and_unterminated() {
        assert_eq!(split("# Title\n"), Err(FrontmatterError::Missing));
        assert_eq!(split(""), Err(FrontmatterError::Missing));
        assert_eq!(split("---\na: 1\n"), Err(FrontmatterError::Unterminated));
    }

    #[test]
    fn trims_only_blank_lines() {
        assert_eq!(trim_blank_lines("\n \n  a\n\nb \n\n"), "  a\n\nb ");
        assert_eq!(trim_blank_lines("\n\n"), "");
    }
}
