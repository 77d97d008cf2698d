//! bottle's egress proxy: the only way out of a bottle.
//!
//! An HTTP forward proxy (absolute-URI requests and `CONNECT`) that decides every request on its
//! real target — the `CONNECT` authority or the absolute URI, never a Host header the agent
//! controls — and:
//!
//! - refuses hosts off the allowlist ([`host`]) with a 403 saying how to allow them;
//! - intercepts TLS with leaf certificates from the bottle's CA ([`tls`]) so it can see requests,
//!   except for `passthrough` hosts, whose ClientHello SNI must still match ([`sni`]);
//! - applies credential routes: strips the client's `Authorization`, enforces path allowlists on
//!   the normalised path ([`path`]), methods, TLS and the agent's own credentials
//!   ([`route_guard`]), injects the route's token and cuts it out of the answer ([`token_guard`]);
//! - refuses git pushes, and dialling private, loopback, link-local and other special addresses
//!   ([`ssrf`]), resolving once and dialling what it checked ([`upstream`]);
//! - scans methods, URLs, headers and bodies for secrets ([`dlp`], over `bottle-secret-scan`),
//!   bodies as they stream, decompressed and decoded ([`scan`]);
//! - writes one JSON audit line per decision ([`audit`]) and reloads its configuration on
//!   demand ([`ProxyHandle::reload`]), in-flight requests keeping theirs.
//!
//! [`Proxy`] runs it in-process; the `bottle-egress-proxy` binary wraps it with a CLI and SIGHUP.

#![warn(missing_docs)]

pub mod audit;
pub mod body;
mod connect;
pub mod dlp;
mod handler;
pub mod host;
pub mod net;
pub mod path;
pub mod policy;
mod proxy;
pub mod rewind;
pub mod route_guard;
pub mod scan;
pub mod sni;
pub mod ssrf;
pub mod tls;
pub mod token_guard;
pub mod upstream;
pub mod ws;

pub use handler::is_git_push;
pub use policy::{ConfigError, Policy, load_config};
pub use proxy::{Proxy, ProxyHandle, ProxyOptions, StartError};
