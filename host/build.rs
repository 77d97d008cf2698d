//! Builds what the `bottle` binary embeds, each with a nested `cargo build` in its own target
//! directory (as wasmtime's test-programs artifacts crate does):
//! - the plugin crates for `wasm32-wasip2`, into `$OUT_DIR/plugins/` (`src/plugin/builtin.rs` embeds
//!   the built-ins; with the `test-plugins` feature the tests find the test plugins and the
//!   example policy modules there);
//! - the sidecar programs as static `x86_64-unknown-linux-musl` binaries, into `$OUT_DIR/bin/`
//!   (`src/assets.rs` embeds them; image builds put them in their contexts);
//! - a table of every file of the `docker/<image>/` build contexts, `$OUT_DIR/contexts.rs`.
//!
//! It needs cargo, the two rustup targets and Debian's `musl-tools` (`scripts/prerequisites`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, file name in `$OUT_DIR/plugins/`) of the built-in plugins `bottle` embeds.
const PLUGINS: &[(&str, &str)] = &[
    ("bottle-plugin-pipelock", "pipelock"),
    ("bottle-plugin-egress-proxy", "egress-proxy"),
    ("bottle-plugin-git-gate", "git-gate"),
    ("bottle-plugin-supervise", "supervise"),
];

/// Plugins only the tests and benches load, built with the `test-plugins` feature (which the
/// crate's own dev-dependency on itself turns on), so `cargo install` compiles none of them.
const TEST_PLUGINS: &[(&str, &str)] = &[
    ("bottle-test-plugin-hostile", "test-hostile"),
    ("bottle-test-plugin-future", "test-future"),
    ("bottle-test-plugin-bench", "test-bench"),
    ("bottle-policy-deny-hosts", "policy-deny-hosts"),
    (
        "bottle-policy-credential-hygiene",
        "policy-credential-hygiene",
    ),
];

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "plugin";

/// (package, binary) of the sidecar programs embedded as static binaries.
const SIDECAR_BINARIES: &[(&str, &str)] = &[
    ("bottle-egress-proxy", "bottle-egress-proxy"),
    ("bottle-probe", "bottle-probe"),
    ("bottle-git-gate", "bottle-git-gate"),
    ("bottle-supervise", "bottle-supervise"),
];
const MUSL: &str = "x86_64-unknown-linux-musl";
const SIDECAR_PROFILE: &str = "sidecar";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("host/ lives in the workspace");
    // Relative to this package, so that a target directory copied to another checkout is rebuilt
    // from that checkout's sources instead of trusting the other one's.
    for watched in [
        "wit",
        "plugins",
        "crates",
        "sidecars",
        "docker",
        "tests/plugins",
        "policies",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed=../{watched}");
    }
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("bottle-plugins");
    let targets = target_dir
        .parent()
        .expect("target dir has a parent")
        .to_owned();
    build_sidecars(
        workspace,
        &targets.join("bottle-sidecars"),
        &out_dir.join("bin"),
    );
    build_statx_shim(&manifest_dir, &out_dir.join("bin"));
    write_context_table(workspace, &out_dir.join("contexts.rs"));
    let mut plugins = PLUGINS.to_vec();
    if std::env::var_os("CARGO_FEATURE_TEST_PLUGINS").is_some() {
        plugins.extend_from_slice(TEST_PLUGINS);
    }
    build_plugins(workspace, &target_dir, &plugins);
    let dest = out_dir.join("plugins");
    std::fs::create_dir_all(&dest).expect("create $OUT_DIR/plugins");
    for (package, name) in &plugins {
        let built = target_dir
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{}.wasm", package.replace('-', "_")));
        std::fs::copy(&built, dest.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    }
}

fn build_plugins(workspace: &Path, target_dir: &Path, plugins: &[(&str, &str)]) {
    let mut command = nested_cargo(workspace, TARGET, PROFILE, target_dir);
    for (package, _) in plugins {
        command.args(["-p", package]);
    }
    let status = command.status().expect("run cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins for {TARGET} failed; is the target installed? \
         (`rustup target add {TARGET}`)"
    );
}

fn build_sidecars(workspace: &Path, target_dir: &Path, dest: &Path) {
    let mut command = nested_cargo(workspace, MUSL, SIDECAR_PROFILE, target_dir);
    for (package, _) in SIDECAR_BINARIES {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .expect("run cargo to build the sidecar programs");
    assert!(
        status.success(),
        "building the sidecar programs for {MUSL} failed; run scripts/prerequisites \
         (`rustup target add {MUSL}` and Debian's musl-tools)"
    );
    std::fs::create_dir_all(dest).expect("create $OUT_DIR/bin");
    for (_, binary) in SIDECAR_BINARIES {
        let built = target_dir.join(MUSL).join(SIDECAR_PROFILE).join(binary);
        std::fs::copy(&built, dest.join(binary))
            .unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    }
}

/// The statx shim preloaded into an agent under gVisor (`host/gvisor/statx.c`), built with the C
/// compiler the host build links with, against no libc.
fn build_statx_shim(manifest_dir: &Path, dest: &Path) {
    let source = manifest_dir.join("gvisor/statx.c");
    println!("cargo:rerun-if-changed={}", source.display());
    std::fs::create_dir_all(dest).expect("create $OUT_DIR/bin");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args([
            "-shared",
            "-fPIC",
            "-O2",
            "-nostdlib",
            "-fno-stack-protector",
            "-Wl,-soname,libbottle-statx.so",
            "-o",
        ])
        .arg(dest.join("libbottle-statx.so"))
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("run {compiler} to build {}: {e}", source.display()));
    assert!(
        status.success(),
        "building {} failed; a C compiler (`cc`, Debian's gcc) is needed",
        source.display()
    );
}

/// `CONTEXTS: &[(image, relative path, bytes)]` for every file under `docker/<image>/`.
fn write_context_table(workspace: &Path, dest: &Path) {
    let mut rows = Vec::new();
    let docker = workspace.join("docker");
    let mut images: Vec<PathBuf> = std::fs::read_dir(&docker)
        .expect("read docker/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    images.sort();
    for image in images {
        let name = image.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        collect_files(&image, &mut files);
        files.sort();
        for file in files {
            let relative = file
                .strip_prefix(&image)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if relative == ".gitignore" || SIDECAR_BINARIES.iter().any(|(_, b)| relative == *b) {
                continue;
            }
            rows.push(format!(
                "    ({name:?}, {relative:?}, include_bytes!({:?})),",
                file.display().to_string()
            ));
        }
    }
    let table = format!(
        "/// Every file of the `docker/<image>/` build contexts: (image, path in the context, bytes).\n\
         pub const CONTEXTS: &[(&str, &str, &[u8])] = &[\n{}\n];\n",
        rows.join("\n")
    );
    std::fs::write(dest, table).expect("write contexts.rs");
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("read a docker context")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

/// A `cargo build` for `target` and `profile` in its own target directory, without the outer
/// build's flags and wrappers (they are for the host target).
fn nested_cargo(workspace: &Path, target: &str, profile: &str, target_dir: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--target", target, "--profile", profile])
        .arg("--target-dir")
        .arg(target_dir);
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
    command
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by cargo"))
}
