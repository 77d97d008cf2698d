//! Organisation policy modules: components of the `policy-module` world, found in
//! `$BOTTLE_POLICY_DIR` or `~/.bottle/policy/`, run over a read-only view of the finished plan
//! ([`bottle_plan_view::PlanView`], JSON, built by [`crate::policy_view`]) before anything is
//! launched.
//!
//! Each module runs in a fresh sandboxed instance under the same limits as plugins (no
//! capabilities, memory cap, fuel budget and deadline per call). A module that traps, runs out of
//! fuel or time, or cannot be loaded fails the launch closed, naming the module; any violation
//! stops the launch with the module, the rule and the offending part of the plan.

use std::path::{Path, PathBuf};

use bottle_plan_view as view;

use super::runtime::{CompiledPolicy, PluginError, PluginErrorKind, PluginRuntime};
use crate::home::Home;

/// Where policy modules are read from: `$BOTTLE_POLICY_DIR`, else `<home>/policy`.
pub fn policy_dir(home: &Home) -> PathBuf {
    match std::env::var_os("BOTTLE_POLICY_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => home.policy_dir(),
    }
}

/// One loaded module.
pub struct LoadedPolicy {
    /// The file it came from.
    pub path: PathBuf,
    /// Compiled, ready to instantiate.
    pub compiled: CompiledPolicy,
}

/// A broken rule, with the module that reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The module's name.
    pub module: String,
    /// The rule's identifier.
    pub rule: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The offending part of the plan, as a JSON pointer.
    pub subject: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "policy `{}`, rule `{}` at {}: {}",
            self.module, self.rule, self.subject, self.message
        )
    }
}

/// Every module in `dir` (none when it does not exist), compiled or loaded from the cache.
pub fn load(runtime: &PluginRuntime, dir: &Path) -> Result<Vec<LoadedPolicy>, PluginError> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PluginError::new(
                &dir.display().to_string(),
                PluginErrorKind::Load(format!("cannot list the policy directory: {e}")),
            ));
        }
    };
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let label = path.display().to_string();
            let wasm = std::fs::read(&path).map_err(|e| {
                PluginError::new(&label, PluginErrorKind::Load(format!("cannot read: {e}")))
            })?;
            let compiled = runtime.compile_policy(&label, &wasm)?;
            Ok(LoadedPolicy { path, compiled })
        })
        .collect()
}

/// Run every module over `view`; the findings of all of them (a module that fails is an error).
pub fn check(
    runtime: &PluginRuntime,
    policies: &[LoadedPolicy],
    view: &view::PlanView,
) -> Result<Vec<Finding>, PluginError> {
    let json = serde_json::to_string(view).expect("plan views serialize");
    let mut findings = Vec::new();
    for policy in policies {
        let label = policy.path.display().to_string();
        let (module, violations) = runtime.check_policy(&policy.compiled, &label, &json)?;
        findings.extend(violations.into_iter().map(|v| Finding {
            module: module.clone(),
            rule: v.rule,
            message: v.message,
            subject: v.subject,
        }));
    }
    Ok(findings)
}
