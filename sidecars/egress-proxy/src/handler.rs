//! One HTTP request: target and Host checks, allowlist, route path rules, git push refusal, DLP,
//! credential injection, forwarding, and its audit record.

use std::sync::Arc;

use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHORIZATION, UPGRADE};
use http::uri::Scheme;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::audit::{AuditRecord, Decision};
use crate::body::{Counted, RespBody, empty, full};
use crate::dlp::Verdict;
use crate::host::Target;
use crate::path::{NormalPath, percent_decode_lossy};
use crate::proxy::{Conn, SendError};
use crate::scan::{Refusal, ScannedBody, dlp_refusal};
use crate::upstream::DialError;

/// Headers that concern one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// What the audit says about a request, gathered as it is decided.
pub(crate) struct Facts {
    pub(crate) method: String,
    pub(crate) target: Target,
    pub(crate) path: String,
    pub(crate) route: Option<String>,
    /// In learn mode, how the host stood with the allowlist.
    pub(crate) learn: Option<crate::audit::Learn>,
}

impl Facts {
    pub(crate) fn record(&self, decision: Decision, reason: impl Into<String>) -> AuditRecord {
        let mut r = AuditRecord::new(
            &self.method,
            &self.target.host,
            self.target.port,
            &self.path,
            decision,
            reason,
        );
        r.route = self.route.clone();
        r.learn = self.learn;
        r
    }
}

/// A refusal: audit it and answer `status` with `message`.
pub(crate) fn deny(
    conn: &Conn,
    facts: &Facts,
    status: StatusCode,
    reason: &str,
    message: String,
) -> Response<RespBody> {
    tracing::info!(host = %facts.target.host, path = %facts.path, %reason, "denied");
    conn.shared
        .audit
        .record(facts.record(Decision::Deny, reason));
    text(status, message)
}

