//! In-process tests of the egress proxy: bypass attempts refused (and audited), allowed paths
//! working, reloads. Everything runs on 127.0.0.1.

mod allowed;
mod bypass;
mod dlp;
mod harness;
mod learn;
mod reload;
mod routes;
