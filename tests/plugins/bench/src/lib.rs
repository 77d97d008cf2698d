//! A plugin shaped like a real third-party one (typed section, a sidecar with health check, env,
//! a file rendered from the facts in `finalize`). The benchmark makes N distinct components from
//! it by rewriting the fixed-width number in [`NAME`] and [`SECTION`] inside the component's bytes.

use bottle_plugin_sdk as sdk;
use sdk::{
    Contribution, Diagnostic, Facts, Finalization, Guest, Image, PlacedFile, PlanContext,
    PluginInfo, Target,
};
use serde::Deserialize;

/// The plugin's name; the benchmark rewrites `00`.
pub const NAME: &str = "bench-plugin-00";
/// Its section; the benchmark rewrites `00`.
pub const SECTION: &str = "bench_plugin_00";

/// The plugin's section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The service's port.
    pub port: u16,
    /// Literal variables.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

/// The plugin.
pub struct Bench;

impl Guest for Bench {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: "1.0.0".into(),
            summary: "benchmark plugin".into(),
            sections: vec![SECTION.into()],
            roles: Vec::new(),
            properties: Vec::new(),
        }
    }

    fn plan(
        config: String,
        _context: PlanContext,
    ) -> Result<Option<Contribution>, Vec<Diagnostic>> {
        let Some(config) = sdk::parse_section::<Config>(&config, SECTION)? else {
            return Ok(None);
        };
        let mut sidecar = sdk::sidecar(NAME, Image::Reference("bench/service:1".into()));
        sidecar.aliases = vec![NAME.into()];
        sidecar.port = Some(config.port);
        sidecar.health = Some(sdk::tcp_health(config.port));
        sidecar.env = config
            .env
            .iter()
            .map(|(k, v)| sdk::literal(k, v.clone()))
            .collect();
        let mut agent = sdk::no_agent_changes();
        agent.no_proxy.push(NAME.into());
        Ok(Some(Contribution {
            sidecars: vec![sidecar],
            agent,
            egress: Vec::new(),
            properties: Vec::new(),
        }))
    }

    fn finalize(
        _config: String,
        _context: PlanContext,
        facts: Facts,
    ) -> Result<Finalization, Vec<Diagnostic>> {
        let mut done = sdk::nothing_to_finalize();
        let peers: Vec<String> = facts.sidecars.iter().map(|s| s.name.clone()).collect();
        let text = format!(
            "cidr: {}\npeers: {}\n",
            facts.internal_cidr,
            peers.join(",")
        );
        done.files.push(PlacedFile {
            target: Target::Sidecar(NAME.into()),
            file: sdk::file("/etc/bench.conf", text, 0o644),
        });
        Ok(done)
    }
}

sdk::plugin!(Bench);
