//! Sessions that survive, on the real engine: a real interactive session in tmux whose agent
//! command is a stand-in for Claude Code (a `claude` script in a small agent image that records
//! its argv and writes a transcript, plus a few things that must not be copied out: a
//! credentials file, a symlink to /etc/passwd, a FIFO, a skill). The launcher is killed with
//! SIGTERM; the transcript is kept on the host, the hostile parts are not; `bottle resume` copies
//! it back and starts the stand-in with `--continue`. Then `list --all`, `stop` and `cleanup
//! --state` on the kept state.
//!
//! Objects carry the test label and are removed, the tmux server is killed, even on failure.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const SESSION: &str = "0f0e0d0c-0b0a-4909-8807-060504030201";
const PROMPT: &str = "remember the number 42";

/// The stand-in for Claude Code.
const STAND_IN: &str = r#"#!/bin/sh
# A stand-in for Claude Code: how it was started, a transcript, and what must stay behind.
printf '%s\n' "$*" > /tmp/claude-argv
dir=/home/agent/.claude/projects/-home-agent
mkdir -p "$dir" /home/agent/.claude/skills/x /home/agent/.claude/todos
f="$dir/0f0e0d0c-0b0a-4909-8807-060504030201.jsonl"
[ -f "$f" ] || printf '%s\n' '{"type":"user","message":{"content":"remember the number 42"}}' > "$f"
printf '{"type":"start","argv":"%s"}\n' "$*" >> "$f"
echo '[]' > /home/agent/.claude/todos/t.json
printf 'oauth-secret-standin' > /home/agent/.claude/.credentials.json
ln -sf /etc/passwd /home/agent/.claude/passwd-link
[ -p /home/agent/.claude/fifo ] || mkfifo /home/agent/.claude/fifo
echo skill > /home/agent/.claude/skills/x/SKILL.md
echo "stand-in session ready"
exec sleep 600
"#;

const DOCKERFILE: &str = "FROM debian:bookworm-slim\n\
RUN useradd --create-home --uid 1000 --user-group --shell /bin/sh agent && mkdir -p /etc/ssl/certs\n\
COPY claude /usr/local/bin/claude\n\
WORKDIR /home/agent\n";

