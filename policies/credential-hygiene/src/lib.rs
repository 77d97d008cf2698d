//! `credential-hygiene`: an example organisation policy module about what an agent can do with the
//! credentials and the kernel it is given.
//!
//! # Rules
//!
//! - **`route-path-allowlist`** ([`ROUTE_PATH_ALLOWLIST`]): every credential route — a route of the
//!   egress proxy that injects a token ([`RouteView::token`](bottle_plugin_sdk::plan_view::RouteView::token) is set) — must limit the paths the
//!   agent may call with it. A route without a `path_allowlist` lends the token for every endpoint of
//!   its host: a GitHub token meant for one repository's issues could delete repositories. An entry
//!   of `/` (or an empty one) allows every path just as well, and violates the same way. Subject:
//!   `/routes/<i>/path_allowlist` (or `/routes/<i>/path_allowlist/<j>` for the entry). Fix: give the
//!   route in the bottle's `egress_proxy.routes` a `path_allowlist` naming only the paths the agent
//!   needs, such as `/repos/acme/app/`.
//! - **`no-runc-when-runsc`** ([`NO_RUNC_WHEN_RUNSC`]): when the engine offers gVisor (`runsc` is
//!   in [`RuntimeView::available`]), the bottle must not run under plain `runc`, whether the bottle
//!   asks for it (`runtime: runc`, subject `/runtime/requested`) or the launch would pick it
//!   (subject `/runtime/chosen`). With gVisor, a kernel exploit in the agent's container reaches a
//!   user-space kernel instead of the host's. Fix: `runtime: auto` or `runtime: runsc` in the bottle
//!   manifest. When the engine's runtimes are unknown (an empty list) the rule says nothing.
//!
//! Runtime names compare without regard to case or surrounding spaces.
//!
//! # Adapting it
//!
//! The module is pure and reads no configuration (policy modules get the plan and nothing else), so
//! its rules are compiled in: copy this crate, change or add rules (each a function from the
//! [`PlanView`] to violations, called from [`Policy::check`]), test them, and rebuild:
//!
//! ```text
//! cargo test -p bottle-policy-credential-hygiene
//! cargo build -p bottle-policy-credential-hygiene --target wasm32-wasip2 --profile plugin
//! ```
//!
//! The component is `target/wasm32-wasip2/plugin/bottle_policy_credential_hygiene.wasm`. Ship it to
//! the machines that launch bottles as `~/.bottle/policy/credential-hygiene.wasm`, or into the
//! directory `$BOTTLE_POLICY_DIR` names; the host runs every module there against every plan before
//! it launches anything, and any violation stops the launch.

use bottle_plugin_sdk::plan_view::{RuntimeView, runtimes};
use bottle_plugin_sdk::{PlanView, Policy, Violation};

/// The module's name.
pub const NAME: &str = "credential-hygiene";

/// Rule: every credential route has a non-empty path allowlist that does not allow every path.
pub const ROUTE_PATH_ALLOWLIST: &str = "route-path-allowlist";

/// Rule: not `runc` when the engine offers `runsc`.
pub const NO_RUNC_WHEN_RUNSC: &str = "no-runc-when-runsc";

/// The policy.
pub struct CredentialHygiene;

impl Policy for CredentialHygiene {
    fn name() -> String {
        NAME.into()
    }

    fn check(plan: &PlanView) -> Vec<Violation> {
        let mut violations = route_path_allowlist(plan);
        violations.extend(no_runc_when_runsc(&plan.runtime));
        violations
    }
}

bottle_plugin_sdk::policy!(CredentialHygiene);

/// Rule [`ROUTE_PATH_ALLOWLIST`].
pub fn route_path_allowlist(plan: &PlanView) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (index, route) in plan.credential_routes() {
        let token = route.token.as_deref().unwrap_or_default();
        let host = &route.host;
        let fix = format!(
            "give the route for `{host}` in the bottle's `egress_proxy.routes` a `path_allowlist` \
             naming only the paths the agent needs, such as `/repos/<org>/<repo>/`"
        );
        if route.path_allowlist.is_empty() {
            violations.push(
                Violation::new(
                    ROUTE_PATH_ALLOWLIST,
                    PlanView::pointer_to_route_field(index, "path_allowlist"),
                    format!(
                        "the credential route for `{host}` injects secret `{token}` into requests \
                         to every path of the host; {fix}"
                    ),
                )
                .with_property("host", host)
                .with_property("token", token),
            );
            continue;
        }
        for (item, prefix) in route.path_allowlist.iter().enumerate() {
            if matches!(prefix.trim(), "" | "/") {
                violations.push(
                    Violation::new(
                        ROUTE_PATH_ALLOWLIST,
                        format!(
                            "{}/{item}",
                            PlanView::pointer_to_route_field(index, "path_allowlist")
                        ),
                        format!(
                            "the credential route for `{host}` allows the path prefix `{prefix}`, \
                             which every path has, so secret `{token}` goes with requests to any \
                             path of the host; {fix}"
                        ),
                    )
                    .with_property("host", host)
                    .with_property("token", token),
                );
            }
        }
    }
    violations
}

/// Rule [`NO_RUNC_WHEN_RUNSC`].
pub fn no_runc_when_runsc(runtime: &RuntimeView) -> Option<Violation> {
    if !runtime.offers(runtimes::RUNSC) {
        return None;
    }
    let is_runc = |name: &str| name.trim().eq_ignore_ascii_case(runtimes::RUNC);
    let (field, message) = if is_runc(&runtime.requested) {
        (
            "requested",
            "the bottle asks for `runtime: runc` although the engine offers gVisor (`runsc`); set \
             `runtime: auto` or `runtime: runsc` in the bottle manifest so the agent runs behind \
             gVisor's user-space kernel",
        )
    } else if runtime.chosen.as_deref().is_some_and(is_runc) {
        (
            "chosen",
            "the launch would run the bottle under `runc` although the engine offers gVisor \
             (`runsc`); set `runtime: runsc` in the bottle manifest, and check the engine's \
             `runsc` runtime if `auto` did not pick it",
        )
    } else {
        return None;
    };
    Some(
        Violation::new(
            NO_RUNC_WHEN_RUNSC,
            PlanView::pointer_to_runtime(field),
            message,
        )
        .with_property("available", runtime.available.join(",")),
    )
}

#[cfg(test)]
mod tests;
