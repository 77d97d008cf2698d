//! The five MCP tools: their names, descriptions and JSON schemas (what the agent reads), and the
//! checks that turn a call's arguments into a proposal or refuse it with a message saying what is
//! wrong and how to fix it.
//!
//! Nothing here touches the queue: [`parse`] checks the arguments on their own, [`check_current`]
//! compares them with the configuration the host published. Only a call that passes both is queued.

use std::sync::Arc;

use bottle_egress_config::Route;
use bottle_git_gate_config::Policy;
use bottle_host_pattern::{HostName, HostPattern};
use bottle_supervise_queue::{Change, CurrentConfig, Limits, Proposal, ProposalError, Tool};
use rmcp::model::{JsonObject, Tool as ToolInfo, ToolAnnotations};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The read-only tool: the current configuration, immediately, no proposal.
pub const LIST_EGRESS_ROUTES: &str = "list-egress-routes";

/// Every tool name, in the order `tools/list` gives them.
pub const NAMES: [&str; 5] = [
    "egress-proxy-block",
    "firewall-block",
    "capability-block",
    "git-rule-block",
    LIST_EGRESS_ROUTES,
];

/// A call the server understood and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// Queue a proposal and wait for the operator's decision.
    Propose {
        /// The tool it came from.
        tool: Tool,
        /// Why the agent asks (shown to the operator).
        justification: String,
        /// What it asks for, already checked with [`Change::check`].
        change: Change,
    },
    /// Return the published configuration.
    ListEgressRoutes,
}

impl Call {
    /// The proposal to queue for this call, with a fresh id and the current time.
    pub fn proposal(&self, id: String, created_at: String) -> Option<Proposal> {
        match self {
            Call::Propose {
                tool,
                justification,
                change,
            } => Some(Proposal {
                id,
                tool: *tool,
                justification: justification.clone(),
                created_at,
                change: change.clone(),
            }),
            Call::ListEgressRoutes => None,
        }
    }
}

