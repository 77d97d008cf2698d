//! The one clock: every timestamp bottle records (launch records, decisions, the audit log, plugin
//! install records) and every age it shows comes from here.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in UTC.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Now as RFC 3339 UTC, the form of every timestamp bottle records.
pub fn now_rfc3339() -> String {
    now().format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc_and_parse_back() {
        let text = super::now_rfc3339();
        let parsed = time::OffsetDateTime::parse(&text, &super::Rfc3339).unwrap();
        assert!(text.ends_with('Z'), "{text}");
        assert!((super::now() - parsed).abs() < time::Duration::minutes(1));
    }
}
