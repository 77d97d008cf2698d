//! Ref globs of the git gate's policy (`protected`, `allowed_refs`): the one grammar and the one
//! matcher, used by the manifest, supervise proposals and the gate.
//!
//! `*` matches any run of characters within one path segment (never `/`), `**` any run across
//! segments; everything else matches itself. A glob is not empty, holds no whitespace or control
//! character and no `..` (which no ref name holds).

/// Why a text is not a ref glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{glob}` is not a valid ref glob: {problem}; use a branch or ref name or glob such as `main`, `release/*` or `refs/tags/v*`"
)]
pub struct RefGlobError {
    glob: String,
    problem: &'static str,
}

/// The longest excerpt of a bad glob echoed in an error.
const ECHO_LIMIT: usize = 80;

/// Checks that `glob` is a ref glob.
pub fn check(glob: &str) -> Result<(), RefGlobError> {
    let problem = if glob.is_empty() {
        "it is empty"
    } else if glob.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it contains whitespace or a control character"
    } else if glob.contains("..") {
        "it contains `..`"
    } else {
        return Ok(());
    };
    let excerpt: String = glob.chars().take(ECHO_LIMIT).collect();
    Err(RefGlobError {
        glob: excerpt.escape_debug().to_string(),
        problem,
    })
}

/// Whether the ref or branch name `name` matches `glob`.
///
/// One pass over the name per glob token, so a glob full of stars costs `O(glob × name)`, never
/// exponential backtracking.
pub fn matches(glob: &str, name: &str) -> bool {
    let name = name.as_bytes();
    // reach[j]: the tokens so far can match exactly name[..j].
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for token in tokens(glob.as_bytes()) {
        reach = step(&reach, token, name);
    }
    reach[name.len()]
}

/// Where the name can stand after one more token, given where it could before.
fn step(reach: &[bool], token: Token, name: &[u8]) -> Vec<bool> {
    let mut next = vec![false; reach.len()];
    match token {
        Token::Byte(b) => {
            for (j, &c) in name.iter().enumerate() {
                next[j + 1] = reach[j] && c == b;
            }
        }
        Token::Star | Token::DoubleStar => {
            let mut open = false;
            for j in 0..reach.len() {
                open |= reach[j];
                next[j] = open;
                // A single star never steps over a `/`.
                if token == Token::Star && name.get(j) == Some(&b'/') {
                    open = false;
                }
            }
        }
    }
    next
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `*`: within a segment.
    Star,
    /// `**`: across segments.
    DoubleStar,
}

fn tokens(glob: &[u8]) -> Vec<Token> {
    let mut out = Vec::with_capacity(glob.len());
    let mut i = 0;
    while i < glob.len() {
        if glob[i..].starts_with(b"**") {
            out.push(Token::DoubleStar);
            i += 2;
        } else if glob[i] == b'*' {
            out.push(Token::Star);
            i += 1;
        } else {
            out.push(Token::Byte(glob[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert!(matches("main", "main"));
        assert!(!matches("main", "mainline"));
        assert!(matches("release/*", "release/1.0"));
        assert!(!matches("release/*", "release/1.0/hotfix"));
        assert!(matches("release/**", "release/1.0/hotfix"));
        assert!(matches("agent-*", "agent-fix"));
        assert!(matches("refs/tags/v*", "refs/tags/v1.2"));
        assert!(!matches("refs/tags/v*", "refs/tags/x/v1"));
        assert!(matches("**/fix", "agent/a/fix"));
        assert!(matches("*", ""));
        assert!(!matches("a*", "b"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let glob = "*a".repeat(40) + "b";
        let name = "a".repeat(4000);
        assert!(!matches(&glob, &name));
        let glob = "**a".repeat(40) + "b";
        assert!(!matches(&glob, &name));
    }

    #[test]
    fn checks_say_what_is_wrong() {
        check("release/*").unwrap();
        for (bad, why) in [
            ("", "empty"),
            ("a b", "whitespace"),
            ("a\u{1b}b", "control"),
            ("a/../b", "`..`"),
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(!err.contains('\u{1b}'), "{err}");
        }
    }
}
