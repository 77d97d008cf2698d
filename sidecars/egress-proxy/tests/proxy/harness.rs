//! The test world: an echoing upstream (HTTP and HTTPS with its own CA), a network that maps test
//! names to loopback and refuses to dial anything else, and the proxy running in-process.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bottle_egress_config::*;
use bottle_egress_proxy::audit::{AuditRecord, Decision, MemoryAudit};
use bottle_egress_proxy::net::{BoxFuture, Network};
use bottle_egress_proxy::{Proxy, ProxyHandle, ProxyOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub const GIT_TOKEN: &str = "gittoken-1234567890abcdef";
pub const TOK_TOKEN: &str = "toktoken-abcdefgh12345678";
pub const DB_PASSWORD: &str = "hunter2-db-password";
pub use bottle_egress_config::PLACEHOLDER_TOKEN;

/// Names the upstream's certificate covers (all resolve to 127.0.0.1 in the test network).
pub const UPSTREAM_NAMES: &[&str] = &[
    "api.test",
    "git.test",
    "tok.test",
    "pass.test",
    "other.test",
    "new.test",
    "x.allowed.test",
    "localhost",
];

/// A CA and its PEM files.
pub struct TestCa {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).unwrap();
        let key_pem = key.serialize_pem();
        TestCa {
            cert_pem: cert.pem(),
            key_pem,
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn leaf(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        names.push("127.0.0.1".into());
        let params = CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
    }

    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone()).unwrap();
        let mut c =
            rustls::ClientConfig::builder_with_provider(bottle_egress_proxy::tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(c)
    }
}

/// Maps names to addresses; dials only loopback and records any other attempt.
#[derive(Default)]
pub struct TestNet {
    pub names: Mutex<HashMap<String, Vec<IpAddr>>>,
    pub foreign_dials: Mutex<Vec<SocketAddr>>,
    pub dials: Mutex<Vec<SocketAddr>>,
}

impl Network for TestNet {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let found = self.names.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown test name"))
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<TcpStream>> {
        Box::pin(async move {
            self.dials.lock().unwrap().push(addr);
            if !addr.ip().is_loopback() {
                self.foreign_dials.lock().unwrap().push(addr);
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "test network: not loopback",
                ));
            }
            TcpStream::connect(addr).await
        })
    }
}

/// The echoing upstream.
pub struct Upstream {
    pub received: Received,
    pub http_port: u16,
    pub https_port: u16,
    pub ca: TestCa,
    /// Every request that arrived, in order: what refusal tests prove absent.
    pub arrived: Arrivals,
}

/// Requests the upstream read completely: (path, body as received).
pub type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Arrived {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Arrived {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Arrivals = Arc<Mutex<Vec<Arrived>>>;

type EchoBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A body fed by a channel, so a test upstream can send chunks with pauses between them.
struct Fed(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Fed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// `/split-echo`: the request's `Authorization` value in a body of two chunks sent 50 ms apart,
/// split in the middle of the value.
fn split_echo(req: &Request<Incoming>) -> Response<EchoBody> {
    let value = req
        .headers()
        .get("authorization")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let text = [b"auth=".as_slice(), &value, b";"].concat();
    let (first, second) = text.split_at(text.len() / 2 + 3);
    let (first, second) = (
        Bytes::copy_from_slice(first),
        Bytes::copy_from_slice(second),
    );
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let _ = tx.send(first).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(second).await;
    });
    let mut r = Response::new(Fed(rx).boxed());
    r.headers_mut()
        .insert("content-length", text.len().to_string().parse().unwrap());
    r
}

async fn echo(
    arrived: Arrivals,
    received: Received,
    req: Request<Incoming>,
) -> Result<Response<EchoBody>, Infallible> {
    arrived.lock().unwrap().push(Arrived {
        method: req.method().to_string(),
        path: req.uri().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
    });
    if req.uri().path() == "/split-echo" {
        return Ok(split_echo(&req));
    }
    let mut req = req;
    if req.headers().get("upgrade").is_some() {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = Response::new(Full::new(Bytes::new()).boxed());
        *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("upgrade", "websocket".parse().unwrap());
        r.headers_mut()
            .insert("connection", "Upgrade".parse().unwrap());
        // Echo the credential in the 101's headers: what a route must not let through.
        if let Some(auth) = req.headers().get("authorization") {
            r.headers_mut().insert("x-echo-authorization", auth.clone());
        }
        return Ok(r);
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let mut headers = serde_json::Map::new();
    for (k, v) in req.headers() {
        headers.insert(k.to_string(), v.to_str().unwrap_or("?").into());
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        // A body cut mid-way never completed a request.
        Err(_) => return Ok(Response::new(Full::new(Bytes::new()).boxed())),
    };
    received.lock().unwrap().push((uri.clone(), body.to_vec()));
    let json = serde_json::json!({
        "method": method,
        "path": uri,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut r = Response::new(Full::new(Bytes::from(json.to_string())).boxed());
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(r)
}

async fn serve_upstream<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: S,
    arrived: Arrivals,
    received: Received,
) {
    let service = service_fn(move |req| echo(arrived.clone(), received.clone(), req));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

impl Upstream {
    pub async fn start() -> Upstream {
        let ca = TestCa::new("upstream test CA");
        let (chain, key) = ca.leaf(UPSTREAM_NAMES);
        let mut server =
            rustls::ServerConfig::builder_with_provider(bottle_egress_proxy::tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http_port, https_port) = (
            http.local_addr().unwrap().port(),
            https.local_addr().unwrap().port(),
        );
        let arrived = Arrivals::default();
        let received = Received::default();
        let (log, r) = (arrived.clone(), received.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = http.accept().await {
                tokio::spawn(serve_upstream(s, log.clone(), r.clone()));
            }
        });
        let (log, r) = (arrived.clone(), received.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = https.accept().await {
                let acceptor = acceptor.clone();
                let (log, r) = (log.clone(), r.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        serve_upstream(tls, log, r).await;
                    }
                });
            }
        });
        Upstream {
            received,
            http_port,
            https_port,
            ca,
            arrived,
        }
    }
}

