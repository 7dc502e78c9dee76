//! Container networks: bridges, address management, namespaces, firewall,
//! name resolution and published ports.
//!
//! [`Networks`] owns every network of the engine. A network is a Linux
//! bridge (`sv-<10 hex of its ID>`) with a subnet of its own, its state in
//! `<root>/networks/<id>/network.json` ([`NetworkRecord`]): its settings
//! and its endpoints, the addresses given to running containers, so
//! address management survives an engine restart. The default network,
//! Docker's `bridge`, is made the first time a container needs it.
//!
//! A container that joins networks gets a network namespace made by the
//! engine (bind-mounted on `netns` in its folder), loopback up and one veth
//! pair per network (`eth0`, `eth1`... inside, `sv<12 hex>` on the bridge),
//! and the default route through the first network that has egress. The
//! runtime joins that namespace. Its endpoints go when it stops.
//!
//! For the DNS server and the port forwarder:
//! - [`Networks::by_gateway`]: the network answering on a gateway address,
//!   with its containers' names, aliases and addresses;
//! - [`Networks::subscribe`]: an [`EndpointEvent`] whenever an endpoint is
//!   added or removed, and when a network's bridge comes up (its gateway
//!   address exists: bind to it then) or the network is removed;
//! - [`Networks::addresses_of`]: a running container's addresses;
//! - [`Networks::dns_gateways`]: where user-defined networks expect their
//!   DNS server (port 53 on each gateway);
//! - [`Networks::publish_kernel`] and [`Networks::unpublish_kernel`]: the
//!   kernel fast path of a container's published ports (see [`firewall`]),
//!   kept in memory per network so that rewriting a network's rules keeps
//!   them, and emptied at engine start ([`Networks::flush_kernel_ports`]).
//!
//! - [`create`]: a network from a Docker create body, for the API and
//!   projects.
//! - [`ipam`]: subnets, the pool, address allocation.
//! - [`link`]: netlink: bridges, veths, namespaces.
//! - [`firewall`]: nftables or iptables rules per network.
//! - [`dns`]: the embedded DNS server that resolves container names.
//! - [`ports`]: published ports, forwarded from the host in userland.

pub mod create;
pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod ports;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::state::{read_json, write_json, write_json_atomic};
use crate::timefmt;
use firewall::{Backend, Dnat};
use ipam::Subnet;

