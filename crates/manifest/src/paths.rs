//! File paths written in manifests: `~/` expansion and relative paths.

use std::path::{Path, PathBuf};

use crate::invalid::Invalid;

/// Resolves `raw`: `~/…` against the user's home, a relative path against the manifest's
/// directory (`base`), an absolute path as is.
pub(crate) fn resolve(
    raw: &str,
    user_home: Option<&Path>,
    base: Option<&Path>,
) -> Result<PathBuf, Invalid> {
    if let Some(rest) = raw.strip_prefix('~') {
        return expand_tilde(raw, rest, user_home);
    }
    let path = Path::new(raw);
    Ok(match base {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    })
}

fn expand_tilde(raw: &str, rest: &str, user_home: Option<&Path>) -> Result<PathBuf, Invalid> {
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(Invalid::new(format!("cannot expand `{raw}`"))
            .hint("only `~/` (your own home directory) is expanded; write an absolute path"));
    }
    let home = user_home.ok_or_else(|| {
        Invalid::new(format!(
            "cannot expand `{raw}`: the home directory is unknown"
        ))
        .hint("set $HOME, or write an absolute path")
    })?;
    Ok(home.join(rest.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_resolves() {
        let home = Path::new("/home/u");
        let base = Path::new("/b/bottles");
        let resolve = |raw| resolve(raw, Some(home), Some(base));
        assert_eq!(resolve("~/.ssh/id").unwrap(), Path::new("/home/u/.ssh/id"));
        assert_eq!(resolve("~").unwrap(), Path::new("/home/u"));
        assert_eq!(resolve("/etc/x").unwrap(), Path::new("/etc/x"));
        assert_eq!(
            resolve("x/Dockerfile").unwrap(),
            Path::new("/b/bottles/x/Dockerfile")
        );
        assert!(resolve("~bob/x").is_err());
        assert!(super::resolve("~/x", None, None).is_err());
    }
}
