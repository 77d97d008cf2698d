//! Binaries and build contexts embedded in `bottle` by `build.rs`, so one executable carries
//! everything a launch needs.

/// The static health prober copied into every sidecar (`bottle-probe`, x86_64 musl).
pub const PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bin/bottle-probe"));

/// The static egress proxy (`bottle-egress-proxy`, x86_64 musl), placed in its image's context.
pub const EGRESS_PROXY: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bin/bottle-egress-proxy"));

/// The static git gate (`bottle-git-gate`, x86_64 musl), placed in its image's context.
pub const GIT_GATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bin/bottle-git-gate"));

/// The static supervise MCP server (`bottle-supervise`, x86_64 musl), placed in its image's context.
pub const SUPERVISE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bin/bottle-supervise"));

/// The statx shim preloaded into glibc programs of an agent under gVisor (`host/gvisor/statx.c`).
pub const GVISOR_STATX_SHIM: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bin/libbottle-statx.so"));

include!(concat!(env!("OUT_DIR"), "/contexts.rs"));

/// Binaries that belong in an image's context besides its files in `docker/<image>/`.
pub fn context_binaries(image: &str) -> &'static [(&'static str, &'static [u8])] {
    match image {
        "egress-proxy" => &[("bottle-egress-proxy", EGRESS_PROXY)],
        "git-gate" => &[("bottle-git-gate", GIT_GATE)],
        "supervise" => &[("bottle-supervise", SUPERVISE)],
        _ => &[],
    }
}

/// Whether `docker/<image>/` is embedded.
pub fn has_context(image: &str) -> bool {
    CONTEXTS.iter().any(|(name, _, _)| *name == image)
}
