//! The project file as written: every key a `servin.toml` or `servin.kdl` may
//! hold, with its accepted shapes.
//!
//! These types are the single source of truth for the file format. The JSON
//! Schema in `schema/servin.schema.json` is generated from them (the doc comments
//! become the descriptions editors show on hover), and the structural check in
//! [`super::schema`] walks a document against that same schema, so the loader,
//! the schema and the editor can never disagree about which keys exist.
//!
//! Values here are still *as written* (strings for ports, durations, sizes, ...).
//! [`super::normalise`] turns them into the canonical [`super::normal`] form.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Servin project: the images, volumes, networks, secrets and containers of
/// one development environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Servin project file (servin.toml)")]
pub struct ProjectFile {
    /// Project-wide settings.
    pub project: Option<ProjectSection>,
    /// Images the containers run, by name. A container's `image` may name one
    /// of these or give a registry reference directly.
    pub images: Option<BTreeMap<String, ImageDef>>,
    /// Named volumes: storage that outlives containers, by name.
    pub volumes: Option<BTreeMap<String, VolumeDef>>,
    /// Networks, by name. Containers that name no network join the network
    /// `default`, which exists without being declared.
    pub networks: Option<BTreeMap<String, NetworkDef>>,
    /// Secrets, by name, mounted read-only at `/run/secrets/NAME` in the
    /// containers that list them.
    pub secrets: Option<BTreeMap<String, SecretDef>>,
    /// The containers of the project, by name. The name is a DNS label: the
    /// other containers reach this one by it.
    pub containers: Option<BTreeMap<String, ContainerDef>>,
}

/// Project-wide settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// The project's name, a DNS label. Default: the folder's name, made
    /// DNS-safe. `-p NAME` and `SERVIN_PROJECT_NAME` override it.
    pub name: Option<String>,
}

/// An image: a registry reference, or a build.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageDef {
    /// A registry reference, `registry/repository:tag` or
    /// `repository@sha256:DIGEST`, e.g. `postgres:16` or
    /// `ghcr.io/acme/api:1.4`. Exactly one of `ref` and `build`.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// Build the image from a Dockerfile: a context folder, or a table.
    /// Exactly one of `ref` and `build`.
    pub build: Option<BuildDef>,
    /// The platform to pull or build, `os/arch[/variant]`, e.g.
    /// `linux/arm64`. Default: the engine's own platform.
    pub platform: Option<String>,
}

/// How to build an image.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BuildDef {
    /// The build context folder, relative to the project file.
    Context(String),
    /// The build, in full.
    Full(BuildTable),
}

/// A build, in full.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildTable {
    /// The build context folder, relative to the project file.
    pub context: String,
    /// The Dockerfile, relative to the context. Default: `Dockerfile`.
    pub dockerfile: Option<String>,
    /// Build arguments (`ARG` values), as a table or a list of `K=V`.
    pub args: Option<KeyValues>,
    /// The stage of a multi-stage Dockerfile to build. Default: the last.
    pub target: Option<String>,
}

/// A named volume.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeDef {
    /// The volume exists already (made by another project, or by hand): use
    /// it, never create or remove it. Default: false.
    pub external: Option<bool>,
    /// Labels on the volume, as a table or a list of `K=V`.
    pub labels: Option<KeyValues>,
}

/// A network.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    /// The network's IPv4 subnet in CIDR form, e.g. `10.90.0.0/24`. Default:
    /// the next free /24 of the engine's pool.
    pub subnet: Option<String>,
    /// The gateway address, inside `subnet`. Default: the subnet's first
    /// address.
    pub gateway: Option<String>,
    /// No traffic leaves the network: containers on it reach each other only.
    /// Default: false.
    pub internal: Option<bool>,
    /// Labels on the network, as a table or a list of `K=V`.
    pub labels: Option<KeyValues>,
}

/// A secret: a file or an environment variable of the host, mounted read-only
/// at `/run/secrets/NAME`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretDef {
    /// A file holding the secret, relative to the project file. Exactly one of
    /// `file` and `environment`.
    pub file: Option<String>,
    /// An environment variable holding the secret. Exactly one of `file` and
    /// `environment`.
    pub environment: Option<String>,
}

