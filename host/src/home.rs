//! The bottle home directory (`$BOTTLE_HOME`, default `~/.bottle`): the trust boundary for bottle
//! manifests and where the host keeps plugins, caches and state.

use std::path::{Path, PathBuf};

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

    /// Learn records of `bottle start --learn` sessions (see `crate::learn`).
    pub fn learn_dir(&self) -> PathBuf {
        crate::learn::dir(&self.root)
    }

    /// The precompiled-component cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
}
