//! `serve`: prepare one bare mirror per repository, install the hooks, and run `git daemon`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::config::Repo;
use crate::{ALLOW_LOCAL_UPSTREAM, git};

/// Refuse an upstream the gate cannot reach safely: only ssh (`ssh://` or scp-like `user@host:path`)
/// with a pinned host key; a local path only under the test switch.
pub fn check_upstream(repo: &Repo) -> anyhow::Result<()> {
    if let Some(wanted) = ssh_host(&repo.upstream) {
        let known = std::fs::read_to_string(&repo.known_hosts).unwrap_or_default();
        let pinned = known.lines().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|hosts| hosts.split(',').any(|h| h.eq_ignore_ascii_case(&wanted)))
        });
        if !pinned {
            bail!(
                "repo `{}`: no pinned host key for {wanted} in {}; the gate never trusts an unknown host \
                 (set KnownHostKey for this git entry)",
                repo.name,
                repo.known_hosts
            );
        }
        return Ok(());
    }
    if std::env::var(ALLOW_LOCAL_UPSTREAM).as_deref() == Ok("1") {
        return Ok(());
    }
    bail!(
        "repo `{}`: upstream `{}` is not an ssh URL",
        repo.name,
        repo.upstream
    )
}

/// The known_hosts name of an ssh upstream: `host`, or `[host]:port` off port 22.
pub fn ssh_host(upstream: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = upstream.strip_prefix("ssh://") {
        let authority = rest.split('/').next()?;
        let host_port = authority.rsplit('@').next()?;
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.to_owned()),
            None => (host_port.to_owned(), "22".to_owned()),
        }
    } else {
        let (user_host, _) = upstream.split_once(':')?;
        let host = user_host.rsplit('@').next()?;
        if host.is_empty() || host.contains('/') || !user_host.contains('@') {
            return None;
        }
        (host.to_owned(), "22".to_owned())
    };
    Some(if port == "22" {
        host
    } else {
        format!("[{host}]:{port}")
    })
}

/// Create (or update) the bare mirror of `repo` under `data`.
pub fn prepare_repo(
    data: &Path,
    repo: &Repo,
    config_path: &Path,
    exe: &Path,
) -> anyhow::Result<PathBuf> {
    check_upstream(repo)?;
    let dir = data.join(format!("{}.git", repo.name));
    if !dir.join("HEAD").exists() {
        std::fs::create_dir_all(&dir)?;
        git::run(&dir, repo, &["init", "--bare", "--quiet"])?;
        git::run(&dir, repo, &["remote", "add", "origin", &repo.upstream])?;
    } else {
        git::run(&dir, repo, &["remote", "set-url", "origin", &repo.upstream])?;
    }
    // --replace-all: a restarted gate finds both refspecs already set.
    git::run(
        &dir,
        repo,
        &[
            "config",
            "--replace-all",
            "remote.origin.fetch",
            "+refs/heads/*:refs/heads/*",
        ],
    )?;
    for (key, value) in [
        ("receive.denyNonFastForwards", "false"),
        ("receive.denyDeletes", "false"),
        ("daemon.uploadpack", "true"),
        ("daemon.receivepack", "true"),
    ] {
        git::run(&dir, repo, &["config", key, value])?;
    }
    git::run(
        &dir,
        repo,
        &[
            "config",
            "--add",
            "remote.origin.fetch",
            "+refs/tags/*:refs/tags/*",
        ],
    )?;
    let hook = format!(
        "#!/bin/sh\nexec '{}' pre-receive --config '{}' --repo '{}'\n",
        exe.display(),
        config_path.display(),
        repo.name
    );
    write_executable(&dir.join("hooks/pre-receive"), &hook)?;
    Ok(dir)
}

fn write_executable(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().expect("hook paths have a parent"))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Prepare every repository, then run `git daemon` under the supervisor until a stop signal.
pub fn serve(config_path: &Path, data: &Path, listen: Option<&str>) -> anyhow::Result<()> {
    let config = crate::config::load(config_path)?;
    let exe = std::env::current_exe().context("locating this program")?;
    std::fs::create_dir_all(data)?;
    for repo in &config.repos {
        prepare_repo(data, repo, config_path, &exe)?;
    }
    let hook = data.join("access-hook");
    let script = format!(
        "#!/bin/sh\nexec '{}' access-hook --config '{}' \"$@\"\n",
        exe.display(),
        config_path.display()
    );
    write_executable(&hook, &script)?;
    let listen = listen.unwrap_or(&config.listen);
    let (host, port) = listen
        .rsplit_once(':')
        .context("listen must be host:port")?;
    eprintln!(
        "{}",
        serde_json::json!({"event": "serving", "listen": listen, "repos": config.repos.len()})
    );
    // `git daemon` would run git-daemon as a grandchild; running the daemon itself as our child
    // lets the supervisor signal and reap it directly.
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .context("running git")?;
    let daemon =
        PathBuf::from(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
    let mut command = Command::new(daemon);
    command
        .args([
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--informative-errors",
        ])
        .arg(format!("--base-path={}", data.display()))
        .arg(format!("--listen={host}"))
        .arg(format!("--port={port}"))
        .arg(format!("--access-hook={}", hook.display()))
        .arg(data);
    crate::supervisor::run(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_names() {
        assert_eq!(
            ssh_host("ssh://git@example.com:22/org/app.git").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            ssh_host("ssh://gitea@git.internal:2222/x.git").as_deref(),
            Some("[git.internal]:2222")
        );
        assert_eq!(
            ssh_host("git@example.com:org/lib.git").as_deref(),
            Some("example.com")
        );
        assert_eq!(ssh_host("/srv/upstream.git"), None);
        assert_eq!(ssh_host("file:///srv/upstream.git"), None);
    }

    #[test]
    fn an_unpinned_host_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let known = dir.path().join("known_hosts");
        std::fs::write(&known, "other.example ssh-ed25519 AAAA\n").unwrap();
        let repo = Repo {
            name: "app".into(),
            upstream: "ssh://git@example.com/org/app.git".into(),
            identity_file: "/k".into(),
            known_hosts: known.display().to_string(),
            policy: Default::default(),
        };
        let err = check_upstream(&repo).unwrap_err().to_string();
        assert!(err.contains("no pinned host key for example.com"), "{err}");
        std::fs::write(&known, "example.com ssh-ed25519 AAAA\n").unwrap();
        assert!(check_upstream(&repo).is_ok());
    }
}
