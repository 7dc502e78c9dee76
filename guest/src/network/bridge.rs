//! Making, bringing up and removing a network: its subnet (and IPv6
//! subnet), its bridge and its firewall rules.
//!
//! Other engines on the host choose subnets too, so the choice and the
//! bridge that claims it are made under a host-wide lock
//! ([`SUBNET_LOCK`]). A network's record is written before its bridge
//! exists, so a crash leaves a record naming what to clean; after a host
//! reboot the bridge and rules are gone while the record stays, so they
//! are made again the first time the engine uses the network
//! ([`Networks::ensure_up`]).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::events::EndpointEvent;
use super::firewall;
use super::ipam::{self, Subnet};
use super::ipam6::{self, Subnet6};
use super::record::{Ipv6Settings, NETWORK_FILE, NetworkRecord};
use super::{Networks, link};
use crate::error::{Error, NetworkError, Result};
use crate::state::write_json;
use crate::timefmt;

/// The lock every servin engine on the host holds while choosing a subnet
/// and making its bridge.
pub const SUBNET_LOCK: &str = "/run/lock/servin-subnets.lock";

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
    /// IPv6 too (`EnableIPv6`).
    pub ipv6: bool,
    /// An IPv6 subnet instead of a unique local one (with `ipv6`).
    pub subnet6: Option<String>,
    /// An IPv6 gateway inside it instead of its first address.
    pub gateway6: Option<String>,
    /// The part of the IPv6 subnet containers' addresses come from.
    pub ip_range6: Option<String>,
    /// The part of the IPv4 subnet containers' addresses come from.
    pub ip_range: Option<String>,
    /// `Attachable` (kept and reported).
    pub attachable: bool,
}

/// What of the IPv6 side of a network create can be checked before the
/// subnets in use are known: the given subnet, gateway and range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ipv6Wish {
    subnet: Option<Subnet6>,
    gateway: Option<Ipv6Addr>,
    range: Option<Subnet6>,
}

fn given(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// Reads the IPv6 part of `opts`: `None` without IPv6. A gateway or range
/// needs its subnet, and each lies inside it.
fn ipv6_wish(opts: &CreateOptions) -> Result<Option<Ipv6Wish>> {
    let subnet = given(opts.subnet6.as_deref())
        .map(Subnet6::parse)
        .transpose()?;
    let gateway_text = given(opts.gateway6.as_deref());
    let range_text = given(opts.ip_range6.as_deref());
    if !opts.ipv6 {
        let named = subnet
            .map(|s| s.to_string())
            .or(gateway_text.map(String::from))
            .or(range_text.map(String::from));
        if let Some(t) = named {
            return Err(NetworkError::Ipv6Disabled(t).into());
        }
        return Ok(None);
    }
    let Some(subnet) = subnet else {
        if gateway_text.is_some() || range_text.is_some() {
            return Err(NetworkError::GatewayWithoutSubnet.into());
        }
        return Ok(Some(Ipv6Wish {
            subnet: None,
            gateway: None,
            range: None,
        }));
    };
    let gateway = gateway_text
        .map(|g| {
            let ip: Ipv6Addr = g.parse().map_err(|_| NetworkError::InvalidGateway {
                gateway: format!("{g:?}"),
                why: "want an IPv6 address".to_string(),
            })?;
            if !subnet.is_host(ip) {
                return Err(Error::from(NetworkError::InvalidGateway {
                    gateway: ip.to_string(),
                    why: format!("it is not a host address of the subnet {subnet}"),
                }));
            }
            Ok(ip)
        })
        .transpose()?;
    let range = range_text
        .map(|r| {
            let bad = |why: String| NetworkError::InvalidIpRange {
                range: r.to_string(),
                why,
            };
            let range = Subnet6::parse(r).map_err(|e| bad(e.to_string()))?;
            if !subnet.covers(&range) {
                return Err(Error::from(bad(format!(
                    "it is not inside the subnet {subnet}"
                ))));
            }
            Ok(range)
        })
        .transpose()?;
    Ok(Some(Ipv6Wish {
        subnet: Some(subnet),
        gateway,
        range,
    }))
}

/// The IPv6 side of a new network tagged `tag`: the asked subnet unless it
/// overlaps one of `taken`, else a unique local one; its gateway (the
/// first address unless asked) and range.
fn choose_ipv6(wish: Ipv6Wish, tag: &str, taken: &[Subnet6]) -> Result<Ipv6Settings> {
    let subnet = match wish.subnet {
        Some(s) => {
            if let Some(t) = taken.iter().find(|t| t.overlaps(&s)) {
                return Err(NetworkError::SubnetOverlaps {
                    subnet: s.to_string(),
                    other: t.to_string(),
                }
                .into());
            }
            s
        }
        None => ipam6::choose_ula(tag, taken).ok_or_else(|| {
            NetworkError::PoolExhausted(
                ipam6::ula_base(tag).map_or_else(|| "fd00::/8".to_string(), |b| b.to_string()),
            )
        })?,
    };
    Ok(Ipv6Settings {
        subnet: subnet.to_string(),
        gateway: wish.gateway.unwrap_or_else(|| subnet.first_host()),
        ip_range: wish.range.map(|r| r.to_string()),
    })
}

/// Docker takes almost any network name (spaces and `:` included, as tools
/// such as Windows CI and SDK installers use them). Refused: an empty or
/// overlong name, one with `/` (it could not be named in an API path) or a
/// control character, and one starting with `-` (it reads as a flag) or
/// with or ending in white space.
fn is_valid_name(name: &str) -> bool {
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c != '-' && !c.is_whitespace());
    let ends_ok = name.chars().last().is_some_and(|c| !c.is_whitespace());
    starts_ok && ends_ok && name.len() <= 128 && !name.chars().any(|c| c == '/' || c.is_control())
}

