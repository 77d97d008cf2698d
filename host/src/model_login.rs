//! The operator's Claude login for the embedded default bottle, and Claude Code's remote control.
//!
//! When the operator has a long-lived OAuth token (`claude setup-token`) in
//! `CLAUDE_CODE_OAUTH_TOKEN` (or claude-bottle's `CLAUDE_BOTTLE_OAUTH_TOKEN`), the embedded default
//! bottle gets a credential route to api.anthropic.com that injects it as `Bearer`: the token lives
//! only in the egress proxy, and the agent holds the proxy's placeholder. Nothing is written to the
//! bottle home; a bottle of the operator's own says the same in its manifest.

use std::collections::BTreeSet;

use bottle_manifest::{Bottle, Origin};

use crate::prepare::Selection;

/// Claude Code's variable for its OAuth token, and the route's `token_ref`.
pub const TOKEN_VAR: &str = "CLAUDE_CODE_OAUTH_TOKEN";

/// claude-bottle's name for the same token, still read so its users' shells keep working.
pub const LEGACY_TOKEN_VAR: &str = "CLAUDE_BOTTLE_OAUTH_TOKEN";

/// The model API host the token is lent to.
pub const MODEL_API_HOST: &str = "api.anthropic.com";

/// Which host variable holds the operator's token, given a way to read the environment. Claude
/// Code's own name wins over claude-bottle's; an empty value counts as unset.
pub fn token_source(var: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    [TOKEN_VAR, LEGACY_TOKEN_VAR]
        .into_iter()
        .find(|name| var(name).is_some_and(|v| !v.is_empty()))
}

/// The embedded default bottle with a route lending the token in `host_var` to the model API
/// (`GET` and `POST`: Claude Code's requests are `POST`s), parsed by the manifest's own code.
pub fn default_bottle_with_token(host_var: &str) -> anyhow::Result<Bottle> {
    let text = format!(
        "---\n# The built-in bottle with the operator's Claude login ({host_var}).\n\
         env:\n  {TOKEN_VAR}: \"${{{host_var}}}\"\n\
         egress:\n  firewall: builtin\n\
         egress_proxy:\n  routes:\n    - host: {MODEL_API_HOST}\n      \
         auth: {{scheme: Bearer, token_ref: {TOKEN_VAR}}}\n      methods: [GET, POST]\n\
         supervise: false\n---\n{}",
        bottle_manifest::defaults::bottle().notes
    );
    let origin = Origin::embedded(bottle_manifest::defaults::BOTTLE_NAME);
    Ok(Bottle::parse(&text, &origin, &BTreeSet::new(), None)?)
}

/// Give the embedded default bottle the operator's login when one is in the environment; a note
/// for the operator saying so (and which variable), or `None` when nothing changed.
pub fn apply(selection: &mut Selection) -> anyhow::Result<Option<String>> {
    if !selection.embedded {
        return Ok(None);
    }
    let Some(var) = token_source(|name| std::env::var(name).ok()) else {
        return Ok(None);
    };
    selection.bottle = default_bottle_with_token(var)?;
    let mut note = format!(
        "note: using your Claude login from {var}: the egress proxy adds it to requests to \
         {MODEL_API_HOST}; the agent holds only a placeholder"
    );
    if var == LEGACY_TOKEN_VAR {
        note.push_str(&format!(
            " ({LEGACY_TOKEN_VAR} is claude-bottle's name; {TOKEN_VAR} is read first)"
        ));
    }
    Ok(Some(note))
}

/// Claude Code's flag that registers the session for remote control.
pub const REMOTE_CONTROL_FLAG: &str = "--remote-control";

/// Start Claude Code in its remote-control mode, so the session can be driven from claude.ai/code
/// or the Claude app; the preflight note saying what that reaches. Only the default command
/// (Claude Code) has the mode: an agent with its own command is refused rather than silently
/// started without it.
pub fn remote_control(selection: &mut Selection) -> anyhow::Result<String> {
    if selection.agent.command.is_some() {
        anyhow::bail!(
            "--remote-control starts Claude Code in its remote-control mode, but agent `{}` runs \
             its own `command:`; drop --remote-control, or remove `command:` from the agent to run \
             Claude Code",
            selection.agent.name
        );
    }
    let mut argv = crate::prepare::default_command();
    let script = argv
        .last_mut()
        .expect("the default command is sh -c <script>");
    *script = script.replacen(
        "exec claude ",
        &format!("exec claude {REMOTE_CONTROL_FLAG} "),
        1,
    );
    selection.agent.command = Some(bottle_manifest::AgentCommand::Argv(argv));
    // Remote control is outbound HTTPS to the Anthropic API only (the session registers there and
    // the relay reaches it over the same connection), so it needs no host beyond Claude Code's
    // own; saying so keeps the operator from adding hosts "to make it work".
    Ok(format!(
        "remote control: on — Claude Code registers this session with {MODEL_API_HOST} (already \
         allowed for Claude Code; no other host is added) and prints the URL to drive it from \
         claude.ai/code or the Claude app; it needs a Claude login ({TOKEN_VAR}), not an API key"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn claude_codes_name_is_read_first_then_claude_bottles() {
        assert_eq!(token_source(env(&[])), None);
        assert_eq!(
            token_source(env(&[(LEGACY_TOKEN_VAR, "t")])),
            Some(LEGACY_TOKEN_VAR)
        );
        assert_eq!(
            token_source(env(&[(LEGACY_TOKEN_VAR, "t"), (TOKEN_VAR, "u")])),
            Some(TOKEN_VAR)
        );
        assert_eq!(
            token_source(env(&[(TOKEN_VAR, ""), (LEGACY_TOKEN_VAR, "t")])),
            Some(LEGACY_TOKEN_VAR),
            "an empty value is unset"
        );
    }

    #[test]
    fn the_default_bottle_lends_the_token_to_the_model_api_only() {
        let bottle = default_bottle_with_token(LEGACY_TOKEN_VAR).unwrap();
        assert_eq!(
            bottle.env.get(TOKEN_VAR),
            Some(&bottle_manifest::EnvValue::Host(LEGACY_TOKEN_VAR.into()))
        );
        let [route] = bottle.egress_proxy.routes.as_slice() else {
            panic!("one route: {:?}", bottle.egress_proxy.routes);
        };
        assert_eq!(route.host, MODEL_API_HOST);
        assert_eq!(route.auth.as_ref().unwrap().token_ref, TOKEN_VAR);
        assert_eq!(bottle.name, bottle_manifest::defaults::BOTTLE_NAME);
        assert_eq!(bottle.egress, bottle_manifest::defaults::bottle().egress);
    }
}
