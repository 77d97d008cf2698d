//! Discovery: where manifests are read from, warnings, shadowing, unknown names.

use std::collections::BTreeSet;

use bottle_manifest::{Catalog, ManifestError, Source};

use crate::common::Fixture;

const AGENT: &str = "---\nbottle: dev\n---\nPrompt.\n";
const BOTTLE: &str = "---\nsupervise: true\n---\n";

fn names<'a>(entries: impl Iterator<Item = &'a bottle_manifest::Entry>) -> Vec<String> {
    entries.map(|e| e.name.clone()).collect()
}

#[test]
fn finds_agents_and_bottles_sorted() {
    let fx = Fixture::new();
    let dev = fx.bottle_file("dev", BOTTLE);
    fx.bottle_file("ci", BOTTLE);
    let coder = fx.agent_file("coder", AGENT);
    fx.agent_file("a-2", AGENT);
    let catalog = fx.catalog();
    assert_eq!(names(catalog.agents()), ["a-2", "coder"]);
    assert_eq!(names(catalog.bottles()), ["ci", "dev"]);
    let entry = catalog.agent_entry("coder").unwrap();
    assert_eq!(
        (entry.path.clone(), entry.source, entry.shadows.clone()),
        (coder, Source::Home, None)
    );
    assert_eq!(catalog.bottle_entry("dev").unwrap().path, dev);
    assert!(catalog.warnings().is_empty(), "{:?}", catalog.warnings());
    assert!(!catalog.is_empty());
    assert_eq!(catalog.home(), fx.home);
}

#[test]
fn files_with_bad_names_are_skipped_with_a_warning() {
    let fx = Fixture::new();
    let bad = fx.bottle_file("My_Bottle", BOTTLE);
    let agent = fx.agent_file("2fast", AGENT);
    fx.bottle_file("ok", BOTTLE);
    let catalog = fx.catalog();
    assert_eq!(names(catalog.bottles()), ["ok"]);
    assert_eq!(names(catalog.agents()), Vec::<String>::new());
    let warnings = catalog.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let for_bad = warnings.iter().find(|w| w.path == bad).unwrap().to_string();
    assert!(for_bad.contains(&bad.display().to_string()), "{for_bad}");
    assert!(
        for_bad.contains("`My_Bottle` is not a valid name"),
        "{for_bad}"
    );
    assert!(for_bad.contains("[a-z][a-z0-9-]*"), "{for_bad}");
    assert!(warnings.iter().any(|w| w.path == agent), "{warnings:?}");
}

#[test]
fn non_markdown_files_are_ignored_silently() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.home.join("bottles")).unwrap();
    std::fs::write(fx.home.join("bottles/README.txt"), "x").unwrap();
    std::fs::write(fx.home.join("bottles/dev.md~"), "x").unwrap();
    std::fs::write(fx.home.join("bottles/.dev.md.swp"), "x").unwrap();
    let catalog = fx.catalog();
    assert!(catalog.is_empty());
    assert!(catalog.warnings().is_empty(), "{:?}", catalog.warnings());
}

#[test]
fn directories_named_like_manifests_are_skipped_with_a_warning() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.home.join("agents/odd.md")).unwrap();
    let catalog = fx.catalog();
    assert!(catalog.agent_entry("odd").is_none());
    assert!(catalog.warnings()[0].message.contains("not a regular file"));
}

#[test]
fn project_bottles_are_ignored_with_a_warning() {
    let fx = Fixture::new();
    let local = fx.project_bottle_file("dev", BOTTLE);
    let catalog = fx.catalog();
    assert!(catalog.bottle_entry("dev").is_none());
    assert!(catalog.is_empty());
    let [warning] = catalog.warnings() else {
        panic!("one warning expected: {:?}", catalog.warnings());
    };
    assert_eq!(warning.path, local);
    let text = warning.to_string();
    assert!(text.contains("ignored"), "{text}");
    assert!(text.contains("trust boundary"), "{text}");
    let target = fx.home.join("bottles/dev.md");
    assert!(
        text.contains(&format!("move it to {}", target.display())),
        "{text}"
    );
}

#[test]
fn project_agents_shadow_home_agents() {
    let fx = Fixture::new();
    let home_agent = fx.agent_file("coder", "---\nbottle: dev\n---\nHome prompt.\n");
    let local = fx.project_agent_file("coder", "---\nbottle: dev\n---\nProject prompt.\n");
    let only_local = fx.project_agent_file("helper", AGENT);
    fx.bottle_file("dev", BOTTLE);
    let catalog = fx.catalog();
    let entry = catalog.agent_entry("coder").unwrap();
    assert_eq!(entry.path, local);
    assert_eq!(entry.source, Source::Project);
    assert_eq!(entry.shadows, Some(home_agent));
    let helper = catalog.agent_entry("helper").unwrap();
    assert_eq!(
        (helper.path.clone(), helper.shadows.clone()),
        (only_local, None)
    );

    let agent = catalog.agent("coder").unwrap();
    assert_eq!(agent.prompt, "Project prompt.");
    assert_eq!(agent.source, Source::Project);
}

#[test]
fn unknown_agents_list_the_known_ones() {
    let fx = Fixture::new();
    fx.agent_file("coder", AGENT);
    fx.project_agent_file("reviewer", AGENT);
    let err = fx.catalog().agent("codr").unwrap_err();
    assert!(
        matches!(&err, ManifestError::UnknownAgent { known, .. } if known == &["coder", "reviewer"])
    );
    let text = err.to_string();
    assert!(
        text.contains("unknown agent `codr`; known agents: coder, reviewer"),
        "{text}"
    );
    assert!(
        text.contains(&fx.home.join("agents/codr.md").display().to_string()),
        "{text}"
    );

    let err = Fixture::new().catalog().agent("x").unwrap_err();
    assert!(err.to_string().contains("no agents are defined"), "{err}");
}

