//! The commands and knobs claude-bottle users reach for, run as a user runs them: `init`, `edit`,
//! `migrate`, dry runs from the environment, project agents from the repository root. Every run
//! has a temporary HOME and BOTTLE_HOME; the real user's home is never touched.

mod cli_home;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cli_home::{Home, stderr_of_failure, stdout};

/// Variables of the test's own environment that would change what these runs mean.
const CLEARED: [&str; 6] = [
    "BOTTLE_DRY_RUN",
    "CLAUDE_BOTTLE_DRY_RUN",
    "VISUAL",
    "EDITOR",
    "BOTTLE_HOME",
    "BOTTLE_POLICY_DIR",
];

/// `bottle` with `home` as HOME and BOTTLE_HOME, in `cwd`, with extra variables.
fn run_in(home: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bottle"));
    for name in CLEARED {
        command.env_remove(name);
    }
    command
        .args(args)
        .env("HOME", home)
        .env("BOTTLE_HOME", home)
        .env("CLAUDE_CODE_OAUTH_TOKEN", cli_home::SECRET_VALUE)
        .env("GH_TOKEN", cli_home::SECRET_VALUE)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn run(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_in(home.path(), home.path(), args, env)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_the_new_commands() {
    let home = Home::new();
    let help = stdout(&run(&home, &["--help"], &[]));
    for command in ["init", "edit", "migrate", "resume", "list", "cleanup"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "`{command}` missing from:\n{help}"
        );
    }
}

#[test]
fn dry_run_comes_from_the_environment_too() {
    let home = Home::new();
    // Without the variable the same command is a launch, which needs --yes off a terminal: the
    // variable is what makes the runs below dry.
    let launch = stderr_of_failure(&run(&home, &["start"], &[]));
    assert!(launch.contains("pass --yes"), "{launch}");
    let off = stderr_of_failure(&run(&home, &["start"], &[("BOTTLE_DRY_RUN", "0")]));
    assert!(off.contains("pass --yes"), "{off}");

    let text = stdout(&run(&home, &["start"], &[("BOTTLE_DRY_RUN", "1")]));
    assert!(
        text.contains("bottle `default` for agent `claude`"),
        "{text}"
    );
    let json = stdout(&run(
        &home,
        &["start", "--format", "json"],
        &[("CLAUDE_BOTTLE_DRY_RUN", "1")],
    ));
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plan["agent_proxy"], "http://egress-proxy:9099");

    let err = stderr_of_failure(&run(&home, &["start", "--format", "json"], &[]));
    assert!(
        err.contains("--format applies only to a dry run") && err.contains("--dry-run"),
        "{err}"
    );
    let err = stderr_of_failure(&run(&home, &["start"], &[("BOTTLE_DRY_RUN", "ture")]));
    assert!(
        err.contains("BOTTLE_DRY_RUN=ture is neither yes nor no"),
        "{err}"
    );
}

