//! Before an approved agent image stops a bottle: the agent's commits that are on no upstream
//! ref. The operator sees them and may push them through the git gate to
//! `bottle/rescue/<identity>`; nothing is committed on the agent's behalf, so uncommitted changes
//! are only reported.
//!
//! Everything read here comes from the agent's container (repository paths, branch names, commit
//! subjects): it is escaped before it is shown, and reaches the push only as environment values
//! of that one exec, never as part of a script.

use crate::docker::Engine;

/// Where the agent's repositories are looked for, and how deep.
const SEARCH: &str = "find /workspace /home/agent -maxdepth 4 -name .git -type d 2>/dev/null";
/// Commits listed per branch at most.
const LISTED: usize = 20;

/// One branch holding commits no remote-tracking ref has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpushed {
    /// The repository's working tree in the agent.
    pub repo: String,
    /// The local branch.
    pub branch: String,
    /// `<short sha> <subject>` of each commit, newest first (at most [`LISTED`]).
    pub commits: Vec<String>,
    /// How many commits in all.
    pub count: usize,
}

/// What the agent's trees hold that is not upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Branches with unpushed commits.
    pub unpushed: Vec<Unpushed>,
    /// Working trees with uncommitted changes.
    pub dirty: Vec<String>,
}

/// Look through the agent's repositories (as the agent user).
pub async fn find(engine: &Engine, container: &str) -> anyhow::Result<Findings> {
    let script = format!(
        "for g in $({SEARCH}); do r=${{g%/.git}}; \
           [ -n \"$(git -C \"$r\" status --porcelain 2>/dev/null | head -n 1)\" ] && printf 'D\\t%s\\n' \"$r\"; \
           git -C \"$r\" for-each-ref --format='%(refname:short)' refs/heads | while IFS= read -r b; do \
             n=$(git -C \"$r\" rev-list --count \"refs/heads/$b\" --not --remotes 2>/dev/null); \
             [ \"${{n:-0}}\" -gt 0 ] || continue; printf 'B\\t%s\\t%s\\t%s\\n' \"$r\" \"$b\" \"$n\"; \
             git -C \"$r\" log -n {LISTED} --format='C%x09%h %s' \"refs/heads/$b\" --not --remotes; \
           done; done"
    );
    let out = engine
        .exec(
            container,
            &["sh".into(), "-c".into(), script],
            Some("agent"),
        )
        .await?;
    Ok(parse(&out.stdout))
}

/// Read the listing; lines that do not fit are ignored (the agent wrote the names).
fn parse(listing: &str) -> Findings {
    let mut found = Findings::default();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["D", repo] => found.dirty.push((*repo).to_owned()),
            ["B", repo, branch, count] => found.unpushed.push(Unpushed {
                repo: (*repo).to_owned(),
                branch: (*branch).to_owned(),
                commits: Vec::new(),
                count: count.parse().unwrap_or(0),
            }),
            ["C", commit] => {
                if let Some(last) = found.unpushed.last_mut() {
                    last.commits.push((*commit).to_owned());
                }
            }
            _ => {}
        }
    }
    found
}

impl Findings {
    /// Whether anything would be lost.
    pub fn is_empty(&self) -> bool {
        self.unpushed.is_empty() && self.dirty.is_empty()
    }

    /// The warning for the operator, every agent-written text escaped.
    pub fn warning(&self, identity: &str) -> String {
        let shown = |t: &str| crate::supervise::preview::shown(t);
        let mut out = String::new();
        if !self.unpushed.is_empty() {
            out.push_str(&format!(
                "the agent of `{identity}` has commits on no upstream ref; stopping the bottle \
                 loses them unless they are pushed:\n"
            ));
        }
        for branch in &self.unpushed {
            out.push_str(&format!(
                "  {} ({}): {} commit(s)\n",
                shown(&branch.repo),
                shown(&branch.branch),
                branch.count
            ));
            for commit in &branch.commits {
                out.push_str(&format!("    {}\n", shown(commit)));
            }
            if branch.count > branch.commits.len() {
                out.push_str(&format!(
                    "    … and {} more\n",
                    branch.count - branch.commits.len()
                ));
            }
        }
        for repo in &self.dirty {
            out.push_str(&format!(
                "  {}: uncommitted changes (bottle commits nothing for the agent; they are lost)\n",
                shown(repo)
            ));
        }
        out
    }
}

