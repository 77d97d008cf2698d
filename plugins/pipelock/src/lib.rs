//! The `pipelock` plugin: when a bottle says `egress.firewall: pipelock`, run
//! [pipelock](https://github.com/luckyPipewrench/pipelock) v2.3.0 as the bottle's egress firewall.
//!
//! pipelock sits on both networks. It is the `egress-firewall` (priority 100) and a fallback
//! `agent-proxy` (priority 10): with credential routes the egress-proxy plugin wins `agent-proxy` and
//! chains to pipelock; without routes the agent talks to pipelock directly.
//!
//! `plan` describes the sidecar; `finalize` renders `/etc/pipelock.yaml` from the plan's facts: a
//! strict allowlist of every host the bottle needs plus every sidecar alias, TLS interception with the
//! host-minted `firewall` CA, request body and header DLP, and JSON logs on stdout.

mod hosts;
mod render;

use bottle_plugin_sdk as sdk;
use sdk::{
    CaInstall, Contribution, Diagnostic, Facts, Finalization, Image, Network, PlacedFile,
    PlanContext, PluginInfo, RoleOffer, SidecarPlugin, Target,
};
use serde::Deserialize;

pub use hosts::{normalize_host, validate_cidr};
pub use render::render;

/// The plugin's name, the sidecar's name and its DNS alias.
pub const NAME: &str = "pipelock";
/// The image used when the manifest does not override it.
pub const DEFAULT_IMAGE: &str = "ghcr.io/luckypipewrench/pipelock:2.3.0";
/// The port pipelock's proxy listens on (fetch proxy and forward proxy share it).
pub const PORT: u16 = 8888;
/// Where the rendered configuration is written in the sidecar.
pub const CONFIG_PATH: &str = "/etc/pipelock.yaml";
/// Where the host installs the `firewall` CA certificate in the sidecar.
pub const CA_CERT_PATH: &str = "/etc/pipelock/ca.pem";
/// Where the host installs the `firewall` CA private key (ECDSA P-256) in the sidecar.
pub const CA_KEY_PATH: &str = "/etc/pipelock/ca-key.pem";
/// Priority of the `egress-firewall` role: pipelock is the firewall whenever it is loaded.
pub const FIREWALL_PRIORITY: i32 = 100;
/// Priority of the `agent-proxy` role: below the egress proxy (100), which chains to pipelock.
pub const AGENT_PROXY_PRIORITY: i32 = 10;

/// The manifest sections this plugin reads.
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    /// The `egress` section; missing means the built-in firewall.
    #[serde(default)]
    pub egress: Egress,
}

/// The `egress` section (typed once, in the SDK). Other keys belong to other plugins.
pub use sdk::sections::{EgressSection as Egress, Firewall};

/// The plugin.
pub struct Pipelock;

impl SidecarPlugin for Pipelock {
    type Config = Config;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "pipelock egress firewall: strict allowlist, TLS interception, DLP".into(),
            sections: vec!["egress".into()],
            roles: roles(),
            properties: Vec::new(),
        }
    }

    fn plan(
        config: Config,
        _context: PlanContext,
    ) -> Result<Option<Contribution>, Vec<Diagnostic>> {
        if config.egress.firewall != Firewall::Pipelock {
            return Ok(None);
        }
        let image = image(&config.egress)?;
        Ok(Some(contribution(image)))
    }

    fn finalize(
        config: Config,
        _context: PlanContext,
        facts: Facts,
    ) -> Result<Finalization, Vec<Diagnostic>> {
        let yaml = render(&config.egress.allowlist, &facts)?;
        let mut finalization = sdk::nothing_to_finalize();
        finalization.files.push(PlacedFile {
            target: Target::Sidecar(NAME.into()),
            file: sdk::file(CONFIG_PATH, yaml, 0o644),
        });
        Ok(finalization)
    }
}

/// The roles pipelock's sidecar offers.
pub fn roles() -> Vec<RoleOffer> {
    vec![
        RoleOffer {
            role: sdk::roles::EGRESS_FIREWALL.into(),
            priority: FIREWALL_PRIORITY,
        },
        RoleOffer {
            role: sdk::roles::AGENT_PROXY.into(),
            priority: AGENT_PROXY_PRIORITY,
        },
    ]
}

/// The image to run: the manifest's override, or [`DEFAULT_IMAGE`].
fn image(egress: &Egress) -> Result<String, Vec<Diagnostic>> {
    match egress.pipelock_image.as_deref().map(str::trim) {
        None => Ok(DEFAULT_IMAGE.into()),
        Some(image) if !image.is_empty() && !image.contains(char::is_whitespace) => {
            Ok(image.into())
        }
        Some(_) => Err(vec![sdk::error(
            "egress.pipelock_image",
            "the pipelock image must be a non-empty image reference without spaces",
            Some(
                "remove the key to use the default image, or give a reference like `repo/name:tag`",
            ),
        )]),
    }
}

/// The command given to the image.
///
/// pipelock's release images (built by GoReleaser from `Dockerfile.goreleaser`) have
/// `ENTRYPOINT ["/sbin/tini-static", "--", "/pipelock"]` and `CMD ["run", "--listen", "0.0.0.0:8888"]`,
/// so the command replaces only the arguments of the binary. We keep the image's `run --listen` and add
/// `--config` (documented as `pipelock run --config pipelock.yaml`, which also hot-reloads the file).
/// `--listen` overrides `fetch_proxy.listen`; the rendered config names the same address.
pub fn command() -> Vec<String> {
    vec![
        "run".into(),
        "--config".into(),
        CONFIG_PATH.into(),
        "--listen".into(),
        render::listen_address(),
    ]
}

/// The pipelock sidecar.
pub fn contribution(image: String) -> Contribution {
    let mut sidecar = sdk::sidecar(NAME, Image::Reference(image));
    sidecar.command = command();
    sidecar.networks = vec![Network::Internal, Network::Egress];
    sidecar.aliases = vec![NAME.into()];
    sidecar.port = Some(PORT);
    sidecar.health = Some(sdk::tcp_health(PORT));
    sidecar.roles = roles();
    sidecar.cas = vec![CaInstall {
        ca: sdk::cas::FIREWALL.into(),
        cert_path: CA_CERT_PATH.into(),
        key_path: Some(CA_KEY_PATH.into()),
    }];
    Contribution {
        sidecars: vec![sidecar],
        agent: sdk::no_agent_changes(),
        egress: Vec::new(),
        properties: Vec::new(),
    }
}

sdk::plugin!(Pipelock);

#[cfg(test)]
mod tests;
