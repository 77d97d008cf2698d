use bottle_plugin_sdk::plan_view::{
    AgentView, EgressView, GrantView, HostEntryView, PLAN_VIEW_SCHEMA, PluginView, RouteView,
    RuntimeView, SidecarView, grant_kinds, runtimes, sources,
};
use serde_json::Value;

use super::*;

fn egress(host: &str, reason: &str) -> EgressView {
    EgressView {
        host: host.into(),
        reason: reason.into(),
        credentialed: false,
        passthrough: false,
    }
}

fn sidecar(name: &str, aliases: &[&str]) -> SidecarView {
    SidecarView {
        name: name.into(),
        plugin: name.into(),
        image: format!("context:{name}"),
        networks: vec!["internal".into(), "egress".into()],
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        port: Some(9099),
        ..SidecarView::default()
    }
}

/// A plan like the host's for a Python project: the egress proxy with a GitHub route, the git
/// gate, package indexes in the allowlist, and a third-party audit plugin with an egress grant.
fn allowed_plan() -> PlanView {
    PlanView {
        schema: PLAN_VIEW_SCHEMA,
        bottle: "python-dev".into(),
        agent: AgentView {
            name: "claude".into(),
            image: "context:agent".into(),
            env: vec!["HTTPS_PROXY".into(), "CLAUDE_CODE_OAUTH_TOKEN".into()],
            no_proxy: vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
                "git-gate".into(),
                ".internal.example".into(),
                "10.0.0.0/8".into(),
            ],
            proxy: Some("http://egress-proxy:9099".into()),
        },
        runtime: RuntimeView {
            requested: runtimes::AUTO.into(),
            chosen: Some(runtimes::RUNSC.into()),
            available: vec!["runc".into(), "runsc".into()],
        },
        sidecars: vec![
            sidecar("egress-proxy", &["egress-proxy"]),
            SidecarView {
                extra_hosts: vec![HostEntryView {
                    host: "proxy.internal.example".into(),
                    ip: "172.30.0.2".into(),
                }],
                ..sidecar("git-gate", &["git-gate"])
            },
        ],
        egress: vec![
            egress("*.githubusercontent.com", "allowlist"),
            egress("*.pythonhosted.org", "allowlist"),
            egress("api.anthropic.com", "agent claude"),
            egress("api.github.com", "route"),
            egress("audit.acme.example", "plugin acme-audit"),
            egress("github.com", "plugin git-gate"),
            egress("pypi.org", "allowlist"),
            // Near misses: not the denied sites.
            egress("notpastebin.com", "allowlist"),
            egress("pastebin.com.example.org", "allowlist"),
            egress("ngrok.com", "allowlist"),
        ],
        routes: vec![RouteView {
            host: "api.github.com".into(),
            path_allowlist: vec!["/repos/acme/app/".into()],
            token: Some("GH_TOKEN".into()),
            scheme: Some("token".into()),
        }],
        grants: vec![GrantView {
            plugin: "acme-audit".into(),
            kind: grant_kinds::EGRESS.into(),
            value: "audit.acme.example".into(),
        }],
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
    DenyHosts::check(plan)
}

fn subjects(violations: &[Violation]) -> Vec<&str> {
    violations.iter().map(|v| v.subject.as_str()).collect()
}

#[test]
fn a_plan_without_paste_sites_is_allowed() {
    assert_eq!(check(&allowed_plan()), []);
    assert_eq!(check(&PlanView::default()), []);
}

#[test]
fn a_paste_site_in_the_egress_allowlist_is_a_violation() {
    let mut plan = allowed_plan();
    plan.egress.push(egress("pastebin.com", "allowlist"));
    let violations = check(&plan);
    assert_eq!(subjects(&violations), ["/egress/10/host"]);
    let v = &violations[0];
    assert_eq!(v.rule, "no-paste-sites");
    assert!(v.message.contains("`pastebin.com`"), "{}", v.message);
    assert!(v.message.contains("egress allowlist"), "{}", v.message);
    assert!(
        v.message
            .contains("remove `pastebin.com` from the bottle's egress allowlist"),
        "{}",
        v.message
    );
    assert!(
        v.message
            .starts_with("`pastebin.com` in the bottle's egress allowlist matches `pastebin.com`"),
        "{}",
        v.message
    );
    assert_eq!(v.properties[0].value, "pastebin.com");
    assert_eq!(v.properties[1].value, "pastebin.com");
}

