//! Routes lend a token, so they are held to more: methods (reads unless writes are named), TLS on
//! every leg, no TRACE, no credential of the agent's own beside the token, and the token cut out of
//! whatever the host echoes. Every refusal also shows nothing arrived at the upstream, after the
//! allowed variant of the same request did arrive.

use bottle_egress_proxy::audit::Decision;
use tokio::io::AsyncWriteExt;

use crate::harness::*;

fn request(method: &str, host: &str, path: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

#[tokio::test]
async fn write_methods_must_be_named_on_the_route() {
    let h = start(|_| {}).await;
    // Reads pass on a route without `methods`.
    let r = h
        .https("git.test", &request("GET", "git.test", "/repos/o/r/a", ""))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.arrived_at("/repos/o/r/a").len(), 1);
    // A write is refused, says which method on which route, and how to allow it.
    for method in ["PUT", "PATCH", "DELETE", "POST"] {
        let path = format!("/repos/o/r/{}", method.to_lowercase());
        let r = h
            .https("git.test", &request(method, "git.test", &path, ""))
            .await;
        assert_eq!(r.status, 403, "{method}: {}", r.body);
        assert!(
            r.body
                .contains(&format!("method `{method}` on route `git.test`")),
            "{}",
            r.body
        );
        assert!(
            r.body
                .contains(&format!("`methods: [GET, HEAD, OPTIONS, {method}]`")),
            "{}",
            r.body
        );
        assert!(h.arrived_at(&path).is_empty(), "{method} arrived");
    }
    let rec = h.denied("git.test").await;
    assert!(rec.reason.contains("not in the route's methods"), "{rec:?}");

    // Named, the write goes through (and only the named one).
    let h = start(|c| c.routes[0].methods = vec!["GET".into(), "PUT".into()]).await;
    let r = h
        .https(
            "git.test",
            &request("PUT", "git.test", "/repos/o/r/put", ""),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.arrived_at("/repos/o/r/put")[0].method, "PUT");
    let r = h
        .https(
            "git.test",
            &request("OPTIONS", "git.test", "/repos/o/r/options", ""),
        )
        .await;
    assert_eq!(r.status, 403, "OPTIONS is not in [GET, PUT]");
    assert!(h.arrived_at("/repos/o/r/options").is_empty());
}

