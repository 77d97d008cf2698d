//! The model API at full size, in a real bottle on the real engine: a 20 MiB request (a long
//! conversation with images, as Claude Code sends) passes the egress proxy whole through a
//! credential route, and one carrying a bottle secret is refused and never arrives.
//!
//! The stand-in model host is the test upstream (`tests/docker/upstream`) on the bottle's egress
//! network; it records each request it read whole (with the body's length and sha256) on stdout.

mod common;

use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use common::*;

/// 15 MiB of random bytes, base64: a 20 MiB JSON string, like an image in a conversation.
const RANDOM_BYTES: usize = 15 << 20;

/// A bottle whose route to the stand-in model host lends a token for reads and `POST`s, as the
/// route to api.anthropic.com does; `SESSION_SECRET` is the bottle secret the agent holds.
fn write_model_bottle(bottle: &TestBottle, ca: &str) {
    let ca_path = bottle.write("upstream-ca.pem", ca);
    bottle.write(
        "bottles/test.md",
        &format!(
            "---\nenv:\n  SESSION_SECRET: \"?\"\negress_proxy:\n  routes:\n    - host: upstream.test\n      \
             auth: {{scheme: Bearer, token_ref: ROUTE_TOKEN}}\n      methods: [GET, POST]\n      \
             path_allowlist: [/v1/]\n  upstream_ca: [{}]\n  \
             allow_cidrs: [172.16.0.0/12, 192.168.0.0/16, 10.0.0.0/8]\n---\n",
            ca_path.display()
        ),
    );
}

/// A shell script for the agent: write a request body of `RANDOM_BYTES` base64 inside a JSON
/// message (with `$SESSION_SECRET` near its end when `with_secret`), print its length and sha256,
/// POST it, and print the HTTP status.
fn post_script(path: &str, with_secret: bool) -> String {
    let tail = if with_secret {
        r#" and the session secret is $SESSION_SECRET"#
    } else {
        ""
    };
    format!(
        "set -e; f=/tmp/request.json; \
         {{ printf '{{\"model\":\"stand-in\",\"messages\":[{{\"role\":\"user\",\"content\":\"'; \
         head -c {RANDOM_BYTES} /dev/urandom | base64 -w0; printf \"%s\" \"{tail}\"; printf '\"}}]}}'; }} > $f; \
         echo \"sent $(wc -c < $f) $(sha256sum $f | cut -d' ' -f1)\"; \
         code=$(curl -sS --max-time 300 -o /tmp/answer.json -w '%{{http_code}}' \
           -H 'content-type: application/json' --data-binary @$f https://upstream.test{path} || true); \
         echo \"status $code\"; head -c 400 /tmp/answer.json 2>/dev/null || true"
    )
}

/// The requests the stand-in model host read whole so far (its record on stdout).
fn arrivals(bottle: &TestBottle, upstream: &str) -> Vec<serde_json::Value> {
    container_stdout(bottle, upstream)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("path").is_some() && v.get("upgrade").is_none())
        .collect()
}

fn field<'a>(output: &'a str, key: &str) -> Vec<&'a str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|rest| rest.split_whitespace().collect())
        .unwrap_or_default()
}

#[test]
fn a_20_mib_model_request_passes_whole_and_one_carrying_a_secret_never_arrives() {
    let Some(bottle) = TestBottle::new("modelapi") else {
        return;
    };
    let (ca, cert, key) = test_certificates(&["upstream.test"]);
    write_model_bottle(&bottle, &ca);
    let image = build_test_image(&bottle.docker, "upstream", "bottle-test/upstream:latest");
    let identity = identity_of(&bottle.start_detached(&[]));
    let files = [
        file("/srv/cert.pem", 0o644, (0, 0), &cert),
        file("/srv/key.pem", 0o600, (0, 0), &key),
    ];
    let upstream = start_on_egress(
        &bottle,
        &identity,
        ("bottle-test-model", &image, "upstream.test"),
        &files,
        None,
    );
    wait_until_reachable(&bottle, &identity);

    let whole = text(&bottle.exec_in_agent(&identity, &post_script("/v1/messages", false)));
    let sent = field(&whole, "sent ");
    assert_eq!(sent.len(), 2, "the agent wrote its request: {whole}");
    let length: u64 = sent[0].parse().unwrap();
    assert!(length >= 20 << 20, "a 20 MiB request: {length} bytes");
    assert_eq!(field(&whole, "status "), ["200"], "{whole}");
    let arrived = arrivals(&bottle, &upstream);
    let messages: Vec<_> = arrived
        .iter()
        .filter(|a| a["path"] == "/v1/messages")
        .collect();
    assert_eq!(messages.len(), 1, "{arrived:?}");
    assert_eq!(messages[0]["length"], length, "every byte arrived");
    assert_eq!(messages[0]["sha256"], sent[1], "the same bytes arrived");

    // The same request with the bottle secret near its end: the proxy refuses it, and the stand-in
    // never reads it whole (the probe above saw a whole one arrive, so its silence here counts).
    let refused = text(&bottle.exec_in_agent(&identity, &post_script("/v1/secret", true)));
    assert_eq!(field(&refused, "sent ").len(), 2, "{refused}");
    assert_ne!(field(&refused, "status "), ["200"], "{refused}");
    assert!(!refused.contains(PROMPTED_SECRET), "{refused}");
    let arrived = arrivals(&bottle, &upstream);
    assert!(
        !arrived.iter().any(|a| a["path"] == "/v1/secret"),
        "the request carrying the secret arrived: {arrived:?}"
    );
    let logs = text(&bottle.bottle(&["logs", &identity, "egress-proxy"]));
    assert!(
        logs.lines()
            .any(|l| l.contains("/v1/secret") && l.contains("deny")),
        "the refusal is logged:\n{logs}"
    );
    assert!(!logs.contains(PROMPTED_SECRET) && !logs.contains(ROUTE_TOKEN));

    assert!(bottle.bottle(&["stop", &identity]).status.success());
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    rt().block_on(bottle.docker.remove_container(&upstream, Some(options)))
        .unwrap();
    bottle.assert_nothing_left();
}

