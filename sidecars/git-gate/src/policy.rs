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

/// What the gate knows about an update beyond the update itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Whether `new` descends from `old` (for updates).
    pub fast_forward: bool,
    /// The upstream's default branch (its HEAD), if it has one.
    pub default_branch: Option<String>,
}

/// Check one update.
pub fn check(policy: &Policy, update: &Update, facts: &Facts) -> Result<(), Refusal> {
    let branch = update.branch();
    if let Some(b) = branch
        && policy.protected.iter().any(|glob| glob_match(glob, b))
    {
        return Err(Refusal(format!(
            "{} is protected: the gate never updates it; push to another branch",
            update.name
        )));
    }
    if policy.protected.is_empty()
        && let Some(b) = branch
        && facts.default_branch.as_deref() == Some(b)
    {
        return Err(Refusal(format!(
            "{} is the upstream's default branch, which the gate protects when the bottle's git \
             entry lists no `protected` branches; push to another branch, or set `protected:` \
             in the git entry to choose the protected branches yourself",
            update.name
        )));
    }
    if update.name.starts_with("refs/tags/") && !names_tags(policy) {
        return Err(Refusal(format!(
            "{} is a tag, and this bottle may not push tags (tags often trigger releases); to \
             allow it, add a tag glob such as `refs/tags/*` to `allowed_refs` in the git entry",
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
    if !update.creates() && !update.deletes() && !facts.fast_forward && !policy.allow_force_push {
        return Err(Refusal(format!(
            "{} would be force-pushed (not a fast-forward); rebase on the upstream and push again",
            update.name
        )));
    }
    Ok(())
}

pub use bottle_git_gate_config::ref_glob::matches as glob_match;

/// Whether `allowed_refs` names tags: only then may the agent push any.
fn names_tags(policy: &Policy) -> bool {
    policy
        .allowed_refs
        .iter()
        .any(|glob| glob.starts_with("refs/tags/"))
}

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

    fn ff(fast_forward: bool) -> Facts {
        Facts {
            fast_forward,
            default_branch: None,
        }
    }

    #[test]
    fn the_default_branch_is_protected_when_nothing_else_is() {
        let facts = Facts {
            fast_forward: true,
            default_branch: Some("trunk".into()),
        };
        let open = Policy::default();
        let refusal = check(&open, &update("a", "b", "refs/heads/trunk"), &facts).unwrap_err();
        assert!(refusal.0.contains("default branch") && refusal.0.contains("`protected:`"));
        assert!(check(&open, &update("a", "b", "refs/heads/feature"), &facts).is_ok());
        let chosen = Policy {
            protected: vec!["release/*".into()],
            ..Policy::default()
        };
        assert!(check(&chosen, &update("a", "b", "refs/heads/trunk"), &facts).is_ok());
    }

    #[test]
    fn tags_need_a_tag_glob_in_allowed_refs() {
        let refusal = check(
            &Policy::default(),
            &update(Z, "b", "refs/tags/v1"),
            &ff(true),
        );
        assert!(
            refusal
                .unwrap_err()
                .0
                .contains("`refs/tags/*` to `allowed_refs`")
        );
        let tags = Policy {
            allowed_refs: vec!["refs/tags/v*".into(), "agent/*".into()],
            ..Policy::default()
        };
        assert!(check(&tags, &update(Z, "b", "refs/tags/v1"), &ff(true)).is_ok());
        assert!(check(&tags, &update(Z, "b", "refs/heads/agent/x"), &ff(true)).is_ok());
    }

    #[test]
    fn decisions() {
        let policy = Policy {
            protected: vec!["main".into()],
            ..Policy::default()
        };
        assert!(check(&policy, &update("a", "b", "refs/heads/main"), &ff(true)).is_err());
        assert!(check(&policy, &update("a", "b", "refs/heads/feature"), &ff(true)).is_ok());
        assert!(
            check(&policy, &update("a", "b", "refs/heads/feature"), &ff(false))
                .unwrap_err()
                .0
                .contains("force-pushed")
        );
        assert!(
            check(&policy, &update("a", Z, "refs/heads/feature"), &ff(false))
                .unwrap_err()
                .0
                .contains("deleting")
        );
        assert!(check(&policy, &update(Z, "b", "refs/heads/new"), &ff(false)).is_ok());
        let force = Policy {
            allow_force_push: true,
            allow_delete: true,
            ..Policy::default()
        };
        assert!(check(&force, &update("a", "b", "refs/heads/x"), &ff(false)).is_ok());
        assert!(check(&force, &update("a", Z, "refs/heads/x"), &ff(false)).is_ok());
        let only = Policy {
            allowed_refs: vec!["agent/*".into()],
            ..Policy::default()
        };
        assert!(check(&only, &update(Z, "b", "refs/heads/agent/fix"), &ff(true)).is_ok());
        assert!(
            check(&only, &update(Z, "b", "refs/heads/fix"), &ff(true))
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
