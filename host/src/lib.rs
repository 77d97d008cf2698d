//! tmp
pub mod home;
pub mod names;
pub mod plan;
pub mod plugin;
pub mod render;
