//! `bottle dashboard` in a real terminal: the TUI runs in a tmux session over a bottle home whose
//! one bottle is "running" for real (an agent container and an egress-proxy stand-in holding a
//! valid config, both `sleep infinity`), with proposals written into its queue as the supervise
//! sidecar would. Keys go in with `tmux send-keys`, the screen comes back with `capture-pane`.
//! And `bottle dashboard --once`, which needs neither.
//!
//! Without tmux or a Docker engine the terminal test says why and skips (under CI, where both
//! must exist, it fails instead). Containers carry the test label and are removed, and the tmux
//! server is killed, even when an assertion fails.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bottle::docker::{Engine, FileUpload};
use bottle::launch::identity::Identity;
use bottle::sidecars::egress_proxy::EgressProxy;
use bottle::supervise::audit;
use bottle::supervise::targets::{self, ConfigTarget, Targets};
use bottle_egress_config::{AuthScheme, EgressConfig, Route, RouteAuth, TlsConfig};
use bottle_supervise_queue::{
    Change, CurrentConfig, Proposal, Queue, STATE_DIR_NAME, Status, Tool,
};
use common::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// A tmux server of its own (own socket), killed on drop.
struct Tmux {
    socket: PathBuf,
    session: &'static str,
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

    /// Run `script` with `sh -c` in a detached 160x45 session.
    fn start(dir: &Path, script: &str, env: &[(&str, &str)]) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
            session: "dashboard",
        };
        let mut command = Command::new("tmux");
        command
            .arg("-S")
            .arg(&tmux.socket)
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "45",
                "-s",
                tmux.session,
            ])
            .args(["sh", "-c", script])
            // A new server (own socket) hands its environment to the session.
            .envs(env.iter().copied())
            .env_remove("VISUAL")
            .env_remove("TMUX");
        let output = command.output().unwrap();
        assert!(output.status.success(), "tmux: {}", text(&output));
        tmux
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "tmux {args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Send keys by tmux name (`Enter`, `Escape`, `a`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Type `text` literally.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", self.session, "-l", text]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", self.session])
    }

    /// Poll the screen until `done` holds; fail with the last screen at the deadline.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            // A frame can reach the pane in pieces: accept it once it is also settled (the same
            // on a second look), so the assertions that follow see the whole frame.
            if done(&screen) {
                std::thread::sleep(Duration::from_millis(150));
                if self.screen() == screen {
                    return screen;
                }
                continue;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "waited {DEADLINE:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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

fn rfc3339_ago(seconds: i64) -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::seconds(seconds))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn github_route() -> Route {
    Route {
        host: "api.github.com".into(),
        path_allowlist: vec!["/repos/".into()],
        methods: vec![],
        auth: Some(RouteAuth {
            scheme: AuthScheme::Bearer,
            token_env: "ROUTE_TOKEN_0".into(),
        }),
    }
}

fn egress_config() -> EgressConfig {
    let config = EgressConfig {
        version: bottle_egress_config::FORMAT_VERSION,
        listen: "0.0.0.0:9099".into(),
        allow: vec!["api.github.com".into()],
        firewall: true,
        upstream_proxy: None,
        tls: TlsConfig {
            ca_cert: "/etc/bottle/ca.pem".into(),
            ca_key: "/etc/bottle/ca.key".into(),
            upstream_roots: vec![],
        },
        routes: vec![github_route()],
        passthrough: vec![],
        ssrf: Default::default(),
        dlp: Default::default(),
        learn: false,
    };
    config.validate().unwrap();
    config
}

