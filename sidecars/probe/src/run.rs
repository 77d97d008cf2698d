//! Running a self-test [`Spec`]: every control at once, then (only after them) every probe at
//! once, each phase bounded in time. A check still running at its phase's end is reported as
//! [`Outcome::Timeout`]: for a probe that means nothing answered within a time the controls show
//! is ample for anything on the bottle's own links.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::fingerprint;
use crate::spec::{Check, Op, Outcome, Phase, Seen, Spec};

/// How much of the files scanned for a fingerprint is read at most (the launcher put them there,
/// so this bounds only a mistake).
const SCAN_LIMIT: u64 = 64 << 20;

/// Run both phases; one result per check, in the spec's order.
pub fn run(spec: &Spec) -> Vec<Seen> {
    let mut seen = phase(spec, Phase::Control, Duration::from_millis(spec.control_ms));
    seen.extend(phase(
        spec,
        Phase::Probe,
        Duration::from_millis(spec.probe_ms),
    ));
    spec.checks
        .iter()
        .filter_map(|c| seen.iter().find(|s| s.id == c.id).cloned())
        .collect()
}

fn phase(spec: &Spec, which: Phase, budget: Duration) -> Vec<Seen> {
    let checks: Vec<&Check> = spec.checks.iter().filter(|c| c.phase == which).collect();
    let (send, receive) = mpsc::channel();
    for check in &checks {
        let (send, check) = (send.clone(), (*check).clone());
        // Detached: a lookup stuck in the resolver must not hold the phase past its budget.
        std::thread::spawn(move || {
            let (outcome, detail) = one(&check.op, budget);
            let _ = send.send(Seen {
                id: check.id,
                outcome,
                detail,
            });
        });
    }
    let deadline = Instant::now() + budget;
    let mut seen = Vec::new();
    while seen.len() < checks.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match receive.recv_timeout(left) {
            Ok(result) => seen.push(result),
            Err(_) => break,
        }
    }
    for check in checks {
        if !seen.iter().any(|s| s.id == check.id) {
            seen.push(Seen {
                id: check.id.clone(),
                outcome: Outcome::Timeout,
                detail: format!("no answer within {} ms", budget.as_millis()),
            });
        }
    }
    seen
}

fn one(op: &Op, budget: Duration) -> (Outcome, String) {
    match op {
        Op::Connect { host, port } => connect(host, *port, budget),
        Op::Resolve { name } => resolve(name),
        Op::Http { host, port, target } => http(host, *port, target, budget),
        Op::Path { path } => match std::fs::symlink_metadata(path) {
            Ok(meta) => (Outcome::Exists, format!("{:?}", meta.file_type())),
            Err(e) => (Outcome::Absent, e.to_string()),
        },
        Op::ScanEnv { needle } => scan(needle, &["/proc/1/environ".to_owned()]),
        Op::ScanFiles { needle, paths } => scan(needle, paths),
    }
}

fn addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match (host, port).to_socket_addrs() {
        Ok(list) => Ok(list.collect()),
        Err(e) => Err(format!("`{host}` did not resolve: {e}")),
    }
}

fn connect(host: &str, port: u16, budget: Duration) -> (Outcome, String) {
    let list = match addresses(host, port) {
        Ok(list) => list,
        Err(e) => return (Outcome::Closed, e),
    };
    let (mut errors, mut outcome) = (Vec::new(), Outcome::Closed);
    for addr in list {
        match TcpStream::connect_timeout(&addr, budget) {
            Ok(_) => return (Outcome::Open, format!("connected to {addr}")),
            Err(e) => {
                outcome = not_reached(&e);
                errors.push(format!("{addr}: {e}"));
            }
        }
    }
    (outcome, errors.join("; "))
}

fn resolve(name: &str) -> (Outcome, String) {
    match addresses(name, 0) {
        Ok(list) if !list.is_empty() => {
            let ips: Vec<String> = list.iter().map(|a| a.ip().to_string()).collect();
            (Outcome::Resolved, ips.join(" "))
        }
        Ok(_) => (Outcome::Unresolved, "no addresses".into()),
        Err(e) => (Outcome::Unresolved, e),
    }
}

