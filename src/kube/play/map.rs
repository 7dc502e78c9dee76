//! From the Kubernetes objects to a servin project.
//!
//! - A Pod or Deployment's containers become containers named after it
//!   (`web`, or `web-CONTAINER` when it has several), a Deployment's with
//!   its `replicas`; its init containers become containers named
//!   `web-init-CONTAINER`, run one after the other, each depending on the
//!   one before to complete, and the main containers depend on the last.
//! - Every container joins the project network `default`; a Service's name
//!   is an alias of the containers it selects there.
//! - ConfigMaps and Secrets are env values, and files under the files
//!   folder (see [`super::files`]) bound read-only where a volume mounts
//!   them. A PersistentVolumeClaim is a named volume; an `emptyDir` a named
//!   volume `POD-VOLUME` shared by the pod's containers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::types::{self, IntOrString};
use super::{Doc, Manifest, Object, PlayError, Warning};
use crate::project::normal::{
    self, Condition, ContainerNetwork, Healthcheck, Mount, MountKind, Port, Project, Protocol,
};
use crate::project::values;

/// The network every container joins.
pub const NETWORK: &str = "default";

/// What the mapping needs beyond the file.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project name.
    pub project: String,
    /// The absolute folder the ConfigMap and Secret files go to.
    pub files_dir: PathBuf,
    /// Publish every Service port on the host at the same port.
    pub publish: bool,
}

/// A file to write under the files folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the files folder: `WORKLOAD/VOLUME/PATH`.
    pub path: PathBuf,
    pub data: Vec<u8>,
}

/// The project to apply and the files to write first.
#[derive(Debug, Clone)]
pub struct Played {
    pub project: Project,
    pub files: Vec<File>,
    /// The folders to make under the files folder (relative), each a
    /// ConfigMap or Secret volume, even when it holds no file.
    pub dirs: BTreeSet<PathBuf>,
    /// The init containers: they run to completion once, and a later play
    /// keeps them as they are once they completed (see
    /// [`servin_proto::labels::RUN_ONCE`]).
    pub run_once: BTreeSet<String>,
    pub warnings: Vec<Warning>,
}

/// The data of a ConfigMap or Secret.
struct Data {
    values: BTreeMap<String, Vec<u8>>,
}

/// A Pod or a Deployment.
struct Workload<'a> {
    doc: &'a Doc,
    replicas: u32,
    labels: BTreeMap<String, String>,
    spec: &'a types::PodSpec,
    /// `spec` or `spec.template.spec`.
    at: &'static str,
    /// The container keys of its main containers.
    mains: Vec<String>,
}

struct Cx<'a> {
    options: &'a Options,
    config_maps: BTreeMap<String, Data>,
    secrets: BTreeMap<String, Data>,
    claims: BTreeSet<String>,
    warnings: Vec<Warning>,
    files: Vec<File>,
    dirs: BTreeSet<PathBuf>,
    run_once: BTreeSet<String>,
    volumes: BTreeMap<String, normal::Volume>,
}

