//! The built-in plugins, compiled to components by `build.rs` and embedded in the binary.

/// A plugin shipped inside the `bottle` binary.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinPlugin {
    /// The plugin's name (also what `describe` must return).
    pub name: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

/// Every built-in plugin, in the order they are planned.
pub const BUILTINS: &[BuiltinPlugin] = &[
    BuiltinPlugin {
        name: "pipelock",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/pipelock.wasm")),
    },
    BuiltinPlugin {
        name: "egress-proxy",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/egress-proxy.wasm")),
    },
    BuiltinPlugin {
        name: "git-gate",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/git-gate.wasm")),
    },
    BuiltinPlugin {
        name: "supervise",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/supervise.wasm")),
    },
];

/// Directory holding the components `build.rs` built for tests (the built-ins and the hostile test
/// plugins); not used at run time.
pub const BUILD_PLUGIN_DIR: &str = concat!(env!("OUT_DIR"), "/plugins");
