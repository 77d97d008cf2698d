//! The rules a request meets before a route lends it its token: the route's methods, TLS on both
//! legs, and no credential of the agent's own beside the one the proxy injects. `TRACE` is refused
//! for every host (it would echo the request, and an injected token, back).

use bottle_egress_config::PLACEHOLDER_TOKEN;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, Method};

use crate::policy::RoutePolicy;

/// The credential headers an agent might use to put its own key beside the route's token.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key"];

/// Why a request is refused: the audit's short reason and the agent's message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// For the audit line.
    pub reason: String,
    /// The 403's body.
    pub message: String,
}

/// The first rule `method` … `headers` breaks on the way to `route` (if any), or `None`.
/// `tls` says whether the agent's request arrived over TLS (then the upstream leg is TLS too).
pub fn check(
    route: Option<&RoutePolicy>,
    method: &Method,
    tls: bool,
    headers: &HeaderMap,
) -> Option<Refusal> {
    if method == Method::TRACE {
        return Some(Refusal {
            reason: "TRACE refused".into(),
            message:
                "bottle egress proxy: refused: the TRACE method is never forwarded (it echoes \
                      the request, credentials included)\n"
                    .into(),
        });
    }
    let route = route?;
    method_refusal(route, method)
        .or_else(|| plain_http_refusal(route, tls))
        .or_else(|| foreign_credential_refusal(route, headers))
}

fn method_refusal(route: &RoutePolicy, method: &Method) -> Option<Refusal> {
    if route.methods.iter().any(|m| m == method.as_str()) {
        return None;
    }
    let mut wanted = route.methods.clone();
    wanted.push(method.as_str().to_string());
    Some(Refusal {
        reason: format!("method {method} not in the route's methods"),
        message: format!(
            "bottle egress proxy: refused: method `{method}` on route `{host}` (it allows {allowed}). \
             A route's token is write access, so every write method must be named.\n\
             To allow it, ask the operator (the supervise `egress-proxy-block` tool), or set \
             `methods: [{wanted}]` on the route `{host}` in the bottle's `egress_proxy.routes`.\n",
            host = route.host,
            allowed = route.methods.join(", "),
            wanted = wanted.join(", "),
        ),
    })
}

fn plain_http_refusal(route: &RoutePolicy, tls: bool) -> Option<Refusal> {
    if tls || route.authorization.is_none() {
        return None;
    }
    Some(Refusal {
        reason: "route token over plain http".into(),
        message: format!(
            "bottle egress proxy: refused: route `{host}` injects a token, which is never sent over \
             plain http; use https://{host}/ instead\n",
            host = route.host
        ),
    })
}

/// With a token injected, the agent may send only the placeholder it was given (or nothing): an
/// own key would make the route host act for whoever that key belongs to.
fn foreign_credential_refusal(route: &RoutePolicy, headers: &HeaderMap) -> Option<Refusal> {
    route.authorization.as_ref()?;
    let name = CREDENTIAL_HEADERS.iter().find(|name| {
        headers
            .get_all(**name)
            .iter()
            .any(|v| !is_placeholder(v.as_bytes()))
    })?;
    Some(Refusal {
        reason: format!("own credential in {name} on a route that injects one"),
        message: format!(
            "bottle egress proxy: refused: the request carries its own `{name}` header, but the \
             route `{host}` injects the operator's credential; send no `{name}` (or the placeholder \
             the bottle gave you) and the proxy puts the right one in\n",
            host = route.host
        ),
    })
}

/// `<placeholder>` or `<scheme> <placeholder>`.
fn is_placeholder(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let token = match value.iter().position(|b| *b == b' ') {
        Some(space) => value[space + 1..].trim_ascii(),
        None => value,
    };
    token == PLACEHOLDER_TOKEN.as_bytes()
}

/// Removes the agent's credential headers before the route's own goes in.
pub fn strip_credentials(route: &RoutePolicy, headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    if route.authorization.is_some() {
        for name in CREDENTIAL_HEADERS {
            headers.remove(HeaderName::from_static(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn route(methods: &[&str], token: bool) -> RoutePolicy {
        RoutePolicy {
            host: "api.x.test".into(),
            path_allowlist: vec![],
            methods: methods.iter().map(|m| m.to_string()).collect(),
            authorization: token.then(|| HeaderValue::from_static("Bearer real-token-0123456789")),
            token: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn trace_is_refused_with_or_without_a_route() {
        let none = HeaderMap::new();
        assert!(check(None, &Method::TRACE, true, &none).is_some());
        assert!(check(None, &Method::GET, true, &none).is_none());
        let r = route(&["GET", "TRACE"], false);
        assert!(check(Some(&r), &Method::TRACE, true, &none).is_some());
    }

    #[test]
    fn methods_say_what_to_write() {
        let r = route(&["GET", "HEAD", "OPTIONS"], true);
        let refusal = check(Some(&r), &Method::PUT, true, &HeaderMap::new()).unwrap();
        assert!(
            refusal
                .message
                .contains("`methods: [GET, HEAD, OPTIONS, PUT]` on the route `api.x.test`"),
            "{}",
            refusal.message
        );
        assert!(check(Some(&r), &Method::HEAD, true, &HeaderMap::new()).is_none());
    }

    #[test]
    fn only_the_placeholder_passes_beside_an_injected_token() {
        let r = route(&["GET"], true);
        let ok = [
            headers(&[]),
            headers(&[("x-api-key", PLACEHOLDER_TOKEN)]),
            headers(&[("authorization", &format!("Bearer {PLACEHOLDER_TOKEN}"))]),
        ];
        for h in ok {
            assert_eq!(check(Some(&r), &Method::GET, true, &h), None, "{h:?}");
        }
        let own = headers(&[("x-api-key", "sk-ant-attacker-key")]);
        let refusal = check(Some(&r), &Method::GET, true, &own).unwrap();
        assert!(refusal.message.contains("`x-api-key`"));
        assert!(!refusal.message.contains("attacker"));
        let two = headers(&[
            ("authorization", &format!("Bearer {PLACEHOLDER_TOKEN}")),
            ("authorization", "Bearer mine"),
        ]);
        assert!(check(Some(&r), &Method::GET, true, &two).is_some());
        // Without a token injected the agent's own key is its business (Authorization is stripped).
        let free = route(&["GET"], false);
        assert_eq!(check(Some(&free), &Method::GET, true, &own), None);
    }

    #[test]
    fn a_token_never_goes_over_plain_http() {
        let none = HeaderMap::new();
        assert!(check(Some(&route(&["GET"], true)), &Method::GET, false, &none).is_some());
        assert!(check(Some(&route(&["GET"], false)), &Method::GET, false, &none).is_none());
    }
}
