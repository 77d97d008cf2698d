//! What must work: routes with injection, path allowlists, plain and intercepted requests,
//! passthrough, websockets, health, an upstream proxy.

use std::sync::{Arc, Mutex};

use bottle_egress_proxy::audit::Decision;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::*;

#[tokio::test]
async fn health_endpoint() {
    let h = start(|_| {}).await;
    let r = h
        .send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn plain_http_to_an_allowed_host() {
    let h = start(|_| {}).await;
    let (url, authority) = h.http_url("api.test", "/a//b/./c?q=1&r=%2F");
    let r = h
        .get(
            &url,
            &authority,
            "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Keep: yes\r\n",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.json();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/a/b/c?q=1&r=%2F");
    assert_eq!(seen["headers"]["x-keep"], "yes");
    assert!(seen["headers"].get("proxy-authorization").is_none());
    let rec = h
        .audit_where(|r| r.host == "api.test" && r.decision == Decision::Allow)
        .await;
    assert_eq!(rec.path, "/a//b/./c");
    assert!(rec.bytes_down > 0);
    // Glob: *.allowed.test
    let (url, authority) = h.http_url("x.allowed.test", "/");
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
}

#[tokio::test]
async fn keep_alive_connection_serves_many_requests() {
    let h = start(|_| {}).await;
    let (url, authority) = h.http_url("api.test", "/k");
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    for i in 0..5 {
        s.write_all(format!("GET {url}?i={i} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let r = read_response(&mut s).await;
        assert_eq!(r.json()["path"], format!("/k?i={i}"));
    }
    // One upstream connection was reused for all of them.
    assert_eq!(h.net.dials.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn route_injects_its_token_and_strips_the_clients() {
    let h = start(|_| {}).await;
    let r = h
        .https(
            "git.test",
            &format!("GET /repos//o/./r/pulls?state=open HTTP/1.1\r\nHost: git.test\r\nAuthorization: Bearer {PLACEHOLDER_TOKEN}\r\nConnection: close\r\n\r\n"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let arrived = h.arrived_at("/repos/o/r/pulls?state=open");
    assert_eq!(
        arrived[0].header("authorization"),
        Some(format!("Bearer {GIT_TOKEN}").as_str())
    );
    // The echo of it comes back cut.
    let seen = r.json();
    assert_eq!(
        seen["headers"]["authorization"],
        format!("Bearer {}", "*".repeat(GIT_TOKEN.len()))
    );
    assert_eq!(seen["path"], "/repos/o/r/pulls?state=open");
    let rec = h
        .audit_where(|r| r.host == "git.test" && r.decision == Decision::Allow && r.method == "GET")
        .await;
    assert_eq!(rec.route.as_deref(), Some("git.test"));
    let all = serde_json::to_string(&h.audit.records()).unwrap();
    assert!(!all.contains(GIT_TOKEN));

    // `token` scheme, no path allowlist.
    let r = h
        .https(
            "tok.test",
            "GET /anything HTTP/1.1\r\nHost: tok.test\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        h.arrived_at("/anything")[0].header("authorization"),
        Some(format!("token {TOK_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn path_allowlist_hit_and_miss() {
    let h = start(|_| {}).await;
    for (path, status) in [
        ("/repos/o/r", 200),
        ("/repos/o/r/", 200),
        ("/repos/o/r/issues/1", 200),
        ("/repos/%6F/r/issues", 200),
        ("/repos/o/other", 403),
        ("/user", 403),
    ] {
        let r = h
            .https(
                "git.test",
                &format!("GET {path} HTTP/1.1\r\nHost: git.test\r\nConnection: close\r\n\r\n"),
            )
            .await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn passthrough_tunnel_is_end_to_end() {
    let h = start(|_| {}).await;
    let (s, r) = h
        .connect(&format!("pass.test:{}", h.upstream.https_port), None)
        .await;
    assert_eq!(r.status, 200);
    // The client trusts only the upstream's own CA: no interception happened.
    let connector = tokio_rustls::TlsConnector::from(h.upstream.ca.client_config());
    let name = rustls::pki_types::ServerName::try_from("pass.test").unwrap();
    let mut tls = connector
        .connect(name, s)
        .await
        .expect("end-to-end TLS with the upstream");
    tls.write_all(b"GET /direct HTTP/1.1\r\nHost: pass.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut tls).await;
    assert_eq!(r.json()["path"], "/direct");
    drop(tls);
    let rec = h
        .audit_where(|r| {
            r.host == "pass.test" && r.decision == Decision::Allow && r.reason == "passthrough"
        })
        .await;
    assert!(rec.bytes_up > 0 && rec.bytes_down > 0, "{rec:?}");
}

async fn websocket_roundtrip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
) {
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let r = read_response(s).await;
    assert_eq!(r.status, 101, "{r:?}");
    assert!(
        r.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    );
    s.write_all(b"\x81\x05hello").await.unwrap();
    let mut buf = [0u8; 7];
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"\x81\x05hello");
}

#[tokio::test]
async fn websocket_upgrade_to_an_allowed_host() {
    let h = start(|_| {}).await;
    let mut tls = h.tunnel("api.test", h.upstream.https_port).await;
    websocket_roundtrip(&mut tls, "api.test").await;
    // Plain ws:// in proxy form.
    let (url, authority) = h.http_url("api.test", "/ws");
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    s.write_all(
        format!(
            "GET {url} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.status, 101);
    s.write_all(b"ping!").await.unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping!");
    // Refused host: no upgrade.
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    s.write_all(b"GET http://evil.test/ws HTTP/1.1\r\nHost: evil.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.status, 403);
}

/// A minimal CONNECT-only upstream proxy that records what it was asked for.
async fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                log.lock().unwrap().push(line.clone());
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let port = target.rsplit(':').next().unwrap_or("0");
                let Ok(mut upstream) =
                    tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await
                else {
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn every_upstream_connection_goes_through_the_upstream_proxy() {
    let (port, seen) = recording_proxy().await;
    let h = start(|c| c.upstream_proxy = Some(format!("http://127.0.0.1:{port}"))).await;
    let (url, authority) = h.http_url("api.test", "/plain");
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
    let r = h
        .https(
            "git.test",
            "GET /repos/o/r HTTP/1.1\r\nHost: git.test\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            format!("CONNECT api.test:{} HTTP/1.1", h.upstream.http_port),
            format!("CONNECT git.test:{} HTTP/1.1", h.upstream.https_port),
        ]
    );
    // Only the upstream proxy was dialled.
    let dials = h.net.dials.lock().unwrap().clone();
    assert!(dials.iter().all(|a| a.port() == port), "{dials:?}");
}

#[tokio::test]
async fn dlp_warn_forwards_patterns() {
    let h = start(|c| c.dlp.patterns = bottle_egress_config::DlpAction::Warn).await;
    let (url, authority) = h.http_url("api.test", "/");
    let body = "AKIAIOSFODNN7EXAMPLE";
    let r = h
        .send(&format!(
            "POST {url} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await;
    assert_eq!(r.status, 200);
    let rec = h.audit_where(|r| r.decision == Decision::Allow).await;
    assert!(rec.reason.contains("aws-access-key-id"), "{rec:?}");
}

#[tokio::test]
async fn a_star_in_the_allowlist_matches_one_label() {
    let h = start(|c| c.allow.push("registry.*.test".into())).await;
    for name in ["registry.npm.test", "registry.evil.npm.test"] {
        let loopback = vec!["127.0.0.1".parse().unwrap()];
        h.net.names.lock().unwrap().insert(name.into(), loopback);
    }
    // The probe sees the allowed variant arrive...
    let (url, authority) = h.http_url("registry.npm.test", "/");
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
    let dials = h.net.dials.lock().unwrap().len();
    // ...and a host one label deeper is refused before anything is dialled.
    let (url, authority) = h.http_url("registry.evil.npm.test", "/");
    assert_eq!(h.get(&url, &authority, "").await.status, 403);
    h.denied("registry.evil.npm.test").await;
    assert_eq!(h.net.dials.lock().unwrap().len(), dials);
}
