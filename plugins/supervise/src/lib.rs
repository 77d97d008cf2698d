//! The `supervise` plugin: when a bottle says `supervise: true`, add the supervise sidecar (an MCP
//! server the agent calls when it hits a wall) and register it with the agent.
//!
//! The sidecar lives on the internal network only; the agent reaches it directly (it is in the
//! agent's `NO_PROXY`), and the operator's decisions arrive through the queue directory the host
//! mounts from the bottle's state.

use bottle_plugin_sdk as sdk;
use sdk::{
    Contribution, Diagnostic, Image, Mount, MountSource, PlanContext, PluginInfo, ProvisionStep,
    SidecarPlugin,
};
use serde::Deserialize;

/// The sidecar's name and DNS alias.
pub const ALIAS: &str = "supervise";
/// The port the MCP server listens on.
pub const PORT: u16 = 7411;
/// Where the queue directory is mounted in the sidecar.
pub const QUEUE_DIR: &str = "/var/lib/bottle/queue";

/// The manifest sections this plugin reads.
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    /// `supervise: true` enables the sidecar.
    #[serde(default)]
    pub supervise: bool,
}

/// The plugin.
pub struct Supervise;

impl SidecarPlugin for Supervise {
    type Config = Config;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: "supervise".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "MCP sidecar where the agent asks the operator for changes".into(),
            sections: vec!["supervise".into()],
            roles: Vec::new(),
            properties: Vec::new(),
        }
    }

    fn plan(
        config: Config,
        _context: PlanContext,
    ) -> Result<Option<Contribution>, Vec<Diagnostic>> {
        Ok(config.supervise.then(contribution))
    }
}

/// The supervise sidecar and the agent-side registration.
pub fn contribution() -> Contribution {
    let url = format!("http://{ALIAS}:{PORT}/mcp");
    let mut sidecar = sdk::sidecar(ALIAS, Image::Context("supervise".into()));
    sidecar.command = vec![
        "bottle-supervise".into(),
        "--listen".into(),
        format!("0.0.0.0:{PORT}"),
        "--queue".into(),
        QUEUE_DIR.into(),
    ];
    sidecar.aliases = vec![ALIAS.into()];
    sidecar.port = Some(PORT);
    sidecar.health = Some(sdk::tcp_health(PORT));
    sidecar.mounts = vec![Mount {
        source: MountSource::State("supervise-queue".into()),
        target: QUEUE_DIR.into(),
        read_only: false,
    }];
    let mut agent = sdk::no_agent_changes();
    agent.no_proxy.push(ALIAS.into());
    // Claude Code registers the server itself; an agent image without it (another CLI agent, or
    // a test image) finds the URL in BOTTLE_SUPERVISE_URL instead of failing the launch.
    agent
        .env
        .push(sdk::literal("BOTTLE_SUPERVISE_URL", url.clone()));
    agent.provision.push(ProvisionStep {
        name: "register the supervise MCP server".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            format!(
                "if command -v claude >/dev/null 2>&1; then \
                 claude mcp add --scope user --transport http supervise {url}; \
                 else echo 'no claude in this image: supervise is at $BOTTLE_SUPERVISE_URL'; fi"
            ),
        ],
    });
    Contribution {
        sidecars: vec![sidecar],
        agent,
        egress: Vec::new(),
        properties: Vec::new(),
    }
}

sdk::plugin!(Supervise);

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::Guest;

    #[test]
    fn off_unless_asked() {
        let plan = <Supervise as Guest>::plan(r#"{"supervise": false}"#.into(), context()).unwrap();
        assert!(plan.is_none());
        let plan = <Supervise as Guest>::plan("{}".into(), context()).unwrap();
        assert!(plan.is_none());
        let refused = <Supervise as Guest>::plan(r#"{"supervise": 1}"#.into(), context());
        assert!(refused.is_err(), "{refused:?}");
    }

    #[test]
    fn finalize_adds_nothing() {
        let facts = sdk::Facts {
            internal_cidr: String::new(),
            sidecars: Vec::new(),
            egress: Vec::new(),
            agent_proxy: None,
            upstream_proxy: None,
            cas: Vec::new(),
            properties: Vec::new(),
        };
        let out = <Supervise as Guest>::finalize("{}".into(), context(), facts).unwrap();
        assert!(out.files.is_empty() && out.env.is_empty());
    }

    #[test]
    fn sidecar_is_internal_only_and_reachable_directly() {
        let plan = <Supervise as Guest>::plan(r#"{"supervise": true}"#.into(), context())
            .unwrap()
            .unwrap();
        let sidecar = &plan.sidecars[0];
        assert_eq!(sidecar.name, "supervise");
        assert!(matches!(sidecar.networks[..], [sdk::Network::Internal]));
        assert_eq!(sidecar.aliases, ["supervise"]);
        assert_eq!(plan.agent.no_proxy, ["supervise"]);
        assert_eq!(sidecar.mounts[0].target, QUEUE_DIR);
        let step = &plan.agent.provision[0].command;
        assert!(
            step.last().unwrap().contains(
                "claude mcp add --scope user --transport http supervise http://supervise:7411/mcp"
            ),
            "{step:?}"
        );
    }

    fn context() -> PlanContext {
        PlanContext {
            bottle: "b".into(),
            agent: "a".into(),
            secrets: Vec::new(),
            plugins: Vec::new(),
            properties: Vec::new(),
        }
    }
}
