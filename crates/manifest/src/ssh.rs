//! SSH upstream URLs and host keys of git entries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::invalid::Invalid;
use crate::names;
use crate::strict;

/// The form an `Upstream` must have, for messages.
const UPSTREAM_FORM: &str = "ssh://user@host[:port]/path";

/// A git upstream reached over SSH: `ssh://user@host[:port]/path`.
///
/// Serializes back to that URL form, as written in manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshUrl {
    /// The SSH user, such as `git`.
    pub user: String,
    /// The host name, lowercased.
    pub host: String,
    /// The port, when not the default 22.
    pub port: Option<u16>,
    /// The repository path on the server, starting with `/`.
    pub path: String,
}

impl SshUrl {
    /// Parses `ssh://user@host[:port]/path`; the error says what is wrong and shows the form.
    pub fn parse(text: &str) -> Result<SshUrl, String> {
        parse_upstream(text).map_err(|invalid| match invalid.hint {
            Some(hint) => format!("{}; {hint}", invalid.message),
            None => invalid.message,
        })
    }
}

impl fmt::Display for SshUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh://{}@{}", self.user, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.path)
    }
}

impl Serialize for SshUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SshUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::text(deserializer, "an ssh:// URL", parse_upstream)
    }
}

/// Parses an `Upstream` value.
pub(crate) fn parse_upstream(text: &str) -> Result<SshUrl, Invalid> {
    let bad = |why: &str| {
        Invalid::new(format!("`{text}` is not a valid upstream: {why}"))
            .hint(format!("write it as `{UPSTREAM_FORM}`"))
    };
    let Some(rest) = text.strip_prefix("ssh://") else {
        return Err(not_ssh(text));
    };
    let (authority, path) = rest.split_at(rest.find('/').ok_or_else(|| bad("no path"))?);
    let (user, host_port) = authority
        .split_once('@')
        .ok_or_else(|| bad("no user (such as `git@`)"))?;
    if user.is_empty() || user.contains([':', ' ']) {
        return Err(bad("the user is empty or holds a password"));
    }
    let (host, port) = split_port(host_port).map_err(|why| bad(&why))?;
    let host = names::host(host).map_err(|_| bad("the host is not a valid host name"))?;
    if path.len() < 2 || path.contains(char::is_whitespace) {
        return Err(bad("the path is empty or holds spaces"));
    }
    Ok(SshUrl {
        user: user.to_string(),
        host,
        port,
        path: path.to_string(),
    })
}

/// The error for anything that is not `ssh://`, with the `ssh://` equivalent when it is scp-style.
fn not_ssh(text: &str) -> Invalid {
    let message = format!("`{text}` is not an ssh:// URL");
    if let Some((user_host, path)) = scp_parts(text) {
        let path = path.trim_start_matches('/');
        return Invalid::new(message).hint(format!(
            "scp-style addresses are not accepted; write `ssh://{user_host}/{path}`"
        ));
    }
    if text.contains("://") {
        return Invalid::new(message).hint(format!(
            "the git gate only speaks SSH; write the upstream as `{UPSTREAM_FORM}`"
        ));
    }
    Invalid::new(message).hint(format!("write it as `{UPSTREAM_FORM}`"))
}

/// `user@host:path` → (`user@host`, `path`).
fn scp_parts(text: &str) -> Option<(&str, &str)> {
    let (user_host, path) = text.split_once(':')?;
    (user_host.contains('@') && !user_host.contains('/') && !path.is_empty())
        .then_some((user_host, path))
}

fn split_port(host_port: &str) -> Result<(&str, Option<u16>), String> {
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return Ok((host_port, None));
    };
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{port}` is not a port number")),
        Ok(port) => Ok((host, Some(port))),
    }
}

/// Key types an SSH server may present.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// A `KnownHostKey`: `<type> <base64 blob> [comment]`, whose blob encodes the same type.
pub(crate) fn known_host_key(text: &str) -> Result<String, Invalid> {
    let mut parts = text.split_whitespace();
    let (Some(first), blob) = (parts.next(), parts.next()) else {
        return Err(bad_key(text, "it is empty"));
    };
    if !KEY_TYPES.contains(&first) {
        return Err(match blob.filter(|b| KEY_TYPES.contains(b)) {
            Some(_) => bad_key(text, "it starts with a host name").hint(
                "drop the host name at the start of the known_hosts line: keep `<type> <key>`",
            ),
            None => bad_key(text, &format!("`{first}` is not an SSH key type")),
        });
    }
    let blob = blob.ok_or_else(|| bad_key(text, "the base64 key is missing"))?;
    check_blob(first, blob).map_err(|why| bad_key(text, &why))?;
    Ok(text.trim().to_string())
}

fn bad_key(text: &str, why: &str) -> Invalid {
    let shown: String = text.chars().take(40).collect();
    Invalid::new(format!("`{shown}` is not a valid host key: {why}")).hint(
        "give the server's public key as `<type> <base64>`, such as a line of \
         `ssh-keyscan -t ed25519 <host>` without the host name",
    )
}

/// The blob starts with the length-prefixed key type; it must match the declared one.
fn check_blob(key_type: &str, blob: &str) -> Result<(), String> {
    // Standard base64 with padding, as in `known_hosts`.
    let bytes = STANDARD
        .decode(blob)
        .map_err(|_| "the key is not valid base64")?;
    let length = bytes
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let embedded = length.and_then(|n| bytes.get(4..4 + n));
    match embedded {
        Some(name) if name == key_type.as_bytes() => Ok(()),
        _ => Err(format!("the base64 key is not a `{key_type}` key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// github.com's published ed25519 host key.
    const GITHUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn parses_upstreams() {
        let url = parse_upstream("ssh://git@GitHub.com:2222/org/app.git").unwrap();
        assert_eq!(url.user, "git");
        assert_eq!(url.host, "github.com");
        assert_eq!(url.port, Some(2222));
        assert_eq!(url.path, "/org/app.git");
        assert_eq!(url.to_string(), "ssh://git@github.com:2222/org/app.git");
        assert!(parse_upstream("ssh://github.com/org/app").is_err());
        assert!(parse_upstream("ssh://git@github.com:0/x").is_err());
        assert!(parse_upstream("ssh://git@github.com/").is_err());
    }

    #[test]
    fn scp_style_gets_the_ssh_equivalent() {
        let err = parse_upstream("git@github.com:org/app.git").unwrap_err();
        assert!(
            err.hint
                .unwrap()
                .contains("`ssh://git@github.com/org/app.git`")
        );
    }

    #[test]
    fn host_keys() {
        assert!(known_host_key(GITHUB).is_ok());
        assert!(known_host_key(&format!("{GITHUB} comment")).is_ok());
        assert!(known_host_key("ssh-ed25519").is_err());
        assert!(known_host_key("ssh-ed25519 AAAA!!!!").is_err());
        // Unpadded base64 is not what known_hosts holds.
        assert!(
            known_host_key(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJ"
            )
            .is_err()
        );
        let wrong_type = GITHUB.replace("ssh-ed25519", "ssh-rsa");
        assert!(known_host_key(&wrong_type).is_err());
        let with_host = known_host_key(&format!("github.com {GITHUB}")).unwrap_err();
        assert!(with_host.message.contains("host name"));
    }
}
