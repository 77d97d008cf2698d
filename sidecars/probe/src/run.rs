//! Running a self-test [`Spec`], in the agent, while the launcher goes on provisioning it:
//!
//! 1. every control that needs no placed file, at once, within `control_ms`;
//! 2. then every probe that needs no placed file, at once; they run until the report;
//! 3. on [`Signal::FilesPlaced`] the file scans: their controls, then their probes;
//! 4. on [`Signal::End`], once every probe concluded or their window passed, the report.
//!
//! The window is the least time a probe gets: `max(floor, factor × the slowest network control)`,
//! since everything the agent may reach is on its own bridge and answered a control in that time.
//! It is a floor, not a deadline: probes keep trying until the report, however long the launch
//! takes meanwhile, and one that connects (or resolves, or answers) at any time before it counts
//! as reached, never as blocked. A probe still pending at the report is [`Outcome::Timeout`], with
//! how long it had.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::fingerprint;
use crate::spec::{Op, Outcome, Phase, Seen, Signal, Spec, Timing};

/// How much of the files scanned for a fingerprint is read at most (the launcher put them there,
/// so this bounds only a mistake).
const SCAN_LIMIT: u64 = 64 << 20;

/// How long the prober waits for a signal from a launcher that went quiet (it closes the input
/// when it is gone, so this bounds only a stuck engine).
const SIGNAL_WAIT: Duration = Duration::from_secs(120);

/// How long a single connection or read may block; the phases decide what counts, this only
/// bounds a detached thread.
const IO_LIMIT: Duration = Duration::from_secs(120);

/// One finished check and how long it took.
struct Done {
    seen: Seen,
    took: Duration,
}

/// The checks in flight and what came back.
struct Runner<'a> {
    spec: &'a Spec,
    send: Sender<Done>,
    receive: Receiver<Done>,
    done: HashMap<String, Done>,
}

/// Run every check as the module says; one result per check in the spec's order, and the timing.
pub fn run(spec: &Spec, signals: &Receiver<Signal>) -> (Vec<Seen>, Timing) {
    let (send, receive) = mpsc::channel();
    let mut runner = Runner {
        spec,
        send,
        receive,
        done: HashMap::new(),
    };
    let control_wait = Duration::from_millis(spec.control_ms);
    let controls = runner.start(Phase::Control, false);
    runner.gather(&controls, Instant::now() + control_wait);
    let slowest = runner.slowest_network(&controls);
    let window =
        Duration::from_millis(spec.probe_floor_ms).max(slowest.saturating_mul(spec.probe_factor));
    let probes_started = Instant::now();
    let probes = runner.start(Phase::Probe, false);

    // The scans look only at what is there, so they conclude; they get the controls' time.
    let ended = wait_for(signals, Signal::FilesPlaced);
    let file_controls = runner.start(Phase::Control, true);
    runner.gather(&file_controls, Instant::now() + control_wait);
    let file_probes = runner.start(Phase::Probe, true);
    runner.gather(&file_probes, Instant::now() + control_wait);

    if !ended {
        wait_for(signals, Signal::End);
    }
    runner.gather(&probes, probes_started + window);
    let waited = probes_started.elapsed();
    let timing = Timing {
        slowest_control_us: slowest.as_micros() as u64,
        window_ms: window.as_millis() as u64,
        waited_ms: waited.as_millis() as u64,
    };
    (runner.report(control_wait, waited), timing)
}

/// Wait for `wanted` (or anything after it); `true` when the input ended on the way, which means
/// every signal.
fn wait_for(signals: &Receiver<Signal>, wanted: Signal) -> bool {
    let deadline = Instant::now() + SIGNAL_WAIT;
    loop {
        match signals.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Signal::End) => return true,
            Ok(signal) if signal == wanted => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}

