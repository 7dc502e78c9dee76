//! A network as kept on disk, and the endpoints of the containers on it.
//!
//! A network is a Linux bridge (`sv-<10 hex of its ID>`) with a subnet of
//! its own (and an IPv6 one, [`Ipv6Settings`], when made with IPv6), its
//! state in `<root>/networks/<id>/network.json`
//! ([`NetworkRecord`]): its settings and its endpoints, the addresses given
//! to running containers, so address management survives an engine
//! restart. Every change is written atomically before it is announced.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Networks;
use super::default::DEFAULT_NETWORK;
use super::firewall::{self, Backend, Dnat};
use super::ipam::Subnet;
use super::ipam6::Subnet6;
use crate::error::{Error, Result};
use crate::state::{read_json, write_json_atomic};

/// The file holding a network's [`NetworkRecord`].
pub const NETWORK_FILE: &str = "network.json";

/// A network as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// Always `bridge`.
    pub driver: String,
    /// When it was made (RFC 3339 with nanoseconds).
    pub created: String,
    /// Its subnet, `A.B.C.D/N`.
    pub subnet: String,
    /// The bridge's address: the containers' gateway.
    pub gateway: Ipv4Addr,
    /// No egress.
    pub internal: bool,
    /// User labels.
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// Driver options as given (kept, not interpreted).
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// The bridge device's name.
    pub bridge: String,
    /// Which firewall holds its rules.
    pub firewall: Backend,
    /// Running containers' endpoints, by container ID.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Its IPv6 side, for a network made with `EnableIPv6` (records
    /// written before IPv6 existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Settings>,
    /// The part of the subnet containers' addresses come from
    /// (`IPRange`), when not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// `Attachable` as asked (kept and reported; without Swarm every
    /// container may join a network).
    #[serde(default)]
    pub attachable: bool,
}

/// A network's IPv6 subnet and gateway.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ipv6Settings {
    /// Its subnet, `ADDR/N`.
    pub subnet: String,
    /// The bridge's IPv6 address: the containers' IPv6 gateway.
    pub gateway: Ipv6Addr,
    /// The part of the subnet containers' addresses come from, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

impl Ipv6Settings {
    /// Its subnet.
    pub fn subnet(&self) -> Result<Subnet6> {
        Subnet6::parse(&self.subnet)
    }

    /// Where containers' addresses come from: the range, else the subnet.
    pub fn range(&self) -> Result<Subnet6> {
        match &self.ip_range {
            Some(r) => Subnet6::parse(r),
            None => self.subnet(),
        }
    }
}

impl NetworkRecord {
    /// The 10 hex digits naming its bridge, table and chains.
    pub fn tag(&self) -> &str {
        self.id.get(..10).unwrap_or(&self.id)
    }

    /// Its subnet.
    pub fn subnet(&self) -> Result<Subnet> {
        Subnet::parse(&self.subnet)
    }

    /// The part of its subnet addresses are given from, when not all.
    pub fn range(&self) -> Result<Option<Subnet>> {
        self.ip_range.as_deref().map(Subnet::parse).transpose()
    }

    /// Whether this is Docker's default network (no DNS of its own:
    /// containers keep the host's resolvers).
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    pub(super) fn rules(&self, kernel_ports: bool, dnat: Vec<Dnat>) -> Result<firewall::Rules> {
        Ok(firewall::Rules {
            tag: self.tag().to_string(),
            bridge: self.bridge.clone(),
            subnet: self.subnet()?,
            gateway: self.gateway,
            internal: self.internal,
            kernel_ports,
            dnat,
            ipv6: match &self.ipv6 {
                Some(v6) => Some((v6.subnet()?, v6.gateway)),
                None => None,
            },
        })
    }
}

/// A running container's place on a network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// 64 hex digits, new at every start.
    pub endpoint_id: String,
    /// The container's ID.
    pub container_id: String,
    /// The container's name (without `/`).
    pub container_name: String,
    /// Its aliases on this network.
    pub aliases: Vec<String>,
    /// Its address.
    pub ipv4: Ipv4Addr,
    /// Its IPv6 address, on a network with IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// Its MAC address, `aa:bb:...`.
    pub mac: String,
    /// The interface inside the container (`eth0`...).
    pub ifname: String,
    /// The host end of its veth pair.
    pub host_veth: String,
}

/// What a container asked for on one network: kept in its folder
/// (`networks.json`) from create on, changed by connect and disconnect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Attachment {
    /// The network's ID, or `bridge` for the default network before it
    /// exists.
    pub network: String,
    /// Extra names on this network (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A fixed address (`--ip`), if asked for.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// A fixed IPv6 address (`--ip6`), if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// A fixed MAC address (`--mac-address`, `aa:bb:cc:dd:ee:ff`), if asked
    /// for; else one is made from the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// Reads every network folder under `dir`; folders left by a create or a
/// remove that did not finish (their names start with `.`) are deleted.
pub(super) fn load_all(dir: &Path) -> Result<BTreeMap<String, NetworkRecord>> {
    let mut map = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(Error::io("read", dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        match read_json::<NetworkRecord>(&path, NETWORK_FILE) {
            Ok(r) => {
                map.insert(r.id.clone(), r);
            }
            Err(e) => tracing::warn!(
                "skipping network folder {}: {}",
                path.display(),
                e.full_message()
            ),
        }
    }
    Ok(map)
}

impl Networks {
    /// Writes a network's record (atomically: a crash leaves the old one or
    /// the new one).
    pub(super) fn save(&self, rec: &NetworkRecord) -> Result<()> {
        write_json_atomic(&self.dir.join(&rec.id), NETWORK_FILE, rec)
    }
}
