//! The `git` section: upstream repositories the agent reaches through the git gate.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, WHERE};
use crate::ssh::{self, SshUrl};
use crate::strict::{self, Section};
use crate::{names, paths};

/// One upstream repository. Keys serialize as in the manifest (PascalCase for the SSH settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitRepo {
    /// The repository's name in the bottle, `[A-Za-z0-9._-]+`; unique within the bottle.
    #[serde(rename = "Name")]
    pub name: String,
    /// Where it lives.
    #[serde(rename = "Upstream")]
    pub upstream: SshUrl,
    /// The private key for the upstream, with `~/` expanded and relative paths resolved against
    /// the manifest's directory. It exists on disk.
    #[serde(rename = "IdentityFile")]
    pub identity_file: PathBuf,
    /// The upstream server's public host key, `<type> <base64>`.
    #[serde(rename = "KnownHostKey")]
    pub known_host_key: String,
    /// Host names resolved to fixed addresses for this upstream.
    #[serde(rename = "ExtraHosts")]
    pub extra_hosts: BTreeMap<String, IpAddr>,
    /// Branch globs the agent may not push to.
    pub protected: Vec<String>,
    /// Whether non-fast-forward pushes are allowed.
    pub allow_force_push: bool,
    /// Ref globs the agent may push; empty means any ref that is not protected.
    pub allowed_refs: Vec<String>,
    /// Whether the agent may delete remote refs.
    pub allow_delete: bool,
    /// Whether the agent may push commits that change CI definitions (`.github/workflows/`, …).
    pub allow_ci_changes: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitFields {
    #[serde(rename = "Name", deserialize_with = "de_name")]
    name: String,
    #[serde(rename = "Upstream")]
    upstream: SshUrl,
    #[serde(rename = "IdentityFile", deserialize_with = "de_identity_file")]
    identity_file: String,
    #[serde(rename = "KnownHostKey", deserialize_with = "de_host_key")]
    known_host_key: String,
    #[serde(rename = "ExtraHosts", default, deserialize_with = "de_extra_hosts")]
    extra_hosts: BTreeMap<String, IpAddr>,
    #[serde(default, deserialize_with = "de_globs")]
    protected: Vec<String>,
    #[serde(default, deserialize_with = "strict::nullable")]
    allow_force_push: bool,
    #[serde(default, deserialize_with = "de_globs")]
    allowed_refs: Vec<String>,
    #[serde(default, deserialize_with = "strict::nullable")]
    allow_delete: bool,
    #[serde(default, deserialize_with = "strict::nullable")]
    allow_ci_changes: bool,
}

impl Section for GitRepo {
    const WHAT: &'static str =
        "a git entry (a mapping with Name, Upstream, IdentityFile and KnownHostKey)";
    const KEYS: &'static [&'static str] = &[
        "Name",
        "Upstream",
        "IdentityFile",
        "KnownHostKey",
        "ExtraHosts",
        "protected",
        "allow_force_push",
        "allowed_refs",
        "allow_delete",
        "allow_ci_changes",
    ];
    type Fields = GitFields;

    fn check(f: GitFields) -> Result<Self, Invalid> {
        Ok(GitRepo {
            name: f.name,
            upstream: f.upstream,
            identity_file: PathBuf::from(f.identity_file),
            known_host_key: f.known_host_key,
            extra_hosts: f.extra_hosts,
            protected: f.protected,
            allow_force_push: f.allow_force_push,
            allowed_refs: f.allowed_refs,
            allow_delete: f.allow_delete,
            allow_ci_changes: f.allow_ci_changes,
        })
    }
}

/// Reads a git entry from its manifest form; `IdentityFile` is kept as written (see
/// [`crate::Catalog`] for the checked form).
impl<'de> Deserialize<'de> for GitRepo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::section(deserializer)
    }
}

fn de_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    strict::text(d, "a repository name", |text| {
        names::item_name(text, "repository name")
    })
}

fn de_identity_file<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    strict::text(d, "a path to a private key", |text| {
        names::one_line(text, "IdentityFile")
    })
}

fn de_host_key<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    strict::text(d, "an SSH public host key", ssh::known_host_key)
}

fn de_globs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    strict::text_list(d, "ref glob", names::ref_glob)
}

fn de_extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, IpAddr>, D::Error> {
    d.deserialize_map(ExtraHostsVisitor)
}

struct ExtraHostsVisitor;

