//! Docker's legacy links (`HostConfig.Links`, `--link NAME[:ALIAS]`, and
//! `Links` in a network's endpoint settings).
//!
//! A link names another container (the child) under an alias. When the
//! container starts, every child must be running; the container's
//! `/etc/hosts` then gets a line with the child's address on the shared
//! network, naming the alias and the child's name. On the default network,
//! as in Docker, the container also gets the child's environment variables:
//! `ALIAS_PORT...` for each exposed port, `ALIAS_NAME` and `ALIAS_ENV_...`
//! for the child's own variables. On a user-defined network a link is only
//! a name (the network's DNS already answers the child's name).
//!
//! Children are looked up by name at each start, as they are kept (the
//! body as sent). The variables a start computed are kept beside the
//! container (`links.json`) for its execs, as Docker gives execs the
//! container's environment.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use bollard_stubs::models::ContainerCreateBody;

use super::networking::{Mode, mode_of};
use super::record::Status;
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::network::DEFAULT_NETWORK;

/// The file holding the link variables of the last start.
const LINKS_FILE: &str = "links.json";

/// One link: the child's name and the alias it has in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The child's name or ID, without `/`.
    pub child: String,
    /// The name the container knows it by.
    pub alias: String,
}

/// Reads a link as Docker does: `NAME`, `NAME:ALIAS`, or the form inspect
/// shows, `/NAME:/PARENT/ALIAS`.
pub fn parse(text: &str) -> Result<Link> {
    let bad = || {
        Error::from(ContainerError::InvalidConfig(format!(
            "invalid link {text:?}: want NAME or NAME:ALIAS"
        )))
    };
    let mut parts = text.split(':');
    let (first, second) = (parts.next().unwrap_or_default(), parts.next());
    if parts.next().is_some() {
        return Err(bad());
    }
    let link = match second {
        None => Link {
            child: first.trim_start_matches('/').to_string(),
            alias: first.trim_start_matches('/').to_string(),
        },
        Some(alias) if first.starts_with('/') => Link {
            child: first.trim_start_matches('/').to_string(),
            alias: alias.rsplit('/').next().unwrap_or_default().to_string(),
        },
        Some(alias) => Link {
            child: first.to_string(),
            alias: alias.to_string(),
        },
    };
    if link.child.is_empty() || link.alias.is_empty() {
        return Err(bad());
    }
    Ok(link)
}

/// Where a body's links are: the container's (`HostConfig.Links`, on its
/// first network) and each endpoint's (`Links` of that network), as
/// (network name, link) pairs.
fn links_of(body: &ContainerCreateBody) -> Result<Vec<(String, Link)>> {
    let mut out = Vec::new();
    let primary = match mode_of(body) {
        Mode::Network(n) => Some(n),
        _ => None,
    };
    let own = body
        .host_config
        .as_ref()
        .and_then(|h| h.links.clone())
        .unwrap_or_default();
    for text in own {
        let Some(net) = primary.clone() else {
            return Err(ContainerError::InvalidConfig(
                "conflicting options: links need the container to be on a network (not host, none or another container's)".to_string(),
            )
            .into());
        };
        out.push((net, parse(&text)?));
    }
    let endpoints = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    let mut names: Vec<&String> = endpoints.keys().collect();
    names.sort();
    for name in names {
        let links = endpoints
            .get(name)
            .and_then(|e| e.links.clone())
            .unwrap_or_default();
        let net = if name == "default" {
            DEFAULT_NETWORK.to_string()
        } else {
            name.clone()
        };
        for text in links {
            let link = parse(&text)?;
            if !out.iter().any(|(n, l)| *n == net && *l == link) {
                out.push((net.clone(), link));
            }
        }
    }
    Ok(out)
}

/// What a start's links give the container.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Variables for its environment (default network only).
    pub env: Vec<String>,
    /// `/etc/hosts` lines: an address and its names.
    pub hosts: Vec<(IpAddr, Vec<String>)>,
}

impl Resolved {
    /// The `/etc/hosts` lines.
    pub fn hosts_lines(&self) -> String {
        self.hosts
            .iter()
            .map(|(ip, names)| format!("{ip}\t{}\n", names.join(" ")))
            .collect()
    }
}

impl Containers {
    /// Checks a create body's links: each child exists (a missing one is a
    /// bad request, not a 404 the docker CLI would take for a missing
    /// image).
    pub(super) fn check_links(&self, body: &ContainerCreateBody) -> Result<()> {
        for (_, link) in links_of(body)? {
            if self.get(&link.child).is_err() {
                return Err(ContainerError::InvalidConfig(format!(
                    "could not get container for {}",
                    link.child
                ))
                .into());
            }
        }
        Ok(())
    }

