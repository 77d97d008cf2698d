//! The interactive session: the agent's command as an exec with a TTY, the local terminal in raw
//! mode, window resizes forwarded, and the command's exit code returned.

use std::io::{IsTerminal, Write};

use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::docker::Engine;

/// Restores the terminal when dropped, however the session ends.
struct RawMode(bool);

impl RawMode {
    fn enable(tty: bool) -> Self {
        RawMode(tty && crossterm::terminal::enable_raw_mode().is_ok())
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.0 {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Run `command` in `container` as the agent user, attached to this terminal; returns its exit code.
pub async fn attach(
    engine: &Engine,
    container: &str,
    command: &[String],
    workdir: &str,
) -> Result<i64, String> {
    let docker = engine.client();
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into());
    let options = CreateExecOptions::<String> {
        cmd: Some(command.to_vec()),
        user: Some("agent".into()),
        working_dir: Some(workdir.into()),
        env: Some(vec![format!("TERM={term}")]),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(tty),
        ..Default::default()
    };
    let exec = docker
        .create_exec(container, options)
        .await
        .map_err(|e| format!("starting the agent: {e}"))?;
    let started = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|e| format!("attaching to the agent: {e}"))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err("the engine did not attach the session".into());
    };
    let _raw = RawMode::enable(tty);
    if tty {
        resize(engine, &exec.id).await;
        tokio::spawn(forward_resizes(engine.clone(), exec.id.clone()));
    }
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let _ = tokio::io::copy(&mut stdin, &mut input).await;
        let _ = input.shutdown().await;
    });
    let mut stdout = std::io::stdout();
    while let Some(Ok(chunk)) = output.next().await {
        let _ = stdout.write_all(&chunk.into_bytes());
        let _ = stdout.flush();
    }
    let inspect = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(|e| format!("reading the agent's exit code: {e}"))?;
    Ok(inspect.exit_code.unwrap_or(-1))
}

async fn resize(engine: &Engine, exec: &str) {
    if let Ok((width, height)) = crossterm::terminal::size() {
        let _ = engine
            .client()
            .resize_exec(exec, ResizeExecOptions { width, height })
            .await;
    }
}

async fn forward_resizes(engine: Engine, exec: String) {
    let Ok(mut signals) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    else {
        return;
    };
    while signals.recv().await.is_some() {
        resize(&engine, &exec).await;
    }
}
