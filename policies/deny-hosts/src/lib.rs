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
//! Plan entries are globs read the way the egress proxy reads them: `*` matches any run of
//! characters, `*.example.com` also matches `example.com`, case and a trailing dot do not matter, and
//! a `NO_PROXY` entry `.example.com` means `*.example.com` (a `NO_PROXY` CIDR names no host). A plan
//! entry violates when *some* host could match both it and a deny entry, so an exact host
//! (`pastebin.com`), a subdomain (`www.pastebin.com`), a narrower glob (`*.pastebin.com`) and a
//! broader one (`*.com`, `*`) all violate: each lets the bottle reach a denied site.
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
            let denied = deny.iter().find(|d| overlaps(&pattern, d))?;
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

/// Whether some host matches both the plan's `pattern` (read as the egress proxy reads it) and the
/// deny entry `denied` (which also covers its subdomains).
pub fn overlaps(pattern: &str, denied: &str) -> bool {
    // The proxy's reading of `*.x` (`x` too) needs no case of its own here: whatever `x` reaches
    // in a denied domain, `*.x` reaches in one of its subdomains, which the deny entry covers.
    let pattern = normalise(pattern);
    let denied = normalise(denied);
    let mut covered = vec![format!("*.{denied}"), denied];
    if let Some(base) = covered[1].strip_prefix("*.") {
        covered.push(base.to_owned());
    }
    covered.iter().any(|d| globs_intersect(&pattern, d))
}

/// Whether some string matches both globs, where `*` matches any run of characters (dots too):
/// reachability of the final state in the product of the two patterns' automata.
pub fn globs_intersect(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (n, m) = (a.len(), b.len());
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut todo = vec![(0, 0)];
    while let Some((i, j)) = todo.pop() {
        if std::mem::replace(&mut seen[i * (m + 1) + j], true) {
            continue;
        }
        if (i, j) == (n, m) {
            return true;
        }
        let star_a = i < n && a[i] == b'*';
        let star_b = j < m && b[j] == b'*';
        // A star matches nothing.
        if star_a {
            todo.push((i + 1, j));
        }
        if star_b {
            todo.push((i, j + 1));
        }
        // One character both sides accept: a star takes the other side's literal, or two equal
        // literals. (Two stars taking one character leave the state as it is.)
        if i < n && j < m {
            match (star_a, star_b) {
                (true, false) => todo.push((i, j + 1)),
                (false, true) => todo.push((i + 1, j)),
                (false, false) if a[i] == b[j] => todo.push((i + 1, j + 1)),
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
