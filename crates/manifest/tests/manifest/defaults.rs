//! The embedded default agent and bottle.

use std::collections::BTreeSet;

use bottle_manifest::{Agent, Bottle, Firewall, Origin, Runtime, Source, defaults};

#[test]
fn the_default_agent_parses() {
    let agent = defaults::agent();
    assert_eq!(agent.name, defaults::AGENT_NAME);
    assert_eq!(agent.name, "claude");
    assert_eq!(agent.bottle, defaults::BOTTLE_NAME);
    assert_eq!(agent.source, Source::Embedded);
    assert_eq!(agent.path, None);
    assert_eq!(agent.command, None);
    assert!(agent.skills.is_empty());
    for topic in ["proxy", "supervise", "git push", "git gate"] {
        assert!(
            agent.prompt.contains(topic),
            "no {topic:?} in:\n{}",
            agent.prompt
        );
    }
    assert!(!agent.prompt.starts_with('\n') && !agent.prompt.ends_with('\n'));
}

#[test]
fn the_default_bottle_parses() {
    let bottle = defaults::bottle();
    assert_eq!(bottle.name, "default");
    assert_eq!(bottle.source, Source::Embedded);
    assert_eq!(bottle.path, None);
    assert!(
        bottle.env.is_empty(),
        "the default must need no host variables"
    );
    assert!(bottle.git.is_empty() && bottle.egress_proxy.routes.is_empty());
    assert_eq!(bottle.egress.firewall, Firewall::Builtin);
    assert!(!bottle.supervise);
    assert_eq!(bottle.runtime, Runtime::Auto);
    assert!(bottle.secret_names().is_empty());
    assert!(!bottle.notes.is_empty());
}

#[test]
fn the_defaults_are_ordinary_manifests() {
    let origin = Origin::embedded("claude");
    assert_eq!(
        Agent::parse(defaults::AGENT_MD, &origin).unwrap(),
        defaults::agent()
    );
    let origin = Origin::embedded("default");
    let bottle = Bottle::parse(defaults::BOTTLE_MD, &origin, &BTreeSet::new(), None).unwrap();
    assert_eq!(bottle, defaults::bottle());
}

#[test]
fn embedded_errors_name_the_built_in_manifest() {
    let err = Agent::parse("no frontmatter", &Origin::embedded("claude")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("<built-in agent `claude`>:1:1:"),
        "{err}"
    );
}
