//! Plugins: WebAssembly components that contribute to the launch plan.
//!
//! - [`bindings`]: the generated WIT types (the one `bindgen!` boundary);
//! - [`runtime`]: the sandboxed wasmtime engine, limits and the precompiled-component cache;
//! - [`builtin`]: the four plugins embedded in this binary;
//! - [`registry`]: finding, loading and describing every plugin of a run;
//! - [`install`]: `bottle plugins add|remove` and the sha256 record of each installed component;
//! - [`policy`]: organisation policy modules run over the finished plan;
//! - [`returned`]: the size of what a plugin call returned, bounded per call.

pub mod bindings;
pub mod builtin;
pub mod install;
pub mod policy;
pub mod registry;
pub mod returned;
pub mod runtime;
pub mod template;

pub use registry::{LoadedPlugin, PluginSource, Registry};
pub use runtime::{PluginError, PluginRuntime, RuntimeLimits};
