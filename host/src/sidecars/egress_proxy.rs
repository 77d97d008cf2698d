//! bottle's egress proxy: credential routes and the allowlist, in
//! [`bottle_egress_config::EgressConfig`] (YAML), reloaded by SIGHUP.

use std::collections::BTreeSet;

use bottle_egress_config::{EgressConfig, Route};
use bottle_plan_view::{PlanView, RouteView};
use bottle_supervise_queue::CurrentConfig;

use super::{Edit, EditError, EditKind, Format, LiveSidecar, Reload, invalid, merged};
use crate::plan::model::{EnvSource, SidecarPlan};

/// The egress proxy.
#[derive(Debug, Clone, Copy)]
pub struct EgressProxy;

impl LiveSidecar for EgressProxy {
    fn plugin(&self) -> &'static str {
        "egress-proxy"
    }

    fn label(&self) -> &'static str {
        "egress proxy"
    }

    fn config_path(&self) -> &'static str {
        bottle_egress_config::DEFAULT_PATH
    }

    fn format(&self) -> Format {
        Format::Yaml
    }

    fn reload(&self) -> Reload {
        Reload::Signal
    }

    fn edits(&self) -> &'static [EditKind] {
        &[EditKind::Routes, EditKind::Allow]
    }

    fn read_current(&self, config: &[u8], current: &mut CurrentConfig) {
        if let Ok(config) = yaml_serde::from_slice::<EgressConfig>(config) {
            current.routes = config.routes;
            for host in config.allow {
                if !current.allow.contains(&host) {
                    current.allow.push(host);
                }
            }
        }
    }

    fn edit(
        &self,
        config: &[u8],
        edit: &Edit<'_>,
        current: &mut CurrentConfig,
    ) -> Result<Vec<u8>, EditError> {
        let old = parse(config)?;
        let new = match *edit {
            Edit::Routes {
                routes,
                allow_new_token_hosts,
            } => {
                let new = with_routes(&old, routes, allow_new_token_hosts)?;
                current.routes = new.routes.clone();
                current.allow = merged(&current.allow, &new.allow);
                new
            }
            Edit::Allow { added, removed } => with_allow_delta(&old, added, removed)?,
            Edit::GitRule { .. } => return Err(invalid("the egress proxy has no git rules")),
        };
        Ok(yaml_serde::to_string(&new)
            .expect("egress config serializes")
            .into_bytes())
    }

    /// The credential routes the proxy will enforce, each token named by the secret behind its
    /// environment variable.
    fn view(&self, sidecar: &SidecarPlan, config: &[u8], view: &mut PlanView) {
        let Ok(config) = yaml_serde::from_slice::<EgressConfig>(config) else {
            return;
        };
        let secret_of = |env: &str| {
            sidecar
                .env
                .iter()
                .find(|e| e.name == env)
                .map(|e| match &e.value {
                    EnvSource::Secret(name) => name.clone(),
                    EnvSource::Literal(_) => env.to_owned(),
                })
        };
        view.routes.extend(config.routes.iter().map(|r| {
            RouteView {
                host: r.host.clone(),
                path_allowlist: r.path_allowlist.clone(),
                token: r
                    .auth
                    .as_ref()
                    .map(|a| secret_of(&a.token_env).unwrap_or_else(|| a.token_env.clone())),
                scheme: r.auth.as_ref().map(|a| a.scheme.as_str().to_owned()),
            }
        }));
    }
}

fn parse(bytes: &[u8]) -> Result<EgressConfig, EditError> {
    yaml_serde::from_slice(bytes).map_err(|e| {
        invalid(format!(
            "the egress proxy's live config does not parse: {e}"
        ))
    })
}

fn validated(config: EgressConfig) -> Result<EgressConfig, EditError> {
    config
        .validate()
        .map_err(|e| invalid(format!("the new egress proxy config is invalid: {e}")))?;
    Ok(config)
}