/// Create and start a labelled `sleep infinity` container with `files` copied in first.
fn sleeper(bottle: &TestBottle, name: &str, files: &[FileUpload]) {
    use bollard::models::{ContainerCreateBody, HostConfig};
    let mut labels = HashMap::new();
    labels.insert(TEST_LABEL_KEY.to_owned(), bottle.label.clone());
    let body = ContainerCreateBody {
        image: Some("debian:bookworm-slim".into()),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(name)
        .build();
    let runtime = rt();
    runtime
        .block_on(bottle.docker.create_container(Some(options), body))
        .expect("creating a container from debian:bookworm-slim (is the image there?)");
    if !files.is_empty() {
        let upload = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .build();
        runtime
            .block_on(bottle.docker.upload_to_container(
                name,
                Some(upload),
                bollard::body_full(bottle::docker::tar_of(files, None).into()),
            ))
            .unwrap();
    }
    runtime
        .block_on(bottle.docker.start_container(name, None))
        .unwrap();
}

/// The live egress config, read back out of the container.
fn live_config(container: &str) -> EgressConfig {
    let file = rt()
        .block_on(async {
            let engine = Engine::connect().await?;
            engine
                .download(container, bottle_egress_config::DEFAULT_PATH)
                .await
        })
        .unwrap();
    yaml_serde::from_slice(&file.contents).unwrap()
}

fn proposal(tool: Tool, change: Change, justification: &str, age_s: i64) -> Proposal {
    Proposal {
        id: Queue::new_id(),
        tool,
        justification: justification.into(),
        created_at: rfc3339_ago(age_s),
        change,
    }
}

#[test]
fn dashboard_approves_rejects_and_edits_a_running_bottle_in_a_terminal() {
    if !Tmux::available() {
        return;
    }
    let Some(bottle) = TestBottle::new("dashboard") else {
        return;
    };
    // A running bottle, cheaply: the agent and the egress proxy as `sleep infinity` containers.
    let identity = Identity::from_name(&format!("t-dashboard-{}", std::process::id()));
    let agent = identity.agent_container();
    let proxy = identity.sidecar_container("egress-proxy");
    let config = egress_config();
    let yaml = yaml_serde::to_string(&config).unwrap();
    sleeper(&bottle, &agent, &[]);
    sleeper(
        &bottle,
        &proxy,
        &[file(
            bottle_egress_config::DEFAULT_PATH,
            0o644,
            (0, 0),
            &yaml,
        )],
    );
    let state_dir = bottle.path().join("state").join(identity.as_str());
    std::fs::create_dir_all(&state_dir).unwrap();
    let targets = Targets::new(Some(agent.clone())).with_config(
        &EgressProxy,
        ConfigTarget {
            container: proxy.clone(),
            path: bottle_egress_config::DEFAULT_PATH.into(),
        },
    );
    targets::write(&state_dir, &targets).unwrap();
    let queue = Queue::at(state_dir.join(STATE_DIR_NAME));
    queue
        .publish_current(&CurrentConfig {
            routes: config.routes.clone(),
            allow: config.allow.clone(),
            git: vec![],
            tools: targets.tools(),
        })
        .unwrap();
    // What the sidecar would write when the agent calls its tools.
    let firewall = proposal(
        Tool::FirewallBlock,
        Change::allow_host_from_url("https://docs.rs/serde/latest/serde/").unwrap(),
        "The serde docs live on docs.rs; I need them to finish the parser.",
        120,
    );
    queue.submit(&firewall).unwrap();
    let mut routes = vec![github_route()];
    routes.push(Route {
        host: "uploads.github.com".into(),
        path_allowlist: vec!["/repos/".into()],
        methods: vec![],
        auth: None,
    });
    let routes = proposal(
        Tool::EgressProxyBlock,
        Change::Routes { routes },
        "Release assets are uploaded to uploads.github.com.",
        60,
    );
    queue.submit(&routes).unwrap();

    // An editor for `e` that adds a host to the allowlist without a human.
    let editor = bottle.write(
        "editor.sh",
        "#!/bin/sh\nprintf -- '- pypi.org\\n' >> \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let home = bottle.path().display().to_string();
    let tmux = Tmux::start(
        bottle.path(),
        &dashboard_script(),
        &[
            ("BOTTLE_HOME", &home),
            ("HOME", &home),
            ("EDITOR", &editor.display().to_string()),
            ("BOTTLE_LOG", "off"),
        ],
    );

    // The list: both proposals, oldest first.
    // The whole frame (list and key help) may take more than one draw to reach the pane.
    let screen = tmux.wait_for("both proposals in the list", |s| {
        s.contains("allow docs.rs") && s.contains("routes → 2") && s.contains("r reject")
    });
    assert!(screen.contains("2 pending"), "{screen}");
    assert!(
        screen.find(&firewall.id) < screen.find(&routes.id),
        "oldest first:\n{screen}"
    );
    assert!(
        screen.contains("firewall-block") && screen.contains(identity.as_str()),
        "{screen}"
    );
    assert!(
        screen.contains("a approve") && screen.contains("r reject"),
        "{screen}"
    );

    // The detail: the justification and the change as a diff against the current allowlist.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the detail", |s| s.contains("Justification"));
    assert!(
        screen.contains("The serde docs live on docs.rs"),
        "{screen}"
    );
    assert!(
        screen.contains("+- docs.rs") && screen.contains(" - api.github.com"),
        "{screen}"
    );

    // Approve: applied to the proxy's live config, answered in the queue, audited.
    tmux.keys(&["a"]);
    let approved = format!("approved {}", firewall.id);
    let screen = tmux.wait_for("the approval", |s| s.contains(&approved));
    assert!(screen.contains("1 pending"), "back to the list:\n{screen}");
    let live = live_config(&proxy);
    assert!(live.allow.contains(&"docs.rs".to_owned()), "{live:?}");
    assert_eq!(live.routes, config.routes, "routes untouched");
    let decision = queue.decision(&firewall.id).unwrap().expect("a decision");
    assert_eq!(decision.status, Status::Approved);
    assert!(
        queue.current().unwrap().allow.contains(&"docs.rs".into()),
        "current.json republished"
    );
    let records = audit::read_all(bottle.path());
    assert!(
        records
            .iter()
            .any(|r| r["proposal"] == firewall.id.as_str() && r["decision"] == "approved"),
        "{records:?}"
    );

    // Reject: an empty reason is refused, then the reason goes to the agent.
    tmux.keys(&["r"]);
    tmux.wait_for("the reason prompt", |s| s.contains("reason for the agent"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the empty reason refused", |s| {
        s.contains("a rejection needs a reason")
    });
    tmux.type_text("no uploads from this bottle");
    tmux.keys(&["Enter"]);
    let rejected = format!("rejected {}", routes.id);
    let screen = tmux.wait_for("the rejection", |s| s.contains(&rejected));
    assert!(screen.contains("no pending proposals"), "{screen}");
    let decision = queue.decision(&routes.id).unwrap().expect("a decision");
    assert_eq!(decision.status, Status::Rejected);
    assert_eq!(decision.notes, "no uploads from this bottle");
    assert_eq!(live_config(&proxy).routes, config.routes, "nothing applied");

    // A proposal arriving while the dashboard is open shows up by itself. This one sends the
    // bottle's token to a host it never went to: `a` shows the refusal and asks; `A` asks first.
    let mut moved = vec![github_route()];
    moved.push(Route {
        host: "uploads.github.com".into(),
        path_allowlist: vec!["/repos/".into()],
        methods: vec![],
        auth: github_route().auth,
    });
    let moved = proposal(
        Tool::EgressProxyBlock,
        Change::Routes { routes: moved },
        "Release assets need the token on uploads.github.com.",
        0,
    );
    queue.submit(&moved).unwrap();
    tmux.wait_for("the token proposal", |s| s.contains("routes → 2"));
    tmux.keys(&["a"]);
    let screen = tmux.wait_for("the token refusal", |s| s.contains("anyway? (y/n)"));
    assert!(
        screen.contains("would send the token in `ROUTE_TOKEN_0` to `uploads.github.com`"),
        "a readable refusal:\n{screen}"
    );
    tmux.keys(&["n"]);
    tmux.wait_for("the cancellation", |s| s.contains("cancelled"));
    assert!(queue.decision(&moved.id).unwrap().is_none());
    assert_eq!(live_config(&proxy).routes, config.routes, "nothing applied");
    tmux.keys(&["A"]);
    tmux.wait_for("the confirmation", |s| s.contains("(y/n)"));
    tmux.keys(&["y"]);
    tmux.wait_for("the approval", |s| {
        s.contains(&format!("approved {}", moved.id))
    });
    let live = live_config(&proxy);
    assert!(
        live.routes
            .iter()
            .any(|r| r.host == "uploads.github.com" && r.auth == github_route().auth),
        "{live:?}"
    );

    let late = proposal(
        Tool::FirewallBlock,
        Change::allow_host_from_url("https://crates.io/api/v1/crates").unwrap(),
        "Checking crate versions.",
        0,
    );
    queue.submit(&late).unwrap();
    tmux.wait_for("the new proposal", |s| s.contains("allow crates.io"));

    // Edit the bottle directly: the allowlist goes through $EDITOR and is applied, no proposal.
    tmux.keys(&["e"]);
    tmux.wait_for("the edit menu", |s| s.contains("— allowlist"));
    tmux.keys(&["Down", "Enter"]);
    let screen = tmux.wait_for("the operator edit", |s| s.contains("applied the edit"));
    assert!(
        screen.contains("allow crates.io"),
        "still pending:\n{screen}"
    );
    let live = live_config(&proxy);
    assert!(
        live.allow.contains(&"pypi.org".to_owned()) && live.allow.contains(&"docs.rs".to_owned()),
        "{live:?}"
    );
    assert!(queue.decision(&late.id).unwrap().is_none());
    let records = audit::read_all(bottle.path());
    let edit = records
        .iter()
        .find(|r| r["operator_edit"] == true)
        .unwrap_or_else(|| panic!("no operator edit in {records:?}"));
    assert_eq!(edit["tool"], "firewall-block");
    assert!(
        edit["diff"].as_str().unwrap().contains("+- pypi.org"),
        "{edit}"
    );

    // The bottle goes away: approving says so, and the proposal expires.
    let kill = bottle.docker.kill_container(
        &agent,
        None::<bollard::query_parameters::KillContainerOptions>,
    );
    rt().block_on(kill).unwrap();
    tmux.keys(&["a"]);
    let screen = tmux.wait_for("the refusal", |s| s.contains("is not running"));
    assert!(
        screen.contains("so nothing can be applied; the proposal is now expired"),
        "{screen}"
    );
    let decision = queue.decision(&late.id).unwrap().expect("expired");
    assert_eq!(decision.status, Status::Expired);

    // Quit: the terminal is given back (out of raw mode).
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the dashboard to exit", |s| s.contains("tty: "));
    assert!(screen.contains("dashboard exited with 0"), "{screen}");
    assert!(
        screen.contains("tty: icanon"),
        "still in raw mode:\n{screen}"
    );
}

/// `bottle dashboard`, then its exit code and whether the terminal is back in canonical mode.
fn dashboard_script() -> String {
    format!(
        "'{}' dashboard; echo \"dashboard exited with $?\"; \
         stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon' | sed 's/^/tty: /'; sleep 600",
        env!("CARGO_BIN_EXE_bottle")
    )
}

#[test]
fn a_panic_gives_the_terminal_back_with_the_message_readable() {
    if !Tmux::available() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let path = home.path().display().to_string();
    let tmux = Tmux::start(
        home.path(),
        &dashboard_script(),
        &[
            ("BOTTLE_HOME", &path),
            ("HOME", &path),
            ("BOTTLE_FAULT_AT", "dashboard"),
        ],
    );
    let screen = tmux.wait_for("the dashboard to exit", |s| s.contains("tty: "));
    assert!(
        screen.contains("fault injected by BOTTLE_FAULT_AT"),
        "the panic message is on the normal screen:\n{screen}"
    );
    assert!(screen.contains("dashboard exited with 101"), "{screen}");
    assert!(
        screen.contains("tty: icanon"),
        "still in raw mode:\n{screen}"
    );
    assert!(
        !screen.contains("bottle dashboard ·"),
        "the alternate screen was left:\n{screen}"
    );
}

#[test]
fn once_prints_the_pending_proposals_and_exits() {
    let home = tempfile::tempdir().unwrap();
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_bottle"))
            .args(["dashboard", "--once"])
            .env("BOTTLE_HOME", home.path())
            .env("BOTTLE_LOG", "off")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(run(), "no pending proposals\n");
    let queue = Queue::at(home.path().join("state/b1").join(STATE_DIR_NAME));
    queue
        .publish_current(&CurrentConfig {
            allow: vec!["api.github.com".into()],
            ..Default::default()
        })
        .unwrap();
    let first = proposal(
        Tool::FirewallBlock,
        Change::allow_host_from_url("https://docs.rs/x").unwrap(),
        "docs",
        30,
    );
    let decided = proposal(
        Tool::FirewallBlock,
        Change::allow_host_from_url("https://pypi.org/x").unwrap(),
        "packages",
        20,
    );
    let second = proposal(
        Tool::CapabilityBlock,
        Change::Dockerfile {
            dockerfile: "FROM debian:bookworm-slim\nRUN apt-get install -y jq\n".into(),
        },
        "I need jq",
        10,
    );
    for p in [&first, &decided, &second] {
        queue.submit(p).unwrap();
    }
    queue
        .decide(&bottle_supervise_queue::Decision {
            id: decided.id.clone(),
            status: Status::Rejected,
            notes: "no".into(),
            decided_at: rfc3339_ago(0),
            applied: None,
        })
        .unwrap();
    let out = run();
    assert!(!out.contains(&decided.id), "only pending ones:\n{out}");
    let (a, b) = (out.find(&first.id).unwrap(), out.find(&second.id).unwrap());
    assert!(a < b, "oldest first:\n{out}");
    assert!(
        out.contains(&format!("{}  b1  firewall-block  pending", first.id)),
        "{out}"
    );
    assert!(
        out.contains("allow docs.rs (blocked: https://docs.rs/x)"),
        "{out}"
    );
    assert!(out.contains("why: docs"), "{out}");
    assert!(out.contains("+- docs.rs"), "the diff:\n{out}");
    assert!(out.contains("new agent Dockerfile (2 lines)"), "{out}");
    assert!(out.contains("+RUN apt-get install -y jq"), "{out}");
}
