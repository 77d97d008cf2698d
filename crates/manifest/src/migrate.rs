//! Migration help for claude-bottle's `cred_proxy` section, which `egress_proxy` replaced.
//!
//! claude-bottle's shape varied between versions, so this recognises the likely spellings of each
//! setting, converts what it can, and lists the rest as comments for the user to port by hand.

use serde_yaml_ng::{Mapping, Value};

use crate::invalid::Invalid;
use crate::names;

const HOST_KEYS: &[&str] = &["host", "hostname", "domain", "match"];
const SCHEME_KEYS: &[&str] = &["scheme", "auth_scheme", "type"];
const TOKEN_KEYS: &[&str] = &["token_ref", "token_env", "env", "token", "secret"];
const PATH_KEYS: &[&str] = &["path_allowlist", "paths", "allowed_paths", "path_prefixes"];

/// The error for a `cred_proxy` section, carrying the equivalent `egress_proxy` block.
pub(crate) fn cred_proxy_error(value: &Value) -> Invalid {
    let routes = route_values(value);
    let mut yaml = String::from("egress_proxy:\n  routes:\n");
    if routes.is_empty() {
        yaml.push_str("    - host: api.example.com   # one route per host\n");
        yaml.push_str("      auth: {scheme: Bearer, token_ref: HOST_ENV_VAR}\n");
    }
    for (host, route) in &routes {
        yaml.push_str(&convert_route(host.as_deref(), route));
    }
    Invalid::new("`cred_proxy` is claude-bottle's key; bottle calls it `egress_proxy`")
        .hint(format!(
            "replace the `cred_proxy:` block with this equivalent (check the lines marked `#`):\n\n{}",
            yaml.trim_end()
        ))
        .find_top("cred_proxy", 0)
}

/// Each route's mapping, with the host when the section was keyed by host.
fn route_values(value: &Value) -> Vec<(Option<String>, &Mapping)> {
    let list = match value {
        Value::Mapping(map) => match map.get("routes") {
            Some(routes) => routes,
            None => return keyed_by_host(map),
        },
        other => other,
    };
    match list {
        Value::Sequence(items) => items
            .iter()
            .filter_map(Value::as_mapping)
            .map(|m| (None, m))
            .collect(),
        _ => Vec::new(),
    }
}

/// `cred_proxy: {api.github.com: {…}}`.
fn keyed_by_host(map: &Mapping) -> Vec<(Option<String>, &Mapping)> {
    map.iter()
        .filter_map(|(key, value)| Some((Some(key.as_str()?.to_string()), value.as_mapping()?)))
        .collect()
}

fn convert_route(keyed_host: Option<&str>, route: &Mapping) -> String {
    let auth = route.get("auth").and_then(Value::as_mapping);
    let host = keyed_host
        .map(str::to_string)
        .or_else(|| first_text(route, HOST_KEYS));
    let scheme = auth
        .and_then(|a| first_text(a, SCHEME_KEYS))
        .or_else(|| first_text(route, SCHEME_KEYS));
    let token = auth
        .and_then(|a| first_text(a, TOKEN_KEYS))
        .or_else(|| first_text(route, TOKEN_KEYS));
    let mut out = format!(
        "    - host: {}\n",
        host.map_or("HOST   # not found: set the host".to_string(), |h| scalar(
            &h
        ))
    );
    if scheme.is_some() || token.is_some() {
        out.push_str(&auth_lines(scheme.as_deref(), token.as_deref()));
    }
    out.push_str(&path_lines(route));
    out.push_str(&leftover_lines(route, auth));
    out
}

fn auth_lines(scheme: Option<&str>, token: Option<&str>) -> String {
    let scheme = match scheme.map(str::to_ascii_lowercase).as_deref() {
        Some("bearer") => "Bearer".to_string(),
        Some("token") => "token".to_string(),
        Some(other) => format!("Bearer   # was `{other}`: use `Bearer` or `token`"),
        None => "Bearer   # assumed: use `token` for GitHub's classic form".to_string(),
    };
    let token = token.map(|t| t.trim_start_matches("${").trim_end_matches('}').to_string());
    let token = match token {
        Some(name) if names::is_env_name(&name) => name,
        Some(other) => format!("HOST_ENV_VAR   # was `{other}`: name the host variable"),
        None => "HOST_ENV_VAR   # not found: name the host variable holding the token".to_string(),
    };
    format!("      auth:\n        scheme: {scheme}\n        token_ref: {token}\n")
}

fn path_lines(route: &Mapping) -> String {
    let Some(paths) = PATH_KEYS.iter().find_map(|k| route.get(*k)?.as_sequence()) else {
        return String::new();
    };
    let mut out = String::from("      path_allowlist:\n");
    for path in paths.iter().filter_map(Value::as_str) {
        out.push_str(&format!("        - {}\n", scalar(path)));
    }
    out
}

/// Settings this conversion does not understand, so that nothing is lost silently.
fn leftover_lines(route: &Mapping, auth: Option<&Mapping>) -> String {
    let known = |key: &str| {
        key == "auth"
            || [HOST_KEYS, SCHEME_KEYS, TOKEN_KEYS, PATH_KEYS]
                .iter()
                .any(|keys| keys.contains(&key))
    };
    let route_keys = route.keys().filter_map(Value::as_str).filter(|k| !known(k));
    let auth_keys = auth
        .into_iter()
        .flat_map(|a| a.keys().filter_map(Value::as_str))
        .filter(|k| !SCHEME_KEYS.contains(k) && !TOKEN_KEYS.contains(k));
    route_keys
        .chain(auth_keys)
        .map(|key| format!("      # not converted: `{key}`\n"))
        .collect()
}

fn first_text(map: &Mapping, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| match map.get(*key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
}

/// A YAML scalar: plain when safe, double-quoted (JSON syntax, which YAML accepts) otherwise.
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !text.starts_with('-');
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(yaml: &str) -> String {
        let value: Value = serde_yaml_ng::from_str(yaml).unwrap();
        cred_proxy_error(&value).hint.unwrap()
    }

    #[test]
    fn converts_routes_with_flat_keys() {
        let hint = hint(
            "routes:\n  - host: api.github.com\n    scheme: token\n    token_env: GH_TOKEN\n    \
             path_allowlist: [/repos/]\n    retries: 3\n",
        );
        assert!(hint.contains("- host: api.github.com"), "{hint}");
        assert!(hint.contains("scheme: token\n"), "{hint}");
        assert!(hint.contains("token_ref: GH_TOKEN\n"), "{hint}");
        assert!(hint.contains("- /repos/"), "{hint}");
        assert!(hint.contains("# not converted: `retries`"), "{hint}");
    }

    #[test]
    fn converts_hosts_as_keys_and_nested_auth() {
        let hint =
            hint("api.anthropic.com:\n  auth: {scheme: bearer, env: \"${ANTHROPIC_KEY}\"}\n");
        assert!(hint.contains("- host: api.anthropic.com"), "{hint}");
        assert!(hint.contains("scheme: Bearer\n"), "{hint}");
        assert!(hint.contains("token_ref: ANTHROPIC_KEY"), "{hint}");
    }

    #[test]
    fn unrecognised_shapes_get_a_skeleton() {
        assert!(hint("true").contains("token_ref: HOST_ENV_VAR"));
    }
}
