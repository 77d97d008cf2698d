//! The one `bindgen!` boundary between the host and the `bottle:plugin` WIT package.
//!
//! Everything generated lives here. Today `plan::assemble` and `plan::validate` read the generated
//! types of a contribution directly while converting it into the plan model; they are the only
//! other users. Each world gets its own module because both import the package's `host` and
//! `types` interfaces.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sidecar-plugin",
});

/// The `policy-module` world: organisation rules over a finished plan.
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy-module",
    });
}

/// Package versions of `bottle:plugin` this host serves, newest first. A component targeting any
/// other version is refused with both lists in the message; serving a new version means one more
/// `bindgen!` module here and a conversion into the plan model, beside the old one.
pub const SERVED_VERSIONS: &[&str] = &["0.1.0"];

/// The `bottle:plugin` package version a component's exports target, and which interface, from
/// export names such as `bottle:plugin/sidecar@0.1.0`.
pub fn targeted_version(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Option<(String, String)> {
    component
        .component_type()
        .exports(engine)
        .find_map(|(name, _)| {
            let rest = name.strip_prefix("bottle:plugin/")?;
            let (interface, version) = rest.split_once('@')?;
            Some((interface.to_owned(), version.to_owned()))
        })
}
