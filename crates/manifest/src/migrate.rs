//! Migration from claude-bottle: the text rewrites `bottle migrate` applies to its manifests
//! ([`bottle`], [`agent`]), and the recipe printed for its `cred_proxy` section, which
//! `egress_proxy` replaced.
//!
//! claude-bottle's shape varied between versions, so this recognises the likely spellings of each
//! setting, converts what it can, and lists the rest as comments for the user to port by hand.

use yaml_serde::{Mapping, Value};

use crate::frontmatter;
use crate::invalid::Invalid;
use crate::names;

/// A manifest after migration: its new text, what was rewritten and what the user should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The manifest to write (the original text when nothing was rewritten).
    pub text: String,
    /// Each rewrite, in words.
    pub changes: Vec<String>,
    /// What was left as it was but needs the user's eye.
    pub notes: Vec<String>,
}

/// The words of claude-bottle's supervise tool that bottle's tools replaced.
const OLD_SUPERVISE_TOOL: &str = "pipelock-block";

/// Rewrites a claude-bottle bottle manifest: `egress.dlp_action` becomes
/// `egress_proxy.dlp_patterns`, and the later-era `egress.routes` becomes `egress_proxy.routes`.
/// A frontmatter that changes is written anew, without its comments (the caller keeps the
/// original); one that does not is returned byte for byte.
pub fn bottle(text: &str) -> Migrated {
    let unchanged = |notes| Migrated {
        text: text.to_string(),
        changes: Vec::new(),
        notes,
    };
    let Ok(front) = frontmatter::split(text) else {
        return unchanged(vec!["no `---` frontmatter: copied as it was".into()]);
    };
    let Ok(Value::Mapping(mut top)) = yaml_serde::from_str::<Value>(front.yaml) else {
        return unchanged(vec![
            "the frontmatter is not a YAML mapping: copied as it was".into(),
        ]);
    };
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    move_egress_keys(&mut top, &mut changes, &mut notes);
    if top.contains_key("cred_proxy") {
        notes.push(
            "`cred_proxy` is left for you: `bottle start` prints the equivalent `egress_proxy` \
             block to paste"
                .into(),
        );
    }
    if changes.is_empty() {
        return unchanged(notes);
    }
    let yaml = yaml_serde::to_string(&Value::Mapping(top)).unwrap_or_default();
    notes.push("comments in the frontmatter were not kept (the original file has them)".into());
    Migrated {
        text: format!("---\n{yaml}---\n{}", front.body),
        changes,
        notes,
    }
}

/// Rewrites a claude-bottle agent manifest: nothing in its frontmatter changed, and its prompt is
/// the user's to edit, so only mentions of claude-bottle's supervise tool are pointed out.
pub fn agent(text: &str) -> Migrated {
    let mut notes = Vec::new();
    if text.contains(OLD_SUPERVISE_TOOL) {
        notes.push(format!(
            "the prompt mentions `{OLD_SUPERVISE_TOOL}`, claude-bottle's supervise tool; left as \
             it is: bottle's tools are `egress-proxy-block`, `firewall-block`, `capability-block` \
             and `git-rule-block`"
        ));
    }
    Migrated {
        text: text.to_string(),
        changes: Vec::new(),
        notes,
    }
}

