//! What a launch has created so far, so teardown removes exactly that, in reverse, whatever
//! interrupted the launch.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::docker::Engine;

/// One created object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A Docker network.
    Network(String),
    /// A Docker container.
    Container(String),
    /// A host directory holding key material.
    StageDir(PathBuf),
    /// An image holding the `--cwd` working tree.
    WorkspaceImage(String),
}

/// A shared, append-only record of created objects.
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Vec<Created>>>);

impl Ledger {
    /// Record an object *before* creating it: removing something that never came to exist is a
    /// no-op, while forgetting something that did would leak it.
    pub fn record(&self, created: Created) {
        self.0.lock().expect("ledger lock").push(created);
    }

    /// Forget an object whose creation the engine refused because the name is taken: it belongs to
    /// someone else and must not be torn down with this bottle.
    pub fn forget(&self, created: &Created) {
        let mut all = self.0.lock().expect("ledger lock");
        if let Some(i) = all.iter().rposition(|c| c == created) {
            all.remove(i);
        }
    }

    /// Everything recorded, newest first.
    pub fn newest_first(&self) -> Vec<Created> {
        let mut all = self.0.lock().expect("ledger lock").clone();
        all.reverse();
        all
    }

    /// Remove everything recorded, newest first; keeps going past failures and returns them.
    pub async fn teardown(&self, engine: &Engine) -> Vec<String> {
        let mut failures = Vec::new();
        for created in self.newest_first() {
            let result = match &created {
                Created::Container(name) => engine
                    .remove_container(name)
                    .await
                    .map_err(|e| e.to_string()),
                Created::Network(name) => {
                    engine.remove_network(name).await.map_err(|e| e.to_string())
                }
                Created::StageDir(path) => remove_dir(path),
                Created::WorkspaceImage(image) => engine
                    .remove_workspace_image(image)
                    .await
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = result {
                tracing::warn!("teardown: {e}");
                failures.push(e);
            }
        }
        self.0.lock().expect("ledger lock").clear();
        failures
    }
}

fn remove_dir(path: &PathBuf) -> Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}
