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

use std::collections::{BTreeMap, HashMap};

use bollard_stubs::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Ipam, IpamConfig, Mount,
    MountTmpfsOptions, MountType, NetworkCreateRequest, NetworkingConfig, PortBinding,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use serde_json::{Value, json};
use servin_proto::projection::PROJECTION_VERSION;
use servin_proto::{
    Condition, Dependency, DesiredContainer, DesiredNetwork, DesiredProject, DesiredVolume,
    Projection, labels,
};

use super::normal::{self, MountKind, WorkspaceMode};
use super::values::{duration, misc};

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
                // A locked image runs by digest, whatever its tag names now.
                body.image = Some(super::lock::pinned(&image, d));
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
            json!({
                "target": port.target,
                "published": opt(&port.published),
                "host_ip": opt(&port.host_ip),
                "protocol": port.protocol.as_str(),
            })
        })
        .collect();
    p.set("ports", Value::Array(ports));
    let mounts: Vec<Value> = c
        .volumes
        .iter()
        .map(|m| {
            json!({
                "type": mount_kind(m.kind),
                "source": opt(&m.source),
                "target": m.target,
                "read_only": m.read_only,
                "size": opt(&m.size),
                "mode": opt(&m.mode),
            })
        })
        .collect();
    p.set("volumes", Value::Array(mounts));
    let networks: serde_json::Map<String, Value> = c
        .networks
        .iter()
        .map(|(n, cn)| (n.clone(), json!({ "aliases": cn.aliases })))
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
    p.set(
        "resources",
        json!({
            "memory": opt(&c.resources.memory),
            "cpus": opt(&c.resources.cpus),
            "pids": opt(&c.resources.pids),
        }),
    );
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

fn nanos(container: &str, field: &'static str, value: &str) -> Result<i64, DesiredError> {
    let d = duration::parse_duration(value).map_err(|message| DesiredError {
        container: container.to_string(),
        field,
        message,
    })?;
    i64::try_from(d.as_nanos()).map_err(|_| DesiredError {
        container: container.to_string(),
        field,
        message: format!("{value} is too long"),
    })
}

fn port_key(target: u16, protocol: &str) -> String {
    format!("{target}/{protocol}")
}

/// Docker's restart policy for a parsed one; `servin run --restart` and a
/// project's `restart` both go through here.
pub fn restart_policy(policy: misc::RestartPolicy) -> RestartPolicy {
    let (name, retries) = match policy {
        misc::RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
        misc::RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
        misc::RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        misc::RestartPolicy::OnFailure { max_retries } => (
            RestartPolicyNameEnum::ON_FAILURE,
            max_retries.map(i64::from),
        ),
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    }
}

