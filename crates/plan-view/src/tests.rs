use serde_json::{Value, json};

use super::*;

/// A plan like the one the host builds for a bottle with the egress proxy, one credential route and
/// the git gate.
fn plan() -> PlanView {
    PlanView {
        schema: PLAN_VIEW_SCHEMA,
        bottle: "dev".into(),
        agent: AgentView {
            name: "claude".into(),
            image: "context:agent".into(),
            env: vec!["HTTPS_PROXY".into(), "NO_PROXY".into()],
            no_proxy: vec!["localhost".into(), "git-gate".into()],
            proxy: Some("http://egress-proxy:9099".into()),
        },
        runtime: RuntimeView {
            requested: runtimes::AUTO.into(),
            chosen: Some(runtimes::RUNSC.into()),
            available: vec!["runc".into(), "runsc".into()],
        },
        sidecars: vec![
            SidecarView {
                name: "egress-proxy".into(),
                plugin: "egress-proxy".into(),
                image: "context:egress-proxy".into(),
                networks: vec!["internal".into(), "egress".into()],
                aliases: vec!["egress-proxy".into()],
                port: Some(9099),
                mounts: Vec::new(),
                env: vec!["GH_TOKEN".into()],
                secrets: vec!["GH_TOKEN".into()],
                host_files: Vec::new(),
                published_ports: Vec::new(),
                extra_hosts: Vec::new(),
            },
            SidecarView {
                name: "git-gate".into(),
                plugin: "git-gate".into(),
                image: "context:git-gate".into(),
                networks: vec!["internal".into()],
                aliases: vec!["git-gate".into(), "github.com".into()],
                port: Some(9418),
                mounts: vec![MountView {
                    source: "state:git-gate".into(),
                    target: "/var/lib/git-gate".into(),
                    read_only: false,
                }],
                env: Vec::new(),
                secrets: Vec::new(),
                host_files: vec!["/home/me/.ssh/deploy_key".into()],
                published_ports: Vec::new(),
                extra_hosts: vec![HostEntryView {
                    host: "proxy.internal".into(),
                    ip: "172.30.0.2".into(),
                }],
            },
        ],
        egress: vec![
            EgressView {
                host: "api.github.com".into(),
                reason: "route".into(),
                credentialed: true,
                passthrough: false,
            },
            EgressView {
                host: "*.pypi.org".into(),
                reason: "allowlist".into(),
                credentialed: false,
                passthrough: false,
            },
        ],
        routes: vec![
            RouteView {
                host: "api.github.com".into(),
                path_allowlist: vec!["/repos/org/app/".into()],
                token: Some("GH_TOKEN".into()),
                scheme: Some("token".into()),
            },
            RouteView {
                host: "example.com".into(),
                path_allowlist: vec!["/docs/".into()],
                token: None,
                scheme: None,
            },
        ],
        grants: vec![
            GrantView {
                plugin: "acme-audit".into(),
                kind: grant_kinds::SECRET.into(),
                value: "AUDIT_KEY".into(),
            },
            GrantView {
                plugin: "acme-audit".into(),
                kind: grant_kinds::EGRESS.into(),
                value: "audit.acme.example".into(),
            },
        ],
        plugins: vec![
            PluginView {
                name: "egress-proxy".into(),
                version: "0.1.0".into(),
                source: sources::BUILT_IN.into(),
                wit: "0.1.0".into(),
            },
            PluginView {
                name: "acme-audit".into(),
                version: "2.0.1".into(),
                source: format!("{}{}", sources::SHA256_PREFIX, "ab".repeat(32)),
                wit: "0.1.0".into(),
            },
        ],
        secrets: vec!["GH_TOKEN".into(), "AUDIT_KEY".into()],
    }
}

fn json_of(plan: &PlanView) -> Value {
    serde_json::to_value(plan).unwrap()
}

#[test]
fn round_trips_through_json() {
    let plan = plan();
    let text = serde_json::to_string(&plan).unwrap();
    let back: PlanView = serde_json::from_str(&text).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn json_field_names_are_the_contract() {
    let value = json_of(&plan());
    let top: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "schema", "bottle", "agent", "runtime", "sidecars", "egress", "routes", "grants",
        "plugins", "secrets",
    ];
    expected.sort_unstable();
    let mut top = top;
    top.sort_unstable();
    assert_eq!(top, expected);
    assert_eq!(value["schema"], json!(1));
    assert_eq!(value["runtime"]["chosen"], json!("runsc"));
    assert_eq!(value["sidecars"][1]["mounts"][0]["read_only"], json!(false));
    assert_eq!(value["routes"][1]["token"], Value::Null);
    assert_eq!(
        value["sidecars"][1]["extra_hosts"][0]["ip"],
        json!("172.30.0.2")
    );
}

#[test]
fn unknown_fields_are_ignored_so_a_newer_host_stays_readable() {
    let mut value = json_of(&plan());
    value["stages"] = json!([["egress-proxy"]]);
    value["sidecars"][0]["health"] = json!({"tcp": 9099});
    let back: PlanView = serde_json::from_value(value).unwrap();
    assert_eq!(back, plan());
}