    /// Resolves a starting container's links: every child must run and be
    /// on the network the link is on.
    pub(super) fn resolve_links(&self, c: &Container) -> Result<Resolved> {
        let mut out = Resolved::default();
        let parent = c.name();
        for (net, link) in links_of(&c.record.body)? {
            let full = format!("/{parent}/{}", link.alias);
            let child = self.get(&link.child).map_err(|_| {
                Error::from(ContainerError::LinkTarget(format!(
                    "cannot link to {}: no such container",
                    link.child
                )))
            })?;
            if child.state().status != Status::Running {
                return Err(ContainerError::LinkTarget(format!(
                    "cannot link to a non running container: /{} AS {full}",
                    child.name()
                ))
                .into());
            }
            let record = self.networks.get(&net).ok();
            let endpoint = record
                .as_ref()
                .and_then(|n| n.endpoints.get(child.id()).cloned());
            let (Some(record), Some(endpoint)) = (record, endpoint) else {
                return Err(ContainerError::LinkTarget(format!(
                    "cannot link to /{}, as it does not belong to the network {net}",
                    child.name()
                ))
                .into());
            };
            let mut names = vec![link.alias.clone()];
            if link.alias != child.name() {
                names.push(child.name());
            }
            out.hosts.push((IpAddr::V4(endpoint.ipv4), names));
            if record.is_default() {
                out.env.extend(link_env(
                    &link.alias,
                    &full,
                    &endpoint.ipv4.to_string(),
                    &exposed_ports(&child),
                    &child_env(&child),
                ));
            }
        }
        Ok(out)
    }
}

/// Keeps a start's link variables for the container's execs.
pub(super) fn save_env(dir: &Path, env: &[String]) -> Result<()> {
    crate::state::write_json_atomic(dir, LINKS_FILE, &env)
}

/// The link variables of the container's last start (none when it has no
/// links).
pub fn saved_env(dir: &Path) -> Vec<String> {
    crate::state::read_json::<Vec<String>>(dir, LINKS_FILE).unwrap_or_default()
}

/// The child's variables as Docker keeps them: the image's, then its own.
fn child_env(child: &Container) -> Vec<String> {
    let image = child
        .record
        .image_config
        .as_ref()
        .and_then(|i| i.env().clone())
        .unwrap_or_default();
    let own = child.record.body.env.clone().unwrap_or_default();
    crate::runtime::spec::process::merge_env(&[&image, &own])
}

/// The child's exposed ports (`80/tcp`): its own, its image's and those it
/// publishes, as Docker counts them.
fn exposed_ports(child: &Container) -> Vec<(u16, String)> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    if let Some(p) = &child.record.body.exposed_ports {
        keys.extend(p.iter().cloned());
    }
    if let Some(p) = child
        .record
        .image_config
        .as_ref()
        .and_then(|i| i.exposed_ports().clone())
    {
        keys.extend(p);
    }
    if let Some(p) = child.record.host_config().port_bindings {
        keys.extend(p.keys().cloned());
    }
    keys.iter()
        .filter_map(|k| {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((port.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect()
}

/// Docker's link variables for a child at `ip`, known as `alias` (its full
/// link name `name`, `/PARENT/ALIAS`), with `ports` exposed and `env` its
/// variables:
/// - `ALIAS_PORT`: the lowest port (`tcp` first on a tie) as a URL;
/// - for each run of three or more consecutive ports, `..._START`,
///   `..._ADDR`, `..._PROTO`, `..._PORT_START`, `..._END`, `..._PORT_END`
///   under the run's first port;
/// - for each port `ALIAS_PORT_N_PROTO` (a URL), and its `_ADDR`, `_PORT`
///   and `_PROTO`;
/// - `ALIAS_NAME`, and `ALIAS_ENV_K` for each of the child's variables but
///   `HOME` and `PATH`.
///
/// The alias is upper-cased, `-` becoming `_`.
pub fn link_env(
    alias: &str,
    name: &str,
    ip: &str,
    ports: &[(u16, String)],
    env: &[String],
) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace('-', "_");
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| (b.1 == "tcp").cmp(&(a.1 == "tcp")))
    });
    ports.dedup();
    let mut out = Vec::new();
    if let Some((port, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    let mut i = 0;
    while i < ports.len() {
        let last = last_consecutive(&ports, i);
        if last > i + 1 {
            let (first, proto) = &ports[i];
            let (end, end_proto) = &ports[last];
            let key = format!("{prefix}_PORT_{first}_{}", proto.to_ascii_uppercase());
            let end_key = format!("{prefix}_PORT_{first}_{}", end_proto.to_ascii_uppercase());
            out.push(format!("{key}_START={proto}://{ip}:{first}"));
            out.push(format!("{key}_ADDR={ip}"));
            out.push(format!("{key}_PROTO={proto}"));
            out.push(format!("{key}_PORT_START={first}"));
            out.push(format!("{end_key}_END={end_proto}://{ip}:{end}"));
            out.push(format!("{end_key}_PORT_END={end}"));
            i = last + 1;
        } else {
            i += 1;
        }
    }
    for (port, proto) in &ports {
        let key = format!("{prefix}_PORT_{port}_{}", proto.to_ascii_uppercase());
        out.push(format!("{key}={proto}://{ip}:{port}"));
        out.push(format!("{key}_ADDR={ip}"));
        out.push(format!("{key}_PORT={port}"));
        out.push(format!("{key}_PROTO={proto}"));
    }
    out.push(format!("{prefix}_NAME={name}"));
    for item in env {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            out.push(format!("{prefix}_ENV_{k}={v}"));
        }
    }
    out
}