/// A container.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerDef {
    /// The image to run: the name of an entry of `[images]`, or a registry
    /// reference such as `redis:7`. Required.
    pub image: Option<String>,
    /// The command, replacing the image's `CMD`: a string (split like a
    /// shell would, without running one) or a list.
    pub command: Option<Command>,
    /// The entrypoint, replacing the image's `ENTRYPOINT`: a string (split
    /// like a shell would) or a list. An empty list clears it.
    pub entrypoint: Option<Command>,
    /// Environment variables, as a table or a list of `K=V`. A bare `K` in
    /// the list takes the value from the environment `servin` runs in.
    pub env: Option<KeyValues>,
    /// Files of `K=V` lines (the `.env` format) added to the environment,
    /// relative to the project file. `env` wins over them.
    pub env_file: Option<StringOrList>,
    /// The working directory of the command, an absolute path. Created if
    /// missing. Default: the image's.
    pub workdir: Option<String>,
    /// The user the command runs as: `name`, `uid`, `name:group` or
    /// `uid:gid`. Default: the image's.
    pub user: Option<StringOrInt>,
    /// The container's hostname. Default: the container's name.
    pub hostname: Option<String>,
    /// Ports published on the host: `"8080:80"`, `"127.0.0.1:8080:80/udp"`,
    /// `"8000-8002:8000-8002"`, `"80"` (a free host port), or a table.
    pub ports: Option<Vec<PortDef>>,
    /// Mounts: `"name:/path[:ro]"` (a named volume), `"./rel:/path"` or
    /// `"/abs:/path"` (a bind mount), `"/path"` (an anonymous volume), or a
    /// table.
    pub volumes: Option<Vec<MountDef>>,
    /// In-memory filesystems: `"/path"` or `"/path:size=64m,mode=1777"`.
    pub tmpfs: Option<StringOrList>,
    /// The networks the container joins: a list of names, or a table of
    /// name to options. Default: `["default"]`.
    pub networks: Option<Networks>,
    /// Containers that must be up first: a list of names (condition
    /// `started`), or a table of name to condition.
    pub depends_on: Option<DependsOn>,
    /// How the engine tells that the container is healthy.
    pub healthcheck: Option<HealthcheckDef>,
    /// Restart policy: `no`, `on-failure`, `on-failure:N` (at most N
    /// restarts), `always` or `unless-stopped`. Default: `no`.
    pub restart: Option<String>,
    /// Resource limits.
    pub resources: Option<ResourcesDef>,
    /// Run a small init as PID 1 that forwards signals and reaps zombies.
    /// Default: true.
    pub init: Option<bool>,
    /// The signal that asks the container to stop, e.g. `SIGINT`. Default:
    /// `SIGTERM`.
    pub stop_signal: Option<StringOrInt>,
    /// How long to wait after `stop_signal` before killing, a duration such
    /// as `10s`. Default: `10s`.
    pub stop_timeout: Option<String>,
    /// Labels on the container, as a table or a list of `K=V`.
    pub labels: Option<KeyValues>,
    /// Give the container a terminal. Default: false.
    pub tty: Option<bool>,
    /// Profiles the container belongs to. A container with profiles starts
    /// only when one of them is enabled; one without always starts.
    pub profiles: Option<Vec<String>>,
    /// How many copies to run, all behind the container's name. Default: 1.
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<u32>,
    /// Names of `[secrets]` entries to mount at `/run/secrets/NAME`.
    pub secrets: Option<Vec<String>>,
    /// Linux capabilities to add to Docker's default set, e.g. `NET_ADMIN`,
    /// or `ALL`.
    pub cap_add: Option<Vec<String>>,
    /// Linux capabilities to drop from Docker's default set, or `ALL`.
    pub cap_drop: Option<Vec<String>>,
    /// Run with every capability and every device. Default: false.
    pub privileged: Option<bool>,
    /// Mount the root filesystem read-only. Default: false.
    pub read_only: Option<bool>,
    /// Extra `/etc/hosts` entries: a list of `"host:ip"`, or a table of host
    /// to IP address.
    pub extra_hosts: Option<ExtraHosts>,
    /// Kernel parameters set in the container's namespaces, as a table or a
    /// list of `K=V`, e.g. `net.core.somaxconn = "1024"`.
    pub sysctls: Option<KeyValues>,
    /// Process limits, by name (`nofile`, `nproc`, `core`, ...): one number
    /// for both soft and hard, or `{ soft, hard }`.
    pub ulimits: Option<BTreeMap<String, UlimitDef>>,
    /// The size of `/dev/shm`: bytes, or a size such as `256m`. Default:
    /// `64m`.
    pub shm_size: Option<Size>,
    /// Ports the container listens on for other containers, without
    /// publishing them on the host: `8080`, `"8080/udp"`, `"9000-9002"`.
    pub expose: Option<Vec<StringOrInt>>,
    /// A host folder that appears inside the container, for live editing.
    pub workspace: Option<WorkspaceDef>,
}

