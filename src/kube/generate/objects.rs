//! The objects around the workloads: Services, ConfigMaps, Secrets,
//! PersistentVolumeClaims and NetworkPolicies.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{
    DEFAULT_VOLUME_SIZE, Expose, GenerateError, Object, Options, SIZE_LABEL, Warnings,
    container_labels, dns_name, is_label_key, is_label_value, network_label, project_labels,
    selector,
};
use crate::project::normal::{Container, MountKind, Project, Protocol};

/// Which containers mount each named volume, and how.
pub(super) struct VolumeUsage {
    /// Volume name to (container, read-only) pairs.
    by_volume: BTreeMap<String, Vec<(String, bool)>>,
}

impl VolumeUsage {
    pub(super) fn of(project: &Project) -> Self {
        let mut by_volume: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
        for (name, c) in &project.containers {
            for m in &c.volumes {
                if let (MountKind::Volume, Some(v)) = (m.kind, &m.source)
                    && project.volumes.contains_key(v)
                {
                    by_volume
                        .entry(v.clone())
                        .or_default()
                        .push((name.clone(), m.read_only == Some(true)));
                }
            }
        }
        Self { by_volume }
    }

    /// The project's own volumes only `container` mounts, read-write, when
    /// it runs one replica: it owns them, and becomes a StatefulSet.
    pub(super) fn owned_by(&self, project: &Project, container: &str) -> Vec<String> {
        self.by_volume
            .iter()
            .filter(|(v, users)| {
                project.volumes.get(*v).is_some_and(|vol| !vol.external)
                    && users.iter().all(|(c, _)| c == container)
                    && users.iter().any(|(_, ro)| !ro)
                    && project
                        .containers
                        .get(container)
                        .is_some_and(|c| c.replicas == 1)
            })
            .map(|(v, _)| v.clone())
            .collect()
    }

    /// Whether more than one pod mounts `volume`.
    fn shared(&self, project: &Project, volume: &str) -> bool {
        let users = self.by_volume.get(volume).map_or(&[][..], Vec::as_slice);
        let names: BTreeSet<&String> = users.iter().map(|(c, _)| c).collect();
        names.len() > 1
            || names
                .iter()
                .any(|c| project.containers.get(*c).is_some_and(|c| c.replicas > 1))
    }
}

/// The ports of a container: its published ports' targets and `expose`,
/// in order, once each.
pub(super) fn container_ports(c: &Container) -> Vec<(u16, Protocol)> {
    let mut out: Vec<(u16, Protocol)> = Vec::new();
    for p in &c.ports {
        if !out.contains(&(p.target, p.protocol)) {
            out.push((p.target, p.protocol));
        }
    }
    for e in &c.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let proto = match proto {
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => Protocol::Tcp,
        };
        if let Ok(port) = port.parse::<u16>()
            && !out.contains(&(port, proto))
        {
            out.push((port, proto));
        }
    }
    out
}

fn port_name(port: u16, proto: Protocol) -> String {
    format!("{}-{port}", proto.as_str())
}

fn service(
    project: &Project,
    service_name: &str,
    container: &str,
    kind: Expose,
    ports: Vec<Value>,
    headless: bool,
) -> Object {
    let mut spec = Map::new();
    spec.insert("type".into(), json!(kind.service_type()));
    if headless {
        spec.insert("clusterIP".into(), json!("None"));
    }
    spec.insert(
        "selector".into(),
        Value::Object(selector(project, container)),
    );
    if !ports.is_empty() {
        spec.insert("ports".into(), Value::Array(ports));
    }
    Object {
        kind: "Service",
        name: service_name.to_string(),
        comment: None,
        body: json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": service_name, "labels": container_labels(project, container) },
            "spec": spec,
        }),
    }
}

