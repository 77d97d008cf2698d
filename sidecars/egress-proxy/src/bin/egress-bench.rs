//! `egress-bench`: this proxy against mitmproxy (with an equivalent addon) and against no proxy,
//! on loopback, same workload and routes, in one run.
//!
//! ```text
//! cargo build --release -p bottle-egress-proxy
//! cargo run --release -p bottle-egress-proxy --bin egress-bench [-- --seconds 3 --connections 16]
//! ```
//!
//! For each of plain HTTP and intercepted HTTPS it prints requests/s (N keep-alive connections),
//! p50/p99 latency added over no proxy (one connection, sequential requests), peak RSS of the
//! proxy process (VmHWM) and start-to-ready time. Then it uploads one large body (200 MiB by
//! default, `--upload-mib`) through each proxy over intercepted HTTPS and prints the upload
//! throughput and the peak RSS of a fresh proxy process during it: the DLP scans bodies as they
//! stream, so RSS must stay flat whatever the size. mitmproxy is `mitmdump` from Debian
//! (`apt-get install -y mitmproxy`); without it the mitmproxy columns are skipped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use bottle_egress_config::{
    AuthScheme, DlpConfig, EgressConfig, FORMAT_VERSION, Route, RouteAuth, SsrfConfig, TlsConfig,
};

const HOST: &str = "127.0.0.1";
/// The plain-HTTP upstream's address: a host without a route, since a route's token is never sent
/// over plain HTTP (the proxy refuses). Linux answers the whole 127/8 on loopback.
const HTTP_HOST: &str = "127.0.0.2";

/// The host a scheme's requests go to: the route host over TLS, the unrouted one over plain HTTP.
fn target_host(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Http => HTTP_HOST,
        Scheme::Https => HOST,
    }
}
const TOKEN: &str = "bench-token-0123456789abcdef";
const ADDON: &str = include_str!("../../bench/mitm_allowlist.py");

/// Benchmark options.
#[derive(Debug, Parser)]
#[command(about = "egress proxy vs mitmproxy vs no proxy, on loopback")]
struct Args {
    /// Seconds of the throughput phase of each case.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrent keep-alive connections in the throughput phase.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Most sequential requests in the latency phase (also bounded to `seconds`).
    #[arg(long, default_value_t = 3000)]
    latency_requests: usize,
    /// Size of the streaming upload, in MiB (0 skips it).
    #[arg(long, default_value_t = 200)]
    upload_mib: u64,
    /// Seconds each proxy may take for the upload before it is reported as not done.
    #[arg(long, default_value_t = 300)]
    upload_timeout: u64,
    /// Skip mitmproxy even when it is installed.
    #[arg(long)]
    no_mitm: bool,
}

/// Which proxy a case goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    None,
    Proxy(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// Results of one proxy on one scheme.
#[derive(Debug, Clone, Default)]
struct Measured {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

/// One proxy's results: name, [plain, intercepted], peak RSS (KiB), start-to-ready.
type Row = (String, [Option<Measured>; 2], Option<u64>, Option<Duration>);

struct Material {
    ca_cert_pem: String,
    ca_key_pem: String,
    ca_der: CertificateDer<'static>,
    upstream_ca_pem: String,
    upstream_chain: Vec<CertificateDer<'static>>,
    upstream_key: PrivateKeyDer<'static>,
}

fn ca(name: &str) -> anyhow::Result<(CertificateParams, KeyPair, rcgen::Certificate)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key)?;
    Ok((params, key, cert))
}

fn material() -> anyhow::Result<Material> {
    let (_, key, cert) = ca("bench interception CA")?;
    let (up_params, up_key, up_cert) = ca("bench upstream CA")?;
    let issuer = Issuer::new(up_params, up_key);
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec![HOST.to_string(), "localhost".into()])?
        .signed_by(&leaf_key, &issuer)?;
    Ok(Material {
        ca_cert_pem: cert.pem(),
        ca_key_pem: key.serialize_pem(),
        ca_der: cert.der().clone(),
        upstream_ca_pem: up_cert.pem(),
        upstream_chain: vec![leaf.der().clone()],
        upstream_key: PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(anyhow::Error::msg)?,
    })
}

async fn upstream_service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/upload" {
        return Ok(Response::new(Full::new(Bytes::from_static(
            b"hello from the bench upstream\n",
        ))));
    }
    // Drain the upload frame by frame, keeping none of it.
    let mut body = req.into_body();
    let mut received = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        received += frame.data_ref().map_or(0, |d| d.len() as u64);
    }
    Ok(Response::new(Full::new(Bytes::from(received.to_string()))))
}

