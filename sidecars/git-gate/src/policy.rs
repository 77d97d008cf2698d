//! Ref policy: which updates an agent may push.

use crate::config::Policy;

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Old object id (all zeros for a new ref).
    pub old: String,
    /// New object id (all zeros for a deletion).
    pub new: String,
    /// Full ref name.
    pub name: String,
}

impl Update {
    /// Parse a `<old> <new> <ref>` line of pre-receive's input.
    pub fn parse(line: &str) -> Option<Update> {
        let mut parts = line.split_whitespace();
        let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Update {
            old: old.into(),
            new: new.into(),
            name: name.into(),
        })
    }

    /// The ref is being created.
    pub fn creates(&self) -> bool {
        is_zero(&self.old)
    }

    /// The ref is being deleted.
    pub fn deletes(&self) -> bool {
        is_zero(&self.new)
    }

    /// The branch name, for `refs/heads/…`.
    pub fn branch(&self) -> Option<&str> {
        self.name.strip_prefix("refs/heads/")
    }
}

fn is_zero(id: &str) -> bool {
    id.chars().all(|c| c == '0')
}

/// A refusal, said to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Check one update; `fast_forward` says whether `new` descends from `old` (for updates).
pub fn check(policy: &Policy, update: &Update, fast_forward: bool) -> Result<(), Refusal> {
    let branch = update.branch();
    if let Some(b) = branch
        && policy.protected.iter().any(|glob| glob_match(glob, b))
    {
        return Err(Refusal(format!(
            "{} is protected: the gate never updates it; push to another branch",
            update.name
        )));
    }
    if !policy.allowed_refs.is_empty()
        && !policy
            .allowed_refs
            .iter()
            .any(|g| glob_match(g, &update.name) || branch.is_some_and(|b| glob_match(g, b)))
    {
        return Err(Refusal(format!(
            "{} is not among the refs this bottle may update ({})",
            update.name,
            policy.allowed_refs.join(", ")
        )));
    }
    if update.deletes() && !policy.allow_delete {
        return Err(Refusal(format!(
            "deleting {} is not allowed in this bottle",
            update.name
        )));
    }
    if !update.creates() && !update.deletes() && !fast_forward && !policy.allow_force_push {
        return Err(Refusal(format!(
            "{} would be force-pushed (not a fast-forward); rebase on the upstream and push again",
            update.name
        )));
    }
    Ok(())
}

pub use bottle_git_gate_config::ref_glob::matches as glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    fn update(old: &str, new: &str, name: &str) -> Update {
        Update {
            old: old.into(),
            new: new.into(),
            name: name.into(),
        }
    }

    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn globs() {
        assert!(glob_match("main", "main"));
        assert!(glob_match("release/*", "release/1.0"));
        assert!(!glob_match("release/*", "release/1.0/hotfix"));
        assert!(glob_match("release/**", "release/1.0/hotfix"));
        assert!(glob_match("agent-*", "agent-fix"));
        assert!(!glob_match("main", "mainline"));
    }

    #[test]
    fn decisions() {
        let policy = Policy {
            protected: vec!["main".into()],
            ..Policy::default()
        };
        assert!(check(&policy, &update("a", "b", "refs/heads/main"), true).is_err());
        assert!(check(&policy, &update("a", "b", "refs/heads/feature"), true).is_ok());
        assert!(
            check(&policy, &update("a", "b", "refs/heads/feature"), false)
                .unwrap_err()
                .0
                .contains("force-pushed")
        );
        assert!(
            check(&policy, &update("a", Z, "refs/heads/feature"), false)
                .unwrap_err()
                .0
                .contains("deleting")
        );
        assert!(check(&policy, &update(Z, "b", "refs/heads/new"), false).is_ok());
        let force = Policy {
            allow_force_push: true,
            allow_delete: true,
            ..Policy::default()
        };
        assert!(check(&force, &update("a", "b", "refs/heads/x"), false).is_ok());
        assert!(check(&force, &update("a", Z, "refs/heads/x"), false).is_ok());
        let only = Policy {
            allowed_refs: vec!["agent/*".into()],
            ..Policy::default()
        };
        assert!(check(&only, &update(Z, "b", "refs/heads/agent/fix"), true).is_ok());
        assert!(
            check(&only, &update(Z, "b", "refs/heads/fix"), true)
                .unwrap_err()
                .0
                .contains("not among")
        );
        assert_eq!(
            Update::parse(&format!("{Z} abc refs/heads/x"))
                .unwrap()
                .branch(),
            Some("x")
        );
    }
}
