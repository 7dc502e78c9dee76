//! Container networks: bridges, address management, namespaces, firewall,
//! name resolution and published ports.
//!
//! [`Networks`] owns every network of the engine; its methods live in the
//! file of the concern they serve:
//!
//! - [`error`]: [`error::NetworkError`], what network, address and port
//!   operations refuse
//! - `record`: a network and its endpoints as kept on disk
//!   ([`NetworkRecord`], [`Endpoint`], [`Attachment`]).
//! - `bridge`: making, bringing up and removing a network (its subnet,
//!   bridge and firewall rules).
//! - `default`: Docker's default network, `bridge`, made on first use.
//! - `endpoint`: containers joining and leaving networks (namespaces,
//!   veth pairs, addresses).
//! - `events`: the [`EndpointEvent`] subscription the DNS server and the
//!   port forwarder follow.
//! - `view`: what the DNS server reads ([`NetworkView`]).
//! - `kernel_ports`: the in-memory table of kernel-forwarded published
//!   ports per network.
//!
//! And the parts below it:
//!
//! - [`create`]: a network from a Docker create body, for the API and
//!   projects.
//! - [`ipam`]: subnets, the pool, address allocation.
//! - [`ipam6`]: IPv6 subnets, unique local subnets, IPv6 address
//!   allocation.
//! - [`link`]: netlink: bridges, veths, namespaces.
//! - [`firewall`]: nftables or iptables rules per network.
//! - [`dns`]: the embedded DNS server that resolves container names.
//! - [`ports`]: published ports, forwarded from the host in userland.

mod bridge;
pub mod create;
mod default;
pub mod dns;
mod endpoint;
pub mod error;
mod events;
pub mod firewall;
pub mod ipam;
pub mod ipam6;
mod kernel_ports;
pub mod link;
pub mod modules;
pub mod ports;
mod record;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::error::{Error, NetworkError, Result};
use firewall::{Backend, Dnat};
use ipam::Subnet;

pub use bridge::{CreateOptions, SUBNET_LOCK};
pub use default::DEFAULT_NETWORK;
pub use endpoint::Reservation;
pub use events::EndpointEvent;
pub use record::{Attachment, Endpoint, Ipv6Settings, NETWORK_FILE, NetworkRecord};
pub use view::NetworkView;

/// Every network of the engine.
pub struct Networks {
    dir: PathBuf,
    pool: Subnet,
    backend: Backend,
    map: Mutex<BTreeMap<String, NetworkRecord>>,
    /// Networks whose bridge and rules were checked since the engine
    /// started, with their bridge's index.
    up: Mutex<HashMap<String, u32>>,
    netlink: tokio::sync::OnceCell<rtnetlink::Handle>,
    /// Serialises creating, removing and bringing up networks.
    changes: tokio::sync::Mutex<()>,
    events: broadcast::Sender<EndpointEvent>,
    /// Published ports get the kernel fast path.
    kernel_ports: bool,
    /// The kernel-forwarded ports, by network ID, then container ID.
    dnat: Mutex<BTreeMap<String, BTreeMap<String, Vec<Dnat>>>>,
    /// Serialises writing a network's rules with changing its ports (taken
    /// after `changes` when both are).
    ports_lock: tokio::sync::Mutex<()>,
}

