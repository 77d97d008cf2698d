//! `bottle edit`: a manifest edited in the user's editor and replaced only when it is valid.
//!
//! The editor works on a copy in a scratch directory beside the manifest (same file system, so the
//! final rename is atomic, and not a `*.md` the catalog would read). A copy that fails to parse is
//! re-opened with the error as comments at the top of its frontmatter, as `kubectl edit` does;
//! saving it unchanged, emptying it or a failing editor gives up and leaves the manifest as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitStatus;

/// Marks the lines `bottle edit` adds to explain an error; they are removed before every check.
pub const ERROR_MARK: &str = "# bottle edit: ";

/// How an edit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The valid new text replaced the manifest.
    Saved,
    /// The editor left the text as it was.
    Unchanged,
    /// The user gave up; the manifest keeps its old contents.
    Abandoned(String),
}

/// Edits `path` with `editor` until `check` accepts the text or the user gives up.
pub fn edit(
    path: &Path,
    check: &dyn Fn(&str) -> Result<(), String>,
    editor: &dyn Fn(&Path) -> std::io::Result<ExitStatus>,
) -> anyhow::Result<Outcome> {
    // A symlinked manifest (dotfiles) is edited where it lives, and stays a link.
    let real = path.canonicalize()?;
    let dir = real
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no directory", real.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix(".bottle-edit-")
        .tempdir_in(dir)?;
    let copy = scratch.path().join(real.file_name().unwrap_or_default());
    let original = std::fs::read_to_string(&real)?;
    let mut shown = original.clone();
    std::fs::write(&copy, &shown)?;
    loop {
        let status = editor(&copy)?;
        if !status.success() {
            return Ok(Outcome::Abandoned(format!(
                "the editor exited with {status}"
            )));
        }
        let saved = std::fs::read_to_string(&copy)?;
        let text = without_errors(&saved);
        if text == original {
            return Ok(Outcome::Unchanged);
        }
        if text.trim().is_empty() {
            return Ok(Outcome::Abandoned("the file was emptied".into()));
        }
        if saved == shown {
            return Ok(Outcome::Abandoned(
                "it was saved again with the error unchanged".into(),
            ));
        }
        match check(&text) {
            Ok(()) => {
                replace(&real, &copy, &text)?;
                return Ok(Outcome::Saved);
            }
            Err(error) => {
                eprintln!(
                    "{error}\nre-opening the editor: fix it, or save it unchanged to give up"
                );
                shown = with_error(&text, &error);
                std::fs::write(&copy, &shown)?;
            }
        }
    }
}

/// Replaces the manifest with `text`, keeping its permissions, and removes the editing copy.
fn replace(real: &Path, copy: &Path, text: &str) -> std::io::Result<()> {
    let mode = std::fs::metadata(real)?.permissions().mode() & 0o7777;
    bottle_atomic_file::replace(real, text.as_bytes(), mode)?;
    std::fs::remove_file(copy)
}

/// `text` without the lines [`with_error`] added.
pub fn without_errors(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| !line.starts_with(ERROR_MARK))
        .collect()
}

/// `text` with `error` as marked comment lines after its opening `---` (at the top without one),
/// where YAML ignores them and the user sees them first.
pub fn with_error(text: &str, error: &str) -> String {
    let comments: String = error
        .lines()
        .chain(["save unchanged to give up; these lines are removed before the check"])
        .map(|line| format!("{ERROR_MARK}{line}\n"))
        .collect();
    match text.split_once('\n') {
        Some((first, rest)) if first.trim_end() == "---" => format!("{first}\n{comments}{rest}"),
        _ => format!("{comments}{text}"),
    }
}

/// `$VISUAL`, else `$EDITOR`, else `vi`, run through the shell like git does (it may carry
/// arguments, as in `code --wait`).
pub fn run_editor(file: &Path) -> std::io::Result<ExitStatus> {
    let editor = ["VISUAL", "EDITOR"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file)
        .status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_go_after_the_fence_and_come_out_again() {
        let text = "---\nbottle: dev\n---\nPrompt.\n";
        let shown = with_error(text, "line 2: bad\nhint: fix");
        assert!(
            shown.starts_with("---\n# bottle edit: line 2: bad\n# bottle edit: hint: fix\n"),
            "{shown}"
        );
        assert_eq!(without_errors(&shown), text);
        assert!(with_error("no fence", "e").starts_with(ERROR_MARK));
    }
}
