//! The proxy: listener, per-connection state, upstream connection reuse and reloads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::scan::UpBody;
use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use bottle_egress_config::EgressConfig;

use crate::audit::{AuditSink, StdoutAudit};
use crate::host::Target;
use crate::net::{Network, SystemNetwork};
use crate::policy::{ConfigError, EnvLookup, Policy};
use crate::upstream::{self, DialError, Resolved};

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What the proxy is wired to; [`ProxyOptions::default`] is the real world.
#[derive(Clone)]
pub struct ProxyOptions {
    /// Resolution and connects.
    pub network: Arc<dyn Network>,
    /// Where audit records go.
    pub audit: Arc<dyn AuditSink>,
    /// Where secrets and route tokens are looked up.
    pub env: Arc<EnvLookup>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            network: Arc::new(SystemNetwork),
            audit: Arc::new(StdoutAudit),
            env: Arc::new(|name: &str| std::env::var(name).ok()),
        }
    }
}

/// A policy in force, with a generation so cached upstream connections follow reloads.
pub(crate) struct Live {
    pub(crate) policy: Policy,
    pub(crate) generation: u64,
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) live: ArcSwap<Live>,
    pub(crate) net: Arc<dyn Network>,
    pub(crate) audit: Arc<dyn AuditSink>,
    env: Arc<EnvLookup>,
    generations: AtomicU64,
}

/// A bound, not yet running proxy.
pub struct Proxy {
    shared: Arc<Shared>,
    listener: TcpListener,
}

impl Proxy {
    /// Compiles `config` and binds its listen address.
    pub async fn bind(config: &EgressConfig, options: ProxyOptions) -> Result<Proxy, StartError> {
        let policy = Policy::compile(config, &*options.env)?;
        for w in &policy.warnings {
            tracing::warn!("{w}");
        }
        let addr = policy.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            live: ArcSwap::from_pointee(Live {
                policy,
                generation: 0,
            }),
            net: options.network,
            audit: options.audit,
            env: options.env,
            generations: AtomicU64::new(1),
        });
        Ok(Proxy { shared, listener })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// A handle to reload the configuration while the proxy runs.
    pub fn handle(&self) -> ProxyHandle {
        ProxyHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves connections until the task is dropped.
    pub async fn run(self) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = Arc::new(Conn::new(self.shared.clone(), None));
            tokio::spawn(async move {
                tracing::trace!(%peer, "connection");
                serve(conn, stream).await;
            });
        }
    }
}

/// Reloads the configuration of a running proxy.
#[derive(Clone)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

impl ProxyHandle {
    /// Compiles `config` and makes it the policy for new requests; in-flight requests keep theirs.
    /// On error nothing changes.
    pub fn reload(&self, config: &EgressConfig) -> Result<(), ConfigError> {
        let policy = Policy::compile(config, &*self.shared.env)?;
        let current = self.shared.live.load();
        if policy.listen != current.policy.listen {
            tracing::warn!(
                old = %current.policy.listen,
                new = %policy.listen,
                "the listen address changes only on restart"
            );
        }
        for w in &policy.warnings {
            tracing::warn!("{w}");
        }
        let generation = self.shared.generations.fetch_add(1, Ordering::Relaxed);
        self.shared
            .live
            .store(Arc::new(Live { policy, generation }));
        Ok(())
    }

    /// Reads, validates and applies the configuration file at `path`.
    pub fn reload_from(&self, path: &Path) -> Result<(), ConfigError> {
        let config = crate::policy::load_config(path)?;
        self.reload(&config)
    }
}

/// An intercepted tunnel's fixed target.
pub(crate) struct Tunnel {
    pub(crate) target: Target,
    pub(crate) tls: bool,
    pub(crate) resolved: Resolved,
}

type Sender = SendRequest<UpBody>;

struct Slot {
    generation: u64,
    target: Target,
    tls: bool,
    sender: Sender,
}

/// One client connection (or one intercepted tunnel) and its reusable upstream connection.
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tunnel: Option<Tunnel>,
    slot: Mutex<Option<Slot>>,
}

/// Why a request could not be sent upstream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("upstream HTTP: {0}")]
    Http(#[from] hyper::Error),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Conn {
    pub(crate) fn new(shared: Arc<Shared>, tunnel: Option<Tunnel>) -> Conn {
        Conn {
            shared,
            tunnel,
            slot: Mutex::new(None),
        }
    }

    /// Sends `req` to `target`, reusing this connection's upstream connection when it fits.
    pub(crate) async fn send(
        &self,
        live: &Live,
        target: &Target,
        tls: bool,
        req: Request<UpBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let cached = self
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|s| {
                s.generation == live.generation
                    && s.target == *target
                    && s.tls == tls
                    && !s.sender.is_closed()
            });
        let mut sender = match cached {
            Some(slot) => slot.sender,
            None => self.open(live, target, tls, false).await?,
        };
        if sender.ready().await.is_err() {
            sender = self.open(live, target, tls, false).await?;
            sender.ready().await?;
        }
        let response = sender.send_request(req).await?;
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Slot {
            generation: live.generation,
            target: target.clone(),
            tls,
            sender,
        });
        Ok(response)
    }

    /// Sends `req` on a fresh upstream connection that supports upgrades (websockets).
    pub(crate) async fn send_upgrade(
        &self,
        live: &Live,
        target: &Target,
        tls: bool,
        req: Request<UpBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let mut sender = self.open(live, target, tls, true).await?;
        sender.ready().await?;
        Ok(sender.send_request(req).await?)
    }

    async fn open(
        &self,
        live: &Live,
        target: &Target,
        tls: bool,
        upgrades: bool,
    ) -> Result<Sender, SendError> {
        let policy = &live.policy;
        let resolved = match &self.tunnel {
            Some(t) if t.target == *target => {
                t.resolved.recheck(policy)?;
                t.resolved.clone()
            }
            _ => upstream::resolve(policy, &*self.shared.net, target).await?,
        };
        let tcp = upstream::connect(&*self.shared.net, &resolved).await?;
        let io: Box<dyn Io> = if tls {
            Box::new(upstream::tls_connect(policy, tcp, &target.host).await?)
        } else {
            Box::new(tcp)
        };
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let result = if upgrades {
                connection.with_upgrades().await
            } else {
                connection.await
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// Serves HTTP/1.1 on `io` for `conn` (the front side, or inside a tunnel).
pub(crate) async fn serve<I>(conn: Arc<Conn>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(crate::handler::handle(conn, req).await) }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "client connection ended");
    }
}