/// A plain-text answer from the proxy itself.
pub(crate) fn text(status: StatusCode, message: String) -> Response<RespBody> {
    let mut response = Response::new(full(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert("x-bottle-egress", HeaderValue::from_static("denied"));
    response
}

/// The message for a host that is not on the allowlist.
pub(crate) fn not_allowed_message(host: &str) -> String {
    format!(
        "bottle egress proxy: refused: host `{host}` is not on this bottle's egress allowlist.\n\
         To allow it, ask the operator (the supervise `firewall-block` tool), \
         or add `{host}` to the bottle's `egress.allowlist`.\n"
    )
}

/// Handles one request arriving on `conn`.
pub(crate) async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Response<RespBody> {
    let live = conn.shared.live.load_full();
    if conn.tunnel.is_none() && req.method() == Method::CONNECT {
        return crate::connect::handle_connect(&conn, &live, req).await;
    }
    let path_only = req.uri().path().to_string();
    let mut facts = Facts {
        method: crate::audit::loggable_method(req.method().as_str()),
        target: Target {
            host: String::new(),
            port: 0,
        },
        path: audit_path(&live.policy, &path_only),
        route: None,
        learn: None,
    };

    // The real target: the tunnel's, or the absolute URI's. Never the Host header.
    let (target, tls) = match &conn.tunnel {
        Some(tunnel) => {
            if req.method() == Method::CONNECT {
                facts.target = tunnel.target.clone();
                return deny(
                    &conn,
                    &facts,
                    StatusCode::FORBIDDEN,
                    "CONNECT inside a tunnel",
                    "bottle egress proxy: refused: CONNECT inside a tunnel\n".into(),
                );
            }
            if let Some(authority) = req.uri().authority() {
                let same = Target::parse(authority.as_str(), tunnel.target.port)
                    .is_ok_and(|t| t == tunnel.target);
                if !same {
                    facts.target = tunnel.target.clone();
                    return deny(
                        &conn,
                        &facts,
                        StatusCode::FORBIDDEN,
                        "request URI does not match the CONNECT target",
                        format!(
                            "bottle egress proxy: refused: the request URI names `{authority}` but this tunnel goes to `{}`\n",
                            tunnel.target
                        ),
                    );
                }
            }
            (tunnel.target.clone(), tunnel.tls)
        }
        None => {
            let Some(authority) = req.uri().authority() else {
                return origin_form(&conn, &facts, &req);
            };
            if req.uri().scheme() != Some(&Scheme::HTTP) {
                return text(
                    StatusCode::BAD_REQUEST,
                    "bottle egress proxy: only http:// URIs are proxied directly; use CONNECT for https\n".into(),
                );
            }
            match Target::parse(authority.as_str(), 80) {
                Ok(t) => (t, false),
                Err(e) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("bottle egress proxy: {e}\n"),
                    );
                }
            }
        }
    };
    facts.target = target.clone();

    // The Host header must name the same host (and the same port, if it names one).
    let default_port = if tls { 443 } else { 80 };
    if !crate::host::host_header_matches(req.headers(), &target) {
        return deny(
            &conn,
            &facts,
            StatusCode::FORBIDDEN,
            "Host header does not match the target",
            format!(
                "bottle egress proxy: refused: the Host header does not match the target `{target}`\n"
            ),
        );
    }

    let policy = &live.policy;
    facts.learn = policy.learn_tag(&target.host);
    if policy.admission(&target.host) == crate::policy::Admission::Refused {
        return deny(
            &conn,
            &facts,
            StatusCode::FORBIDDEN,
            "host not allowed",
            not_allowed_message(&target.host),
        );
    }

    // Paths: normal form, route allowlist, git push.
    let route = policy.route(&target.host);
    facts.route = route.map(|r| r.host.clone());
    let normal = NormalPath::parse(&path_only);
    if let Some(route) = route.filter(|r| !r.path_allowlist.is_empty()) {
        let reason = match &normal {
            Err(e) => Some(format!("ambiguous path: {e}")),
            Ok(n) if !route.path_allowlist.iter().any(|p| n.starts_with(p)) => {
                Some("path not in the route's path_allowlist".to_string())
            }
            Ok(_) => None,
        };
        if let Some(reason) = reason {
            let message = format!(
                "bottle egress proxy: refused: {reason} (host `{}`)\n",
                target.host
            );
            return deny(&conn, &facts, StatusCode::FORBIDDEN, &reason, message);
        }
    }
    // Route rules (methods, TLS, the agent's own credentials) and TRACE: see `route_guard`.
    if let Some(refusal) = crate::route_guard::check(route, req.method(), tls, req.headers()) {
        return deny(
            &conn,
            &facts,
            StatusCode::FORBIDDEN,
            &refusal.reason,
            refusal.message,
        );
    }
    if is_git_push(req.uri().path_and_query().map_or("", |p| p.as_str())) {
        return deny(&conn, &facts, StatusCode::FORBIDDEN, "git push", "bottle egress proxy: refused: git push goes through bottle's git gate, not the network\n".into());
    }
    let mut forward_path = match &normal {
        Ok(n) => n.forward_form(),
        Err(_) => path_only.clone(),
    };
    if let Some(q) = req.uri().query() {
        forward_path.push('?');
        forward_path.push_str(q);
    }

    // Headers.
    let mut req = req;
    let websocket = is_websocket(req.headers());
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if websocket {
        // No permessage-deflate: frames must stay readable to the scan (crate::ws).
        headers.remove(http::header::SEC_WEBSOCKET_EXTENSIONS);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    }
    if let Some(route) = route {
        crate::route_guard::strip_credentials(route, &mut headers);
    }

    // DLP over the method, the URL (as sent and decoded) and the headers, before anything goes
    // out; the body is scanned as it streams (crate::scan).
    let decoded_url = percent_decode_lossy(forward_path.as_bytes());
    let header_blob = header_blob(&headers);
    let parts_scanned: [&[u8]; 4] = [
        parts.method.as_str().as_bytes(),
        forward_path.as_bytes(),
        &decoded_url,
        &header_blob,
    ];
    let mut reason = match facts.learn {
        Some(crate::audit::Learn::Learned) => String::from("learned: not on the allowlist"),
        _ => String::from("allowed"),
    };
    match policy.dlp.check(&target.host, &parts_scanned) {
        Verdict::Clean => {}
        Verdict::Block(rule) => return dlp_refusal(&conn, &facts, &Refusal::Secret(rule)),
        Verdict::Warn(rules) => {
            tracing::warn!(host = %target.host, rules = ?rules, "DLP patterns found; forwarding (dlp.patterns: warn)");
            reason = format!("allowed; DLP warn: {}", rules.join(","));
        }
    }
    let content_encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let scanner = match policy.dlp.body_scanner(content_encoding.as_deref()) {
        Ok(s) => s,
        Err(e) => return dlp_refusal(&conn, &facts, &Refusal::Undecodable(e)),
    };
    let (body, body_report) = ScannedBody::new(body, scanner, policy.dlp.clone(), &target.host);

    // Credentials go in after the scan.
    if let Some(auth) = route.and_then(|r| r.authorization.clone()) {
        headers.insert(AUTHORIZATION, auth);
    }
    let route_token = route.and_then(|r| r.token.clone());
    if route_token.is_some() {
        crate::token_guard::ask_identity(&mut headers);
    }
    if !headers.contains_key(HOST) {
        let host = if target.port == default_port {
            if target.host.contains(':') {
                format!("[{}]", target.host)
            } else {
                target.host.clone()
            }
        } else {
            target.authority()
        };
        if let Ok(v) = HeaderValue::from_str(&host) {
            headers.insert(HOST, v);
        }
    }
    // The framing is ours to set from what hyper read (no smuggling through a Content-Length
    // that disagrees with the body), and nothing upstream waits for a 100.
    headers.remove(CONTENT_LENGTH);
    headers.remove(http::header::EXPECT);
    let mut upstream_req = Request::new(body.boxed());
    *upstream_req.method_mut() = parts.method;
    *upstream_req.version_mut() = Version::HTTP_11;
    *upstream_req.headers_mut() = headers;
    *upstream_req.uri_mut() = match forward_path.parse() {
        Ok(uri) => uri,
        Err(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "bottle egress proxy: bad request path\n".into(),
            );
        }
    };

    let sent = if websocket {
        conn.send_upgrade(&live, &target, tls, upstream_req).await
    } else {
        conn.send(&live, &target, tls, upstream_req).await
    };
    let report = body_report.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(refusal) = &report.refusal {
        return dlp_refusal(&conn, &facts, refusal);
    }
    let bytes_up = report.bytes_up;
    if !report.warn.is_empty() {
        let rules = report.warn.join(",");
        tracing::warn!(host = %target.host, %rules, "DLP patterns found in the body; forwarding (dlp.patterns: warn)");
        reason = format!("{reason}; DLP warn in body: {rules}");
    }
    drop(report);
    let mut response = match sent {
        Ok(r) => r,
        Err(SendError::Dial(DialError::Forbidden(why))) => {
            let message = format!("bottle egress proxy: refused: {why}\n");
            return deny(
                &conn,
                &facts,
                StatusCode::FORBIDDEN,
                &format!("SSRF: {why}"),
                message,
            );
        }
        Err(e) => {
            tracing::warn!(host = %target.host, error = %e, "upstream failed");
            let mut record = facts.record(Decision::Allow, format!("upstream error: {e}"));
            record.bytes_up = bytes_up;
            conn.shared.audit.record(record);
            let mut r = text(
                StatusCode::BAD_GATEWAY,
                format!("bottle egress proxy: upstream error: {e}\n"),
            );
            r.headers_mut().remove("x-bottle-egress");
            return r;
        }
    };

    let mut record = facts.record(Decision::Allow, reason);
    record.bytes_up = bytes_up;
    if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) =
        (client_upgrade, response.status())
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let audit = conn.shared.audit.clone();
        let (dlp, host) = (policy.dlp.clone(), target.host.clone());
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let end =
                        crate::ws::relay(TokioIo::new(client), TokioIo::new(upstream), dlp, host)
                            .await;
                    record.bytes_up += end.up;
                    record.bytes_down = end.down;
                    record.reason = "allowed; websocket".into();
                    if let Some(rule) = end.refused {
                        tracing::info!(%rule, "websocket closed by the DLP");
                        record.decision = Decision::Deny;
                        record.reason = format!("websocket closed: DLP: {rule}");
                    }
                }
                Err(e) => record.reason = format!("allowed; websocket upgrade failed: {e}"),
            }
            audit.record(record);
        });
        let (mut parts, _) = response.into_parts();
        if let Some(token) = &route_token {
            crate::token_guard::cut_headers(&mut parts.headers, token);
        }
        return Response::from_parts(parts, empty());
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Counted::new(body, record, conn.shared.audit.clone());
    match route_token {
        Some(token) => crate::token_guard::guard(&target.host, parts, body, token),
        None => Response::from_parts(parts, RespBody::new(body)),
    }
}

