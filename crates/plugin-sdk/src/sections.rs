//! Manifest sections more than one built-in plugin reads, typed once.
//!
//! The host hands each plugin its declared sections as JSON with defaults applied; a plugin reads
//! the part it needs with serde. Other keys of a section belong to other plugins and are ignored.

use serde::{Deserialize, Deserializer};

/// Treat an explicit `null` like a missing key: `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The `egress` section: which firewall guards the bottle and what it may reach.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct EgressSection {
    /// Which sidecar is the egress firewall.
    #[serde(default, deserialize_with = "nullable")]
    pub firewall: Firewall,
    /// Extra hosts or host patterns the bottle may reach (the host also folds them into
    /// `facts.egress`).
    #[serde(default, deserialize_with = "nullable")]
    pub allowlist: Vec<String>,
    /// An image reference replacing pipelock's default image.
    #[serde(default)]
    pub pipelock_image: Option<String>,
}

/// Which sidecar is the bottle's egress firewall.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firewall {
    /// bottle's egress proxy.
    #[default]
    Builtin,
    /// pipelock (with the egress proxy chained in front of it when there are credential routes).
    Pipelock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_missing_keys_take_the_defaults() {
        let parse = |json: &str| serde_json::from_str::<EgressSection>(json).unwrap();
        assert_eq!(parse("{}"), EgressSection::default());
        assert_eq!(
            parse(r#"{"firewall": null, "allowlist": null}"#),
            EgressSection::default()
        );
        let set = parse(r#"{"firewall": "pipelock", "allowlist": ["a.example"], "other": 1}"#);
        assert_eq!(set.firewall, Firewall::Pipelock);
        assert_eq!(set.allowlist, ["a.example"]);
        assert!(serde_json::from_str::<EgressSection>(r#"{"firewall": "none"}"#).is_err());
    }
}
