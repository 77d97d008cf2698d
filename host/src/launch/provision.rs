//! Provisioning inside the agent, in order: trust the proxy's CA, write the system prompt, copy
//! skills, write the plugins' files, run the plugins' steps. Each step is logged; a failing step
//! stops the launch with its output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ca::MintedCa;
use super::{LaunchError, Step, at, fault_hook};
use crate::docker::{Engine, FileUpload};
use crate::plan::assemble::{AGENT_CA_CERT, SYSTEM_CA_BUNDLE};
use crate::plan::model::AGENT_PROMPT_PATH;
use crate::plan::model::Plan;

/// The agent user's home.
pub const AGENT_HOME: &str = "/home/agent";
/// Where the statx shim for gVisor goes in the agent.
pub const GVISOR_STATX_SHIM: &str = "/usr/local/lib/bottle/libbottle-statx.so";
/// The agent user's uid and gid.
pub const AGENT_UID: (u64, u64) = (1000, 1000);

/// What provisioning needs.
pub struct Provisioning<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// The agent container.
    pub container: &'a str,
    /// The plan.
    pub plan: &'a Plan,
    /// The runtime the engine recorded for the agent container (`HostConfig.Runtime`).
    pub runtime: &'a str,
    /// Minted CAs.
    pub cas: &'a BTreeMap<String, MintedCa>,
    /// `~/.claude/skills` on the host.
    pub skills_root: PathBuf,
}