#[test]
fn init_writes_a_starter_pair_that_plans_and_refuses_to_overwrite() {
    let home = Home::new();
    let out = stdout(&run(
        &home,
        &["init", "--agent", "dev", "--bottle", "work"],
        &[],
    ));
    let agent = home.path().join("agents/dev.md");
    let bottle = home.path().join("bottles/work.md");
    assert!(
        out.contains(&agent.display().to_string())
            && out.contains(&bottle.display().to_string())
            && out.contains("bottle edit --bottle work")
            && out.contains("bottle start dev --dry-run"),
        "{out}"
    );
    let written = (read(&agent), read(&bottle));
    assert!(written.0.contains("bottle: work") && written.0.contains("# skills:"));
    assert!(written.1.contains("# egress_proxy:") && written.1.contains("allowlist: []"));
    let plan = stdout(&run(&home, &["start", "dev", "--dry-run"], &[]));
    assert!(plan.contains("bottle `work` for agent `dev`"), "{plan}");

    let err = stderr_of_failure(&run(
        &home,
        &["init", "--agent", "dev", "--bottle", "other"],
        &[],
    ));
    assert!(
        err.contains("refusing to overwrite") && err.contains("dev.md"),
        "{err}"
    );
    assert!(
        !home.path().join("bottles/other.md").exists(),
        "nothing half written"
    );
    let err = stderr_of_failure(&run(
        &home,
        &["init", "--agent", "new", "--bottle", "work"],
        &[],
    ));
    assert!(
        err.contains("refusing to overwrite") && err.contains("work.md"),
        "{err}"
    );
    assert!(!home.path().join("agents/new.md").exists());
    assert_eq!((read(&agent), read(&bottle)), written);

    let err = stderr_of_failure(&run(
        &home,
        &["init", "--agent", "Dev", "--bottle", "x"],
        &[],
    ));
    assert!(err.contains("`Dev` is not a valid agent name"), "{err}");
    let err = stderr_of_failure(&run(&home, &["init"], &[]));
    assert!(err.contains("pass --agent NAME --bottle NAME"), "{err}");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// An `$EDITOR` that writes, on its n-th run, the n-th of `texts` into the file (an empty text:
/// leaves it alone; `FAIL`: exits 1), and keeps a copy of what it was shown and of the manifest
/// as it was at that moment.
fn scripted_editor(dir: &Path, manifest: &Path, texts: &[&str]) -> String {
    let mut script = format!(
        "#!/bin/sh\nn=$(cat '{d}/count' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{d}/count'\n\
         cp \"$1\" '{d}/shown-'$n; cp '{m}' '{d}/manifest-'$n\ncase $n in\n",
        d = dir.display(),
        m = manifest.display()
    );
    for (index, text) in texts.iter().enumerate() {
        let action = match *text {
            "" => ":".to_string(),
            "FAIL" => "exit 1".to_string(),
            text => format!("printf '%s' '{text}' > \"$1\""),
        };
        script.push_str(&format!("  {}) {action} ;;\n", index + 1));
    }
    script.push_str("esac\n");
    let path = dir.join("editor.sh");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".bottle-edit")
        })
        .collect()
}

#[test]
fn edit_reopens_with_the_error_and_replaces_only_a_valid_manifest() {
    let home = Home::new();
    stdout(&run(
        &home,
        &["init", "--agent", "dev", "--bottle", "work"],
        &[],
    ));
    let manifest = home.path().join("bottles/work.md");
    let original = read(&manifest);
    let scratch = tempfile::tempdir().unwrap();
    let valid = "---\nsupervise: true\n---\nEdited.\n";
    let editor = scripted_editor(
        scratch.path(),
        &manifest,
        &["---\nsupervise: maybe\n---\n", valid],
    );
    let out = stdout(&run(&home, &["edit", "work"], &[("EDITOR", &editor)]));
    assert!(out.contains("saved"), "{out}");
    assert_eq!(read(&manifest), valid);
    // The second run showed the error, above the invalid text, while the manifest was untouched.
    let shown = read(&scratch.path().join("shown-2"));
    assert!(
        shown.starts_with("---\n# bottle edit: ") && shown.contains("supervise: maybe"),
        "{shown}"
    );
    assert!(shown.contains("supervise"), "{shown}");
    assert_eq!(read(&scratch.path().join("manifest-2")), original);
    assert!(leftovers(manifest.parent().unwrap()).is_empty());

    // $VISUAL wins over $EDITOR, and an agent is checked as an agent.
    let agent = home.path().join("agents/dev.md");
    let scratch = tempfile::tempdir().unwrap();
    let visual = scripted_editor(
        scratch.path(),
        &agent,
        &["---\nbottle: work\n---\nNew prompt.\n"],
    );
    let out = stdout(&run(
        &home,
        &["edit", "--agent", "dev"],
        &[("VISUAL", &visual), ("EDITOR", "false")],
    ));
    assert!(out.contains("saved"), "{out}");
    assert_eq!(read(&agent), "---\nbottle: work\n---\nNew prompt.\n");
}

