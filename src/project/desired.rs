//! From the normalised project to the desired state the engine receives
//! ([`servin_proto::DesiredProject`]).
//!
//! Each container's config hash is computed over [`projection`]: an explicit
//! list of its fields at [`PROJECTION_VERSION`], written here field by field
//! (never by serialising [`normal::Container`], so a change of servin's
//! types does not change any hash). Left out, because they do not change the
//! container itself: `replicas`, `depends_on`, `profiles`, and an image's
//! build inputs (which reach the container through its image digest, a label
//! of its own). The labels written (see [`servin_proto::labels`]) are enough
//! to plan against and to take the project down without its file.
//!
//! The fields only `servin run` sets (see [`normal`]) enter the projection
//! only when set, under names of their own, so no project's hash changes.
//! A container's create body comes from [`container_body`], the builder
//! `servin run` uses too, once the project's names are put in.

use std::collections::{BTreeMap, HashMap};

use bollard_stubs::models::{
    ContainerCreateBody, Ipam, IpamConfig, NetworkCreateRequest, VolumeCreateRequest,
};
use serde_json::{Value, json};
use servin_proto::projection::PROJECTION_VERSION;
use servin_proto::{
    Condition, Dependency, DesiredContainer, DesiredNetwork, DesiredProject, DesiredVolume,
    Projection, labels,
};

use super::container_body::{CliForms, container_body};
use super::normal::{self, MountKind, WorkspaceMode};

/// The servin version written in every object's `servin.version` label.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where a container finds a file secret.
pub const SECRETS_DIR: &str = "/run/secrets";

/// What the desired state needs beyond the project.
#[derive(Debug, Clone, Default)]
pub struct DesiredOptions {
    /// The active profiles: a container with profiles runs only when one of
    /// them is active; a container without profiles always runs.
    pub profiles: Vec<String>,
    /// Image reference to its locked or resolved digest (`sha256:...`).
    pub image_digests: BTreeMap<String, String>,
    /// The project file's absolute path, written in each container's
    /// [`labels::PROJECT_FILE`] label (not in its config hash).
    pub project_file: Option<std::path::PathBuf>,
}

