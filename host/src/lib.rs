//! `bottle`: run an AI coding agent in a Docker bottle that cannot leak what it must not.
//!
//! Data flows one way: manifest → plan (plugins contribute) → launch → session → teardown. This
//! crate is the host: the only part that touches the file system, secrets and Docker. See
//! ARCHITECTURE.md for the map and the dependency rule between these modules.

pub mod assets;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod dashboard;
pub mod docker;
pub mod edit;
pub mod home;
pub mod image;
pub mod launch;
pub mod learn;
pub mod lifecycle;
pub mod migrate;
pub mod model_login;
pub mod names;
pub mod plan;
pub mod plugin;
pub mod policy_view;
pub mod prepare;
pub mod render;
pub mod sidecars;
pub mod snapshot;
pub mod starter;
pub mod supervise;
pub mod trust;
