//! The `bottle-egress-proxy` program itself: config from a file, health, audit lines on stdout,
//! SIGHUP reloads (a bad file keeps the old policy), clear errors for a bad config.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bottle-egress-proxy");

fn request(port: u16, raw: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn write_config(dir: &std::path::Path, port: u16, allow: &str) -> std::path::PathBuf {
    let ca = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join("ca.key"), ca.signing_key.serialize_pem()).unwrap();
    let path = dir.join("egress-proxy.yaml");
    let yaml = format!(
        "version: 1\nlisten: 127.0.0.1:{port}\nallow: [{allow}]\ntls:\n  ca_cert: {0}/ca.pem\n  ca_key: {0}/ca.key\nssrf:\n  allow_cidrs: [127.0.0.0/8]\n",
        dir.display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn runs_audits_and_reloads_on_sighup() {
    // A one-line upstream.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = upstream.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in upstream.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), port, "");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    loop {
        let health = TcpStream::connect(("127.0.0.1", port)).ok().map(|_| {
            request(
                port,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
        });
        if health.is_some_and(|h| h.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not ready");
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!("ready after {:?}", started.elapsed());
    let get = format!(
        "GET http://127.0.0.1:{up_port}/x HTTP/1.1\r\nHost: 127.0.0.1:{up_port}\r\nConnection: close\r\n\r\n"
    );
    assert!(request(port, &get).starts_with("HTTP/1.1 403"));
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let audit: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(audit["decision"], "deny");
    assert_eq!(audit["host"], "127.0.0.1");

    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .arg("-HUP")
                .arg(pid.to_string())
                .status()
                .unwrap()
                .success()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    write_config(dir.path(), port, "127.0.0.1");
    hup(child.id());
    assert!(
        request(port, &get).starts_with("HTTP/1.1 200"),
        "reload took effect"
    );
    std::fs::write(&config, "version: 1\nlisten: nonsense\n").unwrap();
    hup(child.id());
    assert!(
        request(port, &get).starts_with("HTTP/1.1 200"),
        "bad reload kept the old config"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "version: 2\nlisten: here\ntls: {ca_cert: /x, ca_key: /y}\nssrf: {allow_cidrs: [bad]}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["version", "listen", "ssrf.allow_cidrs[0]"] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
}