#[test]
fn globs_that_reach_a_paste_site_are_violations() {
    for host in [
        "*.pastebin.com",
        "www.pastebin.com",
        "PasteBin.COM.",
        "*.com",
        "*",
        "*bin.com",
        "paste*",
        "ghostbin.co",
        "dpaste.org",
        "eo1234.m.pipedream.net",
        "abc123.ngrok.io",
        "*.io",
        "files.catbox.moe",
        "[transfer.sh]",
        "0x0.st:443",
    ] {
        let mut plan = allowed_plan();
        plan.egress.push(egress(host, "allowlist"));
        let violations = check(&plan);
        assert_eq!(subjects(&violations), ["/egress/10/host"], "{host}");
    }
}

#[test]
fn wildcards_are_told_to_narrow() {
    let mut plan = allowed_plan();
    plan.egress.push(egress("*.com", "allowlist"));
    let message = &check(&plan)[0].message;
    assert!(message.contains("narrow it"), "{message}");
    for host in ["paste.ee", "*.paste.ee", "*.x.paste.ee"] {
        let mut plan = allowed_plan();
        plan.egress.push(egress(host, "allowlist"));
        let message = &check(&plan)[0].message;
        assert!(!message.contains("narrow it"), "{message}");
    }
}

#[test]
fn every_place_in_the_plan_is_checked() {
    let mut plan = allowed_plan();
    plan.routes.push(RouteView {
        host: "pastebin.com".into(),
        path_allowlist: vec!["/api/".into()],
        token: Some("PASTEBIN_KEY".into()),
        scheme: Some("Bearer".into()),
    });
    plan.grants.push(GrantView {
        plugin: "sharer".into(),
        kind: grant_kinds::EGRESS.into(),
        value: "0x0.st".into(),
    });
    // A host-path grant whose value happens to look like a host is not a host.
    plan.grants.push(GrantView {
        plugin: "sharer".into(),
        kind: grant_kinds::HOST_PATH.into(),
        value: "transfer.sh".into(),
    });
    plan.agent.no_proxy.push(".paste.ee".into());
    plan.sidecars[1].aliases.push("transfer.sh".into());
    plan.sidecars[1].extra_hosts.push(HostEntryView {
        host: "termbin.com".into(),
        ip: "172.30.0.9".into(),
    });
    let violations = check(&plan);
    assert_eq!(
        subjects(&violations),
        [
            "/routes/1/host",
            "/grants/1/value",
            "/agent/no_proxy/6",
            "/sidecars/1/aliases/1",
            "/sidecars/1/extra_hosts/1/host",
        ]
    );
    let messages: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
    assert!(
        messages[0].contains("egress_proxy.routes"),
        "{}",
        messages[0]
    );
    assert!(messages[1].contains("plugin `sharer`"), "{}", messages[1]);
    assert!(messages[2].contains("NO_PROXY"), "{}", messages[2]);
    assert!(
        messages[3].contains("sidecar `git-gate`"),
        "{}",
        messages[3]
    );
    assert!(messages[4].contains("/etc/hosts"), "{}", messages[4]);

    // Every subject resolves to the offending host in the JSON the host sends.
    let json = serde_json::to_value(&plan).unwrap();
    for v in &violations {
        let at = json.pointer(&v.subject).and_then(Value::as_str);
        assert!(at.is_some(), "{} does not resolve", v.subject);
        assert_eq!(at, Some(v.properties[0].value.as_str()));
    }
}

