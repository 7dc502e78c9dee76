//! The `/networks/...` calls, and the network part of container inspect
//! and list.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{
    EndpointSettings, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse,
    NetworkDisconnectRequest, NetworkPruneResponse,
};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::routes::{Body, Query, empty, json as json_response};
use super::{body, predefined};
use crate::container::Container;
use crate::container::networking::{Mode, mode_of};
use crate::engine::Engine;
use crate::error::{NetworkError, Result};
use crate::filters::Filters;
use crate::network::{DEFAULT_NETWORK, NetworkRecord, ipam::Subnet};

/// The prefix length of a network's IPv6 subnet, when it has one.
fn prefix6(n: &NetworkRecord) -> Option<u8> {
    n.ipv6
        .as_ref()
        .and_then(|v| v.subnet().ok())
        .map(|s| s.prefix)
}

/// Docker's network object, with the containers on it.
pub fn network_json(engine: &Engine, n: &NetworkRecord) -> Value {
    let prefix = n.subnet().map(|s| s.prefix).unwrap_or(24);
    let prefix6 = prefix6(n).unwrap_or(64);
    let containers: serde_json::Map<String, Value> = n
        .endpoints
        .values()
        .map(|e| {
            (
                e.container_id.clone(),
                json!({
                    "Name": e.container_name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{prefix}", e.ipv4),
                    "IPv6Address": e.ipv6.map(|ip| format!("{ip}/{prefix6}")).unwrap_or_default(),
                }),
            )
        })
        .collect();
    let _ = engine;
    let mut ipam_config = vec![json!({"Subnet": n.subnet, "Gateway": n.gateway.to_string()})];
    if let Some(range) = &n.ip_range {
        ipam_config[0]["IPRange"] = json!(range);
    }
    if let Some(v6) = &n.ipv6 {
        let mut config = json!({"Subnet": v6.subnet, "Gateway": v6.gateway.to_string()});
        if let Some(range) = &v6.ip_range {
            config["IPRange"] = json!(range);
        }
        ipam_config.push(config);
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.ipv6.is_some(),
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": ipam_config,
        },
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

/// The keys `GET /networks` takes.
const LIST_KEYS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// Docker's network filters (see [`crate::filters`] for the rules); `in_use`
/// says whether a container is attached.
fn matches(n: &NetworkRecord, f: &Filters, dangling: Option<bool>, in_use: bool) -> bool {
    let typ = if n.is_default() { "builtin" } else { "custom" };
    f.id_prefix("id", &n.id)
        && f.name("name", &n.name)
        && f.exact("driver", &n.driver)
        && f.exact("scope", "local")
        && f.exact("type", typ)
        && f.labels(&n.labels)
        // Docker's dangling networks: no container, and not pre-defined.
        && dangling.is_none_or(|d| d == (!in_use && !n.is_default()))
}

/// `GET /networks`: the pre-defined networks always (Docker's `bridge`
/// made now if it is not yet), then the others.
pub async fn list(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let filters = Filters::parse(query.get("filters"), LIST_KEYS)?;
    filters.check_values("type", &["custom", "builtin"])?;
    let dangling = filters.boolean("dangling")?;
    // The default network is made only for a listing that would show it
    // (not, say, for a listing by label).
    let shows_default = predefined::matches(DEFAULT_NETWORK, "bridge", &filters, dangling)
        && filters.get("id").is_empty();
    let created = if shows_default {
        engine.containers.networks.ensure_default().await?.created
    } else {
        engine
            .containers
            .networks
            .get(DEFAULT_NETWORK)
            .map(|n| n.created)
            .unwrap_or_default()
    };
    let mut out: Vec<Value> = predefined::NAMESPACE_NETWORKS
        .into_iter()
        .filter(|(name, driver)| predefined::matches(name, driver, &filters, dangling))
        .map(|(name, driver)| predefined::network_json(engine, name, driver, &created))
        .collect();
    let records: Vec<Value> = engine
        .containers
        .networks
        .list()
        .iter()
        .filter(|n| {
            let in_use = !engine.containers.network_users(n).is_empty();
            matches(n, &filters, dangling, in_use)
        })
        .map(|n| network_json(engine, n))
        .collect();
    out.extend(records);
    // By name, as the docker CLI shows them.
    out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    Ok(json_response(StatusCode::OK, &out))
}

/// `GET /networks/{id}`: the pre-defined ones too (`bridge` made now if
/// it is not yet).
pub async fn inspect(engine: &Arc<Engine>, key: &str) -> Result<Response<Body>> {
    if let Some((name, driver)) = predefined::find(key, false) {
        let default = engine.containers.networks.ensure_default().await?;
        let out = predefined::network_json(engine, name, driver, &default.created);
        return Ok(json_response(StatusCode::OK, &out));
    }
    let n = match engine.containers.networks.get(key) {
        Ok(n) => n,
        Err(crate::error::Error::NoSuchNetwork(_)) if key == DEFAULT_NETWORK => {
            engine.containers.networks.ensure_default().await?
        }
        Err(crate::error::Error::NoSuchNetwork(missing)) => {
            let Some((name, driver)) = predefined::find(key, true) else {
                return Err(crate::error::Error::NoSuchNetwork(missing));
            };
            let default = engine.containers.networks.ensure_default().await?;
            let out = predefined::network_json(engine, name, driver, &default.created);
            return Ok(json_response(StatusCode::OK, &out));
        }
        Err(e) => return Err(e),
    };
    Ok(json_response(StatusCode::OK, &network_json(engine, &n)))
}

/// `POST /networks/create`.
pub async fn create(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let body: NetworkCreateRequest = body::json(req.into_body(), "network create").await?;
    let rec = crate::network::create::create_network(engine, body).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &NetworkCreateResponse {
            id: rec.id,
            warning: String::new(),
        },
    ))
}

