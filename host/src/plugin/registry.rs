//! Every plugin of a run: the built-ins embedded in the binary and external components from
//! `~/.bottle/plugins/*.wasm`, each compiled (or loaded from the cache), instantiated and described.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::builtin::BUILTINS;
use super::runtime::{PluginError, PluginErrorKind, PluginInstance, PluginRuntime};
use crate::names;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginSource {
    /// Embedded in the `bottle` binary.
    Builtin,
    /// A component file.
    File(PathBuf),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::Builtin => f.write_str("built-in"),
            PluginSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What a plugin says about itself, checked by the host.
#[derive(Debug, Clone, Serialize)]
pub struct PluginDescription {
    /// Unique name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line.
    pub summary: String,
    /// Manifest sections it reads.
    pub sections: Vec<String>,
    /// Roles with priorities.
    pub roles: Vec<(String, i32)>,
}

/// A plugin ready to plan.
pub struct LoadedPlugin {
    /// What it says about itself.
    pub description: PluginDescription,
    /// Where it came from.
    pub source: PluginSource,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// The `bottle:plugin` package version it targets.
    pub wit_version: String,
    /// Whether compilation was skipped thanks to the cache.
    pub cached: bool,
    /// Time to compile or load from cache.
    pub compile_time: Duration,
    /// Time to instantiate and describe.
    pub instantiate_time: Duration,
    /// The live instance.
    pub instance: PluginInstance,
}

/// The plugins of one run.
pub struct Registry {
    runtime: PluginRuntime,
    plugins: Vec<LoadedPlugin>,
}

impl Registry {
    /// An empty registry on `runtime`.
    pub fn new(runtime: PluginRuntime) -> Self {
        Registry {
            runtime,
            plugins: Vec::new(),
        }
    }

    /// The built-ins plus every `*.wasm` in `external_dir` (if it exists), in that order.
    pub fn load(runtime: PluginRuntime, external_dir: Option<&Path>) -> Result<Self, PluginError> {
        let mut registry = Registry::new(runtime);
        for builtin in BUILTINS {
            registry.add(PluginSource::Builtin, Some(builtin.name), builtin.wasm)?;
        }
        if let Some(dir) = external_dir {
            for path in external_components(dir)? {
                let wasm = registry.runtime.read_component(&path)?;
                let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
                super::install::verify(&path, &sha256)?;
                registry.add(PluginSource::File(path), None, &wasm)?;
            }
        }
        Ok(registry)
    }

    /// Compile, instantiate and describe one component. `expected_name` pins a built-in's name.
    pub fn add(
        &mut self,
        source: PluginSource,
        expected_name: Option<&str>,
        wasm: &[u8],
    ) -> Result<&LoadedPlugin, PluginError> {
        let label = expected_name.map_or_else(|| source.to_string(), str::to_owned);
        let started = Instant::now();
        let compiled = self.runtime.compile(&label, wasm)?;
        let compile_time = started.elapsed();
        let started = Instant::now();
        let mut instance = self.runtime.instantiate(&compiled, &label)?;
        let info = instance.describe()?;
        let description = self.check_description(&label, &source, expected_name, info)?;
        instance = if description.name == label {
            instance
        } else {
            // Re-attribute the instance to the name it declared so later errors use it.
            self.runtime.instantiate(&compiled, &description.name)?
        };
        self.plugins.push(LoadedPlugin {
            description,
            source,
            sha256: compiled.sha256.clone(),
            wit_version: compiled.wit_version.clone(),
            cached: compiled.cached,
            compile_time,
            instantiate_time: started.elapsed(),
            instance,
        });
        Ok(self.plugins.last().expect("just pushed"))
    }

    /// The runtime the plugins run in (policy modules run in it too).
    pub fn runtime(&self) -> &PluginRuntime {
        &self.runtime
    }

    /// The loaded plugins, built-ins first.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// Mutable access for planning.
    pub fn plugins_mut(&mut self) -> &mut [LoadedPlugin] {
        &mut self.plugins
    }

    /// The manifest sections external plugins read (one per external plugin, named after it).
    pub fn external_sections(&self) -> BTreeSet<String> {
        self.plugins
            .iter()
            .filter(|p| p.source != PluginSource::Builtin)
            .flat_map(|p| p.description.sections.iter().cloned())
            .collect()
    }

    fn check_description(
        &self,
        label: &str,
        source: &PluginSource,
        expected_name: Option<&str>,
        info: super::bindings::exports::bottle::plugin::sidecar::PluginInfo,
    ) -> Result<PluginDescription, PluginError> {
        let invalid = |msg: String| PluginError::new(label, PluginErrorKind::Invalid(msg));
        if !names::is_slug(&info.name) {
            return Err(invalid(format!(
                "describe() gave the name `{}`, which is not of the form [a-z][a-z0-9-]*",
                info.name
            )));
        }
        if let Some(expected) = expected_name
            && info.name != expected
        {
            return Err(invalid(format!("describe() gave the name `{}`", info.name)));
        }
        if let Some(other) = self
            .plugins
            .iter()
            .find(|p| p.description.name == info.name)
        {
            return Err(invalid(format!(
                "its name `{}` is already taken by the plugin from {}; rename or remove one",
                info.name, other.source
            )));
        }
        for section in &info.sections {
            if !names::is_section(section) {
                return Err(invalid(format!(
                    "section `{section}` is not of the form [a-z][a-z0-9_]*"
                )));
            }
        }
        let own_section = info.name.replace('-', "_");
        if *source != PluginSource::Builtin
            && info
                .sections
                .iter()
                .any(|s| *s != info.name && *s != own_section)
        {
            return Err(invalid(format!(
                "an external plugin reads only its own manifest section `{}`, but it asked for {:?}",
                info.name, info.sections
            )));
        }
        if *source != PluginSource::Builtin
            && let Some(role) = info
                .roles
                .iter()
                .find(|r| bottle_plan_view::SecurityRole::parse(&r.role).is_some())
        {
            return Err(invalid(format!(
                "it offers the role `{}`, which only bottle's built-in security sidecars may fill",
                role.role
            )));
        }
        for role in &info.roles {
            if !names::is_slug(&role.role) {
                return Err(invalid(format!(
                    "role `{}` is not of the form [a-z][a-z0-9-]*",
                    role.role
                )));
            }
        }
        Ok(PluginDescription {
            name: info.name,
            version: info.version,
            summary: info.summary,
            sections: info.sections,
            roles: info
                .roles
                .into_iter()
                .map(|r| (r.role, r.priority))
                .collect(),
        })
    }
}

fn external_components(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let label = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PluginError::new(
                &label,
                PluginErrorKind::Load(format!("cannot list: {e}")),
            ));
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    paths.sort();
    Ok(paths)
}
