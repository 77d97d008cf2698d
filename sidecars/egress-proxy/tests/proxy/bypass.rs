//! Every way around the policy we could think of: each must be refused and audited as a denial.

use base64::Engine;
use bottle_egress_proxy::audit::Decision;

use crate::harness::*;

#[tokio::test]
async fn host_not_on_the_allowlist() {
    let h = start(|_| {}).await;
    let r = h.get("http://evil.test/", "evil.test", "").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("`evil.test`"), "{}", r.body);
    assert!(
        r.body.contains("firewall-block") && r.body.contains("egress.allowlist"),
        "{}",
        r.body
    );
    let rec = h.denied("evil.test").await;
    assert_eq!(rec.reason, "host not allowed");

    let (_, r) = h.connect("evil2.test:443", None).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("evil2.test"));
    assert_eq!(h.denied("evil2.test").await.method, "CONNECT");
    // A suffix trick is not a subdomain.
    let (_, r) = h.connect("evilallowed.test:443", None).await;
    assert_eq!(r.status, 403);
    h.denied("evilallowed.test").await;
    assert!(
        h.net.dials.lock().unwrap().is_empty(),
        "nothing may be dialled for refused hosts"
    );
}

#[tokio::test]
async fn host_header_spoof_on_absolute_uri() {
    let h = start(|_| {}).await;
    let (url, _) = h.http_url("evil.test", "/");
    // Allowed-looking Host, refused URI host: the URI wins.
    let r = h.get(&url, "api.test", "").await;
    assert_eq!(r.status, 403);
    h.denied("evil.test").await;
    // Allowed URI host, other Host header: refused as a mismatch.
    let (url, _) = h.http_url("api.test", "/");
    let r = h.get(&url, "evil.test", "").await;
    assert_eq!(r.status, 403);
    let rec = h.denied("api.test").await;
    assert!(rec.reason.contains("Host header"), "{rec:?}");
    // Two Host headers.
    let (url, authority) = h.http_url("api.test", "/");
    let r = h
        .send(&format!("GET {url} HTTP/1.1\r\nHost: {authority}\r\nHost: evil.test\r\nConnection: close\r\n\r\n"))
        .await;
    assert!(r.status == 403 || r.status == 400, "{r:?}");
}