/// A call refused before anything was queued, with what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tool}: nothing was queued: {message}")]
pub struct Refused {
    /// The tool called.
    pub tool: String,
    /// The offending argument, such as `routes[2].host`, when one is to blame.
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Refused {
    fn new(tool: &str, message: impl Into<String>) -> Self {
        Refused {
            tool: tool.to_owned(),
            field: None,
            message: message.into(),
        }
    }

    fn from_proposal(tool: Tool, error: ProposalError) -> Self {
        Refused {
            tool: tool.name().to_owned(),
            message: error.to_string(),
            field: Some(error.field),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesArgs {
    justification: String,
    routes: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirewallArgs {
    justification: String,
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilityArgs {
    justification: String,
    dockerfile: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GitRuleArgs {
    justification: String,
    repo: String,
    policy: Policy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// Check a call's arguments on their own: known tool, exactly the fields of its schema, and a
/// proposal that passes [`Proposal::check`].
pub fn parse(name: &str, arguments: Option<&JsonObject>) -> Result<Call, Refused> {
    let Some(tool) = Tool::ALL.into_iter().find(|t| t.name() == name) else {
        if name == LIST_EGRESS_ROUTES {
            args::<NoArgs>(name, arguments)?;
            return Ok(Call::ListEgressRoutes);
        }
        return Err(Refused::new(
            name,
            format!("there is no such tool; the tools are {}", NAMES.join(", ")),
        ));
    };
    let mut token_ref_named = false;
    let (justification, change) = match tool {
        Tool::EgressProxyBlock => {
            let (arguments, named) = token_refs_as_env(name, arguments)?;
            token_ref_named = named;
            let a: RoutesArgs = args(name, Some(&arguments))?;
            (a.justification, Change::Routes { routes: a.routes })
        }
        Tool::FirewallBlock => {
            let a: FirewallArgs = args(name, arguments)?;
            // Before trimming, which would quietly drop a trailing CR or other control.
            bottle_supervise_queue::check_plain_text("url", &a.url, false)
                .map_err(|e| Refused::from_proposal(tool, e))?;
            let change = Change::allow_host_from_url(a.url.trim())
                .map_err(|e| Refused::from_proposal(tool, e))?;
            (a.justification, change)
        }
        Tool::CapabilityBlock => {
            let a: CapabilityArgs = args(name, arguments)?;
            (
                a.justification,
                Change::Dockerfile {
                    dockerfile: a.dockerfile,
                },
            )
        }
        Tool::GitRuleBlock => {
            let a: GitRuleArgs = args(name, arguments)?;
            (
                a.justification,
                Change::GitRule {
                    repo: a.repo,
                    policy: a.policy,
                },
            )
        }
    };
    let call = Call::Propose {
        tool,
        justification,
        change,
    };
    // The same check the queue runs on submit, here so a refusal names the field.
    let probe = call
        .proposal("0-check".into(), String::new())
        .expect("a proposing call");
    probe.check().map_err(|e| {
        let mut refused = Refused::from_proposal(tool, e);
        if token_ref_named {
            // Name the field as the agent sent it.
            let as_sent = |text: &str| text.replace(".auth.token_env", ".auth.token_ref");
            refused.field = refused.field.as_deref().map(as_sent);
            refused.message = as_sent(&refused.message);
        }
        refused
    })?;
    Ok(call)
}

/// A route's token by the name the manifest gives it (`egress_proxy.routes[].auth.token_ref`):
/// the tools take and show this one.
const TOKEN_REF: &str = "token_ref";
/// The same name as the egress proxy's config and the queue spell it; still accepted from the
/// agent, deprecated (an agent that read older docs still works), with a warning in the log.
const TOKEN_ENV: &str = "token_env";

/// `arguments` with each route's `auth.token_ref` renamed to the config's `token_env`, and whether
/// any route named one. A route that names both is refused.
fn token_refs_as_env(
    tool: &str,
    arguments: Option<&JsonObject>,
) -> Result<(JsonObject, bool), Refused> {
    let mut arguments = arguments.cloned().unwrap_or_default();
    let mut named = false;
    let routes = arguments.get_mut("routes").and_then(Value::as_array_mut);
    for (i, route) in routes.into_iter().flatten().enumerate() {
        let Some(auth) = route.get_mut("auth").and_then(Value::as_object_mut) else {
            continue;
        };
        match (auth.remove(TOKEN_REF), auth.contains_key(TOKEN_ENV)) {
            (Some(_), true) => {
                return Err(Refused {
                    tool: tool.to_owned(),
                    field: Some(format!("routes[{i}].auth")),
                    message: format!(
                        "routes[{i}].auth names the token twice ({TOKEN_REF} and the deprecated                          {TOKEN_ENV}); send {TOKEN_REF} only"
                    ),
                });
            }
            (Some(token), false) => {
                named = true;
                auth.insert(TOKEN_ENV.to_owned(), token);
            }
            (None, true) => tracing::warn!(
                tool,
                "routes[{i}].auth.{TOKEN_ENV} is deprecated; the tool's schema names it {TOKEN_REF}"
            ),
            (None, false) => {
                return Err(Refused {
                    tool: tool.to_owned(),
                    field: Some(format!("routes[{i}].auth.{TOKEN_REF}")),
                    message: format!(
                        "routes[{i}].auth.{TOKEN_REF} is missing: name the variable that holds \
                         the token, as list-egress-routes shows it"
                    ),
                });
            }
        }
    }
    Ok((arguments, named))
}

/// The published configuration as the agent reads it: each route's token named `token_ref`, as
/// in the manifest and the tools' schema.
pub fn current_for_agent(current: &CurrentConfig) -> Value {
    let mut value = serde_json::to_value(current).expect("the current config serializes");
    let routes = value.get_mut("routes").and_then(Value::as_array_mut);
    for route in routes.into_iter().flatten() {
        if let Some(auth) = route.get_mut("auth").and_then(Value::as_object_mut)
            && let Some(token) = auth.remove(TOKEN_ENV)
        {
            auth.insert(TOKEN_REF.to_owned(), token);
        }
    }
    value
}

fn args<T: DeserializeOwned>(tool: &str, arguments: Option<&JsonObject>) -> Result<T, Refused> {
    let value = Value::Object(arguments.cloned().unwrap_or_default());
    serde_json::from_value(value).map_err(|e| {
        Refused::new(
            tool,
            format!("invalid arguments: {e}; send exactly the fields of the tool's input schema"),
        )
    })
}

/// What a tool changes, for a bottle that lacks it.
fn what_it_changes(tool: Tool) -> &'static str {
    match tool {
        Tool::EgressProxyBlock => "an egress proxy with credential routes",
        Tool::FirewallBlock => "an egress firewall with a host allowlist",
        Tool::CapabilityBlock => "a rebuildable agent image",
        Tool::GitRuleBlock => "a git gate",
    }
}

/// Compare a checked call with the configuration the host published: the bottle must have what
/// the tool changes, a git entry must exist, a host must not be allowed already, and a proposal
/// must change something.
pub fn check_current(call: &Call, current: &CurrentConfig) -> Result<(), Refused> {
    let Call::Propose { tool, change, .. } = call else {
        return Ok(());
    };
    let tool = *tool;
    let name = tool.name();
    if !current.tools.is_empty() && !current.tools.contains(&tool) {
        let available: Vec<&str> = current.tools.iter().map(|t| t.name()).collect();
        return Err(Refused::new(
            name,
            format!(
                "this bottle lacks {}, so there is nothing for {name} to change; the tools this \
                 bottle can act on are {} (and {LIST_EGRESS_ROUTES}). If you really need it, say \
                 so to the user: adding it is a change to the bottle's manifest",
                what_it_changes(tool),
                available.join(", ")
            ),
        ));
    }
    match change {
        Change::Routes { routes } => {
            if *routes == current.routes {
                return Err(Refused {
                    tool: name.into(),
                    field: Some("routes".into()),
                    message: "these are exactly the current routes, so nothing would change; \
                              call list-egress-routes, then send the whole set with your edit"
                        .into(),
                });
            }
        }
        Change::AllowHost { host, .. } => {
            if let Some(entry) = allowed_by(&current.allow, host) {
                return Err(Refused {
                    tool: name.into(),
                    field: Some("url".into()),
                    message: format!(
                        "`{host}` is already allowed (allowlist entry `{entry}`), so the \
                         allowlist is not what blocked the request: look at the refusal again \
                         (a credential route's path allowlist, the secret scanner, a private \
                         address, a git push, or an error from the server itself)"
                    ),
                });
            }
        }
        Change::GitRule { repo, policy } => {
            let Some(entry) = current.git.iter().find(|g| g.name == *repo) else {
                let known: Vec<&str> = current.git.iter().map(|g| g.name.as_str()).collect();
                let known = if known.is_empty() {
                    "this bottle has no git entries".to_owned()
                } else {
                    format!("the git entries are {}", known.join(", "))
                };
                return Err(Refused {
                    tool: name.into(),
                    field: Some("repo".into()),
                    message: format!("there is no git entry `{repo}`; {known}"),
                });
            };
            if entry.policy == *policy {
                return Err(Refused {
                    tool: name.into(),
                    field: Some("policy".into()),
                    message: format!(
                        "this is exactly the current policy of `{repo}`, so nothing would change"
                    ),
                });
            }
        }
        Change::Dockerfile { .. } => {}
    }
    Ok(())
}

/// The allowlist entry that lets `host` through, read by `bottle-host-pattern` as the egress proxy
/// reads it: case and a trailing dot do not matter, and `*` matches exactly one DNS label.
pub fn allowed_by<'a>(allow: &'a [String], host: &str) -> Option<&'a String> {
    let host = HostName::parse(host).ok()?;
    allow.iter().find(|entry| {
        HostPattern::parse(entry.trim()).is_ok_and(|pattern| pattern.matches_host(&host))
    })
}

const WAITS: &str = "The call BLOCKS until a human operator decides, which can take minutes or \
hours; nothing is changed before that. The justification is shown to the operator as you write \
it: say what you were doing, exactly what was refused (quote the error), and why this change is \
the right fix. It returns {\"status\": ..., \"notes\": ...}: \"approved\" (applied as proposed), \
\"modified\" (the operator applied a changed version: call list-egress-routes to see what is in \
force), \"rejected\" (not applied; the notes say why, do not ask again for the same thing) or \
\"expired\" (the bottle is going away). Invalid arguments are refused at once with a message \
saying what to fix, and nothing reaches the operator.";

fn description(tool: Tool) -> String {
    let what = match tool {
        Tool::EgressProxyBlock => format!(
            "Ask the human operator to replace this bottle's credential routes: the egress proxy \
             injects an API token into requests to a route's host and limits them to its path \
             prefixes and methods. Use it when a request through a route was refused (a path outside \
             the route's path_allowlist, a method not in its methods) or a host needs a token \
             injected. Send the WHOLE new set \
             (at most {} routes): call {LIST_EGRESS_ROUTES} first, copy `routes` and edit it; a \
             route you leave out is removed. Tokens are named by the environment variable that \
             holds them (token_ref, as in the bottle manifest), never by value: you never see \
             or send a token, so name one the operator has or will provide.",
            Limits::ROUTES
        ),
        Tool::FirewallBlock => format!(
            "Ask the human operator to let a host through this bottle's egress firewall. Use it \
             when a request was refused because its host is not on the allowlist. Give the full \
             URL that was blocked (http:// or https://); the host is taken from it and the whole \
             host would be allowed. A host {LIST_EGRESS_ROUTES} already shows under `allow` is \
             refused: the allowlist is not what blocked it."
        ),
        Tool::CapabilityBlock => format!(
            "Ask the human operator to rebuild the agent's container image (the one you run in) \
             from a new Dockerfile, when you need a program, library or package the image lacks \
             and cannot install yourself. Send the WHOLE Dockerfile, at most {} bytes, starting \
             with FROM (after comments and ARG lines). What happens after approval (rebuild, \
             restart) is up to the operator; the notes say.",
            Limits::DOCKERFILE
        ),
        Tool::GitRuleBlock => format!(
            "Ask the human operator to replace the ref policy of one of this bottle's git \
             entries: the git gate refuses pushes to protected branches, to refs outside \
             allowed_refs, force pushes and deletions unless the policy allows them. Use it when \
             a push was refused by that policy and the push is really needed. `repo` is an \
             entry's name from {LIST_EGRESS_ROUTES} (under `git`); `policy` is the WHOLE new \
             policy: copy the current one and edit it."
        ),
    };
    format!("{what} {WAITS}")
}

fn justification_schema() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": Limits::JUSTIFICATION,
        "description": "Why you need this change, shown to the human operator who decides: what \
                        you were doing, what was refused (quote the error) and why this is the \
                        right fix. Plain text, no control characters."
    })
}

fn route_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["host"],
        "properties": {
            "host": {
                "type": "string",
                "description": "The exact host name the route applies to, such as api.github.com: \
                                no scheme, port, path or wildcard. One route per host."
            },
            "path_allowlist": {
                "type": "array",
                "items": { "type": "string", "pattern": "^/" },
                "description": "Path prefixes requests to this host may use, each starting with \
                                `/` and without `..`, such as /repos/acme/. Empty or absent: \
                                every path."
            },
            "methods": {
                "type": "array",
                "items": { "type": "string", "pattern": "^[A-Z-]+$", "not": { "enum": ["TRACE", "CONNECT"] } },
                "description": "HTTP methods requests to this host may use, upper case, such as \
                                [GET, HEAD, OPTIONS, POST]. Empty or absent: GET, HEAD and \
                                OPTIONS only (reads). A route's token is write access, so ask for \
                                a write method (POST, PUT, PATCH, DELETE) only when the work \
                                needs it, and say why. TRACE and CONNECT are never allowed."
            },
            "auth": {
                "type": "object",
                "additionalProperties": false,
                // token_ref is required too; not listed so a call with the deprecated token_env
                // still validates (the server refuses one with neither).
                "required": ["scheme"],
                "description": "The token to inject as `Authorization: <scheme> <token>`. Absent: \
                                no token is injected (the route only limits paths).",
                "properties": {
                    "scheme": {
                        "type": "string",
                        "enum": ["Bearer", "token"],
                        "description": "`Bearer`, or `token` (GitHub's classic form)."
                    },
                    "token_ref": {
                        "type": "string",
                        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                        "description": "The name of the variable that holds the token, such as \
                                        GITHUB_TOKEN (the bottle manifest's token_ref). Never a \
                                        token value."
                    },
                    "token_env": {
                        "type": "string",
                        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                        "deprecated": true,
                        "description": "Deprecated: the old name of token_ref. Send token_ref."
                    }
                }
            }
        }
    })
}

