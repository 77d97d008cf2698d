//! The `egress_proxy` and `egress` sections, and claude-bottle's `cred_proxy`.

use crate::common::{Fixture, assert_problem, problem};

fn route(body: &str) -> String {
    format!("egress_proxy:\n  routes:\n    - host: api.github.com\n{body}")
}

#[test]
fn a_misspelt_section_suggests_egress_proxy() {
    let fx = Fixture::new();
    let p = problem(fx.bottle("supervise: true\negres_proxy:\n  routes: []\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["unknown key `egres_proxy` in the bottle manifest; did you mean `egress_proxy`?"],
    );
}

#[test]
fn unknown_keys_in_routes_and_auth_are_refused() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(&route("      hots: x\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["unknown key `hots` in egress_proxy.routes[0]"],
    );
    let p = problem(fx.bottle(&route(
        "      auth:\n        scheme: token\n        token_env: GH\n",
    )));
    assert_problem(
        &p,
        &fx.bottle_path(),
        7,
        &["unknown key `token_env` in egress_proxy.routes[0].auth; did you mean `token_ref`?"],
    );
    let p = problem(fx.bottle("egress_proxy:\n  route: []\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["in egress_proxy; did you mean `routes`?"],
    );
    let p = problem(fx.bottle("egress:\n  allow_list: [a.com]\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["in egress; did you mean `allowlist`?"],
    );
    let p = problem(fx.bottle("egress:\n  zzz: 1\n"));
    assert!(p.message.ends_with("unknown key `zzz` in egress"), "{p}");
    assert!(
        p.hint
            .as_deref()
            .unwrap()
            .contains("`firewall`, `allowlist`, `pipelock_image`")
    );
}

#[test]
fn an_empty_auth_is_refused() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(&route("      auth: {}\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["egress_proxy.routes[0].auth is empty", "remove `auth`"],
    );
}

#[test]
fn half_an_auth_pair_says_which_half_is_missing() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(&route("      auth:\n        scheme: Bearer\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        6,
        &["has `scheme` but no `token_ref`", "add `token_ref: "],
    );
    let p = problem(fx.bottle(&route("      auth: {token_ref: GH_TOKEN}\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &[
            "has `token_ref` but no `scheme`",
            "`scheme: Bearer` or `scheme: token`",
        ],
    );
}

#[test]
fn schemes_are_bearer_or_token() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(&route("      auth: {scheme: basic, token_ref: X}\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &[
            "auth.scheme",
            "`basic` is not an auth scheme",
            "`Bearer` or `token`",
        ],
    );
}

#[test]
fn token_refs_are_variable_names() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(&route(
        "      auth: {scheme: token, token_ref: \"${GH}\"}\n",
    )));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["auth.token_ref", "not a valid environment variable"],
    );
}

#[test]
fn route_hosts_are_bare_lowercase_names() {
    let fx = Fixture::new();
    for (host, fix) in [
        ("https://api.github.com/", "`api.github.com`"),
        ("api.github.com:443", "`api.github.com`"),
        ("API.GitHub.com/repos", "`api.github.com`"),
    ] {
        let yaml = format!("egress_proxy:\n  routes:\n    - host: {host}\n");
        let p = problem(fx.bottle(&yaml));
        assert_problem(
            &p,
            &fx.bottle_path(),
            4,
            &[
                "egress_proxy.routes[0].host",
                "is not a bare host name",
                fix,
            ],
        );
    }
    let p = problem(fx.bottle("egress_proxy:\n  routes:\n    - host: \"a b\"\n"));
    assert!(p.message.contains("not a valid host name"), "{p}");
    let p = problem(fx.bottle("egress_proxy:\n  routes:\n    - path_allowlist: [/x/]\n"));
    assert!(p.message.contains("missing key `host`"), "{p}");
}

#[test]
fn route_methods_are_http_methods_never_trace() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(&route("      methods: [GET, \"PO ST\"]\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["methods[1]", "`PO ST` is not an HTTP method", "`POST`"],
    );
    let p = problem(fx.bottle(&route("      methods: [GET, trace]\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["methods[1]", "`TRACE` is never allowed on a route"],
    );
    let p = problem(fx.bottle(&route("      methods: []\n")));
    assert!(p.message.contains("methods is an empty list"), "{p}");
}

#[test]
fn path_allowlists_hold_absolute_prefixes() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(&route(
        "      path_allowlist:\n        - /ok/\n        - repos/\n",
    )));
    assert_problem(
        &p,
        &fx.bottle_path(),
        7,
        &[
            "path_allowlist[1]",
            "`repos/` is not a path prefix",
            "`/repos/`",
        ],
    );
    let p = problem(fx.bottle(&route("      path_allowlist: []\n")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["path_allowlist is an empty list"],
    );
}

#[test]
fn a_host_with_two_routes_is_refused_at_the_second() {
    let fx = Fixture::new();
    let yaml = "egress_proxy:\n  routes:\n    - host: api.github.com\n    - host: x.com\n    \
                - host: API.github.com\n      auth: {scheme: token, token_ref: B}\n";
    let p = problem(fx.bottle(yaml));
    assert_problem(
        &p,
        &fx.bottle_path(),
        6,
        &[
            "egress_proxy.routes[2].host",
            "`api.github.com` has two routes",
            "merge them",
        ],
    );
}

#[test]
fn cred_proxy_prints_the_egress_proxy_equivalent() {
    let fx = Fixture::new();
    let yaml = "supervise: true\ncred_proxy:\n  routes:\n    - host: api.github.com\n      \
                scheme: token\n      token_env: GH_TOKEN\n      path_allowlist: [/repos/acme/]\n    \
                - host: api.anthropic.com\n      auth: {scheme: bearer, env: ANTHROPIC_API_KEY}\n      \
                timeout: 30\n";
    let p = problem(fx.bottle(yaml));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &[
            "`cred_proxy`",
            "`egress_proxy`",
            "replace the `cred_proxy:` block",
        ],
    );
    let hint = p.hint.unwrap();
    let expected = "egress_proxy:\n  routes:\n    - host: api.github.com\n      auth:\n        \
                    scheme: token\n        token_ref: GH_TOKEN\n      path_allowlist:\n        \
                    - /repos/acme/\n    - host: api.anthropic.com\n      auth:\n        \
                    scheme: Bearer\n        token_ref: ANTHROPIC_API_KEY\n      \
                    # not converted: `timeout`";
    assert!(hint.ends_with(expected), "{hint}");
}