/// A value of the normalised project that cannot be turned into the
/// desired state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container {container}: {field}: {message}")]
pub struct DesiredError {
    /// The container's key.
    pub container: String,
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The desired state of `project`.
pub fn desired(
    project: &normal::Project,
    options: &DesiredOptions,
) -> Result<DesiredProject, DesiredError> {
    let name = &project.project.name;
    let networks = project
        .networks
        .iter()
        .map(|(key, n)| desired_network(name, key, n))
        .collect();
    let volumes = project
        .volumes
        .iter()
        .map(|(key, v)| desired_volume(name, key, v))
        .collect();
    let mut containers = Vec::new();
    for (service, c) in &project.containers {
        let active =
            c.profiles.is_empty() || c.profiles.iter().any(|p| options.profiles.contains(p));
        if !active {
            continue;
        }
        let projection = projection(project, service, c)?;
        let image = image_reference(project, &c.image);
        let digest = options.image_digests.get(&image).cloned();
        let built = project
            .images
            .get(&c.image)
            .is_some_and(|i| i.build.is_some());
        let depends_on: Vec<Dependency> = c
            .depends_on
            .iter()
            .map(|(s, cond)| Dependency {
                service: s.clone(),
                condition: condition(*cond),
            })
            .collect();
        for replica in 1..=c.replicas {
            let mut body = create_body(project, service, c, &image)?;
            if let Some(d) = &digest {
                body.image = Some(if built {
                    // A built image runs by its ID: what `up` just built.
                    d.clone()
                } else {
                    // A locked image runs by digest, whatever its tag names now.
                    super::lock::pinned(&image, d)
                });
            }
            let mut l: HashMap<String, String> = c.labels.clone().into_iter().collect();
            l.insert(labels::PROJECT.into(), name.clone());
            l.insert(labels::NAME.into(), service.clone());
            l.insert(labels::REPLICA.into(), replica.to_string());
            l.insert(labels::CONFIG_HASH.into(), projection.hash());
            l.insert(labels::FIELDS.into(), projection.field_digests().to_label());
            l.insert(
                labels::DEPENDS_ON.into(),
                labels::format_dependencies(&depends_on),
            );
            if let Some(d) = &digest {
                l.insert(labels::IMAGE_DIGEST.into(), d.clone());
            }
            l.insert(labels::VERSION.into(), VERSION.into());
            if let Some(f) = &options.project_file {
                l.insert(labels::PROJECT_FILE.into(), f.display().to_string());
            }
            body.labels = Some(l);
            containers.push(DesiredContainer {
                service: service.clone(),
                replica,
                name: labels::container_name(name, service, replica),
                image: image.clone(),
                image_digest: digest.clone(),
                depends_on: depends_on.clone(),
                config_hash: projection.hash(),
                projection: projection.clone(),
                body,
            });
        }
    }
    Ok(DesiredProject {
        name: name.clone(),
        networks,
        volumes,
        containers,
        pending_images: Vec::new(),
    })
}

/// The image reference container images name: an `[images]` entry's `ref`;
/// for a built entry, the local name `{project}-{key}`; otherwise the
/// (already normalised) reference itself.
pub fn image_reference(project: &normal::Project, image: &str) -> String {
    match project.images.get(image) {
        Some(normal::Image {
            reference: Some(r), ..
        }) => r.clone(),
        Some(_) => format!("{}-{image}", project.project.name),
        None => image.to_string(),
    }
}

fn condition(c: normal::Condition) -> Condition {
    match c {
        normal::Condition::Started => Condition::Started,
        normal::Condition::Healthy => Condition::Healthy,
        normal::Condition::Completed => Condition::Completed,
    }
}

fn opt<T: serde::Serialize>(v: &Option<T>) -> Value {
    v.as_ref().map_or(Value::Null, |v| json!(v))
}

/// Adds `key` to object `v` only when `value` is set: how a field only
/// `servin run` sets enters the projection without changing other hashes.
fn set_if<T: serde::Serialize>(v: &mut Value, key: &str, value: &Option<T>) {
    if let (Some(value), Value::Object(map)) = (value, v) {
        map.insert(key.to_string(), json!(value));
    }
}

/// The canonical projection of container `name` at [`PROJECTION_VERSION`].
pub fn projection(
    project: &normal::Project,
    name: &str,
    c: &normal::Container,
) -> Result<Projection, DesiredError> {
    let mut p = Projection::new(PROJECTION_VERSION);
    p.set("image", json!(image_reference(project, &c.image)));
    p.set("command", opt(&c.command));
    p.set("entrypoint", opt(&c.entrypoint));
    p.set("env", json!(c.env));
    p.set("workdir", opt(&c.workdir));
    p.set("user", opt(&c.user));
    p.set("hostname", json!(c.hostname));
    let ports: Vec<Value> = c
        .ports
        .iter()
        .map(|port| {
            let mut v = json!({
                "target": port.target,
                "published": opt(&port.published),
                "host_ip": opt(&port.host_ip),
                "protocol": port.protocol.as_str(),
            });
            set_if(&mut v, "published_end", &port.published_end);
            v
        })
        .collect();
    p.set("ports", Value::Array(ports));
    let mounts: Vec<Value> = c
        .volumes
        .iter()
        .map(|m| {
            let mut v = json!({
                "type": mount_kind(m.kind),
                "source": opt(&m.source),
                "target": m.target,
                "read_only": m.read_only,
                "size": opt(&m.size),
                "mode": opt(&m.mode),
            });
            set_if(&mut v, "no_copy", &m.no_copy);
            v
        })
        .collect();
    p.set("volumes", Value::Array(mounts));
    let networks: serde_json::Map<String, Value> = c
        .networks
        .iter()
        .map(|(n, cn)| {
            let mut v = json!({ "aliases": cn.aliases });
            set_if(&mut v, "ipv4_address", &cn.ipv4_address);
            (n.clone(), v)
        })
        .collect();
    p.set("networks", Value::Object(networks));
    p.set(
        "healthcheck",
        c.healthcheck.as_ref().map_or(Value::Null, |h| {
            json!({
                "cmd": h.cmd,
                "interval": h.interval,
                "timeout": h.timeout,
                "retries": h.retries,
                "start_period": h.start_period,
            })
        }),
    );
    p.set("restart", json!(c.restart));
    let mut resources = json!({
        "memory": opt(&c.resources.memory),
        "cpus": opt(&c.resources.cpus),
        "pids": opt(&c.resources.pids),
    });
    set_if(&mut resources, "memory_swap", &c.resources.memory_swap);
    p.set("resources", resources);
    p.set("init", json!(c.init));
    p.set("stop_signal", json!(c.stop_signal));
    p.set("stop_timeout", json!(c.stop_timeout));
    p.set("labels", json!(c.labels));
    p.set("tty", json!(c.tty));
    let mut secrets = serde_json::Map::new();
    for s in &c.secrets {
        let secret = project.secrets.get(s).ok_or_else(|| DesiredError {
            container: name.to_string(),
            field: "secrets",
            message: format!("secret {s} is not defined in [secrets]"),
        })?;
        secrets.insert(
            s.clone(),
            json!({ "file": opt(&secret.file), "environment": opt(&secret.environment) }),
        );
    }
    p.set("secrets", Value::Object(secrets));
    p.set("cap_add", json!(c.cap_add));
    p.set("cap_drop", json!(c.cap_drop));
    p.set("privileged", json!(c.privileged));
    p.set("read_only", json!(c.read_only));
    p.set("extra_hosts", json!(c.extra_hosts));
    p.set("sysctls", json!(c.sysctls));
    let ulimits: serde_json::Map<String, Value> = c
        .ulimits
        .iter()
        .map(|(n, u)| (n.clone(), json!({ "soft": u.soft, "hard": u.hard })))
        .collect();
    p.set("ulimits", Value::Object(ulimits));
    p.set("shm_size", json!(c.shm_size));
    p.set("expose", json!(c.expose));
    if let Some(v) = c.stdin_open {
        p.set("stdin_open", json!(v));
    }
    if let Some(v) = c.publish_all {
        p.set("publish_all", json!(v));
    }
    if let Some(v) = &c.network_mode {
        p.set("network_mode", json!(v));
    }
    if !c.security_opt.is_empty() {
        p.set("security_opt", json!(c.security_opt));
    }
    if !c.log_options.is_empty() {
        p.set("log_options", json!(c.log_options));
    }
    // The ignore rules and the follow-up of a workspace concern the sync,
    // not the container.
    p.set(
        "workspace",
        c.workspace.as_ref().map_or(Value::Null, |w| {
            json!({
                "source": w.source,
                "target": w.target,
                "mode": workspace_mode(w.mode),
            })
        }),
    );
    Ok(p)
}

fn mount_kind(k: MountKind) -> &'static str {
    match k {
        MountKind::Volume => "volume",
        MountKind::Bind => "bind",
        MountKind::Tmpfs => "tmpfs",
    }
}

