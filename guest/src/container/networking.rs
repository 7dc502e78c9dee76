//! Containers on networks: which networks a container joins, its network
//! namespace and endpoints at start, their removal at stop, connect and
//! disconnect, and removing networks no container uses.
//!
//! `network_mode` decides: `host` shares the engine's namespace, `none`
//! gets a namespace with loopback only (made by the runtime), anything
//! else joins networks: the default `bridge` network when empty, else the
//! named one, plus every other network of `NetworkingConfig`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bollard_stubs::models::{ContainerCreateBody, EndpointSettings};

use super::{Container, Containers, Status};
use crate::error::{ContainerError, Error, NetworkError, Result};
use crate::network::{Attachment, DEFAULT_NETWORK, NetworkRecord, link};

/// What a started container's networking gave it.
#[derive(Debug, Default, Clone)]
pub struct NetSetup {
    /// The namespace the runtime joins (`None`: host or a fresh one).
    pub netns: Option<PathBuf>,
    /// Its addresses, first network first (for `/etc/hosts`).
    pub addresses: Vec<IpAddr>,
    /// The DNS server of its first network, when that is user-defined.
    pub dns: Option<Ipv4Addr>,
    /// The gateway of its default route: the host, for `host-gateway` in
    /// `--add-host`.
    pub gateway: Option<IpAddr>,
}

/// The addresses [`Containers::reserve_network`] reserved, for
/// [`Containers::plumb_network`].
#[derive(Debug, Default)]
pub struct NetPlan {
    reserved: Vec<crate::network::Reservation>,
}

/// How a container's `network_mode` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The engine's network namespace.
    Host,
    /// Loopback only.
    None,
    /// Another container's namespace (refused by the spec builder).
    Container(String),
    /// Networks: the named one (`bridge` for the default).
    Network(String),
}

/// Reads `network_mode`.
pub fn mode_of(body: &ContainerCreateBody) -> Mode {
    let hc = body.host_config.clone().unwrap_or_default();
    match hc.network_mode.as_deref().unwrap_or_default() {
        "host" => Mode::Host,
        "none" => Mode::None,
        "" | "default" | "bridge" => Mode::Network(DEFAULT_NETWORK.to_string()),
        m if m.starts_with("container:") => Mode::Container(m.to_string()),
        m => Mode::Network(m.to_string()),
    }
}

/// What a container asks for on one network.
struct Wish {
    aliases: Vec<String>,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    mac: Option<String>,
}

/// A MAC address as asked for: six hex octets, not a multicast one.
fn wished_mac(text: &str) -> Result<String> {
    match crate::network::ipam::parse_mac(text) {
        Some(m) if m[0] & 1 == 0 => Ok(crate::network::ipam::mac_text(m)),
        _ => Err(Error::from(ContainerError::InvalidConfig(format!(
            "invalid MAC address {text:?}: want six hex octets such as 02:42:ac:11:00:02, not a multicast one"
        )))),
    }
}

fn endpoint_wish(settings: Option<&EndpointSettings>) -> Result<Wish> {
    let Some(s) = settings else {
        return Ok(Wish {
            aliases: Vec::new(),
            ipv4: None,
            ipv6: None,
            mac: None,
        });
    };
    let aliases: Vec<String> = s
        .aliases
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    let ip = s
        .ipam_config
        .as_ref()
        .and_then(|c| c.ipv4_address.clone())
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<Ipv4Addr>().map_err(|_| {
                Error::from(ContainerError::InvalidConfig(format!(
                    "invalid IPv4 address {a:?}"
                )))
            })
        })
        .transpose()?;
    let ipv6 = s
        .ipam_config
        .as_ref()
        .and_then(|c| c.ipv6_address.clone())
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<Ipv6Addr>().map_err(|_| {
                Error::from(ContainerError::InvalidConfig(format!(
                    "invalid IPv6 address {a:?}"
                )))
            })
        })
        .transpose()?;
    if let Some(opts) = s.driver_opts.as_ref().filter(|o| !o.is_empty()) {
        let mut keys: Vec<&String> = opts.keys().collect();
        keys.sort();
        return Err(Error::from(ContainerError::InvalidConfig(format!(
            "endpoint driver options are not supported by servin's bridge networks: {}",
            keys.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))));
    }
    let mac = s
        .mac_address
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(wished_mac)
        .transpose()?;
    Ok(Wish {
        aliases,
        ipv4: ip,
        ipv6,
        mac,
    })
}

