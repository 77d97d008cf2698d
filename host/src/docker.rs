//! The Docker engine, through `bollard` only: the small set of operations the launcher needs, each
//! with an error that says which object and what to do.
//!
//! Everything bottle creates carries [`labels`], so `bottle list` and `bottle cleanup` find it
//! without any local state.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerSummary, EndpointSettings, Ipam, NetworkConnectRequest,
    NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectNetworkOptions, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

/// The bridge driver's option that leaves a network's bridge without an IPv4 address on the host.
pub const INHIBIT_IPV4_OPTION: &str = "com.docker.network.bridge.inhibit_ipv4";

/// How much of one container's log teardown keeps.
pub const KEPT_LOG_BYTES: usize = 64 << 20;

/// The repository of images that bake a `--cwd` working tree in: removed with their bottle.
pub const WORKSPACE_IMAGE_PREFIX: &str = "bottle/workspace:";

/// Label keys on every object bottle creates.
pub mod labels {
    /// Marks an object as bottle's.
    pub const MANAGED: &str = "dev.bottle.managed";
    /// The bottle identity (`<agent>-<suffix>`).
    pub const IDENTITY: &str = "dev.bottle.identity";
    /// `agent`, `sidecar` or `network`.
    pub const ROLE: &str = "dev.bottle.role";
    /// The sidecar's name.
    pub const SIDECAR: &str = "dev.bottle.sidecar";
    /// The agent's name.
    pub const AGENT: &str = "dev.bottle.agent";
    /// The bottle manifest's name.
    pub const BOTTLE: &str = "dev.bottle.bottle";
    /// `<user>@<host>:<pid>` of the launching process.
    pub const OWNER: &str = "dev.bottle.owner";
    /// `true` when the bottle outlives its launching process (`--detach`).
    pub const DETACHED: &str = "dev.bottle.detached";
    /// Start order index (sidecars), for teardown in reverse.
    pub const ORDER: &str = "dev.bottle.order";
    /// Set from `BOTTLE_TEST_LABEL` so tests find and remove exactly what they made.
    pub const TEST: &str = "dev.bottle.test";
}

/// A Docker failure, naming what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct DockerError {
    /// What bottle was doing.
    pub action: String,
    /// What the engine said.
    #[source]
    pub source: bollard::errors::Error,
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, DockerError>;

fn fail(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let action = action.into();
    move |source| DockerError { action, source }
}

/// Whether an error is the engine's 404.
pub fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e.source,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// How often a network that lists no container but still has endpoints is removed again.
const NETWORK_REMOVAL_RETRIES: u32 = 20;

/// Whether the engine refused to remove a network because endpoints remain on it.
fn has_active_endpoints(e: &DockerError) -> bool {
    matches!(
        &e.source,
        bollard::errors::Error::DockerResponseServerError { message, .. }
            if message.contains("active endpoints")
    )
}

