//! Docker's container filters for `GET /containers/json` and
//! `POST /containers/prune`, with the engine's objects resolved once before
//! any container is compared (see [`crate::filters`] for the rules they
//! share).

use std::time::SystemTime;

use crate::container::{Container, Status};
use crate::engine::Engine;
use crate::error::Result;
use crate::filters::{FilterError, Filters};
use crate::network::ports::Protocol;
use crate::timefmt;

/// The keys `GET /containers/json` takes.
pub const LIST_KEYS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// The keys `POST /containers/prune` takes.
pub const PRUNE_KEYS: &[&str] = &["label", "label!", "until"];

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];
const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// The filters of one request, ready to compare containers with.
pub struct ContainerFilter {
    filters: Filters,
    /// Image IDs an `ancestor` names (a name that is no image matches by
    /// the name the container was created with).
    ancestors: Vec<String>,
    /// Created before this container (its creation time).
    before: Option<SystemTime>,
    /// Created after this container.
    since: Option<SystemTime>,
    /// Network IDs a `network` value names, beside the values themselves.
    networks: Vec<String>,
    exited: Vec<i64>,
    until: Option<i64>,
}

impl ContainerFilter {
    /// Parses the `filters` argument of a call that takes `keys`.
    pub fn new(engine: &Engine, raw: Option<&str>, keys: &[&str]) -> Result<Self> {
        let filters = Filters::parse(raw, keys)?;
        filters.check_values("status", STATUSES)?;
        filters.check_values("health", HEALTH)?;
        let created_of = |key: &str| -> Result<Option<SystemTime>> {
            match filters.get(key).last() {
                Some(v) => Ok(Some(created(engine.containers.get(v)?.as_ref()))),
                None => Ok(None),
            }
        };
        let ancestors = filters
            .get("ancestor")
            .iter()
            .filter_map(|a| engine.store.resolve(a).ok().map(|i| i.id))
            .collect();
        let networks = filters
            .get("network")
            .iter()
            .filter_map(|n| engine.containers.networks.get(n).ok().map(|r| r.id))
            .collect();
        let exited = filters
            .get("exited")
            .iter()
            .map(|v| {
                v.parse::<i64>().map_err(|_| FilterError::InvalidValue {
                    key: "exited".to_string(),
                    value: v.clone(),
                    why: "want an exit code".to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let until = filters.until(timefmt::now())?;
        Ok(Self {
            before: created_of("before")?,
            since: created_of("since")?,
            filters,
            ancestors,
            networks,
            exited,
            until,
        })
    }

    /// Whether the filters list stopped containers without `all`, as
    /// Docker's do: a `status` filter, `before` or `since`.
    pub fn asks_for_stopped(&self) -> bool {
        self.filters.contains("status") || self.before.is_some() || self.since.is_some()
    }

    /// Whether `c` passes every filter.
    pub fn matches(&self, c: &Container) -> bool {
        let f = &self.filters;
        let state = c.state();
        let created_at = created(c);
        let created = timefmt::parse_rfc3339(&c.record.created).unwrap_or(0);
        let health = match state.health.as_ref().and_then(|h| h.status) {
            Some(s) if !s.to_string().is_empty() => s.to_string(),
            _ => "none".to_string(),
        };
        f.id_prefix("id", c.id())
            && f.name("name", &c.name())
            && f.labels(&c.record.labels())
            && f.exact("status", state.docker_status())
            && f.exact("health", &health)
            && f.exact("isolation", "default")
            && f.exact("is-task", "false")
            && f.any("ancestor", |a| {
                c.record.image_name == a
                    || c.record.image_id == a
                    || self.ancestors.contains(&c.record.image_id)
            })
            && (self.exited.is_empty()
                || (state.status == Status::Exited && self.exited.contains(&state.exit_code)))
            && self.before.is_none_or(|t| created_at < t)
            && self.since.is_none_or(|t| created_at > t)
            && self.until.is_none_or(|t| created < t)
            && f.any("network", |n| {
                c.attachments().iter().any(|a| {
                    a.network == n
                        || self.networks.contains(&a.network)
                        || c.record.host_config().network_mode.as_deref() == Some(n)
                })
            })
            && f.any("volume", |v| {
                c.record
                    .volumes
                    .iter()
                    .any(|m| m.name == v || m.destination == v)
                    || c.record
                        .host_config()
                        .binds
                        .unwrap_or_default()
                        .iter()
                        .any(|b| b.split(':').take(2).any(|part| part == v))
            })
            && f.any("publish", |p| {
                c.published_ports()
                    .iter()
                    .any(|b| port_matches(p, b.container_port, b.protocol))
            })
            && f.any("expose", |p| {
                crate::container::publish::exposed(&c.record.body, c.record.image_config.as_ref())
                    .unwrap_or_default()
                    .iter()
                    .any(|(port, proto)| port_matches(p, *port, *proto))
            })
    }
}

/// When `c` was made, to the nanosecond: containers made in one second
/// still have an order for `before` and `since`.
fn created(c: &Container) -> SystemTime {
    timefmt::parse_nanos(&c.record.created).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `80`, `80/udp` or `8000-8080/tcp` (tcp when no protocol is given)
/// against a container port.
fn port_matches(want: &str, port: u16, protocol: Protocol) -> bool {
    let (ports, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    if !proto.eq_ignore_ascii_case(&protocol.to_string()) {
        return false;
    }
    let parse = |s: &str| s.trim().parse::<u16>().ok();
    match ports.split_once('-') {
        Some((a, b)) => {
            matches!((parse(a), parse(b)), (Some(a), Some(b)) if (a..=b).contains(&port))
        }
        None => parse(ports) == Some(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_match_with_ranges_and_protocols() {
        assert!(port_matches("80", 80, Protocol::Tcp));
        assert!(port_matches("80/tcp", 80, Protocol::Tcp));
        assert!(!port_matches("80/udp", 80, Protocol::Tcp));
        assert!(port_matches("53/udp", 53, Protocol::Udp));
        assert!(port_matches("8000-8080", 8042, Protocol::Tcp));
        assert!(!port_matches("8000-8080", 8081, Protocol::Tcp));
        assert!(!port_matches("eighty", 80, Protocol::Tcp));
    }
}