fn workspace_mode(m: WorkspaceMode) -> &'static str {
    match m {
        WorkspaceMode::Bind => "bind",
        WorkspaceMode::Sync => "sync",
    }
}

/// The engine name of a project volume or network: `{project}_{key}`, or
/// the key itself for an external one.
fn engine_name(project: &str, key: &str, external: bool) -> String {
    if external {
        key.to_string()
    } else {
        labels::object_name(project, key)
    }
}

fn object_labels(
    project: &str,
    key: &str,
    user: &BTreeMap<String, String>,
    p: &Projection,
) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = user.clone().into_iter().collect();
    l.insert(labels::PROJECT.into(), project.into());
    l.insert(labels::NAME.into(), key.into());
    l.insert(labels::CONFIG_HASH.into(), p.hash());
    l.insert(labels::VERSION.into(), VERSION.into());
    l
}

fn desired_network(project: &str, key: &str, n: &normal::Network) -> DesiredNetwork {
    let mut p = Projection::new(PROJECTION_VERSION);
    p.set("subnet", opt(&n.subnet));
    p.set("gateway", opt(&n.gateway));
    p.set("internal", json!(n.internal));
    p.set("labels", json!(n.labels));
    let ipam = (n.subnet.is_some() || n.gateway.is_some()).then(|| Ipam {
        config: Some(vec![IpamConfig {
            subnet: n.subnet.clone(),
            gateway: n.gateway.clone(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    DesiredNetwork {
        name: key.to_string(),
        external: false,
        create: NetworkCreateRequest {
            name: labels::object_name(project, key),
            driver: Some("bridge".into()),
            internal: Some(n.internal),
            ipam,
            labels: Some(object_labels(project, key, &n.labels, &p)),
            ..Default::default()
        },
    }
}

fn desired_volume(project: &str, key: &str, v: &normal::Volume) -> DesiredVolume {
    let mut p = Projection::new(PROJECTION_VERSION);
    p.set("labels", json!(v.labels));
    DesiredVolume {
        name: key.to_string(),
        external: v.external,
        create: VolumeCreateRequest {
            name: Some(engine_name(project, key, v.external)),
            driver: Some("local".into()),
            labels: Some(object_labels(project, key, &v.labels, &p)),
            ..Default::default()
        },
    }
}

/// Docker's create body for container `name` of `project` (without the
/// servin labels, which [`desired`] adds): the container with the
/// project's names put in, through the one [`container_body`] builder.
fn create_body(
    project: &normal::Project,
    name: &str,
    c: &normal::Container,
    image: &str,
) -> Result<ContainerCreateBody, DesiredError> {
    let pname = &project.project.name;
    let mut c = c.clone();
    for m in &mut c.volumes {
        if m.kind == MountKind::Volume
            && let Some(s) = &m.source
        {
            let external = project.volumes.get(s).is_none_or(|v| v.external);
            m.source = Some(engine_name(pname, s, external));
        }
    }
    // A file secret is a read-only bind; after the volumes and before the
    // workspace, which the builder adds last.
    for s in &c.secrets {
        if let Some(file) = project.secrets.get(s).and_then(|s| s.file.clone()) {
            c.volumes.push(normal::Mount {
                kind: MountKind::Bind,
                source: Some(file),
                target: format!("{SECRETS_DIR}/{s}"),
                read_only: Some(true),
                size: None,
                mode: None,
                no_copy: None,
                create_source: None,
            });
        }
    }
    // A synced workspace is the container's own volume, filled by the
    // sync before the container starts: never seeded from the image.
    if let Some(w) = &c.workspace
        && w.mode == WorkspaceMode::Sync
    {
        c.volumes.push(normal::Mount {
            kind: MountKind::Volume,
            source: Some(crate::sync::volume_name(pname, name)),
            target: w.target.clone(),
            read_only: Some(false),
            size: None,
            mode: None,
            no_copy: Some(true),
            create_source: None,
        });
    }
    // A project container answers to its service name on every network.
    c.networks = c
        .networks
        .iter()
        .map(|(n, cn)| {
            let mut aliases = vec![name.to_string()];
            aliases.extend(cn.aliases.iter().filter(|a| *a != name).cloned());
            let cn = normal::ContainerNetwork {
                aliases,
                ipv4_address: cn.ipv4_address.clone(),
            };
            (labels::object_name(pname, n), cn)
        })
        .collect();
    // A project's `shm_size = 0` has always left Docker's default by
    // sending nothing; `servin run --shm-size 0` sends the 0 it was given.
    c.shm_size = c.shm_size.filter(|s| *s > 0);
    container_body(&c, image, &CliForms::default()).map_err(|e| DesiredError {
        container: name.to_string(),
        field: e.field,
        message: e.message,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bollard_stubs::models::{MountType, RestartPolicyNameEnum};

    use super::*;
    use crate::project::{LoadOptions, load_str};

    const SHOP: &str = r#"
[project]
name = "shop"

[images.db]
ref = "postgres:16"

[volumes.data]

[networks.back]
subnet = "10.90.0.0/24"

[containers.db]
image = "db"
env = { POSTGRES_PASSWORD = "dev", POSTGRES_DB = "shop" }
volumes = ["data:/var/lib/postgresql/data"]
networks = ["back"]
healthcheck = { cmd = "pg_isready", interval = "2s" }

[containers.web]
image = "nginx:1.27"
command = ["nginx", "-g", "daemon off;"]
ports = ["80"]
tmpfs = ["/cache"]
networks = { back = { aliases = ["www"] } }
depends_on = { db = "healthy" }
restart = "on-failure:3"
resources = { memory = "64m", cpus = 0.5 }
labels = { tier = "front" }
replicas = 2
"#;

    fn load(text: &str) -> normal::Project {
        let dir = tempfile::tempdir().unwrap();
        load_str(
            &dir.path().join("servin.toml"),
            text,
            &LoadOptions::default(),
        )
        .map_err(|f| f.to_string())
        .unwrap()
        .project
    }

    fn hash_of(p: &normal::Project, service: &str) -> String {
        projection(p, service, &p.containers[service])
            .unwrap()
            .hash()
    }

    #[test]
    fn a_synced_workspace_is_a_volume_of_its_own_never_seeded() {
        let text = r#"[project]
name = "shop"

[containers.web]
image = "busybox"
user = "1000:50"
workspace = { source = ".", target = "/app", mode = "sync", uid = 7, on_change = { exec = ["make", "-j"] } }
"#;
        let p = load(text);
        let d = desired(&p, &DesiredOptions::default()).unwrap();
        let mounts = d.containers[0]
            .body
            .host_config
            .as_ref()
            .unwrap()
            .mounts
            .clone()
            .unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[0].source.as_deref(), Some("shop_web-workspace"));
        assert_eq!(mounts[0].target.as_deref(), Some("/app"));
        assert_eq!(
            mounts[0].volume_options.as_ref().and_then(|o| o.no_copy),
            Some(true)
        );
        let web = &p.containers["web"];
        let w = web.workspace.as_ref().unwrap();
        assert_eq!(
            w.on_change,
            normal::OnChange::Exec {
                exec: vec!["make".into(), "-j".into()]
            }
        );
        // `uid` given, the group from the numeric user.
        assert_eq!(crate::sync::owner(web, w), (7, 50));
    }

    #[test]
    fn the_projection_of_a_container() {
        let p = load(SHOP);
        let web = projection(&p, "web", &p.containers["web"]).unwrap();
        insta::assert_snapshot!(web.canonical());
    }

    #[test]
    fn the_hash_follows_env_but_not_replicas_depends_on_or_profiles() {
        let p = load(SHOP);
        let base = hash_of(&p, "web");

        let mut env = p.clone();
        env.containers
            .get_mut("web")
            .unwrap()
            .env
            .insert("DEBUG".into(), "1".into());
        assert_ne!(hash_of(&env, "web"), base);

        let mut other = p.clone();
        let web = other.containers.get_mut("web").unwrap();
        web.replicas = 5;
        web.depends_on.clear();
        web.profiles = vec!["debug".into()];
        assert_eq!(hash_of(&other, "web"), base);
    }

    #[test]
    fn build_inputs_do_not_enter_the_hash() {
        let text = "[project]\nname = \"b\"\n[images.app]\nbuild = \".\"\n[containers.app]\nimage = \"app\"\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let p = load_str(
            &dir.path().join("servin.toml"),
            text,
            &LoadOptions::default(),
        )
        .map_err(|f| f.to_string())
        .unwrap()
        .project;
        let base = hash_of(&p, "app");
        let mut changed = p.clone();
        let build = changed
            .images
            .get_mut("app")
            .unwrap()
            .build
            .as_mut()
            .unwrap();
        build.args.insert("V".into(), "2".into());
        build.target = Some("dev".into());
        assert_eq!(hash_of(&changed, "app"), base);
        assert_eq!(image_reference(&p, "app"), "b-app");
    }

    #[test]
    fn the_project_file_is_a_label_outside_the_hash() {
        let p = load(SHOP);
        let at = |f: &str| {
            desired(
                &p,
                &DesiredOptions {
                    project_file: Some(f.into()),
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let (here, moved) = (at("/src/shop/servin.toml"), at("/elsewhere/servin.toml"));
        let none = desired(&p, &DesiredOptions::default()).unwrap();
        for ((a, b), c) in here
            .containers
            .iter()
            .zip(&moved.containers)
            .zip(&none.containers)
        {
            assert_eq!(a.config_hash, b.config_hash);
            assert_eq!(a.config_hash, c.config_hash);
            assert_eq!(a.projection, c.projection);
            let l = a.body.labels.as_ref().unwrap();
            assert_eq!(l[labels::PROJECT_FILE], "/src/shop/servin.toml");
            let l = c.body.labels.as_ref().unwrap();
            assert!(!l.contains_key(labels::PROJECT_FILE));
        }
    }

    #[test]
    fn replicas_give_numbered_containers_with_their_labels() {
        let p = load(SHOP);
        let mut digests = BTreeMap::new();
        digests.insert(
            "docker.io/library/nginx:1.27".to_string(),
            "sha256:abcd".to_string(),
        );
        let d = desired(
            &p,
            &DesiredOptions {
                image_digests: digests,
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<&str> = d.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["shop-db-1", "shop-web-1", "shop-web-2"]);
        let web2 = &d.containers[2];
        assert_eq!((web2.service.as_str(), web2.replica), ("web", 2));
        assert_eq!(web2.config_hash, d.containers[1].config_hash);
        assert_eq!(web2.config_hash, web2.projection.hash());
        assert_eq!(web2.image_digest.as_deref(), Some("sha256:abcd"));
        assert_eq!(
            web2.body.image.as_deref(),
            Some("docker.io/library/nginx@sha256:abcd")
        );
        let l = web2.body.labels.as_ref().unwrap();
        assert_eq!(l[labels::PROJECT], "shop");
        assert_eq!(l[labels::NAME], "web");
        assert_eq!(l[labels::REPLICA], "2");
        assert_eq!(l[labels::CONFIG_HASH], web2.config_hash);
        assert_eq!(
            servin_proto::FieldDigests::parse_label(&l[labels::FIELDS]).unwrap(),
            web2.projection.field_digests()
        );
        assert_eq!(l[labels::DEPENDS_ON], "db:healthy");
        assert_eq!(l[labels::IMAGE_DIGEST], "sha256:abcd");
        assert_eq!(l[labels::VERSION], VERSION);
        assert_eq!(l["tier"], "front");
        assert!(
            !d.containers[0]
                .body
                .labels
                .as_ref()
                .unwrap()
                .contains_key(labels::IMAGE_DIGEST)
        );
        assert_eq!(
            web2.depends_on,
            vec![Dependency {
                service: "db".into(),
                condition: Condition::Healthy
            }]
        );
    }

    #[test]
    fn the_create_body_uses_the_project_names() {
        let p = load(SHOP);
        let d = desired(&p, &DesiredOptions::default()).unwrap();
        let db = &d.containers[0].body;
        assert_eq!(db.image.as_deref(), Some("docker.io/library/postgres:16"));
        let hc = db.host_config.as_ref().unwrap();
        let mount = &hc.mounts.as_ref().unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("shop_data"));
        assert_eq!(mount.typ, Some(MountType::VOLUME));
        assert_eq!(hc.network_mode.as_deref(), Some("shop_back"));
        assert_eq!(
            db.healthcheck.as_ref().unwrap().interval,
            Some(2_000_000_000)
        );
        let mut env = db.env.clone().unwrap();
        env.sort();
        assert_eq!(env, vec!["POSTGRES_DB=shop", "POSTGRES_PASSWORD=dev"]);

        let web = &d.containers[1].body;
        let hc = web.host_config.as_ref().unwrap();
        let binding = &hc.port_bindings.as_ref().unwrap()["80/tcp"]
            .as_ref()
            .unwrap()[0];
        assert_eq!(binding.host_port, None);
        assert_eq!(
            web.exposed_ports.as_deref(),
            Some(&["80/tcp".to_string()][..])
        );
        assert_eq!(hc.memory, Some(64 * 1024 * 1024));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        let policy = hc.restart_policy.as_ref().unwrap();
        assert_eq!(policy.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(policy.maximum_retry_count, Some(3));
        let tmpfs = hc
            .mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.typ == Some(MountType::TMPFS));
        assert_eq!(tmpfs.unwrap().target.as_deref(), Some("/cache"));
        let endpoints = web
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap();
        assert_eq!(
            endpoints["shop_back"].aliases,
            Some(vec!["web".into(), "www".into()])
        );

        assert_eq!(d.volumes[0].create.name.as_deref(), Some("shop_data"));
        assert_eq!(d.networks[0].create.name, "shop_back");
        let ipam = d.networks[0].create.ipam.as_ref().unwrap();
        assert_eq!(
            ipam.config.as_ref().unwrap()[0].subnet.as_deref(),
            Some("10.90.0.0/24")
        );
        assert_eq!(
            d.networks[0].create.labels.as_ref().unwrap()[labels::PROJECT],
            "shop"
        );
    }

    #[test]
    fn the_desired_state_survives_the_wire() {
        let p = load(SHOP);
        let d = desired(&p, &DesiredOptions::default()).unwrap();
        let back: DesiredProject =
            serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        for c in &back.containers {
            assert_eq!(c.projection.hash(), c.config_hash, "{}", c.name);
        }
    }

    #[test]
    fn containers_of_inactive_profiles_are_left_out() {
        let mut p = load(SHOP);
        p.containers.get_mut("web").unwrap().profiles = vec!["front".into()];
        let names = |o: &DesiredOptions| -> Vec<String> {
            desired(&p, o)
                .unwrap()
                .containers
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(names(&DesiredOptions::default()), vec!["shop-db-1"]);
        let on = DesiredOptions {
            profiles: vec!["front".into()],
            ..Default::default()
        };
        assert_eq!(names(&on).len(), 3);
    }

    #[test]
    fn an_undefined_secret_is_an_error_naming_the_container() {
        let mut p = load(SHOP);
        p.containers.get_mut("web").unwrap().secrets = vec!["nope".into()];
        let e = desired(&p, &DesiredOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "container web: secrets: secret nope is not defined in [secrets]"
        );
    }

    #[test]
    fn a_tmpfs_mode_goes_as_permission_bits() {
        let p = load(
            "[project]\nname = \"m\"\n[containers.app]\nimage = \"busybox:1\"\nvolumes = [{ type = \"tmpfs\", target = \"/t\", mode = 1777 }]\n",
        );
        let d = desired(&p, &DesiredOptions::default()).unwrap();
        let hc = d.containers[0].body.host_config.as_ref().unwrap();
        let tmpfs = hc.mounts.as_ref().unwrap()[0]
            .tmpfs_options
            .clone()
            .unwrap();
        assert_eq!(tmpfs.mode, Some(0o1777), "the digits 1777 are octal");
    }
}
