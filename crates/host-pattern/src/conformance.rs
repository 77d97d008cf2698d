//! The cases every reader of host patterns must agree on.
//!
//! Each crate that matches hosts against allowlist entries (the proxy, supervise, the plan's
//! grants, the policy examples) runs this table through its own entry point in its tests, so a
//! proposal, a plan and the proxy give the same answer for the same pattern.

/// `(pattern, host, whether the host matches)`.
pub const CASES: &[(&str, &str, bool)] = &[
    ("registry.*.org", "registry.npmjs.org", true),
    ("registry.*.org", "registry.evil.example.org", false),
    ("registry.*.org", "registry.org", false),
    ("registry.*.org", "registry.npmjs.org.evil", false),
    ("*.example.com", "api.example.com", true),
    ("*.example.com", "API.Example.COM.", true),
    ("*.example.com", "a.b.example.com", false),
    ("*.example.com", "example.com", false),
    ("*.example.com", "evilexample.com", false),
    ("*.example.com", "example.com.evil.net", false),
    ("*.*.example.com", "a.b.example.com", true),
    ("*.*.example.com", "b.example.com", false),
    ("example.com", "EXAMPLE.com.", true),
    ("example.com", "api.example.com", false),
    ("Example.COM.", "example.com", true),
    ("10.0.0.1", "10.0.0.1", true),
    ("10.0.0.1", "10.0.0.2", false),
    ("[::1]", "::1", true),
    ("0:0::1", "[::1]", true),
    ("*.1.2.example", "4.1.2.example", true),
    ("*.example.com", "10.0.0.1", false),
];