impl Networks {
    /// Creates a network: its subnet (given, or the first free one of the
    /// pool), its bridge and its firewall rules. Nothing is left behind
    /// when it fails.
    pub async fn create(&self, opts: CreateOptions) -> Result<NetworkRecord> {
        let _changes = self.changes.lock().await;
        self.create_locked(opts).await
    }

    pub(super) async fn create_locked(&self, opts: CreateOptions) -> Result<NetworkRecord> {
        let name = opts.name.trim().to_string();
        if !is_valid_name(&name) {
            return Err(NetworkError::InvalidName(name).into());
        }
        if matches!(name.as_str(), "host" | "none") {
            return Err(NetworkError::Predefined(name, "created").into());
        }
        match opts.driver.as_deref() {
            None | Some("" | "bridge") => {}
            Some(d) => {
                return Err(NetworkError::UnsupportedDriver(d.to_string()).into());
            }
        }
        if let Some(other) = self.lock().values().find(|n| n.name == name) {
            return Err(NetworkError::NameTaken {
                name,
                id: other.id.clone(),
            }
            .into());
        }
        let given = opts
            .subnet
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(Subnet::parse)
            .transpose()?;
        if given.is_none() && opts.gateway.as_deref().is_some_and(|g| !g.is_empty()) {
            return Err(NetworkError::GatewayWithoutSubnet.into());
        }
        let wish6 = ipv6_wish(&opts)?;
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
                    return Err(NetworkError::SubnetOverlaps {
                        subnet: s.to_string(),
                        other: t.to_string(),
                    }
                    .into());
                }
                s
            }
            None => ipam::choose_subnet(self.pool, &taken)
                .ok_or_else(|| NetworkError::PoolExhausted(self.pool.to_string()))?,
        };
        let gateway = match opts.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| NetworkError::InvalidGateway {
                    gateway: format!("{g:?}"),
                    why: "want an IPv4 address".to_string(),
                })?;
                if !subnet.is_host(ip) {
                    return Err(NetworkError::InvalidGateway {
                        gateway: ip.to_string(),
                        why: format!("it is not a host address of the subnet {subnet}"),
                    }
                    .into());
                }
                ip
            }
            None => subnet.first_host(),
        };
        let ip_range = match opts
            .ip_range
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            Some(r) => {
                let bad = |why: String| NetworkError::InvalidIpRange {
                    range: r.to_string(),
                    why,
                };
                let range = Subnet::parse(r).map_err(|e| bad(e.to_string()))?;
                if !(subnet.contains(range.addr) && subnet.contains(range.broadcast())) {
                    return Err(bad(format!("it is not inside the subnet {subnet}")).into());
                }
                Some(range)
            }
            None => None,
        };
        let ipv6 = match wish6 {
            Some(w) => {
                let taken6: Vec<Subnet6> = ipam6::host_routes()
                    .into_iter()
                    .chain(
                        self.lock()
                            .values()
                            .filter_map(|n| n.ipv6.as_ref().and_then(|v| v.subnet().ok())),
                    )
                    .collect();
                Some(choose_ipv6(w, &tag, &taken6)?)
            }
            None => None,
        };
        let bridge6 = match &ipv6 {
            Some(v6) => Some((v6.gateway, v6.subnet()?.prefix)),
            None => None,
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
            ipv6,
            ip_range: ip_range.map(|r| r.to_string()),
            attachable: opts.attachable,
        };
        let tmp = self.dir.join(format!(".creating-{id}"));
        let dir = self.dir.join(&id);
        let made = async {
            std::fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
            // Written before the bridge exists, so a crash leaves a record
            // naming what to clean.
            write_json(&tmp, NETWORK_FILE, &rec)?;
            std::fs::rename(&tmp, &dir).map_err(Error::io("rename", &tmp))?;
            let index = link::ensure_bridge(&h, &bridge, gateway, subnet.prefix, bridge6).await?;
            drop(lock);
            firewall::ensure_ip_forward(bridge6.is_some())?;
            self.write_rules(&rec, self.backend).await?;
            Ok::<_, Error>(index)
        };
        let index = match made.await {
            Ok(i) => i,
            Err(e) => {
                let _ = link::delete_link(&h, &bridge).await;
                let _ = firewall::remove(self.backend, &tag, bridge6.is_some()).await;
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
        tracing::info!(
            name = %rec.name,
            subnet = %rec.subnet,
            subnet6 = rec.ipv6.as_ref().map_or("", |v| v.subnet.as_str()),
            bridge = %rec.bridge,
            "network created"
        );
        Ok(rec)
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
        let bridge6 = match &rec.ipv6 {
            Some(v6) => Some((v6.gateway, v6.subnet()?.prefix)),
            None => None,
        };
        let index =
            link::ensure_bridge(&h, &rec.bridge, rec.gateway, subnet.prefix, bridge6).await?;
        firewall::ensure_ip_forward(bridge6.is_some())?;
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
            return Err(NetworkError::InUse {
                network: rec.name.clone(),
                why: format!("has active endpoints ({})", names.join(", ")),
            }
            .into());
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
            firewall::remove(rec.firewall, rec.tag(), rec.ipv6.is_some()).await?;
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
    Err(NetworkError::LockTimeout(path.to_path_buf()).into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn opts(ipv6: bool, subnet: &str, gateway: &str, range: &str) -> CreateOptions {
        let some = |t: &str| (!t.is_empty()).then(|| t.to_string());
        CreateOptions {
            ipv6,
            subnet6: some(subnet),
            gateway6: some(gateway),
            ip_range6: some(range),
            ..CreateOptions::default()
        }
    }

    #[test]
    fn ipv6_options_are_checked_before_anything_is_made() {
        assert_eq!(ipv6_wish(&opts(false, "", "", "")).unwrap(), None);
        let e = ipv6_wish(&opts(false, "fd00:1::/64", "", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("fd00:1::/64") && e.contains("--ipv6"), "{e}");
        let auto = ipv6_wish(&opts(true, "", "", "")).unwrap().unwrap();
        assert_eq!(auto.subnet, None);
        let w = ipv6_wish(&opts(true, "fd00:1::/64", "fd00:1::fe", "fd00:1::100/120"))
            .unwrap()
            .unwrap();
        assert_eq!(w.gateway, Some("fd00:1::fe".parse().unwrap()));
        assert_eq!(w.range.unwrap().to_string(), "fd00:1::100/120");
        for (subnet, gateway, range, want) in [
            ("fd00:1::1/64", "", "", "did you mean fd00:1::/64"),
            ("fd00:1::/64", "fd00:2::1", "", "invalid gateway fd00:2::1"),
            ("fd00:1::/64", "10.0.0.1", "", "want an IPv6 address"),
            (
                "fd00:1::/64",
                "",
                "fd00:2::/120",
                "not inside the subnet fd00:1::/64",
            ),
            ("", "fd00:1::1", "", "a gateway needs a subnet"),
        ] {
            let e = ipv6_wish(&opts(true, subnet, gateway, range))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{subnet} {gateway} {range}: {e}");
        }
    }

    #[test]
    fn ipv6_subnets_are_asked_for_or_unique_local() {
        let taken = vec![Subnet6::parse("fd00::/64").unwrap()];
        let w = ipv6_wish(&opts(true, "fd00::/56", "", ""))
            .unwrap()
            .unwrap();
        let e = choose_ipv6(w, "0123456789", &taken)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fd00::/56") && e.contains("overlaps fd00::/64"),
            "{e}"
        );
        let w = ipv6_wish(&opts(true, "", "", "")).unwrap().unwrap();
        let v6 = choose_ipv6(w, "0123456789", &taken).unwrap();
        assert_eq!(v6.subnet, "fd01:2345:6789::/64");
        assert_eq!(v6.gateway, "fd01:2345:6789::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v6.ip_range, None);
    }

    #[test]
    fn network_names_follow_docker() {
        assert!(is_valid_name("back_end.1-a"));
        assert!(!is_valid_name("-x"));
        assert!(!is_valid_name(""));
        // As Docker's: spaces and colons are fine.
        assert!(is_valid_name("a b"));
        assert!(is_valid_name("sailfish-sdk:me"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name(" a"));
        assert!(!is_valid_name("a\tb"));
        assert!(!is_valid_name(&"n".repeat(129)));
    }
}