#[test]
fn edit_gives_up_without_touching_the_manifest() {
    let home = Home::new();
    stdout(&run(
        &home,
        &["init", "--agent", "dev", "--bottle", "work"],
        &[],
    ));
    let manifest = home.path().join("bottles/work.md");
    let original = read(&manifest);
    let cases: [(&[&str], &str); 3] = [
        (
            &["---\nsupervise: maybe\n---\n", ""],
            "saved again with the error unchanged",
        ),
        (&["FAIL"], "the editor exited with"),
        (
            &["---\nsupervise: maybe\n---\n", "\n"],
            "the file was emptied",
        ),
    ];
    for (texts, why) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let editor = scripted_editor(scratch.path(), &manifest, texts);
        let err = stderr_of_failure(&run(&home, &["edit", "work"], &[("EDITOR", &editor)]));
        assert!(
            err.contains(why) && err.contains("keeps its old contents"),
            "{err}"
        );
        assert_eq!(read(&manifest), original);
        assert!(leftovers(manifest.parent().unwrap()).is_empty());
    }
    // Saving what was there is not an error.
    let scratch = tempfile::tempdir().unwrap();
    let editor = scripted_editor(scratch.path(), &manifest, &[""]);
    let out = stdout(&run(&home, &["edit", "work"], &[("EDITOR", &editor)]));
    assert!(out.contains("no changes"), "{out}");
}

#[test]
fn edit_asks_which_when_an_agent_and_a_bottle_share_a_name() {
    let home = Home::new();
    stdout(&run(
        &home,
        &["init", "--agent", "same", "--bottle", "same"],
        &[],
    ));
    let err = stderr_of_failure(&run(&home, &["edit", "same"], &[("EDITOR", "true")]));
    assert!(
        err.contains("--agent same") && err.contains("--bottle same"),
        "{err}"
    );
    let err = stderr_of_failure(&run(&home, &["edit", "nothing"], &[("EDITOR", "true")]));
    assert!(err.contains("no agent or bottle `nothing`"), "{err}");
}

/// claude-bottle's home as its users have it: an agent whose prompt names its old supervise
/// tool, a bottle with `egress.dlp_action` and later-era `egress.routes`, and state.
fn claude_bottle_home(user: &Path) -> PathBuf {
    let legacy = user.join(".claude-bottle");
    let write = |relative: &str, text: &str| {
        let path = legacy.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "agents/dev.md",
        "---\nbottle: work\n---\nAsk with pipelock-block when a host is refused.\n",
    );
    write(
        "bottles/work.md",
        "---\n# mine\nenv:\n  GH_TOKEN: \"${GH_TOKEN}\"\negress:\n  allowlist: [crates.io]\n  dlp_action: warn\n  \
         routes:\n    - host: api.github.com\n      auth: {scheme: token, token_ref: GH_TOKEN}\n---\nNotes.\n",
    );
    write("state/dev-1/record.json", "{}");
    legacy
}

#[test]
fn migrate_imports_claude_bottles_manifests_and_reports() {
    let user = tempfile::tempdir().unwrap();
    let legacy = claude_bottle_home(user.path());
    let bottle_home = user.path().join(".bottle");
    let bottle = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bottle"));
        for name in CLEARED {
            command.env_remove(name);
        }
        command
            .args(args)
            .env("HOME", user.path())
            .env("GH_TOKEN", cli_home::SECRET_VALUE)
            .current_dir(user.path())
            .output()
            .unwrap()
    };
    let note = stderr(&bottle(&["agents"]));
    assert!(
        note.contains(".claude-bottle") && note.contains("bottle migrate"),
        "{note}"
    );

    let report = stdout(&bottle(&["migrate"]));
    for part in [
        "`egress.dlp_action: warn` → `egress_proxy.dlp_patterns: warn`",
        "`egress.routes` (1 route) → `egress_proxy.routes`",
        "mentions `pipelock-block`",
        "state: not copied",
        "2 manifest(s) copied, 0 left as they were, 0 to fix",
    ] {
        assert!(report.contains(part), "missing {part:?} in:\n{report}");
    }
    assert!(!bottle_home.join("state").exists(), "state is not copied");
    assert!(legacy.join("state/dev-1/record.json").exists());
    let migrated = read(&bottle_home.join("bottles/work.md"));
    assert!(
        migrated.contains("dlp_patterns: warn") && !migrated.contains("dlp_action"),
        "{migrated}"
    );
    assert!(read(&bottle_home.join("agents/dev.md")).contains("pipelock-block"));
    // What was imported plans, with the egress proxy letting known patterns pass with a log.
    let plan = stdout(&bottle(&["start", "dev", "--dry-run"]));
    assert!(plan.contains("patterns: warn"), "{plan}");
    assert!(plan.contains("host: api.github.com"), "{plan}");
    // The home exists now: no more note, and a second run replaces nothing.
    assert!(!stderr(&bottle(&["agents"])).contains("bottle migrate"));
    std::fs::write(bottle_home.join("bottles/work.md"), "---\n---\nmine now\n").unwrap();
    let again = stdout(&bottle(&["migrate"]));
    assert!(
        again.contains("0 manifest(s) copied, 2 left as they were"),
        "{again}"
    );
    assert_eq!(
        read(&bottle_home.join("bottles/work.md")),
        "---\n---\nmine now\n"
    );
}

