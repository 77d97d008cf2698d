//! The learn record: what a learning bottle reached, folded from its egress proxy's audit lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use bottle_host_pattern::HostName;
use serde::{Deserialize, Serialize};

use super::LearnError;

/// How many leading path segments a path prefix keeps: enough for `/repos/<owner>/<repo>` or
/// `/v1/messages`, few enough that one project's paths fold into a handful of prefixes.
pub const PATH_DEPTH: usize = 3;

/// The most entries a record keeps (distinct host, port, method, route, prefix): bounds the file
/// whatever the agent sends; what does not fit is counted in [`LearnRecord::dropped`].
pub const MAX_ENTRIES: usize = 10_000;

/// The sidecar whose log holds the audit lines.
const PROXY_LOG: &str = "egress-proxy.log";

/// Everything learned about one identity, across its learning sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnRecord {
    /// The bottle's identity.
    pub identity: String,
    /// One entry per host, port, method, route and path prefix, sorted.
    pub entries: Vec<Entry>,
    /// Audit lines left out: a host or path that did not check, or past [`MAX_ENTRIES`].
    #[serde(default)]
    pub dropped: u64,
}

/// Requests of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The host (canonical).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The method (`CONNECT` for the tunnel itself).
    pub method: String,
    /// The first [`PATH_DEPTH`] segments of the path; `None` for a tunnel or a path that could not
    /// be shown (redacted by the DLP, or with `.`/`..` segments).
    pub path_prefix: Option<String>,
    /// The credential route applied, if any.
    pub route: Option<String>,
    /// Whether the host was off the allowlist (allowed only because the proxy was learning).
    pub learned: bool,
    /// How many requests.
    pub count: u64,
    /// RFC 3339, the first one.
    pub first_seen: String,
    /// RFC 3339, the last one.
    pub last_seen: String,
}

/// The fields of an egress proxy audit line this module reads.
#[derive(Debug, Deserialize)]
struct AuditLine {
    time: String,
    method: String,
    host: String,
    port: u16,
    path: String,
    route: Option<String>,
    decision: String,
    learn: Option<String>,
}

type Key = (String, u16, String, Option<String>, Option<String>);

/// Fold the learn-tagged, allowed audit lines in `log` (a proxy log: audit lines on stdout mixed
/// with its own log lines) into a record. Refused requests are not learned: a request the DLP
/// stopped must not come back as a suggestion.
pub fn from_audit_log(identity: &str, log: &[u8]) -> LearnRecord {
    let mut entries: BTreeMap<Key, Entry> = BTreeMap::new();
    let mut dropped = 0;
    for line in log.split(|b| *b == b'\n') {
        let Some(line) = parse(line) else { continue };
        let Some(entry) = entry_of(&line) else {
            dropped += 1;
            continue;
        };
        let key = (
            entry.host.clone(),
            entry.port,
            entry.method.clone(),
            entry.route.clone(),
            entry.path_prefix.clone(),
        );
        if let Some(seen) = entries.get_mut(&key) {
            seen.count += 1;
            seen.learned |= entry.learned;
            seen.first_seen = seen.first_seen.clone().min(entry.first_seen);
            seen.last_seen = seen.last_seen.clone().max(entry.last_seen);
        } else if entries.len() < MAX_ENTRIES {
            entries.insert(key, entry);
        } else {
            dropped += 1;
        }
    }
    LearnRecord {
        identity: identity.to_owned(),
        entries: entries.into_values().collect(),
        dropped,
    }
}

/// An allowed audit line of a learning proxy; anything else (log lines, refusals, lines of a run
/// without learn mode) is not one.
/// Only a whole line that is one JSON object counts: the proxy's own log lines may quote a path
/// the agent chose, but never start with `{`.
fn parse(line: &[u8]) -> Option<AuditLine> {
    let line = line.trim_ascii();
    if !line.starts_with(b"{") {
        return None;
    }
    let line: AuditLine = serde_json::from_slice(line).ok()?;
    (line.decision == "allow" && line.learn.is_some()).then_some(line)
}

/// The entry one line counts as, if its host and path check.
fn entry_of(line: &AuditLine) -> Option<Entry> {
    let host = HostName::parse(&line.host).ok()?.as_str().to_owned();
    let route = match &line.route {
        Some(r) => Some(HostName::parse(r).ok()?.as_str().to_owned()),
        None => None,
    };
    let method = line.method.clone();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let path_prefix = if method == "CONNECT" {
        None
    } else {
        path_prefix(&line.path)
    };
    Some(Entry {
        host,
        port: line.port,
        method,
        path_prefix,
        route,
        learned: line.learn.as_deref() == Some("learned"),
        count: 1,
        first_seen: line.time.clone(),
        last_seen: line.time.clone(),
    })
}

/// The first [`PATH_DEPTH`] segments of `path`, or `None` when it is not a plain path: redacted,
/// relative, or with `.`/`..` segments or characters outside printable ASCII (a path is percent-
/// encoded on the wire; anything else did not come from a request line).
pub fn path_prefix(path: &str) -> Option<String> {
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return None;
    }
    let kept = &segments[..segments.len().min(PATH_DEPTH)];
    Some(format!("/{}", kept.join("/")))
}

