//! Plugins: WebAssembly components that contribute to the launch plan.
//!
//! - [`bindings`]: the generated WIT types (the one `bindgen!` boundary);
//! - [`runtime`]: the sandboxed wasmtime engine, limits and the precompiled-component cache;
//! - [`builtin`]: the four plugins embedded in this binary;
//! - [`registry`]: finding, loading and describing every plugin of a run.

pub mod bindings;
pub mod builtin;
pub mod registry;
pub mod runtime;

pub use registry::{LoadedPlugin, PluginSource, Registry};
pub use runtime::{PluginError, PluginRuntime, RuntimeLimits};