#[test]
fn an_unmigrated_dlp_action_loads_and_reaches_the_proxy() {
    let home = Home::new();
    home.write("agents/dev.md", "---\nbottle: work\n---\n");
    home.write("bottles/work.md", "---\negress:\n  dlp_action: warn\n---\n");
    let plan = stdout(&run(&home, &["start", "dev", "--dry-run"], &[]));
    assert!(plan.contains("patterns: warn"), "{plan}");
    home.write(
        "bottles/work.md",
        "---\negress:\n  dlp_action: block\n---\n",
    );
    let plan = stdout(&run(&home, &["start", "dev", "--dry-run"], &[]));
    assert!(plan.contains("patterns: block"), "{plan}");
}

#[test]
fn project_agents_are_found_from_the_repository_root_and_still_need_trust() {
    let home = Home::new();
    home.full();
    home.write(
        ".bottle/agents/dev.md",
        "---\nbottle: work\n---\nProject prompt.\n",
    );
    let deep = home.path().join("src/module");
    std::fs::create_dir_all(&deep).unwrap();
    let no_engine = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let start = ["start", "dev", "--yes"];
    // Outside a repository, a subdirectory does not see the project's agent: the home agent runs
    // (and stops at the missing engine).
    let err = stderr_of_failure(&run_in(home.path(), &deep, &start, &no_engine));
    assert!(!err.contains("project's agent"), "{err}");
    assert!(err.to_lowercase().contains("docker"), "{err}");

    std::fs::create_dir_all(home.path().join(".git")).unwrap();
    let agents = stdout(&run_in(home.path(), &deep, &["agents"], &[]));
    assert!(agents.contains(".bottle/agents/dev.md"), "{agents}");
    let info = stdout(&run_in(home.path(), &deep, &["info", "dev"], &[]));
    assert!(info.contains("Project prompt."), "{info}");
    // Found by walking up, it is still the project's: a credentialed home bottle needs the
    // operator's word, which --yes does not give.
    let err = stderr_of_failure(&run_in(home.path(), &deep, &start, &no_engine));
    assert!(
        err.contains("the project's agent") && err.contains("your bottle `work`"),
        "{err}"
    );
}

#[test]
fn the_node_example_keeps_the_default_images_user_and_claude_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let default = read(&root.join("docker/agent/Dockerfile"));
    let node = read(&root.join("examples/node-agent/Dockerfile"));
    let node_lines: Vec<&str> = node.lines().collect();
    for line in default.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            node_lines.contains(&line),
            "examples/node-agent/Dockerfile lost the default image's line {line:?}"
        );
    }
    assert!(node.contains("nodejs npm"), "{node}");
}

