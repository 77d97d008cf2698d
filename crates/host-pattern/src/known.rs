//! Host lists bottle allows by default, shared by the host (the plan's egress) and the plugins
//! (pipelock's allowlist), so the two never disagree.

/// The hosts the default agent (Claude Code) needs, allowed in every bottle as claude-bottle did.
/// Not sentry.io: its ingest accepts any DSN, so an agent could post anything to an account of its
/// own there; Claude Code runs without it (its error reports are dropped).
pub const CLAUDE_CODE: [&str; 6] = [
    "api.anthropic.com",
    "statsig.anthropic.com",
    "claude.ai",
    "platform.claude.com",
    "downloads.claude.ai",
    "raw.githubusercontent.com",
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_known_host_is_a_host_name() {
        for host in super::CLAUDE_CODE {
            let name = crate::HostName::parse(host).unwrap();
            assert_eq!(name.as_str(), host);
        }
    }
}
