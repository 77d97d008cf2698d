//! How `bottle resume` continues a conversation: Claude Code is started with `--continue` (the
//! last conversation) or `--resume <session>`; any other agent command gets its `~/.claude` back
//! and runs as it is.

use bottle_manifest::{Agent, AgentCommand};

/// Which conversation to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continue {
    /// The most recent one (`claude --continue`).
    Last,
    /// A named session (`claude --resume <uuid>`).
    Session(String),
}

impl Continue {
    fn flags(&self) -> Vec<String> {
        match self {
            Continue::Last => vec!["--continue".into()],
            Continue::Session(id) => vec!["--resume".into(), id.clone()],
        }
    }
}

/// Rewrite the agent's command to continue `which`; `false` when the command is not Claude Code
/// (its state is still copied back, but nothing is added to its command line).
///
/// Claude Code is the default command, a list whose program is `claude`, or a shell command that
/// starts with `claude` (or `exec claude`). A session id must already be checked
/// ([`super::sessions::is_session_id`]): it is placed into a shell script.
pub fn continue_command(agent: &mut Agent, which: &Continue) -> bool {
    let flags = which.flags();
    match agent.command.as_mut() {
        None => {
            let mut argv = crate::prepare::default_command();
            let script = argv
                .last_mut()
                .expect("the default command is sh -c <script>");
            *script = with_flags(script, &flags).expect("the default command runs claude");
            agent.command = Some(AgentCommand::Argv(argv));
            true
        }
        Some(AgentCommand::Argv(argv)) => {
            let is_claude = argv
                .first()
                .is_some_and(|p| p.rsplit('/').next() == Some("claude"));
            if is_claude {
                argv.splice(1..1, flags);
            }
            is_claude
        }
        Some(AgentCommand::Shell(script)) => match with_flags(script, &flags) {
            Some(rewritten) => {
                *script = rewritten;
                true
            }
            None => false,
        },
    }
}

/// `script` with `flags` after its leading `claude` (or `exec claude`), if it has one.
fn with_flags(script: &str, flags: &[String]) -> Option<String> {
    let trimmed = script.trim_start();
    let lead = ["exec claude", "claude"].into_iter().find(|lead| {
        trimmed
            .strip_prefix(lead)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    })?;
    let rest = &trimmed[lead.len()..];
    Some(format!("{lead} {}{rest}", flags.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(command: Option<AgentCommand>) -> Agent {
        let mut agent = bottle_manifest::defaults::agent();
        agent.command = command;
        agent
    }

    fn argv(agent: &Agent) -> Vec<String> {
        match agent.command.clone().unwrap() {
            AgentCommand::Argv(argv) => argv,
            AgentCommand::Shell(s) => vec![s],
        }
    }

    #[test]
    fn the_default_command_continues_the_last_or_a_named_session() {
        let mut a = agent(None);
        assert!(continue_command(&mut a, &Continue::Last));
        let script = argv(&a).pop().unwrap();
        assert!(
            script.starts_with("exec claude --continue --dangerously-skip-permissions"),
            "{script}"
        );
        let mut a = agent(None);
        let id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".to_owned();
        assert!(continue_command(&mut a, &Continue::Session(id.clone())));
        let script = argv(&a).pop().unwrap();
        assert!(
            script.starts_with(&format!("exec claude --resume {id} --dangerously")),
            "{script}"
        );
    }

    #[test]
    fn a_claude_command_of_the_agents_own_gets_the_flag() {
        let mut a = agent(Some(AgentCommand::Argv(vec![
            "/usr/local/bin/claude".into(),
            "--print".into(),
            "hi".into(),
        ])));
        assert!(continue_command(&mut a, &Continue::Last));
        assert_eq!(
            argv(&a),
            ["/usr/local/bin/claude", "--continue", "--print", "hi"]
        );
        let mut a = agent(Some(AgentCommand::Shell("claude --model opus".into())));
        assert!(continue_command(&mut a, &Continue::Last));
        assert_eq!(argv(&a), ["claude --continue --model opus"]);
    }

    #[test]
    fn other_commands_run_unchanged() {
        for command in [
            AgentCommand::Argv(vec!["aider".into()]),
            AgentCommand::Argv(vec!["claudette".into()]),
            AgentCommand::Shell("claudette run".into()),
            AgentCommand::Shell("cd /x && claude".into()),
        ] {
            let mut a = agent(Some(command.clone()));
            assert!(!continue_command(&mut a, &Continue::Last), "{command:?}");
            assert_eq!(a.command, Some(command));
        }
    }
}