#[test]
fn an_agent_naming_an_unknown_bottle_lists_the_known_ones() {
    let fx = Fixture::new();
    let agent = fx.agent_file("coder", "---\nbottle: prod\n---\n");
    fx.bottle_file("dev", BOTTLE);
    fx.bottle_file("ci", BOTTLE);
    let err = fx.catalog().resolve("coder", &BTreeSet::new()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "agent `coder` ({}) uses bottle `prod`, which does not exist; known bottles: ci, dev",
            agent.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&fx.home.join("bottles/prod.md").display().to_string()),
        "{text}"
    );

    let err = fx.catalog().bottle("nope", &BTreeSet::new()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown bottle `nope`; known bottles: ci, dev"),
        "{err}"
    );
}

#[test]
fn resolve_returns_the_agent_and_its_bottle() {
    let fx = Fixture::new();
    fx.agent_file("coder", AGENT);
    fx.bottle_file("dev", BOTTLE);
    let (agent, bottle) = fx.catalog().resolve("coder", &BTreeSet::new()).unwrap();
    assert_eq!(
        (agent.name.as_str(), bottle.name.as_str()),
        ("coder", "dev")
    );
    assert!(bottle.supervise);
}

#[test]
fn resolve_reports_a_broken_bottle_with_its_file() {
    let fx = Fixture::new();
    fx.agent_file("coder", AGENT);
    let bottle = fx.bottle_file("dev", "---\nsupervise: maybe\n---\n");
    let err = fx.catalog().resolve("coder", &BTreeSet::new()).unwrap_err();
    assert_eq!(err.problem().unwrap().file, bottle);
}

#[test]
fn an_empty_home_is_empty() {
    let fx = Fixture::new();
    let catalog = fx.catalog();
    assert!(catalog.is_empty());
    assert!(catalog.warnings().is_empty());
    let missing = Catalog::discover(&fx.home.join("does-not-exist"), &fx.cwd);
    assert!(missing.is_empty());
    assert!(missing.warnings().is_empty());
}

#[test]
fn working_in_the_home_directory_does_not_read_the_home_twice() {
    let fx = Fixture::new();
    // cwd is the user's home and the bottle home is `~/.bottle`: `./.bottle` *is* the home.
    let home = fx.user_home.join(".bottle");
    std::fs::create_dir_all(home.join("agents")).unwrap();
    std::fs::create_dir_all(home.join("bottles")).unwrap();
    std::fs::write(home.join("agents/coder.md"), AGENT).unwrap();
    std::fs::write(home.join("bottles/dev.md"), BOTTLE).unwrap();
    let catalog = Catalog::discover(&home, &fx.user_home);
    assert!(catalog.warnings().is_empty(), "{:?}", catalog.warnings());
    let entry = catalog.agent_entry("coder").unwrap();
    assert_eq!((entry.source, entry.shadows.clone()), (Source::Home, None));
    assert!(catalog.bottle_entry("dev").is_some());
}

#[test]
fn without_a_user_home_tilde_paths_are_errors() {
    let fx = Fixture::new();
    fx.bottle_file("dev", "---\ndockerfile: ~/Dockerfile\n---\n");
    let catalog = Catalog::discover(&fx.home, &fx.cwd).with_user_home(None);
    let err = catalog.bottle("dev", &BTreeSet::new()).unwrap_err();
    assert!(
        err.to_string().contains("home directory is unknown"),
        "{err}"
    );
}

#[test]
fn project_agents_are_found_from_the_repository_root() {
    let fx = Fixture::new();
    fx.bottle_file("dev", BOTTLE);
    let root_agent = fx.project_agent_file("coder", "---\nbottle: dev\n---\nRoot prompt.\n");
    let deep = fx.cwd.join("src/module");
    std::fs::create_dir_all(&deep).unwrap();
    // Outside a repository only the current directory is the project.
    let outside = Catalog::discover(&fx.home, &deep);
    assert!(outside.agent_entry("coder").is_none());
    std::fs::create_dir_all(fx.cwd.join(".git")).unwrap();
    let inside = Catalog::discover(&fx.home, &deep);
    let entry = inside.agent_entry("coder").unwrap();
    assert_eq!(
        (entry.path.clone(), entry.source),
        (root_agent.clone(), Source::Project)
    );
    // A nearer project directory wins over the root's, and still counts as the project's.
    let near = deep.join(".bottle/agents/coder.md");
    std::fs::create_dir_all(near.parent().unwrap()).unwrap();
    std::fs::write(&near, AGENT).unwrap();
    let nested = Catalog::discover(&fx.home, &deep);
    let entry = nested.agent_entry("coder").unwrap();
    assert_eq!(
        (entry.path.clone(), entry.source, entry.shadows.clone()),
        (near, Source::Project, Some(root_agent))
    );
}

#[test]
fn a_worktrees_git_file_marks_the_root_too() {
    let fx = Fixture::new();
    fx.bottle_file("dev", BOTTLE);
    fx.project_agent_file("coder", AGENT);
    std::fs::write(fx.cwd.join(".git"), "gitdir: /elsewhere\n").unwrap();
    let deep = fx.cwd.join("a");
    std::fs::create_dir_all(&deep).unwrap();
    assert!(
        Catalog::discover(&fx.home, &deep)
            .agent_entry("coder")
            .is_some()
    );
}
