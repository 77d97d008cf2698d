//! Opening upstream connections: SSRF-checked resolution, direct dial or CONNECT through the
//! upstream proxy, and TLS verified against the configured roots.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::host::Target;
use crate::net::Network;
use crate::policy::Policy;

/// Why no upstream connection was made.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The SSRF guard refused the address.
    #[error("{0}")]
    Forbidden(String),
    /// The name did not resolve.
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// No address accepted the connection.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// Where.
        target: String,
        /// The last error.
        #[source]
        source: io::Error,
    },
    /// The upstream proxy refused or failed the CONNECT.
    #[error("upstream proxy: {0}")]
    Proxy(String),
    /// The TLS handshake with the upstream failed (including certificate verification).
    #[error("TLS with {host}: {source}")]
    Tls {
        /// The host.
        host: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Where a connection for a target will go, decided (and SSRF-checked) once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Straight to these addresses, in order.
    Direct(Vec<SocketAddr>),
    /// Through the upstream proxy at these addresses, with `CONNECT target`.
    ViaProxy {
        /// The upstream proxy's addresses.
        proxy: Vec<SocketAddr>,
        /// What to ask it for.
        target: Target,
    },
}

impl Resolved {
    /// Re-checks direct addresses against `policy`'s guard (after a reload).
    pub fn recheck(&self, policy: &Policy) -> Result<(), DialError> {
        if let Resolved::Direct(addrs) = self {
            for a in addrs {
                policy.ssrf.check(a.ip()).map_err(|r| {
                    DialError::Forbidden(format!("refusing to dial {}: {r}", a.ip()))
                })?;
            }
        }
        Ok(())
    }
}

/// Resolves `target` once and checks every address against the SSRF guard.
///
/// With an upstream proxy, IP literals are still checked here; names are left to the upstream
/// proxy (it resolves them and applies its own guard).
pub async fn resolve(
    policy: &Policy,
    net: &dyn Network,
    target: &Target,
) -> Result<Resolved, DialError> {
    let literal = target.ip();
    if let Some(ip) = literal {
        policy
            .ssrf
            .check(ip)
            .map_err(|r| DialError::Forbidden(format!("refusing to dial {ip}: {r}")))?;
    }
    if let Some((host, port)) = &policy.upstream_proxy {
        let ips = lookup(net, host).await?;
        return Ok(Resolved::ViaProxy {
            proxy: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, *port))
                .collect(),
            target: target.clone(),
        });
    }
    let ips = match literal {
        Some(ip) => vec![ip],
        None => lookup(net, &target.host).await?,
    };
    for ip in &ips {
        policy.ssrf.check(*ip).map_err(|r| {
            DialError::Forbidden(format!(
                "refusing to dial {}: it resolves to {ip}, a {r}",
                target.host
            ))
        })?;
    }
    Ok(Resolved::Direct(
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip.to_canonical(), target.port))
            .collect(),
    ))
}

async fn lookup(net: &dyn Network, host: &str) -> Result<Vec<IpAddr>, DialError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let ips = net
        .resolve(host)
        .await
        .map_err(|source| DialError::Resolve {
            host: host.to_string(),
            source,
        })?;
    if ips.is_empty() {
        return Err(DialError::Resolve {
            host: host.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        });
    }
    Ok(ips)
}

/// Opens the TCP connection `resolved` describes (through the upstream proxy if any).
pub async fn connect(net: &dyn Network, resolved: &Resolved) -> Result<TcpStream, DialError> {
    match resolved {
        Resolved::Direct(addrs) => first_connect(net, addrs).await,
        Resolved::ViaProxy { proxy, target } => {
            let mut stream = first_connect(net, proxy).await?;
            proxy_connect(&mut stream, target)
                .await
                .map_err(|e| DialError::Proxy(e.to_string()))?;
            Ok(stream)
        }
    }
}

async fn first_connect(net: &dyn Network, addrs: &[SocketAddr]) -> Result<TcpStream, DialError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
    for addr in addrs {
        match net.connect(*addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(DialError::Connect {
        target: addrs.first().map(|a| a.to_string()).unwrap_or_default(),
        source: last,
    })
}

/// Asks an HTTP proxy on `stream` for a tunnel to `target`.
pub async fn proxy_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    target: &Target,
) -> io::Result<()> {
    let authority = target.authority();
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let deadline = Duration::from_secs(30);
    let end = loop {
        let n = tokio::time::timeout(deadline, stream.read(&mut chunk))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer to CONNECT"))??;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during CONNECT",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("CONNECT answer too long"));
        }
    };
    if end != buf.len() {
        return Err(io::Error::other(
            "unexpected bytes after the CONNECT answer",
        ));
    }
    let status_line = buf.split(|b| *b == b'\r').next().unwrap_or_default();
    let status = String::from_utf8_lossy(status_line);
    let ok = status
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.len() == 3 && code.starts_with('2'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "CONNECT {authority} refused: {}",
            status.trim()
        )))
    }
}

/// TLS to `host` over `tcp`, verified with `policy`'s roots.
pub async fn tls_connect<S>(policy: &Policy, tcp: S, host: &str) -> Result<TlsStream<S>, DialError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let err = |source: io::Error| DialError::Tls {
        host: host.to_string(),
        source,
    };
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string())
            .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?,
    };
    let connector = TlsConnector::from(policy.tls.client_config());
    tokio::time::timeout(Duration::from_secs(30), connector.connect(name, tcp))
        .await
        .map_err(|_| {
            err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake timed out",
            ))
        })?
        .map_err(err)
}
