//! `deny-hosts`: an example organisation policy module that keeps paste, file-drop and tunnel sites
//! out of every bottle.
//!
//! An agent that can reach `pastebin.com` or `transfer.sh` can publish whatever it reads — source,
//! credentials it happened upon, customer data — to a place the organisation neither controls nor
//! can take back. This policy refuses any plan that names such a site **anywhere**:
//!
//! | Where in the plan | JSON pointer of the violation |
//! | --- | --- |
//! | the egress allowlist (the manifest's `egress.allowlist`, the agent's hosts, plugins' needs) | `/egress/<i>/host` |
//! | the egress proxy's credential routes | `/routes/<i>/host` |
//! | the `egress` grants of third-party plugins | `/grants/<i>/value` |
//! | the agent's `NO_PROXY` | `/agent/no_proxy/<i>` |
//! | sidecar DNS aliases | `/sidecars/<i>/aliases/<j>` |
//! | sidecar `/etc/hosts` entries | `/sidecars/<i>/extra_hosts/<j>/host` |
//!
//! Each is one violation of rule [`RULE`] (`no-paste-sites`) whose message names the host, the place
//! and the fix (remove it from the bottle's egress allowlist, its routes, the plugin that asks for it).
//!
//! # Matching
//!
//! An entry of [`DENY_LIST`] is a domain and covers the domain **and every subdomain**
//! (`pastebin.com` covers `www.pastebin.com`, `ngrok.io` covers `abc123.ngrok.io`). Entries hold no
//! wildcard: a deny glob such as `ghostbin.*` would also cover `ghostbin.x.example.org`, which every
//! plan glob like `*.example.org` reaches, so list each domain (`ghostbin.co`, `ghostbin.com`).
//!
//! Plan entries are host patterns read by `bottle-host-pattern`, as the egress proxy reads them:
//! `*` matches exactly one DNS label, case and a trailing dot do not matter. A plan entry violates
//! when *some* host it matches is a denied domain or one of its subdomains, so an exact host
//! (`pastebin.com`), a subdomain (`www.pastebin.com`), a narrower pattern (`*.pastebin.com`) and a
//! broader one (`*.com`) all violate, while `*.org` does not reach `paste.mozilla.org` (the proxy
//! would not let it through either; `*.*.org` does). A `NO_PROXY` entry (`example.com` or
//! `.example.com`) covers the domain and every subdomain, as HTTP clients read it (a `NO_PROXY`
//! CIDR names no host). An entry with a `*` that is no valid pattern (`*`, `paste*`) fails closed:
//! it violates, since nothing can say which hosts it would reach.
//!
//! # Adapting it
//!
//! The module is pure and reads no configuration (policy modules get the plan and nothing else), so
//! the list is compiled in. To adapt it, copy this crate, edit [`DENY_LIST`] (or call
//! [`check_hosts`] with a list of your own from your [`Policy::check`]), keep a test for every entry
//! you add, and rebuild:
//!
//! ```text
//! cargo test -p bottle-policy-deny-hosts
//! cargo build -p bottle-policy-deny-hosts --target wasm32-wasip2 --profile plugin
//! ```
//!
//! The component is `target/wasm32-wasip2/plugin/bottle_policy_deny_hosts.wasm`. Ship it to the
//! machines that launch bottles as `~/.bottle/policy/deny-hosts.wasm`, or into the directory
//! `$BOTTLE_POLICY_DIR` names; the host runs every module there against every plan before it
//! launches anything, and any violation stops the launch.

use bottle_host_pattern::{HostName, HostPattern};
use bottle_plugin_sdk::plan_view::{HostMention, HostPlace};
use bottle_plugin_sdk::{PlanView, Policy, Violation};

/// The module's name.
pub const NAME: &str = "deny-hosts";

/// The rule this module checks.
pub const RULE: &str = "no-paste-sites";

/// Paste, file-drop, request-bin and tunnel sites no bottle may name. Each entry is a domain, lowercase
/// and without wildcards, and covers the domain and every subdomain (see the crate docs).
pub const DENY_LIST: &[&str] = &[
    // Paste sites.
    "pastebin.com",
    "pastebin.pl",
    "paste.ee",
    "hastebin.com",
    "hastebin.skyra.pw",
    "ghostbin.co",
    "ghostbin.com",
    "dpaste.com",
    "dpaste.org",
    "dpaste.de",
    "termbin.com",
    "ix.io",
    "sprunge.us",
    "paste.rs",
    "bpa.st",
    "paste.debian.net",
    "paste.mozilla.org",
    "rentry.co",
    "rentry.org",
    "controlc.com",
    "justpaste.it",
    "privatebin.net",
    "pastes.dev",
    "paste.gg",
    // File drops.
    "transfer.sh",
    "0x0.st",
    "file.io",
    "gofile.io",
    "catbox.moe",
    "temp.sh",
    "oshi.at",
    "bashupload.com",
    "keep.sh",
    "anonfiles.com",
    // Request bins: anything sent there is readable by whoever holds the URL.
    "webhook.site",
    "requestbin.net",
    "pipedream.net",
    "requestcatcher.com",
    // Tunnels into someone else's machine.
    "ngrok.io",
    "ngrok-free.app",
    "ngrok.app",
    "trycloudflare.com",
    "loca.lt",
    "serveo.net",
];

/// The policy.
pub struct DenyHosts;

impl Policy for DenyHosts {
    fn name() -> String {
        NAME.into()
    }

    fn check(plan: &PlanView) -> Vec<Violation> {
        check_hosts(plan, DENY_LIST)
    }
}

