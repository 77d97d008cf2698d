//! The parsers under generated input: no text makes them panic, every refusal renders, and a
//! well-formed manifest keeps what it says.

use std::collections::BTreeSet;

use bottle_manifest::{Agent, Bottle, Origin};
use proptest::prelude::*;

/// Keys both manifest kinds know, and some they do not.
const KEYS: &[&str] = &[
    "bottle",
    "command",
    "env",
    "egress",
    "routes",
    "git",
    "limits",
    "grants",
    "runtime",
    "firewall",
    "allowlist",
    "ssh",
    "supervise",
    "skills",
    "tools",
    "model",
    "name",
    "plugins",
    "cpus",
    "memory",
    "pids",
    "host",
    "token_ref",
    "path_allowlist",
    "unknown",
    "x-extra",
];

/// YAML values of every shape, small enough to nest.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("~".to_owned()),
        Just("true".to_owned()),
        Just("\"${TOKEN}\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("*anchor".to_owned()),
        Just("&a [1]".to_owned()),
        Just("!!binary aGk=".to_owned()),
        "-?[0-9]{1,12}(\\.[0-9]{0,3})?",
        "[a-z*.~/:${}-]{0,20}",
        "\"[^\"\\\\]{0,20}\"",
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                let pairs: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", pairs.join(", "))
            }),
        ]
    })
}

fn front_matter() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), value(), 0usize..3), 0..8).prop_map(
        |lines| {
            lines
                .iter()
                .map(|(k, v, indent)| format!("{}{k}: {v}\n", "  ".repeat(*indent)))
                .collect()
        },
    )
}

fn parse_both(text: &str) {
    let origin = Origin::embedded("generated");
    if let Err(e) = Agent::parse(text, &origin) {
        assert!(!e.to_string().is_empty());
    }
    let external = BTreeSet::from(["x-extra".to_owned()]);
    if let Err(e) = Bottle::parse(text, &origin, &external, None) {
        assert!(!e.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_parsed_or_refused(text in "\\PC{0,200}") {
        parse_both(&text);
        parse_both(&format!("---\n{text}\n---\nbody\n"));
    }

    #[test]
    fn any_front_matter_is_parsed_or_refused(yaml in front_matter(), body in "\\PC{0,40}") {
        parse_both(&format!("---\n{yaml}---\n{body}"));
    }

    #[test]
    fn a_well_formed_agent_keeps_its_bottle_and_prompt(
        bottle in "[a-z][a-z0-9-]{0,20}[a-z0-9]",
        prompt in prop::collection::vec("[A-Za-z][A-Za-z .,!?]{0,30}[a-z.]", 1..5),
    ) {
        let prompt = prompt.join("\n");
        let text = format!("---\nbottle: {bottle}\n---\n\n{prompt}\n\n");
        let agent = Agent::parse(&text, &Origin::embedded("generated")).unwrap();
        prop_assert_eq!(agent.bottle, bottle);
        prop_assert_eq!(agent.prompt, prompt);
    }
}
