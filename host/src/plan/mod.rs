//! The plan stage: manifest + plugins → a [`Plan`](model::Plan) that names every container, network,
//! file and variable the launch will create, with secrets only by name.
//!
//! - [`model`]: the plan types (serialisable; what `--dry-run` prints);
//! - [`assemble`]: the two plugin phases and the merge;
//! - [`validate`]: the rules every plugin output must pass;
//! - [`grants`]: permission requests and what grants them;
//! - [`order`]: start-order stages and cycle detection.

pub mod assemble;
pub mod grants;
pub mod model;
pub mod order;
pub mod validate;

pub use assemble::{DRY_RUN_CIDR, PlanError, PlanInput, assemble};
pub use model::Plan;
