//! `bottle allowlist suggest`: the minimal `egress.allowlist` and the routes' paths a learn record
//! shows were used, as bottle manifest YAML (or JSON).

use std::collections::{BTreeMap, BTreeSet};

use bottle_host_pattern::HostName;
use serde::Serialize;

use super::record::LearnRecord;

/// How many hosts directly under one domain fold into `*.<domain>`. Two could be chance
/// (`www` and `api`); three is a pattern of the service (a CDN, per-region hosts).
pub const GLOB_AT: usize = 3;

/// Domains under which any name is someone else's: a glob below one would allow every customer of
/// a hosting service or every company of a country. Not the whole Public Suffix List: the
/// second-level country suffixes and the hosting services that coding agents reach. A glob is also
/// never made directly below a top-level domain (one label), whatever the list says.
pub const PUBLIC_SUFFIXES: &[&str] = &[
    // Second-level country suffixes.
    "ac.uk",
    "co.uk",
    "gov.uk",
    "ltd.uk",
    "me.uk",
    "net.uk",
    "org.uk",
    "plc.uk",
    "com.au",
    "edu.au",
    "gov.au",
    "net.au",
    "org.au",
    "co.nz",
    "net.nz",
    "org.nz",
    "ac.jp",
    "co.jp",
    "ne.jp",
    "or.jp",
    "co.kr",
    "or.kr",
    "com.br",
    "net.br",
    "org.br",
    "com.cn",
    "net.cn",
    "org.cn",
    "com.hk",
    "com.tw",
    "co.in",
    "net.in",
    "org.in",
    "co.za",
    "com.mx",
    "com.ar",
    "com.tr",
    "com.sg",
    "co.il",
    "co.id",
    "com.my",
    "com.ph",
    "com.vn",
    "com.pl",
    "com.ua",
    "co.th",
    "com.co",
    "com.pe",
    "com.eg",
    "com.sa",
    "com.ng",
    "eu.org",
    // Hosting services: each subdomain is a different owner.
    "github.io",
    "githubusercontent.com",
    "gitlab.io",
    "pages.dev",
    "workers.dev",
    "netlify.app",
    "vercel.app",
    "herokuapp.com",
    "appspot.com",
    "web.app",
    "firebaseapp.com",
    "azurewebsites.net",
    "cloudapp.net",
    "blob.core.windows.net",
    "s3.amazonaws.com",
    "cloudfront.net",
    "fly.dev",
    "onrender.com",
    "ngrok.io",
    "ngrok-free.app",
    "r2.dev",
    "readthedocs.io",
    "surge.sh",
    "glitch.me",
    "repl.co",
    "deno.dev",
    "pythonanywhere.com",
    "codeberg.page",
    "sourceforge.io",
];

/// What to paste into the bottle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// The identity learned from.
    pub identity: String,
    /// `egress.allowlist`, one pattern each.
    pub allowlist: Vec<Allow>,
    /// The routes' paths and methods used.
    pub routes: Vec<RouteUse>,
    /// Requests in the record.
    pub requests: u64,
    /// The first and last request (RFC 3339), if any.
    pub first_seen: Option<String>,
    /// See `first_seen`.
    pub last_seen: Option<String>,
    /// Audit lines the record left out (see [`LearnRecord::dropped`]).
    pub dropped: u64,
}

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allow {
    /// A host, or `*.<domain>` for [`GLOB_AT`] or more hosts directly under it.
    pub pattern: String,
    /// The hosts it stands for.
    pub hosts: Vec<String>,
    /// Whether any of them was off the allowlist (the rest were allowed already).
    pub learned: bool,
    /// Requests to them.
    pub requests: u64,
}

/// What one route was used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteUse {
    /// The route's host.
    pub host: String,
    /// The fewest path prefixes covering every path used (see `record::PATH_DEPTH`).
    pub path_allowlist: Vec<String>,
    /// The methods used.
    pub methods: Vec<String>,
    /// Requests through it.
    pub requests: u64,
}

