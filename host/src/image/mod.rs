//! Images: found or built, never pulled implicitly.
//!
//! - [`ImagePlan::Reference`]: must exist on the engine; a missing one is an error that says how to
//!   get it.
//! - [`ImagePlan::Context`]: built from the `docker/<name>/` context embedded in the binary (plus
//!   the static binaries that image needs), tagged `bottle/<name>:<content hash>`; an unchanged
//!   context is found by its tag and not rebuilt.
//! - [`ImagePlan::Dockerfile`]: built from the Dockerfile's directory on disk.
//! - The agent image carries Claude Code's native binary when asked ([`claude_code`]).

pub mod claude_code;
mod context;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::plan::model::ImagePlan;
pub use context::{Context, Entry};

/// How images are built.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// Put Claude Code into the agent image.
    pub install_claude_code: bool,
    /// Claude Code version (default: the registry's latest).
    pub claude_code_version: Option<String>,
    /// Where downloaded Claude Code binaries are cached.
    pub cache_dir: PathBuf,
    /// No progress output.
    pub quiet: bool,
}

/// Why an image is not available.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A reference image is not on the engine.
    #[error(
        "image `{0}` is not on this Docker engine and bottle never pulls implicitly; `docker pull {0}` (or `docker load` it), or name another image in the bottle manifest"
    )]
    Missing(String),
    /// No embedded context by that name.
    #[error("no image context `docker/{0}/` is built into this bottle binary")]
    UnknownContext(String),
    /// The build failed.
    #[error("building {tag} failed: {message}\nlast build output:\n{log}")]
    Build {
        /// The tag being built.
        tag: String,
        /// The engine's error.
        message: String,
        /// The last lines of build output.
        log: String,
    },
    /// Reading a context from disk failed.
    #[error("reading the build context {0}: {1}")]
    Context(PathBuf, std::io::Error),
    /// Getting Claude Code failed.
    #[error(transparent)]
    ClaudeCode(#[from] claude_code::ClaudeCodeError),
    /// The engine failed.
    #[error("talking to the Docker engine about {0}: {1}")]
    Engine(String, bollard::errors::Error),
}

/// Finds or builds images.
pub struct ImageBuilder<'a> {
    docker: &'a Docker,
    options: ImageOptions,
}

impl<'a> ImageBuilder<'a> {
    /// A builder on `docker`.
    pub fn new(docker: &'a Docker, options: ImageOptions) -> Self {
        ImageBuilder { docker, options }
    }

    /// The image reference to create containers from.
    pub async fn ensure(&self, image: &ImagePlan) -> Result<String, ImageError> {
        match image {
            ImagePlan::Reference(reference) => {
                if self.exists(reference).await? {
                    Ok(reference.clone())
                } else {
                    Err(ImageError::Missing(reference.clone()))
                }
            }
            ImagePlan::Context(name) => self.build_embedded(name).await,
            ImagePlan::Dockerfile(path) => {
                let dir = Path::new(path).parent().unwrap_or(Path::new("."));
                let mut context =
                    Context::from_dir(dir, None).map_err(|e| ImageError::Context(dir.into(), e))?;
                // A bottle's own agent image gets Claude Code the way the default one does
                // (`claude-code/` and INSTALL_CLAUDE_CODE), so it stays the native binary that
                // the launcher packs on the host; a Dockerfile that ignores them still builds.
                let args = self.add_claude_code(&mut context)?;
                self.build(
                    &format!("bottle/custom:{}", context.digest()),
                    context,
                    args,
                )
                .await
            }
        }
    }

    /// An image FROM `base` with `cwd` (including `.git`) at /workspace, owned by the agent user.
    pub async fn workspace_image(&self, base: &str, cwd: &Path) -> Result<String, ImageError> {
        let mut context = Context::from_dir(cwd, Some("workspace"))
            .map_err(|e| ImageError::Context(cwd.into(), e))?;
        let dockerfile = format!(
            "FROM {base}\nCOPY --chown=1000:1000 workspace/ /workspace/\nWORKDIR /workspace\n"
        );
        context.add("Dockerfile", dockerfile.into_bytes(), 0o644);
        self.build(
            &format!(
                "{}{}",
                crate::docker::WORKSPACE_IMAGE_PREFIX,
                context.digest()
            ),
            context,
            HashMap::new(),
        )
        .await
    }

