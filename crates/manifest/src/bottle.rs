//! Bottle manifests: `bottles/<name>.md` in the bottle home.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::document::{Doc, Kind, Origin, Source};
use crate::egress::{Egress, EgressProxy};
use crate::env::{self, EnvValue};
use crate::error::ManifestError;
use crate::frontmatter::trim_blank_lines;
use crate::git::{self, GitRepo};
use crate::invalid::Invalid;
use crate::limits::Limits;
use crate::sections::JsonSeed;
use crate::strict::{self, KeySeed, Keys};
use crate::{migrate, names, paths};

/// The keys of a bottle manifest that bottle itself defines.
pub(crate) const KEYS: &[&str] = &[
    "env",
    "git",
    "egress_proxy",
    "egress",
    "supervise",
    "image",
    "dockerfile",
    "runtime",
    "limits",
    "grants",
];

/// claude-bottle's key, refused with a migration recipe.
const LEGACY_CRED_PROXY: &str = "cred_proxy";

/// A parsed, checked bottle. Serializes with the manifest's key names, defaults applied, for
/// plugins (which must never be given `env` values: see [`Bottle::secret_names`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bottle {
    /// The bottle's name (its file stem).
    pub name: String,
    /// Its manifest, unless embedded.
    pub path: Option<PathBuf>,
    /// Where it was found.
    pub source: Source,
    /// Variables set in the agent's container.
    pub env: BTreeMap<String, EnvValue>,
    /// Upstream repositories reached through the git gate.
    pub git: Vec<GitRepo>,
    /// Credential-injecting routes of the egress proxy.
    pub egress_proxy: EgressProxy,
    /// The firewall and the extra hosts the bottle may reach.
    pub egress: Egress,
    /// Whether the supervise sidecar runs.
    pub supervise: bool,
    /// The agent image to use instead of the default one.
    pub image: Option<String>,
    /// A Dockerfile to build the agent image from, resolved to an absolute path when the
    /// manifest is a file.
    pub dockerfile: Option<PathBuf>,
    /// The container runtime.
    pub runtime: Runtime,
    /// The agent container's resource limits (defaults when the section is absent).
    pub limits: Limits,
    /// What each plugin is granted beyond the defaults, by plugin name.
    pub grants: BTreeMap<String, Vec<crate::grants::Grant>>,
    /// Sections of external plugins, by top-level key, as JSON.
    pub sections: BTreeMap<String, serde_json::Value>,
    /// The Markdown body: free notes for people.
    pub notes: String,
}

/// The OCI runtime the bottle's containers run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// gVisor when the host has it, runc otherwise.
    #[default]
    Auto,
    /// Docker's default runtime.
    Runc,
    /// gVisor.
    Runsc,
}

impl Bottle {
    /// Parses a bottle manifest. Top-level keys named in `external_sections` are kept for their
    /// plugins; `user_home` expands `~/` in paths.
    pub fn parse(
        text: &str,
        origin: &Origin,
        external_sections: &BTreeSet<String>,
        user_home: Option<&Path>,
    ) -> Result<Bottle, ManifestError> {
        let doc = Doc::split(text, origin, Kind::Bottle)?;
        doc.check_syntax()?;
        let seed = TopSeed {
            external: external_sections,
            user_home,
            dir: origin.dir(),
        };
        let raw = doc.read(|tracked| seed.deserialize(tracked))?;
        Ok(raw.into_bottle(origin, trim_blank_lines(doc.body)))
    }

    /// Names of the values that must stay secret: variables that are prompted for or taken from
    /// the host, and every route's `token_ref`.
    pub fn secret_names(&self) -> BTreeSet<String> {
        let env = self
            .env
            .iter()
            .filter(|(_, value)| value.is_secret())
            .map(|(name, _)| name.clone());
        let tokens = self
            .egress_proxy
            .routes
            .iter()
            .filter_map(|route| route.auth.as_ref())
            .map(|auth| auth.token_ref.clone());
        env.chain(tokens).collect()
    }
}

/// The frontmatter, before it gets a name and notes.
#[derive(Default)]
struct RawBottle {
    env: BTreeMap<String, EnvValue>,
    git: Vec<GitRepo>,
    egress_proxy: EgressProxy,
    egress: Egress,
    supervise: bool,
    image: Option<String>,
    dockerfile: Option<PathBuf>,
    runtime: Runtime,
    limits: Limits,
    grants: BTreeMap<String, Vec<crate::grants::Grant>>,
    sections: BTreeMap<String, serde_json::Value>,
}

impl RawBottle {
    fn into_bottle(self, origin: &Origin, notes: String) -> Bottle {
        Bottle {
            name: origin.name.clone(),
            path: origin.path.clone(),
            source: origin.source,
            env: self.env,
            git: self.git,
            egress_proxy: self.egress_proxy,
            egress: self.egress,
            supervise: self.supervise,
            image: self.image,
            dockerfile: self.dockerfile,
            runtime: self.runtime,
            limits: self.limits,
            grants: self.grants,
            sections: self.sections,
            notes,
        }
    }
}

/// Reads the top-level mapping; it needs the plugin sections and the paths to resolve against.
struct TopSeed<'a> {
    external: &'a BTreeSet<String>,
    user_home: Option<&'a Path>,
    dir: Option<&'a Path>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = RawBottle;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawBottle, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = RawBottle;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of bottle settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawBottle, A::Error> {
        let shown: Vec<&str> = KEYS
            .iter()
            .copied()
            .chain(self.external.iter().map(String::as_str))
            .collect();
        let accepted: Vec<&str> = shown.iter().copied().chain([LEGACY_CRED_PROXY]).collect();
        let keys = Keys {
            accepted: &accepted,
            shown: &shown,
            extra_hint: Some(
                "other top-level keys belong to plugins and need the plugin installed",
            ),
        };
        let mut raw = RawBottle::default();
        let mut seen = BTreeSet::new();
        while let Some(index) = map.next_key_seed(KeySeed {
            keys,
            seen: &mut seen,
        })? {
            read_value(&mut map, accepted[index], &mut raw)?;
        }
        self.finish(raw).map_err(Invalid::into_de)
    }
}

