//! Bottle manifests: the whole format, env, runtime, plugin sections, images.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bottle_manifest::{Auth, AuthScheme, EnvValue, Firewall, Route, Runtime, Source, SshUrl};
use serde_json::json;

use crate::common::{Fixture, GITHUB_KEY, assert_problem, problem};

fn plugins(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A bottle in the style of claude-bottle's, using every key.
fn realistic(fx: &Fixture) -> String {
    fx.user_file(".ssh/deploy_app");
    fx.user_file(".ssh/deploy_infra");
    format!(
        r#"---
# Development bottle for the app monorepo.
env:
  CLAUDE_CODE_OAUTH_TOKEN: "${{CLAUDE_CODE_OAUTH_TOKEN}}"
  GH_TOKEN: "?GitHub token with repo scope"
  NPM_TOKEN: "?"
  NODE_ENV: development
  PORT: 8080
  DEBUG: false
git:
  - Name: app
    Upstream: ssh://git@github.com/acme/app.git
    IdentityFile: ~/.ssh/deploy_app
    KnownHostKey: {GITHUB_KEY}
    protected: [main, "release/*"]
    allowed_refs: ["refs/heads/agent/*"]
  - Name: infra
    Upstream: ssh://deploy@git.acme.internal:2222/srv/infra.git
    IdentityFile: ~/.ssh/deploy_infra
    KnownHostKey: {GITHUB_KEY} infra-host
    ExtraHosts:
      git.acme.internal: 10.1.2.3
    allow_force_push: true
    allow_delete: true
egress_proxy:
  routes:
    - host: API.GitHub.com
      auth:
        scheme: token
        token_ref: GH_TOKEN
      path_allowlist: [/repos/acme/, /user]
    - host: api.anthropic.com
      auth: {{scheme: Bearer, token_ref: CLAUDE_CODE_OAUTH_TOKEN}}
      methods: [GET, post]
    - host: registry.npmjs.org
egress:
  firewall: pipelock
  allowlist: [pypi.org, "*.PythonHosted.org"]
  pipelock_image: ghcr.io/acme/pipelock:2.3.1
supervise: true
dockerfile: docker/agent.Dockerfile
runtime: runsc
metrics:
  endpoint: https://metrics.acme.internal
  labels: {{team: platform, tier: 2}}
---

# Dev bottle

Ask Sam before adding upstreams.
"#
    )
}

#[test]
fn a_realistic_bottle_with_every_key_parses() {
    let fx = Fixture::new();
    let path = fx.bottle_file("dev", &realistic(&fx));
    let bottle = fx.catalog().bottle("dev", &plugins(&["metrics"])).unwrap();

    assert_eq!(bottle.name, "dev");
    assert_eq!(bottle.path.as_deref(), Some(path.as_path()));
    assert_eq!(bottle.source, Source::Home);
    assert_eq!(
        bottle.notes,
        "# Dev bottle\n\nAsk Sam before adding upstreams."
    );

    let env: BTreeMap<&str, EnvValue> = [
        (
            "CLAUDE_CODE_OAUTH_TOKEN",
            EnvValue::Host("CLAUDE_CODE_OAUTH_TOKEN".into()),
        ),
        ("DEBUG", EnvValue::Literal("false".into())),
        (
            "GH_TOKEN",
            EnvValue::Prompt {
                prompt: Some("GitHub token with repo scope".into()),
            },
        ),
        ("NODE_ENV", EnvValue::Literal("development".into())),
        ("NPM_TOKEN", EnvValue::Prompt { prompt: None }),
        ("PORT", EnvValue::Literal("8080".into())),
    ]
    .into_iter()
    .collect();
    let got: BTreeMap<&str, EnvValue> = bottle
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(got, env);

    let [app, infra] = bottle.git.as_slice() else {
        panic!("two git entries expected: {:?}", bottle.git);
    };
    assert_eq!(app.name, "app");
    assert_eq!(
        app.upstream,
        SshUrl::parse("ssh://git@github.com/acme/app.git").unwrap()
    );
    assert_eq!(app.identity_file, fx.user_home.join(".ssh/deploy_app"));
    assert_eq!(app.known_host_key, GITHUB_KEY);
    assert_eq!(app.protected, ["main", "release/*"]);
    assert_eq!(app.allowed_refs, ["refs/heads/agent/*"]);
    assert!(!app.allow_force_push && !app.allow_delete);
    assert!(app.extra_hosts.is_empty());
    assert_eq!(infra.upstream.user, "deploy");
    assert_eq!(infra.upstream.host, "git.acme.internal");
    assert_eq!(infra.upstream.port, Some(2222));
    assert_eq!(infra.upstream.path, "/srv/infra.git");
    assert_eq!(
        infra.extra_hosts.get("git.acme.internal"),
        Some(&"10.1.2.3".parse::<IpAddr>().unwrap())
    );
    assert!(infra.allow_force_push && infra.allow_delete);

    assert_eq!(
        bottle.egress_proxy.routes,
        [
            Route {
                host: "api.github.com".into(),
                auth: Some(Auth {
                    scheme: AuthScheme::Token,
                    token_ref: "GH_TOKEN".into()
                }),
                path_allowlist: Some(vec!["/repos/acme/".into(), "/user".into()]),
                methods: None,
            },
            Route {
                host: "api.anthropic.com".into(),
                auth: Some(Auth {
                    scheme: AuthScheme::Bearer,
                    token_ref: "CLAUDE_CODE_OAUTH_TOKEN".into()
                }),
                path_allowlist: None,
                methods: Some(vec!["GET".into(), "POST".into()]),
            },
            Route {
                host: "registry.npmjs.org".into(),
                auth: None,
                path_allowlist: None,
                methods: None,
            },
        ]
    );
    assert_eq!(bottle.egress.firewall, Firewall::Pipelock);
    assert_eq!(bottle.egress.allowlist, ["pypi.org", "*.pythonhosted.org"]);
    assert_eq!(
        bottle.egress.pipelock_image.as_deref(),
        Some("ghcr.io/acme/pipelock:2.3.1")
    );
    assert!(bottle.supervise);
    assert_eq!(bottle.image, None);
    assert_eq!(
        bottle.dockerfile,
        Some(fx.home.join("bottles/docker/agent.Dockerfile"))
    );
    assert_eq!(bottle.runtime, Runtime::Runsc);
    assert_eq!(
        bottle.sections["metrics"],
        json!({"endpoint": "https://metrics.acme.internal", "labels": {"team": "platform", "tier": 2}})
    );

    let secrets: Vec<String> = bottle.secret_names().into_iter().collect();
    assert_eq!(
        secrets,
        ["CLAUDE_CODE_OAUTH_TOKEN", "GH_TOKEN", "NPM_TOKEN"]
    );
}

#[test]
fn bottles_serialize_with_manifest_key_names() {
    let fx = Fixture::new();
    fx.bottle_file("dev", &realistic(&fx));
    let bottle = fx.catalog().bottle("dev", &plugins(&["metrics"])).unwrap();
    let value = serde_json::to_value(&bottle).unwrap();

    let infra = &value["git"][1];
    assert_eq!(infra["Name"], "infra");
    assert_eq!(
        infra["Upstream"],
        "ssh://deploy@git.acme.internal:2222/srv/infra.git"
    );
    assert_eq!(
        infra["IdentityFile"],
        fx.user_home.join(".ssh/deploy_infra").display().to_string()
    );
    assert!(
        infra["KnownHostKey"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 ")
    );
    assert_eq!(
        infra["ExtraHosts"],
        json!({"git.acme.internal": "10.1.2.3"})
    );
    assert_eq!(infra["protected"], json!([]));
    assert_eq!(infra["allow_force_push"], true);
    assert_eq!(infra["allowed_refs"], json!([]));
    assert_eq!(infra["allow_delete"], true);

    assert_eq!(
        value["egress_proxy"]["routes"][0],
        json!({
            "host": "api.github.com",
            "auth": {"scheme": "token", "token_ref": "GH_TOKEN"},
            "path_allowlist": ["/repos/acme/", "/user"],
        })
    );
    assert_eq!(
        value["egress_proxy"]["routes"][1]["auth"]["scheme"],
        "Bearer"
    );
    assert_eq!(
        value["egress_proxy"]["routes"][2]["path_allowlist"],
        json!(null)
    );
    assert_eq!(value["egress"]["firewall"], "pipelock");
    assert_eq!(value["runtime"], "runsc");
    assert_eq!(value["supervise"], true);
    assert_eq!(value["source"], "home");
    assert_eq!(value["env"]["NPM_TOKEN"], json!({"prompt": null}));
    assert_eq!(
        value["env"]["CLAUDE_CODE_OAUTH_TOKEN"],
        json!({"host": "CLAUDE_CODE_OAUTH_TOKEN"})
    );
    assert_eq!(value["env"]["PORT"], json!({"literal": "8080"}));
    assert_eq!(value["sections"]["metrics"]["labels"]["tier"], 2);
}

#[test]
fn an_empty_frontmatter_gives_every_default() {
    let fx = Fixture::new();
    let bottle = fx.bottle("").unwrap();
    assert!(bottle.env.is_empty() && bottle.git.is_empty() && bottle.sections.is_empty());
    assert!(bottle.egress_proxy.routes.is_empty());
    assert_eq!(bottle.egress.firewall, Firewall::Builtin);
    assert!(bottle.egress.allowlist.is_empty());
    assert_eq!(bottle.egress.pipelock_image, None);
    assert!(!bottle.supervise);
    assert_eq!(bottle.runtime, Runtime::Auto);
    assert_eq!((bottle.image, bottle.dockerfile), (None, None));
    assert_eq!(bottle.notes, "notes");

    // Empty and null sections mean the same.
    let bottle = fx
        .bottle("env:\ngit: ~\negress_proxy: {}\negress: null\nruntime:\n")
        .unwrap();
    assert_eq!(bottle.runtime, Runtime::Auto);
    let value = serde_json::to_value(fx.bottle("").unwrap()).unwrap();
    assert_eq!(
        value["egress"],
        json!({"firewall": "builtin", "allowlist": [], "pipelock_image": null})
    );
    assert_eq!(
        value["egress_proxy"],
        json!({"routes": [], "upstream_ca": [], "allow_cidrs": [], "dlp_patterns": "block"})
    );
}

#[test]
fn env_value_forms() {
    let fx = Fixture::new();
    let bottle = fx
        .bottle(
            "env:\n  ASK: \"?\"\n  ASK_TEXT: \"? Your API key \"\n  FROM_HOST: \"${HOST_VAR}\"\n  \
             LIT: plain text\n  NUM: 42\n  FLOAT: 1.50\n  BOOL: true\n  EMPTY: \"\"\n  \
             PARTIAL: \"${A}/bin\"\n  BAD_REF: \"${1A}\"\n  _under: x\n",
        )
        .unwrap();
    let env = |name: &str| bottle.env[name].clone();
    assert_eq!(env("ASK"), EnvValue::Prompt { prompt: None });
    assert_eq!(
        env("ASK_TEXT"),
        EnvValue::Prompt {
            prompt: Some("Your API key".into())
        }
    );
    assert_eq!(env("FROM_HOST"), EnvValue::Host("HOST_VAR".into()));
    assert_eq!(env("LIT"), EnvValue::Literal("plain text".into()));
    assert_eq!(env("NUM"), EnvValue::Literal("42".into()));
    assert_eq!(env("FLOAT"), EnvValue::Literal("1.50".into()));
    assert_eq!(env("BOOL"), EnvValue::Literal("true".into()));
    assert_eq!(env("EMPTY"), EnvValue::Literal(String::new()));
    assert_eq!(env("PARTIAL"), EnvValue::Literal("${A}/bin".into()));
    assert_eq!(env("BAD_REF"), EnvValue::Literal("${1A}".into()));
    assert_eq!(env("_under"), EnvValue::Literal("x".into()));
    let secrets: Vec<String> = bottle.secret_names().into_iter().collect();
    assert_eq!(secrets, ["ASK", "ASK_TEXT", "FROM_HOST"]);
}

#[test]
fn bad_env_entries_are_refused_where_they_are() {
    let fx = Fixture::new();
    let path = fx.bottle_path();
    let p = problem(fx.bottle("env:\n  OK: x\n  BAD-NAME: y\n"));
    assert_problem(
        &p,
        &path,
        4,
        &["`BAD-NAME` is not a valid environment variable name"],
    );
    let p = problem(fx.bottle("env:\n  A: \"line\\nbreak\"\n"));
    assert_problem(&p, &path, 3, &["env.A", "newline or NUL"]);
    let p = problem(fx.bottle("env:\n  A: \"nul\\0\"\n"));
    assert_problem(&p, &path, 3, &["newline or NUL"]);
    let p = problem(fx.bottle("env:\n  A: |\n    multi\n    line\n"));
    assert_problem(&p, &path, 3, &["newline or NUL"]);
    let p = problem(fx.bottle("env:\n  A: x\n  B:\n"));
    assert_problem(&p, &path, 4, &["`B` has no value", "B: \"?\""]);
    let p = problem(fx.bottle("env:\n  A: [x]\n"));
    assert_problem(&p, &path, 3, &["expected a string, number or boolean"]);
    let p = problem(fx.bottle("env:\n  A: x\n  A: y\n"));
    assert_problem(&p, &path, 4, &["`A` is set twice in env"]);
}

#[test]
fn runtime_values() {
    let fx = Fixture::new();
    for (text, runtime) in [
        ("auto", Runtime::Auto),
        ("runc", Runtime::Runc),
        ("runsc", Runtime::Runsc),
    ] {
        let bottle = fx.bottle(&format!("runtime: {text}\n")).unwrap();
        assert_eq!(bottle.runtime, runtime);
        assert_eq!(serde_json::to_value(runtime).unwrap(), json!(text));
    }
    let p = problem(fx.bottle("supervise: false\nruntime: gvisor\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["unknown variant `gvisor`", "`runsc`", "hint:"],
    );
}

#[test]
fn firewall_values() {
    let fx = Fixture::new();
    for (text, firewall) in [
        ("builtin", Firewall::Builtin),
        ("pipelock", Firewall::Pipelock),
    ] {
        let bottle = fx
            .bottle(&format!("egress:\n  firewall: {text}\n"))
            .unwrap();
        assert_eq!(bottle.egress.firewall, firewall);
        assert_eq!(serde_json::to_value(firewall).unwrap(), json!(text));
    }
    let p = problem(fx.bottle("egress:\n  firewall: iptables\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["egress.firewall", "`builtin` or `pipelock`"],
    );
}

#[test]
fn external_plugin_sections_are_kept_as_json() {
    let fx = Fixture::new();
    let bottle = fx
        .bottle_with(
            "audit:\n  level: 3\n  ratio: 0.5\n  targets: [a, b]\n  on: yes\n  nothing: ~\n\
             flag: true\n",
            &plugins(&["audit", "flag", "unused"]),
        )
        .unwrap();
    assert_eq!(
        bottle.sections["audit"],
        json!({"level": 3, "ratio": 0.5, "targets": ["a", "b"], "on": "yes", "nothing": null})
    );
    assert_eq!(bottle.sections["flag"], json!(true));
    assert!(!bottle.sections.contains_key("unused"));
}

#[test]
fn sections_without_their_plugin_are_unknown_keys() {
    let fx = Fixture::new();
    let p = problem(fx.bottle_with("supervise: true\naudit: {}\n", &plugins(&["flag"])));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &[
            "unknown key `audit` in the bottle manifest",
            "`flag`",
            "need the plugin installed",
        ],
    );
    let p = problem(fx.bottle_with("audti: {}\n", &plugins(&["audit"])));
    assert!(p.message.contains("did you mean `audit`?"), "{p}");
}

#[test]
fn plugin_sections_refuse_what_json_cannot_hold() {
    let fx = Fixture::new();
    let audit = plugins(&["audit"]);
    let p = problem(fx.bottle_with("audit:\n  a: 1\n  a: 2\n", &audit));
    assert_problem(&p, &fx.bottle_path(), 4, &["`a` is given twice in audit"]);
    let p = problem(fx.bottle_with("audit:\n  x: .nan\n", &audit));
    assert_problem(&p, &fx.bottle_path(), 3, &["cannot be passed to a plugin"]);
    let p = problem(fx.bottle_with("audit: !secret x\n", &audit));
    assert_problem(&p, &fx.bottle_path(), 2, &["YAML tag `!secret`"]);
}

#[test]
fn image_and_dockerfile_conflict() {
    let fx = Fixture::new();
    let p = problem(
        fx.bottle("image: ghcr.io/acme/agent:1\nsupervise: true\ndockerfile: Dockerfile\n"),
    );
    assert_problem(
        &p,
        &fx.bottle_path(),
        4,
        &[
            "`image` and `dockerfile` are both set",
            "hint: keep `image`",
        ],
    );
    let bottle = fx.bottle("image: ghcr.io/acme/agent:1\n").unwrap();
    assert_eq!(bottle.image.as_deref(), Some("ghcr.io/acme/agent:1"));
    let p = problem(fx.bottle("image: \"\"\n"));
    assert!(p.message.contains("image is empty"), "{p}");
}

#[test]
fn dockerfile_paths_are_resolved() {
    let fx = Fixture::new();
    let bottle = fx.bottle("dockerfile: ~/images/Dockerfile\n").unwrap();
    assert_eq!(
        bottle.dockerfile,
        Some(fx.user_home.join("images/Dockerfile"))
    );
    let bottle = fx.bottle("dockerfile: /abs/Dockerfile\n").unwrap();
    assert_eq!(
        bottle.dockerfile.as_deref(),
        Some(std::path::Path::new("/abs/Dockerfile"))
    );
    let bottle = fx.bottle("dockerfile: ../Dockerfile\n").unwrap();
    assert_eq!(
        bottle.dockerfile,
        Some(fx.home.join("bottles/../Dockerfile"))
    );
    let p = problem(fx.bottle("supervise: true\ndockerfile: ~bob/Dockerfile\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["cannot expand `~bob/Dockerfile`"],
    );
}

#[test]
fn supervise_must_be_a_boolean() {
    let fx = Fixture::new();
    assert!(fx.bottle("supervise: true\n").unwrap().supervise);
    let p = problem(fx.bottle("supervise: \"true\"\n"));
    assert_problem(
        &p,
        &fx.bottle_path(),
        2,
        &["expected a boolean", "`true` or `false`"],
    );
}