/// A string, or a list of strings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::Many(v) => v,
        }
    }
}

/// A string, or an integer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StringOrInt {
    String(String),
    Int(i64),
}

impl std::fmt::Display for StringOrInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StringOrInt::String(s) => f.write_str(s),
            StringOrInt::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A command: a string split like a shell would, or a list of arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    Args(Vec<String>),
}

/// A scalar value in a table of key/values.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::String(s) => f.write_str(s),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Key/values: a table, or a list of `K=V` strings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KeyValues {
    Table(BTreeMap<String, Scalar>),
    List(Vec<String>),
}

/// A size in bytes: an integer, or a string such as `512m` or `1.5GiB`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

/// A published port.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PortDef {
    /// `"[host_ip:][published:]target[/protocol]"`, ranges allowed.
    Short(String),
    /// A container port, published on a free host port.
    Number(i64),
    /// One port, in full.
    Table(PortTable),
}

/// One published port, in full.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortTable {
    /// The port inside the container.
    #[schemars(range(min = 1, max = 65535))]
    pub target: i64,
    /// The port on the host. Default: a free port.
    #[schemars(range(min = 1, max = 65535))]
    pub published: Option<i64>,
    /// The host address to listen on. Default: all addresses.
    pub host_ip: Option<String>,
    /// `tcp`, `udp` or `sctp`. Default: `tcp`.
    pub protocol: Option<Protocol>,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A mount.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MountDef {
    /// `"name:/path[:ro]"`, `"./rel:/path[:ro]"`, `"/abs:/path[:ro]"` or
    /// `"/path"`.
    Short(String),
    /// A mount, in full.
    Table(MountTable),
}

/// A mount, in full.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountTable {
    /// `volume` (a named or anonymous volume), `bind` (a host path) or
    /// `tmpfs` (memory).
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// The volume's name, or the host path of a bind mount (relative to the
    /// project file). None for tmpfs and anonymous volumes.
    pub source: Option<String>,
    /// Where the mount appears in the container, an absolute path.
    pub target: String,
    /// Mount read-only. Default: false.
    pub read_only: Option<bool>,
    /// The size limit of a tmpfs: bytes, or a size such as `64m`.
    pub size: Option<Size>,
    /// The permission bits of a tmpfs, written as octal digits, e.g. `1777`.
    pub mode: Option<u32>,
}

/// The kind of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

/// The networks of a container.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Networks {
    /// Network names.
    List(Vec<String>),
    /// Network name to options.
    Table(BTreeMap<String, ContainerNetworkDef>),
}

/// How a container joins one network.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerNetworkDef {
    /// More DNS names for the container on this network.
    pub aliases: Option<Vec<String>>,
}

/// Dependencies of a container.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DependsOn {
    /// Container names; each must have started.
    List(Vec<String>),
    /// Container name to the condition to wait for.
    Table(BTreeMap<String, Condition>),
}

/// What to wait for before starting a dependant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// The dependency is running.
    Started,
    /// The dependency's healthcheck passes.
    Healthy,
    /// The dependency ran and exited with status 0.
    Completed,
}