/// `bottle resume` on kept state needs no engine to list its conversations or to refuse a
/// `--session` it does not have; the help names the flags of sessions that survive.
#[test]
fn resume_lists_kept_conversations_and_refuses_unknown_sessions() {
    let home = Home::new();
    let state = home.path().join("state/dev");
    std::fs::create_dir_all(state.join("claude/projects/-workspace")).unwrap();
    std::fs::write(
        state.join("launch.json"),
        r#"{"identity":"dev","agent":"claude","cwd":"/","workspace":null,"launched_at":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let id = "0f0e0d0c-0b0a-4909-8807-060504030201";
    std::fs::write(
        state.join(format!("claude/projects/-workspace/{id}.jsonl")),
        "{\"type\":\"user\",\"message\":{\"content\":\"add a \\u001b[31mred test\"}}\n",
    )
    .unwrap();
    let listed = stdout(&run(&home, &["resume", "dev", "--list-sessions"], &[]));
    assert!(
        listed.contains(id) && listed.contains("add a \\u001b[31mred test"),
        "{listed}"
    );
    assert!(
        !listed.contains('\u{1b}'),
        "the agent's text reaches the terminal escaped"
    );
    let unknown = stderr_of_failure(&run(
        &home,
        &[
            "resume",
            "dev",
            "--session",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        ],
        &[],
    ));
    assert!(
        unknown.contains("no conversation") && unknown.contains("--list-sessions"),
        "{unknown}"
    );
    let none = stderr_of_failure(&run(&home, &["resume", "gone"], &[]));
    assert!(none.contains("bottle list --all"), "{none}");
    for (command, flags) in [
        ("resume", &["--session", "--list-sessions"][..]),
        ("list", &["--all"][..]),
        ("cleanup", &["--state", "--images", "--yes"][..]),
        ("stop", &["--yes"][..]),
    ] {
        let help = stdout(&run(&home, &[command, "--help"], &[]));
        for flag in flags {
            assert!(
                help.contains(flag),
                "`{command} --help` lacks {flag}:\n{help}"
            );
        }
    }
}

#[test]
fn learn_mode_is_planned_shown_and_never_from_a_manifest() {
    let home = Home::new();
    let help = stdout(&run(&home, &["--help"], &[]));
    assert!(
        help.lines()
            .any(|l| l.trim_start().starts_with("allowlist")),
        "{help}"
    );
    let start_help = stdout(&run(&home, &["start", "--help"], &[]));
    assert!(start_help.contains("--learn"), "{start_help}");
    home.write("agents/dev.md", "---\nbottle: work\n---\n");
    home.write(
        "bottles/work.md",
        "---\negress:\n  allowlist: [pypi.org]\n---\n",
    );
    // Off unless asked: the proxy's file has no `learn`, the preflight says nothing.
    let plan = stdout(&run(&home, &["start", "dev", "--dry-run"], &[]));
    assert!(
        !plan.contains("learn: true") && !plan.contains("LEARN MODE"),
        "{plan}"
    );
    // Asked: the proxy's configuration learns and the preflight says so.
    let plan = stdout(&run(&home, &["start", "dev", "--learn", "--dry-run"], &[]));
    assert!(plan.contains("learn: true"), "{plan}");
    let preflight = plan.lines().find(|l| l.starts_with("preflight:")).unwrap();
    assert!(preflight.contains("LEARN MODE"), "{preflight}");
    assert!(plan.contains("pypi.org"), "the allowlist stays: {plan}");

    // A manifest cannot switch it on for good.
    home.write(
        "bottles/work.md",
        "---\negress_proxy:\n  learn: true\n---\n",
    );
    let err = stderr_of_failure(&run(&home, &["start", "dev", "--dry-run"], &[]));
    assert!(err.contains("learn"), "{err}");
    // Not with pipelock, and the error says why and what to do.
    home.write(
        "bottles/work.md",
        "---\negress:\n  firewall: pipelock\n---\n",
    );
    let err = stderr_of_failure(&run(&home, &["start", "dev", "--learn", "--dry-run"], &[]));
    assert!(
        err.contains("--learn") && err.contains("pipelock") && err.contains("without"),
        "{err}"
    );

    // The suggestion: a clear error without a record, and no way out of the learn directory.
    let err = stderr_of_failure(&run(&home, &["allowlist", "suggest", "dev"], &[]));
    assert!(
        err.contains("no learn record for `dev`") && err.contains("bottle start --learn"),
        "{err}"
    );
    let err = stderr_of_failure(&run(&home, &["allowlist", "suggest", "../dev"], &[]));
    assert!(err.contains("not a bottle identity"), "{err}");
}