impl<'de> Visitor<'de> for ExtraHostsVisitor {
    type Value = BTreeMap<String, IpAddr>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of host names to IP addresses")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut hosts = BTreeMap::new();
        while let Some(host) = map.next_key_seed(HostSeed)? {
            let ip = map.next_value_seed(IpSeed)?;
            if let Some(first) = hosts.insert(host.clone(), ip) {
                return Err(Invalid::new(format!(
                    "`{host}` is listed twice in {WHERE}, mapped to {first} and to {ip}"
                ))
                .hint("keep one entry per host")
                .find(&host, Some(&ip.to_string()), 0)
                .into_de());
            }
        }
        Ok(hosts)
    }
}

struct HostSeed;

impl<'de> DeserializeSeed<'de> for HostSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        strict::text(d, "a host name", names::host)
    }
}

struct IpSeed;

impl<'de> DeserializeSeed<'de> for IpSeed {
    type Value = IpAddr;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<IpAddr, D::Error> {
        strict::text(d, "an IP address", parse_ip)
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, Invalid> {
    text.trim().parse().map_err(|_| {
        Invalid::new(format!("`{text}` is not an IP address"))
            .hint("map each host to an IPv4 or IPv6 address, such as `git.internal: 10.0.0.5`")
    })
}

/// Rules across entries: unique names, and one address per extra host.
pub(crate) fn check_repos(repos: &[GitRepo]) -> Result<(), Invalid> {
    check_unique_names(repos)?;
    check_extra_hosts(repos)
}

fn check_unique_names(repos: &[GitRepo]) -> Result<(), Invalid> {
    for (index, repo) in repos.iter().enumerate() {
        if let Some(first) = repos[..index].iter().position(|r| r.name == repo.name) {
            return Err(Invalid::new(format!(
                "repository name `{}` is used by git[{first}] and git[{index}]",
                repo.name
            ))
            .at(format!("git[{index}].Name"))
            .hint("give each repository its own `Name`: it names the repository in the bottle")
            .find("Name", Some(&repo.name), 1));
        }
    }
    Ok(())
}

fn check_extra_hosts(repos: &[GitRepo]) -> Result<(), Invalid> {
    let mut seen: BTreeMap<&str, (IpAddr, usize)> = BTreeMap::new();
    for (index, repo) in repos.iter().enumerate() {
        for (host, ip) in &repo.extra_hosts {
            match seen.get(host.as_str()) {
                Some((first_ip, first)) if first_ip != ip => {
                    return Err(Invalid::new(format!(
                        "ExtraHosts maps `{host}` to {first_ip} in git[{first}] and to {ip} in \
                         git[{index}]"
                    ))
                    .at(format!("git[{index}].ExtraHosts"))
                    .hint("a host has one address in the bottle: use the same IP in every entry")
                    .find(host, Some(&ip.to_string()), 0));
                }
                Some(_) => {}
                None => {
                    seen.insert(host, (*ip, index));
                }
            }
        }
    }
    Ok(())
}

/// Expands each `IdentityFile` and checks the key exists.
pub(crate) fn resolve_identity_files(
    repos: &mut [GitRepo],
    user_home: Option<&Path>,
    base: Option<&Path>,
) -> Result<(), Invalid> {
    let written: Vec<String> = repos
        .iter()
        .map(|r| r.identity_file.to_string_lossy().into_owned())
        .collect();
    for (index, repo) in repos.iter_mut().enumerate() {
        let raw = &written[index];
        // Several entries may share a key; point at this entry's occurrence.
        let earlier = written[..index].iter().filter(|w| *w == raw).count();
        let locate = |invalid: Invalid| {
            invalid.at(format!("git[{index}].IdentityFile")).find(
                "IdentityFile",
                Some(raw),
                earlier,
            )
        };
        let path = paths::resolve(raw, user_home, base).map_err(locate)?;
        if !path.is_file() {
            return Err(locate(missing_key(raw, &path)));
        }
        repo.identity_file = path;
    }
    Ok(())
}

fn missing_key(raw: &str, path: &Path) -> Invalid {
    let state = if path.exists() {
        "is not a file"
    } else {
        "does not exist"
    };
    Invalid::new(format!("IdentityFile `{raw}` {state} ({})", path.display())).hint(format!(
        "point IdentityFile at the private key for this upstream, or create one with \
         `ssh-keygen -t ed25519 -f {}` and register its .pub as a deploy key",
        path.display()
    ))
}
