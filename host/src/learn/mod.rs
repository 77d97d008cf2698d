//! Learn mode (`bottle start --learn`) on the host's side: the learn record a session leaves, and
//! `bottle allowlist suggest`, the minimal allowlist drawn from it.
//!
//! The egress proxy of a learning bottle lets hosts off the allowlist through and tags each of its
//! audit lines `learn: listed|learned` (`bottle-egress-proxy`'s `audit::Learn`). Teardown keeps the
//! proxy's log (`launch::sidecar_logs`); [`record::collect`] folds the tagged lines of that log
//! into `~/.bottle/learn/<identity>.json`: one entry per host, port, method and path prefix with a
//! count and the first and last time seen. The proxy never writes to the host: the host reads what
//! it printed, and trusts none of it (every host and path is checked again here).
//!
//! What learn mode does *not* change is the point of the design: routes are looked up by their own
//! host (a learned host gets no token), the DLP refuses secrets on their way to a learned host as
//! anywhere else, and pipelock cannot be the firewall of a learning bottle (it would refuse what the
//! proxy learns; see [`refuse_with_pipelock`]).

pub mod record;
pub mod suggest;

use std::path::{Path, PathBuf};

/// Why a learn record cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The identity cannot name a record (it would leave the learn directory).
    #[error(
        "`{0}` is not a bottle identity (letters, digits, `.`, `_` and `-`, not starting with `.`)"
    )]
    BadIdentity(String),
    /// No learning session of this identity left a record.
    #[error(
        "no learn record for `{identity}` (looked for {path}); start the bottle with \
         `bottle start --learn`, use it, and exit or `bottle stop` it: the record is written at \
         teardown"
    )]
    NoRecord {
        /// The identity asked for.
        identity: String,
        /// Where the record would be.
        path: PathBuf,
    },
    /// The record could not be read or written.
    #[error("learn record {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The record is not a learn record.
    #[error("learn record {path} is not valid: {message}; delete it and learn again")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// Where learn records live: `<home>/learn/`. Not under `state/<identity>/`, which a clean exit
/// removes: the record is wanted precisely after a session that went well.
pub fn dir(home_root: &Path) -> PathBuf {
    home_root.join(crate::home::LEARN_DIR)
}

/// The record of `identity`, checked to stay inside [`dir`].
pub fn record_path(home_root: &Path, identity: &str) -> Result<PathBuf, LearnError> {
    let fine = !identity.is_empty()
        && !identity.starts_with('.')
        && identity
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !fine {
        return Err(LearnError::BadIdentity(identity.to_owned()));
    }
    Ok(dir(home_root).join(format!("{identity}.json")))
}

/// Learn mode and pipelock do not go together: the proxy would let a host through that pipelock,
/// the firewall behind it, still refuses, so nothing would be learned but refusals. Making pipelock
/// learn too would mean switching its own allowlist and scanning off for the session, a weaker
/// bottle than the one being tuned. Say so before anything is planned.
pub fn refuse_with_pipelock(bottle: &bottle_manifest::Bottle) -> anyhow::Result<()> {
    if bottle.egress.firewall == bottle_manifest::Firewall::Pipelock {
        anyhow::bail!(
            "--learn needs bottle's egress proxy as the firewall, but bottle `{}` uses pipelock \
             (`egress.firewall: pipelock`), which would still refuse every host the proxy learns; \
             learn with a copy of the bottle without `firewall: pipelock`, then paste the suggested \
             allowlist into both",
            bottle.name
        );
    }
    Ok(())
}

/// The line the preflight and the session banner show for a learning bottle: coloured when
/// stderr is a terminal and `NO_COLOR` is not set (<https://no-color.org>).
pub fn banner() -> String {
    let text = "LEARN MODE: hosts off the allowlist are ALLOWED and recorded, not refused \
                (credential routes, DLP and the SSRF guard apply as always); afterwards run \
                `bottle allowlist suggest <identity>`";
    if colour_wanted(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR"),
    ) {
        format!("\x1b[1;33m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything but the empty string.
fn colour_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_stay_inside_the_learn_directory() {
        let root = Path::new("/h");
        assert_eq!(
            record_path(root, "dev-2").unwrap(),
            Path::new("/h/learn/dev-2.json")
        );
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "é"] {
            assert!(
                matches!(record_path(root, bad), Err(LearnError::BadIdentity(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_color_and_pipes_get_plain_text() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }
}