impl Provisioning<'_> {
    /// Run every step.
    pub async fn run(&self) -> Result<(), LaunchError> {
        self.place_files().await?;
        self.run_steps().await
    }

    /// Write every file the host puts into the agent: the CA certificate, the system prompt,
    /// skills and plugin files (what the self-test then looks through).
    pub async fn place_files(&self) -> Result<(), LaunchError> {
        self.fit_gvisor().await?;
        self.place_ca().await?;
        self.write_prompt_and_skills().await?;
        self.write_plugin_files().await
    }

    /// The commands: trusting the CA, then the plugins' steps. They may run beside the
    /// self-test, which needs only the files.
    pub async fn run_steps(&self) -> Result<(), LaunchError> {
        self.trust_ca().await?;
        self.run_plugin_steps().await?;
        fault_hook(Step::Provision)
    }

    /// Under gVisor, preload the statx shim into every glibc program of the agent (before any
    /// other step runs a program): gVisor 2022-12 refuses a flag coreutils always passes, and
    /// `ls`, `stat`, `du` would fail (`host/gvisor/statx.c` says why the retry is safe). Written
    /// from inside, not copied in: the sandbox has already looked for /etc/ld.so.preload at every
    /// exec and may keep remembering that it did not exist.
    async fn fit_gvisor(&self) -> Result<(), LaunchError> {
        if self.runtime != super::runtime::RUNSC {
            return Ok(());
        }
        tracing::info!("provision: the statx shim for gVisor");
        let shim = FileUpload {
            path: GVISOR_STATX_SHIM.into(),
            mode: 0o644,
            owner: (0, 0),
            contents: crate::assets::GVISOR_STATX_SHIM.to_vec(),
        };
        self.upload(&[shim], None).await?;
        let preload = format!("echo {GVISOR_STATX_SHIM} >> /etc/ld.so.preload");
        self.exec(&["sh".into(), "-c".into(), preload], "0").await
    }

    async fn place_ca(&self) -> Result<(), LaunchError> {
        if self.plan.agent_trusts.is_empty() {
            return Ok(());
        }
        tracing::info!(
            "provision: trust the bottle CA ({})",
            self.plan.agent_trusts.join(", ")
        );
        let bundle: String = self
            .plan
            .agent_trusts
            .iter()
            .filter_map(|name| self.cas.get(name).map(|ca| ca.cert_pem.clone()))
            .collect();
        let file = FileUpload {
            path: AGENT_CA_CERT.into(),
            mode: 0o644,
            owner: (0, 0),
            contents: bundle.into_bytes(),
        };
        self.upload(&[file], None).await
    }

    async fn trust_ca(&self) -> Result<(), LaunchError> {
        if self.plan.agent_trusts.is_empty() {
            return Ok(());
        }
        // Appending to the system bundle is what curl, git, Go, OpenSSL and (through
        // SSL_CERT_FILE/REQUESTS_CA_BUNDLE) Python read; `update-ca-certificates` would do the
        // same and rehash /etc/ssl/certs, at about a second per launch.
        let append = format!("cat {AGENT_CA_CERT} >> {SYSTEM_CA_BUNDLE}");
        self.exec(&["sh".into(), "-c".into(), append], "0").await
    }

    async fn write_prompt_and_skills(&self) -> Result<(), LaunchError> {
        tracing::info!(
            "provision: system prompt and {} skill(s)",
            self.plan.agent.skills.len()
        );
        let mut files = vec![FileUpload {
            path: AGENT_PROMPT_PATH.into(),
            mode: 0o644,
            owner: AGENT_UID,
            contents: self.plan.agent.prompt.clone().into_bytes(),
        }];
        for skill in &self.plan.agent.skills {
            files.extend(skill_files(&self.skills_root, skill).map_err(at(Step::Provision))?);
        }
        self.upload(&files, Some(AGENT_HOME)).await
    }

    async fn write_plugin_files(&self) -> Result<(), LaunchError> {
        let files: Vec<FileUpload> = self
            .plan
            .agent
            .files
            .iter()
            .map(|f| FileUpload {
                path: f.path.clone(),
                mode: f.mode,
                owner: if f.path.starts_with(AGENT_HOME) {
                    AGENT_UID
                } else {
                    (0, 0)
                },
                contents: f.contents.clone(),
            })
            .collect();
        tracing::info!("provision: {} plugin file(s)", files.len());
        self.upload(&files, Some(AGENT_HOME)).await
    }

    async fn run_plugin_steps(&self) -> Result<(), LaunchError> {
        for step in &self.plan.agent.provision {
            tracing::info!("provision: {} ({})", step.name, step.plugin);
            self.exec(&step.command, "agent").await?;
        }
        Ok(())
    }

    async fn upload(
        &self,
        files: &[FileUpload],
        owned_root: Option<&str>,
    ) -> Result<(), LaunchError> {
        self.engine
            .upload(self.container, files, owned_root)
            .await
            .map_err(|e| at(Step::Provision)(e.to_string()))
    }

    async fn exec(&self, command: &[String], user: &str) -> Result<(), LaunchError> {
        let fail = at(Step::Provision);
        let out = self
            .engine
            .exec(self.container, command, Some(user))
            .await
            .map_err(|e| fail(e.to_string()))?;
        if out.code != 0 {
            return Err(fail(format!(
                "`{}` exited with {} in the agent:\n{}{}",
                command.join(" "),
                out.code,
                out.stdout,
                out.stderr
            )));
        }
        Ok(())
    }
}

/// Every file of `~/.claude/skills/<skill>/`, placed under the agent's `~/.claude/skills/<skill>/`.
fn skill_files(root: &Path, skill: &str) -> Result<Vec<FileUpload>, String> {
    let dir = root.join(skill);
    if !dir.is_dir() {
        return Err(format!(
            "skill `{skill}` is not at {}; install it there or remove it from the agent's `skills`",
            dir.display()
        ));
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| format!("reading {}: {e}", current.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_symlink() {
                continue;
            } else if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(&dir).expect("walked from dir");
                let contents =
                    std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                files.push(FileUpload {
                    path: format!("{AGENT_HOME}/.claude/skills/{skill}/{}", relative.display()),
                    mode: 0o644,
                    owner: AGENT_UID,
                    contents,
                });
            }
        }
    }
    Ok(files)
}
