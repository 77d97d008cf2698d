//! `bottle plugins …`: list, add, info, remove, check, new.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::Format;
use crate::home::Home;
use crate::plugin::install;
use crate::plugin::{PluginRuntime, PluginSource, Registry, RuntimeLimits};
use crate::prepare;

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every plugin this host loads: name, version, WIT package, source and sha256.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Validate a component, precompile it into the cache and install it.
    Add {
        /// The component (`.wasm`, world `sidecar-plugin`).
        file: PathBuf,
    },
    /// One installed plugin's record and description.
    Info {
        /// The plugin's name.
        name: String,
    },
    /// Uninstall a plugin.
    Remove {
        /// The plugin's name.
        name: String,
    },
    /// Run a component's `plan` and `finalize` through the host's validation and print what it
    /// contributes, without installing it.
    Check {
        /// The component.
        file: PathBuf,
        /// A YAML file with the plugin's manifest section (and optionally `grants:`), as in a
        /// bottle manifest.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Write a new plugin crate from the template into `./<name>`.
    New {
        /// The plugin's name, `[a-z][a-z0-9-]*`.
        name: String,
        /// Where the bottle plugin SDK is (default: the one this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
        /// Directory to create (default: `./<name>`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Run a plugin command.
pub fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    match command {
        PluginsCommand::List { format } => list(&home, format),
        PluginsCommand::Add { file } => add(&home, &file),
        PluginsCommand::Info { name } => info(&home, &name),
        PluginsCommand::Remove { name } => {
            let record = install::remove(&home.plugins_dir(), &name)?;
            eprintln!("removed plugin `{}` {}", record.name, record.version);
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Check {
            file,
            config,
            format,
        } => check(&home, &file, config.as_deref(), format),
        PluginsCommand::New { name, sdk, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            crate::plugin::template::write(&name, &dir, sdk.as_deref())?;
            eprintln!(
                "wrote plugin `{name}` into {}; build it with `cargo build --target wasm32-wasip2 --release` \
                 there, then `bottle plugins add`",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime(home: &Home) -> anyhow::Result<PluginRuntime> {
    PluginRuntime::new(Some(home.cache_dir()), RuntimeLimits::default())
}

fn list(home: &Home, format: Format) -> anyhow::Result<ExitCode> {
    let registry = prepare::load_plugins(home)?;
    let rows: Vec<serde_json::Value> = registry
        .plugins()
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.description.name,
                "version": p.description.version,
                "wit": format!("bottle:plugin@{}", p.wit_version),
                "source": p.source.to_string(),
                "sha256": p.sha256,
                "sections": p.description.sections,
                "summary": p.description.summary,
            })
        })
        .collect();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Text => {
            println!(
                "{:<14} {:<8} {:<20} {:<10} sha256",
                "NAME", "VERSION", "WIT", "SOURCE"
            );
            for p in registry.plugins() {
                println!(
                    "{:<14} {:<8} {:<20} {:<10} {}",
                    p.description.name,
                    p.description.version,
                    format!("bottle:plugin@{}", p.wit_version),
                    p.source.to_string(),
                    &p.sha256[..16],
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn add(home: &Home, file: &Path) -> anyhow::Result<ExitCode> {
    let added = install::add(runtime(home)?, &home.plugins_dir(), file)?;
    let r = &added.record;
    eprintln!(
        "{} plugin `{}` {} (bottle:plugin@{}, sha256 {}): validated and precompiled in {:?}; \
         a bottle enables it with its section `{}`",
        if added.replaced { "replaced" } else { "added" },
        r.name,
        r.version,
        r.wit,
        &r.sha256[..16],
        added.compile_time + added.describe_time,
        r.sections.join("`, `"),
    );
    Ok(ExitCode::SUCCESS)
}

fn info(home: &Home, name: &str) -> anyhow::Result<ExitCode> {
    if let Some(builtin) = crate::plugin::builtin::BUILTINS
        .iter()
        .find(|b| b.name == name)
    {
        println!("{name}: built in ({} bytes)", builtin.wasm.len());
        return Ok(ExitCode::SUCCESS);
    }
    let record = install::records(&home.plugins_dir())
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| anyhow::anyhow!("no plugin `{name}`; `bottle plugins list` shows them"))?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(ExitCode::SUCCESS)
}

/// What `check` reads from `--config`.
#[derive(serde::Deserialize, Default)]
struct CheckConfig {
    #[serde(default)]
    grants: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(flatten)]
    sections: serde_json::Map<String, serde_json::Value>,
}

fn check(
    home: &Home,
    file: &Path,
    config: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config: CheckConfig = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            yaml_serde::from_str(&text)
                .with_context(|| format!("{} is not a YAML mapping of sections", path.display()))?
        }
        None => CheckConfig::default(),
    };
    let grants =
        bottle_manifest::grants::parse_standalone(config.grants).map_err(anyhow::Error::msg)?;
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut registry = Registry::new(runtime(home)?);
    registry.add(PluginSource::File(file.to_owned()), None, &wasm)?;
    let mut input = prepare::check_input(config.sections);
    input.grants.by_plugin = grants;
    let plan = crate::plan::assemble(&mut registry, &input)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Format::Text => print!("{}", crate::render::dry_run(&plan)),
    }
    Ok(ExitCode::SUCCESS)
}
