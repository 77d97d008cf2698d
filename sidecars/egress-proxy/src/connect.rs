//! `CONNECT` tunnels: intercepted (TLS terminated with a leaf from our CA, each request then
//! handled like any other) or passthrough (bytes spliced after checking the ClientHello's SNI).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::LazyConfigAcceptor;

use crate::audit::Decision;
use crate::body::{RespBody, empty};
use crate::handler::{Facts, deny, not_allowed_message, text};
use crate::host::{Target, canonical_host};
use crate::net::BoxFuture;
use crate::proxy::{Conn, Live, Shared, Tunnel};
use crate::rewind::Rewind;
use crate::sni::{Hello, MAX_HELLO, parse_client_hello};
use crate::upstream::{self, DialError, Resolved};

/// How long a client may take to start TLS in a tunnel.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Decides a `CONNECT` and, if allowed, answers 200 and runs the tunnel in the background.
pub(crate) async fn handle_connect(
    conn: &Conn,
    live: &Live,
    mut req: Request<Incoming>,
) -> Response<RespBody> {
    let policy = &live.policy;
    let Some(authority) = req.uri().authority().cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "bottle egress proxy: CONNECT needs host:port\n".into(),
        );
    };
    let target = match Target::parse(authority.as_str(), 443) {
        Ok(t) => t,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("bottle egress proxy: {e}\n"),
            );
        }
    };
    let mut facts = Facts {
        method: "CONNECT".into(),
        target: target.clone(),
        path: String::new(),
        route: policy.route(&target.host).map(|r| r.host.clone()),
        learn: policy.learn_tag(&target.host),
    };
    if !crate::host::host_header_matches(req.headers(), &target) {
        return deny(
            conn,
            &facts,
            StatusCode::FORBIDDEN,
            "CONNECT authority and Host header differ",
            format!(
                "bottle egress proxy: refused: the Host header does not match the CONNECT target `{target}`\n"
            ),
        );
    }
    if policy.admission(&target.host) == crate::policy::Admission::Refused {
        return deny(
            conn,
            &facts,
            StatusCode::FORBIDDEN,
            "host not allowed",
            not_allowed_message(&target.host),
        );
    }
    let resolved = match upstream::resolve(policy, &*conn.shared.net, &target).await {
        Ok(r) => r,
        Err(DialError::Forbidden(why)) => {
            return deny(
                conn,
                &facts,
                StatusCode::FORBIDDEN,
                &format!("SSRF: {why}"),
                format!("bottle egress proxy: refused: {why}\n"),
            );
        }
        Err(e) => {
            return deny(
                conn,
                &facts,
                StatusCode::BAD_GATEWAY,
                &format!("upstream error: {e}"),
                format!("bottle egress proxy: {e}\n"),
            );
        }
    };
    let passthrough = facts.route.is_none() && policy.passthrough.matches(&target.host);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let shared = conn.shared.clone();
    if passthrough {
        tokio::spawn(passthrough_tunnel(shared, facts, resolved, on_upgrade));
    } else {
        facts.path = String::new();
        let reason = match facts.learn {
            Some(crate::audit::Learn::Learned) => {
                "tunnel (intercepted); learned: not on the allowlist"
            }
            _ => "tunnel (intercepted)",
        };
        shared.audit.record(facts.record(Decision::Allow, reason));
        tokio::spawn(intercepted_tunnel(shared, target, resolved, on_upgrade));
    }
    Response::new(empty())
}

/// Splices a passthrough tunnel once the ClientHello's SNI matches the CONNECT host.
async fn passthrough_tunnel(
    shared: Arc<Shared>,
    facts: Facts,
    resolved: Resolved,
    on_upgrade: OnUpgrade,
) {
    let record = |decision, reason: &str| facts.record(decision, reason);
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let mut client = TokioIo::new(upgraded);
    let mut hello = Vec::with_capacity(2048);
    let sni = loop {
        match parse_client_hello(&hello) {
            Hello::Complete(sni) => break sni,
            Hello::NotTls => {
                shared
                    .audit
                    .record(record(Decision::Deny, "passthrough: not a TLS ClientHello"));
                return;
            }
            Hello::Incomplete if hello.len() >= MAX_HELLO => {
                shared
                    .audit
                    .record(record(Decision::Deny, "passthrough: ClientHello too large"));
                return;
            }
            Hello::Incomplete => {}
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(HELLO_TIMEOUT, client.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => hello.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let sni_host = sni.as_deref().and_then(canonical_host);
    if sni_host.as_deref() != Some(facts.target.host.as_str()) {
        let reason = match sni {
            Some(_) => "passthrough: SNI does not match the CONNECT host",
            None => "passthrough: ClientHello has no SNI",
        };
        tracing::info!(host = %facts.target.host, "{reason}");
        shared.audit.record(record(Decision::Deny, reason));
        return;
    }
    let mut upstream = match upstream::connect(&*shared.net, &resolved).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(host = %facts.target.host, error = %e, "passthrough upstream failed");
            shared.audit.record(record(
                Decision::Allow,
                &format!("passthrough; upstream error: {e}"),
            ));
            return;
        }
    };
    if upstream.write_all(&hello).await.is_err() {
        return;
    }
    let copied = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    let (up, down) = copied.unwrap_or_default();
    let mut r = record(Decision::Allow, "passthrough");
    r.bytes_up = up + hello.len() as u64;
    r.bytes_down = down;
    shared.audit.record(r);
}

/// Terminates the client's TLS with a leaf for the CONNECT host and serves HTTP inside.
///
/// Boxed: serving the tunnel handles requests, which may handle `CONNECT`s, which spawn this.
fn intercepted_tunnel(
    shared: Arc<Shared>,
    target: Target,
    resolved: Resolved,
    on_upgrade: OnUpgrade,
) -> BoxFuture<'static, ()> {
    Box::pin(intercept(shared, target, resolved, on_upgrade))
}

async fn intercept(shared: Arc<Shared>, target: Target, resolved: Resolved, on_upgrade: OnUpgrade) {
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let mut io = TokioIo::new(upgraded);
    let mut first = [0u8; 1];
    match tokio::time::timeout(HELLO_TIMEOUT, io.read(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    let stream = Rewind::new(first.to_vec(), io);
    if first[0] != 0x16 {
        // Plain HTTP inside the tunnel (ws:// or http:// through CONNECT).
        let conn = Conn::new(
            shared,
            Some(Tunnel {
                target,
                tls: false,
                resolved,
            }),
        );
        crate::proxy::serve(Arc::new(conn), stream).await;
        return;
    }
    let facts = Facts {
        method: "CONNECT".into(),
        target: target.clone(),
        path: String::new(),
        route: None,
        learn: None,
    };
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match tokio::time::timeout(HELLO_TIMEOUT, acceptor).await {
        Ok(Ok(start)) => start,
        _ => return,
    };
    if let Some(sni) = start.client_hello().server_name()
        && canonical_host(sni).as_deref() != Some(target.host.as_str())
    {
        tracing::info!(host = %target.host, "SNI does not match the CONNECT host");
        shared
            .audit
            .record(facts.record(Decision::Deny, "SNI does not match the CONNECT host"));
        return;
    }
    let config = match shared.live.load().policy.tls.server_config(&target.host) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a leaf certificate");
            return;
        }
    };
    let tls = match tokio::time::timeout(HELLO_TIMEOUT, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(host = %target.host, error = %e, "client TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let conn = Conn::new(
        shared,
        Some(Tunnel {
            target,
            tls: true,
            resolved,
        }),
    );
    crate::proxy::serve(Arc::new(conn), tls).await;
}