/// The Services of container `name`: one named after it for every
/// container with ports (so others reach it by name, as on a servin
/// network), one per network alias, and with `--expose nodeport` or
/// `loadbalancer` a `<name>-public` one on the published ports. A
/// container without ports that needs a name (a StatefulSet's
/// `serviceName`, a `healthy` dependency waited for) gets a headless one.
pub(super) fn services(
    project: &Project,
    name: &str,
    c: &Container,
    needs_name: bool,
    expose: Expose,
    w: &mut Warnings,
) -> Vec<Object> {
    let subject = format!("container {name}");
    let ports: Vec<Value> = container_ports(c)
        .into_iter()
        .map(|(port, proto)| {
            json!({
                "name": port_name(port, proto),
                "port": port,
                "targetPort": port,
                "protocol": proto.as_str().to_ascii_uppercase(),
            })
        })
        .collect();
    let mut out = Vec::new();
    if ports.is_empty() {
        if needs_name {
            out.push(service(
                project,
                name,
                name,
                Expose::ClusterIp,
                Vec::new(),
                true,
            ));
        }
    } else {
        out.push(service(
            project,
            name,
            name,
            Expose::ClusterIp,
            ports.clone(),
            false,
        ));
        let mut aliases: BTreeSet<&String> = BTreeSet::new();
        for cn in c.networks.values() {
            aliases.extend(cn.aliases.iter().filter(|a| *a != name));
        }
        for a in aliases {
            if project.containers.contains_key(a) {
                w.push(
                    &subject,
                    format!("network alias {a} is the name of a container; left out"),
                );
                continue;
            }
            out.push(service(
                project,
                a,
                name,
                Expose::ClusterIp,
                ports.clone(),
                false,
            ));
        }
    }
    let published: Vec<_> = c.ports.iter().filter(|p| p.published.is_some()).collect();
    if published.is_empty() {
        return out;
    }
    if expose == Expose::ClusterIp {
        let list: Vec<String> = published
            .iter()
            .filter_map(|p| p.published.map(|h| format!("{h}:{}", p.target)))
            .collect();
        w.push(
            &subject,
            format!(
                "published ports {} are reachable inside the cluster only (a ClusterIP Service); pass --expose nodeport or loadbalancer to publish them",
                list.join(", ")
            ),
        );
        return out;
    }
    let mut public = Vec::new();
    for p in &published {
        let Some(host) = p.published else { continue };
        if let Some(ip) = &p.host_ip {
            w.push(
                &subject,
                format!(
                    "ports {ip}:{host}:{}: the host address {ip} is not carried; the Service listens on every node",
                    p.target
                ),
            );
        }
        let mut port = Map::new();
        port.insert("name".into(), json!(port_name(host, p.protocol)));
        port.insert("port".into(), json!(host));
        port.insert("targetPort".into(), json!(p.target));
        port.insert(
            "protocol".into(),
            json!(p.protocol.as_str().to_ascii_uppercase()),
        );
        if expose == Expose::NodePort {
            if (30000..=32767).contains(&host) {
                port.insert("nodePort".into(), json!(host));
            } else {
                w.push(
                    &subject,
                    format!(
                        "published port {host} is outside the node port range 30000-32767: the cluster picks the node port"
                    ),
                );
            }
        }
        if !public.iter().any(|v: &Value| v["name"] == port["name"]) {
            public.push(Value::Object(port));
        }
    }
    out.push(service(
        project,
        &dns_name("", &format!("{name}-public")),
        name,
        expose,
        public,
        false,
    ));
    out
}

/// The ConfigMap of container `name`.
pub(super) fn config_map_name(name: &str) -> String {
    format!("{name}-env")
}

/// The env of `c` split: what a ConfigMap can hold, and what must be
/// written in the pod (names that are no ConfigMap key).
pub(super) fn split_env(c: &Container) -> (BTreeMap<&String, &String>, BTreeMap<&String, &String>) {
    c.env.iter().partition(|(k, _)| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    })
}

/// The ConfigMap of the env of container `name` (its env files merged in).
pub(super) fn config_map(project: &Project, name: &str, c: &Container) -> Option<Object> {
    let (data, _) = split_env(c);
    if data.is_empty() {
        return None;
    }
    let cm = config_map_name(name);
    Some(Object {
        kind: "ConfigMap",
        name: cm.clone(),
        comment: None,
        body: json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": cm, "labels": container_labels(project, name) },
            "data": data,
        }),
    })
}

/// A Secret per secret the containers mount, its one key named after it.
pub(super) fn secrets(
    project: &Project,
    containers: &[String],
    options: &Options,
    w: &mut Warnings,
) -> Result<Vec<Object>, GenerateError> {
    let mut out = Vec::new();
    for name in super::used_secrets(project, containers) {
        if options.no_secrets {
            w.push(
                format!("secret {name}"),
                format!(
                    "left out (--no-secrets); create it in the cluster before applying: kubectl create secret generic {name} --from-file={name}=FILE"
                ),
            );
            continue;
        }
        let data = options
            .secrets
            .get(&name)
            .ok_or_else(|| GenerateError::SecretMissing { name: name.clone() })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        let mut d = Map::new();
        d.insert(name.clone(), json!(encoded));
        out.push(Object {
            kind: "Secret",
            name: name.clone(),
            comment: None,
            body: json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": name, "labels": project_labels(project) },
                "type": "Opaque",
                "data": d,
            }),
        });
    }
    Ok(out)
}