/// The project of `manifest`.
pub fn project(manifest: &Manifest, options: &Options) -> Result<Played, PlayError> {
    let mut cx = Cx {
        options,
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
        claims: BTreeSet::new(),
        warnings: manifest.warnings.clone(),
        files: Vec::new(),
        dirs: BTreeSet::new(),
        run_once: BTreeSet::new(),
        volumes: BTreeMap::new(),
    };
    let mut workloads = Vec::new();
    let mut services = Vec::new();
    let mut seen = BTreeSet::new();
    for doc in &manifest.docs {
        if !seen.insert((doc.kind.clone(), doc.name.clone())) {
            return Err(doc.error("metadata.name", "is defined twice for this kind"));
        }
        if let Some(ns) = namespace(&doc.object)
            && ns != "default"
        {
            cx.warnings.push(doc.warning(format!(
                "metadata.namespace {ns} is not supported (one project holds every object); skipped"
            )));
        }
        match &doc.object {
            Object::ConfigMap(c) => {
                let mut values = BTreeMap::new();
                for (k, v) in &c.data {
                    values.insert(k.clone(), v.clone().into_bytes());
                }
                for (k, v) in &c.binary_data {
                    let bytes = decode(v)
                        .map_err(|e| doc.error(format!("binaryData.{k}"), e.to_string()))?;
                    values.insert(k.clone(), bytes);
                }
                cx.config_maps.insert(doc.name.clone(), Data { values });
            }
            Object::Secret(s) => {
                let mut values = BTreeMap::new();
                for (k, v) in &s.data {
                    let bytes = decode(v).map_err(|e| {
                        doc.error(
                            format!("data.{k}"),
                            format!(
                                "does not decode as base64 ({e}); use stringData for plain text"
                            ),
                        )
                    })?;
                    values.insert(k.clone(), bytes);
                }
                for (k, v) in &s.string_data {
                    values.insert(k.clone(), v.clone().into_bytes());
                }
                cx.secrets.insert(doc.name.clone(), Data { values });
            }
            Object::PersistentVolumeClaim(p) => {
                check_name(doc, "metadata.name", &doc.name)?;
                cx.claims.insert(doc.name.clone());
                cx.volumes.insert(
                    doc.name.clone(),
                    normal::Volume {
                        external: false,
                        labels: p.metadata.labels.clone(),
                    },
                );
            }
            Object::Pod(p) => workloads.push(Workload {
                doc,
                replicas: 1,
                labels: p.metadata.labels.clone(),
                spec: &p.spec,
                at: "spec",
                mains: Vec::new(),
            }),
            Object::Deployment(d) | Object::StatefulSet(d) => {
                if let Some(sel) = &d.spec.selector {
                    let labels = &d.spec.template.metadata.labels;
                    if let Some((k, v)) = sel
                        .match_labels
                        .iter()
                        .find(|(k, v)| labels.get(*k) != Some(*v))
                    {
                        return Err(doc.error(
                            "spec.selector.matchLabels",
                            format!("{k}={v} does not match spec.template.metadata.labels"),
                        ));
                    }
                }
                workloads.push(Workload {
                    doc,
                    replicas: d.spec.replicas.unwrap_or(1),
                    labels: d.spec.template.metadata.labels.clone(),
                    spec: &d.spec.template.spec,
                    at: "spec.template.spec",
                    mains: Vec::new(),
                });
            }
            Object::Service(_) => services.push(doc),
        }
    }

    let mut containers = BTreeMap::new();
    for w in &mut workloads {
        for (key, c) in workload_containers(&mut cx, w)? {
            if containers.insert(key.clone(), c).is_some() {
                return Err(w.doc.error(
                    "metadata.name",
                    format!("makes container {key}, which another object makes too"),
                ));
            }
        }
    }
    for doc in services {
        let Object::Service(s) = &doc.object else {
            continue;
        };
        service(&mut cx, doc, s, &workloads, &mut containers)?;
    }
    let mut networks = BTreeMap::new();
    if !containers.is_empty() {
        networks.insert(
            NETWORK.to_string(),
            normal::Network {
                subnet: None,
                gateway: None,
                internal: false,
                labels: BTreeMap::new(),
            },
        );
    }
    let mut published = BTreeMap::new();
    for (key, c) in &containers {
        for p in &c.ports {
            if let Some(host) = p.published
                && let Some(other) = published.insert((host, p.protocol.as_str()), key.clone())
                && other != *key
            {
                return Err(PlayError {
                    document: 0,
                    object: None,
                    field: String::new(),
                    message: format!(
                        "host port {host}/{} would be published by both {other} and {key}",
                        p.protocol.as_str()
                    ),
                });
            }
        }
    }
    for c in containers.values_mut() {
        if let Some(n) = c.networks.get_mut(NETWORK) {
            n.aliases.sort();
            n.aliases.dedup();
        }
    }
    Ok(Played {
        project: Project {
            project: normal::ProjectInfo {
                name: options.project.clone(),
            },
            images: BTreeMap::new(),
            volumes: cx.volumes,
            networks,
            secrets: BTreeMap::new(),
            containers,
        },
        files: cx.files,
        dirs: cx.dirs,
        run_once: cx.run_once,
        warnings: cx.warnings,
    })
}

fn namespace(o: &Object) -> Option<&str> {
    let m = match o {
        Object::Pod(x) => &x.metadata,
        Object::Deployment(x) | Object::StatefulSet(x) => &x.metadata,
        Object::Service(x) => &x.metadata,
        Object::ConfigMap(x) => &x.metadata,
        Object::Secret(x) => &x.metadata,
        Object::PersistentVolumeClaim(x) => &x.metadata,
    };
    m.namespace.as_deref()
}

fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}

fn check_name(doc: &Doc, field: &str, name: &str) -> Result<(), PlayError> {
    match values::misc::dns_label_error(name) {
        None => Ok(()),
        Some(why) => Err(doc.error(field, format!("`{name}` is not a DNS label: {why}"))),
    }
}