/// The egress config with `routes` as its whole route set. A token may only go to a host it
/// already went to, unless `allow_new_token_hosts`; a token the proxy does not hold is refused.
pub fn with_routes(
    old: &EgressConfig,
    routes: &[Route],
    allow_new_token_hosts: bool,
) -> Result<EgressConfig, EditError> {
    let held: BTreeSet<&str> = old
        .routes
        .iter()
        .filter_map(|r| r.auth.as_ref().map(|a| a.token_env.as_str()))
        .collect();
    for (i, route) in routes.iter().enumerate() {
        let Some(auth) = &route.auth else { continue };
        if !held.contains(auth.token_env.as_str()) {
            return Err(invalid(format!(
                "routes[{i}].auth.token_env: `{}` is not a token this bottle holds (it holds: {}); \
                 a new credential needs the bottle manifest changed and a new launch",
                auth.token_env,
                held.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        let sent_before = old.routes.iter().any(|o| {
            o.host.eq_ignore_ascii_case(&route.host)
                && o.auth.as_ref().map(|a| &a.token_env) == Some(&auth.token_env)
        });
        if !sent_before && !allow_new_token_hosts {
            return Err(EditError::NewTokenHost(format!(
                "routes[{i}] would send the token in `{}` to `{}`, which it was never sent to; \
                 if that is intended, approve with --allow-new-token-host (in the dashboard: `A`)",
                auth.token_env, route.host
            )));
        }
    }
    let mut new = old.clone();
    new.routes = routes.to_vec();
    let route_hosts: Vec<String> = routes.iter().map(|r| r.host.clone()).collect();
    new.allow = merged(&old.allow, &route_hosts);
    validated(new)
}

/// The egress config with `added` allowed and `removed` no longer allowed.
pub fn with_allow_delta(
    old: &EgressConfig,
    added: &[String],
    removed: &[String],
) -> Result<EgressConfig, EditError> {
    let mut new = old.clone();
    new.allow
        .retain(|h| !removed.iter().any(|r| r.eq_ignore_ascii_case(h)));
    new.allow = merged(&new.allow, added);
    validated(new)
}

/// Whether the plan's egress proxy learns, read from the configuration the proxy will read (as
/// remote control is read from the agent's command): what the preflight says is what runs.
pub fn learning(plan: &crate::plan::model::Plan) -> bool {
    plan.sidecars
        .iter()
        .filter(|s| s.plugin == EgressProxy.plugin())
        .flat_map(|s| &s.files)
        .filter(|f| f.path == bottle_egress_config::DEFAULT_PATH)
        .any(|f| yaml_serde::from_slice::<EgressConfig>(&f.contents).is_ok_and(|c| c.learn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottle_egress_config::{AuthScheme, RouteAuth, TlsConfig};

    fn route(host: &str, token: Option<&str>) -> Route {
        Route {
            host: host.into(),
            path_allowlist: vec!["/api/".into()],
            methods: vec![],
            auth: token.map(|t| RouteAuth {
                scheme: AuthScheme::Bearer,
                token_env: t.into(),
            }),
        }
    }

    fn egress() -> EgressConfig {
        EgressConfig {
            version: bottle_egress_config::FORMAT_VERSION,
            listen: "0.0.0.0:9099".into(),
            allow: vec!["api.github.com".into()],
            firewall: true,
            upstream_proxy: None,
            tls: TlsConfig {
                ca_cert: "/etc/bottle/ca.pem".into(),
                ca_key: "/etc/bottle/ca.key".into(),
                upstream_roots: vec![],
            },
            routes: vec![route("api.github.com", Some("ROUTE_TOKEN_0"))],
            passthrough: vec![],
            ssrf: Default::default(),
            dlp: Default::default(),
            learn: false,
        }
    }

    #[test]
    fn a_token_may_not_move_to_a_new_host_without_the_operator() {
        let routes = [route("evil.example", Some("ROUTE_TOKEN_0"))];
        let err = with_routes(&egress(), &routes, false).unwrap_err();
        assert!(matches!(err, EditError::NewTokenHost(_)), "{err:?}");
        assert!(err.to_string().contains("--allow-new-token-host"), "{err}");
        let ok = with_routes(&egress(), &routes, true).unwrap();
        assert!(ok.allow.contains(&"evil.example".to_string()));
    }

    #[test]
    fn unknown_tokens_are_refused_and_known_routes_pass() {
        let err =
            with_routes(&egress(), &[route("api.github.com", Some("STOLEN"))], false).unwrap_err();
        assert!(
            err.to_string().contains("not a token this bottle holds"),
            "{err}"
        );
        let routes = [
            route("api.github.com", Some("ROUTE_TOKEN_0")),
            route("docs.example", None),
        ];
        let new = with_routes(&egress(), &routes, false).unwrap();
        assert_eq!(new.routes.len(), 2);
        assert!(new.allow.contains(&"docs.example".to_string()));
    }

    #[test]
    fn a_method_change_applies_and_a_trace_does_not() {
        let mut writes = route("api.github.com", Some("ROUTE_TOKEN_0"));
        writes.methods = vec!["GET".into(), "POST".into()];
        let new = with_routes(&egress(), &[writes.clone()], false).unwrap();
        assert_eq!(new.routes[0].methods, ["GET", "POST"]);
        // What the proxy reloads carries the methods.
        let text = yaml_serde::to_string(&new).unwrap();
        assert!(text.contains("methods:\n  - GET\n  - POST"), "{text}");
        writes.methods.push("TRACE".into());
        let err = with_routes(&egress(), &[writes], false).unwrap_err();
        assert!(err.to_string().contains("routes[0].methods[2]"), "{err}");
    }

    #[test]
    fn allow_adds_and_removes() {
        let new = with_allow_delta(&egress(), &["pypi.org".into()], &[]).unwrap();
        assert_eq!(new.allow, ["api.github.com", "pypi.org"]);
        let new = with_allow_delta(&new, &[], &["API.github.com".into()]).unwrap();
        assert_eq!(new.allow, ["pypi.org"]);
    }
}