#[test]
fn the_exported_check_reads_the_plan_json() {
    let mut plan = allowed_plan();
    plan.egress.push(egress("*.pastebin.com", "allowlist"));
    let json = serde_json::to_string(&plan).unwrap();
    let violations = bottle_plugin_sdk::check_plan::<DenyHosts>(&json);
    assert_eq!(subjects(&violations), ["/egress/10/host"]);
    let unreadable = bottle_plugin_sdk::check_plan::<DenyHosts>("{}");
    assert_eq!(unreadable[0].rule, bottle_plugin_sdk::PLAN_UNREADABLE);
}

#[test]
fn an_organisation_can_check_its_own_list() {
    let mut plan = allowed_plan();
    plan.egress.push(egress("files.example.net", "allowlist"));
    assert_eq!(check(&plan), []);
    let violations = check_hosts(&plan, &["example.net"]);
    assert_eq!(subjects(&violations), ["/egress/10/host"]);
    assert_eq!(violations[0].properties[1].value, "example.net");
}

#[test]
fn overlap() {
    let yes = [
        ("pastebin.com", "pastebin.com"),
        ("a.b.pastebin.com", "pastebin.com"),
        ("*.pastebin.com", "pastebin.com"),
        ("*.com", "pastebin.com"),
        ("*", "pastebin.com"),
        ("pastebin.*", "pastebin.com"),
        ("*bin.com", "pastebin.com"),
        ("ngrok.io", "ngrok.io"),
        ("x.ngrok.io", "ngrok.io"),
        ("*.io", "ngrok.io"),
        ("*-free.app", "ngrok-free.app"),
        // A deny entry written as a glob is read like a plan entry.
        ("ngrok.io", "*.ngrok.io"),
        ("x.ngrok.io", "*.ngrok.io"),
    ];
    for (pattern, denied) in yes {
        assert!(overlaps(pattern, denied), "{pattern} vs {denied}");
    }
    let no = [
        ("notpastebin.com", "pastebin.com"),
        ("pastebin.com.example.org", "pastebin.com"),
        ("*.example.org", "pastebin.com"),
        ("pastebin.org", "pastebin.com"),
        ("ngrok.com", "ngrok.io"),
        ("*.githubusercontent.com", "ngrok.io"),
        ("*.net", "ghostbin.co"),
        ("", "pastebin.com"),
    ];
    for (pattern, denied) in no {
        assert!(!overlaps(pattern, denied), "{pattern} vs {denied}");
    }
}

#[test]
fn star_reaches_one_label_as_in_the_proxy() {
    // The proxy lets `registry.*.org` reach `registry.npmjs.org` (a subdomain of `npmjs.org`) but
    // never `registry.x.evil.example.org`; the old any-run glob said both.
    assert!(overlaps("registry.*.org", "npmjs.org"));
    assert!(!overlaps("registry.*.org", "evil.example.org"));
    assert!(!overlaps("*.org", "paste.mozilla.org"));
    assert!(overlaps("*.*.org", "paste.mozilla.org"));
    // NO_PROXY entries cover every depth, as HTTP clients read them.
    assert!(no_proxy_overlaps("*.org", "paste.mozilla.org"));
    assert!(no_proxy_overlaps("paste.mozilla.org", "mozilla.org"));
    assert!(no_proxy_overlaps("x.paste.ee", "paste.ee"));
    assert!(!no_proxy_overlaps("*.example.org", "paste.mozilla.org"));
    assert!(no_proxy_overlaps("*", "paste.ee"));
}

#[test]
fn the_deny_list_is_well_formed() {
    for entry in DENY_LIST {
        assert_eq!(*entry, normalise(entry), "{entry} is not normalised");
        assert!(
            entry.contains('.')
                && entry.split('.').all(|label| !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')),
            "{entry} is not a domain"
        );
        // Every entry denies itself and its subdomains.
        assert!(overlaps(entry, entry), "{entry}");
        assert!(overlaps(&format!("www.{entry}"), entry), "{entry}");
        assert!(overlaps(&format!("*.{entry}"), entry), "{entry}");
    }
}