/// An origin-form request to the proxy itself: only the health endpoint answers.
fn origin_form(conn: &Conn, facts: &Facts, req: &Request<Incoming>) -> Response<RespBody> {
    if req.method() == Method::GET && req.uri().path() == "/healthz" {
        let mut response = Response::new(full("ok\n"));
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        return response;
    }
    deny(
        conn,
        facts,
        StatusCode::BAD_REQUEST,
        "not a proxy request",
        "bottle egress proxy: this is a forward proxy; send absolute-URI requests or CONNECT\n"
            .into(),
    )
}

/// The path as the audit may show it: without query, and redacted if the DLP sees a secret.
fn audit_path(policy: &crate::policy::Policy, path: &str) -> String {
    let decoded = percent_decode_lossy(path.as_bytes());
    match policy.dlp.check("", &[path.as_bytes(), &decoded]) {
        Verdict::Clean => path.chars().take(512).collect(),
        _ => "<redacted>".into(),
    }
}

/// Whether a path and query ask for git's receive-pack (a push), however encoded.
pub fn is_git_push(path_and_query: &str) -> bool {
    let mut text = path_and_query.as_bytes().to_vec();
    for _ in 0..3 {
        let decoded = percent_decode_lossy(&text);
        if decoded == text {
            break;
        }
        text = decoded;
    }
    text.to_ascii_lowercase()
        .windows(b"git-receive-pack".len())
        .any(|w| w == b"git-receive-pack")
}

