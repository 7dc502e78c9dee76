//! IPv6 subnets, the unique local subnet a network gets when it asks for
//! IPv6 without one, and IPv6 address allocation.
//!
//! Docker (27 and later) gives an IPv6 network without a subnet a /64 of
//! a unique local (ULA, RFC 4193) /48 derived from its host ID. Servin
//! derives the 40-bit global ID from the network's own ID instead (its
//! first 10 hex digits, the tag that also names its bridge), so two
//! engines on a host, or two networks of one engine, start from different
//! /48s; the first /64 of it that overlaps no subnet in use is taken.
//!
//! Everything here is pure except [`host_routes`], which reads the host's
//! IPv6 routing table.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv6Addr;

use crate::error::{Error, NetworkError, Result};

/// The prefix length of the subnets chosen for networks without one.
pub const ULA_PREFIX: u8 = 64;

/// An IPv6 subnet: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet6 {
    /// The network address (host bits zero).
    pub addr: Ipv6Addr,
    /// The prefix length, 0 to 128.
    pub prefix: u8,
}

fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

impl Subnet6 {
    /// The subnet of `addr/prefix`, host bits cleared.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Self {
        let prefix = prefix.min(128);
        Self {
            addr: Ipv6Addr::from(u128::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// Parses `ADDR/N`; refuses host bits (as Docker does), IPv4 and
    /// subnets too small to hold a gateway and a container.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::from(NetworkError::InvalidSubnet {
                subnet: text.to_string(),
                why: why.to_string(),
            })
        };
        let (addr, prefix) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("want an IPv6 CIDR such as fd00:1:2::/64"))?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| bad("want an IPv6 CIDR such as fd00:1:2::/64"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| bad("the prefix length must be 0 to 128"))?;
        if prefix > 126 {
            return Err(bad(
                "the prefix length must be 126 or less to hold a gateway and a container",
            ));
        }
        let subnet = Self::new(addr, prefix);
        if subnet.addr != addr {
            return Err(bad(&format!(
                "{addr} has host bits set: did you mean {subnet}?"
            )));
        }
        if addr.is_multicast() || addr.is_loopback() || addr.is_unspecified() {
            return Err(bad(
                "want a unicast subnet, such as a unique local fd00::/8 one",
            ));
        }
        Ok(subnet)
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask(self.prefix) == u128::from(self.addr)
    }

    /// Whether `other` lies wholly inside this subnet.
    pub fn covers(&self, other: &Self) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Self) -> bool {
        let p = self.prefix.min(other.prefix);
        u128::from(self.addr) & mask(p) == u128::from(other.addr) & mask(p)
    }

    /// The last address.
    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) | !mask(self.prefix))
    }

    /// The first address after the subnet-router anycast address: the
    /// default gateway.
    pub fn first_host(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr).saturating_add(1))
    }

    /// Whether `ip` may be given to a container or a gateway: inside, and
    /// not the subnet-router anycast address (the subnet's own address).
    /// IPv6 has no broadcast address: the last one is a host's.
    pub fn is_host(&self, ip: Ipv6Addr) -> bool {
        self.contains(ip) && ip != self.addr
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The unique local /48 of the network tagged `tag` (10 hex digits: the
/// 40-bit global ID), `fdXX:XXXX:XXXX::/48`; `None` when `tag` is not 10
/// hex digits.
pub fn ula_base(tag: &str) -> Option<Subnet6> {
    if tag.len() != 10 {
        return None;
    }
    let global = u64::from_str_radix(tag, 16).ok()?;
    let top = (0xfd_u128 << 120) | (u128::from(global) << 80);
    Some(Subnet6::new(Ipv6Addr::from(top), 48))
}

/// The first /64 of the network's unique local /48 ([`ula_base`])
/// overlapping none of `taken`.
pub fn choose_ula(tag: &str, taken: &[Subnet6]) -> Option<Subnet6> {
    let base = ula_base(tag)?;
    (0..=u16::MAX)
        .map(|i| {
            let addr = u128::from(base.addr) | (u128::from(i) << 64);
            Subnet6::new(Ipv6Addr::from(addr), ULA_PREFIX)
        })
        .find(|s| !taken.iter().any(|t| t.overlaps(s)))
}

/// The lowest address of `range` (a part of `subnet`, or the subnet
/// itself) that may be given to a container: a host address of `subnet`,
/// not the gateway, not in `used`.
pub fn next_free(
    subnet: Subnet6,
    range: Subnet6,
    gateway: Ipv6Addr,
    used: &BTreeSet<Ipv6Addr>,
) -> Option<Ipv6Addr> {
    let first = u128::from(range.addr);
    let last = u128::from(range.last());
    // At most `used.len() + 2` addresses are skipped: the search is short
    // even in a /64.
    (first..=last)
        .map(Ipv6Addr::from)
        .find(|ip| subnet.is_host(*ip) && *ip != gateway && !used.contains(ip))
}

/// The host's IPv6 routes other than default, link-local and multicast
/// ones, from `/proc/net/ipv6_route` (read in the engine's network
/// namespace).
pub fn host_routes() -> Vec<Subnet6> {
    std::fs::read_to_string("/proc/net/ipv6_route")
        .map(|t| parse_proc_routes(&t))
        .unwrap_or_default()
}

/// Parses `/proc/net/ipv6_route`: the destination is 32 hex digits in
/// network order, then its prefix length in hex.
pub fn parse_proc_routes(text: &str) -> Vec<Subnet6> {
    let link_local = Subnet6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10);
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let dest = u128::from_str_radix(cols.next()?, 16).ok()?;
            let prefix = u8::from_str_radix(cols.next()?, 16).ok()?;
            let dest = Ipv6Addr::from(dest);
            (prefix > 0 && !dest.is_multicast() && !link_local.contains(dest))
                .then(|| Subnet6::new(dest, prefix))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_refuses_subnets() {
        let s = Subnet6::parse("fd00:1:2::/64").unwrap();
        assert_eq!(s.to_string(), "fd00:1:2::/64");
        assert_eq!(s.first_host(), ip("fd00:1:2::1"));
        assert_eq!(s.last(), ip("fd00:1:2:0:ffff:ffff:ffff:ffff"));
        let e = Subnet6::parse("fd00:1:2::5/64").unwrap_err().to_string();
        assert!(
            e.contains("fd00:1:2::5/64") && e.contains("did you mean fd00:1:2::/64"),
            "{e}"
        );
        for bad in [
            "10.0.0.0/24",
            "fd00::",
            "fd00::/129",
            "fd00::/127",
            "ff02::/16",
            "zz::/64",
        ] {
            assert!(Subnet6::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_containment_and_hosts() {
        let a = Subnet6::parse("fd00:1::/48").unwrap();
        let b = Subnet6::parse("fd00:1:0:7::/64").unwrap();
        let c = Subnet6::parse("fd00:2::/64").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(a.covers(&b) && !b.covers(&a));
        assert!(b.is_host(ip("fd00:1:0:7::2")));
        assert!(!b.is_host(ip("fd00:1:0:7::")));
        assert!(b.is_host(ip("fd00:1:0:7:ffff:ffff:ffff:ffff")));
        assert!(!b.is_host(ip("fd00:1:0:8::2")));
    }

    #[test]
    fn unique_local_subnets_come_from_the_network_id() {
        assert_eq!(
            ula_base("0123456789").unwrap().to_string(),
            "fd01:2345:6789::/48"
        );
        assert!(ula_base("xyz").is_none());
        assert!(ula_base("01234567").is_none());
        assert_eq!(
            choose_ula("0123456789", &[]).unwrap().to_string(),
            "fd01:2345:6789::/64"
        );
        let taken = vec![
            Subnet6::parse("fd01:2345:6789::/64").unwrap(),
            Subnet6::parse("fd01:2345:6789:1::/80").unwrap(),
            Subnet6::parse("fd00::/64").unwrap(),
        ];
        assert_eq!(
            choose_ula("0123456789", &taken).unwrap().to_string(),
            "fd01:2345:6789:2::/64"
        );
        let all = vec![Subnet6::parse("fd01:2345:6789::/48").unwrap()];
        assert!(choose_ula("0123456789", &all).is_none());
    }

    #[test]
    fn allocates_the_lowest_free_address_of_the_range() {
        let s = Subnet6::parse("fd00:9::/64").unwrap();
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        assert_eq!(next_free(s, s, gw, &used), Some(ip("fd00:9::2")));
        used.insert(ip("fd00:9::2"));
        used.insert(ip("fd00:9::4"));
        assert_eq!(next_free(s, s, gw, &used), Some(ip("fd00:9::3")));
        let range = Subnet6::parse("fd00:9::100/126").unwrap();
        assert_eq!(next_free(s, range, gw, &used), Some(ip("fd00:9::100")));
        for i in 0x100..=0x103 {
            used.insert(Ipv6Addr::from(u128::from(ip("fd00:9::")) + i));
        }
        assert_eq!(next_free(s, range, gw, &used), None);
        // The subnet-router anycast address is never given out.
        let small = Subnet6::parse("fd00:9::/126").unwrap();
        let gw = ip("fd00:9::3");
        assert_eq!(
            next_free(small, small, gw, &BTreeSet::new()),
            Some(ip("fd00:9::1"))
        );
    }

    #[test]
    fn reads_proc_ipv6_routes() {
        let text = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
";
        let shown: Vec<String> = parse_proc_routes(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, vec!["fd00::/64", "fd00::2/128"]);
    }
}