/// Docker's create body for container `name` (without the servin labels,
/// which [`desired`] adds).
fn create_body(
    project: &normal::Project,
    name: &str,
    c: &normal::Container,
    image: &str,
) -> Result<ContainerCreateBody, DesiredError> {
    let pname = &project.project.name;
    let fail = |field: &'static str, message: String| DesiredError {
        container: name.to_string(),
        field,
        message,
    };
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &c.ports {
        let key = port_key(port.target, port.protocol.as_str());
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: port.host_ip.clone(),
                host_port: port.published.map(|p| p.to_string()),
            });
    }
    for e in &c.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    let mut mounts = Vec::new();
    for m in &c.volumes {
        let (typ, source) = match m.kind {
            MountKind::Volume => {
                let source = m.source.as_deref().map(|s| {
                    let external = project.volumes.get(s).is_some_and(|v| v.external);
                    engine_name(pname, s, external || !project.volumes.contains_key(s))
                });
                (MountType::VOLUME, source)
            }
            MountKind::Bind => (MountType::BIND, m.source.clone()),
            MountKind::Tmpfs => (MountType::TMPFS, None),
        };
        let tmpfs = (m.kind == MountKind::Tmpfs).then(|| MountTmpfsOptions {
            size_bytes: m.size.and_then(|s| i64::try_from(s).ok()),
            mode: m.mode.map(i64::from),
            ..Default::default()
        });
        mounts.push(Mount {
            target: Some(m.target.clone()),
            source,
            typ: Some(typ),
            read_only: Some(m.read_only),
            tmpfs_options: tmpfs,
            ..Default::default()
        });
    }
    for s in &c.secrets {
        if let Some(file) = project.secrets.get(s).and_then(|s| s.file.clone()) {
            mounts.push(Mount {
                target: Some(format!("{SECRETS_DIR}/{s}")),
                source: Some(file),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    if let Some(w) = &c.workspace
        && w.mode == WorkspaceMode::Bind
    {
        mounts.push(Mount {
            target: Some(w.target.clone()),
            source: Some(w.source.clone()),
            typ: Some(MountType::BIND),
            read_only: Some(false),
            ..Default::default()
        });
    }
    let restart = misc::parse_restart(&c.restart).map_err(|e| fail("restart", e))?;
    let healthcheck = match &c.healthcheck {
        Some(h) => Some(HealthConfig {
            test: Some(h.cmd.clone()),
            interval: Some(nanos(name, "healthcheck.interval", &h.interval)?),
            timeout: Some(nanos(name, "healthcheck.timeout", &h.timeout)?),
            retries: Some(i64::from(h.retries)),
            start_period: Some(nanos(name, "healthcheck.start_period", &h.start_period)?),
            start_interval: None,
        }),
        None => None,
    };
    let stop_timeout = duration::parse_duration(&c.stop_timeout)
        .map_err(|e| fail("stop_timeout", e))?
        .as_secs();
    let stop_timeout = i64::try_from(stop_timeout)
        .map_err(|_| fail("stop_timeout", format!("{} is too long", c.stop_timeout)))?;
    let network_names: Vec<(String, &normal::ContainerNetwork)> = c
        .networks
        .iter()
        .map(|(n, cn)| (labels::object_name(pname, n), cn))
        .collect();
    let endpoints: HashMap<String, EndpointSettings> = network_names
        .iter()
        .map(|(n, cn)| {
            let mut aliases = vec![name.to_string()];
            aliases.extend(cn.aliases.iter().filter(|a| *a != name).cloned());
            (
                n.clone(),
                EndpointSettings {
                    aliases: Some(aliases),
                    ..Default::default()
                },
            )
        })
        .collect();
    let ulimits: Vec<ResourcesUlimits> = c
        .ulimits
        .iter()
        .map(|(n, u)| ResourcesUlimits {
            name: Some(n.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        })
        .collect();
    let host_config = HostConfig {
        mounts: (!mounts.is_empty()).then_some(mounts),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        memory: c.resources.memory.and_then(|m| i64::try_from(m).ok()),
        nano_cpus: c.resources.cpus.map(|n| (n * 1e9).round() as i64),
        pids_limit: c.resources.pids,
        init: Some(c.init),
        restart_policy: Some(restart_policy(restart)),
        cap_add: (!c.cap_add.is_empty()).then(|| c.cap_add.clone()),
        cap_drop: (!c.cap_drop.is_empty()).then(|| c.cap_drop.clone()),
        privileged: Some(c.privileged),
        readonly_rootfs: Some(c.read_only),
        extra_hosts: (!c.extra_hosts.is_empty()).then(|| {
            c.extra_hosts
                .iter()
                .map(|(h, ip)| format!("{h}:{ip}"))
                .collect()
        }),
        sysctls: (!c.sysctls.is_empty()).then(|| c.sysctls.clone().into_iter().collect()),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        shm_size: i64::try_from(c.shm_size).ok().filter(|s| *s > 0),
        network_mode: network_names.first().map(|(n, _)| n.clone()),
        ..Default::default()
    };
    let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(ContainerCreateBody {
        hostname: Some(c.hostname.clone()),
        user: c.user.clone(),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(c.tty),
        env: (!env.is_empty()).then_some(env),
        cmd: c.command.clone(),
        entrypoint: c.entrypoint.clone(),
        healthcheck,
        image: Some(image.to_string()),
        working_dir: c.workdir.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        stop_signal: Some(c.stop_signal.clone()),
        stop_timeout: Some(stop_timeout),
        host_config: Some(host_config),
        networking_config: (!endpoints.is_empty()).then_some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
}