/// The index of the last port of the run of consecutive port numbers that
/// starts at `from` (whatever their protocols, as Docker counts them).
fn last_consecutive(ports: &[(u16, String)], from: usize) -> usize {
    let mut last = from;
    let mut value = u32::from(ports[from].0);
    while let Some((next, _)) = ports.get(last + 1) {
        if u32::from(*next) > value + 1 {
            break;
        }
        value += 1;
        last += 1;
    }
    last
}

/// `HostConfig.Links` as Docker's inspect shows them:
/// `/CHILD:/PARENT/ALIAS`.
pub fn inspect_form(parent: &str, links: &[String]) -> Vec<String> {
    links
        .iter()
        .map(|text| match parse(text) {
            Ok(l) => format!("/{}:/{parent}/{}", l.child, l.alias),
            Err(_) => text.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn link(child: &str, alias: &str) -> Link {
        Link {
            child: child.into(),
            alias: alias.into(),
        }
    }

    #[test]
    fn links_read_as_docker_reads_them() {
        assert_eq!(parse("db").unwrap(), link("db", "db"));
        assert_eq!(parse("db:data").unwrap(), link("db", "data"));
        assert_eq!(parse("/db:/web/data").unwrap(), link("db", "data"));
        for bad in ["", ":x", "db:", "a:b:c"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid link"), "{bad}: {e}");
        }
    }

    #[test]
    fn inspect_shows_the_full_link_names() {
        assert_eq!(
            inspect_form("web", &["db:data".into(), "cache".into()]),
            ["/db:/web/data", "/cache:/web/cache"]
        );
    }

    fn ports(list: &[(u16, &str)]) -> Vec<(u16, String)> {
        list.iter().map(|(p, s)| (*p, s.to_string())).collect()
    }

    #[test]
    fn one_port_and_the_child_variables() {
        let env = link_env(
            "my-db",
            "/web/my-db",
            "172.17.0.2",
            &ports(&[(5432, "tcp")]),
            &[
                "PATH=/bin".into(),
                "HOME=/root".into(),
                "PGDATA=/var/lib/pg".into(),
                "EMPTY=".into(),
                "NOVALUE".into(),
            ],
        );
        assert_eq!(
            env,
            [
                "MY_DB_PORT=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PGDATA=/var/lib/pg",
                "MY_DB_ENV_EMPTY=",
            ]
        );
    }

    #[test]
    fn no_port_no_port_variable() {
        assert_eq!(link_env("a", "/p/a", "10.0.0.2", &[], &[]), ["A_NAME=/p/a"]);
    }

    #[test]
    fn the_lowest_port_is_the_default_and_tcp_wins_a_tie() {
        let env = link_env(
            "s",
            "/p/s",
            "10.0.0.2",
            &ports(&[(53, "udp"), (80, "tcp"), (53, "tcp")]),
            &[],
        );
        assert_eq!(env[0], "S_PORT=tcp://10.0.0.2:53");
        let order: Vec<&String> = env.iter().filter(|e| !e.contains("_ADDR")).collect();
        assert!(order[1].starts_with("S_PORT_53_TCP="), "{env:?}");
    }

    #[test]
    fn three_consecutive_ports_make_a_range() {
        let env = link_env(
            "r",
            "/p/r",
            "10.0.0.2",
            &ports(&[(8002, "tcp"), (8000, "tcp"), (8001, "tcp"), (9000, "tcp")]),
            &[],
        );
        for want in [
            "R_PORT_8000_TCP_START=tcp://10.0.0.2:8000",
            "R_PORT_8000_TCP_ADDR=10.0.0.2",
            "R_PORT_8000_TCP_PROTO=tcp",
            "R_PORT_8000_TCP_PORT_START=8000",
            "R_PORT_8000_TCP_END=tcp://10.0.0.2:8002",
            "R_PORT_8000_TCP_PORT_END=8002",
            "R_PORT_9000_TCP=tcp://10.0.0.2:9000",
        ] {
            assert!(env.iter().any(|e| e == want), "{want} missing from {env:?}");
        }
        // Two consecutive ports are no range.
        let env = link_env(
            "r",
            "/p/r",
            "10.0.0.2",
            &ports(&[(80, "tcp"), (81, "tcp")]),
            &[],
        );
        assert!(!env.iter().any(|e| e.contains("_START")), "{env:?}");
    }
}