#[test]
fn a_missing_field_is_an_error_not_an_empty_list() {
    for field in [
        "schema", "egress", "routes", "grants", "sidecars", "runtime",
    ] {
        let mut value = json_of(&plan());
        value.as_object_mut().unwrap().remove(field);
        let err = serde_json::from_value::<PlanView>(value).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    for field in ["path_allowlist", "token", "scheme"] {
        let mut value = json_of(&plan());
        value["routes"][0].as_object_mut().unwrap().remove(field);
        let err = serde_json::from_value::<PlanView>(value).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    let mut value = json_of(&plan());
    value["runtime"].as_object_mut().unwrap().remove("chosen");
    assert!(serde_json::from_value::<PlanView>(value).is_err());
    // `null` is how an optional field says it has no value.
    let mut value = json_of(&plan());
    value["routes"][0]["token"] = Value::Null;
    let back: PlanView = serde_json::from_value(value).unwrap();
    assert_eq!(back.routes[0].token, None);
}

#[test]
fn pointer_helpers_resolve_to_what_they_name() {
    let plan = plan();
    let value = json_of(&plan);
    let at = |p: &str| {
        value
            .pointer(p)
            .unwrap_or_else(|| panic!("{p} does not resolve"))
            .clone()
    };
    assert_eq!(PlanView::pointer_to_egress(1), "/egress/1/host");
    assert_eq!(at(&PlanView::pointer_to_egress(1)), json!("*.pypi.org"));
    assert_eq!(at(&PlanView::pointer_to_route(0)), json!("api.github.com"));
    assert_eq!(
        at(&PlanView::pointer_to_route_field(0, "path_allowlist")),
        json!(["/repos/org/app/"])
    );
    assert_eq!(
        at(&PlanView::pointer_to_sidecar(1, "image")),
        json!("context:git-gate")
    );
    assert_eq!(
        at(&PlanView::pointer_to_sidecar_item(1, "aliases", 1)),
        json!("github.com")
    );
    assert_eq!(
        at(&PlanView::pointer_to_grant(1)),
        json!("audit.acme.example")
    );
    assert_eq!(
        at(&PlanView::pointer_to_agent("image")),
        json!("context:agent")
    );
    assert_eq!(at(&PlanView::pointer_to_no_proxy(1)), json!("git-gate"));
    assert_eq!(at(&PlanView::pointer_to_runtime("chosen")), json!("runsc"));
    assert_eq!(
        at(&PlanView::pointer_to_plugin(1, "version")),
        json!("2.0.1")
    );
    for mention in plan.host_mentions() {
        assert_eq!(at(&mention.subject), json!(mention.host), "{mention:?}");
    }
}

#[test]
fn pointer_escapes_per_rfc_6901() {
    assert_eq!(pointer(&[&"a~b", &"c/d", &0]), "/a~0b/c~1d/0");
    let value = json!({"a~b": {"c/d": ["x"]}});
    assert_eq!(
        value.pointer(&pointer(&[&"a~b", &"c/d", &0])),
        Some(&json!("x"))
    );
}

#[test]
fn host_mentions_cover_every_place_in_order() {
    let plan = plan();
    let mentions: Vec<(&str, String)> = plan
        .host_mentions()
        .into_iter()
        .map(|m| (m.host, m.place.to_string()))
        .collect();
    let expected = [
        ("api.github.com", "the bottle's egress allowlist"),
        ("*.pypi.org", "the bottle's egress allowlist"),
        ("api.github.com", "the egress proxy's credential routes"),
        ("example.com", "the egress proxy's credential routes"),
        (
            "audit.acme.example",
            "the egress grants of plugin `acme-audit`",
        ),
        ("localhost", "the agent's NO_PROXY"),
        ("git-gate", "the agent's NO_PROXY"),
        ("egress-proxy", "the DNS aliases of sidecar `egress-proxy`"),
        ("git-gate", "the DNS aliases of sidecar `git-gate`"),
        ("github.com", "the DNS aliases of sidecar `git-gate`"),
        (
            "proxy.internal",
            "the /etc/hosts entries of sidecar `git-gate`",
        ),
    ];
    let expected: Vec<(&str, String)> = expected
        .iter()
        .map(|(h, p)| (*h, (*p).to_owned()))
        .collect();
    assert_eq!(mentions, expected);
}

#[test]
fn lookups() {
    let plan = plan();
    assert_eq!(plan.sidecar("git-gate").map(|(i, _)| i), Some(1));
    assert!(plan.sidecar("pipelock").is_none());
    assert_eq!(plan.plugin("acme-audit").map(|(i, _)| i), Some(1));
    let credential: Vec<usize> = plan.credential_routes().map(|(i, _)| i).collect();
    assert_eq!(credential, [0]);
    let egress: Vec<usize> = plan
        .grants_of(grant_kinds::EGRESS)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(egress, [1]);
    assert!(plan.runtime.offers("runsc"));
    assert!(plan.runtime.offers("RUNC"));
    assert!(!RuntimeView::default().offers("runsc"));
}

#[test]
fn violations() {
    let v = Violation::new("no-paste-sites", "/egress/0/host", "pastebin.com is denied")
        .with_property("host", "pastebin.com");
    assert_eq!(v.rule, "no-paste-sites");
    assert_eq!(v.subject, "/egress/0/host");
    assert_eq!(v.message, "pastebin.com is denied");
    assert_eq!(
        v.properties,
        [Property {
            key: "host".into(),
            value: "pastebin.com".into()
        }]
    );
    assert_eq!(
        v.to_string(),
        "no-paste-sites at /egress/0/host: pastebin.com is denied"
    );
    assert_eq!(Violation::new("r", "", "m").to_string(), "r at /: m");
}

#[test]
fn the_default_plan_has_the_current_schema() {
    assert_eq!(PlanView::default().schema, PLAN_VIEW_SCHEMA);
    assert!(PlanView::default().host_mentions().is_empty());
}

#[test]
fn security_roles_are_named_once_and_parse_back() {
    for role in SecurityRole::ALL {
        assert_eq!(SecurityRole::parse(role.as_str()), Some(role));
    }
    assert_eq!(SecurityRole::AgentProxy.as_str(), "agent-proxy");
    assert_eq!(SecurityRole::EgressFirewall.as_str(), "egress-firewall");
    assert_eq!(SecurityRole::parse("agent-proxy-2"), None);
}
