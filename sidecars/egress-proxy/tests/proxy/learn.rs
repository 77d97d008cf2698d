//! Learn mode (`learn: true`, `bottle start --learn`): a host off the allowlist is let through and
//! audited as learned instead of refused — and nothing else changes: a route's token still goes
//! only to the route's own host, and the DLP still refuses a secret on its way to a learned host.

use bottle_egress_proxy::audit::{Decision, Learn};
use tokio::io::AsyncWriteExt;

use crate::harness::*;

fn request(method: &str, host: &str, path: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn learning(config: &mut bottle_egress_config::EgressConfig) {
    config.learn = true;
}

#[tokio::test]
async fn learn_mode_allows_and_records_what_the_allowlist_refuses() {
    // Without learn mode: refused, nothing arrives, no learn tag in the audit.
    let h = start(|_| {}).await;
    let (mut s, r) = h
        .connect(&format!("new.test:{}", h.upstream.https_port), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("not on this bottle's egress allowlist"));
    s.shutdown().await.ok();
    assert_eq!(h.denied("new.test").await.learn, None);
    let (url, authority) = h.http_url("new.test", "/plain-refused");
    assert_eq!(h.get(&url, &authority, "").await.status, 403);
    assert!(h.arrived_at("/plain-refused").is_empty());

    // With it: the same host over https and plain http arrives, audited as learned.
    let h = start(learning).await;
    let r = h
        .https(
            "new.test",
            &request("GET", "new.test", "/v1/learned", "", ""),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.arrived_at("/v1/learned").len(), 1);
    let rec = h
        .audit_where(|r| r.host == "new.test" && r.path == "/v1/learned")
        .await;
    assert_eq!(rec.decision, Decision::Allow);
    assert_eq!(rec.learn, Some(Learn::Learned), "{rec:?}");
    assert!(rec.reason.contains("learned"), "{rec:?}");
    let (url, authority) = h.http_url("new.test", "/plain-learned");
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
    assert_eq!(h.arrived_at("/plain-learned").len(), 1);
    // A listed host is recorded too (the minimal allowlist needs it), as listed.
    let (url, authority) = h.http_url("api.test", "/listed");
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
    let rec = h.audit_where(|r| r.path == "/listed").await;
    assert_eq!(rec.learn, Some(Learn::Listed), "{rec:?}");
    // The JSON line carries the tag the host reads back.
    let line = serde_json::to_value(&rec).unwrap();
    assert_eq!(line["learn"], "listed");
}

#[tokio::test]
async fn learn_mode_lends_no_token_beyond_the_route() {
    let h = start(learning).await;
    // The probe sees injection: the route's own host gets its token.
    let r = h
        .https("tok.test", &request("GET", "tok.test", "/routed", "", ""))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let routed = &h.arrived_at("/routed")[0];
    assert_eq!(
        routed.header("authorization"),
        Some(format!("token {TOK_TOKEN}").as_str())
    );
    // A learned host gets no token, whatever credential the agent sends (the placeholder is not
    // swapped for the token there) ...
    let r = h
        .https(
            "new.test",
            &request(
                "GET",
                "new.test",
                "/learned-no-token",
                &format!("Authorization: token {PLACEHOLDER_TOKEN}\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let learned = &h.arrived_at("/learned-no-token")[0];
    let auth = learned.header("authorization").unwrap_or_default();
    assert!(
        !auth.contains(TOK_TOKEN) && !auth.contains(GIT_TOKEN),
        "a token went to a learned host: {auth}"
    );
    // ... and naming the route's host in the Host header of a learned host's tunnel is refused,
    // not routed.
    let r = h
        .https("new.test", &request("GET", "tok.test", "/spoofed", "", ""))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(h.arrived_at("/spoofed").is_empty());
    let all = serde_json::to_string(&h.audit.records()).unwrap();
    assert!(!all.contains(TOK_TOKEN));
}

#[tokio::test]
async fn learn_mode_is_no_exfiltration_window() {
    let h = start(learning).await;
    // The probe: a clean body to the learned host arrives whole.
    let clean = r#"{"note":"nothing secret"}"#;
    let r = h
        .https(
            "new.test",
            &request("POST", "new.test", "/clean", "", clean),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.arrived("/clean"), vec![clean.as_bytes().to_vec()]);
    // A bottle secret, and a route's token, on their way to the learned host: refused.
    for (path, secret, rule) in [
        ("/dirty", DB_PASSWORD, "exact:DB_PASSWORD"),
        ("/token", TOK_TOKEN, "exact:TOK_TOKEN"),
    ] {
        let body = format!(r#"{{"leak":"{secret}"}}"#);
        let r = h
            .https("new.test", &request("POST", "new.test", path, "", &body))
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(r.body.contains(rule), "{path}: {}", r.body);
        assert!(h.arrived(path).is_empty(), "{path} arrived");
    }
    let all = serde_json::to_string(&h.audit.records()).unwrap();
    assert!(!all.contains(DB_PASSWORD) && !all.contains(TOK_TOKEN));
}
