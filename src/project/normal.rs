//! The canonical form of a project: what `servin config` prints and what the
//! engine receives as the desired state.
//!
//! Every default is filled in, every variable interpolated, every relative
//! path made absolute, every shorthand expanded (a port range becomes one port
//! per entry, a `tmpfs` string becomes a mount, a `depends_on` list becomes a
//! table). Maps are ordered, so one project has exactly one canonical form:
//! the same project written in TOML and in KDL serialises to the same bytes.
//! The key names are those of the project file, so the canonical form is
//! itself a valid `servin.toml`.
//!
//! `servin run` describes its lone container with the same [`Container`]
//! (see [`super::container_body`]). It leaves unset what its user did not
//! give, so that the engine applies its own default, and it can set a few
//! fields a project file has no key for. Those fields are optional and left
//! out when unset; a project never sets them, so they never appear in
//! `servin config` and never change a project's config hash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::model::{Condition, MountKind, OnChange, WorkspaceMode};
pub use super::values::Protocol;

/// A whole project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub project: ProjectInfo,
    pub images: BTreeMap<String, Image>,
    pub volumes: BTreeMap<String, Volume>,
    pub networks: BTreeMap<String, Network>,
    pub secrets: BTreeMap<String, Secret>,
    pub containers: BTreeMap<String, Container>,
}

/// Project-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectInfo {
    pub name: String,
}

/// An image: a normalised registry reference, or a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// A build with absolute paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub context: String,
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A named volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// A network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// A secret's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// A container, with every default filled in.
///
/// The `Option` fields a project always fills in (`hostname`, `restart`,
/// `stop_signal`, `stop_timeout`, `shm_size`) are `None` only for a
/// container of `servin run` given no value: the engine's default applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// The key of an `[images]` entry, or a normalised registry reference.
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub ports: Vec<Port>,
    pub volumes: Vec<Mount>,
    pub networks: BTreeMap<String, ContainerNetwork>,
    pub depends_on: BTreeMap<String, Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    pub resources: Resources,
    pub init: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// A duration (`10s`), or whole seconds as `servin run --stop-timeout`
    /// takes them (`-1` waits for ever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub profiles: Vec<String>,
    pub replicas: u32,
    pub secrets: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub extra_hosts: BTreeMap<String, String>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
    /// Keep standard input open and attach it (`servin run -i`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_open: Option<bool>,
    /// Publish every exposed port on a random host port (`servin run -P`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_all: Option<bool>,
    /// A network mode that is not one of `networks`: `bridge` (the default
    /// network), `host` or `none` (`servin run --network`). Without it the
    /// container's first network is its mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Security options such as `no-new-privileges` (`servin run
    /// --security-opt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Options of the `json-file` log: `max-size`, `max-file` (`servin run
    /// --log-opt`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_options: BTreeMap<String, String>,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub target: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub protocol: Protocol,
    /// The last host port of a range to take the first free one from
    /// (`servin run -p 8000-8010:80`), `published` being the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_end: Option<u16>,
}

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    /// `None` (only from `servin run --mount` without `readonly`) leaves
    /// the engine's default, read-write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Permission bits of a tmpfs, written as octal digits (`1777`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Do not copy the image's files into a new volume (`servin run --mount
    /// ...,volume-nocopy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_copy: Option<bool>,
    /// A short-form bind whose host folder does not exist yet: `up` makes
    /// it, as Docker and Compose do (the long form refuses it instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_source: Option<bool>,
}

/// How a container joins a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetwork {
    pub aliases: Vec<String>,
    /// A fixed IPv4 address (`servin run --ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

/// A healthcheck; `cmd` starts with `CMD` (arguments) or `CMD-SHELL` (one
/// shell command), as Docker stores it, or is `["NONE"]` to turn off the
/// image's. A project fills in every field; `servin run` leaves out what
/// its user did not give (an empty `cmd` keeps the image's command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
}

/// Resource limits; absent means unlimited.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// Memory plus swap, `-1` for no limit (`servin run --memory-swap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
}

/// A process limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

/// A workspace with an absolute source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub source: String,
    pub target: String,
    pub mode: WorkspaceMode,
    pub ignore: Vec<String>,
    pub on_change: OnChange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}
