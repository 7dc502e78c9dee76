//! What the DNS server reads of the networks:
//! - [`Networks::by_gateway`]: the network answering on a gateway address,
//!   with its containers' names, aliases and addresses;
//! - [`Networks::views`]: every network so;
//! - [`Networks::dns_gateways`]: where user-defined networks expect their
//!   DNS server (port 53 on each gateway).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Networks;
use super::record::{Endpoint, NetworkRecord};

/// A network with its containers, for the DNS server.
#[derive(Debug, Clone)]
pub struct NetworkView {
    /// The network's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its gateway address.
    pub gateway: Ipv4Addr,
    /// Its IPv6 gateway, on a network with IPv6.
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// Whether it is internal (no forwarding of outside names wanted).
    pub internal: bool,
    /// Its running containers.
    pub endpoints: Vec<Endpoint>,
}

impl Networks {
    /// The network whose gateway is `gateway`, with its running containers:
    /// what the DNS server answers from.
    pub fn by_gateway(&self, gateway: IpAddr) -> Option<NetworkView> {
        let IpAddr::V4(gw) = gateway else {
            return None;
        };
        self.lock().values().find(|n| n.gateway == gw).map(view)
    }

    /// Every network as seen by the DNS server.
    pub fn views(&self) -> Vec<NetworkView> {
        self.lock().values().map(view).collect()
    }

    /// The gateways of the user-defined networks (not the default one):
    /// where containers' `/etc/resolv.conf` sends their queries.
    pub fn dns_gateways(&self) -> Vec<(String, Ipv4Addr)> {
        self.lock()
            .values()
            .filter(|n| !n.is_default())
            .map(|n| (n.id.clone(), n.gateway))
            .collect()
    }
}

fn view(n: &NetworkRecord) -> NetworkView {
    NetworkView {
        id: n.id.clone(),
        name: n.name.clone(),
        gateway: n.gateway,
        ipv6_gateway: n.ipv6.as_ref().map(|v| v.gateway),
        internal: n.internal,
        endpoints: n.endpoints.values().cloned().collect(),
    }
}