/// Whether an error is the engine's 409 (name in use).
pub fn is_conflict(e: &DockerError) -> bool {
    matches!(
        e.source,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

/// A connected engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// What a finished exec returned.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit code (-1 when the engine did not report one).
    pub code: i64,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// One runtime the engine lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEntry {
    /// Its name (`runc`, `runsc`).
    pub name: String,
    /// The executable, as registered (a bare name is looked up on dockerd's `PATH`).
    pub path: String,
    /// The arguments dockerd passes it (`runtimeArgs`).
    pub args: Vec<String>,
}

/// A file to copy into a container.
#[derive(Debug, Clone)]
pub struct FileUpload {
    /// Absolute path in the container.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid and gid.
    pub owner: (u64, u64),
    /// Contents.
    pub contents: Vec<u8>,
}

impl Engine {
    /// Connect to the local engine (`DOCKER_HOST` or the default socket) and agree on an API
    /// version.
    pub async fn connect() -> Result<Engine> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(fail("connecting to the Docker engine"))?;
        let docker = docker.negotiate_version().await.map_err(fail(
            "reaching the Docker engine (is dockerd running? is DOCKER_HOST right?)",
        ))?;
        Ok(Engine { docker })
    }

    /// The bollard client, for the few callers that stream (logs, attach, build).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The negotiated API version.
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// The runtimes the engine knows (`runc`, maybe `runsc`).
    pub async fn runtimes(&self) -> Result<Vec<String>> {
        let entries = self.runtime_entries().await?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }

    /// The engine's runtime entries, by name: the executable and the arguments dockerd passes it.
    pub async fn runtime_entries(&self) -> Result<Vec<RuntimeEntry>> {
        let info = self
            .docker
            .info()
            .await
            .map_err(fail("asking the engine for its runtimes"))?;
        let mut entries: Vec<RuntimeEntry> = info
            .runtimes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, runtime)| RuntimeEntry {
                path: runtime.path.unwrap_or_else(|| name.clone()),
                args: runtime.runtime_args.unwrap_or_default(),
                name,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The runtime a container really runs under (its `HostConfig.Runtime`, as the engine
    /// recorded it), whatever was planned.
    pub async fn container_runtime(&self, name: &str) -> Result<String> {
        let inspect = self
            .docker
            .inspect_container(name, None)
            .await
            .map_err(fail(format!("inspecting container {name}")))?;
        Ok(inspect
            .host_config
            .and_then(|h| h.runtime)
            .unwrap_or_else(|| "runc".to_owned()))
    }

    /// Whether an image exists locally.
    pub async fn image_exists(&self, reference: &str) -> Result<bool> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = fail(format!("inspecting image {reference}"))(e);
                if is_not_found(&e) { Ok(false) } else { Err(e) }
            }
        }
    }

    /// The image's configured user, as `(uid, gid)` when numeric (files for the container's own
    /// program are owned by it).
    pub async fn image_user(&self, reference: &str) -> Result<Option<(u64, u64)>> {
        let image = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(fail(format!("inspecting image {reference}")))?;
        let user = image.config.and_then(|c| c.user).unwrap_or_default();
        let mut parts = user.splitn(2, ':');
        let uid = parts.next().and_then(|u| u.parse().ok());
        let gid = parts.next().and_then(|g| g.parse().ok());
        Ok(uid.map(|uid| (uid, gid.unwrap_or(uid))))
    }

    /// Create a network; returns its CIDR as the engine assigned it.
    ///
    /// An internal network's bridge gets no address on the host (`inhibit_ipv4`): an internal
    /// network only drops traffic *leaving* its subnet, and the bridge's gateway address is inside
    /// it, so without this every service listening on the host (at the gateway, at docker0's
    /// address, at any host address through the gateway) would answer the agent. With no host-side
    /// address the containers still reach each other and Docker's DNS, and nothing else.
    pub async fn create_network(
        &self,
        name: &str,
        internal: bool,
        labels: &HashMap<String, String>,
    ) -> Result<String> {
        self.create_bridge(name, internal, !internal, labels).await
    }

    /// Create a bridge network, with or without an address on the host. Only the launch's
    /// test-only fault hook asks for an internal network *with* one (to prove the self-test
    /// refuses such a bottle).
    pub async fn create_bridge(
        &self,
        name: &str,
        internal: bool,
        host_address: bool,
        labels: &HashMap<String, String>,
    ) -> Result<String> {
        let options = (!host_address)
            .then(|| HashMap::from([(INHIBIT_IPV4_OPTION.to_owned(), "true".to_owned())]));
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            internal: Some(internal),
            labels: Some(labels.clone()),
            options,
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(fail(format!("creating network {name}")))?;
        self.network_cidr(name).await
    }

    /// The first IPAM subnet of a network.
    pub async fn network_cidr(&self, name: &str) -> Result<String> {
        let network = self
            .docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
            .map_err(fail(format!("inspecting network {name}")))?;
        let subnet = network
            .ipam
            .and_then(|Ipam { config, .. }| config)
            .and_then(|configs| configs.into_iter().find_map(|c| c.subnet));
        Ok(subnet.unwrap_or_default())
    }

    /// Remove a network; a missing one is fine. Containers that are not bottle's but were attached
    /// to it (a debugging container, a test upstream) are disconnected first, so they cannot keep a
    /// bottle's network alive.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let mut attempt = 0;
        loop {
            let first = self
                .docker
                .remove_network(name)
                .await
                .map_err(fail(format!("removing network {name}")));
            match first {
                Ok(()) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if self.disconnect_all(name).await? > 0 => {
                    return self.docker.remove_network(name).await.map_err(fail(format!(
                        "removing network {name} after disconnecting what used it ({e})"
                    )));
                }
                // The engine may still hold the endpoint of a container removed a moment ago
                // (seen under load): it lists no container yet refuses. That clears by itself.
                Err(e) if has_active_endpoints(&e) && attempt < NETWORK_REMOVAL_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        network = name,
                        attempt,
                        "network still has endpoints; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Disconnect every container from a network; how many there were.
    async fn disconnect_all(&self, network: &str) -> Result<usize> {
        let inspect = self
            .docker
            .inspect_network(network, None::<InspectNetworkOptions>)
            .await
            .map_err(fail(format!("inspecting network {network}")))?;
        let attached: Vec<String> = inspect.containers.unwrap_or_default().into_keys().collect();
        for container in &attached {
            let request = bollard::models::NetworkDisconnectRequest {
                container: container.clone(),
                force: Some(true),
            };
            self.docker
                .disconnect_network(network, request)
                .await
                .map_err(fail(format!("disconnecting {container} from {network}")))?;
        }
        Ok(attached.len())
    }

    /// A network's gateway addresses and its members' addresses (container name, IP), IPv4 and
    /// IPv6, without prefix lengths.
    pub async fn network_addresses(&self, name: &str) -> Result<NetworkAddresses> {
        let network = self
            .docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
            .map_err(fail(format!("inspecting network {name}")))?;
        let members = network
            .containers
            .unwrap_or_default()
            .into_values()
            .flat_map(|c| {
                let name = c.name.unwrap_or_default();
                [c.ipv4_address, c.ipv6_address]
                    .into_iter()
                    .flatten()
                    .filter_map(|a| address_only(&a))
                    .map(move |ip| (name.clone(), ip))
            })
            .collect();
        Ok(NetworkAddresses {
            gateways: gateways(network.ipam),
            members,
        })
    }

    /// The gateway address of every bridge network on the engine: where the host answers
    /// containers on that bridge (an internal bottle network's is assigned but not on the host).
    pub async fn bridge_gateways(&self) -> Result<Vec<String>> {
        let networks = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(fail("listing networks"))?;
        let mut all: Vec<String> = networks
            .into_iter()
            .filter(|n| n.driver.as_deref() == Some("bridge"))
            .flat_map(|n| gateways(n.ipam))
            .collect();
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// Networks carrying every `key=value` label given.
    pub async fn networks_labelled(
        &self,
        filters: &[String],
    ) -> Result<Vec<(String, HashMap<String, String>)>> {
        let mut map = HashMap::new();
        map.insert("label".to_owned(), filters.to_vec());
        let options = ListNetworksOptionsBuilder::default().filters(&map).build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(fail("listing networks"))?;
        Ok(networks
            .into_iter()
            .map(|n| (n.name.unwrap_or_default(), n.labels.unwrap_or_default()))
            .collect())
    }

    /// Containers (running or not) carrying every `key=value` label given.
    pub async fn containers_labelled(&self, filters: &[String]) -> Result<Vec<ContainerSummary>> {
        let mut map = HashMap::new();
        map.insert("label".to_owned(), filters.to_vec());
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&map)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(fail("listing containers"))
    }

    /// Whether a container or network by this name exists.
    pub async fn container_exists(&self, name: &str) -> Result<bool> {
        match self.docker.inspect_container(name, None).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = fail(format!("inspecting container {name}"))(e);
                if is_not_found(&e) { Ok(false) } else { Err(e) }
            }
        }
    }

    /// Whether a network by this name exists.
    pub async fn network_exists(&self, name: &str) -> Result<bool> {
        match self
            .docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = fail(format!("inspecting network {name}"))(e);
                if is_not_found(&e) { Ok(false) } else { Err(e) }
            }
        }
    }

    /// Create a container attached to `network` with `aliases`.
    pub async fn create_container(
        &self,
        name: &str,
        mut body: ContainerCreateBody,
        network: &str,
        aliases: &[String],
    ) -> Result<String> {
        let mut endpoints = HashMap::new();
        endpoints.insert(
            network.to_owned(),
            EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..Default::default()
            },
        );
        body.networking_config = Some(bollard::models::NetworkingConfig {
            endpoints_config: Some(endpoints),
        });
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(fail(format!("creating container {name}")))?;
        Ok(created.id)
    }

    /// Attach a created container to another network.
    pub async fn attach_network(
        &self,
        container: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<()> {
        let request = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(fail(format!("connecting {container} to {network}")))
    }

    /// Copy files into a container (created or running) as one tar archive at `/`; see [`tar_of`]
    /// for `owned_root`.
    pub async fn upload(
        &self,
        container: &str,
        files: &[FileUpload],
        owned_root: Option<&str>,
    ) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let archive = tar_of(files, owned_root);
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(fail(format!("copying files into {container}")))
    }

    /// Read one file out of a container (created or running), with its mode and owner, ready to
    /// be changed and uploaded back.
    pub async fn download(&self, container: &str, path: &str) -> Result<FileUpload> {
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let action = format!("reading {path} from {container}");
        let mut stream = self
            .docker
            .download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            archive.extend_from_slice(&chunk.map_err(fail(action.clone()))?);
        }
        let mut file = FileUpload {
            path: path.to_owned(),
            mode: 0o644,
            owner: (0, 0),
            contents: Vec::new(),
        };
        let mut reader = tar::Archive::new(archive.as_slice());
        if let Some(Ok(mut entry)) = reader.entries().ok().and_then(|mut e| e.next()) {
            let header = entry.header();
            file.mode = header.mode().unwrap_or(0o644) & 0o7777;
            file.owner = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
            let _ = std::io::Read::read_to_end(&mut entry, &mut file.contents);
        }
        Ok(file)
    }

    /// Send a signal (such as `SIGHUP`) to a running container's main process.
    pub async fn signal(&self, container: &str, signal: &str) -> Result<()> {
        let options = bollard::query_parameters::KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker
            .kill_container(container, Some(options))
            .await
            .map_err(fail(format!("sending {signal} to {container}")))
    }

    /// Restart a container, giving it `timeout_s` seconds to stop.
    pub async fn restart(&self, container: &str, timeout_s: i32) -> Result<()> {
        let options = bollard::query_parameters::RestartContainerOptionsBuilder::default()
            .t(timeout_s)
            .build();
        self.docker
            .restart_container(container, Some(options))
            .await
            .map_err(fail(format!("restarting {container}")))
    }

    /// Start a container.
    pub async fn start(&self, container: &str) -> Result<()> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(fail(format!("starting container {container}")))
    }

    /// Remove a container, running or not; a missing one is fine.
    pub async fn remove_container(&self, name: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .docker
            .remove_container(name, Some(options))
            .await
            .map_err(fail(format!("removing container {name}")))
        {
            Err(e) if !is_not_found(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Remove a `--cwd` workspace image (it holds the working tree, `.git/config`, untracked
    /// files such as `.env`). Anything else is left alone, as is an image another bottle of the
    /// same tree still runs (the engine refuses with a conflict).
    pub async fn remove_workspace_image(&self, image: &str) -> Result<()> {
        if !image.starts_with(WORKSPACE_IMAGE_PREFIX) {
            return Ok(());
        }
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .noprune(false)
            .build();
        match self
            .docker
            .remove_image(image, Some(options), None)
            .await
            .map_err(fail(format!("removing workspace image {image}")))
        {
            Err(e) if !is_not_found(&e) && !is_conflict(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether a container is running.
    pub async fn is_running(&self, name: &str) -> Result<bool> {
        let inspect = self
            .docker
            .inspect_container(name, None)
            .await
            .map_err(fail(format!("inspecting {name}")))?;
        Ok(inspect.state.and_then(|s| s.running).unwrap_or(false))
    }

    /// Run a command in a container and collect its output.
    pub async fn exec(
        &self,
        container: &str,
        cmd: &[String],
        user: Option<&str>,
    ) -> Result<ExecOutput> {
        self.exec_with_env(container, cmd, user, &[]).await
    }

    /// [`Engine::exec`] with `NAME=value` entries added to this one process's environment (not
    /// the container's, not its argv).
    pub async fn exec_with_env(
        &self,
        container: &str,
        cmd: &[String],
        user: Option<&str>,
        env: &[String],
    ) -> Result<ExecOutput> {
        self.run_exec(container, cmd, user, env, None).await
    }

    /// [`Engine::exec_with_env`] with a stdin: each message received is written as it comes, and
    /// the input is closed once every sender is gone. Output is collected meanwhile.
    pub async fn exec_with_input(
        &self,
        container: &str,
        cmd: &[String],
        user: Option<&str>,
        env: &[String],
        input: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    ) -> Result<ExecOutput> {
        self.run_exec(container, cmd, user, env, Some(input)).await
    }

    async fn run_exec(
        &self,
        container: &str,
        cmd: &[String],
        user: Option<&str>,
        env: &[String],
        input: Option<tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>>,
    ) -> Result<ExecOutput> {
        let options = CreateExecOptions::<String> {
            cmd: Some(cmd.to_vec()),
            user: user.map(str::to_owned),
            env: (!env.is_empty()).then(|| env.to_vec()),
            attach_stdin: Some(input.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let action = format!("running `{}` in {container}", cmd.join(" "));
        let exec = self
            .docker
            .create_exec(container, options)
            .await
            .map_err(fail(action.clone()))?;
        let started = self
            .docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await
            .map_err(fail(action.clone()))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let StartExecResults::Attached {
            mut output,
            input: writer,
        } = started
        {
            let read = async {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(fail(action.clone()))? {
                        bollard::container::LogOutput::StdErr { message } => {
                            stderr.extend_from_slice(&message)
                        }
                        other => stdout.extend_from_slice(&other.into_bytes()),
                    }
                }
                Ok(())
            };
            let (_, read) = tokio::join!(feed(writer, input), read);
            read?;
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(fail(action))?;
        Ok(ExecOutput {
            code: inspect.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// A container's whole log (stdout and stderr, up to [`KEPT_LOG_BYTES`]; the newest part
    /// when longer), within a bounded time.
    pub async fn all_logs(&self, container: &str) -> Vec<u8> {
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
            out.extend_from_slice(&chunk.into_bytes());
            if out.len() > 2 * KEPT_LOG_BYTES {
                out.drain(..out.len() - KEPT_LOG_BYTES);
            }
        }
        if out.len() > KEPT_LOG_BYTES {
            out.drain(..out.len() - KEPT_LOG_BYTES);
        }
        out
    }

    /// The last `lines` lines of a container's logs (stdout and stderr).
    pub async fn tail_logs(&self, container: &str, lines: usize) -> String {
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
            out.extend_from_slice(&chunk.into_bytes());
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// What [`Engine::network_addresses`] found.
#[derive(Debug, Clone, Default)]
pub struct NetworkAddresses {
    /// Gateway addresses (IPAM).
    pub gateways: Vec<String>,
    /// `(container name, address)` of every member.
    pub members: Vec<(String, String)>,
}

fn gateways(ipam: Option<Ipam>) -> Vec<String> {
    ipam.and_then(|i| i.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.gateway)
        .filter(|g| !g.is_empty())
        .collect()
}

/// `172.18.0.2/16` → `172.18.0.2`; empty → none.
fn address_only(cidr: &str) -> Option<String> {
    let ip = cidr.split('/').next().unwrap_or("");
    (!ip.is_empty()).then(|| ip.to_owned())
}

/// One tar archive of `files`. Missing parent directories are created by the engine as root 0755;
/// those strictly below `owned_root` (such as the agent's home) get entries owned like the file, so
/// the container's user can write beside what the host put there. Directories at or above it are
/// never in the archive, so extracting cannot change the owner or mode of `/etc`, `/home`, ….
pub fn tar_of(files: &[FileUpload], owned_root: Option<&str>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for file in files {
        let relative = file.path.trim_start_matches('/');
        if let Some(root) = owned_root.map(|r| r.trim_matches('/')) {
            for dir in owned_parents(relative, root) {
                if dirs.insert(dir.clone()) {
                    let mut header = tar::Header::new_gnu();
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_uid(file.owner.0);
                    header.set_gid(file.owner.1);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, &dir, std::io::empty())
                        .expect("in-memory tar");
                }
            }
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(file.mode);
        header.set_uid(file.owner.0);
        header.set_gid(file.owner.1);
        header.set_size(file.contents.len() as u64);
        builder
            .append_data(&mut header, relative, file.contents.as_slice())
            .expect("in-memory tar");
    }
    builder.into_inner().expect("in-memory tar")
}

/// The parent directories of `path` strictly below `root`, outermost first.
fn owned_parents(path: &str, root: &str) -> Vec<String> {
    let Some(rest) = path.strip_prefix(root).and_then(|r| r.strip_prefix('/')) else {
        return Vec::new();
    };
    let segments: Vec<&str> = rest.split('/').collect();
    (1..segments.len())
        .map(|n| format!("{root}/{}", segments[..n].join("/")))
        .collect()
}

/// Write an exec's stdin from `input` until every sender is gone, then close it (the process sees
/// the end of its input). A process that stopped reading ends the feeding, not the exec.
async fn feed(
    mut writer: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    input: Option<tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>>,
) {
    use tokio::io::AsyncWriteExt;
    let Some(mut input) = input else {
        return;
    };
    while let Some(bytes) = input.recv().await {
        if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_below_the_owned_root_are_archived() {
        assert_eq!(
            owned_parents("home/agent/.claude/skills/x/SKILL.md", "home/agent"),
            [
                "home/agent/.claude",
                "home/agent/.claude/skills",
                "home/agent/.claude/skills/x"
            ]
        );
        assert!(owned_parents("etc/bottle/x.yaml", "home/agent").is_empty());
        assert!(owned_parents("home/agentx/y", "home/agent").is_empty());
        let file = FileUpload {
            path: "/etc/bottle/x".into(),
            mode: 0o600,
            owner: (0, 0),
            contents: b"k".to_vec(),
        };
        let archive = tar_of(&[file], None);
        let mut reader = tar::Archive::new(archive.as_slice());
        let names: Vec<String> = reader
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["etc/bottle/x"]);
    }
}