/// Wait until the stand-in answers through the proxy (it starts after the bottle).
fn wait_until_reachable(bottle: &TestBottle, identity: &str) {
    let probe = "curl -sS --max-time 10 https://upstream.test/v1/ready";
    for _ in 0..50 {
        if text(&bottle.exec_in_agent(identity, probe)).contains("\"method\"") {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the stand-in model host never answered through the proxy");
}

/// The operator's login, as `claude setup-token` prints one (a test value).
const LOGIN_TOKEN: &str = "sk-ant-oat01-test-login-token-5c1e7d";

#[test]
fn the_login_lives_only_in_the_egress_proxy_and_the_agent_holds_the_placeholder() {
    let Some(bottle) = TestBottle::new("login") else {
        return;
    };
    // No manifests: the embedded default bottle, which takes the login from the environment.
    std::fs::remove_dir_all(bottle.path().join("agents")).unwrap();
    let name = format!("t-login-{}", std::process::id());
    let output = bottle
        .command(&[
            "start",
            "--detach",
            "--yes",
            "--no-claude-code",
            "--name",
            &name,
        ])
        .env("CLAUDE_CODE_OAUTH_TOKEN", LOGIN_TOKEN)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let identity = identity_of(&output);
    let shown = text(&output);
    assert!(shown.contains("using your Claude login"), "{shown}");
    assert!(
        !shown.contains(LOGIN_TOKEN),
        "the launch output shows the token"
    );

    let mut proxy_holds_it = false;
    for container in bottle.containers() {
        let name = container.names.unwrap_or_default().join(",");
        let inspect = rt()
            .block_on(
                bottle
                    .docker
                    .inspect_container(container.id.as_deref().unwrap(), None),
            )
            .unwrap();
        let config = inspect.config.unwrap();
        let argv = format!("{:?}{:?}", config.cmd, config.entrypoint);
        assert!(!argv.contains(LOGIN_TOKEN), "the token on argv of {name}");
        let env = config.env.unwrap_or_default();
        let role = config
            .labels
            .unwrap_or_default()
            .get("dev.bottle.role")
            .cloned();
        if role.as_deref() == Some("agent") {
            assert!(
                env.iter().any(|e| e
                    == "CLAUDE_CODE_OAUTH_TOKEN=bottle-placeholder-token-injected-by-egress-proxy"),
                "the agent holds the placeholder: {env:?}"
            );
            assert!(
                !env.iter().any(|e| e.contains(LOGIN_TOKEN)),
                "docker inspect of the agent shows the token"
            );
        }
        proxy_holds_it |= name.contains("egress-proxy")
            && env
                .iter()
                .any(|e| e == &format!("CLAUDE_CODE_OAUTH_TOKEN={LOGIN_TOKEN}"));
    }
    // The inspection above sees environments: the token is where it belongs, in the proxy.
    assert!(proxy_holds_it, "the egress proxy holds the token");
    let agent_env = text(&bottle.exec_in_agent(&identity, "env; tr '\\0' '\\n' < /proc/1/environ"));
    assert!(agent_env.contains("CLAUDE_CODE_OAUTH_TOKEN=bottle-placeholder"));
    assert!(!agent_env.contains(LOGIN_TOKEN));
    for logs in [
        bottle.bottle(&["logs", &identity]),
        bottle.bottle(&["logs", &identity, "egress-proxy"]),
    ] {
        assert!(!text(&logs).contains(LOGIN_TOKEN), "the token in the logs");
    }
    assert!(bottle.bottle(&["stop", &identity]).status.success());
    bottle.assert_nothing_left();
}