impl Containers {
    /// The key an attachment keeps for `name`: the network's ID, or
    /// `bridge` while the default network does not exist yet.
    fn network_key(&self, name: &str) -> Result<(String, bool)> {
        match self.networks.get(name) {
            Ok(n) => Ok((n.id.clone(), n.is_default())),
            Err(Error::NoSuchNetwork(_)) if name == DEFAULT_NETWORK => {
                Ok((DEFAULT_NETWORK.to_string(), true))
            }
            // Not a 404: the docker CLI takes a 404 on create for a
            // missing image and tries to pull it.
            Err(Error::NoSuchNetwork(n)) => Err(Error::from(ContainerError::InvalidConfig(
                format!("network {n} not found"),
            ))),
            Err(e) => Err(e),
        }
    }

    /// An IPv6 address asked for on the network `key`: refused at once,
    /// as Docker refuses it, when the network has no IPv6 or the address is
    /// not one of its subnet's (whether it is free is known at start).
    fn check_ipv6_wish(&self, key: &str, wish: &Wish) -> Result<()> {
        let (Some(ip), Ok(rec)) = (wish.ipv6, self.networks.get(key)) else {
            return Ok(());
        };
        let Some(v6) = &rec.ipv6 else {
            return Err(NetworkError::NoIpv6 {
                ip: ip.to_string(),
                network: rec.name,
            }
            .into());
        };
        let subnet = v6.subnet()?;
        if !subnet.is_host(ip) || ip == v6.gateway {
            return Err(NetworkError::InvalidAddress {
                ip: ip.to_string(),
                network: rec.name,
                subnet: subnet.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// The networks a create body joins, checked against the existing
    /// networks.
    pub(super) fn attachments_for(&self, body: &ContainerCreateBody) -> Result<Vec<Attachment>> {
        let primary = match mode_of(body) {
            Mode::Network(n) => n,
            Mode::Host | Mode::None | Mode::Container(_) => return Ok(Vec::new()),
        };
        let endpoints = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        let (key, default) = self.network_key(&primary)?;
        // Docker names the primary network in EndpointsConfig by the name
        // given; `bridge` is also sent as `default`.
        let primary_settings = endpoints.get(&primary).or_else(|| {
            (primary == DEFAULT_NETWORK)
                .then(|| endpoints.get("default"))
                .flatten()
        });
        let wish = endpoint_wish(primary_settings)?;
        check_default_wish(default, &wish)?;
        self.check_ipv6_wish(&key, &wish)?;
        out.push(Attachment {
            network: key,
            aliases: wish.aliases,
            ipv4: wish.ipv4,
            ipv6: wish.ipv6,
            mac: wish.mac,
        });
        let mut others: Vec<(&String, &EndpointSettings)> = endpoints
            .iter()
            .filter(|(n, _)| **n != primary && !(primary == DEFAULT_NETWORK && *n == "default"))
            .collect();
        others.sort_by(|a, b| a.0.cmp(b.0));
        for (name, settings) in others {
            let (key, default) = self.network_key(name)?;
            if out.iter().any(|a| a.network == key) {
                continue;
            }
            let wish = endpoint_wish(Some(settings))?;
            check_default_wish(default, &wish)?;
            self.check_ipv6_wish(&key, &wish)?;
            out.push(Attachment {
                network: key,
                aliases: wish.aliases,
                ipv4: wish.ipv4,
                ipv6: wish.ipv6,
                mac: wish.mac,
            });
        }
        Ok(out)
    }

    async fn resolve(&self, key: &str) -> Result<NetworkRecord> {
        match self.networks.get(key) {
            Ok(n) => Ok(n),
            Err(Error::NoSuchNetwork(_)) if key == DEFAULT_NETWORK => {
                self.networks.ensure_default().await
            }
            Err(e) => Err(e),
        }
    }

    /// The first half of a start's networking: the networks brought up
    /// and the container's addresses reserved and recorded, enough to write
    /// its `/etc/hosts` and spec. The devices come with
    /// [`Containers::plumb_network`], which may run meanwhile. Nothing to
    /// do without networks (`host`, `none`).
    pub(super) async fn reserve_network(&self, c: &Container) -> Result<(NetSetup, NetPlan)> {
        let attachments = c.attachments();
        if attachments.is_empty() {
            return Ok((NetSetup::default(), NetPlan::default()));
        }
        let mut networks = Vec::with_capacity(attachments.len());
        for a in &attachments {
            let rec = self.resolve(&a.network).await?;
            self.networks.ensure_up(&rec).await?;
            networks.push(rec);
        }
        // Leftovers of an earlier run that was not cleaned up.
        self.teardown_network(c).await;
        let reserved = async {
            let mut reserved = Vec::with_capacity(attachments.len());
            let mut routed = false;
            let mut routed6 = false;
            for (i, (a, rec)) in attachments.iter().zip(&networks).enumerate() {
                let default_route = !routed && !rec.internal;
                routed |= default_route;
                // The IPv6 default route goes through the first network
                // with IPv6 and egress, which need not carry the IPv4 one.
                let default_route6 = !routed6 && !rec.internal && rec.ipv6.is_some();
                routed6 |= default_route6;
                reserved.push(
                    self.networks
                        .reserve(
                            &rec.id,
                            (c.id(), &c.name()),
                            a,
                            &format!("eth{i}"),
                            (default_route, default_route6),
                        )
                        .await?,
                );
            }
            Ok::<_, Error>(reserved)
        };
        let reserved = match reserved.await {
            Ok(reserved) => reserved,
            Err(e) => {
                self.teardown_network(c).await;
                return Err(e);
            }
        };
        let gateway = attachments
            .iter()
            .zip(&networks)
            .find(|(_, rec)| !rec.internal)
            .map(|(_, rec)| IpAddr::V4(rec.gateway));
        let dns = networks
            .first()
            .filter(|n| !n.is_default())
            .map(|n| n.gateway);
        let setup = NetSetup {
            netns: Some(c.paths.netns()),
            addresses: reserved
                .iter()
                .flat_map(|r| {
                    std::iter::once(IpAddr::V4(r.endpoint.ipv4))
                        .chain(r.endpoint.ipv6.map(IpAddr::V6))
                })
                .collect(),
            dns,
            gateway,
        };
        Ok((setup, NetPlan { reserved }))
    }

    /// The second half: the container's network namespace, loopback up,
    /// and a veth pair per reserved address. On a failure everything of
    /// its networking is undone.
    pub(super) async fn plumb_network(&self, c: &Container, plan: NetPlan) -> Result<()> {
        if plan.reserved.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let made = async {
            let ns = link::create_netns(&c.paths.netns()).await?;
            link::loopback_up(&ns).await?;
            for r in &plan.reserved {
                self.networks.plumb(&ns, r).await?;
            }
            Ok::<_, Error>(())
        };
        match made.await {
            Ok(()) => {
                tracing::debug!(id = %c.id(), elapsed = ?t0.elapsed(), "network ready");
                Ok(())
            }
            Err(e) => {
                self.teardown_network(c).await;
                Err(e)
            }
        }
    }

    /// Closes its published ports, frees a container's addresses and removes its namespace's bind
    /// mount (its veths go with the namespace).
    ///
    /// The unmount blocks (milliseconds, more when the kernel syncs its
    /// mount tables), so it runs on a blocking thread: on the engine's one
    /// async thread the teardowns of a `down` would wait for each other.
    pub(super) async fn teardown_network(&self, c: &Container) {
        self.unpublish_ports(c).await;
        self.networks.release_all(c.id());
        let netns = c.paths.netns();
        let removed = tokio::task::spawn_blocking(move || link::remove_netns(&netns))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.full_message()));
        if let Err(e) = removed {
            tracing::warn!("remove the network namespace of {}: {e}", c.name());
        }
    }

    /// After an engine restart: frees the endpoints of containers that no
    /// longer run, and their devices.
    pub(super) fn recover_networks(&self, running: &HashSet<String>) {
        let stale = self.networks.forget_endpoints_except(running);
        if stale.is_empty() {
            return;
        }
        let networks = Arc::clone(&self.networks);
        tokio::spawn(async move {
            for e in stale {
                if let Err(err) = networks.delete_veth(&e.host_veth).await {
                    tracing::warn!("delete {}: {}", e.host_veth, err.full_message());
                }
            }
        });
    }

    /// Connects a container to a network; a running one gets its new
    /// interface at once.
    pub async fn connect(
        self: &Arc<Self>,
        c: &Arc<Container>,
        network_key: &str,
        settings: Option<&EndpointSettings>,
    ) -> Result<()> {
        let _op = c.op.lock().await;
        match mode_of(&c.record.body) {
            Mode::Network(_) => {}
            Mode::Host | Mode::None | Mode::Container(_) => {
                return Err(Error::from(ContainerError::Networking(format!(
                    "container {} cannot be connected to networks: it uses network mode {:?}",
                    c.name(),
                    c.record.host_config().network_mode.unwrap_or_default()
                ))));
            }
        }
        if settings
            .and_then(|s| s.links.as_ref())
            .is_some_and(|l| !l.is_empty())
        {
            return Err(Error::from(ContainerError::InvalidConfig(format!(
                "container {}: links are not supported on network connect; give them when the container is created (--link), or reach the container by its name or a network alias",
                c.name()
            ))));
        }
        let rec = self.resolve(network_key).await?;
        let wish = endpoint_wish(settings)?;
        check_default_wish(rec.is_default(), &wish)?;
        self.check_ipv6_wish(&rec.id, &wish)?;
        let Wish {
            aliases,
            ipv4,
            ipv6,
            mac,
        } = wish;
        let attachments = c.attachments();
        let same = |a: &Attachment| {
            a.network == rec.id || (rec.is_default() && a.network == DEFAULT_NETWORK)
        };
        if attachments.iter().any(same) {
            return Err(Error::from(ContainerError::Networking(format!(
                "endpoint with name {} already exists in network {}",
                c.name(),
                rec.name
            ))));
        }
        let want = Attachment {
            network: rec.id.clone(),
            aliases,
            ipv4,
            ipv6,
            mac,
        };
        if c.state().status == Status::Running {
            let ns = link::enter_netns(&c.paths.netns()).await?;
            let used: HashSet<String> = self
                .networks
                .views()
                .into_iter()
                .flat_map(|v| v.endpoints)
                .filter(|e| e.container_id == c.id())
                .map(|e| e.ifname)
                .collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used.contains(n))
                .unwrap_or_else(|| "eth9".to_string());
            let on = |v: &crate::network::NetworkView| {
                !v.internal && v.endpoints.iter().any(|e| e.container_id == c.id())
            };
            let views = self.networks.views();
            let routed = views.iter().any(on);
            let routed6 = views.iter().any(|v| v.ipv6_gateway.is_some() && on(v));
            self.networks
                .attach(
                    &ns,
                    &rec.id,
                    (c.id(), &c.name()),
                    &want,
                    &ifname,
                    (
                        !routed && !rec.internal,
                        !routed6 && !rec.internal && rec.ipv6.is_some(),
                    ),
                )
                .await?;
        }
        c.set_attachments(|a| a.push(want))?;
        let mut attrs = std::collections::HashMap::new();
        attrs.insert("container".to_string(), c.id().to_string());
        attrs.insert("name".to_string(), rec.name.clone());
        attrs.insert("type".to_string(), "bridge".to_string());
        self.events.network("connect", &rec.id, attrs);
        Ok(())
    }

    /// Disconnects a container from a network.
    pub async fn disconnect(self: &Arc<Self>, c: &Arc<Container>, network_key: &str) -> Result<()> {
        let _op = c.op.lock().await;
        let rec = self.networks.get(network_key)?;
        let attachments = c.attachments();
        let same = |a: &Attachment| {
            a.network == rec.id || (rec.is_default() && a.network == DEFAULT_NETWORK)
        };
        if !attachments.iter().any(same) {
            return Err(Error::from(ContainerError::Networking(format!(
                "container {} is not connected to network {}",
                c.name(),
                rec.name
            ))));
        }
        self.networks.detach(&rec.id, c.id()).await?;
        c.set_attachments(|a| a.retain(|x| !same(x)))?;
        let mut attrs = std::collections::HashMap::new();
        attrs.insert("container".to_string(), c.id().to_string());
        attrs.insert("name".to_string(), rec.name.clone());
        attrs.insert("type".to_string(), "bridge".to_string());
        self.events.network("disconnect", &rec.id, attrs);
        Ok(())
    }

    /// The containers (ID, name) that join a network, running or not.
    pub fn network_users(&self, rec: &NetworkRecord) -> Vec<(String, String)> {
        self.list()
            .into_iter()
            .filter(|c| {
                c.attachments().iter().any(|a| {
                    a.network == rec.id || (rec.is_default() && a.network == DEFAULT_NETWORK)
                })
            })
            .map(|c| (c.id().to_string(), c.name().to_string()))
            .collect()
    }

    /// Removes a network no container joins.
    pub async fn remove_network(&self, key: &str) -> Result<NetworkRecord> {
        let rec = self.networks.get(key)?;
        let users = self.network_users(&rec);
        if !users.is_empty() {
            let names: Vec<&str> = users.iter().map(|(_, n)| n.as_str()).collect();
            return Err(Error::from(ContainerError::Networking(format!(
                "error while removing network: network {} is in use by container(s) {}: remove or disconnect them first",
                rec.name,
                names.join(", ")
            ))));
        }
        let rec = self.networks.remove(&rec.id).await?;
        let mut attrs = std::collections::HashMap::new();
        attrs.insert("name".to_string(), rec.name.clone());
        attrs.insert("type".to_string(), "bridge".to_string());
        self.events.network("destroy", &rec.id, attrs);
        Ok(rec)
    }

    /// Removes every network no container joins (but the default one);
    /// `keep` may spare more. Returns the removed networks' names.
    pub async fn prune_networks(&self, keep: impl Fn(&NetworkRecord) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for rec in self.networks.list() {
            if rec.is_default() || keep(&rec) || !self.network_users(&rec).is_empty() {
                continue;
            }
            match self.remove_network(&rec.id).await {
                Ok(r) => out.push(r.name),
                Err(e) => tracing::warn!("prune network {}: {}", rec.name, e.full_message()),
            }
        }
        out
    }
}

fn check_default_wish(default: bool, wish: &Wish) -> Result<()> {
    if default && !wish.aliases.is_empty() {
        return Err(Error::from(ContainerError::InvalidConfig(
            "network-scoped aliases are supported only for containers in user-defined networks"
                .to_string(),
        )));
    }
    if default && (wish.ipv4.is_some() || wish.ipv6.is_some()) {
        return Err(Error::from(ContainerError::InvalidConfig(
            "user-specified IP addresses are supported only on user-defined networks".to_string(),
        )));
    }
    Ok(())
}

/// The `/etc/resolv.conf` base for a container whose first network serves
/// DNS on `gateway`: that server only (it forwards other names).
pub fn resolv_base(gateway: Ipv4Addr) -> String {
    format!("nameserver {gateway}\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bollard_stubs::models::{EndpointIpamConfig, HostConfig};

    use super::*;

    #[test]
    fn network_modes_read_like_docker() {
        let body = |m: Option<&str>| ContainerCreateBody {
            host_config: Some(HostConfig {
                network_mode: m.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(mode_of(&body(None)), Mode::Network("bridge".into()));
        assert_eq!(
            mode_of(&body(Some("default"))),
            Mode::Network("bridge".into())
        );
        assert_eq!(mode_of(&body(Some("host"))), Mode::Host);
        assert_eq!(mode_of(&body(Some("none"))), Mode::None);
        assert_eq!(
            mode_of(&body(Some("backend"))),
            Mode::Network("backend".into())
        );
    }

    #[test]
    fn endpoint_wishes_parse() {
        let s = EndpointSettings {
            aliases: Some(vec!["db".into(), String::new()]),
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some("10.89.3.7".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let wish = endpoint_wish(Some(&s)).unwrap();
        assert_eq!(wish.aliases, vec!["db"]);
        assert_eq!(wish.ipv4, Some(Ipv4Addr::new(10, 89, 3, 7)));
        assert_eq!(wish.ipv6, None);
        assert_eq!(wish.mac, None);
        assert!(check_default_wish(true, &wish).is_err());
        assert!(check_default_wish(false, &wish).is_ok());
        let v6 = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv6_address: Some("fd00:7::9".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let wish = endpoint_wish(Some(&v6)).unwrap();
        assert_eq!(wish.ipv6, Some("fd00:7::9".parse().unwrap()));
        assert!(check_default_wish(true, &wish).is_err());
        let bad = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv6_address: Some("10.0.0.1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = endpoint_wish(Some(&bad)).err().unwrap().to_string();
        assert!(e.contains("invalid IPv6 address \"10.0.0.1\""), "{e}");
    }

    #[test]
    fn mac_addresses_and_driver_options_are_checked() {
        let with = |mac: &str| EndpointSettings {
            mac_address: Some(mac.into()),
            ..Default::default()
        };
        let wish = endpoint_wish(Some(&with("02:42:AC:11:00:09"))).unwrap();
        assert_eq!(wish.mac.as_deref(), Some("02:42:ac:11:00:09"));
        for bad in ["01:00:5e:00:00:01", "02:42:ac:11:00", "zz:42:ac:11:00:09"] {
            let e = endpoint_wish(Some(&with(bad))).err().unwrap();
            assert!(e.to_string().contains("invalid MAC address"), "{bad}: {e}");
        }
        let opts = EndpointSettings {
            driver_opts: Some(std::collections::HashMap::from([(
                "com.docker.network.endpoint.ifname".to_string(),
                "eth7".to_string(),
            )])),
            ..Default::default()
        };
        let e = endpoint_wish(Some(&opts)).err().unwrap();
        assert!(
            e.to_string().contains("com.docker.network.endpoint.ifname"),
            "{e}"
        );
    }
}
