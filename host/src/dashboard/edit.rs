//! The operator's direct edit of a running bottle (`e`): the text opened in `$EDITOR`, built from
//! the bottle's published current configuration, and parsing it back into an [`OperatorEdit`].

use bottle_egress_config::Route;
use bottle_supervise_queue::{Change, CurrentConfig};

use super::EditTarget;
use crate::supervise::apply::OperatorEdit;

/// The text to edit: a comment saying what happens, then the YAML list.
pub fn template(identity: &str, target: EditTarget, current: &CurrentConfig) -> String {
    let (what, body, rules) = match target {
        EditTarget::Routes => (
            "credential routes",
            yaml_serde::to_string(&current.routes).unwrap_or_default(),
            "# A route may only send a token to a host it was sent to before; the dashboard asks\n\
             # before allowing more. Tokens are named by the proxy's environment variable.\n",
        ),
        EditTarget::Allow => (
            "allowlist (hosts or *.globs the bottle may reach)",
            yaml_serde::to_string(&current.allow).unwrap_or_default(),
            "# Hosts you add are allowed, hosts you remove are refused from now on.\n",
        ),
    };
    format!(
        "# The {what} of bottle `{identity}`.\n\
         # Saving applies it to the running bottle at once, audited as an operator edit.\n\
         # Leave it unchanged, or delete everything, to cancel.\n\
         {rules}{body}"
    )
}

/// The edit in `text`; `None` when the operator emptied it (cancel).
pub fn parse(target: EditTarget, text: &str) -> Result<Option<OperatorEdit>, String> {
    let meaningful = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if !meaningful {
        return Ok(None);
    }
    match target {
        EditTarget::Routes => {
            let routes: Vec<Route> = yaml_serde::from_str(text)
                .map_err(|e| format!("the edited routes do not parse: {e}"))?;
            Change::Routes {
                routes: routes.clone(),
            }
            .check()
            .map_err(|e| format!("the edited routes are invalid: {e}"))?;
            Ok(Some(OperatorEdit::Routes(routes)))
        }
        EditTarget::Allow => {
            let allow: Vec<String> = yaml_serde::from_str(text)
                .map_err(|e| format!("the edited allowlist does not parse: {e}"))?;
            Ok(Some(OperatorEdit::Allow(allow)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottle_egress_config::{AuthScheme, RouteAuth};

    fn current() -> CurrentConfig {
        CurrentConfig {
            routes: vec![Route {
                host: "api.example".into(),
                path_allowlist: vec!["/v1/".into()],
                methods: vec![],
                auth: Some(RouteAuth {
                    scheme: AuthScheme::Bearer,
                    token_env: "ROUTE_TOKEN_0".into(),
                }),
            }],
            allow: vec!["api.example".into(), "*.docs.example".into()],
            ..Default::default()
        }
    }

    #[test]
    fn an_unchanged_template_parses_back_to_the_current_config() {
        let current = current();
        let routes = template("b1", EditTarget::Routes, &current);
        assert!(routes.contains("bottle `b1`"), "{routes}");
        let edit = parse(EditTarget::Routes, &routes).unwrap().unwrap();
        assert!(edit.is_noop(&current));
        let allow = template("b1", EditTarget::Allow, &current);
        let edit = parse(EditTarget::Allow, &allow).unwrap().unwrap();
        assert_eq!(
            edit,
            OperatorEdit::Allow(vec!["api.example".into(), "*.docs.example".into()])
        );
        let more = format!("{allow}- pypi.org\n");
        assert!(
            !parse(EditTarget::Allow, &more)
                .unwrap()
                .unwrap()
                .is_noop(&current)
        );
    }

    #[test]
    fn emptied_means_cancel_and_nonsense_is_explained() {
        assert_eq!(parse(EditTarget::Allow, "# only comments\n\n"), Ok(None));
        let err = parse(EditTarget::Routes, "- host: a.example\n  bogus: 1\n").unwrap_err();
        assert!(err.contains("do not parse"), "{err}");
        let err = parse(EditTarget::Routes, "- host: not a host\n").unwrap_err();
        assert!(err.contains("routes[0].host"), "{err}");
        let err = parse(EditTarget::Allow, "a: b\n").unwrap_err();
        assert!(err.contains("allowlist does not parse"), "{err}");
    }
}