#[tokio::test]
async fn a_token_is_never_sent_over_plain_http() {
    let h = start(|_| {}).await;
    // The probe sees plain http arriving: a host without a route.
    let (url, authority) = h.http_url("api.test", "/plain");
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
    assert_eq!(h.arrived_at("/plain").len(), 1);
    // The route's host over plain http, in proxy form: refused, nothing arrives.
    let (url, authority) = h.http_url("tok.test", "/plain-route");
    let r = h.get(&url, &authority, "").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("never sent over plain http"), "{}", r.body);
    assert!(r.body.contains("https://tok.test/"), "{}", r.body);
    // …and inside a CONNECT tunnel that carries plain HTTP.
    let (mut s, r) = h
        .connect(&format!("tok.test:{}", h.upstream.http_port), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.write_all(request("GET", &authority, "/plain-tunnel", "").as_bytes())
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(h.arrived_at("/plain-route").is_empty());
    assert!(h.arrived_at("/plain-tunnel").is_empty());
    assert_eq!(
        h.denied("tok.test").await.reason,
        "route token over plain http"
    );
    // Over TLS the same route gets its token.
    let r = h
        .https("tok.test", &request("GET", "tok.test", "/tls", ""))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        h.arrived_at("/tls")[0].header("authorization"),
        Some(format!("token {TOK_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn an_echoed_token_is_cut_from_the_answer() {
    let h = start(|_| {}).await;
    let stars = "*".repeat(TOK_TOKEN.len());
    let r = h
        .https("tok.test", &request("GET", "tok.test", "/echo", ""))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The upstream got the token and echoed it; the agent sees stars of the same length.
    assert_eq!(
        h.arrived_at("/echo")[0].header("authorization"),
        Some(format!("token {TOK_TOKEN}").as_str())
    );
    assert!(!r.body.contains(TOK_TOKEN), "{}", r.body);
    assert_eq!(
        r.json()["headers"]["authorization"],
        format!("token {stars}")
    );
    // Split across two chunks that reach the proxy 50 ms apart.
    let r = h
        .https("tok.test", &request("GET", "tok.test", "/split-echo", ""))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, format!("auth=token {stars};"));
    // The same endpoint on a host without a route is left alone (the probe sees the echo).
    let r = h
        .https(
            "api.test",
            &request(
                "GET",
                "api.test",
                "/split-echo",
                "Authorization: token visible\r\n",
            ),
        )
        .await;
    assert_eq!(r.body, "auth=token visible;");
}

#[tokio::test]
async fn an_echoed_token_is_cut_from_a_websocket_upgrade() {
    let h = start(|_| {}).await;
    let upgrade = |host: &str| {
        request(
            "GET",
            host,
            "/ws",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        )
        .replace("Connection: close\r\n", "")
    };
    // The probe: a host without a route gets the echo as sent.
    let mut tls = h.tunnel("api.test", h.upstream.https_port).await;
    tls.write_all(
        upgrade("api.test")
            .replace("\r\n\r\n", "\r\nAuthorization: token visible\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let r = read_response(&mut tls).await;
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(r.header("x-echo-authorization"), Some("token visible"));
    // The route's token, echoed in the 101, comes back cut.
    let mut tls = h.tunnel("tok.test", h.upstream.https_port).await;
    tls.write_all(upgrade("tok.test").as_bytes()).await.unwrap();
    let r = read_response(&mut tls).await;
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(
        r.header("x-echo-authorization"),
        Some(format!("token {}", "*".repeat(TOK_TOKEN.len())).as_str())
    );
}

#[tokio::test]
async fn trace_is_refused_everywhere() {
    let h = start(|_| {}).await;
    let r = h
        .https("api.test", &request("GET", "api.test", "/t-get", ""))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.arrived_at("/t-get").len(), 1);
    let r = h
        .https("api.test", &request("TRACE", "api.test", "/t-tls", ""))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("TRACE"), "{}", r.body);
    let r = h
        .https("tok.test", &request("TRACE", "tok.test", "/t-route", ""))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let (url, authority) = h.http_url("api.test", "/t-plain");
    let r = h
        .send(&format!(
            "TRACE {url} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    for path in ["/t-tls", "/t-route", "/t-plain"] {
        assert!(h.arrived_at(path).is_empty(), "{path} arrived");
    }
    assert_eq!(h.denied("api.test").await.reason, "TRACE refused");
}

#[tokio::test]
async fn an_own_credential_beside_the_route_token_is_refused() {
    let h = start(|_| {}).await;
    // The placeholder (or nothing) passes; the route's token replaces it.
    for (path, header) in [
        ("/k-none", String::new()),
        (
            "/k-placeholder",
            format!("x-api-key: {PLACEHOLDER_TOKEN}\r\n"),
        ),
        (
            "/k-bearer-placeholder",
            format!("Authorization: Bearer {PLACEHOLDER_TOKEN}\r\n"),
        ),
    ] {
        let r = h
            .https("tok.test", &request("GET", "tok.test", path, &header))
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let arrived = &h.arrived_at(path)[0];
        assert_eq!(
            arrived.header("authorization"),
            Some(format!("token {TOK_TOKEN}").as_str())
        );
        assert_eq!(arrived.header("x-api-key"), None, "{path}");
    }
    // Any other value is refused, naming the header and never the value.
    for (path, header, name) in [
        ("/k-own", "x-api-key: sk-ant-own-key-42\r\n", "x-api-key"),
        (
            "/k-auth",
            "Authorization: Bearer sk-ant-own-key-42\r\n",
            "authorization",
        ),
    ] {
        let r = h
            .https("tok.test", &request("GET", "tok.test", path, header))
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(r.body.contains(&format!("`{name}`")), "{}", r.body);
        assert!(!r.body.contains("own-key-42"), "{}", r.body);
        assert!(h.arrived_at(path).is_empty(), "{path} arrived");
    }
    let all = serde_json::to_string(&h.audit.records()).unwrap();
    assert!(!all.contains("own-key-42"), "{all}");
    // A host without a token route keeps the agent's own key (the probe sees it arrive).
    let r = h
        .https(
            "api.test",
            &request(
                "GET",
                "api.test",
                "/k-free",
                "x-api-key: sk-ant-own-key-42\r\n",
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        h.arrived_at("/k-free")[0].header("x-api-key"),
        Some("sk-ant-own-key-42")
    );
    assert!(
        h.audit
            .records()
            .iter()
            .any(|r| r.host == "tok.test" && r.decision == Decision::Deny)
    );
}
