//! `bottle init`: a starter agent and bottle in the bottle home, commented so that the next edit
//! needs no manual.

use std::io::Write;
use std::path::{Path, PathBuf};

use bottle_manifest::{Agent, Bottle, Origin, Source};

/// The two files `bottle init` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starter {
    /// The agent manifest.
    pub agent: PathBuf,
    /// The bottle manifest.
    pub bottle: PathBuf,
}

/// Why the starter was not written.
#[derive(Debug, thiserror::Error)]
pub enum StarterError {
    /// A name does not fit the manifest name rule.
    #[error("`{name}` is not a valid {what} name: names are {rule}; choose another with --{what}", rule = bottle_manifest::MANIFEST_NAME_RULE)]
    Name {
        /// `agent` or `bottle`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// A manifest of that name exists.
    #[error(
        "refusing to overwrite {}: it exists. Edit it with `bottle edit --{what} {name}`, or choose another name with --{what}",
        path.display()
    )]
    Exists {
        /// `agent` or `bottle`.
        what: &'static str,
        /// The name given.
        name: String,
        /// The existing file.
        path: PathBuf,
    },
    /// Writing failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Writes `<home>/agents/<agent>.md` and `<home>/bottles/<bottle>.md`; nothing when either name is
/// invalid or either file exists.
pub fn write(home: &Path, agent: &str, bottle: &str) -> Result<Starter, StarterError> {
    for (what, name) in [("agent", agent), ("bottle", bottle)] {
        if !bottle_manifest::is_manifest_name(name) {
            return Err(StarterError::Name {
                what,
                name: name.to_string(),
            });
        }
    }
    let home = crate::home::Home::at(home);
    let starter = Starter {
        agent: home.agents_dir().join(format!("{agent}.md")),
        bottle: home.bottles_dir().join(format!("{bottle}.md")),
    };
    for (what, name, path) in [
        ("agent", agent, &starter.agent),
        ("bottle", bottle, &starter.bottle),
    ] {
        if path.exists() || path.is_symlink() {
            return Err(StarterError::Exists {
                what,
                name: name.to_string(),
                path: path.clone(),
            });
        }
    }
    create(&starter.bottle, &bottle_text(bottle))?;
    if let Err(error) = create(&starter.agent, &agent_text(agent, bottle)) {
        // Both or neither: a lone bottle would make the next `bottle init` refuse.
        let _ = std::fs::remove_file(&starter.bottle);
        return Err(error);
    }
    Ok(starter)
}

/// Creates `path` with `text`, never replacing a file that appeared since the check.
fn create(path: &Path, text: &str) -> Result<(), StarterError> {
    let failed = |source| StarterError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)
}

/// The starter agent: the default agent's prompt, in the new bottle.
pub fn agent_text(agent: &str, bottle: &str) -> String {
    let prompt = bottle_manifest::defaults::agent().prompt;
    format!(
        "---\n\
         # The agent `{agent}`. The text below the second `---` is its prompt.\n\
         # Edit with `bottle edit --agent {agent}`; keys are described in the README (Manifests).\n\
         bottle: {bottle}\n\
         # skills: [review]                # copied from ~/.claude/skills/<name> at launch\n\
         # command: [\"my-agent\", \"--flag\"] # default: Claude Code, permission prompts off\n\
         ---\n\
         {prompt}\n"
    )
}

/// The starter bottle: the default bottle's behaviour, with each common knob shown commented out.
pub fn bottle_text(bottle: &str) -> String {
    format!(
        "---\n\
         # The bottle `{bottle}`: what its agent may reach and which credentials are used for it.\n\
         # Edit with `bottle edit --bottle {bottle}`; keys are described in the README (Manifests).\n\
         egress:\n\
         \x20 firewall: builtin     # builtin (bottle's egress proxy) | pipelock\n\
         \x20 allowlist: []         # hosts beyond Claude Code's own: [crates.io, \"*.crates.io\"]\n\
         # env:\n\
         #   ANTHROPIC_API_KEY: \"?\"   # asked on the terminal at launch (a secret)\n\
         #   CI_USER: \"${{USER}}\"       # copied from the host environment (a secret)\n\
         #   LOG_LEVEL: debug          # a literal\n\
         # egress_proxy:\n\
         #   routes:                   # the proxy adds the token; the agent never holds it\n\
         #     - host: api.github.com\n\
         #       auth: {{scheme: token, token_ref: GH_TOKEN}}\n\
         #       path_allowlist: [/repos/OWNER/REPO/]\n\
         #   dlp_patterns: block       # block | warn: what a known token pattern does\n\
         # git:                        # pushes go through the git gate\n\
         #   - Name: app\n\
         #     Upstream: ssh://git@github.com/OWNER/REPO.git\n\
         #     IdentityFile: ~/.ssh/id_ed25519\n\
         #     KnownHostKey: ssh-ed25519 AAAA...\n\
         supervise: false          # true: the agent may ask for more, you decide\n\
         ---\n\
         Notes about the bottle `{bottle}`, for people.\n"
    )
}

/// Both starter texts parse as what they claim to be (a check of this module's templates).
pub fn check(agent: &str, bottle: &str) -> Result<(Agent, Bottle), bottle_manifest::ManifestError> {
    let agent_origin = Origin::file(agent, format!("agents/{agent}.md"), Source::Home);
    let bottle_origin = Origin::file(bottle, format!("bottles/{bottle}.md"), Source::Home);
    Ok((
        Agent::parse(&agent_text(agent, bottle), &agent_origin)?,
        Bottle::parse(
            &bottle_text(bottle),
            &bottle_origin,
            &Default::default(),
            None,
        )?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_texts_are_valid_manifests() {
        let (agent, bottle) = check("dev", "work").unwrap();
        assert_eq!(agent.bottle, "work");
        assert!(bottle.secret_names().is_empty());
        assert!(!bottle.supervise);
    }

    #[test]
    fn nothing_is_written_when_a_file_exists() {
        let home = tempfile::tempdir().unwrap();
        let existing = home.path().join("bottles/work.md");
        std::fs::create_dir_all(existing.parent().unwrap()).unwrap();
        std::fs::write(&existing, "mine").unwrap();
        let err = write(home.path(), "dev", "work").unwrap_err();
        assert!(matches!(err, StarterError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "mine");
        assert!(!home.path().join("agents/dev.md").exists());
    }
}