/// The containers of a workload, by key; fills in `w.mains`.
fn workload_containers(
    cx: &mut Cx<'_>,
    w: &mut Workload<'_>,
) -> Result<Vec<(String, normal::Container)>, PlayError> {
    let doc = w.doc;
    let at = w.at;
    check_name(doc, "metadata.name", &doc.name)?;
    if w.spec.containers.is_empty() {
        return Err(doc.error(format!("{at}.containers"), "needs at least one container"));
    }
    let restart = match w.spec.restart_policy.as_deref() {
        None | Some("Always") => "always",
        Some("OnFailure") => "on-failure",
        Some("Never") => "no",
        Some(other) => {
            return Err(doc.error(
                format!("{at}.restartPolicy"),
                format!("`{other}` is not Always, OnFailure or Never"),
            ));
        }
    };
    let pod = PodCx::new(cx, doc, w.spec, at)?;
    let mut out = Vec::new();
    let mut previous: Option<String> = None;
    for (i, c) in w.spec.init_containers.iter().enumerate() {
        let path = format!("{at}.initContainers[{i}]");
        check_name(doc, &format!("{path}.name"), &c.name)?;
        let key = format!("{}-init-{}", doc.name, c.name);
        check_name(doc, &format!("{path}.name"), &key)?;
        let mut nc = container(cx, &pod, c, &path, &key, "no")?;
        if c.readiness_probe.is_some() || c.liveness_probe.is_some() || c.startup_probe.is_some() {
            cx.warnings.push(doc.warning(format!(
                "{path}: probes of an init container are not supported; skipped"
            )));
            nc.healthcheck = None;
        }
        if let Some(p) = &previous {
            nc.depends_on.insert(p.clone(), Condition::Completed);
        }
        previous = Some(key.clone());
        cx.run_once.insert(key.clone());
        out.push((key, nc));
    }
    let single = w.spec.containers.len() == 1;
    for (i, c) in w.spec.containers.iter().enumerate() {
        let path = format!("{at}.containers[{i}]");
        check_name(doc, &format!("{path}.name"), &c.name)?;
        let key = if single {
            doc.name.clone()
        } else {
            format!("{}-{}", doc.name, c.name)
        };
        check_name(doc, &format!("{path}.name"), &key)?;
        if w.replicas > 1
            && let Some(i) = c.ports.iter().position(|p| p.host_port.is_some())
        {
            return Err(doc.error(
                format!("{path}.ports[{i}].hostPort"),
                format!(
                    "cannot be published by {} replicas (one host port each)",
                    w.replicas
                ),
            ));
        }
        let mut nc = container(cx, &pod, c, &path, &key, restart)?;
        nc.replicas = w.replicas;
        if let Some(p) = &previous {
            nc.depends_on.insert(p.clone(), Condition::Completed);
        }
        w.mains.push(key.clone());
        out.push((key, nc));
    }
    if !single {
        cx.warnings.push(doc.warning(format!(
            "{at}.containers: the containers of one pod do not share localhost here; each is its own container, reached by its name ({})",
            w.mains.join(", ")
        )));
    }
    for (key, c) in &mut out {
        c.labels = w.labels.clone();
        if w.spec.hostname.is_some() && w.replicas <= 1 && w.mains.len() <= 1 {
            c.hostname = w.spec.hostname.clone();
        } else {
            c.hostname = Some(key.clone());
        }
    }
    Ok(out)
}

/// A pod volume as mounts take it.
enum PodVolume {
    /// A named volume of the project.
    Named(String, bool),
    /// A folder of files under the files folder (absolute).
    Files(PathBuf),
    /// A host folder.
    Host(String, bool),
}

/// What the containers of one pod share.
struct PodCx<'a> {
    doc: &'a Doc,
    spec: &'a types::PodSpec,
    at: &'static str,
    volumes: BTreeMap<String, PodVolume>,
}

