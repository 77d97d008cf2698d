//! Integration tests of bottle-manifest: one binary, one module per area.

mod agent;
mod bottle;
mod catalog;
mod common;
mod defaults;
mod egress;
mod errors;
mod generated;
mod git;