    async fn build_embedded(&self, name: &str) -> Result<String, ImageError> {
        let mut context =
            Context::embedded(name).ok_or_else(|| ImageError::UnknownContext(name.into()))?;
        let args = if name == "agent" {
            self.add_claude_code(&mut context)?
        } else {
            HashMap::new()
        };
        self.build(
            &format!("bottle/{name}:{}", context.digest()),
            context,
            args,
        )
        .await
    }

    /// Adds `claude-code/` (the binary when it is wanted) to an agent image's context; the build
    /// arguments that go with it.
    fn add_claude_code(
        &self,
        context: &mut Context,
    ) -> Result<HashMap<String, String>, ImageError> {
        let claude = if self.options.install_claude_code {
            let version = self.options.claude_code_version.as_deref();
            Some(claude_code::fetch(
                &self.options.cache_dir,
                version,
                self.options.quiet,
            )?)
        } else {
            None
        };
        // `COPY claude-code/` needs the directory even without the binary.
        context.add("claude-code/.keep", Vec::new(), 0o644);
        // The binary is large: the tag covers its version, not its bytes.
        let marker = claude
            .as_ref()
            .map_or_else(|| "none".to_owned(), |c| c.version.clone());
        context.add_digest_only("claude-code/VERSION", marker.into_bytes());
        if let Some(claude) = claude {
            context.add_lazy("claude-code/claude", claude.path, 0o755);
        }
        let mut args = HashMap::new();
        args.insert(
            "INSTALL_CLAUDE_CODE".to_owned(),
            u8::from(self.options.install_claude_code).to_string(),
        );
        Ok(args)
    }

    async fn exists(&self, reference: &str) -> Result<bool, ImageError> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(ImageError::Engine(reference.into(), e)),
        }
    }

    /// Build `context` as `tag` unless an image with that tag exists.
    async fn build(
        &self,
        tag: &str,
        context: Context,
        args: HashMap<String, String>,
    ) -> Result<String, ImageError> {
        if self.exists(tag).await? {
            tracing::debug!(tag, "image up to date");
            return Ok(tag.to_owned());
        }
        let archive = context
            .tar()
            .map_err(|e| ImageError::Context(PathBuf::from(tag), e))?;
        let progress = self.progress(tag);
        let mut labels = HashMap::new();
        labels.insert(crate::docker::labels::MANAGED.to_owned(), "true".to_owned());
        let options = BuildImageOptionsBuilder::default()
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .buildargs(&args)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(archive.into())));
        let mut log: Vec<String> = Vec::new();
        while let Some(step) = stream.next().await {
            let fail = |message: String, log: &[String]| ImageError::Build {
                tag: tag.to_owned(),
                message,
                log: log[log.len().saturating_sub(15)..].join("\n"),
            };
            let step = step.map_err(|e| fail(e.to_string(), &log))?;
            if let Some(line) = step
                .stream
                .as_deref()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
            {
                progress.set_message(format!("{tag}: {}", truncate(line, 70)));
                log.push(line.to_owned());
            }
            if let Some(error) = step.error_detail.and_then(|d| d.message) {
                return Err(fail(error, &log));
            }
        }
        progress.finish_and_clear();
        if !self.exists(tag).await? {
            return Err(ImageError::Build {
                tag: tag.into(),
                message: "the engine reported no image".into(),
                log: log.join("\n"),
            });
        }
        Ok(tag.to_owned())
    }

    fn progress(&self, tag: &str) -> ProgressBar {
        if self.options.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} building {msg} ({elapsed})")
                .expect("valid template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message(tag.to_owned());
        bar
    }
}

fn truncate(line: &str, max: usize) -> &str {
    match line.char_indices().nth(max) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}
