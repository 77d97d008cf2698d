//! Agent manifests.

use bottle_manifest::{AgentCommand, Source};

use crate::common::{Fixture, assert_problem, problem};

#[test]
fn a_full_agent_parses() {
    let fx = Fixture::new();
    let path = fx.agent_file(
        "reviewer",
        "---\nname: reviewer\ndescription: Reviews code\nmodel: opus\ncolor: blue\nmemory: user\n\
         tools: [Read, Grep]\nbottle: dev\nskills: [pdf, web.search, my_skill-2]\n\
         command: claude --verbose\n---\n\n\nYou review code.\n\n  Be brief.\n\n\n",
    );
    let agent = fx.catalog().agent("reviewer").unwrap();
    assert_eq!(agent.name, "reviewer");
    assert_eq!(agent.path, Some(path));
    assert_eq!(agent.source, Source::Home);
    assert_eq!(agent.bottle, "dev");
    assert_eq!(agent.skills, ["pdf", "web.search", "my_skill-2"]);
    assert_eq!(
        agent.command,
        Some(AgentCommand::Shell("claude --verbose".into()))
    );
    assert_eq!(agent.prompt, "You review code.\n\n  Be brief.");
}

#[test]
fn a_list_command_is_argv_and_defaults_are_empty() {
    let fx = Fixture::new();
    let agent = fx
        .agent("bottle: dev\ncommand: [aider, --yes, 42]\n")
        .unwrap();
    assert_eq!(
        agent.command,
        Some(AgentCommand::Argv(vec![
            "aider".into(),
            "--yes".into(),
            "42".into()
        ]))
    );
    let agent = fx.agent("bottle: dev\n").unwrap();
    assert_eq!(agent.command, None);
    assert!(agent.skills.is_empty());
    assert_eq!(agent.prompt, "prompt");
}

#[test]
fn commands_serialize_as_written() {
    let shell = serde_json::to_value(AgentCommand::Shell("a b".into())).unwrap();
    assert_eq!(shell, serde_json::json!("a b"));
    let argv = serde_json::to_value(AgentCommand::Argv(vec!["a".into(), "b".into()])).unwrap();
    assert_eq!(argv, serde_json::json!(["a", "b"]));
}

#[test]
fn unknown_keys_suggest_the_close_one() {
    let fx = Fixture::new();
    let p = problem(fx.agent("bottel: dev\n"));
    assert_problem(
        &p,
        &fx.agent_path(),
        2,
        &[
            "unknown key `bottel` in the agent manifest; did you mean `bottle`?",
            "valid keys",
        ],
    );
}

#[test]
fn the_bottle_key_is_required() {
    let fx = Fixture::new();
    let p = problem(fx.agent("skills: [pdf]\n"));
    assert_problem(
        &p,
        &fx.agent_path(),
        2,
        &["missing key `bottle`", "hint: add `bottle: "],
    );
    let p = problem(fx.agent(""));
    assert!(p.message.contains("missing key `bottle`"), "{p}");
}

#[test]
fn bad_bottle_names_are_refused() {
    let fx = Fixture::new();
    let p = problem(fx.agent("bottle: My_Bottle\n"));
    assert_problem(
        &p,
        &fx.agent_path(),
        2,
        &["`My_Bottle` is not a valid bottle name", "[a-z]"],
    );
}

#[test]
fn bad_skill_names_are_refused_at_their_line() {
    let fx = Fixture::new();
    let p = problem(fx.agent("bottle: dev\nskills:\n  - pdf\n  - ../etc\n"));
    assert_problem(
        &p,
        &fx.agent_path(),
        5,
        &["skills[1]", "`../etc` is not a valid skill name"],
    );
    let p = problem(fx.agent("bottle: dev\nskills: [\"..\"]\n"));
    assert!(p.message.contains("not a valid skill name"), "{p}");
    let p = problem(fx.agent("bottle: dev\nskills: [pdf, pdf]\n"));
    assert!(p.message.contains("`pdf` is listed twice in skills"), "{p}");
}

#[test]
fn empty_commands_are_refused() {
    let fx = Fixture::new();
    let p = problem(fx.agent("bottle: dev\ncommand: []\n"));
    assert_problem(&p, &fx.agent_path(), 3, &["has no program"]);
    let p = problem(fx.agent("bottle: dev\ncommand: \"  \"\n"));
    assert_problem(&p, &fx.agent_path(), 3, &["`command` is empty"]);
    let p = problem(fx.agent("bottle: dev\ncommand: {run: x}\n"));
    assert_problem(&p, &fx.agent_path(), 3, &["expected a shell command"]);
}
