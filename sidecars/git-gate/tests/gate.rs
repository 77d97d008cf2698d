//! The gate against real git: a local upstream (under the test switch), the real `serve` on a
//! loopback port, and the real git client.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

struct Gate {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Stop exactly the daemon this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=agent",
            "-c",
            "user.email=agent@bottle.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "git failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl Gate {
    fn start(policy: &str) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        ok(git(root, &["init", "--bare", "--quiet", "up.git"]));
        ok(git(root, &["clone", "--quiet", "up.git", "seed"]));
        std::fs::write(root.join("seed/README"), "hello\n").unwrap();
        ok(git(&root.join("seed"), &["add", "."]));
        ok(git(
            &root.join("seed"),
            &["commit", "--quiet", "-m", "first"],
        ));
        ok(git(
            &root.join("seed"),
            &["push", "--quiet", "origin", "main"],
        ));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 1\nlisten: 127.0.0.1:{port}\nrepos:\n- name: app\n  upstream: {}\n  identity_file: /dev/null\n  known_hosts: /dev/null\n  policy: {policy}\nsecret_env: [GATE_TEST_SECRET]\n",
            root.join("up.git").display()
        );
        std::fs::write(root.join("gate.yaml"), config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_bottle-git-gate"))
            .args(["serve", "--config"])
            .arg(root.join("gate.yaml"))
            .arg("--data")
            .arg(root.join("data"))
            .env(bottle_git_gate::ALLOW_LOCAL_UPSTREAM, "1")
            .env("GATE_TEST_SECRET", "bottle-secret-value-3c9a11")
            .spawn()
            .unwrap();
        let gate = Gate { dir, child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return gate;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the gate never listened");
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/app.git", self.port)
    }

    /// A clone through the gate.
    fn clone(&self, name: &str) -> PathBuf {
        ok(git(self.root(), &["clone", "--quiet", &self.url(), name]));
        self.root().join(name)
    }

    fn upstream_has(&self, rev: &str) -> bool {
        git(
            &self.root().join("up.git"),
            &["cat-file", "-e", &format!("{rev}^{{commit}}")],
        )
        .status
        .success()
    }
}

fn commit(work: &Path, file: &str, text: &str) -> String {
    std::fs::write(work.join(file), text).unwrap();
    ok(git(work, &["add", "."]));
    ok(git(
        work,
        &["commit", "--quiet", "-m", &format!("change {file}")],
    ));
    ok(git(work, &["rev-parse", "HEAD"])).trim().to_owned()
}

#[test]
fn reads_see_the_upstream_at_once_and_clean_pushes_arrive() {
    let gate = Gate::start("{protected: [main]}");
    let work = gate.clone("work");
    assert_eq!(
        std::fs::read_to_string(work.join("README")).unwrap(),
        "hello\n"
    );
    let upstream_change = commit(&gate.root().join("seed"), "NEWS", "upstream moved\n");
    ok(git(
        &gate.root().join("seed"),
        &["push", "--quiet", "origin", "main"],
    ));
    ok(git(&work, &["fetch", "--quiet", "origin"]));
    assert_eq!(
        ok(git(&work, &["rev-parse", "origin/main"])).trim(),
        upstream_change,
        "fetch through the gate sees it"
    );
    ok(git(
        &work,
        &["checkout", "--quiet", "-b", "feature", "origin/main"],
    ));
    let clean = commit(&work, "code.rs", "fn main() {}\n");
    ok(git(&work, &["push", "--quiet", "origin", "feature"]));
    assert!(
        gate.upstream_has(&clean),
        "the clean commit reached the upstream"
    );
}

#[test]
fn a_pushed_secret_is_refused_and_never_reaches_the_upstream() {
    let gate = Gate::start("{}");
    let work = gate.clone("work");
    ok(git(&work, &["checkout", "--quiet", "-b", "leak"]));
    let leak = commit(
        &work,
        "config.env",
        "REGION=eu\nAWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH\n",
    );
    let push = git(&work, &["push", "origin", "leak"]);
    let text = said(&push);
    assert!(!push.status.success(), "{text}");
    assert!(
        text.contains("config.env:2") && text.contains(&leak[..12]),
        "{text}"
    );
    assert!(
        !text.contains("AKIAQWERTYUIOPASDFGH"),
        "the refusal must not repeat the secret"
    );
    assert!(!gate.upstream_has(&leak));
    ok(git(&work, &["checkout", "--quiet", "main"]));
    ok(git(&work, &["checkout", "--quiet", "-b", "exact"]));
    let exact = commit(&work, "notes.txt", "token: bottle-secret-value-3c9a11\n");
    let push = git(&work, &["push", "origin", "exact"]);
    assert!(
        !push.status.success() && said(&push).contains("notes.txt:1"),
        "{}",
        said(&push)
    );
    assert!(!gate.upstream_has(&exact));
}

#[test]
fn policy_refuses_force_pushes_protected_branches_and_deletes() {
    let gate = Gate::start("{protected: [main], allowed_refs: [\"agent/*\"]}");
    let work = gate.clone("work");
    commit(&work, "a.txt", "a\n");
    let to_main = git(&work, &["push", "origin", "main"]);
    assert!(
        !to_main.status.success() && said(&to_main).contains("protected"),
        "{}",
        said(&to_main)
    );
    let outside = git(&work, &["push", "origin", "main:refs/heads/other"]);
    assert!(
        !outside.status.success() && said(&outside).contains("not among"),
        "{}",
        said(&outside)
    );
    ok(git(
        &work,
        &["push", "--quiet", "origin", "main:refs/heads/agent/one"],
    ));
    ok(git(&work, &["reset", "--quiet", "--hard", "HEAD~1"]));
    commit(&work, "b.txt", "b\n");
    let force = git(
        &work,
        &["push", "--force", "origin", "HEAD:refs/heads/agent/one"],
    );
    assert!(
        !force.status.success() && said(&force).contains("force-pushed"),
        "{}",
        said(&force)
    );
    let delete = git(&work, &["push", "origin", ":refs/heads/agent/one"]);
    assert!(
        !delete.status.success() && said(&delete).contains("deleting"),
        "{}",
        said(&delete)
    );
}

#[test]
fn with_the_upstream_gone_reads_and_writes_fail_with_the_reason() {
    let gate = Gate::start("{}");
    let work = gate.clone("work");
    std::fs::rename(gate.root().join("up.git"), gate.root().join("gone.git")).unwrap();
    let read = git(gate.root(), &["clone", &gate.url(), "again"]);
    assert!(!read.status.success());
    assert!(
        said(&read).contains("cannot fetch app from its upstream"),
        "{}",
        said(&read)
    );
    ok(git(&work, &["checkout", "--quiet", "-b", "late"]));
    commit(&work, "c.txt", "c\n");
    let write = git(&work, &["push", "origin", "late"]);
    assert!(
        !write.status.success() && said(&write).contains("cannot reach the upstream"),
        "{}",
        said(&write)
    );
}

#[test]
fn a_secret_in_a_file_git_calls_binary_is_still_found() {
    let gate = Gate::start("{}");
    let work = gate.clone("work");
    ok(git(&work, &["checkout", "--quiet", "-b", "bin"]));
    let leak = commit(
        &work,
        "blob.dat",
        "\0header\nAWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH\n",
    );
    let push = git(&work, &["push", "origin", "bin"]);
    assert!(
        !push.status.success() && said(&push).contains("blob.dat"),
        "{}",
        said(&push)
    );
    assert!(!gate.upstream_has(&leak));
}

#[test]
fn a_restarted_gate_reuses_its_mirrors() {
    let mut gate = Gate::start("{}");
    gate.clone("first");
    let _ = gate.child.kill();
    let _ = gate.child.wait();
    gate.child = Command::new(env!("CARGO_BIN_EXE_bottle-git-gate"))
        .args(["serve", "--config"])
        .arg(gate.root().join("gate.yaml"))
        .arg("--data")
        .arg(gate.root().join("data"))
        .env(bottle_git_gate::ALLOW_LOCAL_UPSTREAM, "1")
        .spawn()
        .unwrap();
    let mut cloned = false;
    for _ in 0..100 {
        if git(gate.root(), &["clone", "--quiet", &gate.url(), "second"])
            .status
            .success()
        {
            cloned = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cloned, "the restarted gate serves its existing mirror");
}
