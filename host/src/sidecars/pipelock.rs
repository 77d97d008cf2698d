//! pipelock, the optional egress firewall: its allowlist is `api_allowlist` in
//! `/etc/pipelock.yaml`, applied by a restart.
//!
//! pipelock's schema belongs to pipelock (the plugin renders the part bottle sets); the host owns
//! only `api_allowlist`, so it edits that key and keeps every other key, and their order, as the
//! live file has them.

use bottle_supervise_queue::CurrentConfig;
use yaml_serde::{Mapping, Value};

use super::{Edit, EditError, EditKind, Format, LiveSidecar, Reload, invalid};

/// The one key of pipelock's config the host edits.
const ALLOWLIST_KEY: &str = "api_allowlist";

/// pipelock.
#[derive(Debug, Clone, Copy)]
pub struct Pipelock;

impl LiveSidecar for Pipelock {
    fn plugin(&self) -> &'static str {
        "pipelock"
    }

    fn label(&self) -> &'static str {
        "pipelock"
    }

    fn config_path(&self) -> &'static str {
        "/etc/pipelock.yaml"
    }

    fn format(&self) -> Format {
        Format::Yaml
    }

    fn reload(&self) -> Reload {
        Reload::Restart
    }

    fn edits(&self) -> &'static [EditKind] {
        &[EditKind::Allow]
    }

    fn read_current(&self, config: &[u8], current: &mut CurrentConfig) {
        for host in allowlist(config) {
            if !current.allow.contains(&host) {
                current.allow.push(host);
            }
        }
    }

    fn edit(
        &self,
        config: &[u8],
        edit: &Edit<'_>,
        _current: &mut CurrentConfig,
    ) -> Result<Vec<u8>, EditError> {
        match *edit {
            Edit::Allow { added, removed } => with_allow_delta(config, added, removed),
            _ => Err(invalid("pipelock takes only allowlist changes")),
        }
    }
}

/// pipelock's `api_allowlist`; empty when the file or the key does not parse.
pub fn allowlist(yaml: &[u8]) -> Vec<String> {
    yaml_serde::from_slice::<Mapping>(yaml)
        .ok()
        .and_then(|m| {
            m.get(ALLOWLIST_KEY)?.as_sequence().map(|s| {
                s.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// pipelock's config with `added` in `api_allowlist` and `removed` taken out of it (compared
/// without case); everything else kept as it is.
pub fn with_allow_delta(
    yaml: &[u8],
    added: &[String],
    removed: &[String],
) -> Result<Vec<u8>, EditError> {
    let mut config: Mapping = yaml_serde::from_slice(yaml)
        .map_err(|e| invalid(format!("pipelock's live config does not parse: {e}")))?;
    let list = config
        .get_mut(ALLOWLIST_KEY)
        .and_then(Value::as_sequence_mut)
        .ok_or_else(|| invalid("pipelock's live config has no api_allowlist"))?;
    list.retain(|h| {
        !h.as_str()
            .is_some_and(|h| removed.iter().any(|r| r.eq_ignore_ascii_case(h)))
    });
    for host in added {
        if !list.iter().any(|h| h.as_str() == Some(host)) {
            list.push(Value::String(host.clone()));
        }
    }
    Ok(yaml_serde::to_string(&config)
        .expect("yaml serializes")
        .into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_added_and_the_rest_kept() {
        let yaml = b"version: 1\napi_allowlist:\n- a.example\nmode: strict\n";
        let after = with_allow_delta(yaml, &["b.example".into()], &[]).unwrap();
        let after = String::from_utf8(after).unwrap();
        assert_eq!(
            after,
            "version: 1\napi_allowlist:\n- a.example\n- b.example\nmode: strict\n"
        );
        assert!(with_allow_delta(b"mode: strict\n", &["b.example".into()], &[]).is_err());
        assert!(with_allow_delta(b"- not a map\n", &[], &[]).is_err());
    }

    #[test]
    fn allowlist_edits_add_and_remove() {
        let yaml = b"api_allowlist:\n- a.example\n- B.example\nmode: strict\n";
        let after = with_allow_delta(yaml, &["c.example".into()], &["b.example".into()]).unwrap();
        let after = String::from_utf8(after).unwrap();
        assert!(
            after.contains("- a.example\n- c.example") && !after.contains("B.example"),
            "{after}"
        );
        assert!(after.contains("mode: strict"), "{after}");
        assert_eq!(allowlist(after.as_bytes()), ["a.example", "c.example"]);
        assert!(allowlist(b"mode: strict\n").is_empty());
    }
}