/// A tmux server of its own, killed on drop (which also ends a launcher still in it).
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn available() -> bool {
        let found = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var("CI").is_err(),
                "CI must provide tmux (scripts/prerequisites installs it)"
            );
            eprintln!("skipping: tmux is not installed (apt-get install tmux)");
        }
        found
    }

    fn new(dir: &Path) -> Tmux {
        Tmux {
            socket: dir.join("tmux.sock"),
        }
    }

    fn tmux(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(text(&output))
        }
    }

    /// Run the bottle binary with `args` in a new 120x40 session named `name`, as the process
    /// of its pane (so the pane's pid is the launcher's).
    fn run_bottle(&self, bottle: &TestBottle, name: &str, args: &[&str]) {
        let command = bottle.command(args);
        let mut argv = vec![command.get_program().to_string_lossy().into_owned()];
        argv.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
        let mut tmux = Command::new("tmux");
        tmux.arg("-S")
            .arg(&self.socket)
            .args(["new-session", "-d", "-x", "120", "-y", "40", "-s", name])
            .args(&argv)
            .current_dir(bottle.path())
            .env_remove("TMUX");
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => tmux.env(key, value),
                None => tmux.env_remove(key),
            };
        }
        let output = tmux.output().unwrap();
        assert!(output.status.success(), "tmux: {}", text(&output));
        let _ = self.tmux(&["set-option", "-t", name, "remain-on-exit", "on"]);
    }

    fn screen(&self, name: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-t", name])
            .unwrap_or_default()
    }

    fn wait_for_screen(&self, name: &str, what: &str, deadline: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if screen.contains(what) {
                return screen;
            }
            assert!(
                start.elapsed() < deadline,
                "waited {deadline:?} for `{what}`; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn pane_pid(&self, name: &str) -> u32 {
        self.tmux(&["display-message", "-p", "-t", name, "#{pane_pid}"])
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// SIGTERM to the launcher (a process this test started), then wait until it tore the bottle
/// down.
fn terminate_and_wait(bottle: &TestBottle, pid: u32) {
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        // The pane remains (remain-on-exit); its process is gone once the launcher exited.
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if zombie {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the launcher did not exit"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    bottle.assert_nothing_left();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_killed_session_is_kept_and_resumed_with_its_transcript() {
    if !Tmux::available() {
        return;
    }
    let Some(bottle) = TestBottle::new("sessions") else {
        return;
    };
    let agent = bottle.agent.get().unwrap().clone();
    bottle.write(
        &format!("agents/{agent}.md"),
        "---\nbottle: test\ncommand: [\"claude\", \"--print\", \"stand-in\"]\n---\nStand-in.\n",
    );
    let context = bottle.path().join("agent-image");
    let dockerfile = bottle.write("agent-image/Dockerfile", DOCKERFILE);
    let stand_in = bottle.write("agent-image/claude", STAND_IN);
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(context.is_dir());
    bottle.write(
        "bottles/test.md",
        &format!("---\ndockerfile: {}\n---\n", dockerfile.display()),
    );
    let tmux = Tmux::new(bottle.path());
    tmux.run_bottle(
        &bottle,
        "first",
        &["start", &agent, "--yes", "--no-claude-code"],
    );
    tmux.wait_for_screen("first", "stand-in session ready", Duration::from_secs(600));
    let identity = agent.clone();
    let launcher = tmux.pane_pid("first");
    terminate_and_wait(&bottle, launcher);

    // Kept on the host, private, without what must stay in the container.
    let state = bottle.path().join("state").join(&identity);
    let copy = state.join("claude");
    let transcript = copy.join(format!("projects/-home-agent/{SESSION}.jsonl"));
    let kept = std::fs::read_to_string(&transcript).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; screen:\n{}",
            transcript.display(),
            tmux.screen("first")
        )
    });
    assert!(kept.contains(PROMPT), "{kept}");
    assert!(copy.join("todos/t.json").is_file(), "the positive control");
    for absent in [".credentials.json", "passwd-link", "fifo", "skills"] {
        assert!(
            std::fs::symlink_metadata(copy.join(absent)).is_err(),
            "{absent} was copied out"
        );
    }
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&copy), 0o700);
    assert_eq!(mode(&transcript), 0o600);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("snapshot.json")).unwrap()).unwrap();
    assert_eq!(record["why"], "interrupt", "{record}");
    assert_eq!(record["detail"], "SIGTERM", "{record}");
    assert!(record["refused_count"].as_u64().unwrap() >= 4, "{record}");
    let on_disk = std::fs::read_to_string(state.join("snapshot.json")).unwrap();
    assert!(!on_disk.contains("oauth-secret-standin"));

    let listed = text(&bottle.bottle(&["list", "--all"]));
    let row = listed
        .lines()
        .find(|l| l.starts_with(&identity))
        .unwrap_or("");
    assert!(
        row.contains("interrupt") && row.contains(&agent),
        "{listed}"
    );
    let sessions = bottle.bottle(&["resume", &identity, "--list-sessions"]);
    let said = text(&sessions);
    assert!(
        sessions.status.success() && said.contains(SESSION) && said.contains(PROMPT),
        "{said}"
    );
    let bad = text(&bottle.bottle(&["resume", &identity, "--session", "$(reboot)"]));
    assert!(bad.contains("--session takes a session id"), "{bad}");
    let unknown = text(&bottle.bottle(&[
        "resume",
        &identity,
        "--session",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    ]));
    assert!(unknown.contains("no conversation"), "{unknown}");

    // Resumed: the transcript is back, owned by the agent, and the stand-in got --continue.
    tmux.run_bottle(
        &bottle,
        "resumed",
        &["resume", &identity, "--yes", "--no-claude-code"],
    );
    let screen = tmux.wait_for_screen(
        "resumed",
        "stand-in session ready",
        Duration::from_secs(300),
    );
    let inside = text(&bottle.exec_in_agent(
        &identity,
        &format!(
            "cat /tmp/claude-argv; stat -c '%U %a' /home/agent/.claude/projects/-home-agent/{SESSION}.jsonl; \
             cat /home/agent/.claude/projects/-home-agent/{SESSION}.jsonl"
        ),
    ));
    assert!(
        inside.starts_with("--continue --print stand-in\n"),
        "{inside}\nscreen:\n{screen}"
    );
    assert!(inside.contains("agent 600"), "{inside}");
    assert!(
        inside.contains(PROMPT)
            && inside.contains(r#"{"type":"start","argv":"--print stand-in"}"#)
            && inside.contains(r#"{"type":"start","argv":"--continue --print stand-in"}"#),
        "the first session's transcript came back and went on: {inside}"
    );
    terminate_and_wait(&bottle, tmux.pane_pid("resumed"));

    // `bottle stop` of a bottle that is gone says so and, without a terminal, wants --yes.
    let stop = bottle.bottle(&["stop", &identity]);
    let said = text(&stop);
    assert!(!stop.status.success(), "{said}");
    assert!(
        said.contains("is not running; its state is kept") && said.contains("--yes"),
        "{said}"
    );
    assert!(state.is_dir());
    let pruned = bottle.bottle(&["cleanup", "--state", "--yes"]);
    assert!(pruned.status.success(), "{}", text(&pruned));
    assert!(!state.exists(), "cleanup --state deleted the kept state");
    bottle.assert_nothing_left();
}