impl<'a> PodCx<'a> {
    fn new(
        cx: &mut Cx<'_>,
        doc: &'a Doc,
        spec: &'a types::PodSpec,
        at: &'static str,
    ) -> Result<Self, PlayError> {
        let mut volumes = BTreeMap::new();
        for (i, v) in spec.volumes.iter().enumerate() {
            let path = format!("{at}.volumes[{i}]");
            let set = [
                v.config_map.is_some(),
                v.secret.is_some(),
                v.persistent_volume_claim.is_some(),
                v.empty_dir.is_some(),
                v.host_path.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if set > 1 {
                return Err(doc.error(&path, "names more than one volume source"));
            }
            let pv = if let Some(cm) = &v.config_map {
                let dir = files(
                    cx,
                    doc,
                    &format!("{path}.configMap"),
                    &v.name,
                    "ConfigMap",
                    &cm.name,
                    cm.items.as_deref(),
                    cm.optional.unwrap_or(false),
                )?;
                PodVolume::Files(dir)
            } else if let Some(s) = &v.secret {
                let dir = files(
                    cx,
                    doc,
                    &format!("{path}.secret"),
                    &v.name,
                    "Secret",
                    &s.secret_name,
                    s.items.as_deref(),
                    s.optional.unwrap_or(false),
                )?;
                PodVolume::Files(dir)
            } else if let Some(c) = &v.persistent_volume_claim {
                if !cx.claims.contains(&c.claim_name) {
                    return Err(doc.error(
                        format!("{path}.persistentVolumeClaim.claimName"),
                        format!(
                            "names claim {}, which the file does not define (add a PersistentVolumeClaim)",
                            c.claim_name
                        ),
                    ));
                }
                PodVolume::Named(c.claim_name.clone(), c.read_only.unwrap_or(false))
            } else if v.empty_dir.is_some() {
                let key = format!("{}-{}", doc.name, v.name);
                check_name(doc, &format!("{path}.name"), &key)?;
                cx.volumes.insert(
                    key.clone(),
                    normal::Volume {
                        external: false,
                        labels: BTreeMap::new(),
                    },
                );
                PodVolume::Named(key, false)
            } else if let Some(h) = &v.host_path {
                if !h.path.starts_with('/') {
                    return Err(doc.error(
                        format!("{path}.hostPath.path"),
                        format!("`{}` is not an absolute path", h.path),
                    ));
                }
                let create = matches!(h.kind.as_deref(), Some("DirectoryOrCreate"));
                PodVolume::Host(h.path.clone(), create)
            } else {
                cx.warnings.push(doc.warning(format!(
                    "{path} ({}): this volume source is not supported; skipped, with its mounts",
                    v.name
                )));
                continue;
            };
            if volumes.insert(v.name.clone(), pv).is_some() {
                return Err(doc.error(
                    format!("{path}.name"),
                    format!("volume {} is defined twice", v.name),
                ));
            }
        }
        Ok(Self {
            doc,
            spec,
            at,
            volumes,
        })
    }
}

/// Queues the files of a ConfigMap or Secret volume; returns their folder.
#[allow(clippy::too_many_arguments)]
fn files(
    cx: &mut Cx<'_>,
    doc: &Doc,
    path: &str,
    volume: &str,
    kind: &str,
    name: &str,
    items: Option<&[types::KeyToPath]>,
    optional: bool,
) -> Result<PathBuf, PlayError> {
    let rel = Path::new(&doc.name).join(volume);
    cx.dirs.insert(rel.clone());
    let data = if kind == "Secret" {
        cx.secrets.get(name)
    } else {
        cx.config_maps.get(name)
    };
    let data = match data {
        Some(d) => d.values.clone(),
        None if optional => BTreeMap::new(),
        None => {
            let field = if kind == "Secret" {
                "secretName"
            } else {
                "name"
            };
            return Err(doc.error(
                format!("{path}.{field}"),
                format!("names {kind} {name}, which the file does not define"),
            ));
        }
    };
    let chosen: Vec<(String, &Vec<u8>)> = match items {
        None => data.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Some(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match data.get(&item.key) {
                    Some(v) => out.push((item.path.clone(), v)),
                    None if optional => {}
                    None => {
                        return Err(doc.error(
                            format!("{path}.items[{i}].key"),
                            format!("{kind} {name} has no key {}", item.key),
                        ));
                    }
                }
            }
            out
        }
    };
    for (i, (file, bytes)) in chosen.iter().enumerate() {
        let p = Path::new(file);
        let safe = !file.is_empty()
            && p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            let field = match items {
                Some(_) => format!("{path}.items[{i}].path"),
                None => format!("{path}.name"),
            };
            return Err(doc.error(
                field,
                format!("`{file}` is not a relative path inside the volume"),
            ));
        }
        cx.files.push(File {
            path: rel.join(p),
            data: (*bytes).clone(),
        });
    }
    Ok(cx.options.files_dir.join(rel))
}