fn policy_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "The whole new ref policy. A field left out takes its default: nothing \
                        protected, no force pushes, every ref, no deletions.",
        "properties": {
            "protected": {
                "type": "array",
                "items": { "type": "string" },
                "description": "Branches the agent may never update, as names or globs (`*` \
                                within a path segment, `**` across), such as main or release/*."
            },
            "allow_force_push": {
                "type": "boolean",
                "description": "Whether non-fast-forward updates are allowed (never on protected \
                                branches)."
            },
            "allowed_refs": {
                "type": "array",
                "items": { "type": "string" },
                "description": "When not empty, the only refs the agent may update: branch names, \
                                full ref names or globs, such as agent/** or refs/tags/v*."
            },
            "allow_delete": {
                "type": "boolean",
                "description": "Whether the agent may delete refs."
            },
            "allow_ci_changes": {
                "type": "boolean",
                "description": "Whether the agent may push commits that change CI definitions \
                                (.github/workflows/, .gitlab-ci.yml, .circleci/, ...)."
            }
        }
    })
}

fn object_schema(properties: Value, required: &[&str]) -> Arc<JsonObject> {
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    });
    let Value::Object(map) = schema else {
        unreachable!("a JSON object literal")
    };
    Arc::new(map)
}

fn outcome_schema() -> Arc<JsonObject> {
    let schema = json!({
        "type": "object",
        "required": ["status", "notes"],
        "properties": {
            "status": {
                "type": "string",
                "enum": ["approved", "modified", "rejected", "expired"],
                "description": "What the operator decided."
            },
            "notes": {
                "type": "string",
                "description": "The operator's notes (the reason, for a rejection)."
            }
        }
    });
    let Value::Object(map) = schema else {
        unreachable!("a JSON object literal")
    };
    Arc::new(map)
}

