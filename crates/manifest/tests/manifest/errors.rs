//! Errors common to both kinds of manifest: frontmatter, YAML syntax, types, lines.

use crate::common::{Fixture, assert_problem, problem};

#[test]
fn missing_frontmatter_is_reported_at_line_one() {
    let fx = Fixture::new();
    let path = fx.bottle_file("b", "# My bottle\n\nenv: {}\n");
    let p = problem(fx.catalog().bottle("b", &Default::default()));
    assert_problem(
        &p,
        &path,
        1,
        &["no frontmatter", "first line must be `---`", "hint:"],
    );
}

#[test]
fn unterminated_frontmatter_is_reported() {
    let fx = Fixture::new();
    let path = fx.agent_file("a", "---\nbottle: default\nPrompt without a closing line\n");
    let p = problem(fx.catalog().agent("a"));
    assert_problem(
        &p,
        &path,
        1,
        &["never closed", "add a line with just `---`"],
    );
}

#[test]
fn yaml_syntax_errors_carry_the_file_line() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("env:\n  A: x\n B: y\n"));
    // The bad line is line 3 of the frontmatter, line 4 of the file.
    assert_problem(
        &p,
        &fx.bottle_path(),
        4,
        &["YAML syntax error", "hint: check indentation"],
    );
    // Line numbers inside the library's message are shifted to the file too.
    assert!(!p.message.contains("line 3 "), "{p}");
}

#[test]
fn unclosed_quotes_are_syntax_errors() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("supervise: true\nimage: \"abc\n"));
    assert!(p.message.contains("YAML syntax error"), "{p}");
    assert!(p.line.is_some(), "{p}");
}

#[test]
fn wrong_types_carry_the_file_line_and_path() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("env: {}\nsupervise: yes please\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["supervise", "expected a boolean"],
    );
    assert_eq!(p.column, Some(12), "{p}");

    let p = problem(fx.bottle("git:\n  name: x\n"));
    assert_problem(&p, &fx.bottle_path(), 3, &["git", "expected a sequence"]);
}

#[test]
fn nested_wrong_types_name_their_path() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("egress_proxy:\n  routes:\n    - host: a.com\n      auth: Bearer\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["egress_proxy.routes[0].auth", "auth mapping"],
    );
}

#[test]
fn frontmatter_must_be_a_mapping() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("- a\n- b\n"));
    assert_problem(&p, &fx.bottle_path(), 2, &["mapping of bottle settings"]);
}

#[test]
fn top_level_repeated_keys_are_errors_at_the_second() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("supervise: true\nruntime: auto\nsupervise: false\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        4,
        &["`supervise` is given twice", "bottle manifest"],
    );
}

#[test]
fn nested_repeated_keys_are_errors_at_the_second() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("egress:\n  firewall: builtin\n  firewall: pipelock\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        4,
        &["`firewall` is given twice in egress"],
    );
}

#[test]
fn a_crlf_file_parses_and_keeps_lines() {
    let fx = Fixture::new();
    fx.bottle_file("b", "---\r\nsupervise: true\r\n---\r\nnotes\r\n");
    let bottle = fx.catalog().bottle("b", &Default::default()).unwrap();
    assert!(bottle.supervise);
    assert_eq!(bottle.notes, "notes");

    fx.bottle_file("b", "---\r\nenv: {}\r\nsupervise: 3\r\n---\r\n");
    let p = problem(fx.catalog().bottle("b", &Default::default()));
    assert_eq!(p.line, Some(3), "{p}");
}

#[test]
fn unreadable_files_are_read_errors() {
    let fx = Fixture::new();
    let path = fx.bottle_file("b", "");
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let err = fx.catalog().bottle("b", &Default::default()).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.problem().is_none());
}
