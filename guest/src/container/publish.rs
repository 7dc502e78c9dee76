//! Published ports of containers: which host ports a container asks for
//! (`HostConfig.PortBindings`, and every exposed port with
//! `PublishAllPorts`), checked at create, published when it starts against
//! its address on its first network, released when its process exits (so
//! the host port is free again when `stop` returns), and published again
//! after an engine restart for containers that still run.
//!
//! The forwarding itself is [`crate::network::ports`]'s (userland: it holds every
//! host port) and, unless `SERVIN_PORT_FORWARD=userland`, the kernel's
//! ([`crate::network::Networks::publish_kernel`]: the fast path, for IPv4).

use bollard_stubs::models::{ContainerCreateBody, PortMap, PortSummary, PortSummaryTypeEnum};

use super::networking::{Mode, mode_of};
use super::{Container, Containers};
use crate::error::{ContainerError, Error, NetworkError, Result};
use crate::network::firewall::Dnat;
use crate::network::ports::{self, HostPort, PortBinding, Protocol, PublishedPort};

/// The container ports exposed by the image and by the create body
/// (`ExposedPorts`, `--expose`), sorted, without duplicates.
pub fn exposed(
    body: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<(u16, Protocol)>> {
    let mut keys: Vec<String> = image
        .and_then(|i| i.exposed_ports().clone())
        .unwrap_or_default();
    keys.extend(body.exposed_ports.clone().unwrap_or_default());
    ports::parse_exposed(&keys)
}

/// The bindings a container publishes: its `PortBindings`, plus a random
/// host port for every exposed port not bound already when
/// `PublishAllPorts` is set.
pub fn bindings(
    body: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<PortBinding>> {
    let hc = body.host_config.clone().unwrap_or_default();
    let mut out = match &hc.port_bindings {
        Some(map) => ports::bindings_from_port_map(map)?,
        None => Vec::new(),
    };
    if hc.publish_all_ports.unwrap_or(false) {
        let bound: Vec<(u16, Protocol)> =
            out.iter().map(|b| (b.container_port, b.protocol)).collect();
        let rest: Vec<(u16, Protocol)> = exposed(body, image)?
            .into_iter()
            .filter(|p| !bound.contains(p))
            .collect();
        out.extend(ports::publish_all_bindings(&rest));
    }
    Ok(out)
}

/// Checks a create body's ports; returns the warnings for the create
/// response. Bad specifications are refused, and so is publishing with
/// network mode `none`; with `host` the ports are ignored, as in Docker.
pub fn check(
    body: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<String>> {
    exposed(body, image)?;
    let wanted = bindings(body, image)?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    match mode_of(body) {
        Mode::Network(_) => Ok(Vec::new()),
        Mode::Host => Ok(vec![
            "Published ports are discarded when using host network mode".to_string(),
        ]),
        Mode::None => Err(Error::from(ContainerError::InvalidConfig(
            "conflicting options: port publishing and the container type network mode \"none\": a container without networks cannot publish ports".to_string(),
        ))),
        Mode::Container(_) => Err(Error::from(ContainerError::InvalidConfig(
            "conflicting options: port publishing and the container type network mode: publish the ports on the container whose network is shared".to_string(),
        ))),
    }
}

/// Docker's `NetworkSettings.Ports` of a container: its published ports,
/// and its exposed ones as `null`, while it runs; empty otherwise.
pub fn port_map(c: &Container) -> PortMap {
    let published = c.published_ports();
    if published.is_empty() && !c.state().status.is_running() {
        return PortMap::new();
    }
    let exposed = exposed(&c.record.body, c.record.image_config.as_ref()).unwrap_or_default();
    ports::port_map(&published, &exposed)
}

/// The `Ports` of a container in `/containers/json`: published ports with
/// their host address and port, exposed ones alone.
pub fn summaries(c: &Container) -> Vec<PortSummary> {
    let typ = |p: Protocol| match p {
        Protocol::Tcp => PortSummaryTypeEnum::TCP,
        Protocol::Udp => PortSummaryTypeEnum::UDP,
    };
    let published = c.published_ports();
    let mut out: Vec<PortSummary> = published
        .iter()
        .map(|p| PortSummary {
            ip: Some(p.host.ip().to_string()),
            private_port: p.container_port,
            public_port: Some(p.host.port()),
            typ: Some(typ(p.protocol)),
        })
        .collect();
    if c.state().status.is_running() {
        let exposed = exposed(&c.record.body, c.record.image_config.as_ref()).unwrap_or_default();
        for (port, protocol) in exposed {
            if !published
                .iter()
                .any(|p| p.container_port == port && p.protocol == protocol)
            {
                out.push(PortSummary {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    typ: Some(typ(protocol)),
                });
            }
        }
    }
    out
}

impl Container {
    /// The host ports it publishes while it runs.
    pub fn published_ports(&self) -> Vec<PublishedPort> {
        self.published
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.ports().to_vec()))
            .unwrap_or_default()
    }
}

impl Containers {
    /// Publishes a started container's ports on the host, forwarding to
    /// its address on its first network (its address must be reserved):
    /// the userland forwarder binds them all, all or nothing (on a failure
    /// none stays bound). Returns the network and the ports for the kernel
    /// path ([`Containers::publish_kernel`], once the container's devices
    /// exist), when there are any. Nothing to do for `host` network mode
    /// (Docker ignores the ports there).
    pub(super) fn publish_userland(&self, c: &Container) -> Result<Option<(String, Vec<Dnat>)>> {
        if !matches!(mode_of(&c.record.body), Mode::Network(_)) {
            return Ok(None);
        }
        let wanted = bindings(&c.record.body, c.record.image_config.as_ref())?;
        if wanted.is_empty() {
            return Ok(None);
        }
        let Some((network_id, network, target)) = self.networks.first_address(c.id()) else {
            return Err(Error::Runtime {
                context: format!("container {}: publish its ports", c.name()),
                message: "it has no address on a network".to_string(),
            });
        };
        self.check_own_ports(c, &wanted)?;
        let published = ports::publish(&wanted, target)?;
        tracing::debug!(
            name = %c.name(),
            network = %network,
            ports = ?published.ports(),
            "ports published"
        );
        let kernel = kernel_ports(published.ports(), target);
        if let Ok(mut slot) = c.published.lock() {
            *slot = Some(published);
        }
        Ok(Some((network_id, kernel)))
    }

    /// Forwards `ports` in the kernel while the container's userland ports
    /// stay published. A failure is only logged: the userland forwarder
    /// serves them.
    pub(super) async fn publish_kernel(&self, c: &Container, network_id: &str, ports: Vec<Dnat>) {
        if !self.networks.kernel_ports() || ports.is_empty() {
            return;
        }
        let still_published = || c.published.lock().is_ok_and(|p| p.is_some());
        match self
            .networks
            .publish_kernel(network_id, c.id(), ports, still_published)
            .await
        {
            Ok(()) => tracing::debug!(name = %c.name(), "ports forwarded by the kernel"),
            Err(e) => tracing::warn!(
                "container {}: its published ports are forwarded in userland only: {}",
                c.name(),
                e.full_message()
            ),
        }
    }

    /// Refuses a fixed host port another container of this engine
    /// publishes, naming that container (the kernel would only name the
    /// engine).
    fn check_own_ports(&self, c: &Container, wanted: &[PortBinding]) -> Result<()> {
        for other in self.list() {
            if other.id() == c.id() {
                continue;
            }
            for p in other.published_ports() {
                let clash = wanted.iter().any(|w| {
                    w.protocol == p.protocol
                        && w.host_port == HostPort::Port(p.host.port())
                        && w.host_ip.is_none_or(|ip| {
                            ip == p.host.ip() || ip.is_unspecified() || p.host.ip().is_unspecified()
                        })
                });
                if clash {
                    return Err(NetworkError::PortInUse {
                        binding: format!("{}/{}", p.host, p.protocol),
                        holder: format!(
                            " by container {} (port {}/{})",
                            other.name(),
                            p.container_port,
                            p.protocol
                        ),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Closes a container's published ports; the host ports are free, and
    /// the kernel forwards them no more, when this returns.
    pub(super) async fn unpublish_ports(&self, c: &Container) {
        let published = c.published.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = published {
            if let Err(e) = self.networks.unpublish_kernel(c.id()).await {
                tracing::warn!(
                    "container {}: stop forwarding its ports in the kernel: {}",
                    c.name(),
                    e.full_message()
                );
            }
            tracing::debug!(name = %c.name(), ports = ?p.ports(), "ports released");
            drop(p);
        }
    }
}

/// The kernel's share of published ports forwarding to `target`: the IPv4
/// ones (IPv6 stays with the userland forwarder).
fn kernel_ports(published: &[ports::PublishedPort], target: std::net::Ipv4Addr) -> Vec<Dnat> {
    published
        .iter()
        .filter_map(|p| match p.host.ip() {
            std::net::IpAddr::V4(ip) => Some(Dnat {
                protocol: p.protocol,
                host_ip: (!ip.is_unspecified()).then_some(ip),
                host_port: p.host.port(),
                target,
                target_port: p.container_port,
            }),
            std::net::IpAddr::V6(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bollard_stubs::models::{HostConfig, PortBinding as DockerBinding};

    use super::*;

    fn body(
        mode: &str,
        bindings: &[(&str, &str)],
        all: bool,
        expose: &[&str],
    ) -> ContainerCreateBody {
        let mut map = PortMap::new();
        for (key, host) in bindings {
            map.insert(
                (*key).to_string(),
                Some(vec![DockerBinding {
                    host_ip: None,
                    host_port: Some((*host).to_string()),
                }]),
            );
        }
        ContainerCreateBody {
            image: Some("x".to_string()),
            exposed_ports: Some(expose.iter().map(|s| (*s).to_string()).collect()),
            host_config: Some(HostConfig {
                network_mode: Some(mode.to_string()),
                port_bindings: Some(map),
                publish_all_ports: Some(all),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn publish_all_adds_the_exposed_ports_not_bound() {
        let b = bindings(
            &body("bridge", &[("80/tcp", "8080")], true, &["80/tcp", "53/udp"]),
            None,
        )
        .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].host_port, HostPort::Port(8080));
        assert_eq!((b[1].container_port, b[1].protocol), (53, Protocol::Udp));
        assert_eq!(b[1].host_port, HostPort::Random);
    }

    #[test]
    fn network_modes_decide_whether_ports_may_be_published() {
        assert!(
            check(&body("bridge", &[("80/tcp", "8080")], false, &[]), None)
                .unwrap()
                .is_empty()
        );
        let warnings = check(&body("host", &[("80/tcp", "8080")], false, &[]), None).unwrap();
        assert!(warnings[0].contains("host network mode"));
        let none = check(&body("none", &[("80/tcp", "8080")], false, &[]), None).unwrap_err();
        assert!(none.to_string().contains("\"none\""), "{none}");
        assert!(check(&body("none", &[], false, &["80"]), None).is_ok());
        let bad = check(&body("bridge", &[("80/tcp", "99999")], false, &[]), None).unwrap_err();
        assert!(
            matches!(
                bad,
                Error::Container(ContainerError::InvalidConfig(_)) | Error::Network(_)
            ),
            "{bad}"
        );
        let bad = check(&body("bridge", &[], false, &["eighty"]), None).unwrap_err();
        assert!(
            matches!(
                bad,
                Error::Container(ContainerError::InvalidConfig(_)) | Error::Network(_)
            ),
            "{bad}"
        );
    }
}