/// `egress.dlp_action` and `egress.routes` into `egress_proxy`; an emptied `egress` goes.
fn move_egress_keys(top: &mut Mapping, changes: &mut Vec<String>, notes: &mut Vec<String>) {
    let Some(Value::Mapping(egress)) = top.get_mut("egress") else {
        return;
    };
    let action = egress.remove("dlp_action");
    let routes = egress.remove("routes");
    let emptied = egress.is_empty();
    if emptied {
        top.remove("egress");
    }
    if action.is_none() && routes.is_none() {
        return;
    }
    let proxy = top
        .entry(Value::from("egress_proxy"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if proxy.is_null() {
        *proxy = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(proxy) = proxy else {
        notes.push("`egress_proxy` is not a mapping: `egress.dlp_action`/`egress.routes` dropped; add them by hand".into());
        return;
    };
    if let Some(action) = action {
        move_dlp_action(proxy, action, changes);
    }
    if let Some(routes) = routes {
        move_routes(proxy, routes, changes);
    }
}

fn move_dlp_action(proxy: &mut Mapping, action: Value, changes: &mut Vec<String>) {
    match proxy.get("dlp_patterns") {
        Some(existing) if *existing != action => changes.push(format!(
            "`egress.dlp_action` ({}) dropped: `egress_proxy.dlp_patterns` already says {}",
            plain(&action),
            plain(existing)
        )),
        _ => {
            changes.push(format!(
                "`egress.dlp_action: {0}` → `egress_proxy.dlp_patterns: {0}`",
                plain(&action)
            ));
            proxy.insert(Value::from("dlp_patterns"), action);
        }
    }
}

fn move_routes(proxy: &mut Mapping, routes: Value, changes: &mut Vec<String>) {
    let moved = match routes {
        Value::Sequence(items) => items,
        other => vec![other],
    };
    changes.push(format!(
        "`egress.routes` ({} route{}) → `egress_proxy.routes`",
        moved.len(),
        if moved.len() == 1 { "" } else { "s" }
    ));
    match proxy.get_mut("routes") {
        Some(Value::Sequence(existing)) => existing.extend(moved),
        _ => {
            proxy.insert(Value::from("routes"), Value::Sequence(moved));
        }
    }
}

/// A scalar as the user wrote it, for the report.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => yaml_serde::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

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

    #[test]
    fn dlp_action_and_egress_routes_move_to_egress_proxy() {
        let old = "---\n# mine\negress:\n  allowlist: [crates.io]\n  dlp_action: warn\n  routes:\n    \
                   - host: api.github.com\n      auth: {scheme: token, token_ref: GH}\n---\nNotes.\n";
        let migrated = bottle(old);
        assert_eq!(migrated.changes.len(), 2, "{migrated:?}");
        let new: Value =
            yaml_serde::from_str(frontmatter::split(&migrated.text).unwrap().yaml).unwrap();
        assert_eq!(new["egress_proxy"]["dlp_patterns"], Value::from("warn"));
        assert_eq!(
            new["egress_proxy"]["routes"][0]["host"],
            Value::from("api.github.com")
        );
        assert_eq!(new["egress"]["allowlist"][0], Value::from("crates.io"));
        assert!(new["egress"].get("dlp_action").is_none());
        assert!(
            migrated.text.ends_with("---\nNotes.\n"),
            "{}",
            migrated.text
        );
        assert!(migrated.notes.iter().any(|n| n.contains("comments")));
    }

    #[test]
    fn a_bottle_without_old_keys_is_copied_byte_for_byte() {
        let text = "---\n# keep me\nsupervise: true\n---\n";
        let migrated = bottle(text);
        assert_eq!((migrated.text.as_str(), migrated.changes.len()), (text, 0));
    }

    #[test]
    fn an_emptied_egress_goes_and_a_contradiction_is_reported() {
        let migrated = bottle("---\negress:\n  dlp_action: warn\n---\n");
        assert!(!migrated.text.contains("egress:\n"), "{}", migrated.text);
        let both = "---\negress:\n  dlp_action: warn\negress_proxy:\n  dlp_patterns: block\n---\n";
        let migrated = bottle(both);
        assert!(
            migrated
                .changes
                .iter()
                .any(|n| n.contains("already says block"))
        );
        assert!(!migrated.text.contains("dlp_action"), "{}", migrated.text);
    }

    #[test]
    fn pipelock_block_in_a_prompt_is_reported_not_rewritten() {
        let text = "---\nbottle: dev\n---\nUse pipelock-block to ask.\n";
        let migrated = agent(text);
        assert_eq!(migrated.text, text);
        assert!(migrated.notes[0].contains("egress-proxy-block"));
        assert!(agent("---\nbottle: dev\n---\n").notes.is_empty());
    }

    fn hint(yaml: &str) -> String {
        let value: Value = yaml_serde::from_str(yaml).unwrap();
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