/// The suggestion for `record`.
pub fn suggest(record: &LearnRecord) -> Suggestion {
    let route_hosts: BTreeSet<&str> = record
        .entries
        .iter()
        .filter_map(|e| e.route.as_deref())
        .collect();
    let mut hosts: BTreeMap<String, (bool, u64)> = BTreeMap::new();
    let mut routes: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>, u64)> = BTreeMap::new();
    for entry in &record.entries {
        match &entry.route {
            Some(route) => {
                let used = routes.entry(route.clone()).or_default();
                used.2 += entry.count;
                if entry.method != "CONNECT" {
                    used.1.insert(entry.method.clone());
                    // A path that could not be shown is not guessed at: the route keeps whatever
                    // paths it allows now for it.
                    if let Some(prefix) = &entry.path_prefix {
                        used.0.insert(prefix.clone());
                    }
                }
            }
            // A route's host is reached through its route, never also through the allowlist.
            None if route_hosts.contains(entry.host.as_str()) => {}
            None => {
                let seen = hosts.entry(entry.host.clone()).or_default();
                seen.0 |= entry.learned;
                seen.1 += entry.count;
            }
        }
    }
    let allowlist = collapse(&hosts.keys().cloned().collect())
        .into_iter()
        .map(|(pattern, members)| Allow {
            learned: members.iter().any(|h| hosts[h].0),
            requests: members.iter().map(|h| hosts[h].1).sum(),
            pattern,
            hosts: members,
        })
        .collect();
    let routes = routes
        .into_iter()
        .map(|(host, (paths, methods, requests))| RouteUse {
            host,
            path_allowlist: fewest_prefixes(&paths),
            methods: methods.into_iter().collect(),
            requests,
        })
        .collect();
    Suggestion {
        identity: record.identity.clone(),
        allowlist,
        routes,
        requests: record.entries.iter().map(|e| e.count).sum(),
        first_seen: record.entries.iter().map(|e| e.first_seen.clone()).min(),
        last_seen: record.entries.iter().map(|e| e.last_seen.clone()).max(),
        dropped: record.dropped,
    }
}

/// Fold [`GLOB_AT`] or more hosts directly under one domain into `*.<domain>` (a `*` matches
/// exactly one label, so only direct children fold), unless the domain is a top-level domain or a
/// public suffix. Returns each pattern with the hosts it stands for, sorted.
pub fn collapse(hosts: &BTreeSet<String>) -> Vec<(String, Vec<String>)> {
    let mut by_parent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut alone = Vec::new();
    for host in hosts {
        match globbable_parent(host) {
            Some(parent) => by_parent.entry(parent).or_default().push(host.clone()),
            None => alone.push((host.clone(), vec![host.clone()])),
        }
    }
    for (parent, children) in by_parent {
        if children.len() >= GLOB_AT {
            alone.push((format!("*.{parent}"), children));
        } else {
            alone.extend(children.into_iter().map(|h| (h.clone(), vec![h])));
        }
    }
    alone.sort();
    alone
}

/// The domain a glob over `host` would name, when one may be made: `host` is a DNS name (not an
/// IP), and its parent has two labels or more and is not a public suffix.
fn globbable_parent(host: &str) -> Option<String> {
    let name = HostName::parse(host).ok()?;
    if name.ip().is_some() {
        return None;
    }
    let (_, parent) = name.as_str().split_once('.')?;
    let fine = parent.contains('.') && !is_public_suffix(parent);
    fine.then(|| parent.to_owned())
}

/// Whether `domain` is in [`PUBLIC_SUFFIXES`] (or a top-level domain).
pub fn is_public_suffix(domain: &str) -> bool {
    !domain.contains('.') || PUBLIC_SUFFIXES.contains(&domain)
}

