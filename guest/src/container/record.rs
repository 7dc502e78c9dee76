//! What the engine keeps about a container, on disk and in memory.
//!
//! Each container has a folder `<root>/containers/<id>/` holding:
//! - `config.json`: the [`Record`], written once when the container is
//!   created (Docker's create body, the image it was made from);
//! - `state.json`: the [`State`], rewritten (temp file, rename) on every
//!   change;
//! - `bundle/config.json`: the OCI runtime spec of the last start;
//! - `rootfs/` (the overlay mount point), `upper/`, `work/`;
//! - `hosts`, `hostname`, `resolv.conf`: the generated files;
//! - `config.json` is rewritten (temp file, rename) by `update`, which
//!   changes its resources and restart policy;
//! - `networks.json`: the networks it joins; `netns`: its network
//!   namespace (a bind mount) while it runs;
//! - `container.log*`, and the monitor's files (see [`crate::monitor`]).

use std::path::PathBuf;

use bollard_stubs::models::{ContainerCreateBody, Health, HostConfig};
use serde::{Deserialize, Serialize};

use crate::timefmt;

/// The file holding a container's [`Record`].
pub const RECORD_FILE: &str = "config.json";
/// The file holding a container's [`State`].
pub const STATE_FILE: &str = "state.json";
/// The file holding the networks a container joins
/// ([`crate::network::Attachment`]s).
pub const NETWORKS_FILE: &str = "networks.json";

/// A container as created: never changes afterwards, but for the name of
/// one that has not run yet (see [`super::rename`]) and the resources and
/// restart policy that `update` changes (see [`super::update`]; the
/// in-memory copy of those is [`super::Container::host_config`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// The name, without Docker's leading `/`.
    pub name: String,
    /// When it was created (RFC 3339 with nanoseconds).
    pub created: String,
    /// The image's ID (`sha256:...`).
    pub image_id: String,
    /// The image as the user named it.
    pub image_name: String,
    /// Chain IDs of the image's layers, bottom first: the overlay's lower
    /// directories.
    pub layers: Vec<String>,
    /// The image's configuration (command, env, user...), when it has one.
    pub image_config: Option<oci_spec::image::Config>,
    /// Docker's create body, host config included.
    pub body: ContainerCreateBody,
    /// The volumes it mounts, named and anonymous.
    #[serde(default)]
    pub volumes: Vec<crate::volume::VolumeMount>,
}

impl Record {
    /// The host config, or the default one.
    pub fn host_config(&self) -> HostConfig {
        self.body.host_config.clone().unwrap_or_default()
    }

    /// Whether the container has a terminal.
    pub fn tty(&self) -> bool {
        self.body.tty.unwrap_or(false)
    }

    /// The container's labels.
    pub fn labels(&self) -> std::collections::HashMap<String, String> {
        self.body.labels.clone().unwrap_or_default()
    }

    /// Whether the init runs as PID 1 (servin's default is yes).
    pub fn init(&self) -> bool {
        self.host_config().init.unwrap_or(true)
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or its start failed).
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Exited and waiting to be started again by its restart policy.
    Restarting,
    /// Its process has exited.
    Exited,
    /// Its monitor died without recording the exit.
    Dead,
    /// Being removed.
    Removing,
}

impl Status {
    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
            Self::Removing => "removing",
        }
    }

    /// Whether a process runs (or is about to run again).
    pub fn is_running(self) -> bool {
        matches!(self, Self::Running)
    }
}

/// A container's changing state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Where it is in its life.
    pub status: Status,
    /// PID of its init process (on the host), 0 when not running.
    pub pid: i64,
    /// PID of its monitor, 0 when none.
    pub monitor_pid: i64,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// Why the last start failed, or why the container is dead.
    pub error: String,
    /// Whether the last run was killed by the OOM killer.
    pub oom_killed: bool,
    /// When it last started (RFC 3339), or Docker's zero time.
    pub started_at: String,
    /// When it last exited (RFC 3339), or Docker's zero time.
    pub finished_at: String,
    /// How many times the restart policy restarted it.
    pub restart_count: i64,
    /// Set by `stop` and `kill`: the restart policy leaves it alone (and
    /// `unless-stopped` keeps it down after an engine restart).
    pub stopped_by_user: bool,
    /// Health check status, when the container has a health check.
    pub health: Option<Health>,
    /// Whether its processes are frozen (`pause`); it still counts as
    /// running, as in Docker.
    #[serde(default)]
    pub paused: bool,
}

impl State {
    /// Docker's word for the state: `paused` for a running, frozen one.
    pub fn docker_status(&self) -> &'static str {
        if self.paused && self.status == Status::Running {
            "paused"
        } else {
            self.status.as_str()
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self {
            status: Status::Created,
            pid: 0,
            monitor_pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: timefmt::ZERO_TIME.to_string(),
            finished_at: timefmt::ZERO_TIME.to_string(),
            restart_count: 0,
            stopped_by_user: false,
            health: None,
            paused: false,
        }
    }
}

/// The paths inside a container's folder.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The folder itself.
    pub dir: PathBuf,
}

impl Paths {
    /// The paths of the container folder `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
    /// The OCI bundle folder.
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    /// The overlay mount point.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    /// The overlay's upper directory.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    /// The overlay's work directory.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// The generated `/etc/hosts`.
    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    /// The generated `/etc/hostname`.
    pub fn hostname(&self) -> PathBuf {
        self.dir.join("hostname")
    }
    /// The generated `/etc/resolv.conf`.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }
    /// The network namespace's bind mount, while it runs.
    pub fn netns(&self) -> PathBuf {
        self.dir.join("netns")
    }
    /// The log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    /// Exec process specs.
    pub fn execs(&self) -> PathBuf {
        self.dir.join("exec")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = State {
            status: Status::Exited,
            exit_code: 3,
            ..State::default()
        };
        crate::state::write_json(dir.path(), STATE_FILE, &state).unwrap();
        let back: State = crate::state::read_json(dir.path(), STATE_FILE).unwrap();
        assert_eq!(back.status, Status::Exited);
        assert_eq!(back.exit_code, 3);
        assert!(!dir.path().join(".state.json.tmp").exists());
    }
}