#[test]
fn the_converted_cred_proxy_block_parses() {
    let fx = Fixture::new();
    let p = problem(fx.bottle(
        "cred_proxy:\n  routes:\n    - host: api.github.com\n      auth: {scheme: token, token_ref: GH}\n",
    ));
    let hint = p.hint.unwrap();
    let block = &hint[hint.find("egress_proxy:").unwrap()..];
    let bottle = fx.bottle(&format!("{block}\n")).unwrap();
    assert_eq!(bottle.egress_proxy.routes[0].host, "api.github.com");
    assert_eq!(
        bottle.egress_proxy.routes[0]
            .auth
            .as_ref()
            .unwrap()
            .token_ref,
        "GH"
    );
}

#[test]
fn allowlists_hold_hosts_and_globs() {
    let fx = Fixture::new();
    let bottle = fx
        .bottle("egress:\n  allowlist:\n    - PyPI.org\n    - \"*.npmjs.org\"\n")
        .unwrap();
    assert_eq!(bottle.egress.allowlist, ["pypi.org", "*.npmjs.org"]);
    let p = problem(fx.bottle("egress:\n  allowlist:\n    - pypi.org\n    - https://x.com\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["egress.allowlist[1]", "`x.com`"],
    );
    // `*` is one whole label, anywhere in the name.
    let bottle = fx
        .bottle("egress:\n  allowlist: [\"registry.*.org\"]\n")
        .unwrap();
    assert_eq!(bottle.egress.allowlist, ["registry.*.org"]);
    let p = problem(fx.bottle("egress:\n  allowlist: [\"api-*.x.com\"]\n"));
    assert!(p.message.contains("not a valid host pattern"), "{p}");
    assert!(p.to_string().contains("one whole label"), "{p}");
    let p = problem(fx.bottle("egress:\n  allowlist: [a.com, a.com]\n"));
    assert!(p.message.contains("`a.com` is listed twice"), "{p}");
}

#[test]
fn upstream_cas_and_private_ranges_are_checked() {
    let fx = Fixture::new();
    let ca = fx.user_home.join("corp-ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let yaml = format!(
        "egress_proxy:\n  upstream_ca: [{}]\n  allow_cidrs: [10.20.0.0/16, \"fd00::/8\"]\n",
        ca.display()
    );
    let bottle = fx.bottle(&yaml).unwrap();
    assert_eq!(bottle.egress_proxy.upstream_ca, [ca]);
    assert_eq!(
        bottle.egress_proxy.allow_cidrs,
        ["10.20.0.0/16", "fd00::/8"]
    );
    let p = problem(fx.bottle("egress_proxy:\n  upstream_ca: [/nowhere/ca.pem]\n"));
    assert!(
        p.message.contains("is not a file") && p.message.contains("upstream_ca"),
        "{p}"
    );
    for bad in ["10.0.0.0", "10.0.0.0/33", "example.com/8"] {
        let p = problem(fx.bottle(&format!("egress_proxy:\n  allow_cidrs: [\"{bad}\"]\n")));
        assert!(p.message.contains("is not a CIDR"), "{bad}: {p}");
    }
}

#[test]
fn claude_bottles_dlp_action_becomes_dlp_patterns() {
    use bottle_manifest::DlpAction;
    let fx = Fixture::new();
    let default = fx.bottle("supervise: false\n").unwrap();
    assert_eq!(default.egress_proxy.dlp_patterns, DlpAction::Block);
    let legacy = fx.bottle("egress:\n  dlp_action: warn\n").unwrap();
    assert_eq!(legacy.egress_proxy.dlp_patterns, DlpAction::Warn);
    assert_eq!(legacy.egress.dlp_action, None, "moved, not kept twice");
    let new = fx.bottle("egress_proxy:\n  dlp_patterns: warn\n").unwrap();
    assert_eq!(new.egress_proxy.dlp_patterns, DlpAction::Warn);
    let agree = "egress:\n  dlp_action: warn\negress_proxy:\n  dlp_patterns: warn\n";
    assert_eq!(
        fx.bottle(agree).unwrap().egress_proxy.dlp_patterns,
        DlpAction::Warn
    );
    let p =
        problem(fx.bottle("egress_proxy:\n  dlp_patterns: block\negress:\n  dlp_action: warn\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        5,
        &["contradicts `egress_proxy.dlp_patterns`", "bottle migrate"],
    );
    let p = problem(fx.bottle("egress:\n  dlp_action: allow\n"));
    assert!(p.to_string().contains("allow"), "{p}");
}
