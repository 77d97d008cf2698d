//! The bottle home directory (`$BOTTLE_HOME`, default `~/.bottle`): the trust boundary for bottle
//! manifests and where the host keeps plugins, caches and state.

use std::path::{Path, PathBuf};

/// The directory of learn records under the bottle home.
pub const LEARN_DIR: &str = "learn";

/// Paths under the bottle home.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$BOTTLE_HOME`, else `$HOME/.bottle`.
    pub fn from_env() -> anyhow::Result<Self> {
        let root = match std::env::var_os("BOTTLE_HOME") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "neither BOTTLE_HOME nor HOME is set; set BOTTLE_HOME to a directory"
                        )
                    })?;
                PathBuf::from(home).join(".bottle")
            }
        };
        Ok(Home { root })
    }

    /// A home at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// External plugin components.
    pub fn plugins_dir(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// Learn records of `bottle start --learn` sessions.
    pub fn learn_dir(&self) -> PathBuf {
        self.root.join(LEARN_DIR)
    }

    /// The precompiled-component cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Bottle manifests (`bottles/<name>.md`), the only place bottles come from.
    pub fn bottles_dir(&self) -> PathBuf {
        self.root.join("bottles")
    }

    /// The home's agent manifests (`agents/<name>.md`).
    pub fn agents_dir(&self) -> PathBuf {
        self.root.join("agents")
    }

    /// Each bottle's state by identity (`state/<identity>/`: launch record, supervise queue,
    /// plugin state), kept until the bottle is stopped or resumed.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Each launch's staging area by identity (`run/<identity>/`), removed at teardown.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The audit trail (`audit/<date>.jsonl`) and kept sidecar logs.
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// Organisation policy modules, unless `$BOTTLE_POLICY_DIR` names another directory.
    pub fn policy_dir(&self) -> PathBuf {
        self.root.join("policy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directory_is_under_the_root_and_distinct() {
        let home = Home::at("/h");
        let dirs = [
            home.plugins_dir(),
            home.cache_dir(),
            home.bottles_dir(),
            home.agents_dir(),
            home.state_dir(),
            home.run_dir(),
            home.audit_dir(),
            home.policy_dir(),
        ];
        for (i, dir) in dirs.iter().enumerate() {
            assert_eq!(dir.parent(), Some(Path::new("/h")), "{dir:?}");
            assert!(dirs[i + 1..].iter().all(|d| d != dir), "{dir:?}");
        }
        assert_eq!(home.state_dir(), Path::new("/h/state"));
    }
}