/// The file holding a network's [`NetworkRecord`].
pub const NETWORK_FILE: &str = "network.json";
/// The default network's name (Docker's).
pub const DEFAULT_NETWORK: &str = "bridge";
/// The lock every servin engine on the host holds while choosing a subnet
/// and making its bridge.
pub const SUBNET_LOCK: &str = "/run/lock/servin-subnets.lock";

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

    /// Whether this is Docker's default network (no DNS of its own:
    /// containers keep the host's resolvers).
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    fn rules(&self, kernel_ports: bool, dnat: Vec<Dnat>) -> Result<firewall::Rules> {
        Ok(firewall::Rules {
            tag: self.tag().to_string(),
            bridge: self.bridge.clone(),
            subnet: self.subnet()?,
            gateway: self.gateway,
            internal: self.internal,
            kernel_ports,
            dnat,
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
}

/// A network with its containers, for the DNS server.
#[derive(Debug, Clone)]
pub struct NetworkView {
    /// The network's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its gateway address.
    pub gateway: Ipv4Addr,
    /// Whether it is internal (no forwarding of outside names wanted).
    pub internal: bool,
    /// Its running containers.
    pub endpoints: Vec<Endpoint>,
}

/// An endpoint came or went, or a network's bridge came up or went.
#[derive(Debug, Clone)]
pub enum EndpointEvent {
    /// A network's bridge exists with its gateway address (at its
    /// creation, and the first time the engine uses it after starting):
    /// a server may bind to the gateway now.
    NetworkUp {
        /// The network's ID.
        network: String,
        /// Its gateway.
        gateway: Ipv4Addr,
    },
    /// A network and its bridge were removed.
    NetworkRemoved {
        /// The network's ID.
        network: String,
        /// Its gateway (an address the host no longer has).
        gateway: Ipv4Addr,
    },
    /// A container joined `network` (at its start or a connect).
    Added {
        /// The network's ID.
        network: String,
        /// The network's gateway.
        gateway: Ipv4Addr,
        /// The new endpoint.
        endpoint: Endpoint,
    },
    /// A container left `network` (it stopped, or was disconnected).
    Removed {
        /// The network's ID.
        network: String,
        /// The network's gateway.
        gateway: Ipv4Addr,
        /// The endpoint that went.
        endpoint: Endpoint,
    },
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The name.
    pub name: String,
    /// The driver (only `bridge`).
    pub driver: Option<String>,
    /// A subnet instead of one from the pool.
    pub subnet: Option<String>,
    /// A gateway inside the subnet instead of its first address.
    pub gateway: Option<String>,
    /// No egress.
    pub internal: bool,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Driver options (kept).
    pub options: HashMap<String, String>,
}

/// A container's address reserved on a network, its devices not made yet
/// ([`Networks::reserve`], [`Networks::plumb`]).
#[derive(Debug, Clone)]
pub struct Reservation {
    network_id: String,
    gateway: Ipv4Addr,
    bridge: u32,
    prefix: u8,
    default_route: bool,
    /// The endpoint as recorded.
    pub endpoint: Endpoint,
}

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

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
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
        let mut map = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(Error::io("read", &dir))?;
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
            .get_or_try_init(|| async { link::host_connection() })
            .await
    }

    /// The firewall in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether published ports get the kernel fast path
    /// (`SERVIN_PORT_FORWARD` is not `userland`).
    pub fn kernel_ports(&self) -> bool {
        self.kernel_ports
    }

    fn dnat_lock(&self) -> MutexGuard<'_, BTreeMap<String, BTreeMap<String, Vec<Dnat>>>> {
        self.dnat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A network's rules with its kernel-forwarded ports as they are now
    /// (call with `ports_lock` held).
    fn rules_of(&self, rec: &NetworkRecord) -> Result<firewall::Rules> {
        let dnat = self
            .dnat_lock()
            .get(&rec.id)
            .map(|by_container| by_container.values().flatten().copied().collect())
            .unwrap_or_default();
        rec.rules(self.kernel_ports, dnat)
    }

    /// Writes a network's rules with its ports, and lets its bridge route
    /// loopback addresses when the kernel path is on.
    async fn write_rules(&self, rec: &NetworkRecord, backend: Backend) -> Result<()> {
        if self.kernel_ports {
            firewall::set_route_localnet(&rec.bridge)?;
        }
        let _ports = self.ports_lock.lock().await;
        firewall::apply(backend, &self.rules_of(rec)?).await
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
                    return Err(Error::BadRequest(format!(
                        "network {key} is ambiguous ({} matches found on ID prefix)",
                        hits.len()
                    )));
                }
            }
        }
        Err(Error::NoSuchNetwork(key.to_string()))
    }

    fn save(&self, rec: &NetworkRecord) -> Result<()> {
        write_json_atomic(&self.dir.join(&rec.id), NETWORK_FILE, rec)
    }

    /// Creates a network: its subnet (given, or the first free one of the
    /// pool), its bridge and its firewall rules. Nothing is left behind
    /// when it fails.
    pub async fn create(&self, opts: CreateOptions) -> Result<NetworkRecord> {
        let _changes = self.changes.lock().await;
        self.create_locked(opts).await
    }

    async fn create_locked(&self, opts: CreateOptions) -> Result<NetworkRecord> {
        let name = opts.name.trim().to_string();
        if !is_valid_name(&name) {
            return Err(Error::BadRequest(format!(
                "invalid network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
            )));
        }
        if matches!(name.as_str(), "host" | "none") {
            return Err(Error::Forbidden(format!(
                "{name} is a pre-defined network and cannot be created"
            )));
        }
        match opts.driver.as_deref() {
            None | Some("" | "bridge") => {}
            Some(d) => {
                return Err(Error::BadRequest(format!(
                    "network driver {d:?} is not supported: servin networks use the bridge driver"
                )));
            }
        }
        if let Some(other) = self.lock().values().find(|n| n.name == name) {
            return Err(Error::Conflict(format!(
                "network with name {name} already exists (ID {})",
                other.id
            )));
        }
        let given = opts
            .subnet
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(Subnet::parse)
            .transpose()?;
        if given.is_none() && opts.gateway.as_deref().is_some_and(|g| !g.is_empty()) {
            return Err(Error::BadRequest(
                "a gateway needs a subnet: give --subnet too".to_string(),
            ));
        }
        let id = crate::state::new_id()?;
        let tag = id.get(..10).unwrap_or(&id).to_string();
        let bridge = format!("sv-{tag}");
        let h = self.netlink().await?.clone();
        // Other engines on the host choose subnets too: one at a time,
        // from the routes as they are while the lock is held, until this
        // network's bridge (and so its route) exists.
        let lock = lock_subnets().await?;
        let taken: Vec<Subnet> = ipam::host_routes()
            .into_iter()
            .chain(self.lock().values().filter_map(|n| n.subnet().ok()))
            .collect();
        let subnet = match given {
            Some(s) => {
                if let Some(t) = taken.iter().find(|t| t.overlaps(&s)) {
                    return Err(Error::Conflict(format!(
                        "invalid subnet {s}: it overlaps {t}, which is already in use on this host"
                    )));
                }
                s
            }
            None => ipam::choose_subnet(self.pool, &taken).ok_or_else(|| {
                Error::Conflict(format!(
                    "no free subnet left in the pool {}: remove unused networks (servin network prune) or give --subnet",
                    self.pool
                ))
            })?,
        };
        let gateway = match opts.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| {
                    Error::BadRequest(format!("invalid gateway {g:?}: want an IPv4 address"))
                })?;
                if !subnet.is_host(ip) {
                    return Err(Error::BadRequest(format!(
                        "invalid gateway {ip}: it is not a host address of the subnet {subnet}"
                    )));
                }
                ip
            }
            None => subnet.first_host(),
        };
        let rec = NetworkRecord {
            id: id.clone(),
            name,
            driver: "bridge".to_string(),
            created: timefmt::format_nanos(SystemTime::now()),
            subnet: subnet.to_string(),
            gateway,
            internal: opts.internal,
            labels: opts.labels,
            options: opts.options,
            bridge: bridge.clone(),
            firewall: self.backend,
            endpoints: BTreeMap::new(),
        };
        let tmp = self.dir.join(format!(".creating-{id}"));
        let dir = self.dir.join(&id);
        let made = async {
            std::fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
            // Written before the bridge exists, so a crash leaves a record
            // naming what to clean.
            write_json(&tmp, NETWORK_FILE, &rec)?;
            std::fs::rename(&tmp, &dir).map_err(Error::io("rename", &tmp))?;
            let index = link::ensure_bridge(&h, &bridge, gateway, subnet.prefix).await?;
            drop(lock);
            firewall::ensure_ip_forward()?;
            self.write_rules(&rec, self.backend).await?;
            Ok::<_, Error>(index)
        };
        let index = match made.await {
            Ok(i) => i,
            Err(e) => {
                let _ = link::delete_link(&h, &bridge).await;
                let _ = firewall::remove(self.backend, &tag).await;
                let _ = std::fs::remove_dir_all(&tmp);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        self.lock().insert(id.clone(), rec.clone());
        if let Ok(mut up) = self.up.lock() {
            up.insert(id.clone(), index);
        }
        let _ = self.events.send(EndpointEvent::NetworkUp {
            network: id,
            gateway,
        });
        tracing::info!(name = %rec.name, subnet = %rec.subnet, bridge = %rec.bridge, "network created");
        Ok(rec)
    }

    /// The default network, made on first use.
    pub async fn ensure_default(&self) -> Result<NetworkRecord> {
        if let Ok(n) = self.get(DEFAULT_NETWORK) {
            return Ok(n);
        }
        let _changes = self.changes.lock().await;
        if let Ok(n) = self.get(DEFAULT_NETWORK) {
            return Ok(n);
        }
        self.create_locked(CreateOptions {
            name: DEFAULT_NETWORK.to_string(),
            ..CreateOptions::default()
        })
        .await
    }

    /// Makes sure a network's bridge and rules exist (once per engine run:
    /// after a host reboot they are gone while the record stays); returns
    /// the bridge's index.
    pub async fn ensure_up(&self, rec: &NetworkRecord) -> Result<u32> {
        let known = |this: &Self| this.up.lock().ok().and_then(|u| u.get(&rec.id).copied());
        if let Some(i) = known(self) {
            return Ok(i);
        }
        let _changes = self.changes.lock().await;
        if let Some(i) = known(self) {
            return Ok(i);
        }
        let h = self.netlink().await?.clone();
        let subnet = rec.subnet()?;
        let index = link::ensure_bridge(&h, &rec.bridge, rec.gateway, subnet.prefix).await?;
        firewall::ensure_ip_forward()?;
        self.write_rules(rec, rec.firewall).await?;
        if let Ok(mut up) = self.up.lock() {
            up.insert(rec.id.clone(), index);
        }
        let _ = self.events.send(EndpointEvent::NetworkUp {
            network: rec.id.clone(),
            gateway: rec.gateway,
        });
        Ok(index)
    }

    /// Removes a network: its rules, its bridge, its folder. Refused while
    /// containers run on it (the caller checks stopped ones).
    pub async fn remove(&self, key: &str) -> Result<NetworkRecord> {
        let _changes = self.changes.lock().await;
        let rec = self.get(key)?;
        if !rec.endpoints.is_empty() {
            let names: Vec<&str> = rec
                .endpoints
                .values()
                .map(|e| e.container_name.as_str())
                .collect();
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} has active endpoints ({})",
                rec.name,
                names.join(", ")
            )));
        }
        let h = self.netlink().await?.clone();
        {
            // No port of a container that just stopped may write the rules
            // again once they are gone.
            let _ports = self.ports_lock.lock().await;
            if let Ok(mut up) = self.up.lock() {
                up.remove(&rec.id);
            }
            self.dnat_lock().remove(&rec.id);
            firewall::remove(rec.firewall, rec.tag()).await?;
        }
        link::delete_link(&h, &rec.bridge).await?;
        let dir = self.dir.join(&rec.id);
        let aside = self.dir.join(format!(".removing-{}", rec.id));
        std::fs::rename(&dir, &aside).map_err(Error::io("rename", &dir))?;
        self.lock().remove(&rec.id);
        if let Err(e) = std::fs::remove_dir_all(&aside) {
            tracing::warn!("remove {}: {e}", aside.display());
        }
        let _ = self.events.send(EndpointEvent::NetworkRemoved {
            network: rec.id.clone(),
            gateway: rec.gateway,
        });
        tracing::info!(name = %rec.name, "network removed");
        Ok(rec)
    }

    /// Joins a container's namespace to a network: [`Networks::reserve`]
    /// then [`Networks::plumb`].
    pub async fn attach(
        &self,
        ns: &link::NsLink,
        network_id: &str,
        container: (&str, &str),
        want: &Attachment,
        ifname: &str,
        default_route: bool,
    ) -> Result<Endpoint> {
        let reserved = self
            .reserve(network_id, container, want, ifname, default_route)
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
        default_route: bool,
    ) -> Result<Reservation> {
        let (container_id, container_name) = container;
        let rec = self.get(network_id)?;
        let bridge = self.ensure_up(&rec).await?;
        let subnet = rec.subnet()?;
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
            let ipv4 = match want.ipv4 {
                Some(ip) => {
                    if !subnet.is_host(ip) || ip == rec.gateway {
                        return Err(Error::BadRequest(format!(
                            "invalid address {ip} for network {}: not a free host address of {subnet}",
                            rec.name
                        )));
                    }
                    if used.contains(&ip) {
                        return Err(Error::Conflict(format!(
                            "address {ip} is already in use on network {}",
                            rec.name
                        )));
                    }
                    ip
                }
                None => ipam::next_free(subnet, rec.gateway, &used).ok_or_else(|| {
                    Error::Conflict(format!(
                        "no free address left on network {} ({subnet})",
                        rec.name
                    ))
                })?,
            };
            let endpoint = Endpoint {
                endpoint_id: crate::state::new_id()?,
                container_id: container_id.to_string(),
                container_name: container_name.to_string(),
                aliases: want.aliases.clone(),
                ipv4,
                mac: ipam::mac_text(ipam::mac_for(ipv4)),
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
            "endpoint"
        );
        Ok(Reservation {
            network_id: rec.id.clone(),
            gateway: rec.gateway,
            bridge,
            prefix: subnet.prefix,
            default_route,
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
                    mac: ipam::mac_for(e.ipv4),
                    address: e.ipv4,
                    prefix: r.prefix,
                    default_gateway: r.default_route.then_some(r.gateway),
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

    /// A receiver of every endpoint added or removed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EndpointEvent> {
        self.events.subscribe()
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

    /// Forwards a container's published `ports` in the kernel, to its
    /// address on `network_id` (replacing what it had there). Nothing to
    /// do when the kernel path is off. On a failure nothing of `ports` is
    /// kept (the userland forwarder still serves them).
    /// `still_wanted` is asked with the store locked: when it says no (the
    /// container stopped meanwhile, and [`Networks::unpublish_kernel`] ran
    /// already), nothing is added.
    pub async fn publish_kernel(
        &self,
        network_id: &str,
        container_id: &str,
        ports: Vec<Dnat>,
        still_wanted: impl Fn() -> bool,
    ) -> Result<()> {
        if !self.kernel_ports || ports.is_empty() {
            return Ok(());
        }
        let rec = self.get(network_id)?;
        self.ensure_up(&rec).await?;
        let _ports = self.ports_lock.lock().await;
        if !still_wanted() {
            return Ok(());
        }
        if let Some(ep) = rec.endpoints.get(container_id)
            && let Err(e) = link::set_hairpin(&ep.host_veth)
        {
            tracing::warn!(
                "container {}: its own published ports through the host's address: {}",
                ep.container_name,
                e.full_message()
            );
        }
        let old = self
            .dnat_lock()
            .entry(rec.id.clone())
            .or_default()
            .insert(container_id.to_string(), ports.clone())
            .unwrap_or_default();
        let Err(e) = firewall::update_dnat(rec.firewall, rec.tag(), &ports, &old).await else {
            return Ok(());
        };
        // The maps did not hold what the store says (rewritten behind the
        // engine's back): write the network's rules again from the store.
        tracing::debug!(
            network = %rec.name,
            "add published ports to the kernel: {}; rewriting the rules",
            e.full_message()
        );
        let rewritten = async { firewall::apply(rec.firewall, &self.rules_of(&rec)?).await };
        if let Err(again) = rewritten.await {
            if let Some(by_container) = self.dnat_lock().get_mut(&rec.id) {
                by_container.remove(container_id);
            }
            return Err(Error::Runtime {
                context: format!(
                    "network {}: forward published ports in the kernel",
                    rec.name
                ),
                message: format!("{}; then: {}", e.full_message(), again.full_message()),
            });
        }
        Ok(())
    }

    /// Stops forwarding a container's published ports in the kernel; done
    /// when this returns.
    pub async fn unpublish_kernel(&self, container_id: &str) -> Result<()> {
        let _ports = self.ports_lock.lock().await;
        let taken: Vec<(String, Vec<Dnat>)> = self
            .dnat_lock()
            .iter_mut()
            .filter_map(|(n, by_container)| {
                by_container.remove(container_id).map(|p| (n.clone(), p))
            })
            .collect();
        for (network_id, ports) in taken {
            let Ok(rec) = self.get(&network_id) else {
                continue;
            };
            let Err(e) = firewall::update_dnat(rec.firewall, rec.tag(), &[], &ports).await else {
                continue;
            };
            let up = self
                .up
                .lock()
                .ok()
                .is_some_and(|u| u.contains_key(&network_id));
            if !up {
                continue;
            }
            tracing::debug!(
                network = %rec.name,
                "remove published ports from the kernel: {}; rewriting the rules",
                e.full_message()
            );
            firewall::apply(rec.firewall, &self.rules_of(&rec)?)
                .await
                .map_err(|again| Error::Runtime {
                    context: format!(
                        "network {}: stop forwarding published ports in the kernel",
                        rec.name
                    ),
                    message: format!("{}; then: {}", e.full_message(), again.full_message()),
                })?;
        }
        Ok(())
    }

    /// Empties the kernel's forwarding of published ports on every network
    /// (at engine start, before the ports of containers that still run are
    /// published again: those of containers that died meanwhile must go).
    /// Blocking.
    pub fn flush_kernel_ports(&self) -> Result<()> {
        self.dnat_lock().clear();
        let mut by_backend: BTreeMap<&'static str, (Backend, Vec<String>)> = BTreeMap::new();
        for n in self.lock().values() {
            by_backend
                .entry(n.firewall.as_str())
                .or_insert_with(|| (n.firewall, Vec::new()))
                .1
                .push(n.tag().to_string());
        }
        for (backend, tags) in by_backend.into_values() {
            firewall::flush_dnat(backend, &tags)?;
        }
        Ok(())
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

fn view(n: &NetworkRecord) -> NetworkView {
    NetworkView {
        id: n.id.clone(),
        name: n.name.clone(),
        gateway: n.gateway,
        internal: n.internal,
        endpoints: n.endpoints.values().cloned().collect(),
    }
}

/// `eth2` sorts after `eth10`? No: by the number.
fn iface_order(name: &str) -> u32 {
    name.trim_start_matches("eth").parse().unwrap_or(u32::MAX)
}

/// Holds the host-wide subnet lock until dropped.
struct SubnetLock(#[allow(dead_code)] std::fs::File);

async fn lock_subnets() -> Result<SubnetLock> {
    let path = Path::new(SUBNET_LOCK);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    for _ in 0..2000 {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(SubnetLock(file)),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(Error::io("lock", path)(e.into())),
        }
    }
    Err(Error::Conflict(format!(
        "another engine held {} for over 10 seconds",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        }
    }

    fn endpoint(container: &str, name: &str, ip: [u8; 4], ifname: &str) -> Endpoint {
        Endpoint {
            endpoint_id: "e".repeat(64),
            container_id: container.to_string(),
            container_name: name.to_string(),
            aliases: vec![format!("{name}-alias")],
            ipv4: Ipv4Addr::from(ip),
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

    #[test]
    fn network_names_follow_docker() {
        assert!(is_valid_name("back_end.1-a"));
        assert!(!is_valid_name("-x"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a/b"));
    }

    #[test]
    fn interfaces_sort_by_number() {
        let mut v = vec!["eth10", "eth2", "eth0"];
        v.sort_by_key(|n| iface_order(n));
        assert_eq!(v, vec!["eth0", "eth2", "eth10"]);
    }
}
