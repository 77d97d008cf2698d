use serde::Deserialize;
use serde_json::json;

use super::*;

#[derive(Debug, Deserialize, PartialEq)]
struct Route {
    host: String,
    #[serde(default)]
    path_allowlist: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Section {
    routes: Vec<Route>,
}

#[test]
fn parse_section_reads_one_section() {
    let config = json!({
        "egress": {"allowlist": ["pypi.org"]},
        "egress_proxy": {"routes": [{"host": "api.github.com"}]},
    })
    .to_string();
    let section: Section = parse_section(&config, "egress_proxy").unwrap().unwrap();
    assert_eq!(section.routes[0].host, "api.github.com");
}

#[test]
fn parse_section_absent_or_null_is_none() {
    assert!(
        parse_section::<Section>("{}", "egress_proxy")
            .unwrap()
            .is_none()
    );
    let config = json!({"egress_proxy": null}).to_string();
    assert!(
        parse_section::<Section>(&config, "egress_proxy")
            .unwrap()
            .is_none()
    );
}

#[test]
fn parse_section_errors_carry_the_path() {
    let config = json!({"egress_proxy": {"routes": [
        {"host": "a.example"},
        {"host": "b.example", "path_allowlist": ["/ok", 7]},
    ]}})
    .to_string();
    let problems = parse_section::<Section>(&config, "egress_proxy").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "egress_proxy.routes[1].path_allowlist[1]");
    assert!(matches!(problems[0].severity, Severity::Error));
    assert!(
        problems[0].message.contains("invalid type"),
        "{}",
        problems[0].message
    );
    assert!(
        problems[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("`egress_proxy`")
    );

    let config = json!({"egress_proxy": {"routes": [], "rutes": []}}).to_string();
    let problems = parse_section::<Section>(&config, "egress_proxy").unwrap_err();
    assert_eq!(problems[0].path, "egress_proxy.rutes");
    assert!(problems[0].message.contains("unknown field"));

    let config = json!({"egress_proxy": {}}).to_string();
    let problems = parse_section::<Section>(&config, "egress_proxy").unwrap_err();
    assert_eq!(problems[0].path, "egress_proxy");
    assert!(problems[0].message.contains("missing field `routes`"));
}

#[test]
fn parse_section_refuses_a_configuration_that_is_not_an_object() {
    for config in ["", "[]", "{", "3"] {
        let problems = parse_section::<Section>(config, "egress_proxy").unwrap_err();
        assert_eq!(problems[0].path, "", "{config}");
    }
}

/// A policy over [`PlanView`] for the tests below.
struct NoRunc;

impl Policy for NoRunc {
    fn name() -> String {
        "no-runc".into()
    }

    fn check(plan: &PlanView) -> Vec<Violation> {
        if plan.runtime.chosen.as_deref() == Some("runc") {
            vec![Violation::new(
                "no-runc",
                PlanView::pointer_to_runtime("chosen"),
                "runc",
            )]
        } else {
            Vec::new()
        }
    }
}

struct Panics;

impl Policy for Panics {
    fn name() -> String {
        "panics".into()
    }

    fn check(plan: &PlanView) -> Vec<Violation> {
        panic!("no rule for bottle {}", plan.bottle)
    }
}

policy!(NoRunc);

fn plan_json(chosen: Option<&str>) -> String {
    let mut plan = PlanView {
        bottle: "dev".into(),
        ..PlanView::default()
    };
    plan.runtime.requested = "auto".into();
    plan.runtime.chosen = chosen.map(str::to_owned);
    serde_json::to_string(&plan).unwrap()
}

#[test]
fn check_plan_runs_the_policy() {
    assert!(check_plan::<NoRunc>(&plan_json(Some("runsc"))).is_empty());
    let violations = check_plan::<NoRunc>(&plan_json(Some("runc")));
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].subject, "/runtime/chosen");
}

#[test]
fn an_unreadable_plan_is_one_violation() {
    for json in ["", "not json", "[]", r#"{"bottle": "dev"}"#] {
        let violations = check_plan::<NoRunc>(json);
        assert_eq!(violations.len(), 1, "{json}");
        assert_eq!(violations[0].rule, PLAN_UNREADABLE);
        assert_eq!(violations[0].subject, "");
    }
}

#[test]
fn another_schema_is_unreadable() {
    let mut value: serde_json::Value = serde_json::from_str(&plan_json(None)).unwrap();
    value["schema"] = json!(2);
    let violations = check_plan::<NoRunc>(&value.to_string());
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].rule, PLAN_UNREADABLE);
    assert_eq!(violations[0].subject, "/schema");
    assert!(violations[0].message.contains("schema 2"));
    assert!(violations[0].message.contains("schema 1"));
}

#[test]
fn a_malformed_field_is_unreadable_at_its_pointer() {
    let mut value: serde_json::Value = serde_json::from_str(&plan_json(None)).unwrap();
    value["routes"] = json!([{"host": "api.github.com", "path_allowlist": [], "scheme": null}]);
    let violations = check_plan::<NoRunc>(&value.to_string());
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].rule, PLAN_UNREADABLE);
    assert_eq!(violations[0].subject, "/routes/0");
    assert!(violations[0].message.contains("missing field `token`"));

    value["routes"] = json!([]);
    value["sidecars"] = json!([{"name": 3}]);
    let violations = check_plan::<NoRunc>(&value.to_string());
    assert_eq!(violations[0].subject, "/sidecars/0/name");
}

#[test]
fn a_panic_is_a_violation_where_it_can_be_caught() {
    let violations = check_plan::<Panics>(&plan_json(None));
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].rule, POLICY_PANICKED);
    assert!(violations[0].message.contains("`panics`"));
    assert!(violations[0].message.contains("no rule for bottle dev"));
}

#[test]
fn violations_convert_to_the_wit_record() {
    let mut plan: serde_json::Value = serde_json::from_str(&plan_json(Some("runc"))).unwrap();
    plan["bottle"] = json!("x");
    let out = __check_for_host::<NoRunc>(&plan.to_string());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rule, "no-runc");
    assert_eq!(out[0].subject, "/runtime/chosen");
    assert!(out[0].properties.is_empty());
}
