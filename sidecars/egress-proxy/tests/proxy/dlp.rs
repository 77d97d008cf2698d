//! DLP that cannot be stepped around: compressed and encoded bodies, bombs, secrets split across
//! chunks, large bodies streaming, the method, short secrets, and the audit trail.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::harness::*;

/// POSTs `body` (any bytes) to `path` on api.test through the proxy, with extra header lines.
async fn post(h: &Harness, path: &str, extra: &str, body: &[u8]) -> Resp {
    let (url, authority) = h.http_url("api.test", path);
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST {url} HTTP/1.1\r\nHost: {authority}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    read_response(&mut s).await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` as a brotli stream of one uncompressed meta-block (at most 64 KiB): enough to prove
/// the proxy decodes `br` (there is no brotli encoder among the dependencies).
fn brotli_stored(data: &[u8]) -> Vec<u8> {
    let header = ((data.len() as u32 - 1) << 4) | (1 << 20);
    let mut out = header.to_le_bytes()[..3].to_vec();
    out.extend_from_slice(data);
    out.push(0x03);
    out
}

fn assert_refused_secret(r: &Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    assert!(r.body.contains("exact:DB_PASSWORD"), "{what}: {}", r.body);
}

#[tokio::test]
async fn compressed_bodies_are_scanned_decompressed() {
    let h = start(|_| {}).await;
    type Compress = fn(&[u8]) -> Vec<u8>;
    let codings: [(&str, Compress); 3] = [("gzip", gzip), ("deflate", zlib), ("br", brotli_stored)];
    for (i, (coding, compress)) in codings.into_iter().enumerate() {
        // Positive: the same body without the secret arrives, byte for byte.
        let clean = compress(br#"{"password":"not-the-secret"}"#);
        let path = format!("/clean-{i}");
        let r = post(
            &h,
            &path,
            &format!("Content-Encoding: {coding}\r\n"),
            &clean,
        )
        .await;
        assert_eq!(r.status, 200, "{coding}: {}", r.body);
        assert_eq!(h.arrived(&path), vec![clean], "{coding}");
        // With the secret: refused, nothing arrived.
        let dirty = compress(format!(r#"{{"password":"{DB_PASSWORD}"}}"#).as_bytes());
        let path = format!("/dirty-{i}");
        let r = post(
            &h,
            &path,
            &format!("Content-Encoding: {coding}\r\n"),
            &dirty,
        )
        .await;
        assert_refused_secret(&r, coding);
        assert!(h.arrived(&path).is_empty(), "{coding} arrived");
    }
    let all = serde_json::to_string(&h.audit.records()).unwrap();
    assert!(!all.contains(DB_PASSWORD));
}

#[tokio::test]
async fn a_zip_bomb_is_refused_not_expanded() {
    let h = start(|_| {}).await;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b'a'; 20 << 20]).unwrap();
    let bomb = e.finish().unwrap();
    let r = post(&h, "/bomb", "Content-Encoding: gzip\r\n", &bomb).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("bomb") && r.body.contains("100:1"),
        "{}",
        r.body
    );
    assert!(h.arrived("/bomb").is_empty());
    h.audit_where(|r| r.reason == "DLP: body not scannable: decompression bomb")
        .await;
    // An encoding the proxy cannot decode is refused with what to do instead.
    let r = post(&h, "/zstd", "Content-Encoding: zstd\r\n", b"xxxx").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("uncompressed"), "{}", r.body);
}

#[tokio::test]
async fn encoded_forms_in_bodies_are_refused() {
    let h = start(|_| {}).await;
    let every_byte: String = DB_PASSWORD.bytes().map(|b| format!("%{b:02X}")).collect();
    let json_escaped: String = DB_PASSWORD
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{DB_PASSWORD}!!"));
    let mime: String = b64
        .as_bytes()
        .chunks(6)
        .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
        .collect();
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(DB_PASSWORD);
    let mime_url: String = b64url
        .as_bytes()
        .chunks(5)
        .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
        .collect();
    for (i, form) in [every_byte, json_escaped, mime, mime_url]
        .into_iter()
        .enumerate()
    {
        // Positive: the same shape around other bytes arrives.
        let path = format!("/form-{i}");
        let r = post(&h, &path, "", b"q=%41%42 \\u0041 QUJD\r\nREVG").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(h.arrived(&path).len(), 1);
        let path = format!("/secret-form-{i}");
        let r = post(&h, &path, "", format!("q={form}&x=1").as_bytes()).await;
        assert_refused_secret(&r, &form);
        assert!(h.arrived(&path).is_empty(), "{form} arrived");
    }
}

/// Sends `parts` as HTTP chunks with a pause between them, so they reach the proxy apart.
async fn post_chunked(h: &Harness, path: &str, parts: &[&[u8]]) -> Resp {
    let (url, authority) = h.http_url("api.test", path);
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST {url} HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for part in parts {
        s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(part).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    read_response(&mut s).await
}

#[tokio::test]
async fn a_secret_split_across_two_chunks_is_refused() {
    let h = start(|_| {}).await;
    let (a, b) = DB_PASSWORD.split_at(7);
    // Positive: the same split of a harmless value arrives, whole.
    let r = post_chunked(&h, "/split-clean", &[b"x=hunter2", b"-not-the-pw"]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        h.arrived("/split-clean"),
        vec![b"x=hunter2-not-the-pw".to_vec()]
    );
    let first = format!("x={a}");
    let r = post_chunked(&h, "/split", &[first.as_bytes(), b.as_bytes()]).await;
    assert_refused_secret(&r, "split");
    assert!(h.arrived("/split").is_empty());
}

#[tokio::test]
async fn a_large_clean_body_streams_through() {
    let h = start(|_| {}).await;
    let body: Vec<u8> = (0..20u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let r = post(&h, "/large", "", &body).await;
    assert_eq!(r.status, 200);
    let arrived = h.arrived("/large");
    assert_eq!(arrived.len(), 1);
    assert!(arrived[0] == body, "the body arrived changed");
    let record = h.audit_where(|r| r.path == "/large").await;
    assert_eq!(record.bytes_up, body.len() as u64);
}

#[tokio::test]
async fn the_method_is_scanned_and_never_audited_raw() {
    let h = start(|_| {}).await;
    let (url, authority) = h.http_url("api.test", "/m");
    // Positive: an unregistered method goes out, and the audit does not repeat it.
    let r = h
        .send(&format!(
            "FROBNICATE {url} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["method"], "FROBNICATE");
    let record = h.audit_where(|r| r.path == "/m").await;
    assert_eq!(record.method, "<other>");
    // A secret as the method is refused.
    let r = h
        .send(&format!(
            "{DB_PASSWORD} {url} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert_refused_secret(&r, "method");
    assert_eq!(h.arrived("/m").len(), 1, "the secret method arrived");
    let all = serde_json::to_string(&h.audit.records()).unwrap();
    assert!(!all.contains(DB_PASSWORD), "{all}");
}

#[tokio::test]
async fn a_short_secret_is_refused_at_start() {
    let err = match try_start(|c| c.dlp.secret_env.push("SHORT".into())).await {
        Ok(_) => panic!("a 3-byte secret was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("`SHORT`") && err.contains("8 bytes"), "{err}");
    assert!(err.contains("longer secret"), "{err}");
    assert!(!err.contains("abc"), "the value is in the error: {err}");
}

/// A masked client text frame.
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// Upgrades inside an intercepted tunnel to `host`.
async fn websocket(h: &Harness, host: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tls = h.tunnel(host, h.upstream.https_port).await;
    tls.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let r = read_response(&mut tls).await;
    assert_eq!(r.status, 101, "{}", r.body);
    tls
}

/// What comes back within a second: the bytes, and whether the connection was closed.
async fn ws_read(s: &mut (impl tokio::io::AsyncRead + Unpin), want: usize) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (got, false)
}

#[tokio::test]
async fn a_secret_in_a_websocket_frame_closes_it() {
    let h = start(|_| {}).await;
    let mut ws = websocket(&h, "api.test").await;
    // Positive: a clean frame goes up and is echoed back.
    let clean = ws_frame(b"hello, upstream");
    ws.write_all(&clean).await.unwrap();
    assert_eq!(ws_read(&mut ws, clean.len()).await, (clean, false));
    // The secret, split over two frames: nothing echoed, the connection closed.
    let (a, b) = DB_PASSWORD.split_at(5);
    ws.write_all(&ws_frame(format!("pw={a}").as_bytes()))
        .await
        .unwrap();
    let _ = ws_read(&mut ws, 2 + 4 + 3 + a.len()).await;
    ws.write_all(&ws_frame(b.as_bytes())).await.unwrap();
    let (echoed, closed) = ws_read(&mut ws, 1).await;
    assert!(echoed.is_empty() && closed, "{echoed:?} closed={closed}");
    let record = h
        .audit_where(|r| r.reason == "websocket closed: DLP: exact:DB_PASSWORD")
        .await;
    assert_eq!(record.decision, bottle_egress_proxy::audit::Decision::Deny);
}

#[tokio::test]
async fn a_route_token_echoed_over_a_websocket_closes_it() {
    let h = start(|_| {}).await;
    let mut ws = websocket(&h, "tok.test").await;
    let clean = ws_frame(b"just chatting");
    ws.write_all(&clean).await.unwrap();
    assert_eq!(ws_read(&mut ws, clean.len()).await, (clean, false));
    // The route's own token may go up to its route, but the upstream echoing it back is cut.
    ws.write_all(&ws_frame(TOK_TOKEN.as_bytes())).await.unwrap();
    let (echoed, closed) = ws_read(&mut ws, 1).await;
    assert!(echoed.is_empty() && closed, "{echoed:?} closed={closed}");
    h.audit_where(|r| r.reason == "websocket closed: DLP: exact:TOK_TOKEN (from upstream)")
        .await;
}