/// A PersistentVolumeClaim per project volume the containers mount.
pub(super) fn claims(
    project: &Project,
    containers: &[String],
    usage: &VolumeUsage,
    w: &mut Warnings,
) -> Vec<Object> {
    let mut names = BTreeSet::new();
    for c in containers.iter().filter_map(|c| project.containers.get(c)) {
        for m in &c.volumes {
            if let (MountKind::Volume, Some(v)) = (m.kind, &m.source) {
                names.insert(v.clone());
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        let Some(vol) = project.volumes.get(&name) else {
            continue;
        };
        if vol.external {
            w.push(
                format!("volume {name}"),
                "external: no claim is generated; the pods expect a PersistentVolumeClaim of this name in the cluster",
            );
            continue;
        }
        let (size, from) = match vol.labels.get(SIZE_LABEL) {
            Some(s) => (s.clone(), format!("from its label {SIZE_LABEL}")),
            None => (
                DEFAULT_VOLUME_SIZE.to_string(),
                format!("the default; set the volume label {SIZE_LABEL} to change it"),
            ),
        };
        let shared = usage.shared(project, &name);
        let mode = if shared {
            "ReadWriteMany"
        } else {
            "ReadWriteOnce"
        };
        let mut comment = format!("volume {name}: {size}, {from}");
        if shared {
            comment.push_str(
                "\nReadWriteMany: several pods mount it, so the storage class must allow that",
            );
        }
        let mut labels = project_labels(project);
        for (k, v) in &vol.labels {
            if k != SIZE_LABEL && is_label_key(k) && is_label_value(v) {
                labels.insert(k.clone(), json!(v));
            } else if k != SIZE_LABEL {
                w.push(
                    format!("volume {name}"),
                    format!("label {k} is no Kubernetes label; left out"),
                );
            }
        }
        out.push(Object {
            kind: "PersistentVolumeClaim",
            name: name.clone(),
            comment: Some(comment),
            body: json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": { "name": name, "labels": labels },
                "spec": {
                    "accessModes": [mode],
                    "resources": { "requests": { "storage": size } },
                },
            }),
        });
    }
    out
}

/// NetworkPolicies that allow what the project's networks allow: a pod
/// takes traffic from the pods sharing one of its networks, and from
/// outside on its published ports when they are exposed. A pod only on
/// internal networks sends only to its networks' pods (and to DNS).
pub(super) fn network_policies(
    project: &Project,
    containers: &[String],
    expose: Expose,
) -> Vec<Object> {
    let mut nets = BTreeSet::new();
    for c in containers.iter().filter_map(|c| project.containers.get(c)) {
        nets.extend(c.networks.keys().cloned());
    }
    let mut out = Vec::new();
    for n in nets {
        let internal = project.networks.get(&n).is_some_and(|x| x.internal);
        let mut members = project_labels(project);
        members.remove("app.kubernetes.io/managed-by");
        members.insert(network_label(&n), json!("true"));
        let peer = json!([{ "podSelector": { "matchLabels": members.clone() } }]);
        let egress = if internal {
            json!([
                { "to": peer.clone() },
                { "ports": [ { "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 } ] },
            ])
        } else {
            json!([{}])
        };
        let name = dns_name("network-", &n);
        let comment = if internal {
            format!("network {n} (internal): its pods reach each other and nothing outside it")
        } else {
            format!("network {n}: its pods reach each other and the outside")
        };
        out.push(Object {
            kind: "NetworkPolicy",
            name: name.clone(),
            comment: Some(comment),
            body: json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": { "name": name, "labels": project_labels(project) },
                "spec": {
                    "podSelector": { "matchLabels": members },
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [ { "from": peer } ],
                    "egress": egress,
                },
            }),
        });
    }
    if expose != Expose::ClusterIp {
        for name in containers {
            let Some(c) = project.containers.get(name) else {
                continue;
            };
            let ports: Vec<Value> = c
                .ports
                .iter()
                .filter(|p| p.published.is_some())
                .map(|p| json!({ "protocol": p.protocol.as_str().to_ascii_uppercase(), "port": p.target }))
                .collect();
            if ports.is_empty() {
                continue;
            }
            let pname = dns_name("published-", name);
            out.push(Object {
                kind: "NetworkPolicy",
                name: pname.clone(),
                comment: Some(format!(
                    "{name}: its published ports, from anywhere (--expose)"
                )),
                body: json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": { "name": pname, "labels": container_labels(project, name) },
                    "spec": {
                        "podSelector": { "matchLabels": selector(project, name) },
                        "policyTypes": ["Ingress"],
                        "ingress": [ { "ports": ports } ],
                    },
                }),
            });
        }
    }
    out
}