impl Networks {
    /// Opens the networks under `root/networks`. The pool is
    /// `SERVIN_SUBNET_POOL` when set, else [`ipam::DEFAULT_POOL`].
    pub fn open(root: &Path) -> Result<Arc<Self>> {
        let dir = root.join("networks");
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let pool_text = std::env::var("SERVIN_SUBNET_POOL")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ipam::DEFAULT_POOL.to_string());
        let pool = Subnet::parse(&pool_text)?;
        let map = record::load_all(&dir)?;
        Ok(Arc::new(Self {
            dir,
            pool,
            backend: Backend::detect(),
            map: Mutex::new(map),
            up: Mutex::new(HashMap::new()),
            netlink: tokio::sync::OnceCell::new(),
            changes: tokio::sync::Mutex::new(()),
            events: broadcast::channel(256).0,
            kernel_ports: firewall::kernel_ports_wanted(),
            dnat: Mutex::new(BTreeMap::new()),
            ports_lock: tokio::sync::Mutex::new(()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, NetworkRecord>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn netlink(&self) -> Result<&rtnetlink::Handle> {
        self.netlink
            .get_or_try_init(|| async {
                // In the VM: not before the init has loaded bridge, veth
                // and nftables (see `modules`).
                modules::ready().await?;
                link::host_connection()
            })
            .await
    }

    /// The firewall in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Every network, by name.
    pub fn list(&self) -> Vec<NetworkRecord> {
        let mut all: Vec<NetworkRecord> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Finds a network by full ID, name, or unique ID prefix.
    pub fn get(&self, key: &str) -> Result<NetworkRecord> {
        let map = self.lock();
        if let Some(n) = map.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = map.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&NetworkRecord> =
                map.values().filter(|n| n.id.starts_with(key)).collect();
            match hits.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ => {
                    return Err(NetworkError::AmbiguousId(key.to_string(), hits.len()).into());
                }
            }
        }
        Err(Error::NoSuchNetwork(key.to_string()))
    }

    /// The networks whose record names `bridge`, table or chains, for test
    /// cleanup: (bridge, nftables table, iptables chains).
    pub fn host_objects(&self) -> Vec<(String, String, [String; 5])> {
        self.lock()
            .values()
            .map(|n| {
                (
                    n.bridge.clone(),
                    firewall::table_name(n.tag()),
                    firewall::chain_names(n.tag()),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use crate::state::write_json;

    fn record(id: &str, name: &str, subnet: &str, gateway: [u8; 4]) -> NetworkRecord {
        NetworkRecord {
            id: id.to_string(),
            name: name.to_string(),
            driver: "bridge".to_string(),
            created: "2026-01-01T00:00:00Z".to_string(),
            subnet: subnet.to_string(),
            gateway: Ipv4Addr::from(gateway),
            internal: false,
            labels: HashMap::new(),
            options: HashMap::new(),
            bridge: format!("sv-{}", &id[..10]),
            firewall: Backend::Nft,
            endpoints: BTreeMap::new(),
            ipv6: None,
            ip_range: None,
            attachable: false,
        }
    }

    fn endpoint(container: &str, name: &str, ip: [u8; 4], ifname: &str) -> Endpoint {
        Endpoint {
            endpoint_id: "e".repeat(64),
            container_id: container.to_string(),
            container_name: name.to_string(),
            aliases: vec![format!("{name}-alias")],
            ipv4: Ipv4Addr::from(ip),
            ipv6: None,
            mac: ipam::mac_text(ipam::mac_for(Ipv4Addr::from(ip))),
            ifname: ifname.to_string(),
            host_veth: "sv000000000001".to_string(),
        }
    }

    #[test]
    fn state_on_disk_answers_the_dns_and_port_questions() {
        let root = tempfile::tempdir().unwrap();
        let mut front = record(&"a".repeat(64), "front", "10.200.1.0/24", [10, 200, 1, 1]);
        front.endpoints.insert(
            "c1".to_string(),
            endpoint("c1", "web", [10, 200, 1, 2], "eth0"),
        );
        let mut back = record(&"b".repeat(64), "back", "10.200.2.0/24", [10, 200, 2, 1]);
        back.endpoints.insert(
            "c1".to_string(),
            endpoint("c1", "web", [10, 200, 2, 5], "eth1"),
        );
        back.endpoints.insert(
            "c2".to_string(),
            endpoint("c2", "db", [10, 200, 2, 6], "eth0"),
        );
        for r in [&front, &back] {
            let dir = root.path().join("networks").join(&r.id);
            std::fs::create_dir_all(&dir).unwrap();
            write_json(&dir, NETWORK_FILE, r).unwrap();
        }
        let nets = Networks::open(root.path()).unwrap();
        let mut events = nets.subscribe();
        let view = nets.by_gateway("10.200.2.1".parse().unwrap()).unwrap();
        assert_eq!(view.name, "back");
        let mut names: Vec<&str> = view
            .endpoints
            .iter()
            .map(|e| e.container_name.as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["db", "web"]);
        assert!(nets.by_gateway("10.200.9.1".parse().unwrap()).is_none());
        assert_eq!(
            nets.addresses_of("c1"),
            vec![
                ("front".to_string(), Ipv4Addr::new(10, 200, 1, 2)),
                ("back".to_string(), Ipv4Addr::new(10, 200, 2, 5)),
            ]
        );
        assert_eq!(
            nets.get("fro").err().map(|e| e.to_string()),
            Some("network fro not found".to_string())
        );
        assert_eq!(nets.get("bbbb").unwrap().name, "back");
        // c2 is not running any more: its address goes, on disk too.
        let running: HashSet<String> = ["c1".to_string()].into();
        let gone = nets.forget_endpoints_except(&running);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].container_name, "db");
        match events.try_recv().unwrap() {
            EndpointEvent::Removed {
                endpoint, gateway, ..
            } => {
                assert_eq!(endpoint.container_id, "c2");
                assert_eq!(gateway, Ipv4Addr::new(10, 200, 2, 1));
            }
            other => panic!("unexpected event {other:?}"),
        }
        let reopened = Networks::open(root.path()).unwrap();
        assert!(reopened.endpoint(&back.id, "c2").is_none());
        assert!(reopened.endpoint(&back.id, "c1").is_some());
        nets.release_all("c1");
        assert!(nets.addresses_of("c1").is_empty());
    }
}
