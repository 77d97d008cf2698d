//! Checks on the host names and the CIDR that end up in pipelock's configuration.
//!
//! pipelock rejects a config it cannot parse and silently widens one it can: a bare `*` or `*.com`
//! in the allowlist would open the firewall, and an `ssrf.ip_allowlist` entry with host bits set is
//! refused at startup. Catching both here turns them into diagnostics naming the plugin.

use std::net::IpAddr;

/// The longest DNS name.
const MAX_HOST_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// Normalise a host name or `*.domain` glob: trim, lowercase, drop one trailing dot. Errors say why
/// the value is not a host pattern pipelock should be given.
pub fn normalize_host(raw: &str) -> Result<String, String> {
    let host = raw.trim().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
    check_host(&host).map(|()| host)
}

/// Check a normalised host pattern.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return Err("a host name must have 1 to 253 characters".into());
    }
    match host.strip_prefix("*.") {
        Some(domain) if domain.contains('.') => check_labels(domain),
        Some(_) => Err("a wildcard must name a concrete domain, like `*.example.com`".into()),
        None => check_labels(host),
    }
}

/// Check every dot-separated label of a host name (without wildcard).
fn check_labels(name: &str) -> Result<(), String> {
    if name.split('.').all(valid_label) {
        Ok(())
    } else {
        Err("only exact host names and `*.example.com` wildcards are allowed".into())
    }
}

/// Whether one label is 1 to 63 characters of `[a-z0-9_-]`.
fn valid_label(label: &str) -> bool {
    (1..=MAX_LABEL_LEN).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

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