fn is_websocket(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    upgrade && connection
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
    headers.remove(PROXY_AUTHORIZATION);
}

fn header_blob(headers: &HeaderMap) -> Vec<u8> {
    let mut blob = Vec::with_capacity(512);
    for (name, value) in headers {
        blob.extend_from_slice(name.as_str().as_bytes());
        blob.extend_from_slice(b": ");
        blob.extend_from_slice(value.as_bytes());
        blob.push(b'\n');
        let decoded = percent_decode_lossy(value.as_bytes());
        if decoded != value.as_bytes() {
            blob.extend_from_slice(&decoded);
            blob.push(b'\n');
        }
    }
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_push_in_every_form() {
        assert!(is_git_push("/o/r.git/git-receive-pack"));
        assert!(is_git_push("/o/r.git/info/refs?service=git-receive-pack"));
        assert!(is_git_push("/o/r.git/git%2Dreceive%2Dpack"));
        assert!(is_git_push(
            "/o/r.git/info/refs?service=git%252Dreceive-pack"
        ));
        assert!(is_git_push("/o/r.git/GIT-RECEIVE-PACK"));
        assert!(!is_git_push("/o/r.git/git-upload-pack"));
        assert!(!is_git_push("/o/r.git/info/refs?service=git-upload-pack"));
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(PROXY_AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }
}
