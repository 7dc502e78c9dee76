//! Making a network from a Docker create body: the one path for
//! `POST /networks/create` and for a project's networks, so both check the
//! body the same way and announce the network with the same event.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{IpamConfig, NetworkCreateRequest};

use super::{CreateOptions, NetworkRecord};
use crate::engine::Engine;
use crate::error::{NetworkError, Result};

/// Whether an IPAM config is an IPv6 one: its subnet says, else its
/// gateway, else its range (IPv4 when none is given).
fn is_ipv6(config: &IpamConfig) -> bool {
    [&config.subnet, &config.gateway, &config.ip_range]
        .into_iter()
        .flatten()
        .map(|t| t.trim())
        .find(|t| !t.is_empty())
        .is_some_and(|t| t.contains(':'))
}

/// The body's IPAM configs, split by family: one IPv4 and one IPv6 at
/// most.
fn split_configs(body: &NetworkCreateRequest) -> Result<(IpamConfig, Option<IpamConfig>)> {
    let configs = body
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    let (v6, v4): (Vec<IpamConfig>, Vec<IpamConfig>) = configs.into_iter().partition(is_ipv6);
    if v4.len() > 1 || v6.len() > 1 {
        return Err(NetworkError::SeveralSubnets.into());
    }
    Ok((
        v4.into_iter().next().unwrap_or_default(),
        v6.into_iter().next(),
    ))
}

/// Refuses the create settings servin's networks do not have (rather than
/// accept and ignore them): another IPAM driver or its options, auxiliary
/// addresses, and the Swarm ones (ingress, config-only networks and
/// networks made from them, a scope other than local).
fn refuse_unsupported(body: &NetworkCreateRequest) -> Result<()> {
    let refuse = |what: &str| Err(NetworkError::UnsupportedSetting(what.to_string()).into());
    if let Some(ipam) = &body.ipam {
        if let Some(d) = ipam
            .driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "default")
        {
            return refuse(&format!("the IPAM driver {d:?} (only \"default\")"));
        }
        if ipam.options.as_ref().is_some_and(|o| !o.is_empty()) {
            return refuse("IPAM driver options (--ipam-opt)");
        }
        let aux = ipam.config.iter().flatten().any(|c| {
            c.auxiliary_addresses
                .as_ref()
                .is_some_and(|a| !a.is_empty())
        });
        if aux {
            return refuse("auxiliary addresses (--aux-address)");
        }
    }
    if body.ingress == Some(true) {
        return refuse("an ingress network (Swarm)");
    }
    if body.config_only == Some(true) {
        return refuse("a config-only network (--config-only)");
    }
    if body
        .config_from
        .as_ref()
        .and_then(|c| c.network.as_deref())
        .is_some_and(|n| !n.is_empty())
    {
        return refuse("a network made from a config-only network (--config-from)");
    }
    if let Some(scope) = body
        .scope
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "local")
    {
        return refuse(&format!("the scope {scope:?} (only \"local\")"));
    }
    Ok(())
}

/// Makes a network from a Docker create body (one IPv4 subnet at most,
/// and with `EnableIPv6` one IPv6 subnet at most) and announces it.
pub async fn create_network(
    engine: &Arc<Engine>,
    body: NetworkCreateRequest,
) -> Result<NetworkRecord> {
    if body.enable_ipv4 == Some(false) {
        return Err(NetworkError::Ipv4Required.into());
    }
    refuse_unsupported(&body)?;
    let (config, config6) = split_configs(&body)?;
    let config6 = config6.unwrap_or_default();
    let rec = engine
        .containers
        .networks
        .create(CreateOptions {
            name: body.name,
            driver: body.driver,
            subnet: config.subnet,
            gateway: config.gateway,
            internal: body.internal.unwrap_or(false),
            labels: body.labels.unwrap_or_default(),
            options: body.options.unwrap_or_default(),
            // An IPv6 subnet without EnableIPv6 is refused when the
            // options are read (see `NetworkError::Ipv6Disabled`).
            ipv6: body.enable_ipv6 == Some(true),
            subnet6: config6.subnet,
            gateway6: config6.gateway,
            ip_range6: config6.ip_range,
            ip_range: config.ip_range,
            attachable: body.attachable.unwrap_or(false),
        })
        .await?;
    let mut attrs = HashMap::new();
    attrs.insert("name".to_string(), rec.name.clone());
    attrs.insert("type".to_string(), "bridge".to_string());
    engine.containers.events.network("create", &rec.id, attrs);
    Ok(rec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bollard_stubs::models::Ipam;

    use super::*;

    fn body(configs: &[(&str, &str)]) -> NetworkCreateRequest {
        NetworkCreateRequest {
            ipam: Some(Ipam {
                config: Some(
                    configs
                        .iter()
                        .map(|(subnet, gateway)| IpamConfig {
                            subnet: Some(subnet.to_string()).filter(|s| !s.is_empty()),
                            gateway: Some(gateway.to_string()).filter(|s| !s.is_empty()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ipam_configs_split_by_family() {
        let (v4, v6) =
            split_configs(&body(&[("fd00:3::/64", ""), ("10.9.0.0/24", "10.9.0.9")])).unwrap();
        assert_eq!(v4.subnet.as_deref(), Some("10.9.0.0/24"));
        assert_eq!(v6.unwrap().subnet.as_deref(), Some("fd00:3::/64"));
        let (v4, v6) = split_configs(&body(&[])).unwrap();
        assert_eq!(v4.subnet, None);
        assert!(v6.is_none());
        let (_, v6) = split_configs(&body(&[("", "fd00:3::1")])).unwrap();
        assert_eq!(v6.unwrap().gateway.as_deref(), Some("fd00:3::1"));
        for two in [
            [("10.9.0.0/24", ""), ("10.8.0.0/24", "")],
            [("fd00:3::/64", ""), ("fd00:4::/64", "")],
        ] {
            let e = split_configs(&body(&two)).unwrap_err().to_string();
            assert!(e.contains("one IPv4 and one IPv6"), "{e}");
        }
    }
}
