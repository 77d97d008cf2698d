//! The server-side request forgery guard: which addresses the proxy refuses to dial.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bottle_egress_config::Cidr;

/// Why `ip` must not be dialled, or `None` for a public unicast address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified/this-network address",
        [10, ..] | [192, 168, ..] => "private address",
        [172, b, ..] if (16..32).contains(&b) => "private address",
        [100, b, ..] if (64..128).contains(&b) => "carrier-grade NAT address",
        [127, ..] => "loopback address",
        [169, 254, ..] => "link-local/metadata address",
        [192, 0, 0, _] => "IETF protocol assignment",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation address",
        [198, 18 | 19, ..] => "benchmarking address",
        [a, ..] if a >= 224 => "multicast/reserved address",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback address");
    }
    Some(match s {
        // IPv4-compatible (deprecated) ::a.b.c.d
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible address",
        // NAT64: judge the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return v4_reason(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
        }
        // 6to4: judge the embedded IPv4 address.
        [0x2002, hi, lo, ..] => {
            return v4_reason(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
        }
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local address",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local address",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local address",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast address",
        [0x2001, 0xdb8, ..] => "documentation address",
        [0x100, 0, 0, 0, ..] => "discard-only address",
        _ => return None,
    })
}

/// The guard: forbidden addresses, minus the configured exceptions.
#[derive(Debug, Clone, Default)]
pub struct SsrfGuard {
    allow: Vec<Cidr>,
}

impl SsrfGuard {
    /// A guard that lets `allow` through.
    pub fn new(allow: Vec<Cidr>) -> SsrfGuard {
        SsrfGuard { allow }
    }

    /// `Ok` if `ip` may be dialled, else the reason.
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        match forbidden_reason(ip) {
            None => Ok(()),
            Some(_) if self.allow.iter().any(|c| c.contains(ip)) => Ok(()),
            Some(reason) => Err(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        forbidden_reason(s.parse().unwrap()).is_some()
    }

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::10.0.0.1",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "140.82.112.3",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn exceptions() {
        let g = SsrfGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(g.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(g.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(g.check("::1".parse().unwrap()).is_err());
        assert_eq!(g.check("10.1.1.1".parse().unwrap()), Err("private address"));
    }
}
