//! CI definitions: files that make the upstream's CI run code with the repository's CI secrets.
//! A bottle may not change them unless its git entry sets `allow_ci_changes: true`.

/// Directories (ending in `/`) and files, relative to the repository's root, that hold CI
/// definitions. Documented in the README's security model; keep both in step.
pub const CI_PATHS: &[&str] = &[
    ".github/workflows/",
    ".github/actions/",
    ".gitea/workflows/",
    ".forgejo/workflows/",
    ".gitlab-ci.yml",
    ".gitlab/ci/",
    ".circleci/",
    ".travis.yml",
    "Jenkinsfile",
    ".buildkite/",
    "azure-pipelines.yml",
    "azure-pipelines.yaml",
    ".azure-pipelines/",
    ".drone.yml",
    "bitbucket-pipelines.yml",
    ".woodpecker.yml",
    ".woodpecker/",
    "appveyor.yml",
    ".appveyor.yml",
    ".cirrus.yml",
    "cloudbuild.yaml",
    "cloudbuild.yml",
    ".semaphore/",
    ".tekton/",
];

/// Whether `path` (relative to the root) is, or is under, a CI definition path.
pub fn is_ci_path(path: &str) -> bool {
    CI_PATHS.iter().any(|ci| match ci.strip_suffix('/') {
        Some(dir) => path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/')),
        None => path == *ci,
    })
}

/// A commit that changes a CI definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiChange {
    /// The commit.
    pub commit: String,
    /// The path it adds, changes or deletes.
    pub path: String,
}

impl std::fmt::Display for CiChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit {} changes {}, a CI definition (rule ci-definitions: CI runs it with the \
             repository's secrets, so a bottle may not change it; to allow it, set \
             `allow_ci_changes: true` in this bottle's git entry)",
            &self.commit[..self.commit.len().min(12)],
            self.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_paths() {
        assert!(is_ci_path(".github/workflows/ci.yml"));
        assert!(is_ci_path(".gitlab-ci.yml"));
        assert!(is_ci_path(".circleci/config.yml"));
        assert!(is_ci_path("Jenkinsfile"));
        assert!(!is_ci_path(".github/workflowsx/ci.yml"));
        assert!(!is_ci_path(".github/CODEOWNERS"));
        assert!(!is_ci_path("docs/.gitlab-ci.yml"));
        assert!(!is_ci_path("src/main.rs"));
    }
}