/// One container of a pod.
fn container(
    cx: &mut Cx<'_>,
    pod: &PodCx<'_>,
    c: &types::Container,
    path: &str,
    key: &str,
    restart: &str,
) -> Result<normal::Container, PlayError> {
    let doc = pod.doc;
    let image = values::ImageRef::parse(&c.image)
        .map_err(|e| doc.error(format!("{path}.image"), e))?
        .to_string();
    match c.image_pull_policy.as_deref() {
        None | Some("IfNotPresent") => {}
        Some(p) => cx.warnings.push(doc.warning(format!(
            "{path}.imagePullPolicy {p} is not supported (images are pulled when missing); skipped"
        ))),
    }
    let entrypoint = c.command.clone();
    // Kubernetes' `command` drops the image's arguments too.
    let command = match (&c.command, &c.args) {
        (_, Some(a)) => Some(a.clone()),
        (Some(_), None) => Some(Vec::new()),
        (None, None) => None,
    };
    let env = environment(cx, doc, c, path)?;

    let mut expose = Vec::new();
    let mut ports = Vec::new();
    for (i, p) in c.ports.iter().enumerate() {
        let protocol = protocol(doc, &format!("{path}.ports[{i}].protocol"), &p.protocol)?;
        expose.push(format!("{}/{}", p.container_port, protocol.as_str()));
        if let Some(host) = p.host_port {
            ports.push(Port {
                target: p.container_port,
                published: Some(host),
                host_ip: None,
                protocol,
                published_end: None,
            });
        }
    }
    expose.sort();
    expose.dedup();

    let mut volumes = Vec::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mpath = format!("{path}.volumeMounts[{i}]");
        if !m.mount_path.starts_with('/') {
            return Err(doc.error(
                format!("{mpath}.mountPath"),
                format!("`{}` is not an absolute path", m.mount_path),
            ));
        }
        let Some(v) = pod.volumes.get(&m.name) else {
            let defined = pod.spec.volumes.iter().any(|v| v.name == m.name);
            if defined {
                // Its volume was skipped with a warning already.
                continue;
            }
            return Err(doc.error(
                format!("{mpath}.name"),
                format!(
                    "names volume {}, which {}.volumes does not define",
                    m.name, pod.at
                ),
            ));
        };
        let read_only = m.read_only.unwrap_or(false);
        let sub = m.sub_path.as_deref().filter(|s| !s.is_empty());
        let mount = match v {
            PodVolume::Files(dir) => {
                let source = match sub {
                    Some(s) => dir.join(s),
                    None => dir.clone(),
                };
                bind(
                    source.to_string_lossy().into_owned(),
                    &m.mount_path,
                    true,
                    false,
                )
            }
            PodVolume::Host(dir, create) => {
                let source = match sub {
                    Some(s) => Path::new(dir).join(s).to_string_lossy().into_owned(),
                    None => dir.clone(),
                };
                bind(source, &m.mount_path, read_only, *create)
            }
            PodVolume::Named(name, ro) => {
                if sub.is_some() {
                    cx.warnings.push(doc.warning(format!(
                        "{mpath}.subPath on a named volume is not supported; the mount is skipped"
                    )));
                    continue;
                }
                Mount {
                    kind: MountKind::Volume,
                    source: Some(name.clone()),
                    target: m.mount_path.clone(),
                    read_only: Some(read_only || *ro),
                    size: None,
                    mode: None,
                    no_copy: None,
                    create_source: None,
                }
            }
        };
        volumes.push(mount);
    }

    let healthcheck = probes(cx, doc, c, path)?;

    // The container's securityContext wins over the pod's, field by field.
    let pod_sc = pod.spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let uid = sc.run_as_user.or(pod_sc.run_as_user);
    let gid = sc.run_as_group.or(pod_sc.run_as_group);
    let user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(_)) => {
            cx.warnings.push(doc.warning(format!(
                "{path}: securityContext.runAsGroup without runAsUser is not supported; skipped"
            )));
            None
        }
        (None, None) => None,
    };
    for (field, set) in [
        ("privileged", pod_sc.privileged.is_some()),
        ("capabilities", pod_sc.capabilities.is_some()),
        (
            "readOnlyRootFilesystem",
            pod_sc.read_only_root_filesystem.is_some(),
        ),
        (
            "allowPrivilegeEscalation",
            pod_sc.allow_privilege_escalation.is_some(),
        ),
    ] {
        if set {
            cx.warnings.push(doc.warning(format!(
                "{}.securityContext.{field} is not a pod field (it belongs to a container's securityContext); skipped",
                pod.at
            )));
        }
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    let cap = |list: &[String], field: &str| -> Result<Vec<String>, PlayError> {
        let mut out = Vec::new();
        for (i, name) in list.iter().enumerate() {
            out.push(values::normalize_capability(name).map_err(|e| {
                doc.error(
                    format!("{path}.securityContext.capabilities.{field}[{i}]"),
                    e,
                )
            })?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    };
    let cap_add = cap(&caps.add, "add")?;
    let cap_drop = cap(&caps.drop, "drop")?;
    let security_opt = if sc.allow_privilege_escalation == Some(false) {
        vec!["no-new-privileges".to_string()]
    } else {
        Vec::new()
    };

    let resources = resources(cx, doc, c, path)?;
    let grace = pod.spec.termination_grace_period_seconds.unwrap_or(30);

    let mut networks = BTreeMap::new();
    networks.insert(
        NETWORK.to_string(),
        ContainerNetwork {
            aliases: Vec::new(),
            ipv4_address: None,
        },
    );
    Ok(normal::Container {
        image,
        command,
        entrypoint,
        env,
        workdir: c.working_dir.clone(),
        user,
        hostname: Some(key.to_string()),
        ports,
        volumes,
        networks,
        depends_on: BTreeMap::new(),
        healthcheck,
        restart: Some(restart.to_string()),
        resources,
        init: true,
        stop_signal: Some("SIGTERM".to_string()),
        stop_timeout: Some(values::format_duration(std::time::Duration::from_secs(
            u64::from(grace),
        ))),
        labels: BTreeMap::new(),
        tty: c.tty.unwrap_or(false),
        profiles: Vec::new(),
        replicas: 1,
        secrets: Vec::new(),
        cap_add,
        cap_drop,
        privileged: sc.privileged.unwrap_or(false),
        read_only: sc.read_only_root_filesystem.unwrap_or(false),
        extra_hosts: BTreeMap::new(),
        sysctls: BTreeMap::new(),
        ulimits: BTreeMap::new(),
        shm_size: Some(64 * 1024 * 1024),
        expose,
        workspace: None,
        stdin_open: c.stdin.filter(|s| *s),
        publish_all: None,
        network_mode: None,
        security_opt,
        log_options: BTreeMap::new(),
    })
}

fn bind(source: String, target: &str, read_only: bool, create: bool) -> Mount {
    Mount {
        kind: MountKind::Bind,
        source: Some(source),
        target: target.to_string(),
        read_only: Some(read_only),
        size: None,
        mode: None,
        no_copy: None,
        create_source: create.then_some(true),
    }
}

fn protocol(doc: &Doc, field: &str, p: &Option<String>) -> Result<Protocol, PlayError> {
    match p.as_deref() {
        None | Some("TCP") => Ok(Protocol::Tcp),
        Some("UDP") => Ok(Protocol::Udp),
        Some("SCTP") => Ok(Protocol::Sctp),
        Some(other) => Err(doc.error(field, format!("`{other}` is not TCP, UDP or SCTP"))),
    }
}

/// `envFrom`, then `env` over it, as Kubernetes orders them.
fn environment(
    cx: &mut Cx<'_>,
    doc: &Doc,
    c: &types::Container,
    path: &str,
) -> Result<BTreeMap<String, String>, PlayError> {
    let mut env = BTreeMap::new();
    for (i, from) in c.env_from.iter().enumerate() {
        let at = format!("{path}.envFrom[{i}]");
        let (kind, r, data, field) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), None) => ("ConfigMap", r, cx.config_maps.get(&r.name), "configMapRef"),
            (None, Some(r)) => ("Secret", r, cx.secrets.get(&r.name), "secretRef"),
            _ => {
                return Err(doc.error(at, "needs exactly one of configMapRef and secretRef"));
            }
        };
        let Some(data) = data else {
            if r.optional.unwrap_or(false) {
                continue;
            }
            return Err(doc.error(
                format!("{at}.{field}.name"),
                format!("names {kind} {}, which the file does not define", r.name),
            ));
        };
        let prefix = from.prefix.clone().unwrap_or_default();
        for (k, v) in &data.values {
            let name = format!("{prefix}{k}");
            match String::from_utf8(v.clone()) {
                Ok(s) if is_env_name(&name) => {
                    env.insert(name, s);
                }
                _ => cx.warnings.push(doc.warning(format!(
                    "{at}: key {k} of {kind} {} is not a valid environment variable (name or text); skipped",
                    r.name
                ))),
            }
        }
    }
    for (i, e) in c.env.iter().enumerate() {
        let at = format!("{path}.env[{i}]");
        let value = match (&e.value, &e.value_from) {
            (_, None) => e.value.clone().unwrap_or_default(),
            (Some(_), Some(_)) => {
                return Err(doc.error(at, "has both value and valueFrom"));
            }
            (None, Some(from)) => {
                let (kind, r, data, field) = match (&from.config_map_key_ref, &from.secret_key_ref)
                {
                    (Some(r), None) => (
                        "ConfigMap",
                        r,
                        cx.config_maps.get(&r.name),
                        "configMapKeyRef",
                    ),
                    (None, Some(r)) => ("Secret", r, cx.secrets.get(&r.name), "secretKeyRef"),
                    _ => {
                        cx.warnings.push(doc.warning(format!(
                            "{at}.valueFrom ({}): only configMapKeyRef and secretKeyRef are supported; skipped",
                            e.name
                        )));
                        continue;
                    }
                };
                let value = data.and_then(|d| d.values.get(&r.key));
                match value {
                    Some(v) => String::from_utf8(v.clone()).map_err(|_| {
                        doc.error(
                            format!("{at}.valueFrom.{field}.key"),
                            format!("{kind} {} key {} is not text", r.name, r.key),
                        )
                    })?,
                    None if r.optional.unwrap_or(false) => continue,
                    None => {
                        let what = if data.is_some() {
                            format!("{kind} {} has no key {}", r.name, r.key)
                        } else {
                            format!("names {kind} {}, which the file does not define", r.name)
                        };
                        return Err(doc.error(format!("{at}.valueFrom.{field}"), what));
                    }
                }
            }
        };
        env.insert(e.name.clone(), value);
    }
    Ok(env)
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The healthcheck: the readiness probe, else the liveness probe, else the
/// startup probe; the others are named and skipped.
fn probes(
    cx: &mut Cx<'_>,
    doc: &Doc,
    c: &types::Container,
    path: &str,
) -> Result<Option<Healthcheck>, PlayError> {
    let all = [
        ("readinessProbe", &c.readiness_probe),
        ("livenessProbe", &c.liveness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    let mut chosen: Option<Healthcheck> = None;
    for (field, probe) in all {
        let Some(p) = probe else { continue };
        let at = format!("{path}.{field}");
        if chosen.is_some() {
            cx.warnings.push(doc.warning(format!(
                "{at}: one probe becomes the healthcheck (readiness, else liveness, else startup); skipped"
            )));
            continue;
        }
        let cmd = match (&p.exec, &p.http_get) {
            (Some(e), None) => {
                if e.command.is_empty() {
                    return Err(doc.error(format!("{at}.exec.command"), "is empty"));
                }
                std::iter::once("CMD".to_string())
                    .chain(e.command.iter().cloned())
                    .collect::<Vec<_>>()
            }
            (None, Some(h)) => {
                let port = match &h.port {
                    IntOrString::Int(n) => *n,
                    IntOrString::String(name) => named_port(c, name).ok_or_else(|| {
                        doc.error(
                            format!("{at}.httpGet.port"),
                            format!("names port {name}, which the container does not declare"),
                        )
                    })?,
                };
                let mut target = h.path.clone().unwrap_or_else(|| "/".to_string());
                if !target.starts_with('/') {
                    target.insert(0, '/');
                }
                vec![
                    "CMD".to_string(),
                    "wget".to_string(),
                    "-q".to_string(),
                    "-O".to_string(),
                    "/dev/null".to_string(),
                    format!("http://127.0.0.1:{port}{target}"),
                ]
            }
            (None, None) => {
                cx.warnings.push(doc.warning(format!(
                    "{at}: only exec and httpGet probes are supported (tcpSocket and grpc are not); skipped"
                )));
                continue;
            }
            (Some(_), Some(_)) => {
                return Err(doc.error(at, "has both exec and httpGet"));
            }
        };
        let secs = |s: Option<u32>, default: u32| {
            values::format_duration(std::time::Duration::from_secs(u64::from(
                s.unwrap_or(default),
            )))
        };
        chosen = Some(Healthcheck {
            cmd,
            interval: Some(secs(p.period_seconds, 10)),
            timeout: Some(secs(p.timeout_seconds, 1)),
            retries: Some(i64::from(p.failure_threshold.unwrap_or(3))),
            start_period: Some(secs(p.initial_delay_seconds, 0)),
        });
    }
    Ok(chosen)
}

fn named_port(c: &types::Container, name: &str) -> Option<u16> {
    c.ports
        .iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
}

/// `resources.limits` of memory and cpu; requests are named and skipped.
fn resources(
    cx: &mut Cx<'_>,
    doc: &Doc,
    c: &types::Container,
    path: &str,
) -> Result<normal::Resources, PlayError> {
    let mut out = normal::Resources::default();
    let Some(r) = &c.resources else {
        return Ok(out);
    };
    for (k, v) in &r.limits {
        let at = format!("{path}.resources.limits.{k}");
        let text = match v {
            serde_yaml_ng::Value::String(s) => s.clone(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            _ => return Err(doc.error(at, "is not a quantity")),
        };
        match k.as_str() {
            "memory" => {
                let bytes = quantity(&text).filter(|b| *b >= 1.0).ok_or_else(|| {
                    doc.error(
                        &at,
                        format!("`{text}` is not a memory quantity (e.g. 128Mi)"),
                    )
                })?;
                // Whole bytes; a fraction of a byte is meaningless.
                out.memory = Some(bytes as u64);
            }
            "cpu" => {
                let cpus = quantity(&text).filter(|c| *c > 0.0).ok_or_else(|| {
                    doc.error(&at, format!("`{text}` is not a cpu quantity (e.g. 500m)"))
                })?;
                out.cpus = Some(cpus);
            }
            _ => cx
                .warnings
                .push(doc.warning(format!("{at} is not supported; skipped"))),
        }
    }
    if !r.requests.is_empty() {
        cx.warnings.push(doc.warning(format!(
            "{path}.resources.requests is not supported (only limits are); skipped"
        )));
    }
    Ok(out)
}

/// A Kubernetes quantity: `128Mi`, `1G`, `500m`, `0.5`, `1e3`.
pub fn quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (num, factor) = suffixes
        .iter()
        .find_map(|(s, f)| t.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((t, 1.0));
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * factor)
}

/// A Service: its name becomes an alias of the containers it selects; with
/// `--publish`, its ports are published on the host.
fn service(
    cx: &mut Cx<'_>,
    doc: &Doc,
    s: &types::Service,
    workloads: &[Workload<'_>],
    containers: &mut BTreeMap<String, normal::Container>,
) -> Result<(), PlayError> {
    check_name(doc, "metadata.name", &doc.name)?;
    match s.spec.kind.as_deref() {
        None | Some("ClusterIP") | Some("NodePort") | Some("LoadBalancer") => {}
        Some(other) => {
            cx.warnings.push(doc.warning(format!(
                "spec.type {other} is not supported; the service is skipped"
            )));
            return Ok(());
        }
    }
    if let Some(ip) = &s.spec.cluster_ip
        && ip != "None"
    {
        cx.warnings.push(doc.warning(format!(
            "spec.clusterIP {ip} is not supported (the name resolves to the containers' addresses); skipped"
        )));
    }
    let Some(selector) = s.spec.selector.as_ref().filter(|s| !s.is_empty()) else {
        cx.warnings.push(doc.warning(
            "spec.selector is missing: a Service without a selector is not supported; skipped",
        ));
        return Ok(());
    };
    let selected: Vec<&Workload<'_>> = workloads
        .iter()
        .filter(|w| selector.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
        .collect();
    if selected.is_empty() {
        let wanted: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Err(doc.error(
            "spec.selector",
            format!(
                "selects no Pod, Deployment or StatefulSet of the file (no pod has the labels {})",
                wanted.join(", ")
            ),
        ));
    }
    for (i, port) in s.spec.ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let proto = protocol(doc, &format!("{at}.protocol"), &port.protocol)?;
        for w in &selected {
            for key in &w.mains {
                let Some(c) = containers.get_mut(key) else {
                    continue;
                };
                let target = match &port.target_port {
                    None => port.port,
                    Some(IntOrString::Int(n)) => *n,
                    Some(IntOrString::String(name)) => {
                        let spec = w.spec.containers.iter().find_map(|k| named_port(k, name));
                        match spec {
                            Some(n) => n,
                            None => {
                                cx.warnings.push(doc.warning(format!(
                                    "{at}.targetPort names port {name}, which {key} does not declare; skipped for it"
                                )));
                                continue;
                            }
                        }
                    }
                };
                if target != port.port && !cx.options.publish {
                    cx.warnings.push(doc.warning(format!(
                        "{at}: port {} reaches {key} at its port {target} by name (no port mapping inside the network)",
                        port.port
                    )));
                }
                if !cx.options.publish {
                    continue;
                }
                if w.replicas > 1 {
                    cx.warnings.push(doc.warning(format!(
                        "{at}: --publish cannot publish port {} of {key}: it has {} replicas; skipped",
                        port.port, w.replicas
                    )));
                    continue;
                }
                let exists = c
                    .ports
                    .iter()
                    .any(|p| p.published == Some(port.port) && p.protocol == proto);
                if !exists {
                    c.ports.push(Port {
                        target,
                        published: Some(port.port),
                        host_ip: None,
                        protocol: proto,
                        published_end: None,
                    });
                }
            }
        }
    }
    for w in &selected {
        for key in &w.mains {
            if let Some(n) = containers
                .get_mut(key)
                .and_then(|c| c.networks.get_mut(NETWORK))
            {
                n.aliases.push(doc.name.clone());
            }
        }
    }
    Ok(())
}
