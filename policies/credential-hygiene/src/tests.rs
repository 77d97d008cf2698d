use bottle_plugin_sdk::plan_view::{
    AgentView, EgressView, PLAN_VIEW_SCHEMA, PluginView, RouteView, SidecarView, sources,
};
use serde_json::Value;

use super::*;

fn route(host: &str, paths: &[&str], token: Option<&str>) -> RouteView {
    RouteView {
        host: host.into(),
        path_allowlist: paths.iter().map(|p| (*p).to_owned()).collect(),
        token: token.map(str::to_owned),
        scheme: token.map(|_| "Bearer".to_owned()),
    }
}

fn runtime(requested: &str, chosen: Option<&str>, available: &[&str]) -> RuntimeView {
    RuntimeView {
        requested: requested.into(),
        chosen: chosen.map(str::to_owned),
        available: available.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// A plan like the host's for a bottle with two credential routes limited to paths, a path-only
/// route, and gVisor chosen by `auto`.
fn allowed_plan() -> PlanView {
    PlanView {
        schema: PLAN_VIEW_SCHEMA,
        bottle: "payments".into(),
        agent: AgentView {
            name: "claude".into(),
            image: "context:agent".into(),
            env: vec!["HTTPS_PROXY".into(), "CLAUDE_CODE_OAUTH_TOKEN".into()],
            no_proxy: vec!["localhost".into()],
            proxy: Some("http://egress-proxy:9099".into()),
        },
        runtime: runtime(
            "auto",
            Some("runsc"),
            &["io.containerd.runc.v2", "runc", "runsc"],
        ),
        sidecars: vec![SidecarView {
            name: "egress-proxy".into(),
            plugin: "egress-proxy".into(),
            image: "context:egress-proxy".into(),
            networks: vec!["internal".into(), "egress".into()],
            aliases: vec!["egress-proxy".into()],
            port: Some(9099),
            env: vec!["GH_TOKEN".into(), "CLAUDE_CODE_OAUTH_TOKEN".into()],
            secrets: vec!["GH_TOKEN".into(), "CLAUDE_CODE_OAUTH_TOKEN".into()],
            ..SidecarView::default()
        }],
        egress: vec![
            EgressView {
                host: "api.anthropic.com".into(),
                reason: "agent claude; route".into(),
                credentialed: true,
                passthrough: false,
            },
            EgressView {
                host: "api.github.com".into(),
                reason: "route".into(),
                credentialed: true,
                passthrough: false,
            },
        ],
        routes: vec![
            route(
                "api.anthropic.com",
                &["/v1/messages", "/api/oauth/"],
                Some("CLAUDE_CODE_OAUTH_TOKEN"),
            ),
            route(
                "api.github.com",
                &["/repos/acme/payments/"],
                Some("GH_TOKEN"),
            ),
            // No token: a route that only restricts paths is not a credential route.
            route("docs.example.com", &[], None),
        ],
        grants: Vec::new(),
        plugins: vec![PluginView {
            name: "egress-proxy".into(),
            version: "0.1.0".into(),
            source: sources::BUILT_IN.into(),
            wit: "0.1.0".into(),
        }],
        secrets: vec!["GH_TOKEN".into(), "CLAUDE_CODE_OAUTH_TOKEN".into()],
    }
}

fn check(plan: &PlanView) -> Vec<Violation> {
    CredentialHygiene::check(plan)
}

fn found(violations: &[Violation]) -> Vec<(&str, &str)> {
    violations
        .iter()
        .map(|v| (v.rule.as_str(), v.subject.as_str()))
        .collect()
}

#[test]
fn a_tidy_plan_is_allowed() {
    assert_eq!(check(&allowed_plan()), []);
    assert_eq!(check(&PlanView::default()), []);
}

#[test]
fn a_credential_route_without_paths_is_a_violation() {
    let mut plan = allowed_plan();
    plan.routes[1].path_allowlist.clear();
    let violations = check(&plan);
    assert_eq!(
        found(&violations),
        [("route-path-allowlist", "/routes/1/path_allowlist")]
    );
    let message = &violations[0].message;
    assert!(message.contains("`api.github.com`"), "{message}");
    assert!(message.contains("secret `GH_TOKEN`"), "{message}");
    assert!(message.contains("`egress_proxy.routes`"), "{message}");
    assert!(message.contains("path_allowlist"), "{message}");
}

#[test]
fn a_path_prefix_that_allows_every_path_is_a_violation() {
    let mut plan = allowed_plan();
    plan.routes[0].path_allowlist.push("/".into());
    plan.routes[1].path_allowlist = vec![" ".into()];
    let violations = check(&plan);
    assert_eq!(
        found(&violations),
        [
            ("route-path-allowlist", "/routes/0/path_allowlist/2"),
            ("route-path-allowlist", "/routes/1/path_allowlist/0"),
        ]
    );
    assert!(violations[0].message.contains("prefix `/`"));
}

#[test]
fn routes_without_a_token_may_allow_every_path() {
    let mut plan = allowed_plan();
    plan.routes.push(route("pypi.org", &["/"], None));
    assert_eq!(check(&plan), []);
}

#[test]
fn runc_is_refused_when_runsc_is_available() {
    let mut plan = allowed_plan();
    plan.runtime = runtime("runc", Some("runc"), &["runc", "runsc"]);
    let violations = check(&plan);
    assert_eq!(
        found(&violations),
        [("no-runc-when-runsc", "/runtime/requested")]
    );
    assert!(violations[0].message.contains("`runtime: runc`"));

    plan.runtime = runtime("auto", Some("runc"), &["runc", "runsc"]);
    assert_eq!(
        found(&check(&plan)),
        [("no-runc-when-runsc", "/runtime/chosen")]
    );

    // Asked for, before the host has chosen.
    plan.runtime = runtime("runc", None, &["runc", "runsc"]);
    assert_eq!(
        found(&check(&plan)),
        [("no-runc-when-runsc", "/runtime/requested")]
    );

    // Spelling does not matter.
    plan.runtime = runtime(" RUNC ", None, &["runc", "RunSC"]);
    assert_eq!(
        found(&check(&plan)),
        [("no-runc-when-runsc", "/runtime/requested")]
    );
}

#[test]
fn runc_is_fine_without_runsc() {
    let mut plan = allowed_plan();
    for rt in [
        runtime("runc", Some("runc"), &["runc"]),
        runtime("auto", Some("runc"), &["runc"]),
        // The engine's runtimes are unknown: the rule says nothing rather than guess.
        runtime("runc", None, &[]),
        runtime("auto", None, &["runc", "runsc"]),
        runtime("runsc", Some("runsc"), &["runc", "runsc"]),
    ] {
        plan.runtime = rt.clone();
        assert_eq!(check(&plan), [], "{rt:?}");
    }
}

#[test]
fn both_rules_report_together() {
    let mut plan = allowed_plan();
    plan.routes[0].path_allowlist.clear();
    plan.runtime = runtime("runc", Some("runc"), &["runc", "runsc"]);
    let violations = check(&plan);
    assert_eq!(
        found(&violations),
        [
            ("route-path-allowlist", "/routes/0/path_allowlist"),
            ("no-runc-when-runsc", "/runtime/requested"),
        ]
    );
    // Every subject resolves in the JSON the host sends.
    let json = serde_json::to_value(&plan).unwrap();
    for v in &violations {
        assert!(json.pointer(&v.subject).is_some(), "{}", v.subject);
    }
    assert_eq!(
        json.pointer("/routes/0/path_allowlist"),
        Some(&Value::Array(vec![]))
    );
}

#[test]
fn the_exported_check_reads_the_plan_json() {
    let mut plan = allowed_plan();
    plan.routes[1].path_allowlist.clear();
    let json = serde_json::to_string(&plan).unwrap();
    let violations = bottle_plugin_sdk::check_plan::<CredentialHygiene>(&json);
    assert_eq!(
        found(&violations),
        [("route-path-allowlist", "/routes/1/path_allowlist")]
    );
    // A plan whose route lacks its token field is unreadable, not a route without a credential.
    let mut value: Value = serde_json::from_str(&json).unwrap();
    value["routes"][1].as_object_mut().unwrap().remove("token");
    let violations = bottle_plugin_sdk::check_plan::<CredentialHygiene>(&value.to_string());
    assert_eq!(
        found(&violations),
        [(bottle_plugin_sdk::PLAN_UNREADABLE, "/routes/1")]
    );
}
