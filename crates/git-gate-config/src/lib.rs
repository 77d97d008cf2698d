//! The git gate's configuration file, `/etc/bottle/git-gate.yaml` in its sidecar.
//!
//! Shared by the `git-gate` plugin (WebAssembly, so this crate is serde only) and the
//! `bottle-git-gate` program.
//!
//! The plugin writes it; `bottle-git-gate serve --config <path>` reads it at start. It names the
//! private keys and the `known_hosts` file by their paths in the gate's container; a key never
//! appears in it.
//!
//! ```yaml
//! version: 1
//! listen: 0.0.0.0:9418
//! repos:
//! - name: app                                    # served as git://git-gate/app.git
//!   upstream: ssh://git@example.com:22/org/app.git
//!   identity_file: /etc/bottle/git-gate/keys/app # mode 0600
//!   known_hosts: /etc/bottle/git-gate/known_hosts
//!   policy:
//!     protected: [main]                          # branches the agent may not update
//!     allow_force_push: false                    # non-fast-forward updates (never on protected)
//!     allowed_refs: []                           # when not empty, the only refs it may update
//!     allow_delete: false                        # deleting refs
//!     allow_ci_changes: false                    # commits changing CI definitions
//! ```
//!
//! The gate talks ssh to each upstream with `identity_file`, checking the host key strictly against
//! `known_hosts` (host names in OpenSSH syntax, `[host]:port` off port 22). The policy fields are
//! those of the manifest's `git` entry, passed through unchanged. The gate's safer defaults: an empty
//! `protected` protects the upstream's default branch; tags need a `refs/tags/…` glob in
//! `allowed_refs`; CI definitions need `allow_ci_changes`.

use serde::{Deserialize, Serialize};

pub mod ref_glob;

/// The version of the format this module writes.
pub const FORMAT_VERSION: u32 = 1;

/// Where the plugin writes the file and the gate reads it by default.
pub const DEFAULT_PATH: &str = "/etc/bottle/git-gate.yaml";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Format version; [`FORMAT_VERSION`].
    pub version: u32,
    /// Address the git daemon listens on, such as `0.0.0.0:9418`.
    pub listen: String,
    /// The repositories the gate serves.
    pub repos: Vec<GateRepo>,
    /// Environment variables of the gate holding the bottle's secrets: a push containing one of
    /// their values is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
}

/// One repository the gate serves as `git://<gate>/<name>.git`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRepo {
    /// The repository's name, a single path component.
    pub name: String,
    /// The upstream's URL, as the manifest gives it.
    pub upstream: String,
    /// The private key for the upstream, as a path in the gate's container.
    pub identity_file: String,
    /// The `known_hosts` file the upstream's host key is checked against.
    pub known_hosts: String,
    /// What the agent may do to the upstream's refs.
    pub policy: Policy,
}

/// What the agent may push.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Branches the agent may not update.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Whether non-fast-forward updates are allowed (never on protected branches).
    #[serde(default)]
    pub allow_force_push: bool,
    /// When not empty, the only refs the agent may update.
    #[serde(default)]
    pub allowed_refs: Vec<String>,
    /// Whether the agent may delete refs.
    #[serde(default)]
    pub allow_delete: bool,
    /// Whether the agent may push commits that change CI definitions (`.github/workflows/`, …).
    #[serde(default)]
    pub allow_ci_changes: bool,
}

/// Whether `name` is a plain repository name: one path component of `[A-Za-z0-9._-]`, not
/// starting with a dot.
pub fn is_repo_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl GateConfig {
    /// The rules the file must follow beyond its shape: a known version, plain repository names.
    pub fn check(&self) -> Result<(), String> {
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "version {} is not supported ({FORMAT_VERSION} is)",
                self.version
            ));
        }
        for repo in &self.repos {
            if !is_repo_name(&repo.name) {
                return Err(format!("repo name `{}` is not a plain name", repo.name));
            }
            let policy = &repo.policy;
            for glob in policy.protected.iter().chain(&policy.allowed_refs) {
                ref_glob::check(glob).map_err(|e| format!("repo `{}`: {e}", repo.name))?;
            }
        }
        Ok(())
    }

    /// The repository named `name`.
    pub fn repo(&self, name: &str) -> Option<&GateRepo> {
        self.repos.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(protected: &str) -> GateConfig {
        let json = serde_json::json!({
            "version": FORMAT_VERSION,
            "listen": "0.0.0.0:9418",
            "repos": [{
                "name": "app",
                "upstream": "ssh://git@example.com/o/app.git",
                "identity_file": "/id",
                "known_hosts": "/kh",
                "policy": {"protected": [protected]},
            }],
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn check_reads_ref_globs_with_the_gate_grammar() {
        config("release/**").check().unwrap();
        let err = config("main\u{1b}[2J").check().unwrap_err();
        assert!(
            err.contains("repo `app`") && err.contains("control"),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'), "{err}");
    }
}