/// The input schema of one tool.
pub fn input_schema(tool: Tool) -> Arc<JsonObject> {
    match tool {
        Tool::EgressProxyBlock => object_schema(
            json!({
                "justification": justification_schema(),
                "routes": {
                    "type": "array",
                    "maxItems": Limits::ROUTES,
                    "items": route_schema(),
                    "description": "The WHOLE new set of credential routes (routes left out are \
                                    removed)."
                }
            }),
            &["justification", "routes"],
        ),
        Tool::FirewallBlock => object_schema(
            json!({
                "justification": justification_schema(),
                "url": {
                    "type": "string",
                    "maxLength": Limits::URL,
                    "description": "The full URL whose request was blocked, such as \
                                    https://pypi.org/simple/requests/."
                }
            }),
            &["justification", "url"],
        ),
        Tool::CapabilityBlock => object_schema(
            json!({
                "justification": justification_schema(),
                "dockerfile": {
                    "type": "string",
                    "maxLength": Limits::DOCKERFILE,
                    "description": "The whole new Dockerfile of the agent's image, starting with \
                                    FROM (after comments and ARG lines)."
                }
            }),
            &["justification", "dockerfile"],
        ),
        Tool::GitRuleBlock => object_schema(
            json!({
                "justification": justification_schema(),
                "repo": {
                    "type": "string",
                    "description": "The git entry's name, as list-egress-routes shows it under \
                                    `git`."
                },
                "policy": policy_schema()
            }),
            &["justification", "repo", "policy"],
        ),
    }
}

