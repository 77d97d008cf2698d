//! The audit trail: one JSON line per decision.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request or tunnel went out.
    Allow,
    /// It was refused.
    Deny,
}

/// How a request of a learn-mode proxy (`learn: true`) stood with the allowlist; absent when the
/// proxy is not learning. The host reads the `learned` ones back as the session's learn record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Learn {
    /// The allowlist (or a route, or passthrough) already allowed the host.
    Listed,
    /// Off the allowlist: allowed only because the proxy is learning.
    Learned,
}

/// One decision. Never holds a secret: no header values, no query string, and no path when the
/// DLP found something in the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When, RFC 3339 in UTC.
    pub time: String,
    /// The request method (`CONNECT` for tunnels).
    pub method: String,
    /// The target host (canonical).
    pub host: String,
    /// The target port.
    pub port: u16,
    /// The normalised path, without the query.
    pub path: String,
    /// The credential route applied, if any.
    pub route: Option<String>,
    /// Allowed or denied.
    pub decision: Decision,
    /// Why, in a few words.
    pub reason: String,
    /// Bytes sent upstream (request body, or tunnel bytes client → server).
    pub bytes_up: u64,
    /// Bytes received from upstream (response body, or tunnel bytes server → client).
    pub bytes_down: u64,
    /// In learn mode, whether the host was listed or learned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learn: Option<Learn>,
}

impl AuditRecord {
    /// A record stamped with the current time; bytes start at zero.
    pub fn new(
        method: &str,
        host: &str,
        port: u16,
        path: &str,
        decision: Decision,
        reason: impl Into<String>,
    ) -> Self {
        AuditRecord {
            time: now_rfc3339(),
            method: method.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
            route: None,
            decision,
            reason: reason.into(),
            bytes_up: 0,
            bytes_down: 0,
            learn: None,
        }
    }
}

/// The method as the audit may show it: a registered method verbatim, anything else (which
/// could carry a value) replaced.
pub fn loggable_method(method: &str) -> String {
    const KNOWN: &[&str] = &[
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "CONNECT",
        "TRACE",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "REPORT",
        "SEARCH",
    ];
    if KNOWN.contains(&method) {
        method.to_string()
    } else {
        "<other>".to_string()
    }
}

/// The current time, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Where audit records go.
pub trait AuditSink: Send + Sync {
    /// Records one decision.
    fn record(&self, record: AuditRecord);
}

/// Writes each record as one JSON line on stdout.
#[derive(Debug, Default)]
pub struct StdoutAudit;

impl AuditSink for StdoutAudit {
    fn record(&self, record: AuditRecord) {
        if let Ok(mut line) = serde_json::to_vec(&record) {
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            if out.write_all(&line).and_then(|()| out.flush()).is_err() {
                tracing::warn!("cannot write the audit line to stdout");
            }
        }
    }
}

/// Keeps records in memory (tests), and also prints them as JSON lines when asked to.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemoryAudit {
    /// The records so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, record: AuditRecord) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_one_json_object_with_the_documented_fields() {
        let mut r = AuditRecord::new(
            "GET",
            "example.com",
            443,
            "/x",
            Decision::Deny,
            "host not allowed",
        );
        r.bytes_up = 3;
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        for key in [
            "time",
            "method",
            "host",
            "path",
            "route",
            "decision",
            "reason",
            "bytes_up",
            "bytes_down",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["decision"], "deny");
        let t = v["time"].as_str().unwrap();
        assert!(
            t.len() >= 20 && t.as_bytes()[10] == b'T' && t.ends_with('Z'),
            "{t}"
        );
    }
}