/// `DELETE /networks/{id}`.
pub async fn remove(engine: &Arc<Engine>, key: &str) -> Result<Response<Body>> {
    predefined::refuse(key, "removed")?;
    let rec = engine.containers.networks.get(key)?;
    if rec.is_default() {
        return Err(NetworkError::Predefined(DEFAULT_NETWORK.to_string(), "removed").into());
    }
    engine.containers.remove_network(&rec.id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    engine: &Arc<Engine>,
    key: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let body: NetworkConnectRequest = body::json(req.into_body(), "network connect").await?;
    predefined::refuse(key, "connected to")?;
    let c = engine.containers.get(&body.container)?;
    engine
        .containers
        .connect(&c, key, body.endpoint_config.as_ref())
        .await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    engine: &Arc<Engine>,
    key: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let body: NetworkDisconnectRequest = body::json(req.into_body(), "network disconnect").await?;
    predefined::refuse(key, "disconnected from")?;
    let c = engine.containers.get(&body.container)?;
    engine.containers.disconnect(&c, key).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /networks/prune`: `until`, `label` and `label!` filters.
pub async fn prune(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let filters = Filters::parse(query.get("filters"), &["until", "label", "label!"])?;
    let until = filters.until(crate::timefmt::now())?;
    let deleted = engine
        .containers
        .prune_networks(|n| {
            let created = crate::timefmt::parse_rfc3339(&n.created).unwrap_or(0);
            !filters.labels(&n.labels) || until.is_some_and(|t| created >= t)
        })
        .await;
    Ok(json_response(
        StatusCode::OK,
        &NetworkPruneResponse {
            networks_deleted: Some(deleted),
        },
    ))
}

/// A container's endpoint settings on each network it joins, by network
/// name: the address while it runs, the wishes otherwise.
pub fn container_networks(engine: &Engine, c: &Container) -> HashMap<String, EndpointSettings> {
    let nets = &engine.containers.networks;
    let mut out = HashMap::new();
    match mode_of(&c.record.body) {
        Mode::Host | Mode::None => {
            let name = if mode_of(&c.record.body) == Mode::Host {
                "host"
            } else {
                "none"
            };
            out.insert(
                name.to_string(),
                EndpointSettings {
                    network_id: Some(predefined::id(name)),
                    ..Default::default()
                },
            );
            return out;
        }
        Mode::Container(_) | Mode::Network(_) => {}
    }
    for a in c.attachments() {
        let rec = nets.get(&a.network).ok();
        let name = rec
            .as_ref()
            .map_or_else(|| a.network.clone(), |r| r.name.clone());
        let ep = rec.as_ref().and_then(|r| nets.endpoint(&r.id, c.id()));
        let prefix = rec
            .as_ref()
            .and_then(|r| Subnet::parse(&r.subnet).ok())
            .map(|s| i64::from(s.prefix));
        let mut dns_names = vec![c.name().to_string(), c.id().chars().take(12).collect()];
        dns_names.extend(a.aliases.iter().cloned());
        let prefix6 = rec.as_ref().and_then(prefix6).map(i64::from);
        let ipv6 = ep.as_ref().and_then(|e| e.ipv6);
        let ipam_config = (a.ipv4.is_some() || a.ipv6.is_some()).then(|| {
            bollard_stubs::models::EndpointIpamConfig {
                ipv4_address: a.ipv4.map(|ip| ip.to_string()),
                ipv6_address: a.ipv6.map(|ip| ip.to_string()),
                ..Default::default()
            }
        });
        let settings = EndpointSettings {
            ipam_config,
            aliases: Some(a.aliases.clone()),
            network_id: rec.as_ref().map(|r| r.id.clone()),
            endpoint_id: Some(
                ep.as_ref()
                    .map(|e| e.endpoint_id.clone())
                    .unwrap_or_default(),
            ),
            gateway: Some(
                ep.as_ref()
                    .and(rec.as_ref())
                    .map(|r| r.gateway.to_string())
                    .unwrap_or_default(),
            ),
            ip_address: Some(ep.as_ref().map(|e| e.ipv4.to_string()).unwrap_or_default()),
            ip_prefix_len: Some(ep.as_ref().and(prefix).unwrap_or(0)),
            mac_address: Some(ep.as_ref().map(|e| e.mac.clone()).unwrap_or_default()),
            ipv6_gateway: Some(
                ipv6.and(rec.as_ref())
                    .and_then(|r| r.ipv6.as_ref())
                    .map(|v| v.gateway.to_string())
                    .unwrap_or_default(),
            ),
            global_ipv6_address: Some(ipv6.map(|ip| ip.to_string()).unwrap_or_default()),
            global_ipv6_prefix_len: Some(ipv6.and(prefix6).unwrap_or(0)),
            dns_names: rec.as_ref().filter(|r| !r.is_default()).map(|_| dns_names),
            ..Default::default()
        };
        out.insert(name, settings);
    }
    out
}

/// Docker's `NetworkSettings` for container inspect: the first network's
/// address at the top (as Docker still reports it) and every network.
pub fn network_settings(engine: &Engine, c: &Container) -> Value {
    let networks = container_networks(engine, c);
    let first = c
        .attachments()
        .first()
        .and_then(|a| engine.containers.networks.get(&a.network).ok())
        .and_then(|r| networks.get(&r.name).cloned())
        .unwrap_or_default();
    let netns = c.paths.netns();
    json!({
        "SandboxID": if netns.exists() { c.id().to_string() } else { String::new() },
        "SandboxKey": if netns.exists() { netns.display().to_string() } else { String::new() },
        "Ports": crate::container::publish::port_map(c),
        "Gateway": first.gateway.unwrap_or_default(),
        "IPAddress": first.ip_address.unwrap_or_default(),
        "IPPrefixLen": first.ip_prefix_len.unwrap_or(0),
        "MacAddress": first.mac_address.unwrap_or_default(),
        "EndpointID": first.endpoint_id.unwrap_or_default(),
        "GlobalIPv6Address": first.global_ipv6_address.unwrap_or_default(),
        "GlobalIPv6PrefixLen": first.global_ipv6_prefix_len.unwrap_or(0),
        "IPv6Gateway": first.ipv6_gateway.unwrap_or_default(),
        "Networks": networks,
    })
}