/// Every tool as `tools/list` describes it.
pub fn all() -> Vec<ToolInfo> {
    let mut tools: Vec<ToolInfo> = Tool::ALL
        .into_iter()
        .map(|tool| {
            ToolInfo::new(tool.name(), description(tool), input_schema(tool))
                .with_raw_output_schema(outcome_schema())
                .with_annotations(
                    ToolAnnotations::new()
                        .read_only(false)
                        .destructive(false)
                        .idempotent(false)
                        .open_world(false),
                )
        })
        .collect();
    tools.push(
        ToolInfo::new(
            LIST_EGRESS_ROUTES,
            "Read this bottle's current configuration, at once and without asking anyone: the \
             egress proxy's credential `routes` (tokens by name as `token_ref`, never \
             values), the hosts the firewall allows (`allow`; in a pattern `*` matches exactly \
             one DNS label: *.x.com matches a.x.com, not x.com or a.b.x.com), each `git` entry with its ref policy, and the `tools` (the -block tools this \
             bottle can act on; empty means not stated). Call it before proposing a change, to \
             copy and edit the current values.",
            object_schema(json!({}), &[]),
        )
        .with_annotations(
            ToolAnnotations::new()
                .read_only(true)
                .idempotent(true)
                .open_world(false),
        ),
    );
    tools
}

