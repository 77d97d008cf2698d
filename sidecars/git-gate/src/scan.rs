//! Secret scan of the lines a commit adds.

use bottle_secret_scan::{ExactSecret, Scanner};

/// A secret found in a commit, located without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Commit id.
    pub commit: String,
    /// File path.
    pub file: String,
    /// Line number in the new file.
    pub line: usize,
    /// The rule (or secret label) that matched.
    pub rule: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit {} adds a secret at {}:{} (rule {})",
            short(&self.commit),
            self.file,
            self.line,
            self.rule
        )
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

/// Scan a `git show --unified=0` patch of `commit`: every added line, with its file and line.
pub fn scan_patch(scanner: &Scanner, commit: &str, patch: &str) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let (mut file, mut line) = (String::new(), 0usize);
    for text in patch.lines() {
        if let Some(path) = text.strip_prefix("+++ ") {
            file = path.strip_prefix("b/").unwrap_or(path).to_owned();
        } else if let Some(hunk) = text.strip_prefix("@@ ") {
            line = new_start(hunk).unwrap_or(0);
        } else if let Some(added) = text.strip_prefix('+') {
            for finding in scanner.scan(added.as_bytes()) {
                leaks.push(Leak {
                    commit: commit.to_owned(),
                    file: file.clone(),
                    line,
                    rule: finding.rule,
                });
            }
            line += 1;
        } else if !text.starts_with('-') && !text.starts_with('\\') && line > 0 {
            line += 1;
        }
    }
    leaks
}

/// The new-file start line of a hunk header `-a,b +c,d @@`.
fn new_start(hunk: &str) -> Option<usize> {
    let plus = hunk.split_whitespace().find(|p| p.starts_with('+'))?;
    plus[1..].split(',').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_and_line_of_an_added_key() {
        let patch = "diff --git a/x b/conf/x.env\n--- a/conf/x.env\n+++ b/conf/x.env\n@@ -3,0 +4,2 @@\n+NAME=ok\n+AWS_KEY=AKIAIOSFODNN7EXAMPLE\n";
        let leaks = scan_patch(&scanner(&[]).unwrap(), "abcdef0123456789", patch);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        assert_eq!((leaks[0].file.as_str(), leaks[0].line), ("conf/x.env", 5));
        assert!(leaks[0].to_string().contains("conf/x.env:5"));
        assert!(
            !leaks[0].to_string().contains("AKIA"),
            "a leak report never shows the value"
        );
    }

    #[test]
    fn removed_lines_are_not_findings() {
        let patch = "+++ b/a\n@@ -1 +1 @@\n-AKIAIOSFODNN7EXAMPLE\n+clean\n";
        assert!(scan_patch(&scanner(&[]).unwrap(), "c", patch).is_empty());
    }
}
