//! Making a network from a Docker create body: the one path for
//! `POST /networks/create` and for a project's networks, so both check the
//! body the same way and announce the network with the same event.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::NetworkCreateRequest;

use super::{CreateOptions, NetworkRecord};
use crate::engine::Engine;
use crate::error::{NetworkError, Result};

/// Makes a network from a Docker create body (one IPv4 subnet at most) and
/// announces it.
pub async fn create_network(
    engine: &Arc<Engine>,
    body: NetworkCreateRequest,
) -> Result<NetworkRecord> {
    if body.enable_ipv6 == Some(true) {
        return Err(NetworkError::Ipv6Unsupported.into());
    }
    let configs = body
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    if configs.len() > 1 {
        return Err(NetworkError::SeveralSubnets.into());
    }
    let config = configs.into_iter().next().unwrap_or_default();
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
        })
        .await?;
    let mut attrs = HashMap::new();
    attrs.insert("name".to_string(), rec.name.clone());
    attrs.insert("type".to_string(), "bridge".to_string());
    engine.containers.events.network("create", &rec.id, attrs);
    Ok(rec)
}
