//! The MCP server: the tool handler, the HTTP router (`/mcp` and `/healthz`) and serving it until
//! shutdown.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bottle_supervise_queue::{CurrentConfig, Decision, Outcome, Proposal, Queue, QueueError};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool as ToolInfo,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::tools::{self, Call, Refused};

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";

/// The path of the health endpoint (`GET` → 200 `ok`).
pub const HEALTH_PATH: &str = "/healthz";

/// Largest request body accepted, in bytes (a Dockerfile is at most 64 KiB; routes are small).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// What the server tells the agent when it connects.
const INSTRUCTIONS: &str = "bottle's supervise server. When the bottle stops you (a host the \
firewall blocks, a request a credential route refuses, a push the git gate refuses, a program \
the image lacks), ask the human operator for the change with the matching -block tool. Each \
-block call waits until the operator decides, then returns the decision and the operator's \
notes. Call list-egress-routes first to see the current configuration.";

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often a waiting call looks for the operator's decision.
    pub poll_interval: Duration,
    /// How often an SSE comment is sent on a waiting call's response, so the connection stays
    /// open through idle timeouts.
    pub keep_alive: Duration,
    /// How long open connections may take to close once `shutdown` is cancelled.
    pub grace: Duration,
    /// Cancel to stop: waiting calls return `expired`, then the server stops.
    pub shutdown: CancellationToken,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll_interval: Duration::from_millis(200),
            keep_alive: Duration::from_secs(15),
            grace: Duration::from_secs(3),
            shutdown: CancellationToken::new(),
        }
    }
}

/// The server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Accepting or serving connections failed.
    #[error("serving: {0}")]
    Serve(#[from] std::io::Error),
}

/// The MCP tool handler of one queue. Cheap to clone: the transport makes one per request.
#[derive(Debug, Clone)]
pub struct Supervise {
    queue: Queue,
    poll_interval: Duration,
    shutdown: CancellationToken,
}

impl Supervise {
    /// A handler writing proposals into `queue`.
    pub fn new(queue: Queue, options: &Options) -> Self {
        Supervise {
            queue,
            poll_interval: options.poll_interval,
            shutdown: options.shutdown.clone(),
        }
    }

    async fn current(&self) -> Result<CurrentConfig, QueueError> {
        let queue = self.queue.clone();
        blocking(move || queue.current()).await
    }

    /// Queue a checked proposal and wait for its decision.
    async fn propose(
        &self,
        proposal: Proposal,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let (id, tool) = (proposal.id.clone(), proposal.tool.name());
        let queue = self.queue.clone();
        if let Err(e) = blocking(move || queue.submit(&proposal).map(drop)).await {
            if e.is_cap() {
                tracing::info!(tool, "call refused, nothing queued: {e}");
                return tool_error(format!("{tool}: nothing was queued: {e}"));
            }
            tracing::error!(tool, "cannot queue a proposal: {e}");
            return tool_error(format!(
                "{tool}: the proposal could not be queued ({e}); nothing reached the operator. \
                 Tell the user the supervise queue needs attention."
            ));
        }
        tracing::info!(id, tool, "proposal queued");
        // Until the call has its answer, leaving (the client disconnected or cancelled, or this
        // future was dropped) withdraws the proposal: no one would receive a decision on it.
        let mut withdraw = Withdraw {
            queue: self.queue.clone(),
            id: Some(id.clone()),
        };
        let mut ticks = tokio::time::interval(self.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    // Kept for the host, which expires it with an audit line at teardown.
                    withdraw.keep();
                    tracing::info!(id, tool, status = "expired", "decision returned (shutting down)");
                    return outcome(&Outcome {
                        status: bottle_supervise_queue::Status::Expired,
                        notes: "the bottle is going away (the supervise sidecar is stopping) \
                                before the operator decided"
                            .into(),
                    });
                }
                () = context.ct.cancelled() => {
                    tracing::info!(id, tool, "caller went away before a decision; withdrawing the proposal");
                    return tool_error("cancelled; the proposal was withdrawn".to_owned());
                }
                _ = ticks.tick() => {}
            }
            let queue = self.queue.clone();
            let key = id.clone();
            match blocking(move || queue.decision(&key)).await {
                Ok(None) => {}
                Ok(Some(decision)) => {
                    withdraw.keep();
                    return self.returned(&id, tool, &decision);
                }
                Err(e) => {
                    withdraw.keep();
                    tracing::error!(id, tool, "cannot read the decision: {e}");
                    return tool_error(format!(
                        "{tool}: proposal {id} was queued but its decision cannot be read ({e}). \
                         Tell the user the supervise queue needs attention."
                    ));
                }
            }
        }
    }

    fn returned(&self, id: &str, tool: &str, decision: &Decision) -> CallToolResult {
        tracing::info!(
            id,
            tool,
            status = decision.status.as_str(),
            "decision returned"
        );
        outcome(&Outcome::from(decision))
    }
}

