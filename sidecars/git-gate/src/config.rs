//! The gate's configuration file, as the `git-gate` plugin renders it.

use std::path::Path;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Format version (1).
    pub version: u32,
    /// `host:port` for git daemon.
    pub listen: String,
    /// The repositories served.
    pub repos: Vec<Repo>,
    /// Environment variables whose values must never be pushed (exact-value scan).
    #[serde(default)]
    pub secret_env: Vec<String>,
}

/// One repository, served as `git://<gate>/<name>.git`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// Name, a single path component.
    pub name: String,
    /// Upstream URL (`ssh://…`).
    pub upstream: String,
    /// Private key for the upstream.
    pub identity_file: String,
    /// known_hosts the upstream's key is checked against.
    pub known_hosts: String,
    /// What the agent may push.
    #[serde(default)]
    pub policy: Policy,
}

/// Ref policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Branch globs the agent may not update.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Non-fast-forward updates allowed (never on protected branches).
    #[serde(default)]
    pub allow_force_push: bool,
    /// When not empty, the only refs the agent may update (globs over full ref names or branches).
    #[serde(default)]
    pub allowed_refs: Vec<String>,
    /// Deleting refs allowed.
    #[serde(default)]
    pub allow_delete: bool,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    /// Not the format.
    #[error("{0} is not a git gate configuration: {1}")]
    Parse(String, serde_yaml_ng::Error),
    /// A rule broken.
    #[error("{0}")]
    Invalid(String),
}

impl GateConfig {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<GateConfig, ConfigError> {
        let label = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(label.clone(), e))?;
        let config: GateConfig =
            serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Parse(label, e))?;
        config.check()?;
        Ok(config)
    }

    /// The rules the file must follow.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.version != 1 {
            return Err(ConfigError::Invalid(format!(
                "version {} is not supported (1 is)",
                self.version
            )));
        }
        for repo in &self.repos {
            let plain = !repo.name.is_empty()
                && repo
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !repo.name.starts_with('.');
            if !plain {
                return Err(ConfigError::Invalid(format!(
                    "repo name `{}` is not a plain name",
                    repo.name
                )));
            }
        }
        Ok(())
    }

    /// The repository named `name`.
    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_plugin_renders() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/git-gate/tests/golden/git-gate.yaml");
        let config = GateConfig::load(&golden).unwrap();
        assert_eq!(config.repos[0].name, "app");
        assert_eq!(config.repos[0].policy.protected, ["main", "release/*"]);
    }

    #[test]
    fn refuses_path_like_names() {
        let config = GateConfig {
            version: 1,
            listen: "0.0.0.0:9418".into(),
            repos: vec![Repo {
                name: "../x".into(),
                upstream: "ssh://git@h/x".into(),
                identity_file: "/k".into(),
                known_hosts: "/kh".into(),
                policy: Policy::default(),
            }],
            secret_env: Vec::new(),
        };
        assert!(config.check().is_err());
    }
}
