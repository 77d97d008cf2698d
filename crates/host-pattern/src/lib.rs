//! Host names and allowlist host patterns: the one grammar and the one matcher of bottle.
//!
//! The manifest, the egress proxy's configuration and the proxy itself, the plugins, the plan's
//! grants, supervise proposals and the policy examples all read host patterns through this crate,
//! so a proposal, a plan and the proxy can never give two answers for the same pattern.
//!
//! # Grammar
//!
//! A [`HostName`] is a DNS name or an IP literal:
//!
//! - a DNS name is 1 to 253 characters of dot-separated labels; a label is 1 to 63 ASCII letters,
//!   digits, `-` and `_`, and neither starts nor ends with `-` (RFC 1123, plus `_` as used by
//!   service names); the last label is not all digits (that would read as an IPv4 address);
//!   internationalised names are written in their ASCII (`xn--…` punycode) form;
//! - an IP literal is an IPv4 or IPv6 address, an IPv6 one with or without brackets, and no zone;
//! - case and one trailing dot do not matter: the canonical form is lower case without the dot,
//!   an IP in its standard text form.
//!
//! A [`HostPattern`] is a host name or IP literal, or a DNS name in which some labels are `*`:
//!
//! - `*` stands for **exactly one whole label**, wherever it is: `registry.*.org` matches
//!   `registry.npmjs.org` but neither `registry.evil.example.org` nor `registry.org`;
//!   `*.example.com` matches `api.example.com` but neither `example.com` nor `a.b.example.com`
//!   (write those as separate entries, such as `example.com` and `*.*.example.com`);
//! - `*` is never part of a label (`api-*.example.com` is refused) and a pattern needs at least
//!   one literal label (`*` and `*.*` are refused);
//! - a wildcard never matches an IP literal, and IP literals are never wildcarded.
//!
//! One label everywhere is the narrowest consistent rule: what a pattern allows can be read off
//! the pattern by counting its dots.

pub mod conformance;
mod error;
pub mod known;
mod name;
mod pattern;

pub use error::{HostError, Problem};
pub use name::HostName;
pub use pattern::HostPattern;
