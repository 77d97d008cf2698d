//! Property tests of proposal parsing and checking: whatever bytes arrive, parsing and checking
//! never panic; a valid proposal survives the queue unchanged; a refused character (control,
//! bidi, separator) anywhere in any text field is refused, naming that field. Bounded: a fixed
//! number of cases, no regression files.

use bottle_egress_config::{AuthScheme, Route, RouteAuth};
use bottle_git_gate_config::Policy;
use bottle_supervise_queue::{Change, Proposal, Queue, Tool, host_of_url, text};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::Config;
use serde_json::Value;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn host() -> impl Strategy<Value = String> {
    // Labels as RFC 1123 has them: no hyphen at either end.
    "[a-z]([a-z0-9-]{0,7}[a-z0-9])?(\\.[a-z][a-z0-9]{0,8}){1,2}"
}

fn route(host: String) -> impl Strategy<Value = Route> {
    let auth = prop::option::of(("[A-Z_][A-Z0-9_]{0,10}", any::<bool>()).prop_map(
        |(token_env, bearer)| RouteAuth {
            scheme: if bearer {
                AuthScheme::Bearer
            } else {
                AuthScheme::Token
            },
            token_env,
        },
    ));
    let methods = prop::sample::subsequence(vec!["GET", "POST", "PUT", "PATCH", "DELETE"], 0..3)
        .prop_map(|m| m.into_iter().map(str::to_owned).collect::<Vec<_>>());
    (
        prop::collection::vec("/[a-z0-9_/-]{0,16}", 0..3),
        auth,
        methods,
    )
        .prop_map(move |(path_allowlist, auth, methods)| Route {
            host: host.clone(),
            path_allowlist,
            auth,
            methods,
        })
}

fn change() -> impl Strategy<Value = Change> {
    let routes = prop::collection::btree_set(host(), 0..4)
        .prop_flat_map(|hosts| hosts.into_iter().map(route).collect::<Vec<_>>())
        .prop_map(|routes| Change::Routes { routes });
    let allow = (host(), "[a-z0-9/_-]{0,20}").prop_map(|(host, path)| {
        Change::allow_host_from_url(&format!("https://{host}/{path}")).expect("a valid URL")
    });
    let dockerfile = "# [ -~]{0,20}\nFROM [a-z]{1,8}\n([ -~\t]{0,40}\n){0,4}"
        .prop_map(|dockerfile| Change::Dockerfile { dockerfile });
    let refs = || prop::collection::vec("[a-z][a-z*/_-]{0,12}", 0..3);
    let git = (
        "[a-z][a-z0-9_-]{0,10}",
        refs(),
        refs(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(repo, protected, allowed_refs, allow_force_push, allow_delete, allow_ci_changes)| {
                Change::GitRule {
                    repo,
                    policy: Policy {
                        protected,
                        allow_force_push,
                        allowed_refs,
                        allow_delete,
                        allow_ci_changes,
                    },
                }
            },
        );
    prop_oneof![routes, allow, dockerfile, git]
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        "[0-9]{1,13}-[a-z0-9]{1,8}",
        "[a-zA-Z0-9 .,:'()é漢→🙂-]{0,60}(\n\t?[a-zA-Z0-9 .,é漢-]{0,30}){0,3}",
        change(),
    )
        .prop_map(|(id, justification, change)| Proposal {
            id,
            tool: change.tool(),
            justification: format!("because {justification}"),
            created_at: "2026-01-01T00:00:00Z".into(),
            change,
        })
}

/// A character [`text::is_refused`] refuses even in multi-line text.
fn refused_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (0u32..0x20).prop_filter_map("not newline or tab", |c| {
            char::from_u32(c).filter(|c| *c != '\n' && *c != '\t')
        }),
        (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).expect("a char")),
        prop::sample::select(vec![
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{2028}', '\u{2029}',
        ]),
    ]
}

/// Every string of `value` with its path, as the checks name fields (`routes[0].host`).
fn strings(path: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(_) => out.push(path.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(&format!("{path}[{i}]"), item, out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                strings(&field, item, out);
            }
        }
        _ => {}
    }
}

fn string_at<'a>(value: &'a mut Value, path: &str) -> &'a mut String {
    let mut node = value;
    for part in path.split('.') {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        node = &mut node[key];
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            let i: usize = index.trim_end_matches(']').parse().expect("an index");
            node = &mut node[i];
        }
    }
    match node {
        Value::String(s) => s,
        other => panic!("{path} is not a string: {other}"),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn parsing_and_checking_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(proposal) = serde_json::from_slice::<Proposal>(&bytes) {
            let _ = proposal.check();
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = host_of_url(&text);
        let _ = Change::allow_host_from_url(&format!("https://{text}"));
    }

    #[test]
    fn a_damaged_proposal_never_panics(
        p in proposal(),
        at in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let mut bytes = serde_json::to_vec(&p).unwrap();
        let at = at.index(bytes.len() + 1);
        bytes.splice(at..at, junk);
        if let Ok(damaged) = serde_json::from_slice::<Proposal>(&bytes) {
            let _ = damaged.check();
        }
    }

    #[test]
    fn a_valid_proposal_round_trips(p in proposal()) {
        prop_assert!(p.check().is_ok(), "{:?}: {:?}", p, p.check());
        let json = serde_json::to_string_pretty(&p).unwrap();
        let back: Proposal = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &p);
        // What a view shows of it is what it holds: nothing to escape.
        let shown = text::escape_json(&json);
        prop_assert_eq!(shown.as_ref(), json.as_str());
    }

    #[test]
    fn a_refused_character_in_any_field_is_refused(
        p in proposal(),
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        c in refused_char(),
    ) {
        let mut value = serde_json::to_value(&p).unwrap();
        let mut fields = Vec::new();
        strings("", &value, &mut fields);
        let path = pick.get(&fields).clone();
        let target = string_at(&mut value, &path);
        let chars: Vec<char> = target.chars().collect();
        let at = at.index(chars.len() + 1);
        *target = chars[..at].iter().chain([c].iter()).chain(chars[at..].iter()).collect();
        // An enum (tool, kind, scheme) no longer parses: refused before any check.
        if let Ok(damaged) = serde_json::from_value::<Proposal>(value) {
            let e = damaged.check().expect_err("a refused character passed");
            let field = path.strip_prefix("change.").unwrap_or(&path);
            prop_assert_eq!(&e.field, field);
            prop_assert!(e.message.contains(&text::escape_char(c)), "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Through the queue's files and back (fewer cases: each writes files).
    #[test]
    fn a_valid_proposal_survives_the_queue(p in proposal()) {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::at(dir.path());
        queue.submit(&p).unwrap();
        prop_assert_eq!(queue.proposal(&p.id).unwrap(), p.clone());
        prop_assert_eq!(queue.pending().unwrap(), vec![p]);
    }
}

#[test]
fn every_tool_is_generated() {
    // The strategies above cover each kind of change (a guard against a strategy silently
    // producing one kind only).
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let p = proposal().new_tree(&mut runner).unwrap().current();
        seen.insert(p.tool);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), Tool::ALL.to_vec());
}
