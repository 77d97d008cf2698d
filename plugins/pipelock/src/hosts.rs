//! Checks on the host names and the CIDR that end up in pipelock's configuration.
//!
//! pipelock rejects a config it cannot parse and silently widens one it can: a bare `*` or `*.com`
//! in the allowlist would open the firewall, and an `ssrf.ip_allowlist` entry with host bits set is
//! refused at startup. Catching both here turns them into diagnostics naming the plugin.

use std::net::IpAddr;

use bottle_host_pattern::HostPattern;

/// Normalise a host name or `*.domain` pattern with bottle's one host grammar
/// (`bottle-host-pattern`), then keep only what pipelock can express. Errors say why the value is
/// not a host pattern pipelock should be given.
pub fn normalize_host(raw: &str) -> Result<String, String> {
    let pattern = HostPattern::parse(raw.trim()).map_err(|e| e.to_string())?;
    check_pipelock_form(pattern.as_str())?;
    Ok(pattern.to_string())
}

/// pipelock knows exact hosts and a leading `*.` only, and reads `*.x` as `x` and every
/// subdomain of it; a single-label domain after `*.` would open a whole top-level domain.
fn check_pipelock_form(pattern: &str) -> Result<(), String> {
    match pattern.strip_prefix("*.") {
        Some(domain) if domain.contains('*') => Err(PIPELOCK_FORMS.into()),
        Some(domain) if !domain.contains('.') => {
            Err("a wildcard must name a concrete domain, like `*.example.com`".into())
        }
        Some(_) => Ok(()),
        None if pattern.contains('*') => Err(PIPELOCK_FORMS.into()),
        None => Ok(()),
    }
}

/// What pipelock takes, for messages.
const PIPELOCK_FORMS: &str = "pipelock takes only exact host names and a leading `*.` wildcard \
    such as `*.example.com`; list the hosts a wildcard elsewhere in the name should cover";

/// Check that `cidr` is a canonical CIDR (network address, no host bits) narrower than `/0`, as
/// pipelock requires of `ssrf.ip_allowlist` entries.
pub fn validate_cidr(cidr: &str) -> Result<(), String> {
    let (address, prefix) = cidr
        .split_once('/')
        .ok_or_else(|| format!("`{cidr}` is not a CIDR like `172.30.0.0/24`"))?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("`{cidr}` does not start with an IP address"))?;
    let prefix = parse_prefix(prefix, address).ok_or_else(|| {
        format!("`{cidr}` has a prefix length that is not a number from 1 to the address width")
    })?;
    if host_bits(address, prefix) != 0 {
        return Err(format!(
            "`{cidr}` has host bits set; give the network address"
        ));
    }
    Ok(())
}

/// The prefix length, if it is a plain number between 1 and the address width.
fn parse_prefix(prefix: &str, address: IpAddr) -> Option<u32> {
    let value: u32 = prefix.parse().ok()?;
    // Only the plain decimal spelling: no sign, no leading zeros.
    let canonical = value.to_string() == prefix;
    (canonical && (1..=address_width(address)).contains(&value)).then_some(value)
}

/// How many bits an address has.
fn address_width(address: IpAddr) -> u32 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The bits of `address` below a `prefix`-bit network mask.
fn host_bits(address: IpAddr, prefix: u32) -> u128 {
    let (bits, width) = match address {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let host_width = width - prefix;
    let mask = if host_width == 0 {
        0
    } else {
        u128::MAX >> (128 - host_width)
    };
    bits & mask
}
