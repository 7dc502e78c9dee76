//! IPv4 subnets, the subnet pool and address allocation.
//!
//! Everything here is pure except [`host_routes`], which reads the host's
//! routing table so a new network never takes a subnet the host (or another
//! engine) already routes.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use crate::error::{Error, NetworkError, Result};

/// The pool networks take their subnets from unless given one.
pub const DEFAULT_POOL: &str = "10.89.0.0/16";
/// The prefix length of the subnets cut from the pool.
pub const POOL_PREFIX: u8 = 24;

/// An IPv4 subnet: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// The prefix length, 0 to 32.
    pub prefix: u8,
}

impl Subnet {
    /// The subnet of `addr/prefix`, host bits cleared.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.min(32);
        Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// Parses `A.B.C.D/N`; refuses host bits (Docker does too), IPv6 and
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
            .ok_or_else(|| bad("want an IPv4 CIDR such as 10.90.1.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("only IPv4 subnets are supported, written as A.B.C.D/N"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad("the prefix length must be 0 to 32"))?;
        if prefix > 30 {
            return Err(bad(
                "the prefix length must be 30 or less to hold a gateway and a container",
            ));
        }
        let subnet = Self::new(addr, prefix);
        if subnet.addr != addr {
            return Err(bad(&format!(
                "{addr} has host bits set: did you mean {subnet}?"
            )));
        }
        Ok(subnet)
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Self) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.addr) & mask(p) == u32::from(other.addr) & mask(p)
    }

    /// The last address (the broadcast address).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    /// The first usable address: the default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).saturating_add(1))
    }

    /// Whether `ip` may be given to a container or a gateway: inside, and
    /// neither the network nor the broadcast address.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast()
    }

    /// The subnets of length `prefix` inside this one, in order.
    pub fn split(&self, prefix: u8) -> impl Iterator<Item = Subnet> + use<> {
        let base = u32::from(self.addr);
        let count: u64 = if prefix < self.prefix || prefix > 32 {
            0
        } else {
            1u64 << (prefix - self.prefix)
        };
        let step: u64 = 1u64 << (32 - u32::from(prefix.min(32)));
        (0..count).filter_map(move |i| {
            let a = u64::from(base) + i * step;
            u32::try_from(a)
                .ok()
                .map(|a| Subnet::new(Ipv4Addr::from(a), prefix))
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// The first subnet of the pool overlapping none of `taken`.
pub fn choose_subnet(pool: Subnet, taken: &[Subnet]) -> Option<Subnet> {
    pool.split(POOL_PREFIX.max(pool.prefix))
        .find(|s| !taken.iter().any(|t| t.overlaps(s)))
}

/// The lowest free host address of `subnet`, within `range` when one is
/// given, that is not the gateway nor in `used`.
pub fn next_free(
    subnet: Subnet,
    range: Option<Subnet>,
    gateway: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let first = u32::from(subnet.addr).checked_add(1)?;
    let last = u32::from(subnet.broadcast()).checked_sub(1)?;
    let (first, last) = match range {
        Some(r) => (
            first.max(u32::from(r.addr)),
            last.min(u32::from(r.broadcast())),
        ),
        None => (first, last),
    };
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| *ip != gateway && !used.contains(ip))
}

/// The host's IPv4 routes other than default routes, from
/// `/proc/net/route` (read in the engine's network namespace).
pub fn host_routes() -> Vec<Subnet> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_proc_routes(&t))
        .unwrap_or_default()
}

/// Parses `/proc/net/route`: destination and mask are little-endian hex.
pub fn parse_proc_routes(text: &str) -> Vec<Subnet> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(cols.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(cols.get(7)?, 16).ok()?;
            // The kernel prints the network-order words as host-order hex.
            let dest = Ipv4Addr::from(dest.to_le_bytes());
            let prefix =
                u8::try_from(u32::from_be_bytes(mask.to_le_bytes()).leading_ones()).ok()?;
            (prefix > 0).then(|| Subnet::new(dest, prefix))
        })
        .collect()
}

