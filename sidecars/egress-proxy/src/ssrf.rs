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

/// Checked against the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates):
/// every block that is not globally reachable is refused, and so are the globally reachable
/// anycast relays that would forward to an address of the caller's choosing.
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
        [192, 88, 99, _] => "6to4 relay anycast address",
        [198, 18 | 19, ..] => "benchmarking address",
        [a, ..] if a >= 224 => "multicast/reserved address",
        _ => return None,
    })
}

/// Checked against the IANA IPv6 Special-Purpose Address Registry: addresses that embed an IPv4
/// address are judged by it, and nothing outside global unicast (2000::/3) is dialled.
fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    if ip.is_unspecified() {
        return Some("unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback address");
    }
    let s = ip.segments();
    let embedded_v4 = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    Some(match s {
        // IPv4-compatible (deprecated) ::a.b.c.d
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible address",
        // IPv4-translated (SIIT) ::ffff:0:a.b.c.d: judge the embedded IPv4 address.
        [0, 0, 0, 0, 0xffff, 0, _, _] => return v4_reason(embedded_v4),
        // NAT64 well-known prefix 64:ff9b::/96: judge the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return v4_reason(embedded_v4),
        // Local-use NAT64 (RFC 8215): a local translator reaches whatever it is set up to,
        // private networks included, and the IPv4 address sits where its prefix length says.
        [0x64, 0xff9b, 1, ..] => "local-use NAT64 address",
        // 6to4: judge the embedded IPv4 address.
        [0x2002, hi, lo, ..] => {
            return v4_reason(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
        }
        // Teredo (2001::/32) tunnels to an obfuscated IPv4 client, and the rest of 2001::/23
        // (benchmarking, ORCHID, anycast relays) is not for the proxy to dial either.
        [0x2001, 0, ..] => "Teredo tunnel address",
        [0x2001, b, ..] if b < 0x200 => "IETF protocol assignment",
        [0x2001, 0xdb8, ..] => "documentation address",
        [0x3fff, b, ..] if b < 0x1000 => "documentation address",
        [0x100, 0, 0, 0, ..] => "discard-only address",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local address",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local address",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local address",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast address",
        [a, ..] if a & 0xe000 != 0x2000 => "address outside IPv6 global unicast (2000::/3)",
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

    /// One case per block of the IANA special-purpose registries the guard covers.
    #[test]
    fn special_purpose_registries() {
        for (ip, reason) in [
            ("64:ff9b:1::a00:1", "local-use NAT64 address"),
            ("64:ff9b:1::808:808", "local-use NAT64 address"),
            ("64:ff9b:1:ffff::1", "local-use NAT64 address"),
            ("64:ff9b::7f00:1", "loopback address"),
            ("64:ff9b::6440:1", "carrier-grade NAT address"),
            ("::ffff:100.64.0.1", "carrier-grade NAT address"),
            ("::ffff:0:a00:1", "private address"),
            ("::ffff:0:7f00:1", "loopback address"),
            ("2002:c0a8:101::1", "private address"),
            ("2002:a9fe:a9fe::1", "link-local/metadata address"),
            ("2002:6440:1::1", "carrier-grade NAT address"),
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "Teredo tunnel address",
            ),
            ("2001:2::1", "IETF protocol assignment"),
            ("2001:20::1", "IETF protocol assignment"),
            ("2001:db8::1", "documentation address"),
            ("3fff::1", "documentation address"),
            ("100::1", "discard-only address"),
            ("5f00::1", "address outside IPv6 global unicast (2000::/3)"),
            (
                "64:ff9b:0:1::1",
                "address outside IPv6 global unicast (2000::/3)",
            ),
            ("4000::1", "address outside IPv6 global unicast (2000::/3)"),
            ("192.88.99.1", "6to4 relay anycast address"),
            ("192.0.0.170", "IETF protocol assignment"),
            ("198.19.0.1", "benchmarking address"),
            ("240.0.0.1", "multicast/reserved address"),
        ] {
            assert_eq!(forbidden_reason(ip.parse().unwrap()), Some(reason), "{ip}");
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
            "2001:200::1",
            "2001:4860:4860::8888",
            "3fff:1000::1",
            "2400:cb00::1",
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