/// Reads the value of `key` into `raw`.
fn read_value<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: &str,
    raw: &mut RawBottle,
) -> Result<(), A::Error> {
    match key {
        "env" => raw.env = map.next_value::<Option<EnvMap>>()?.unwrap_or_default().0,
        "git" => raw.git = map.next_value::<Option<_>>()?.unwrap_or_default(),
        "egress_proxy" => raw.egress_proxy = map.next_value::<Option<_>>()?.unwrap_or_default(),
        "egress" => raw.egress = map.next_value::<Option<_>>()?.unwrap_or_default(),
        "supervise" => raw.supervise = map.next_value::<Option<_>>()?.unwrap_or_default(),
        "runtime" => raw.runtime = map.next_value::<Option<_>>()?.unwrap_or_default(),
        "limits" => raw.limits = map.next_value::<Option<_>>()?.unwrap_or_default(),
        "grants" => {
            let lines = map.next_value::<Option<_>>()?.unwrap_or_default();
            raw.grants = crate::grants::parse(lines).map_err(Invalid::into_de)?;
        }
        "image" => raw.image = map.next_value::<Option<Image>>()?.map(|i| i.0),
        "dockerfile" => raw.dockerfile = map.next_value::<Option<RawPath>>()?.map(|p| p.0),
        LEGACY_CRED_PROXY => {
            let value: yaml_serde::Value = map.next_value()?;
            return Err(migrate::cred_proxy_error(&value).into_de());
        }
        section => {
            let value = map.next_value_seed(JsonSeed)?;
            raw.sections.insert(section.to_string(), value);
        }
    }
    Ok(())
}

impl TopSeed<'_> {
    /// Rules spanning sections, and paths that need the file system.
    fn finish(&self, mut raw: RawBottle) -> Result<RawBottle, Invalid> {
        git::check_repos(&raw.git)?;
        legacy_dlp_action(&mut raw)?;
        if raw.image.is_some() && raw.dockerfile.is_some() {
            return Err(Invalid::new("`image` and `dockerfile` are both set")
                .hint("keep `image` to use a ready-made image, or `dockerfile` to build one")
                .find_top("dockerfile", 0));
        }
        git::resolve_identity_files(&mut raw.git, self.user_home, self.dir)?;
        for (index, ca) in raw.egress_proxy.upstream_ca.iter_mut().enumerate() {
            let written = ca.to_string_lossy().into_owned();
            let at = |invalid: Invalid| {
                invalid
                    .at(format!("egress_proxy.upstream_ca[{index}]"))
                    .find_top("upstream_ca", 0)
            };
            let resolved = paths::resolve(&written, self.user_home, self.dir).map_err(at)?;
            if !resolved.is_file() {
                return Err(at(Invalid::new(format!(
                    "upstream_ca `{written}` is not a file ({})",
                    resolved.display()
                ))
                .hint("point it at a PEM certificate on this host")));
            }
            *ca = resolved;
        }
        if let Some(dockerfile) = &raw.dockerfile {
            let written = dockerfile.to_string_lossy();
            let resolved = paths::resolve(&written, self.user_home, self.dir)
                .map_err(|invalid| invalid.at("dockerfile").find_top("dockerfile", 0))?;
            raw.dockerfile = Some(resolved);
        }
        Ok(raw)
    }
}

/// claude-bottle's `egress.dlp_action` is the egress proxy's `dlp_patterns`: take it over, unless
/// the bottle says the opposite in the new place (then neither reading is safe to guess).
fn legacy_dlp_action(raw: &mut RawBottle) -> Result<(), Invalid> {
    let Some(legacy) = raw.egress.dlp_action.take() else {
        return Ok(());
    };
    let current = raw.egress_proxy.dlp_patterns;
    if raw.egress_proxy.dlp_patterns_written && current != legacy {
        return Err(Invalid::new(format!(
            "`egress.dlp_action` ({}) contradicts `egress_proxy.dlp_patterns` ({})",
            action_word(legacy),
            action_word(current)
        ))
        .hint("remove `egress.dlp_action` (claude-bottle's key; `bottle migrate` rewrites it)")
        .find("dlp_action", None, 0));
    }
    raw.egress_proxy.dlp_patterns = legacy;
    Ok(())
}

fn action_word(action: crate::egress::DlpAction) -> &'static str {
    match action {
        crate::egress::DlpAction::Block => "block",
        crate::egress::DlpAction::Warn => "warn",
    }
}

/// The `env` mapping, read by [`env::deserialize`].
#[derive(Default)]
struct EnvMap(BTreeMap<String, EnvValue>);

impl<'de> Deserialize<'de> for EnvMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        env::deserialize(deserializer).map(EnvMap)
    }
}

struct Image(String);

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::text(deserializer, "an image reference", |text| {
            names::one_line(text, "image").map(Image)
        })
    }
}

/// A path as written; resolved in [`TopSeed::finish`].
struct RawPath(PathBuf);

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::text(deserializer, "a path", |text| {
            names::one_line(text, "path").map(|p| RawPath(PathBuf::from(p)))
        })
    }
}
