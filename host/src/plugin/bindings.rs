//! The one `bindgen!` boundary between the host and the `bottle:plugin` WIT package.
//!
//! Everything generated lives here; the rest of the host converts these types into the plan model
//! (see `plugin::convert`) and never hands them around.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sidecar-plugin",
});