/// After teardown kept the sidecars' logs: a learning bottle's record comes from the proxy's log
/// just kept, so it is written on every teardown path that keeps logs (exit, error, signal,
/// `bottle stop`). Says where it is.
pub fn keep(home_root: &Path, identity: &str) {
    if let Some(path) = collect(home_root, identity) {
        eprintln!(
            "learn record: {}; `bottle allowlist suggest {identity}` prints the allowlist",
            path.display()
        );
    }
}

/// Fold the egress proxy log teardown kept for `identity` into its learn record, when that log
/// holds learn-tagged lines; returns the record's path then. Failures are logged, never fatal:
/// teardown must go on.
pub fn collect(home_root: &Path, identity: &str) -> Option<std::path::PathBuf> {
    let log_path = crate::launch::sidecar_logs::dir(home_root, identity).join(PROXY_LOG);
    // The whole kept log, so that a resumed identity's record covers every learning run and no
    // line is counted twice.
    let log = std::fs::read(&log_path).ok()?;
    let record = from_audit_log(identity, &log);
    if record.entries.is_empty() {
        return None;
    }
    match write(home_root, &record) {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!("writing the learn record of {identity}: {e}");
            None
        }
    }
}

/// Write `record` to its file (0600 in a 0700 directory), replacing what was there.
pub fn write(home_root: &Path, record: &LearnRecord) -> Result<std::path::PathBuf, LearnError> {
    let path = super::record_path(home_root, &record.identity)?;
    let io = |source| LearnError::Io {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(super::dir(home_root))
        .map_err(io)?;
    let json = serde_json::to_vec_pretty(record).expect("a record serializes");
    let scratch = path.with_extension("json.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&scratch)
        .map_err(io)?;
    file.write_all(&json).map_err(io)?;
    std::fs::rename(&scratch, &path).map_err(io)?;
    Ok(path)
}

/// Read the record of `identity`.
pub fn read(home_root: &Path, identity: &str) -> Result<LearnRecord, LearnError> {
    let path = super::record_path(home_root, identity)?;
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LearnError::NoRecord {
                identity: identity.to_owned(),
                path,
            });
        }
        Err(source) => return Err(LearnError::Io { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|e| LearnError::Invalid {
        path,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: &str, host: &str, path: &str, learn: &str, decision: &str) -> String {
        format!(
            r#"{{"time":"{time}","method":"GET","host":"{host}","port":443,"path":"{path}","route":null,"decision":"{decision}","reason":"x","bytes_up":0,"bytes_down":0,"learn":"{learn}"}}"#
        )
    }

    #[test]
    fn tagged_allowed_lines_fold_into_counted_entries() {
        let log = [
            "2026-12-02T13:00:00Z  INFO egress proxy ready".to_owned(),
            line("2026-12-02T13:00:02Z", "a.test", "/v1/x/y/z", "learned", "allow"),
            line("2026-12-02T13:00:01Z", "a.test", "/v1/x/y/w", "learned", "allow"),
            line("2026-12-02T13:00:03Z", "b.test", "/", "listed", "allow"),
            // Refused, or from a run without learn mode: not learned.
            line("2026-12-02T13:00:04Z", "c.test", "/", "learned", "deny"),
            r#"{"time":"t","method":"GET","host":"d.test","port":443,"path":"/","route":null,"decision":"allow","reason":"x","bytes_up":0,"bytes_down":0}"#.to_owned(),
            // A host or path that does not check is dropped, and counted.
            line("2026-12-02T13:00:05Z", "bad host", "/", "learned", "allow"),
        ]
        .join("\n");
        let record = from_audit_log("dev", log.as_bytes());
        assert_eq!(record.dropped, 1);
        assert_eq!(record.entries.len(), 2, "{record:#?}");
        let a = &record.entries[0];
        assert_eq!(
            (
                a.host.as_str(),
                a.path_prefix.as_deref(),
                a.count,
                a.learned
            ),
            ("a.test", Some("/v1/x/y"), 2, true)
        );
        assert_eq!(a.first_seen, "2026-12-02T13:00:01Z");
        assert_eq!(a.last_seen, "2026-12-02T13:00:02Z");
        assert!(!record.entries[1].learned);
    }

    #[test]
    fn path_prefixes_keep_plain_paths_only() {
        assert_eq!(path_prefix("/").as_deref(), Some("/"));
        assert_eq!(path_prefix("/v1/messages").as_deref(), Some("/v1/messages"));
        assert_eq!(
            path_prefix("/repos/o/r/issues/1").as_deref(),
            Some("/repos/o/r")
        );
        for odd in [
            "<redacted>",
            "v1",
            "/a/../b",
            "/a/./b",
            "/a b",
            "/a\u{202e}",
        ] {
            assert_eq!(path_prefix(odd), None, "{odd}");
        }
    }

    #[test]
    fn a_record_round_trips_privately() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let record = from_audit_log(
            "dev",
            line("2026-12-02T13:00:00Z", "a.test", "/x", "learned", "allow").as_bytes(),
        );
        let path = write(home.path(), &record).unwrap();
        assert_eq!(read(home.path(), "dev").unwrap(), record);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            read(home.path(), "other"),
            Err(LearnError::NoRecord { .. })
        ));
    }
}