bottle_plugin_sdk::policy!(DenyHosts);

/// One [`RULE`] violation for every place in `plan` that names a host one of `deny` covers.
pub fn check_hosts(plan: &PlanView, deny: &[&str]) -> Vec<Violation> {
    plan.host_mentions()
        .iter()
        .filter_map(|mention| {
            let pattern = plan_pattern(mention)?;
            let no_proxy = matches!(mention.place, HostPlace::NoProxy);
            let denied = deny.iter().find(|d| {
                if no_proxy {
                    no_proxy_overlaps(&pattern, d)
                } else {
                    overlaps(&pattern, d)
                }
            })?;
            Some(violation(mention, &pattern, denied))
        })
        .collect()
}

/// The violation for `mention` (read as `pattern`), which covers the deny entry `denied`.
fn violation(mention: &HostMention<'_>, pattern: &str, denied: &str) -> Violation {
    let host = mention.host;
    let base = pattern.trim_start_matches("*.");
    let denied_base = normalise(denied);
    let denied_base = denied_base.trim_start_matches("*.");
    let within =
        !base.contains('*') && (base == denied_base || base.ends_with(&format!(".{denied_base}")));
    let broad = if pattern.contains('*') && !within {
        " (the pattern would let the bottle reach it: narrow it to the hosts the bottle needs)"
    } else {
        ""
    };
    let fix = match mention.place {
        HostPlace::Egress { reason } => format!(
            "remove `{host}` from the bottle's egress allowlist (`egress.allowlist` in the bottle \
             manifest), or drop what asks for it (reason: {reason})"
        ),
        HostPlace::Route => format!(
            "remove the route for `{host}` from the bottle's `egress_proxy.routes`, and `{host}` \
             from its egress allowlist"
        ),
        HostPlace::Grant { plugin } => format!(
            "remove the egress grant of `{host}` from plugin `{plugin}`, or do not install the plugin"
        ),
        HostPlace::NoProxy => format!(
            "remove `{host}` from the agent's NO_PROXY (the agent manifest or the plugin that adds it)"
        ),
        HostPlace::SidecarAlias { sidecar } => format!(
            "no sidecar may answer for a paste site: remove the alias `{host}` from sidecar \
             `{sidecar}` (its plugin's configuration)"
        ),
        HostPlace::SidecarExtraHost { sidecar } => format!(
            "remove the /etc/hosts entry for `{host}` from sidecar `{sidecar}` (its plugin's \
             configuration)"
        ),
    };
    Violation::new(
        RULE,
        mention.subject.clone(),
        format!(
            "`{host}` in {} matches `{denied}`, a paste/file-drop site this organisation \
             denies{broad}; {fix}",
            mention.place,
        ),
    )
    .with_property("host", host)
    .with_property("denied", denied)
}

/// The host pattern a mention stands for, normalised (lowercase, no trailing dot, no brackets, no
/// port), or `None` for what cannot name a host (an empty entry, a `NO_PROXY` CIDR).
fn plan_pattern(mention: &HostMention<'_>) -> Option<String> {
    let mut host = normalise(mention.host);
    if matches!(mention.place, HostPlace::NoProxy) {
        if host.contains('/') {
            return None;
        }
        if host.starts_with('.') {
            host.insert(0, '*');
        }
    }
    (!host.is_empty()).then_some(host)
}

/// Lowercase, trimmed, without a trailing dot, IPv6 brackets or a `:port`.
fn normalise(host: &str) -> String {
    let mut host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        if let Some(end) = host.find(']') {
            host = host[1..end].to_owned();
        }
    } else if let Some((name, port)) = host.rsplit_once(':')
        && !name.contains(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        host.truncate(name.len());
    }
    while host.ends_with('.') {
        host.pop();
    }
    host
}

/// Whether some host the plan's `pattern` matches (read as the egress proxy reads it) is the deny
/// entry `denied` or one of its subdomains. Fails closed: an entry with a `*` that is no valid
/// pattern, or a deny entry that is no domain, overlaps.
pub fn overlaps(pattern: &str, denied: &str) -> bool {
    let Some(denied) = deny_domain(denied) else {
        return true;
    };
    let pattern = normalise(pattern);
    match HostPattern::parse(&pattern) {
        Ok(pattern) => pattern.reaches_domain(&denied),
        Err(_) => pattern.contains('*'),
    }
}

/// Whether a `NO_PROXY` entry (the domain and every subdomain, `.` or `*.` in front or not) and
/// the deny entry `denied` (also with every subdomain) share a host. Fails closed like
/// [`overlaps`].
pub fn no_proxy_overlaps(entry: &str, denied: &str) -> bool {
    let Some(denied) = deny_domain(denied) else {
        return true;
    };
    let entry = normalise(entry);
    let domain = entry.trim_start_matches('*').trim_start_matches('.');
    match HostName::parse(domain) {
        // One covers the other: the entry lies inside the denied domain, or contains it.
        Ok(domain) => {
            HostPattern::from(domain.clone()).reaches_domain(&denied)
                || HostPattern::from(denied).reaches_domain(&domain)
        }
        Err(_) => entry.contains('*'),
    }
}

/// The domain a deny entry stands for (a leading `*.` is dropped: the entry covers subdomains
/// anyway), or `None` when it is no host name.
fn deny_domain(denied: &str) -> Option<HostName> {
    let denied = normalise(denied);
    HostName::parse(denied.strip_prefix("*.").unwrap_or(&denied)).ok()
}

#[cfg(test)]
mod tests;