/// A generated request body of `left` bytes, in 64 KiB chunks of text-like bytes.
struct UploadBody {
    left: u64,
    chunk: Bytes,
}

impl UploadBody {
    fn new(len: u64) -> UploadBody {
        // Words of letters and digits (xorshift), like a long conversation, not a run of zeros.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let chunk: Vec<u8> = (0..64 * 1024)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 8 == 7 {
                    b' '
                } else {
                    b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize]
                }
            })
            .collect();
        UploadBody {
            left: len,
            chunk: Bytes::from(chunk),
        }
    }
}

impl hyper::body::Body for UploadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        let data = self.chunk.slice(..n as usize);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

/// Uploads `mib` MiB over HTTPS (intercepted when via a proxy); returns MiB/s.
async fn upload(
    via: Via,
    upstream: (u16, u16),
    tls: &Arc<rustls::ClientConfig>,
    mib: u64,
) -> anyhow::Result<f64> {
    let (mut sender, uri) = open::<UploadBody>(via, Scheme::Https, upstream, tls).await?;
    let uri = uri.replace("/bench", "/upload");
    sender.ready().await?;
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("host", format!("{HOST}:{}", upstream.1))
        .body(UploadBody::new(mib << 20))?;
    let start = Instant::now();
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let secs = start.elapsed().as_secs_f64();
    let received: u64 = String::from_utf8_lossy(&body).parse().unwrap_or(0);
    if !status.is_success() || received != mib << 20 {
        bail!("upload: status {status}, upstream received {received} bytes");
    }
    Ok(mib as f64 / secs)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S) {
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service_fn(upstream_service))
        .await;
}

/// Starts the upstream; returns (http port, https port).
async fn start_upstream(m: &Material) -> anyhow::Result<(u16, u16)> {
    let mut server =
        rustls::ServerConfig::builder_with_provider(bottle_egress_proxy::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(m.upstream_chain.clone(), m.upstream_key.clone_key())?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let http = TcpListener::bind((HTTP_HOST, 0)).await?;
    let https = TcpListener::bind((HOST, 0)).await?;
    let ports = (http.local_addr()?.port(), https.local_addr()?.port());
    tokio::spawn(async move {
        while let Ok((s, _)) = http.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(serve(s));
        }
    });
    tokio::spawn(async move {
        while let Ok((s, _)) = https.accept().await {
            let _ = s.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    serve(tls).await;
                }
            });
        }
    });
    Ok(ports)
}

