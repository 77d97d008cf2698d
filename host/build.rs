//! Builds the plugin crates for `wasm32-wasip2` and puts the components in `$OUT_DIR/plugins/`, where
//! `src/plugin/builtin.rs` embeds the built-ins and the tests find the hostile test plugins.
//!
//! It runs a nested `cargo build` with its own target directory (as wasmtime's test-programs
//! artifacts crate does), so it needs nothing but cargo and the `wasm32-wasip2` rustup target.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, file name in `$OUT_DIR/plugins/`).
const PLUGINS: &[(&str, &str)] = &[
    ("bottle-plugin-pipelock", "pipelock"),
    ("bottle-plugin-egress-proxy", "egress-proxy"),
    ("bottle-plugin-git-gate", "git-gate"),
    ("bottle-plugin-supervise", "supervise"),
    ("bottle-test-plugin-hostile", "test-hostile"),
];

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "plugin";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("host/ lives in the workspace");
    for watched in [
        "wit",
        "plugins",
        "crates/plugin-sdk",
        "crates/egress-config",
        "tests/plugins",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("bottle-plugins");
    build_plugins(workspace, &target_dir);
    let dest = out_dir.join("plugins");
    std::fs::create_dir_all(&dest).expect("create $OUT_DIR/plugins");
    for (package, name) in PLUGINS {
        let built = target_dir
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{}.wasm", package.replace('-', "_")));
        std::fs::copy(&built, dest.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    }
}

fn build_plugins(workspace: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(target_dir);
    for (package, _) in PLUGINS {
        command.args(["-p", package]);
    }
    // The outer build's flags and wrappers are for the host target, not for the components.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("run cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins for {TARGET} failed; is the target installed? \
         (`rustup target add {TARGET}`)"
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by cargo"))
}
