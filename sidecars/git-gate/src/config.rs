//! The gate's configuration file, as the `git-gate` plugin renders it.

use std::path::Path;

pub use bottle_git_gate_config::{GateConfig, GateRepo as Repo, Policy};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    /// Not the format.
    #[error("{0} is not a git gate configuration: {1}")]
    Parse(String, yaml_serde::Error),
    /// A rule broken.
    #[error("{0}")]
    Invalid(String),
}

/// Read and check `path`.
pub fn load(path: &Path) -> Result<GateConfig, ConfigError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(label.clone(), e))?;
    let config: GateConfig =
        yaml_serde::from_str(&text).map_err(|e| ConfigError::Parse(label, e))?;
    config.check().map_err(ConfigError::Invalid)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_plugin_renders() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/git-gate/tests/golden/git-gate.yaml");
        let config = load(&golden).unwrap();
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