/// The prefixes of `paths` no other one covers (whole segments: `/a` covers `/a/b`).
fn fewest_prefixes(paths: &BTreeSet<String>) -> Vec<String> {
    let covers = |outer: &str, inner: &str| {
        outer == "/"
            || inner
                .strip_prefix(outer)
                .is_some_and(|r| r.starts_with('/'))
    };
    paths
        .iter()
        .filter(|p| !paths.iter().any(|q| q != *p && covers(q, p)))
        .cloned()
        .collect()
}

/// The suggestion as bottle manifest YAML, with comments saying where each entry came from. Every
/// value is written as a double-quoted (JSON) string, so no host or path can change the
/// document's structure.
pub fn render_yaml(s: &Suggestion) -> String {
    let q = |text: &str| serde_json::to_string(text).expect("a string serializes");
    let mut out = format!(
        "# Suggested by `bottle allowlist suggest {}` from {} request(s) in learn mode",
        s.identity, s.requests
    );
    if let (Some(first), Some(last)) = (&s.first_seen, &s.last_seen) {
        out.push_str(&format!(", {first} to {last}"));
    }
    out.push_str(
        ".\n# Paste `egress` into the bottle's front matter; merge each route's `path_allowlist` and\n\
         # `methods` into the bottle's route of the same host (it keeps its `auth`).\n",
    );
    if s.dropped > 0 {
        out.push_str(&format!(
            "# {} audit line(s) were left out: a host or path that did not check, or too many \
             entries.\n",
            s.dropped
        ));
    }
    out.push_str("egress:\n  allowlist:");
    if s.allowlist.is_empty() {
        out.push_str(" []\n");
    } else {
        out.push('\n');
    }
    for allow in &s.allowlist {
        let how = if allow.learned {
            "learned"
        } else {
            "already allowed"
        };
        let mut comment = format!("{how}; {} request(s)", allow.requests);
        if allow.hosts.len() > 1 || allow.hosts[0] != allow.pattern {
            comment.push_str(&format!("; {}", allow.hosts.join(", ")));
        }
        out.push_str(&format!("    - {}  # {comment}\n", q(&allow.pattern)));
    }
    if s.routes.is_empty() {
        return out;
    }
    out.push_str("egress_proxy:\n  routes:\n");
    for route in &s.routes {
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|i| q(i)).collect();
            format!("[{}]", quoted.join(", "))
        };
        out.push_str(&format!(
            "    - host: {}  # {} request(s)\n      path_allowlist: {}\n",
            q(&route.host),
            route.requests,
            list(&route.path_allowlist)
        ));
        if !route.methods.is_empty() {
            out.push_str(&format!("      methods: {}\n", list(&route.methods)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::record::Entry;

    fn set(hosts: &[&str]) -> BTreeSet<String> {
        hosts.iter().map(|h| h.to_string()).collect()
    }

    fn patterns(hosts: &[&str]) -> Vec<String> {
        collapse(&set(hosts)).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn three_subdomains_of_one_domain_fold_into_a_glob() {
        assert_eq!(
            patterns(&["a.cdn.test", "b.cdn.test", "c.cdn.test", "other.test"]),
            ["*.cdn.test", "other.test"]
        );
        let folded = collapse(&set(&["a.x.org", "b.x.org", "c.x.org"]));
        assert_eq!(folded[0].1, ["a.x.org", "b.x.org", "c.x.org"]);
    }

    #[test]
    fn two_are_not_enough_and_only_direct_children_fold() {
        assert_eq!(patterns(&["a.x.org", "b.x.org"]), ["a.x.org", "b.x.org"]);
        // `*` is one label: a.b.x.org is not under `*.x.org`, so it does not count towards it.
        assert_eq!(
            patterns(&["a.x.org", "b.x.org", "c.d.x.org", "x.org"]),
            ["a.x.org", "b.x.org", "c.d.x.org", "x.org"]
        );
    }

    #[test]
    fn a_public_suffix_is_never_globbed() {
        for hosts in [
            ["a.com", "b.com", "c.com"],
            ["a.co.uk", "b.co.uk", "c.co.uk"],
            ["a.github.io", "b.github.io", "c.github.io"],
            [
                "x.s3.amazonaws.com",
                "y.s3.amazonaws.com",
                "z.s3.amazonaws.com",
            ],
        ] {
            let found = patterns(&hosts);
            assert_eq!(found, hosts, "{hosts:?}");
            assert!(found.iter().all(|p| !p.contains('*')));
        }
        // Below one, a domain that someone owns folds as any other.
        assert_eq!(
            patterns(&["a.shop.co.uk", "b.shop.co.uk", "c.shop.co.uk"]),
            ["*.shop.co.uk"]
        );
    }

    #[test]
    fn addresses_are_never_globbed() {
        assert_eq!(
            patterns(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
    }

    fn entry(host: &str, method: &str, path: Option<&str>, route: Option<&str>) -> Entry {
        Entry {
            host: host.into(),
            port: 443,
            method: method.into(),
            path_prefix: path.map(str::to_owned),
            route: route.map(str::to_owned),
            learned: route.is_none() && host != "listed.test",
            count: 2,
            first_seen: "2026-12-02T13:00:00Z".into(),
            last_seen: "2026-12-02T14:00:00Z".into(),
        }
    }

    fn record() -> LearnRecord {
        LearnRecord {
            identity: "dev".into(),
            entries: vec![
                entry("new.test", "GET", Some("/a"), None),
                entry("listed.test", "GET", Some("/"), None),
                entry("api.test", "CONNECT", None, Some("api.test")),
                entry("api.test", "GET", Some("/v1/x"), Some("api.test")),
                entry("api.test", "POST", Some("/v1/x/y"), Some("api.test")),
                entry("api.test", "GET", Some("/v2"), Some("api.test")),
            ],
            dropped: 0,
        }
    }

    #[test]
    fn routes_keep_the_fewest_prefixes_and_stay_off_the_allowlist() {
        let s = suggest(&record());
        let hosts: Vec<_> = s.allowlist.iter().map(|a| a.pattern.as_str()).collect();
        assert_eq!(hosts, ["listed.test", "new.test"]);
        assert!(!s.allowlist[0].learned && s.allowlist[1].learned);
        assert_eq!(s.routes.len(), 1);
        assert_eq!(s.routes[0].path_allowlist, ["/v1/x", "/v2"]);
        assert_eq!(s.routes[0].methods, ["GET", "POST"]);
        assert_eq!(s.requests, 12);
    }

    #[test]
    fn the_yaml_is_a_bottle_manifest_that_loads() {
        let mut r = record();
        // Text that would end a quoted scalar, a flow list and start a comment or a mapping.
        r.entries
            .push(entry("api.test", "GET", Some("/q\"]#{x"), Some("api.test")));
        r.entries.push(entry("evil.test", "GET", Some("/"), None));
        let yaml = render_yaml(&suggest(&r));
        let text = format!("---\n{yaml}---\n");
        let origin = bottle_manifest::Origin::embedded("learned");
        let bottle =
            bottle_manifest::Bottle::parse(&text, &origin, &BTreeSet::new(), None).unwrap();
        assert_eq!(
            bottle.egress.allowlist,
            ["evil.test", "listed.test", "new.test"]
        );
        let route = &bottle.egress_proxy.routes[0];
        assert_eq!(route.host, "api.test");
        assert_eq!(
            route.path_allowlist.as_deref(),
            Some(
                &[
                    "/q\"]#{x".to_string(),
                    "/v1/x".to_string(),
                    "/v2".to_string()
                ][..]
            )
        );
        assert!(yaml.contains("# learned; 2 request(s)"), "{yaml}");
        assert!(yaml.contains("already allowed"), "{yaml}");
    }

    #[test]
    fn an_empty_record_suggests_an_empty_allowlist() {
        let s = suggest(&LearnRecord::default());
        let yaml = render_yaml(&s);
        assert!(yaml.contains("allowlist: []"), "{yaml}");
        assert!(!yaml.contains("egress_proxy"), "{yaml}");
    }
}