impl ServerHandler for Supervise {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "bottle-supervise",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::all()))
    }

    fn get_tool(&self, name: &str) -> Option<ToolInfo> {
        tools::get(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.as_ref();
        if !tools::NAMES.contains(&name) {
            return Err(McpError::invalid_params(
                format!(
                    "there is no tool `{name}`; the tools are {}",
                    tools::NAMES.join(", ")
                ),
                None,
            ));
        }
        let call = match tools::parse(name, request.arguments.as_ref()) {
            Ok(call) => call,
            Err(refused) => return Ok(refusal(&refused).into()),
        };
        let current = match self.current().await {
            Ok(current) => current,
            Err(e) => {
                tracing::error!(tool = name, "cannot read the current configuration: {e}");
                return Ok(tool_error(format!(
                    "{name}: the bottle's current configuration cannot be read ({e}); nothing \
                     was queued. Tell the user the supervise queue needs attention."
                ))
                .into());
            }
        };
        if call == Call::ListEgressRoutes {
            return Ok(CallToolResult::structured(tools::current_for_agent(&current)).into());
        }
        if let Err(refused) = tools::check_current(&call, &current) {
            return Ok(refusal(&refused).into());
        }
        let proposal = call
            .proposal(Queue::new_id(), now())
            .expect("a -block call proposes");
        Ok(self.propose(proposal, &context).await.into())
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats as RFC 3339")
}

fn outcome(outcome: &Outcome) -> CallToolResult {
    CallToolResult::structured(serde_json::to_value(outcome).expect("an outcome serializes"))
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn refusal(refused: &Refused) -> CallToolResult {
    tracing::info!(
        tool = refused.tool,
        field = refused.field.as_deref().unwrap_or("-"),
        "call refused, nothing queued"
    );
    tool_error(refused.to_string())
}

/// Withdraws a waiting proposal when dropped, unless [`Withdraw::keep`] was called.
struct Withdraw {
    queue: Queue,
    id: Option<String>,
}

impl Withdraw {
    fn keep(&mut self) {
        self.id = None;
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        // Two small file operations; a drop cannot await, and a decision written meanwhile
        // wins (a decided proposal is never withdrawn).
        match self.queue.withdraw(&id) {
            Ok(true) => tracing::info!(id, "proposal withdrawn: its caller went away"),
            Ok(false) => {}
            Err(e) => tracing::warn!(id, "cannot withdraw the proposal: {e}"),
        }
    }
}

/// Run blocking queue I/O off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, QueueError> + Send + 'static,
) -> Result<T, QueueError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The HTTP routes: the MCP endpoint at [`MCP_PATH`] (streamable HTTP, stateless, SSE responses
/// with keep-alive comments) and [`HEALTH_PATH`].
pub fn router(queue: Queue, options: &Options) -> Router {
    let handler = Supervise::new(queue, options);
    let config = StreamableHttpServerConfig::default()
        // Stateless: no session to set up or lose; every POST stands alone, so a plain client
        // can send `tools/call` straight away and a restarted sidecar keeps serving old clients.
        .with_legacy_session_mode(false)
        // Answer on an SSE stream, which carries keep-alive comments while a call waits.
        .with_json_response(false)
        .with_sse_keep_alive(Some(options.keep_alive))
        // No transport-wide cancellation: on shutdown the waiting calls answer `expired` and their
        // streams end by themselves, so the agent gets that answer instead of a cut connection.
        // Reached as `supervise:7411` (or by address) on the bottle's internal network, where no
        // browser runs: the loopback-only Host check against DNS rebinding does not apply.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(MAX_REQUEST_BYTES);
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route(HEALTH_PATH, get(|| async { "ok\n" }))
        .nest_service(MCP_PATH, service)
}

/// Listen on `listen` and serve `queue` until `options.shutdown` is cancelled.
pub async fn serve(listen: SocketAddr, queue: Queue, options: Options) -> Result<(), ServeError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    serve_on(listener, queue, options).await
}

/// Serve `queue` on a bound listener until `options.shutdown` is cancelled; open connections get
/// `options.grace` to finish.
pub async fn serve_on(
    listener: TcpListener,
    queue: Queue,
    options: Options,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, queue = %queue.root().display(), "supervise server ready");
    let shutdown = options.shutdown.clone();
    let app = router(queue, &options);
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(options.grace, &mut server).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            tracing::warn!(
                "connections still open after {:?}; closing them",
                options.grace
            );
            Ok(())
        }
    }
}