fn http(host: &str, port: u16, target: &str, budget: Duration) -> (Outcome, String) {
    let addr = match addresses(host, port).map(|l| l.into_iter().next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => return (Outcome::Closed, format!("`{host}` has no address")),
        Err(e) => return (Outcome::Closed, e),
    };
    let exchange = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, budget)?;
        stream.set_read_timeout(Some(budget))?;
        let authority = target
            .strip_prefix("http://")
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
            .unwrap_or_else(|| format!("{host}:{port}"));
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes())?;
        let mut head = [0u8; 256];
        let n = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    match exchange() {
        Ok(head) => {
            let status_line = head.lines().next().unwrap_or("").to_owned();
            match status_line.split(' ').nth(1).and_then(|s| s.parse().ok()) {
                Some(code) => (Outcome::Status(code), status_line),
                None => (
                    Outcome::Error,
                    format!("not an HTTP answer: `{status_line}`"),
                ),
            }
        }
        Err(e) => (not_reached(&e), format!("{addr}: {e}")),
    }
}

/// A timeout is told apart from a refusal, so the report says which.
fn not_reached(e: &std::io::Error) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Outcome::Timeout,
        _ => Outcome::Closed,
    }
}

fn scan(needle: &str, paths: &[String]) -> (Outcome, String) {
    let needle = match fingerprint::parse(needle) {
        Ok(needle) => needle,
        Err(e) => return (Outcome::Error, e),
    };
    let mut files = Vec::new();
    for path in paths {
        collect(Path::new(path), &mut files, 0);
    }
    let mut read = 0;
    for file in &files {
        let Ok(handle) = std::fs::File::open(file) else {
            continue;
        };
        let mut bytes = Vec::new();
        if handle.take(SCAN_LIMIT).read_to_end(&mut bytes).is_err() {
            continue;
        }
        read += 1;
        if needle.found_in(&bytes) {
            return (Outcome::Found, file.display().to_string());
        }
    }
    (
        Outcome::Clean,
        format!("{read} of {} file(s) readable, none holds it", files.len()),
    )
}

/// Regular files at or below `path`, without following symlinks (a link the agent could plant
/// later is not what the host put there).
fn collect(path: &Path, out: &mut Vec<std::path::PathBuf>, depth: usize) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_file() {
        out.push(path.to_owned());
    } else if meta.is_dir() && depth < 16 {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect(&entry.path(), out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{Needle, format};
    use crate::spec::Check;
    use std::net::TcpListener;

    fn check(id: &str, phase: Phase, op: Op) -> Check {
        Check {
            id: id.into(),
            phase,
            op,
        }
    }

    #[test]
    fn controls_and_probes_report_what_they_saw() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = open.local_addr().unwrap().port();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempdir();
        std::fs::write(
            dir.join("prompt"),
            b"you are an agent; token=route-token-xyz",
        )
        .unwrap();
        let needle = format(&Needle::of(b"route-token-xyz", [7, 11]));
        let other = format(&Needle::of(b"something-else", [7, 11]));
        let spec = Spec {
            control_ms: 2000,
            probe_ms: 500,
            checks: vec![
                check(
                    "c1",
                    Phase::Control,
                    Op::Connect {
                        host: "127.0.0.1".into(),
                        port,
                    },
                ),
                check(
                    "c2",
                    Phase::Control,
                    Op::ScanFiles {
                        needle,
                        paths: vec![dir.display().to_string()],
                    },
                ),
                check(
                    "p1",
                    Phase::Probe,
                    Op::Connect {
                        host: "127.0.0.1".into(),
                        port: closed,
                    },
                ),
                check(
                    "p2",
                    Phase::Probe,
                    Op::Path {
                        path: "/no/such/docker.sock".into(),
                    },
                ),
                check(
                    "p3",
                    Phase::Probe,
                    Op::ScanFiles {
                        needle: other,
                        paths: vec![dir.display().to_string()],
                    },
                ),
            ],
        };
        let seen = run(&spec);
        let outcomes: Vec<(String, Outcome)> =
            seen.iter().map(|s| (s.id.clone(), s.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("c1".into(), Outcome::Open),
                ("c2".into(), Outcome::Found),
                ("p1".into(), Outcome::Closed),
                ("p2".into(), Outcome::Absent),
                ("p3".into(), Outcome::Clean),
            ]
        );
    }

    #[test]
    fn a_server_that_never_answers_is_a_timeout_within_the_budget() {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let spec = Spec {
            control_ms: 100,
            probe_ms: 100,
            checks: vec![check(
                "p1",
                Phase::Probe,
                Op::Http {
                    host: "127.0.0.1".into(),
                    port,
                    target: "http://x.invalid/".into(),
                },
            )],
        };
        let started = Instant::now();
        let seen = run(&spec);
        assert_eq!(seen[0].outcome, Outcome::Timeout, "{seen:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(silent);
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bottle-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
