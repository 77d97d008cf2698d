//! A component targeting `bottle:plugin@0.9.0`, for the host's version-mismatch test.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "sidecar-plugin" });
}

struct Future;

impl bindings::exports::bottle::plugin::sidecar::Guest for Future {
    fn describe() -> String {
        "from the future".into()
    }
}

bindings::export!(Future with_types_in bindings);
