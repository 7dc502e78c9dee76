//! Service discovery: the names the engine's DNS server answers for, and
//! where it listens.
//!
//! On a user-defined network a container is found by its name, its
//! aliases on that network, its short ID (12 hex digits) and, for a
//! project's container, its service name (the `servin.name` label next to
//! `servin.project`; replicas share it, so it answers every replica's
//! address). The answers come from the live endpoints of the network the
//! query arrived on ([`crate::network::Networks::by_gateway`]), then of the
//! asking container's other networks (as Docker's server answers), so a
//! recreated container's new address is served at once; any other name is
//! forwarded to the host's resolvers.
//!
//! [`serve`] listens on every user-defined network's gateway when the
//! engine starts and when a network comes up, and stops when it is
//! removed. The default `bridge` network has no DNS (Docker's behaviour:
//! its containers keep the host's resolvers).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Weak};

use servin_proto::labels;
use tokio::sync::broadcast::error::RecvError;

use super::Containers;
use crate::network::dns::{DnsServer, NameSource, name_matches};
use crate::network::{DEFAULT_NETWORK, Endpoint, EndpointEvent, Networks};

/// The engine's names: a [`NameSource`] over its containers, held weakly
/// so the DNS server does not keep the engine's state alive.
pub struct ContainerNames {
    containers: Weak<Containers>,
}

impl ContainerNames {
    /// Names from `containers`' live state.
    pub fn new(containers: Weak<Containers>) -> Self {
        Self { containers }
    }
}

/// Whether `name` names the endpoint `e`, whose container has `labels`.
fn answers(name: &str, e: &Endpoint, service: Option<&str>) -> bool {
    name_matches(name, &e.container_name)
        || e.aliases.iter().any(|a| name_matches(name, a))
        || e.container_id
            .get(..12)
            .is_some_and(|short| name_matches(name, short))
        || service.is_some_and(|s| name_matches(name, s))
}

/// The addresses (IPv4, and IPv6 on an IPv6 network) of the endpoints of
/// `endpoints` that `name` names.
fn find(containers: &Containers, endpoints: &[Endpoint], name: &str) -> Option<Vec<IpAddr>> {
    let found: Vec<IpAddr> = endpoints
        .iter()
        .filter(|e| {
            let service = containers.get(&e.container_id).ok().and_then(|c| {
                let l = c.record.labels();
                l.contains_key(labels::PROJECT)
                    .then(|| l.get(labels::NAME).cloned())
                    .flatten()
            });
            answers(name, e, service.as_deref())
        })
        .flat_map(|e| std::iter::once(IpAddr::V4(e.ipv4)).chain(e.ipv6.map(IpAddr::V6)))
        .collect();
    (!found.is_empty()).then_some(found)
}

impl NameSource for ContainerNames {
    fn lookup(&self, server: Ipv4Addr, name: &str) -> Option<Vec<IpAddr>> {
        let containers = self.containers.upgrade()?;
        let view = containers.networks.by_gateway(IpAddr::V4(server))?;
        find(&containers, &view.endpoints, name)
    }

    /// The names of the network the query came on first, then those of
    /// the client's other networks.
    fn lookup_from(&self, server: Ipv4Addr, client: IpAddr, name: &str) -> Option<Vec<IpAddr>> {
        let containers = self.containers.upgrade()?;
        let view = containers.networks.by_gateway(IpAddr::V4(server))?;
        if let Some(found) = find(&containers, &view.endpoints, name) {
            return Some(found);
        }
        let asker = view
            .endpoints
            .iter()
            .find(|e| IpAddr::V4(e.ipv4) == client)?
            .container_id
            .clone();
        containers
            .networks
            .views()
            .into_iter()
            .filter(|v| {
                v.id != view.id
                    && v.name != DEFAULT_NETWORK
                    && v.endpoints.iter().any(|e| e.container_id == asker)
            })
            .find_map(|v| find(&containers, &v.endpoints, name))
    }
}

async fn listen(dns: &Arc<DnsServer>, networks: &Arc<Networks>, gateway: Ipv4Addr) {
    match dns.listen(gateway).await {
        Ok(addr) => tracing::debug!(%addr, "DNS server listening"),
        Err(e) => {
            // The bridge may not have its address yet (after a host reboot,
            // or while a restarted engine takes its networks up again), or
            // a process that is exiting may still hold the port: try again
            // for a while, in the background, while the network exists.
            tracing::debug!("DNS server on {gateway}: {}", e.full_message());
            let (dns, networks) = (Arc::clone(dns), Arc::clone(networks));
            tokio::spawn(async move {
                let mut delay = std::time::Duration::from_millis(100);
                for _ in 0..40 {
                    tokio::time::sleep(delay).await;
                    let wanted = networks.dns_gateways().iter().any(|(_, g)| *g == gateway);
                    if !wanted || dns.listening().contains(&gateway) {
                        return;
                    }
                    match dns.listen(gateway).await {
                        Ok(addr) => {
                            tracing::debug!(%addr, "DNS server listening");
                            return;
                        }
                        Err(e) => {
                            tracing::debug!("DNS server on {gateway}: {}", e.full_message());
                        }
                    }
                    delay = (delay * 2).min(std::time::Duration::from_secs(2));
                }
            });
        }
    }
}

/// Listens on the gateways of the user-defined networks of `networks`,
/// now and as they come up and go, on the engine's runtime.
pub fn serve(dns: Arc<DnsServer>, networks: Arc<Networks>) {
    let mut events = networks.subscribe();
    tokio::spawn(async move {
        for (_, gateway) in networks.dns_gateways() {
            listen(&dns, &networks, gateway).await;
        }
        loop {
            match events.recv().await {
                Ok(EndpointEvent::NetworkUp { network, gateway }) => {
                    if networks.get(&network).is_ok_and(|n| !n.is_default()) {
                        listen(&dns, &networks, gateway).await;
                    }
                }
                Ok(EndpointEvent::NetworkRemoved { gateway, .. }) => {
                    dns.stop_listening(gateway).await;
                    tracing::debug!(%gateway, "DNS server stopped listening");
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    // Missed events: listen where networks are, stop where
                    // they are not.
                    let wanted: Vec<Ipv4Addr> = networks
                        .dns_gateways()
                        .into_iter()
                        .map(|(_, g)| g)
                        .collect();
                    for gone in dns.listening() {
                        if !wanted.contains(&gone) {
                            dns.stop_listening(gone).await;
                        }
                    }
                    for gateway in wanted {
                        listen(&dns, &networks, gateway).await;
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_aliases_short_ids_and_services_answer() {
        let e = Endpoint {
            endpoint_id: "e".repeat(64),
            container_id: format!("0123456789ab{}", "c".repeat(52)),
            container_name: "demo-web-1".to_string(),
            aliases: vec!["frontend".to_string()],
            ipv4: Ipv4Addr::new(10, 89, 0, 2),
            ipv6: None,
            mac: String::new(),
            ifname: "eth0".to_string(),
            host_veth: "sv000000000001".to_string(),
        };
        assert!(answers("demo-web-1", &e, None));
        assert!(answers("FRONTEND.", &e, None));
        assert!(answers("0123456789ab", &e, None));
        assert!(!answers("0123456789", &e, None));
        assert!(answers("web", &e, Some("web")));
        assert!(!answers("web", &e, None));
        assert!(!answers("db", &e, Some("web")));
    }
}
