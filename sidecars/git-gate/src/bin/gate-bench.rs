//! `cargo run --release -p bottle-git-gate --bin gate-bench`: what the gate costs.
//!
//! - clone and push of a small repository through the gate (`git://` on loopback, with the
//!   fetch-before-read and the pre-receive scan) beside the same operation straight against the
//!   upstream (a local bare repository under the test switch);
//! - one push of 1000 new commits (20 added lines each) through the gate beside the same push
//!   straight: the cost of scanning everything a large push sends;
//! - the secret scanner's throughput on a large synthetic diff (MB/s).
//!
//! Needs `git` and a built `bottle-git-gate` next to this binary (`cargo build --release -p bottle-git-gate`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 10;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@x",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?} failed in {}", dir.display());
}

fn timed(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "--bare", "up.git"]);
    git(root, &["clone", "-q", "up.git", "seed"]);
    for i in 0..50 {
        std::fs::write(
            root.join(format!("seed/file{i}.rs")),
            format!("fn f{i}() {{}}\n").repeat(40),
        )
        .unwrap();
    }
    git(&root.join("seed"), &["add", "."]);
    git(&root.join("seed"), &["commit", "-qm", "seed"]);
    git(&root.join("seed"), &["push", "-q", "origin", "main"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "version: 1\nlisten: 127.0.0.1:{port}\nrepos:\n- name: app\n  upstream: {}\n  identity_file: /dev/null\n  known_hosts: /dev/null\n  policy: {{}}\n",
        root.join("up.git").display()
    );
    std::fs::write(root.join("gate.yaml"), config).unwrap();
    let exe = std::env::current_exe()
        .unwrap()
        .with_file_name("bottle-git-gate");
    let mut gate = Command::new(exe)
        .args(["serve", "--config"])
        .arg(root.join("gate.yaml"))
        .arg("--data")
        .arg(root.join("data"))
        .env(bottle_git_gate::ALLOW_LOCAL_UPSTREAM, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("build bottle-git-gate first: cargo build --release -p bottle-git-gate");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let via_gate = format!("git://127.0.0.1:{port}/app.git");
    let direct = root.join("up.git").display().to_string();
    let mut n = 0;
    let mut clone = |url: &str| {
        n += 1;
        let target = format!("c{n}");
        timed(|| {
            let _ = std::fs::remove_dir_all(root.join(&target));
            git(root, &["clone", "-q", "--no-local", url, &target]);
        })
    };
    let (gate_clone, direct_clone) = (clone(&via_gate), clone(&direct));
    let push = |url: &str, work: &str| {
        git(root, &["clone", "-q", url, work]);
        let w = root.join(work);
        let mut i = 0;
        timed(|| {
            i += 1;
            std::fs::write(w.join(format!("{work}-{i}.txt")), format!("change {i}\n")).unwrap();
            git(&w, &["add", "."]);
            git(&w, &["commit", "-qm", "change"]);
            git(
                &w,
                &["push", "-q", "origin", &format!("HEAD:refs/heads/{work}")],
            );
        })
    };
    let (gate_push, direct_push) = (push(&via_gate, "pg"), push(&direct, "pd"));
    let (gate_big, direct_big) = (
        big_push(root, &via_gate, "bg"),
        big_push(root, &direct, "bd"),
    );
    // SIGTERM, as a container stop: the gate stops its daemon with it.
    let _ = Command::new("kill")
        .args(["-TERM", &gate.id().to_string()])
        .status();
    let _ = gate.wait();
    println!("small repository (50 files), medians of {RUNS}:");
    for (what, g, d) in [
        ("clone", gate_clone, direct_clone),
        ("push", gate_push, direct_push),
    ] {
        println!(
            "  {what:<6} through the gate {:>7.1} ms   straight {:>7.1} ms   added {:>7.1} ms",
            g.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3,
            (g.as_secs_f64() - d.as_secs_f64()) * 1e3
        );
    }
    println!(
        "  push of {BIG_COMMITS} new commits: through the gate {:>7.1} ms   straight {:>7.1} ms   added {:>7.1} ms",
        gate_big.as_secs_f64() * 1e3,
        direct_big.as_secs_f64() * 1e3,
        (gate_big.as_secs_f64() - direct_big.as_secs_f64()) * 1e3
    );
    scan_throughput();
}

/// How many commits the large push carries.
const BIG_COMMITS: usize = 1000;

/// Build [`BIG_COMMITS`] commits on a fresh clone of `url` (with `git fast-import`; each adds a
/// file of 20 lines), then time one push of all of them to `refs/heads/<name>`.
fn big_push(root: &Path, url: &str, name: &str) -> Duration {
    git(root, &["clone", "-q", url, name]);
    let work = root.join(name);
    let mut stream = String::new();
    for i in 0..BIG_COMMITS {
        let content = format!("let {name}_{i} = \"ordinary line\";\n").repeat(20);
        let message = format!("{name} change {i}");
        stream.push_str(&format!(
            "commit refs/heads/{name}\ncommitter b <b@x> {} +0000\ndata {}\n{message}\n",
            1_700_000_000 + i,
            message.len()
        ));
        if i == 0 {
            stream.push_str("from refs/heads/main\n");
        }
        stream.push_str(&format!(
            "M 644 inline {name}/file{i}.txt\ndata {}\n{content}\n",
            content.len()
        ));
    }
    let mut import = Command::new("git")
        .current_dir(&work)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), stream.as_bytes()).unwrap();
    assert!(import.wait().unwrap().success(), "git fast-import failed");
    let t = Instant::now();
    git(
        &work,
        &["push", "-q", "origin", &format!("{name}:refs/heads/{name}")],
    );
    t.elapsed()
}

fn scan_throughput() {
    let mut patch = String::from("+++ b/src/big.rs\n@@ -0,0 +1,400000 @@\n");
    let mut line = 0;
    while patch.len() < 32 << 20 {
        line += 1;
        patch.push_str(&format!(
            "+    let value_{line} = compute(\"some ordinary text {line}\", 0x{line:x});\n"
        ));
    }
    let scanner = bottle_git_gate::scan::scanner(&[]).unwrap();
    let t = Instant::now();
    let leaks = bottle_git_gate::scan::scan_patch(&scanner, "bench", patch.as_bytes());
    let elapsed = t.elapsed();
    println!(
        "  scanner: {:.0} MiB of added lines in {:.0} ms = {:.0} MiB/s ({} findings)",
        patch.len() as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64() * 1e3,
        patch.len() as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
        leaks.len()
    );
}