impl Runner<'_> {
    /// Start every check of `phase` that does (or does not) need placed files; their ids.
    fn start(&self, phase: Phase, placed_files: bool) -> Vec<String> {
        let mut ids = Vec::new();
        for check in &self.spec.checks {
            if check.phase != phase || check.op.needs_placed_files() != placed_files {
                continue;
            }
            let (send, check) = (self.send.clone(), check.clone());
            ids.push(check.id.clone());
            // Detached: a lookup stuck in the resolver or a silently dropped SYN must not hold the
            // report; the process's exit ends the thread.
            std::thread::spawn(move || {
                let started = Instant::now();
                let (outcome, detail) = one(&check.op);
                let _ = send.send(Done {
                    seen: Seen {
                        id: check.id,
                        outcome,
                        detail,
                    },
                    took: started.elapsed(),
                });
            });
        }
        ids
    }

    /// Take results until every one of `ids` is in or `deadline` passed.
    fn gather(&mut self, ids: &[String], deadline: Instant) {
        while ids.iter().any(|id| !self.done.contains_key(id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receive.recv_timeout(left) {
                Ok(done) => {
                    self.done.insert(done.seen.id.clone(), done);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        // Whatever else finished meanwhile counts too (a late connection is a connection).
        while let Ok(done) = self.receive.try_recv() {
            self.done.insert(done.seen.id.clone(), done);
        }
    }

    /// The slowest of these controls that went over the network and answered.
    fn slowest_network(&self, ids: &[String]) -> Duration {
        ids.iter()
            .filter(|id| {
                self.spec
                    .checks
                    .iter()
                    .any(|c| &c.id == *id && c.op.is_network())
            })
            .filter_map(|id| self.done.get(id).map(|d| d.took))
            .max()
            .unwrap_or_default()
    }

    /// One line per check, in the spec's order; what has not concluded is a timeout.
    fn report(mut self, control_wait: Duration, waited: Duration) -> Vec<Seen> {
        self.spec
            .checks
            .iter()
            .map(|check| match self.done.remove(&check.id) {
                Some(done) => done.seen,
                None => Seen {
                    id: check.id.clone(),
                    outcome: Outcome::Timeout,
                    detail: match check.phase {
                        Phase::Control => {
                            format!("no answer within {} ms", control_wait.as_millis())
                        }
                        Phase::Probe => {
                            format!("no answer in the {} ms the probe had", waited.as_millis())
                        }
                    },
                },
            })
            .collect()
    }
}

fn one(op: &Op) -> (Outcome, String) {
    match op {
        Op::Connect { host, port } => connect(host, *port),
        Op::Resolve { name } => resolve(name),
        Op::Http { host, port, target } => http(host, *port, target),
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

/// Every address of `host` at once: one that connects is enough, and a silent one must not keep
/// the next from being tried.
fn connect(host: &str, port: u16) -> (Outcome, String) {
    let list = match addresses(host, port) {
        Ok(list) => list,
        Err(e) => return (Outcome::Closed, e),
    };
    let (send, receive) = mpsc::channel();
    for addr in &list {
        let (send, addr) = (send.clone(), *addr);
        std::thread::spawn(move || {
            let _ = send.send((addr, TcpStream::connect_timeout(&addr, IO_LIMIT)));
        });
    }
    drop(send);
    let (mut errors, mut outcome) = (Vec::new(), Outcome::Closed);
    for (addr, result) in receive {
        match result {
            Ok(_) => return (Outcome::Open, format!("connected to {addr}")),
            Err(e) => {
                if not_reached(&e) == Outcome::Timeout {
                    outcome = Outcome::Timeout;
                }
                errors.push(format!("{addr}: {e}"));
            }
        }
    }
    if list.is_empty() {
        return (Outcome::Closed, format!("`{host}` has no address"));
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

fn http(host: &str, port: u16, target: &str) -> (Outcome, String) {
    let addr = match addresses(host, port).map(|l| l.into_iter().next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => return (Outcome::Closed, format!("`{host}` has no address")),
        Err(e) => return (Outcome::Closed, e),
    };
    let exchange = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, IO_LIMIT)?;
        stream.set_read_timeout(Some(IO_LIMIT))?;
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

    fn connect(id: &str, phase: Phase, port: u16) -> Check {
        check(
            id,
            phase,
            Op::Connect {
                host: "127.0.0.1".into(),
                port,
            },
        )
    }

    fn spec(floor_ms: u64, factor: u32, checks: Vec<Check>) -> Spec {
        Spec {
            control_ms: 2000,
            probe_floor_ms: floor_ms,
            probe_factor: factor,
            checks,
        }
    }

    /// Run with the launcher's signals sent at these times after the start (the input ends after
    /// the last).
    fn run_signalled(spec: &Spec, schedule: &[(u64, Signal)]) -> (Vec<Seen>, Timing) {
        let (send, receive) = mpsc::channel();
        let schedule = schedule.to_vec();
        let started = Instant::now();
        std::thread::spawn(move || {
            for (at_ms, signal) in schedule {
                let at = started + Duration::from_millis(at_ms);
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let _ = send.send(signal);
            }
        });
        run(spec, &receive)
    }

    fn outcomes(seen: &[Seen]) -> Vec<(String, Outcome)> {
        seen.iter().map(|s| (s.id.clone(), s.outcome)).collect()
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn controls_and_probes_report_what_they_saw() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = open.local_addr().unwrap().port();
        let dir = tempdir("seen");
        std::fs::write(
            dir.join("prompt"),
            b"you are an agent; token=route-token-xyz",
        )
        .unwrap();
        let needle = format(&Needle::of(b"route-token-xyz", [7, 11]));
        let other = format(&Needle::of(b"something-else", [7, 11]));
        let spec = spec(
            50,
            10,
            vec![
                connect("c1", Phase::Control, port),
                check(
                    "c2",
                    Phase::Control,
                    Op::ScanFiles {
                        needle,
                        paths: vec![dir.display().to_string()],
                    },
                ),
                connect("p1", Phase::Probe, free_port()),
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
        );
        let (seen, timing) = run_signalled(&spec, &[]);
        assert_eq!(
            outcomes(&seen),
            [
                ("c1".into(), Outcome::Open),
                ("c2".into(), Outcome::Found),
                ("p1".into(), Outcome::Closed),
                ("p2".into(), Outcome::Absent),
                ("p3".into(), Outcome::Clean),
            ]
        );
        assert!(timing.window_ms >= 50, "the floor: {timing:?}");
        assert!(
            timing.waited_ms < timing.window_ms,
            "every probe concluded, so nothing waits for the window: {timing:?}"
        );
    }

    #[test]
    fn scans_wait_until_the_launcher_placed_the_files() {
        let dir = tempdir("placed");
        let needle = format(&Needle::of(b"the system prompt", [3, 5]));
        let spec = spec(
            10,
            10,
            vec![check(
                "c1",
                Phase::Control,
                Op::ScanFiles {
                    needle,
                    paths: vec![dir.display().to_string()],
                },
            )],
        );
        let (send, receive) = mpsc::channel();
        let placer = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                // The prober is already running when the launcher writes the file.
                std::thread::sleep(Duration::from_millis(100));
                std::fs::write(dir.join("prompt"), b"the system prompt, placed late").unwrap();
                send.send(Signal::FilesPlaced).unwrap();
                send.send(Signal::End).unwrap();
            })
        };
        let (seen, _) = run(&spec, &receive);
        placer.join().unwrap();
        assert_eq!(outcomes(&seen), [("c1".into(), Outcome::Found)]);
    }

    #[test]
    fn a_probe_that_connects_late_is_reached_not_blocked() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let control = open.local_addr().unwrap().port();
        let slow = SlowListener::new();
        let spec = spec(
            20,
            10,
            vec![
                connect("c1", Phase::Control, control),
                connect("p1", Phase::Probe, slow.port),
            ],
        );
        // The slow path is open, only slow: once its queue has room, the probe's retransmitted SYN
        // (a second after the first) gets in.
        slow.make_room_after(Duration::from_millis(200));
        // The launch takes 2.5 s meanwhile: the probe is still trying and its late connection
        // counts, although the window was 20 ms.
        let (seen, timing) = run_signalled(&spec, &[(0, Signal::FilesPlaced), (2500, Signal::End)]);
        assert_eq!(
            outcomes(&seen),
            [("c1".into(), Outcome::Open), ("p1".into(), Outcome::Open)],
            "{seen:?} {timing:?}"
        );
        assert!(
            timing.window_ms < 1000 && timing.waited_ms >= 2400,
            "{timing:?}"
        );
    }

    #[test]
    fn a_probe_gets_the_window_even_when_the_launch_is_ready_at_once() {
        let silent = SlowListener::new();
        let spec = spec(
            150,
            10,
            vec![
                connect("c1", Phase::Control, silent.control_port),
                connect("p1", Phase::Probe, silent.port),
            ],
        );
        let started = Instant::now();
        let (seen, timing) = run_signalled(&spec, &[]);
        assert_eq!(
            outcomes(&seen),
            [
                ("c1".into(), Outcome::Open),
                ("p1".into(), Outcome::Timeout)
            ],
        );
        assert!(seen[1].detail.contains("ms the probe had"), "{seen:?}");
        assert!(timing.waited_ms >= 150, "{timing:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn the_window_grows_with_the_slowest_control() {
        let slow_server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = slow_server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = slow_server.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            std::thread::sleep(Duration::from_millis(40));
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
        });
        let silent = SlowListener::new();
        let spec = spec(
            1,
            3,
            vec![
                check(
                    "c1",
                    Phase::Control,
                    Op::Http {
                        host: "127.0.0.1".into(),
                        port,
                        target: "/healthz".into(),
                    },
                ),
                connect("p1", Phase::Probe, silent.port),
            ],
        );
        let (seen, timing) = run_signalled(&spec, &[]);
        assert_eq!(seen[0].outcome, Outcome::Status(200), "{seen:?}");
        assert!(timing.slowest_control_us >= 40_000, "{timing:?}");
        assert!(
            timing.window_ms >= 120,
            "3 × the slowest control: {timing:?}"
        );
        assert!(timing.waited_ms >= timing.window_ms, "{timing:?}");
    }

    #[test]
    fn a_server_that_never_answers_is_a_timeout_after_the_window() {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let spec = spec(
            100,
            10,
            vec![check(
                "p1",
                Phase::Probe,
                Op::Http {
                    host: "127.0.0.1".into(),
                    port,
                    target: "http://x.invalid/".into(),
                },
            )],
        );
        let started = Instant::now();
        let (seen, _) = run_signalled(&spec, &[]);
        assert_eq!(seen[0].outcome, Outcome::Timeout, "{seen:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(silent);
    }

    /// A port whose connections hang: its accept queue (of one) is full, so the kernel drops new
    /// SYNs and the client retransmits a second later. `control_port` is an ordinary listener.
    struct SlowListener {
        port: u16,
        control_port: u16,
        listener: std::sync::Arc<socket2::Socket>,
        _filler: TcpStream,
        _control: TcpListener,
    }

    impl SlowListener {
        fn new() -> SlowListener {
            use socket2::{Domain, Socket, Type};
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            socket
                .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
                .unwrap();
            socket.listen(0).unwrap();
            let port = socket.local_addr().unwrap().as_socket().unwrap().port();
            // One connection, never accepted, fills the queue.
            let filler = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let control = TcpListener::bind("127.0.0.1:0").unwrap();
            let control_port = control.local_addr().unwrap().port();
            // The queue is full once the kernel has moved the filler to it.
            std::thread::sleep(Duration::from_millis(20));
            SlowListener {
                port,
                control_port,
                listener: std::sync::Arc::new(socket),
                _filler: filler,
                _control: control,
            }
        }

        /// Accept the filler after `delay`, so the next SYN retransmission gets in.
        fn make_room_after(&self, delay: Duration) {
            let listener = self.listener.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                while let Ok((conn, _)) = listener.accept() {
                    drop(conn);
                }
            });
        }
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bottle-probe-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
