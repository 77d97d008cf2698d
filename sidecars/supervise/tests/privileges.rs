//! The real program started as root never serves as root: it becomes the queue directory's owner,
//! or, when root owns the queue, hands it to uid 65532 and becomes that. Needs root (as the
//! sidecar's container and CI have); skipped with a note otherwise.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bottle_supervise::privileges::{FALLBACK_GID, FALLBACK_UID};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The program on a free loopback port, serving `queue`.
fn start(queue: &Path) -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_bottle-supervise"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--queue"])
        .arg(queue)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, port)
}

/// Wait until `GET /healthz` answers 200: the program got past dropping root and serves.
fn wait_serving(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the program exited with {status}: {err}");
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the program does not serve");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Real, effective, saved and file-system uids of a running process.
fn uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|u| u.parse().unwrap())
        .collect()
}

/// A temporary directory the dropped-to user can pass through, like the mount point's parents.
fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn started_as_root_it_serves_as_the_queue_owner() {
    if !is_root() {
        eprintln!("skipped: needs root to start the program as root");
        return;
    }
    let dir = tempdir();
    let queue = dir.path().join("queue");
    std::fs::create_dir(&queue).unwrap();
    std::os::unix::fs::chown(&queue, Some(1234), Some(1234)).unwrap();
    let (mut child, port) = start(&queue);
    wait_serving(&mut child, port);
    assert_eq!(uids(child.id()), [1234; 4]);
    stop(child);
}

#[test]
fn a_root_owned_queue_is_handed_over_and_root_dropped() {
    if !is_root() {
        eprintln!("skipped: needs root to start the program as root");
        return;
    }
    let dir = tempdir();
    let queue = dir.path().join("queue");
    // A resumed bottle's queue already holds files.
    std::fs::create_dir_all(queue.join("proposals")).unwrap();
    std::fs::write(queue.join("proposals/1-a.json"), "{}").unwrap();
    assert_eq!(std::fs::metadata(&queue).unwrap().uid(), 0, "root owns it");
    let (mut child, port) = start(&queue);
    wait_serving(&mut child, port);
    assert_eq!(uids(child.id()), [FALLBACK_UID; 4], "never serves as root");
    for path in [
        queue.clone(),
        queue.join("proposals"),
        queue.join("proposals/1-a.json"),
    ] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (FALLBACK_UID, FALLBACK_GID),
            "{}",
            path.display()
        );
    }
    stop(child);
}
