//! A checked-out project may bring its own agent (`./.bottle/agents/<name>.md`), and that agent
//! names the bottle it runs in. A bottle lives in the operator's home and may hold credentials, so
//! a hostile project could send them into an agent whose prompt and command the project wrote.
//! Such a launch needs the operator's explicit word naming the bottle: `--yes` alone does not give
//! it, `--trust-project-agent` does.

use bottle_manifest::Source;

use crate::prepare::Selection;

/// What a project's agent would be handed: the bottle's name and what in it is a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectClaim {
    /// The agent's manifest.
    pub agent_file: String,
    /// The home bottle it names.
    pub bottle: String,
    /// Secret names (prompted or host-copied variables, route tokens) and git identity files.
    pub credentials: Vec<String>,
}

/// The claim a project's agent lays on a credentialed home bottle, if it does.
pub fn project_claim(selection: &Selection) -> Option<ProjectClaim> {
    if selection.agent.source != Source::Project {
        return None;
    }
    let bottle = &selection.bottle;
    let mut credentials: Vec<String> = bottle.secret_names().into_iter().collect();
    credentials.extend(
        bottle
            .git
            .iter()
            .map(|g| format!("git identity {}", g.identity_file.display())),
    );
    if credentials.is_empty() {
        return None;
    }
    Some(ProjectClaim {
        agent_file: selection
            .agent
            .path
            .as_ref()
            .map_or_else(|| selection.agent.name.clone(), |p| p.display().to_string()),
        bottle: bottle.name.clone(),
        credentials,
    })
}

impl ProjectClaim {
    /// The question put to the operator.
    pub fn question(&self) -> String {
        format!(
            "the project's agent {} asks to run in your bottle `{}`, which holds: {}.\n\
             The project wrote that agent's prompt and command. Type the bottle's name to allow it: ",
            self.agent_file,
            self.bottle,
            self.credentials.join(", ")
        )
    }

    /// Whether the operator's answer allows it: the bottle's name, exactly.
    pub fn allowed_by(&self, answer: &str) -> bool {
        answer.trim() == self.bottle
    }

    /// The refusal when nobody can be asked.
    pub fn refusal(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "the project's agent {} asks to run in your bottle `{}`, which holds {}; --yes does \
             not cover a project's agent. Check the agent file, then pass --trust-project-agent \
             (or run on a terminal and confirm by typing the bottle's name)",
            self.agent_file,
            self.bottle,
            self.credentials.join(", ")
        )
    }
}