/// Everything one test needs.
pub struct Harness {
    pub addr: SocketAddr,
    pub audit: Arc<MemoryAudit>,
    pub net: Arc<TestNet>,
    pub handle: ProxyHandle,
    pub upstream: Upstream,
    pub proxy_ca: TestCa,
    pub dir: tempfile::TempDir,
    pub config: EgressConfig,
}

pub fn env(name: &str) -> Option<String> {
    match name {
        "GIT_TOKEN" => Some(GIT_TOKEN.into()),
        "TOK_TOKEN" => Some(TOK_TOKEN.into()),
        "DB_PASSWORD" => Some(DB_PASSWORD.into()),
        "SHORT" => Some("abc".into()),
        _ => None,
    }
}

/// The base configuration; `customize` adjusts it before the proxy starts.
pub async fn start(customize: impl FnOnce(&mut EgressConfig)) -> Harness {
    try_start(customize).await.expect("proxy starts")
}

/// [`start`], returning the proxy's refusal to start.
pub async fn try_start(
    customize: impl FnOnce(&mut EgressConfig),
) -> Result<Harness, bottle_egress_proxy::StartError> {
    let upstream = Upstream::start().await;
    let proxy_ca = TestCa::new("bottle test interception CA");
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    std::fs::write(path("ca.pem"), &proxy_ca.cert_pem).unwrap();
    std::fs::write(path("ca.key"), &proxy_ca.key_pem).unwrap();
    std::fs::write(path("upstream-ca.pem"), &upstream.ca.cert_pem).unwrap();
    let mut config = EgressConfig {
        version: FORMAT_VERSION,
        listen: "127.0.0.1:0".into(),
        allow: vec![
            "api.test".into(),
            "*.allowed.test".into(),
            "localhost".into(),
        ],
        firewall: true,
        upstream_proxy: None,
        tls: TlsConfig {
            ca_cert: path("ca.pem").display().to_string(),
            ca_key: path("ca.key").display().to_string(),
            upstream_roots: vec![path("upstream-ca.pem").display().to_string()],
        },
        routes: vec![
            Route {
                host: "git.test".into(),
                path_allowlist: vec!["/repos/o/r".into()],
                methods: vec![],
                auth: Some(RouteAuth {
                    scheme: AuthScheme::Bearer,
                    token_env: "GIT_TOKEN".into(),
                }),
            },
            Route {
                host: "tok.test".into(),
                path_allowlist: vec![],
                methods: vec![],
                auth: Some(RouteAuth {
                    scheme: AuthScheme::Token,
                    token_env: "TOK_TOKEN".into(),
                }),
            },
        ],
        passthrough: vec!["pass.test".into()],
        ssrf: SsrfConfig {
            allow_cidrs: vec!["127.0.0.0/8".into()],
        },
        dlp: DlpConfig {
            secret_env: vec!["DB_PASSWORD".into()],
            ..DlpConfig::default()
        },
        learn: false,
    };
    customize(&mut config);
    let net = Arc::new(TestNet::default());
    {
        let mut names = net.names.lock().unwrap();
        for n in UPSTREAM_NAMES {
            names.insert(n.to_string(), vec!["127.0.0.1".parse().unwrap()]);
        }
        names.insert("internal.test".into(), vec!["10.0.0.5".parse().unwrap()]);
        names.insert("meta.test".into(), vec!["169.254.169.254".parse().unwrap()]);
        names.insert(
            "mixed.test".into(),
            vec!["127.0.0.1".parse().unwrap(), "192.168.1.1".parse().unwrap()],
        );
    }
    let audit = Arc::new(MemoryAudit::default());
    let options = ProxyOptions {
        network: net.clone(),
        audit: audit.clone(),
        env: Arc::new(env),
    };
    let proxy = Proxy::bind(&config, options).await?;
    let addr = proxy.local_addr();
    let handle = proxy.handle();
    tokio::spawn(proxy.run());
    Ok(Harness {
        addr,
        audit,
        net,
        handle,
        upstream,
        proxy_ca,
        dir,
        config,
    })
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (head, then a Content-Length body) from `s`.
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> Resp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap_or(0);
        assert!(
            n > 0,
            "connection closed before a response; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("body in time")
            .unwrap();
        assert!(n > 0, "closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body[..len.min(body.len())]).to_string(),
    }
}

impl Harness {
    /// Sends raw request bytes on a new connection to the proxy.
    pub async fn send(&self, raw: &str) -> Resp {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        read_response(&mut s).await
    }

    /// `GET url` in proxy form, with extra header lines.
    pub async fn get(&self, url: &str, host: &str, extra: &str) -> Resp {
        self.send(&format!(
            "GET {url} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
        ))
        .await
    }

    /// Opens a CONNECT tunnel; returns the stream and the proxy's answer.
    pub async fn connect(&self, authority: &str, host_header: Option<&str>) -> (TcpStream, Resp) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let host = host_header.unwrap_or(authority);
        s.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let r = read_response(&mut s).await;
        (s, r)
    }

    /// A CONNECT tunnel with TLS inside, trusting the proxy's CA (interception).
    pub async fn tunnel(
        &self,
        host: &str,
        port: u16,
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let (s, r) = self.connect(&format!("{host}:{port}"), None).await;
        assert_eq!(r.status, 200, "CONNECT {host}: {}", r.body);
        let connector = TlsConnector::from(self.proxy_ca.client_config());
        connector
            .connect(ServerName::try_from(host.to_string()).unwrap(), s)
            .await
            .expect("TLS with the proxy's leaf")
    }

    /// One request inside an intercepted tunnel to `host` (the upstream's HTTPS port).
    pub async fn https(&self, host: &str, raw: &str) -> Resp {
        let mut tls = self.tunnel(host, self.upstream.https_port).await;
        tls.write_all(raw.as_bytes()).await.unwrap();
        read_response(&mut tls).await
    }

    /// Waits for an audit record matching `pred`.
    pub async fn audit_where(&self, pred: impl Fn(&AuditRecord) -> bool) -> AuditRecord {
        for _ in 0..200 {
            if let Some(r) = self.audit.records().into_iter().find(|r| pred(r)) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no matching audit record in {:#?}", self.audit.records());
    }

    /// Waits for a deny record for `host` and returns it.
    pub async fn denied(&self, host: &str) -> AuditRecord {
        self.audit_where(|r| r.host == host && r.decision == Decision::Deny)
            .await
    }

    /// Asserts nothing but loopback was ever dialled.
    pub fn assert_no_foreign_dials(&self) {
        assert!(
            self.net.foreign_dials.lock().unwrap().is_empty(),
            "dialled {:?}",
            self.net.foreign_dials
        );
    }

    /// Bodies of the requests to `path` that reached the upstream whole.
    pub fn arrived(&self, path: &str) -> Vec<Vec<u8>> {
        self.upstream
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(path))
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The requests that reached the upstream with `path` (the path and query as sent).
    pub fn arrived_at(&self, path: &str) -> Vec<Arrived> {
        let all = self.upstream.arrived.lock().unwrap();
        all.iter().filter(|a| a.path == path).cloned().collect()
    }

    pub fn http_url(&self, host: &str, path: &str) -> (String, String) {
        let authority = format!("{host}:{}", self.upstream.http_port);
        (format!("http://{authority}{path}"), authority)
    }
}