/// Docker's MAC address for an IPv4 address: `02:42` and the address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Reads `aa:bb:cc:dd:ee:ff` (or with `-`); `None` when it is not six hex
/// octets.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let mut out = [0u8; 6];
    if parts.len() != 6 {
        return None;
    }
    for (slot, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_refuses_subnets() {
        let s = Subnet::parse("10.90.1.0/24").unwrap();
        assert_eq!(s.to_string(), "10.90.1.0/24");
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 90, 1, 255));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 90, 1, 1));
        let e = Subnet::parse("10.90.1.5/24").unwrap_err().to_string();
        assert!(e.contains("did you mean 10.90.1.0/24"), "{e}");
        assert!(Subnet::parse("fd00::/64").is_err());
        assert!(Subnet::parse("10.0.0.0/31").is_err());
        assert!(Subnet::parse("10.0.0.0").is_err());
        assert!(Subnet::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn overlap_and_containment() {
        let a = Subnet::parse("10.89.0.0/16").unwrap();
        let b = Subnet::parse("10.89.7.0/24").unwrap();
        let c = Subnet::parse("10.90.0.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(b.contains(Ipv4Addr::new(10, 89, 7, 200)));
        assert!(!b.is_host(Ipv4Addr::new(10, 89, 7, 255)));
        assert!(!b.is_host(Ipv4Addr::new(10, 89, 7, 0)));
    }

    #[test]
    fn chooses_the_first_free_subnet_of_the_pool() {
        let pool = Subnet::parse(DEFAULT_POOL).unwrap();
        let taken = vec![
            Subnet::parse("10.89.0.0/24").unwrap(),
            Subnet::parse("10.89.1.128/25").unwrap(),
            Subnet::parse("192.0.2.0/24").unwrap(),
        ];
        assert_eq!(
            choose_subnet(pool, &taken).unwrap().to_string(),
            "10.89.2.0/24"
        );
        let all = vec![pool];
        assert!(choose_subnet(pool, &all).is_none());
        assert_eq!(pool.split(24).count(), 256);
    }

    #[test]
    fn allocates_the_lowest_free_address() {
        let s = Subnet::parse("10.1.2.0/29").unwrap();
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        assert_eq!(
            next_free(s, None, gw, &used),
            Some(Ipv4Addr::new(10, 1, 2, 2))
        );
        used.insert(Ipv4Addr::new(10, 1, 2, 2));
        used.insert(Ipv4Addr::new(10, 1, 2, 4));
        assert_eq!(
            next_free(s, None, gw, &used),
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        for i in 3..=6 {
            used.insert(Ipv4Addr::new(10, 1, 2, i));
        }
        assert_eq!(next_free(s, None, gw, &used), None);
    }

    #[test]
    fn allocates_within_the_range() {
        let s = Subnet::parse("10.1.2.0/24").unwrap();
        let gw = s.first_host();
        let range = Subnet::parse("10.1.2.128/30").ok();
        let mut used = BTreeSet::new();
        assert_eq!(
            next_free(s, range, gw, &used),
            Some(Ipv4Addr::new(10, 1, 2, 128))
        );
        for i in 128..=131 {
            used.insert(Ipv4Addr::new(10, 1, 2, i));
        }
        assert_eq!(next_free(s, range, gw, &used), None);
        // A range at the end of the subnet stops before its broadcast.
        let range = Subnet::parse("10.1.2.252/30").ok();
        used.insert(Ipv4Addr::new(10, 1, 2, 252));
        used.insert(Ipv4Addr::new(10, 1, 2, 253));
        assert_eq!(
            next_free(s, range, gw, &used),
            Some(Ipv4Addr::new(10, 1, 2, 254))
        );
        used.insert(Ipv4Addr::new(10, 1, 2, 254));
        assert_eq!(next_free(s, range, gw, &used), None);
    }

    #[test]
    fn reads_proc_routes() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
sv-1\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_proc_routes(text);
        let shown: Vec<String> = routes.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["192.0.2.0/24", "10.89.0.0/24"]);
    }

    #[test]
    fn macs_follow_the_address() {
        assert_eq!(
            mac_text(mac_for(Ipv4Addr::new(10, 89, 0, 2))),
            "02:42:0a:59:00:02"
        );
    }
}