/// A healthcheck.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckDef {
    /// The check: a string run by `/bin/sh -c`, or a list of arguments (which
    /// may start with `CMD` or `CMD-SHELL`, as in Compose). Exit status 0
    /// means healthy. Required.
    pub cmd: Option<Command>,
    /// Time between checks, a duration. Default: `30s`.
    pub interval: Option<String>,
    /// How long one check may take, a duration. Default: `30s`.
    pub timeout: Option<String>,
    /// Consecutive failures before the container is unhealthy. Default: 3.
    #[schemars(range(min = 1))]
    pub retries: Option<u32>,
    /// Time after start during which failures do not count, a duration.
    /// Default: `0s`.
    pub start_period: Option<String>,
}

/// Resource limits.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesDef {
    /// Memory limit: bytes, or a size such as `512m` or `1.5GiB`.
    pub memory: Option<Size>,
    /// CPU limit, in CPUs, e.g. `1.5`.
    pub cpus: Option<Cpus>,
    /// Most processes and threads the container may have at once.
    #[schemars(range(min = 1))]
    pub pids: Option<i64>,
}

/// A number of CPUs: a number, or a string holding one.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Cpus {
    Number(f64),
    Text(String),
}

/// Extra `/etc/hosts` entries.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ExtraHosts {
    /// `"host:ip"` entries.
    List(Vec<String>),
    /// Host to IP address.
    Table(BTreeMap<String, String>),
}

/// A process limit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum UlimitDef {
    /// The same soft and hard limit.
    Both(i64),
    /// Separate soft and hard limits.
    Pair(UlimitPair),
}

/// Separate soft and hard limits.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UlimitPair {
    /// The soft limit, at most `hard`.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

/// A workspace: a host folder that appears inside the container.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceDef {
    /// The host folder, relative to the project file. Required.
    pub source: Option<String>,
    /// Where it appears in the container, an absolute path. Required.
    pub target: Option<String>,
    /// `bind` mounts the folder; `sync` copies it in and keeps the copy up to
    /// date. Default: `bind`.
    pub mode: Option<WorkspaceMode>,
    /// Paths not synced, as gitignore patterns, e.g. `node_modules`,
    /// `*.log`.
    pub ignore: Option<Vec<String>>,
    /// What happens after a change (once per batch): `none`, `restart` the
    /// container, `rebuild` its image and recreate it, or `{ exec = [...] }`
    /// to run a command in it. Default: `none`.
    pub on_change: Option<OnChange>,
    /// The owner of the synced copy's files (`mode = "sync"`). Default: the
    /// container's `user` when it is numeric, else 0 (root).
    pub uid: Option<u32>,
    /// The group of the synced copy's files. Default: the group of a
    /// numeric `user` (`1000:1000`), else the `uid`.
    pub gid: Option<u32>,
}

/// How a workspace reaches the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceMode {
    /// A bind mount of the host folder.
    Bind,
    /// A copy kept up to date by a file watcher.
    Sync,
}

/// What follows a change in the workspace (once per batch of changes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// Nothing: the program picks the change up itself.
    None,
    /// Restart the container.
    Restart,
    /// Rebuild the container's image and recreate the container.
    Rebuild,
    /// Run a command in the container: `on_change = { exec = ["npm",
    /// "run", "build"] }`.
    #[serde(untagged)]
    Exec {
        /// The command and its arguments, run in the container once per
        /// batch of changes.
        exec: Vec<String>,
    },
}

/// The JSON Schema of the project file (draft 7, which TOML editors read).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ProjectFile>();
    let mut value = schema.to_value();
    drop_null(&mut value);
    value
}

/// TOML has no null, so an optional key is simply absent: take the `null`
/// that the generator adds for `Option` fields out of the schema.
fn drop_null(v: &mut serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Object(map) => {
            if let Some(J::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(J::Array(alts)) = map.get_mut("anyOf") {
                alts.retain(|a| a.get("type").and_then(J::as_str) != Some("null"));
                if alts.len() == 1 {
                    let only = alts.remove(0);
                    map.remove("anyOf");
                    map.insert("allOf".into(), J::Array(vec![only]));
                }
            }
            map.values_mut().for_each(drop_null);
        }
        J::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// The schema as committed in `schema/servin.schema.json` and written by
/// `servin init`: pretty JSON with a final newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
