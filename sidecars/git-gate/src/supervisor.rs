//! The gate's PID 1: runs `git daemon` as a child, forwards the hooks' decision lines to stdout,
//! reaps every child, and stops everything at once on SIGTERM or SIGINT.
//!
//! `git daemon` as PID 1 ignores SIGTERM (the kernel drops signals PID 1 has no handler for), so a
//! container stop waited out the engine's grace period; and it hands a hook's stderr to the
//! client only, so the decisions never reached the sidecar's log. The hooks write their decision
//! lines to an inherited pipe named by [`LOG_FD_ENV`]; this process copies them to stdout.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::{FromRawFd as _, RawFd};
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// The environment variable naming the file descriptor the hooks write decision lines to.
pub const LOG_FD_ENV: &str = "BOTTLE_GATE_LOG_FD";

/// How long the daemon gets to stop after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(3);

/// Run `daemon` until it exits (an error) or a stop signal arrives (success).
pub fn run(mut daemon: Command) -> anyhow::Result<()> {
    let signals = stop_and_child_signals();
    // Blocked here, before any thread exists, so every thread inherits the mask and the signals
    // wait for `sigtimedwait` below.
    block(&signals)?;
    let log_write = decision_log()?;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        daemon.pre_exec(|| {
            // A spawned child keeps its parent's signal mask: hand the daemon an empty one, or it
            // would never see the SIGTERM this process sends it.
            let mut empty = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // Should this process die without stopping it (SIGKILL), the daemon goes too.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = daemon
        .env(LOG_FD_ENV, log_write.to_string())
        // Its own process group: a stop reaches the daemon and every connection it forked.
        .process_group(0)
        .spawn()
        .context("running git daemon")?;
    let pid = child.id() as libc::pid_t;
    loop {
        match wait_signal(&signals, Duration::from_secs(1)) {
            Some(libc::SIGTERM | libc::SIGINT) => {
                stop(pid, &signals);
                return Ok(());
            }
            _ => {
                if let Some(status) = reap(pid) {
                    bail!("git daemon exited ({})", describe(status));
                }
            }
        }
    }
}

fn stop_and_child_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a sigset_t we own.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

fn block(set: &libc::sigset_t) -> anyhow::Result<()> {
    // SAFETY: `set` is an initialised signal set.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
    if rc != 0 {
        bail!(
            "blocking signals: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
    Ok(())
}

/// The next of `set` within `timeout`, if any.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let timeout = libc::timespec {
        // `as _`: the field's width differs between glibc and musl.
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    // SAFETY: `set` is initialised; a null siginfo is allowed.
    let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
    (signal > 0).then_some(signal)
}

/// Reap every exited child (as PID 1 the orphans of git's forks are ours too); the daemon's
/// status if it was among them.
fn reap(daemon: libc::pid_t) -> Option<i32> {
    let mut daemon_status = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return daemon_status;
        }
        if pid == daemon {
            daemon_status = Some(status);
        }
    }
}

/// SIGTERM to the daemon's group, SIGKILL after [`GRACE`]; reap it and say how it ended.
fn stop(daemon: libc::pid_t, signals: &libc::sigset_t) {
    // SAFETY: signalling our child's process group.
    unsafe { libc::kill(-daemon, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + GRACE;
    let mut status = None;
    while status.is_none() && std::time::Instant::now() < deadline {
        status = reap(daemon);
        if status.is_none() {
            wait_signal(signals, Duration::from_millis(100));
        }
    }
    let status = status.unwrap_or_else(|| {
        // SAFETY: as above.
        unsafe { libc::kill(-daemon, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        unsafe { libc::waitpid(daemon, &mut status, 0) };
        status
    });
    println!(
        "{}",
        serde_json::json!({"event": "stopped", "daemon": describe(status)})
    );
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else {
        format!("signal {}", libc::WTERMSIG(status))
    }
}

/// A pipe whose write end the daemon (and so every hook) inherits; a thread copies its lines to
/// stdout. Returns the write end's descriptor.
fn decision_log() -> anyhow::Result<RawFd> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two descriptors. Only the read end is close-on-exec.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("creating the decision log pipe");
    }
    let [read, write] = fds;
    // SAFETY: `read` is ours.
    unsafe { libc::fcntl(read, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: `read` is a fresh descriptor owned by the thread from here on.
    let reader = BufReader::new(unsafe { std::fs::File::from_raw_fd(read) });
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    });
    Ok(write)
}