fn client_config(roots: &[CertificateDer<'static>]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone())?;
    }
    let mut c = rustls::ClientConfig::builder_with_provider(bottle_egress_proxy::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// One keep-alive client connection, ready to send requests.
async fn open<B>(
    via: Via,
    scheme: Scheme,
    upstream: (u16, u16),
    tls: &Arc<rustls::ClientConfig>,
) -> anyhow::Result<(SendRequest<B>, String)>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let port = match scheme {
        Scheme::Http => upstream.0,
        Scheme::Https => upstream.1,
    };
    let authority = format!("{}:{port}", target_host(scheme));
    let (io, uri): (Box<dyn Io>, String) = match (via, scheme) {
        (Via::None, Scheme::Http) => (Box::new(tcp(&authority).await?), "/bench".into()),
        (Via::Proxy(p), Scheme::Http) => (
            Box::new(tcp(&format!("{HOST}:{p}")).await?),
            format!("http://{authority}/bench"),
        ),
        (Via::None, Scheme::Https) => {
            let s = tcp(&authority).await?;
            let name = ServerName::try_from(HOST.to_string())?;
            (
                Box::new(TlsConnector::from(tls.clone()).connect(name, s).await?),
                "/bench".into(),
            )
        }
        (Via::Proxy(p), Scheme::Https) => {
            let mut s = tcp(&format!("{HOST}:{p}")).await?;
            s.write_all(
                format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
            )
            .await?;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if s.read(&mut byte).await? == 0 {
                    bail!("proxy closed during CONNECT");
                }
                head.push(byte[0]);
            }
            if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
                bail!("CONNECT refused: {}", String::from_utf8_lossy(&head));
            }
            let name = ServerName::try_from(HOST.to_string())?;
            (
                Box::new(TlsConnector::from(tls.clone()).connect(name, s).await?),
                "/bench".into(),
            )
        }
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok((sender, uri))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn tcp(addr: &str) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn one(
    sender: &mut SendRequest<Empty<Bytes>>,
    uri: &str,
    authority: &str,
) -> anyhow::Result<()> {
    sender.ready().await?;
    // The placeholder, as Claude Code sends it: the route refuses any other credential.
    let req = Request::builder()
        .uri(uri)
        .header("host", authority)
        .header(
            "authorization",
            format!("Bearer {}", bottle_egress_config::PLACEHOLDER_TOKEN),
        )
        .body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    let ok = resp.status().is_success();
    resp.into_body().collect().await?;
    if !ok {
        bail!("status not 2xx");
    }
    Ok(())
}

async fn measure(
    via: Via,
    scheme: Scheme,
    upstream: (u16, u16),
    tls: &Arc<rustls::ClientConfig>,
    args: &Args,
) -> anyhow::Result<Measured> {
    let port = match scheme {
        Scheme::Http => upstream.0,
        Scheme::Https => upstream.1,
    };
    let authority = format!("{}:{port}", target_host(scheme));
    let budget = Duration::from_secs_f64(args.seconds);
    // Latency: one connection, sequential requests.
    let (mut sender, uri) = open::<Empty<Bytes>>(via, scheme, upstream, tls).await?;
    for _ in 0..50 {
        one(&mut sender, &uri, &authority).await?;
    }
    let mut lat = Vec::with_capacity(args.latency_requests);
    let start = Instant::now();
    while lat.len() < args.latency_requests && start.elapsed() < budget {
        let t = Instant::now();
        one(&mut sender, &uri, &authority).await?;
        lat.push(t.elapsed());
    }
    drop(sender);
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let (p50, p99) = (pct(0.50), pct(0.99));

    // Throughput: N connections, as many requests as fit in the budget.
    let barrier = Arc::new(tokio::sync::Barrier::new(args.connections + 1));
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (mut sender, uri) = open::<Empty<Bytes>>(via, scheme, upstream, tls).await?;
        let barrier = barrier.clone();
        let authority = authority.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let deadline = Instant::now() + budget;
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                match one(&mut sender, &uri, &authority).await {
                    Ok(()) => ok += 1,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (ok, errors)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e) = t.await?;
        ok += o;
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Measured {
        rps: ok as f64 / elapsed,
        p50,
        p99,
        errors,
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((HOST, 0))?.local_addr()?.port())
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A proxy child process, killed on drop.
struct ProxyProcess {
    name: &'static str,
    child: Child,
    port: u16,
    ready: Duration,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(
    port: u16,
    health: bool,
    child: &mut Child,
    started: Instant,
) -> anyhow::Result<Duration> {
    let addr: SocketAddr = format!("{HOST}:{port}").parse()?;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("exited before it was ready: {status}");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("not ready after 60 s");
        }
        if let Ok(mut s) = TcpStream::connect(addr).await {
            if !health {
                return Ok(started.elapsed());
            }
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).await.is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                return Ok(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

async fn start_ours(dir: &Path, m: &Material) -> anyhow::Result<ProxyProcess> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("bottle-egress-proxy");
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p bottle-egress-proxy`",
            bin.display()
        );
    }
    let port = free_port()?;
    let path = |n: &str| dir.join(n).display().to_string();
    std::fs::write(dir.join("ca.pem"), &m.ca_cert_pem)?;
    std::fs::write(dir.join("ca.key"), &m.ca_key_pem)?;
    std::fs::write(dir.join("upstream-ca.pem"), &m.upstream_ca_pem)?;
    let config = EgressConfig {
        version: FORMAT_VERSION,
        listen: format!("{HOST}:{port}"),
        allow: vec![HOST.into(), HTTP_HOST.into()],
        firewall: true,
        upstream_proxy: None,
        tls: TlsConfig {
            ca_cert: path("ca.pem"),
            ca_key: path("ca.key"),
            upstream_roots: vec![path("upstream-ca.pem")],
        },
        routes: vec![Route {
            host: HOST.into(),
            path_allowlist: vec![],
            methods: vec!["GET".into(), "POST".into()],
            auth: Some(RouteAuth {
                scheme: AuthScheme::Bearer,
                token_env: "BENCH_TOKEN".into(),
            }),
        }],
        passthrough: vec![],
        ssrf: SsrfConfig {
            allow_cidrs: vec!["127.0.0.0/8".into()],
        },
        dlp: DlpConfig::default(),
        learn: false,
    };
    let config_path = dir.join("egress-proxy.yaml");
    std::fs::write(&config_path, yaml_serde::to_string(&config)?)?;
    let started = Instant::now();
    let mut child = Command::new(&bin)
        .arg("--config")
        .arg(&config_path)
        .env("BENCH_TOKEN", TOKEN)
        .env("BOTTLE_PROXY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let ready = wait_ready(port, true, &mut child, started).await?;
    Ok(ProxyProcess {
        name: "bottle-egress-proxy",
        child,
        port,
        ready,
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

async fn start_mitm(dir: &Path, m: &Material, mitmdump: &Path) -> anyhow::Result<ProxyProcess> {
    let port = free_port()?;
    let confdir = dir.join("mitm");
    std::fs::create_dir_all(&confdir)?;
    std::fs::write(
        confdir.join("mitmproxy-ca.pem"),
        format!("{}{}", m.ca_key_pem, m.ca_cert_pem),
    )?;
    std::fs::write(dir.join("upstream-ca.pem"), &m.upstream_ca_pem)?;
    let addon = dir.join("mitm_allowlist.py");
    std::fs::write(&addon, ADDON)?;
    let started = Instant::now();
    let mut child = Command::new(mitmdump)
        .args([
            "--listen-host",
            HOST,
            "--listen-port",
            &port.to_string(),
            "-q",
        ])
        .args(["--set", &format!("confdir={}", confdir.display())])
        .args(["--set", "connection_strategy=lazy"])
        .args([
            "--set",
            &format!(
                "ssl_verify_upstream_trusted_ca={}",
                dir.join("upstream-ca.pem").display()
            ),
        ])
        .arg("-s")
        .arg(&addon)
        .env("BENCH_ALLOW", format!("{HOST},{HTTP_HOST}"))
        .env("BENCH_ROUTES", HOST)
        .env("BENCH_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run mitmdump")?;
    let ready = wait_ready(port, false, &mut child, started).await?;
    Ok(ProxyProcess {
        name: "mitmproxy",
        child,
        port,
        ready,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn added(proxy: Duration, none: Duration) -> f64 {
    ms(proxy) - ms(none)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile_dir()?;
    let m = material()?;
    let upstream = start_upstream(&m).await?;
    let direct_tls = client_config(std::slice::from_ref(&m.upstream_chain_root()))?;
    let proxied_tls = client_config(std::slice::from_ref(&m.ca_der))?;

    let mitmdump = if args.no_mitm {
        None
    } else {
        find_in_path("mitmdump")
    };
    if mitmdump.is_none() && !args.no_mitm {
        eprintln!(
            "mitmproxy (mitmdump) not found: install it with `apt-get install -y mitmproxy`; skipping it"
        );
    }

    println!(
        "egress-bench: {} connections x {:.1} s throughput, up to {} sequential requests for latency, loopback",
        args.connections, args.seconds, args.latency_requests
    );
    let mut rows: Vec<Row> = Vec::new();

    let none_http = measure(Via::None, Scheme::Http, upstream, &direct_tls, &args).await?;
    let none_https = measure(Via::None, Scheme::Https, upstream, &direct_tls, &args).await?;
    rows.push((
        "no proxy".into(),
        [Some(none_http.clone()), Some(none_https.clone())],
        None,
        None,
    ));

    let ours = start_ours(&dir, &m).await?;
    let ours_http = measure(
        Via::Proxy(ours.port),
        Scheme::Http,
        upstream,
        &direct_tls,
        &args,
    )
    .await?;
    let ours_https = measure(
        Via::Proxy(ours.port),
        Scheme::Https,
        upstream,
        &proxied_tls,
        &args,
    )
    .await?;
    rows.push((
        ours.name.into(),
        [Some(ours_http), Some(ours_https)],
        vm_hwm_kib(ours.child.id()),
        Some(ours.ready),
    ));
    drop(ours);

    if let Some(mitmdump) = &mitmdump {
        let mitm = start_mitm(&dir, &m, mitmdump).await?;
        let http = measure(
            Via::Proxy(mitm.port),
            Scheme::Http,
            upstream,
            &direct_tls,
            &args,
        )
        .await;
        let https = measure(
            Via::Proxy(mitm.port),
            Scheme::Https,
            upstream,
            &proxied_tls,
            &args,
        )
        .await;
        if let Err(e) = &http {
            eprintln!("mitmproxy plain HTTP failed: {e:#}");
        }
        if let Err(e) = &https {
            eprintln!("mitmproxy HTTPS failed: {e:#}");
        }
        rows.push((
            mitm.name.into(),
            [http.ok(), https.ok()],
            vm_hwm_kib(mitm.child.id()),
            Some(mitm.ready),
        ));
    }

    println!();
    println!(
        "{:<22} {:<6} {:>10} {:>10} {:>10} {:>13} {:>13} {:>9} {:>10}",
        "proxy", "case", "req/s", "p50 ms", "p99 ms", "+p50 ms", "+p99 ms", "RSS MiB", "ready ms"
    );
    for (name, cases, rss, ready) in &rows {
        for (i, case) in cases.iter().enumerate() {
            let (label, none) = if i == 0 {
                ("http", &none_http)
            } else {
                ("https", &none_https)
            };
            let Some(c) = case else {
                println!("{name:<22} {label:<6} {:>10}", "failed");
                continue;
            };
            println!(
                "{:<22} {:<6} {:>10.0} {:>10.3} {:>10.3} {:>13.3} {:>13.3} {:>9} {:>10}{}",
                name,
                label,
                c.rps,
                ms(c.p50),
                ms(c.p99),
                added(c.p50, none.p50),
                added(c.p99, none.p99),
                rss.map(|k| format!("{:.1}", k as f64 / 1024.0))
                    .unwrap_or_else(|| "-".into()),
                ready
                    .map(|r| format!("{:.1}", ms(r)))
                    .unwrap_or_else(|| "-".into()),
                if c.errors > 0 {
                    format!("  ({} errors)", c.errors)
                } else {
                    String::new()
                }
            );
        }
    }
    if rows.len() == 3 {
        let (ours, mitm) = (&rows[1], &rows[2]);
        println!();
        println!(
            "ratios, bottle-egress-proxy vs mitmproxy (target: req/s >= 10x, added p99 <= 1/5, RSS <= 1/4):"
        );
        for i in 0..2 {
            let label = if i == 0 { "http " } else { "https" };
            let none = if i == 0 { &none_http } else { &none_https };
            if let (Some(o), Some(mm)) = (&ours.1[i], &mitm.1[i]) {
                println!(
                    "  {label}: req/s {:.1}x, added p99 {:.3}x of mitmproxy's",
                    o.rps / mm.rps,
                    added(o.p99, none.p99).max(0.0) / added(mm.p99, none.p99).max(1e-9)
                );
            }
        }
        if let (Some(o), Some(mm)) = (ours.2, mitm.2) {
            println!("  peak RSS: {:.3}x of mitmproxy's", o as f64 / mm as f64);
        }
    }
    println!();
    println!("targets: added p50 vs no proxy <= 0.3 ms plain, <= 1.5 ms intercepted");
    if args.upload_mib > 0 {
        upload_table(
            &args,
            &dir,
            &m,
            upstream,
            &direct_tls,
            &proxied_tls,
            mitmdump.as_deref(),
        )
        .await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The streaming upload through each proxy: throughput and the peak RSS of a fresh process.
async fn upload_table(
    args: &Args,
    dir: &Path,
    m: &Material,
    upstream: (u16, u16),
    direct_tls: &Arc<rustls::ClientConfig>,
    proxied_tls: &Arc<rustls::ClientConfig>,
    mitmdump: Option<&Path>,
) -> anyhow::Result<()> {
    let mib = args.upload_mib;
    println!();
    println!("streaming upload of {mib} MiB over intercepted HTTPS (fresh proxy process each):");
    println!(
        "{:<22} {:>10} {:>16} {:>16}",
        "proxy", "MiB/s", "RSS idle MiB", "RSS peak MiB"
    );
    let none = upload(Via::None, upstream, direct_tls, mib).await?;
    println!("{:<22} {:>10.1} {:>16} {:>16}", "no proxy", none, "-", "-");
    let mut procs = vec![start_ours(dir, m).await?];
    if let Some(mitmdump) = mitmdump {
        procs.push(start_mitm(dir, m, mitmdump).await?);
    }
    let kib = |k: Option<u64>| {
        k.map(|k| format!("{:.1}", k as f64 / 1024.0))
            .unwrap_or_else(|| "-".into())
    };
    for p in &procs {
        let idle = vm_hwm_kib(p.child.id());
        // A proxy that buffers whole bodies may take very long; its RSS so far still tells.
        let limit = Duration::from_secs(args.upload_timeout);
        let result = tokio::time::timeout(
            limit,
            upload(Via::Proxy(p.port), upstream, proxied_tls, mib),
        )
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "not done after {} s (RSS so far: {} MiB)",
                limit.as_secs(),
                kib(vm_hwm_kib(p.child.id()))
            ))
        });
        match result {
            Ok(rate) => println!(
                "{:<22} {:>10.1} {:>16} {:>16}",
                p.name,
                rate,
                kib(idle),
                kib(vm_hwm_kib(p.child.id()))
            ),
            Err(e) => println!("{:<22} failed: {e:#}", p.name),
        }
    }
    Ok(())
}

impl Material {
    /// The upstream's root, for direct (no proxy) TLS.
    fn upstream_chain_root(&self) -> CertificateDer<'static> {
        let pem = self.upstream_ca_pem.as_bytes();
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem).expect("own PEM")
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("egress-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
