//! Containers joining and leaving networks.
//!
//! A container that joins networks gets a network namespace made by the
//! engine (bind-mounted on `netns` in its folder), loopback up and one veth
//! pair per network (`eth0`, `eth1`... inside, `sv<12 hex>` on the bridge),
//! and the default route through the first network that has egress (the
//! IPv6 default route through the first one that has egress and IPv6). On
//! a network with IPv6 the interface also gets an IPv6 address, without
//! duplicate address detection (the engine hands out each address once).
//! The runtime joins that namespace. Its endpoints go when it stops.
//!
//! Joining is two steps: [`Networks::reserve`] records the address before
//! any device exists (a crash never hands it to another container), then
//! [`Networks::plumb`] makes the devices.

use std::collections::{BTreeSet, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::events::EndpointEvent;
use super::record::{Attachment, Endpoint, NetworkRecord};
use super::{Networks, ipam, ipam6, link};
use crate::error::{Error, NetworkError, Result};

/// A container's address reserved on a network, its devices not made yet
/// ([`Networks::reserve`], [`Networks::plumb`]).
#[derive(Debug, Clone)]
pub struct Reservation {
    network_id: String,
    gateway: Ipv4Addr,
    bridge: u32,
    prefix: u8,
    default_route: bool,
    /// The network's IPv6 gateway and prefix length, on a network with
    /// IPv6.
    ipv6: Option<(Ipv6Addr, u8)>,
    default_route6: bool,
    /// The endpoint as recorded.
    pub endpoint: Endpoint,
}

impl Networks {
    /// Joins a container's namespace to a network: [`Networks::reserve`]
    /// then [`Networks::plumb`]. `default_routes` says whether the
    /// interface carries the IPv4 and the IPv6 default route.
    pub async fn attach(
        &self,
        ns: &link::NsLink,
        network_id: &str,
        container: (&str, &str),
        want: &Attachment,
        ifname: &str,
        default_routes: (bool, bool),
    ) -> Result<Endpoint> {
        let reserved = self
            .reserve(network_id, container, want, ifname, default_routes)
            .await?;
        self.plumb(ns, &reserved).await?;
        Ok(reserved.endpoint)
    }

    /// Reserves a container's address on a network (the asked one, else
    /// the lowest free one) and records its endpoint, before any device is
    /// made, so a crash never hands the address to another container; the
    /// bridge is brought up. The devices come with [`Networks::plumb`]
    /// (which may run while the container's other files are written).
    pub async fn reserve(
        &self,
        network_id: &str,
        container: (&str, &str),
        want: &Attachment,
        ifname: &str,
        default_routes: (bool, bool),
    ) -> Result<Reservation> {
        let (default_route, default_route6) = default_routes;
        let (container_id, container_name) = container;
        let rec = self.get(network_id)?;
        let bridge = self.ensure_up(&rec).await?;
        let subnet = rec.subnet()?;
        let v6 = match &rec.ipv6 {
            Some(v6) => Some((v6.subnet()?, v6.range()?, v6.gateway)),
            None => None,
        };
        let host_veth = format!(
            "sv{}",
            crate::state::new_id()?.get(..12).unwrap_or("000000000000")
        );
        let endpoint = {
            let mut map = self.lock();
            let rec = map
                .get_mut(network_id)
                .ok_or_else(|| Error::NoSuchNetwork(network_id.to_string()))?;
            let used: BTreeSet<Ipv4Addr> = rec
                .endpoints
                .iter()
                .filter(|(id, _)| id.as_str() != container_id)
                .map(|(_, e)| e.ipv4)
                .collect();
            let ipv4 =
                match want.ipv4 {
                    Some(ip) => {
                        if !subnet.is_host(ip) || ip == rec.gateway {
                            return Err(NetworkError::InvalidAddress {
                                ip: ip.to_string(),
                                network: rec.name.clone(),
                                subnet: subnet.to_string(),
                            }
                            .into());
                        }
                        if used.contains(&ip) {
                            return Err(NetworkError::AddressInUse {
                                ip: ip.to_string(),
                                network: rec.name.clone(),
                            }
                            .into());
                        }
                        ip
                    }
                    None => ipam::next_free(subnet, rec.range()?, rec.gateway, &used).ok_or_else(
                        || NetworkError::AddressesExhausted {
                            network: rec.name.clone(),
                            subnet: subnet.to_string(),
                        },
                    )?,
                };
            let ipv6 = match v6 {
                Some((subnet6, range6, gateway6)) => {
                    let used6: BTreeSet<Ipv6Addr> = rec
                        .endpoints
                        .iter()
                        .filter(|(id, _)| id.as_str() != container_id)
                        .filter_map(|(_, e)| e.ipv6)
                        .collect();
                    Some(pick_ipv6(
                        &rec.name,
                        (subnet6, range6, gateway6),
                        want.ipv6,
                        &used6,
                    )?)
                }
                None => {
                    if let Some(ip) = want.ipv6 {
                        return Err(NetworkError::NoIpv6 {
                            ip: ip.to_string(),
                            network: rec.name.clone(),
                        }
                        .into());
                    }
                    None
                }
            };
            let endpoint = Endpoint {
                endpoint_id: crate::state::new_id()?,
                container_id: container_id.to_string(),
                container_name: container_name.to_string(),
                aliases: want.aliases.clone(),
                ipv4,
                ipv6,
                mac: want
                    .mac
                    .clone()
                    .unwrap_or_else(|| ipam::mac_text(ipam::mac_for(ipv4))),
                ifname: ifname.to_string(),
                host_veth: host_veth.clone(),
            };
            rec.endpoints
                .insert(container_id.to_string(), endpoint.clone());
            let snapshot = rec.clone();
            drop(map);
            self.save(&snapshot)?;
            endpoint
        };
        tracing::debug!(
            container = %container_name,
            network = %rec.name,
            host_veth = %host_veth,
            ip = %endpoint.ipv4,
            ipv6 = ?endpoint.ipv6,
            "endpoint"
        );
        Ok(Reservation {
            network_id: rec.id.clone(),
            gateway: rec.gateway,
            bridge,
            prefix: subnet.prefix,
            default_route,
            ipv6: v6.map(|(s, _, gw)| (gw, s.prefix)),
            default_route6,
            endpoint,
        })
    }

    /// Makes a reserved endpoint's veth pair, addressed and up inside the
    /// container's namespace, and announces it (to the DNS server); on a
    /// failure the address is freed.
    pub async fn plumb(&self, ns: &link::NsLink, r: &Reservation) -> Result<()> {
        let e = &r.endpoint;
        let made = async {
            let h = self.netlink().await?.clone();
            link::add_veth(
                &h,
                ns,
                &link::Veth {
                    host_name: &e.host_veth,
                    bridge: r.bridge,
                    ifname: &e.ifname,
                    mac: ipam::parse_mac(&e.mac).unwrap_or_else(|| ipam::mac_for(e.ipv4)),
                    address: e.ipv4,
                    prefix: r.prefix,
                    default_gateway: r.default_route.then_some(r.gateway),
                    ipv6: match (e.ipv6, r.ipv6) {
                        (Some(address), Some((gateway, prefix))) => Some(link::VethIpv6 {
                            address,
                            prefix,
                            default_gateway: r.default_route6.then_some(gateway),
                        }),
                        _ => None,
                    },
                },
            )
            .await
        };
        if let Err(err) = made.await {
            self.release(&r.network_id, &e.container_id);
            // The bridge may have been deleted behind the engine's back:
            // look again next time.
            if let Ok(mut up) = self.up.lock() {
                up.remove(&r.network_id);
            }
            return Err(err);
        }
        let _ = self.events.send(EndpointEvent::Added {
            network: r.network_id.clone(),
            gateway: r.gateway,
            endpoint: e.clone(),
        });
        Ok(())
    }

    /// Forgets a container's endpoint on a network and frees its address;
    /// returns it when there was one.
    fn release(&self, network_id: &str, container_id: &str) -> Option<Endpoint> {
        let (endpoint, snapshot) = {
            let mut map = self.lock();
            let rec = map.get_mut(network_id)?;
            let endpoint = rec.endpoints.remove(container_id)?;
            (endpoint, rec.clone())
        };
        if let Err(e) = self.save(&snapshot) {
            tracing::warn!(
                "release {} on network {}: {}",
                endpoint.ipv4,
                snapshot.name,
                e.full_message()
            );
        }
        let _ = self.events.send(EndpointEvent::Removed {
            network: snapshot.id.clone(),
            gateway: snapshot.gateway,
            endpoint: endpoint.clone(),
        });
        Some(endpoint)
    }

    /// Takes a container off one network: deletes its veth pair and frees
    /// its address.
    pub async fn detach(&self, network_id: &str, container_id: &str) -> Result<()> {
        if let Some(e) = self.release(network_id, container_id) {
            let h = self.netlink().await?.clone();
            link::delete_link(&h, &e.host_veth).await?;
        }
        Ok(())
    }

    /// Gives a renamed container's endpoints its new name, so the DNS
    /// server answers for that name.
    pub fn rename_endpoints(&self, container_id: &str, name: &str) {
        let changed: Vec<NetworkRecord> = self
            .lock()
            .values_mut()
            .filter_map(|n| {
                let e = n.endpoints.get_mut(container_id)?;
                e.container_name = name.to_string();
                Some(n.clone())
            })
            .collect();
        for rec in changed {
            if let Err(e) = self.save(&rec) {
                tracing::warn!(
                    "rename {container_id} to {name} on network {}: {}",
                    rec.name,
                    e.full_message()
                );
            }
        }
    }

    /// Frees a stopped container's addresses on every network. Its veth
    /// pairs go with its network namespace (when the namespace's bind
    /// mount and last process are gone, the kernel deletes them): deleting
    /// them here would make every stop wait for the kernel.
    pub fn release_all(&self, container_id: &str) {
        let ids: Vec<String> = self
            .lock()
            .values()
            .filter(|n| n.endpoints.contains_key(container_id))
            .map(|n| n.id.clone())
            .collect();
        for id in ids {
            self.release(&id, container_id);
        }
    }

    /// Frees the endpoints of containers that are not in `running` (they
    /// stopped or went while the engine was away).
    pub fn forget_endpoints_except(&self, running: &HashSet<String>) -> Vec<Endpoint> {
        let stale: Vec<(String, String)> = self
            .lock()
            .values()
            .flat_map(|n| {
                n.endpoints
                    .keys()
                    .filter(|c| !running.contains(*c))
                    .map(|c| (n.id.clone(), c.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        stale
            .into_iter()
            .filter_map(|(n, c)| self.release(&n, &c))
            .collect()
    }

    /// Deletes a host-side veth left by an endpoint freed without its
    /// container (see [`Networks::forget_endpoints_except`]).
    pub async fn delete_veth(&self, name: &str) -> Result<()> {
        let h = self.netlink().await?.clone();
        link::delete_link(&h, name).await
    }

    /// A running container's addresses: (network name, address), first
    /// network first.
    pub fn addresses_of(&self, container_id: &str) -> Vec<(String, Ipv4Addr)> {
        let mut out: Vec<(String, Ipv4Addr, String)> = self
            .lock()
            .values()
            .filter_map(|n| {
                n.endpoints
                    .get(container_id)
                    .map(|e| (n.name.clone(), e.ipv4, e.ifname.clone()))
            })
            .collect();
        out.sort_by_key(|a| iface_order(&a.2));
        out.into_iter().map(|(n, ip, _)| (n, ip)).collect()
    }

    /// A container's endpoint on a network, when it runs there.
    pub fn endpoint(&self, network_id: &str, container_id: &str) -> Option<Endpoint> {
        self.lock()
            .get(network_id)
            .and_then(|n| n.endpoints.get(container_id).cloned())
    }

    /// The network and address a container's published ports forward to:
    /// its first network's (by interface).
    pub fn first_address(&self, container_id: &str) -> Option<(String, String, Ipv4Addr)> {
        let mut all: Vec<(String, String, Ipv4Addr, String)> = self
            .lock()
            .values()
            .filter_map(|n| {
                n.endpoints
                    .get(container_id)
                    .map(|e| (n.id.clone(), n.name.clone(), e.ipv4, e.ifname.clone()))
            })
            .collect();
        all.sort_by_key(|a| iface_order(&a.3));
        all.into_iter()
            .next()
            .map(|(id, name, ip, _)| (id, name, ip))
    }
}

/// A container's IPv6 address on the network `network` (its subnet,
/// the range addresses come from, its gateway): the asked one, checked as
/// Docker checks it (a host address of the subnet, not the gateway, not
/// in `used`), else the lowest free one of the range.
fn pick_ipv6(
    network: &str,
    (subnet, range, gateway): (ipam6::Subnet6, ipam6::Subnet6, Ipv6Addr),
    asked: Option<Ipv6Addr>,
    used: &BTreeSet<Ipv6Addr>,
) -> Result<Ipv6Addr> {
    match asked {
        Some(ip) => {
            if !subnet.is_host(ip) || ip == gateway {
                return Err(NetworkError::InvalidAddress {
                    ip: ip.to_string(),
                    network: network.to_string(),
                    subnet: subnet.to_string(),
                }
                .into());
            }
            if used.contains(&ip) {
                return Err(NetworkError::AddressInUse {
                    ip: ip.to_string(),
                    network: network.to_string(),
                }
                .into());
            }
            Ok(ip)
        }
        None => ipam6::next_free(subnet, range, gateway, used).ok_or_else(|| {
            NetworkError::AddressesExhausted {
                network: network.to_string(),
                subnet: range.to_string(),
            }
            .into()
        }),
    }
}

/// `eth2` sorts after `eth10`? No: by the number.
fn iface_order(name: &str) -> u32 {
    name.trim_start_matches("eth").parse().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ipv6_addresses_are_asked_for_or_the_lowest_free() {
        let subnet = ipam6::Subnet6::parse("fd00:5::/64").unwrap();
        let range = ipam6::Subnet6::parse("fd00:5::80/121").unwrap();
        let gw: Ipv6Addr = "fd00:5::1".parse().unwrap();
        let mut used = BTreeSet::new();
        let ip = |t: &str| t.parse::<Ipv6Addr>().unwrap();
        assert_eq!(
            pick_ipv6("n", (subnet, subnet, gw), None, &used).unwrap(),
            ip("fd00:5::2")
        );
        assert_eq!(
            pick_ipv6("n", (subnet, range, gw), None, &used).unwrap(),
            ip("fd00:5::80")
        );
        used.insert(ip("fd00:5::9"));
        let asked = pick_ipv6("n", (subnet, range, gw), Some(ip("fd00:5::10")), &used);
        assert_eq!(asked.unwrap(), ip("fd00:5::10"));
        let e = pick_ipv6("n", (subnet, subnet, gw), Some(ip("fd00:5::9")), &used)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "address fd00:5::9 is already in use on network n");
        for bad in ["fd00:6::2", "fd00:5::", "fd00:5::1"] {
            let e = pick_ipv6("n", (subnet, subnet, gw), Some(ip(bad)), &used)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("invalid address {bad} for network n")),
                "{e}"
            );
        }
    }

    #[test]
    fn interfaces_sort_by_number() {
        let mut v = vec!["eth10", "eth2", "eth0"];
        v.sort_by_key(|n| iface_order(n));
        assert_eq!(v, vec!["eth0", "eth2", "eth10"]);
    }
}