/// The tool named `name`.
pub fn get(name: &str) -> Option<ToolInfo> {
    all().into_iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottle_egress_config::{AuthScheme, RouteAuth};
    use bottle_supervise_queue::GitEntry;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn call(name: &str, value: Value) -> Result<Call, Refused> {
        parse(name, Some(&object(value)))
    }

    #[test]
    fn names_match_the_queue_tools() {
        let listed: Vec<String> = all().into_iter().map(|t| t.name.into_owned()).collect();
        assert_eq!(listed, NAMES);
        for tool in Tool::ALL {
            assert!(NAMES.contains(&tool.name()));
        }
    }

    /// Every field a fully populated record serializes must be in the hand-written schema, so the
    /// schema cannot silently fall behind the config crates.
    #[test]
    fn schemas_cover_every_field() {
        let route = Route {
            host: "h".into(),
            path_allowlist: vec!["/".into()],
            methods: vec!["POST".into()],
            auth: Some(RouteAuth {
                scheme: AuthScheme::Bearer,
                token_env: "T".into(),
            }),
        };
        let route_value = serde_json::to_value(&route).unwrap();
        let schema = route_schema();
        for key in route_value.as_object().unwrap().keys() {
            assert!(schema["properties"].get(key).is_some(), "route.{key}");
        }
        for key in route_value["auth"].as_object().unwrap().keys() {
            assert!(
                schema["properties"]["auth"]["properties"]
                    .get(key)
                    .is_some(),
                "route.auth.{key}"
            );
        }
        let policy = serde_json::to_value(Policy::default()).unwrap();
        for key in policy.as_object().unwrap().keys() {
            assert!(policy_schema()["properties"].get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn firewall_takes_the_host_from_the_url() {
        let c = call(
            "firewall-block",
            json!({"justification": "docs", "url": "https://Docs.rs:443/x"}),
        )
        .unwrap();
        let Call::Propose { change, .. } = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            change,
            Change::AllowHost {
                url: "https://Docs.rs:443/x".into(),
                host: "docs.rs".into()
            }
        );
    }

    #[test]
    fn a_route_proposal_carries_its_methods() {
        let routes = json!([{"host": "api.github.com", "methods": ["GET", "POST"]}]);
        let c = call(
            "egress-proxy-block",
            json!({"justification": "open a pull request", "routes": routes}),
        )
        .unwrap();
        let Call::Propose {
            change: Change::Routes { routes },
            ..
        } = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(routes[0].methods, ["GET", "POST"]);
        for (method, message) in [("post", "must be upper case"), ("TRACE", "never allowed")] {
            let routes = json!([{"host": "api.github.com", "methods": [method]}]);
            let e = call(
                "egress-proxy-block",
                json!({"justification": "x", "routes": routes}),
            )
            .unwrap_err();
            assert_eq!(e.field.as_deref(), Some("routes[0].methods[0]"), "{e}");
            assert!(e.message.contains(message), "{e}");
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = call(
            "firewall-block",
            json!({"justification": "x", "url": "https://a.io", "extra": 1}),
        )
        .unwrap_err();
        assert!(e.message.contains("unknown field `extra`"), "{e}");
        let e = call("firewall-block", json!({"url": "https://a.io"})).unwrap_err();
        assert!(e.message.contains("missing field `justification`"), "{e}");
        let e = call(
            "firewall-block",
            json!({"justification": " ", "url": "https://a.io"}),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("justification"));
        let e = call("nope", json!({})).unwrap_err();
        assert!(e.message.contains("git-rule-block"), "{e}");
        let e = call(LIST_EGRESS_ROUTES, json!({"all": true})).unwrap_err();
        assert!(e.message.contains("unknown field `all`"), "{e}");
        assert_eq!(
            parse(LIST_EGRESS_ROUTES, None).unwrap(),
            Call::ListEgressRoutes
        );
    }

    #[test]
    fn current_config_comparisons() {
        let current = CurrentConfig {
            routes: vec![],
            allow: vec!["*.github.com".into(), "pypi.org".into()],
            git: vec![GitEntry {
                name: "app".into(),
                policy: Policy::default(),
            }],
            tools: vec![Tool::FirewallBlock, Tool::GitRuleBlock],
        };
        let fw =
            |url: &str| call("firewall-block", json!({"justification": "x", "url": url})).unwrap();
        assert!(check_current(&fw("https://example.com/"), &current).is_ok());
        // `*.github.com` covers one label below github.com, not github.com itself.
        assert!(check_current(&fw("https://github.com/"), &current).is_ok());
        for url in ["https://api.GitHub.com/", "http://pypi.org/"] {
            let e = check_current(&fw(url), &current).unwrap_err();
            assert!(e.message.contains("already allowed"), "{url}: {e}");
        }
        let git = |repo: &str, force: bool| {
            call(
                "git-rule-block",
                json!({"justification": "x", "repo": repo, "policy": {"allow_force_push": force}}),
            )
            .unwrap()
        };
        assert!(check_current(&git("app", true), &current).is_ok());
        let e = check_current(&git("other", true), &current).unwrap_err();
        assert!(e.message.contains("the git entries are app"), "{e}");
        let e = check_current(&git("app", false), &current).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("policy"));
        let docker = call(
            "capability-block",
            json!({"justification": "x", "dockerfile": "FROM debian\n"}),
        )
        .unwrap();
        let e = check_current(&docker, &current).unwrap_err();
        assert!(e.message.contains("lacks a rebuildable agent image"), "{e}");
        assert!(
            check_current(&docker, &CurrentConfig::default()).is_ok(),
            "an empty tool list restricts nothing"
        );
    }

    #[test]
    fn globs() {
        let allow = |p: &str, h: &str| allowed_by(&[p.to_owned()], h).is_some();
        assert!(allow("*.x.com", "a.x.com"));
        assert!(!allow("*.x.com", "x.com"));
        assert!(!allow("*.x.com", "a.b.x.com"));
        assert!(!allow("*.x.com", "ax.com"));
        assert!(allow("X.com.", "x.com"));
        assert!(!allow("x.com", "y.x.com"));
        // `*` is a whole label: a partial-label entry is no pattern and allows nothing.
        assert!(!allow("api-*.x.com", "api-eu.x.com"));
    }

    #[test]
    fn star_matches_one_label_like_the_proxy() {
        let allow = |p: &str, h: &str| allowed_by(&[p.to_owned()], h).is_some();
        assert!(allow("registry.*.org", "registry.npmjs.org"));
        assert!(!allow("registry.*.org", "registry.evil.example.org"));
        for (pattern, host, expected) in bottle_host_pattern::conformance::CASES {
            assert_eq!(allow(pattern, host), *expected, "{pattern} vs {host}");
        }
    }

    #[test]
    fn routes_name_their_token_as_the_manifest_does_and_the_old_name_still_works() {
        let routes = |auth: Value| json!({"justification": "j", "routes": [{"host": "api.github.com", "auth": auth}]});
        let token = |c: Call| match c {
            Call::Propose {
                change: Change::Routes { routes },
                ..
            } => routes[0].auth.clone().unwrap().token_env,
            other => panic!("{other:?}"),
        };
        let new = call(
            "egress-proxy-block",
            routes(json!({"scheme": "Bearer", "token_ref": "GH_TOKEN"})),
        );
        assert_eq!(token(new.unwrap()), "GH_TOKEN");
        let old = call(
            "egress-proxy-block",
            routes(json!({"scheme": "Bearer", "token_env": "GH_TOKEN"})),
        );
        assert_eq!(token(old.unwrap()), "GH_TOKEN");
        let both = call(
            "egress-proxy-block",
            routes(json!({"scheme": "Bearer", "token_ref": "A", "token_env": "A"})),
        )
        .unwrap_err();
        assert!(both.message.contains("send token_ref only"), "{both}");
        let neither = call("egress-proxy-block", routes(json!({"scheme": "Bearer"}))).unwrap_err();
        assert_eq!(neither.field.as_deref(), Some("routes[0].auth.token_ref"));
        // A bad name is reported under the name the agent used.
        let bad = call(
            "egress-proxy-block",
            routes(json!({"scheme": "Bearer", "token_ref": "not a name"})),
        )
        .unwrap_err();
        assert_eq!(
            bad.field.as_deref(),
            Some("routes[0].auth.token_ref"),
            "{bad}"
        );
        let bad = call(
            "egress-proxy-block",
            routes(json!({"scheme": "Bearer", "token_env": "not a name"})),
        )
        .unwrap_err();
        assert_eq!(
            bad.field.as_deref(),
            Some("routes[0].auth.token_env"),
            "{bad}"
        );
    }

    #[test]
    fn the_agent_reads_token_ref() {
        let current = CurrentConfig {
            routes: vec![Route {
                host: "api.github.com".into(),
                path_allowlist: vec![],
                methods: vec![],
                auth: Some(RouteAuth {
                    scheme: AuthScheme::Bearer,
                    token_env: "GH_TOKEN".into(),
                }),
            }],
            ..Default::default()
        };
        let shown = current_for_agent(&current);
        assert_eq!(
            shown["routes"][0]["auth"],
            json!({"scheme": "Bearer", "token_ref": "GH_TOKEN"})
        );
        assert_eq!(
            route_schema()["properties"]["auth"]["properties"]["token_ref"]["type"],
            "string"
        );
    }
}