/// The rescue branch for `branch` of a repository with `branches` unpushed branches:
/// `bottle/rescue/<identity>`, or `bottle/rescue/<identity>/<branch>` when there are several.
pub fn rescue_ref(identity: &str, branch: &str, branches: usize) -> String {
    if branches <= 1 {
        format!("refs/heads/bottle/rescue/{identity}")
    } else {
        format!("refs/heads/bottle/rescue/{identity}/{branch}")
    }
}

/// Push each unpushed branch to its rescue branch through the branch's remote (the gate, by the
/// agent's `insteadOf`), as the agent user. One line per branch: where it went, or why not.
pub async fn push(
    engine: &Engine,
    container: &str,
    identity: &str,
    found: &Findings,
) -> Vec<String> {
    let mut report = Vec::new();
    for branch in &found.unpushed {
        let shown = crate::supervise::preview::shown(&branch.branch);
        if branch.repo.contains(['\n', '\0']) || branch.branch.contains(['\n', '\0']) {
            report.push(format!("{shown}: not pushed (a name with a newline)"));
            continue;
        }
        let siblings = found
            .unpushed
            .iter()
            .filter(|b| b.repo == branch.repo)
            .count();
        let target = rescue_ref(identity, &branch.branch, siblings);
        // The names travel as this exec's environment, never spliced into the script.
        let script = "remote=$(git -C \"$RESCUE_REPO\" config \"branch.$RESCUE_BRANCH.remote\" || echo origin); \
                      git -C \"$RESCUE_REPO\" push \"$remote\" \"refs/heads/$RESCUE_BRANCH:$RESCUE_TARGET\" 2>&1";
        let env = [
            format!("RESCUE_REPO={}", branch.repo),
            format!("RESCUE_BRANCH={}", branch.branch),
            format!("RESCUE_TARGET={target}"),
        ];
        let pushed = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            engine.exec_with_env(
                container,
                &["sh".into(), "-c".into(), script.into()],
                Some("agent"),
                &env,
            ),
        )
        .await;
        let target = target.trim_start_matches("refs/heads/");
        report.push(match pushed {
            Ok(Ok(out)) if out.code == 0 => format!("{shown}: pushed to {target}"),
            Ok(Ok(out)) => format!(
                "{shown}: not pushed to {target}: {}",
                crate::supervise::preview::shown(out.stdout.trim())
            ),
            Ok(Err(e)) => format!("{shown}: not pushed: {e}"),
            Err(_) => format!("{shown}: not pushed: the push took over 120 s"),
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_is_read_and_shown_escaped() {
        let found = parse(
            "D\t/workspace\nB\t/home/agent/w\tfeature\t2\nC\tabc123 add \u{1b}[2Jtests\nC\tdef456 fix\n\
             C\tbefore any branch? no: after\nB\t/home/agent/w\tmain\t1\nC\t999 one\nnoise line\n",
        );
        assert_eq!(found.dirty, ["/workspace"]);
        assert_eq!(found.unpushed.len(), 2);
        assert_eq!(found.unpushed[0].count, 2);
        assert_eq!(found.unpushed[0].commits.len(), 3);
        let warning = found.warning("dev");
        assert!(
            warning.contains("/home/agent/w (feature): 2 commit(s)"),
            "{warning}"
        );
        assert!(warning.contains("add \\u001b[2Jtests"), "{warning}");
        assert!(!warning.contains('\u{1b}'));
        assert!(warning.contains("uncommitted"), "{warning}");
        assert!(parse("").is_empty());
    }

    #[test]
    fn one_branch_goes_to_the_plain_rescue_ref_several_below_it() {
        assert_eq!(
            rescue_ref("dev-2", "main", 1),
            "refs/heads/bottle/rescue/dev-2"
        );
        assert_eq!(
            rescue_ref("dev-2", "feat/x", 2),
            "refs/heads/bottle/rescue/dev-2/feat/x"
        );
    }
}