#[tokio::test]
async fn host_header_spoof_inside_a_tunnel() {
    let h = start(|_| {}).await;
    let r = h
        .https(
            "api.test",
            "GET / HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert_eq!(r.status, 403);
    let rec = h
        .audit_where(|r| r.host == "api.test" && r.decision == Decision::Deny)
        .await;
    assert!(rec.reason.contains("Host header"), "{rec:?}");
    assert_eq!(rec.method, "GET");
}

#[tokio::test]
async fn absolute_uri_or_host_not_matching_connect() {
    let h = start(|_| {}).await;
    let port = h.upstream.https_port;
    let r = h
        .https(
            "api.test",
            &format!("GET https://evil.test:{port}/ HTTP/1.1\r\nHost: evil.test:{port}\r\nConnection: close\r\n\r\n"),
        )
        .await;
    assert_eq!(r.status, 403);
    let rec = h.denied("api.test").await;
    assert!(rec.reason.contains("CONNECT target"), "{rec:?}");

    let (_, r) = h
        .connect(&format!("api.test:{port}"), Some("evil.test:443"))
        .await;
    assert_eq!(r.status, 403);
    let rec = h
        .audit_where(|r| r.method == "CONNECT" && r.decision == Decision::Deny)
        .await;
    assert!(rec.reason.contains("Host header"), "{rec:?}");
}

#[tokio::test]
async fn sni_not_matching_the_intercepted_connect_host() {
    let h = start(|_| {}).await;
    let (s, r) = h
        .connect(&format!("api.test:{}", h.upstream.https_port), None)
        .await;
    assert_eq!(r.status, 200);
    let connector = tokio_rustls::TlsConnector::from(h.proxy_ca.client_config());
    let name = rustls::pki_types::ServerName::try_from("evil.test").unwrap();
    assert!(connector.connect(name, s).await.is_err());
    let rec = h
        .audit_where(|r| r.decision == Decision::Deny && r.reason.contains("SNI"))
        .await;
    assert_eq!(rec.host, "api.test");
}

#[tokio::test]
async fn encoded_path_escapes_from_a_route_allowlist() {
    let h = start(|_| {}).await;
    for path in [
        "/repos/o/r/%2e%2e/%2e%2e/admin",
        "/repos/o/r/%2E%2E/x",
        "/repos/o/r/..%2F..%2Fadmin",
        "/repos/o/r%2F..%2F..%2Fadmin",
        "/repos/o/r%2f..%2fx",
        "/repos/o/r%5C..%5Cx",
        "//repos//o/../x/r",
        "/repos/o/r/..;/x",
        "/repos/o/r/%252e%252e/x",
        "/repos/o/r%00/x",
        "/repos/o/rx",
        "/admin",
    ] {
        let r = h
            .https(
                "git.test",
                &format!("GET {path} HTTP/1.1\r\nHost: git.test\r\nConnection: close\r\n\r\n"),
            )
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let denials = h
        .audit
        .records()
        .into_iter()
        .filter(|r| r.host == "git.test" && r.decision == Decision::Deny)
        .count();
    assert_eq!(denials, 12);
    // The plain forward side enforces the same rule.
    let (url, authority) = h.http_url("git.test", "/repos/o/r/%2e%2e/x");
    assert_eq!(h.get(&url, &authority, "").await.status, 403);
}

#[tokio::test]
async fn private_and_metadata_ip_literals() {
    // Every host passes the allowlist here: only the SSRF guard stands in the way.
    let h = start(|c| {
        c.allow = [
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
            "fd00:ec2::254",
            "0.0.0.0",
            "10.0.0.1",
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ]
        .map(String::from)
        .to_vec();
        c.ssrf.allow_cidrs.clear();
    })
    .await;
    let port = h.upstream.https_port;
    for (authority, host) in [
        (format!("127.0.0.1:{port}"), "127.0.0.1"),
        ("169.254.169.254:80".into(), "169.254.169.254"),
        (format!("[::1]:{port}"), "::1"),
        ("[::ffff:10.0.0.1]:443".into(), "::ffff:10.0.0.1"),
        ("[::ffff:127.0.0.1]:443".into(), "::ffff:127.0.0.1"),
        ("100.64.0.1:443".into(), "100.64.0.1"),
        ("[fd00:ec2::254]:80".into(), "fd00:ec2::254"),
        ("0.0.0.0:80".into(), "0.0.0.0"),
        ("[64:ff9b:1::a00:1]:443".into(), "64:ff9b:1::a00:1"),
        (
            "[2001:0:4136:e378:8000:63bf:3fff:fdd2]:443".into(),
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ),
    ] {
        let (_, r) = h.connect(&authority, None).await;
        assert_eq!(r.status, 403, "{authority}: {}", r.body);
        let rec = h.denied(host).await;
        assert!(rec.reason.starts_with("SSRF"), "{rec:?}");
    }
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://127.0.0.1:{}/", h.upstream.http_port),
        "http://[::1]/".to_string(),
        "http://10.0.0.1/".to_string(),
    ] {
        let authority = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let r = h.get(&url, &authority, "").await;
        assert_eq!(r.status, 403, "{url}: {}", r.body);
    }
    assert!(h.net.dials.lock().unwrap().is_empty());
    h.assert_no_foreign_dials();
}

#[tokio::test]
async fn dns_names_resolving_to_private_addresses() {
    let h = start(|c| c.allow.push("*.test".into())).await;
    for name in ["internal.test", "meta.test", "mixed.test"] {
        let (_, r) = h.connect(&format!("{name}:443"), None).await;
        assert_eq!(r.status, 403, "{name}: {}", r.body);
        let rec = h.denied(name).await;
        assert!(rec.reason.contains("resolves to"), "{rec:?}");
        let r = h.get(&format!("http://{name}/"), name, "").await;
        assert_eq!(r.status, 403, "{name}");
    }
    h.assert_no_foreign_dials();
}

#[tokio::test]
async fn git_push_in_both_forms() {
    let h = start(|_| {}).await;
    for request in [
        "POST /o/r.git/git-receive-pack HTTP/1.1\r\nHost: api.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "GET /o/r.git/info/refs?service=git-receive-pack HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n",
        "GET /o/r.git/info/refs?service=git%2Dreceive-pack HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n",
    ] {
        let r = h.https("api.test", request).await;
        assert_eq!(r.status, 403, "{request}");
    }
    // Even on a route whose allowlist covers the repository.
    let r = h
        .https(
            "git.test",
            "GET /repos/o/r/info/refs?service=git-receive-pack HTTP/1.1\r\nHost: git.test\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert_eq!(r.status, 403);
    let n = h
        .audit
        .records()
        .iter()
        .filter(|r| r.reason == "git push" && r.decision == Decision::Deny)
        .count();
    assert_eq!(n, 4);
}

#[tokio::test]
async fn secret_values_in_every_place_and_encoding() {
    let h = start(|_| {}).await;
    let (base, authority) = h.http_url("api.test", "/upload");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{DB_PASSWORD}"));
    let hex: String = DB_PASSWORD.bytes().map(|b| format!("{b:02X}")).collect();
    let cases: Vec<(String, String, String)> = vec![
        (
            format!("{base}?p={DB_PASSWORD}"),
            String::new(),
            String::new(),
        ),
        (
            format!("{base}?p=hunter2%2Ddb%2Dpassword"),
            String::new(),
            String::new(),
        ),
        (
            base.clone(),
            format!("X-Debug: {DB_PASSWORD}\r\n"),
            String::new(),
        ),
        (
            base.clone(),
            format!("Authorization: Basic {b64}\r\n"),
            String::new(),
        ),
        (base.clone(), format!("X-Trace: {hex}\r\n"), String::new()),
        (
            base.clone(),
            String::new(),
            format!("{{\"password\":\"{DB_PASSWORD}\"}}"),
        ),
        (base.clone(), String::new(), format!("data={b64}")),
        (
            base.clone(),
            String::new(),
            format!("blob {}", hex.to_lowercase()),
        ),
    ];
    for (url, headers, body) in &cases {
        let r = h
            .send(&format!(
                "POST {url} HTTP/1.1\r\nHost: {authority}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ))
            .await;
        assert_eq!(r.status, 403, "{url} {headers} {body}: {}", r.body);
        assert!(r.body.contains("exact:DB_PASSWORD"), "{}", r.body);
    }
    let records = h.audit.records();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.reason == "DLP: exact:DB_PASSWORD")
            .count(),
        cases.len()
    );
    let all = serde_json::to_string(&records).unwrap();
    assert!(
        !all.contains(DB_PASSWORD),
        "the audit must never hold a secret"
    );
    // Also inside an intercepted tunnel.
    let body = format!("x={DB_PASSWORD}");
    let r = h
        .https(
            "api.test",
            &format!("POST /x HTTP/1.1\r\nHost: api.test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn secret_in_the_path_is_redacted_in_the_audit() {
    let h = start(|c| c.allow.push("evil.test".into())).await;
    let r = h
        .get(
            &format!("http://evil.test/{DB_PASSWORD}/x"),
            "evil.test",
            "",
        )
        .await;
    assert_eq!(r.status, 403);
    let rec = h.denied("evil.test").await;
    assert_eq!(rec.path, "<redacted>");
}

#[tokio::test]
async fn builtin_patterns_block() {
    let h = start(|_| {}).await;
    let (url, authority) = h.http_url("api.test", "/");
    let body = "key = AKIAIOSFODNN7EXAMPLE";
    let r = h
        .send(&format!(
            "POST {url} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(h.denied("api.test").await.reason, "DLP: aws-access-key-id");
}

#[tokio::test]
async fn route_token_sent_to_another_host() {
    let h = start(|c| c.routes[0].methods = vec!["GET".into(), "POST".into()]).await;
    let body = format!("{{\"token\":\"{GIT_TOKEN}\"}}");
    let r = h
        .https(
            "api.test",
            &format!("POST /x HTTP/1.1\r\nHost: api.test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(h.denied("api.test").await.reason, "DLP: exact:GIT_TOKEN");
    // The same token to its own route passes.
    let r = h
        .https(
            "git.test",
            &format!("POST /repos/o/r HTTP/1.1\r\nHost: git.test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Another route's token is refused there.
    let body = format!("t={TOK_TOKEN}");
    let r = h
        .https(
            "git.test",
            &format!("POST /repos/o/r HTTP/1.1\r\nHost: git.test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn passthrough_sni_must_match() {
    let h = start(|_| {}).await;
    let (s, r) = h
        .connect(&format!("pass.test:{}", h.upstream.https_port), None)
        .await;
    assert_eq!(r.status, 200);
    let connector = tokio_rustls::TlsConnector::from(h.upstream.ca.client_config());
    let name = rustls::pki_types::ServerName::try_from("api.test").unwrap();
    assert!(connector.connect(name, s).await.is_err());
    let rec = h.denied("pass.test").await;
    assert!(rec.reason.contains("SNI"), "{rec:?}");
    assert!(
        h.net.dials.lock().unwrap().is_empty(),
        "no upstream connection for a bad SNI"
    );
}

#[tokio::test]
async fn upstream_certificate_is_verified() {
    let h = start(|c| c.tls.upstream_roots.clear()).await;
    let r = h
        .https(
            "api.test",
            "GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.body);
}

#[tokio::test]
async fn origin_form_requests_other_than_health_are_refused() {
    let h = start(|_| {}).await;
    let r = h
        .send("GET /admin HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .send("GET https://api.test/ HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.status, 400);
}
