//! Containers: records, state, lifecycle, restart policies and health.
//!
//! [`Containers`] owns every container of the engine. A container is a
//! folder under `<root>/containers/<id>/` (see [`record`]) and, while it
//! runs, a monitor process (see [`crate::monitor`]) that outlives the
//! engine. Lifecycle operations on one container are serialised by its
//! operation lock; the exit of its process is noticed by a watcher task
//! (a pidfd on the monitor) that records it without that lock, so `stop` can
//! wait for it.
//!
//! - [`record`]: what is kept on disk.
//! - [`error`]: [`error::ContainerError`], what container operations refuse.
//! - One file per operation: [`create`], [`start`], [`stop`], [`kill`],
//!   [`restart`] (the restart policy and its back-off too), [`remove`],
//!   [`wait`]; [`exit`] records an exit and applies auto-removal and the
//!   restart policy; [`recover`] finds the containers again when the
//!   engine starts.
//! - [`exec`]: exec instances.
//! - [`health`]: health checks.
//! - [`names`]: IDs and names.
//! - [`networking`]: networks joined, namespaces, connect and disconnect.
//! - [`publish`]: published ports.
//! - [`discovery`]: the names the DNS server answers for.
//! - [`reaper`]: noticing process exits with pidfds.
//! - [`rename`]: renaming a container, in any state.
//! - [`volumes`]: the volumes containers mount.
//! - [`archive`]: copying files out of and into a container (`docker cp`),
//!   with the filesystem work in [`archive_tar`].
//! - [`commit`]: what a container wrote, as an image (`docker commit`), a
//!   change list (`docker diff`) or a tar (`docker export`).
//! - [`pause`]: freezing and thawing; [`update`]: changing resources and
//!   the restart policy; [`stats`] and [`top`]: what runs in it and what
//!   it uses.

pub mod archive;
pub mod archive_tar;
pub mod commit;
pub mod create;
pub mod discovery;
pub mod error;
pub mod exec;
pub mod exit;
pub mod health;
pub mod kill;
pub mod links;
pub mod names;
pub mod networking;
pub mod pause;
pub mod publish;
pub mod reaper;
pub mod record;
pub mod recover;
pub mod remove;
pub mod rename;
pub mod restart;
pub mod start;
pub mod stats;
pub mod stop;
pub mod top;
pub mod update;
pub mod volumes;
pub mod wait;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use tokio::sync::{oneshot, watch};

pub use self::record::{Paths, Record, State, Status};
use crate::error::{ContainerError, Error, Result};
use crate::events::Events;
use crate::image::store::Store;
use crate::monitor;
use crate::monitor::attach::{AttachReader, AttachWriter};
use crate::network::{self, Networks};
use crate::runtime::Runtime;
use crate::volume::Volumes;

/// What waiters watch: bumped on every change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals {
    /// How many times the container's process has exited.
    pub exits: u64,
    /// Whether the container is gone.
    pub removed: bool,
    /// Bumped on every state change.
    pub generation: u64,
}

/// An attach client waiting for the container's monitor to come up.
pub type AttachWaiter = oneshot::Sender<Result<(AttachReader, AttachWriter)>>;

/// One container.
pub struct Container {
    /// As created; its name is [`Container::name`] (a rename changes
    /// that and the record on disk).
    pub record: Record,
    name: Mutex<String>,
    /// Serialises renames (see [`rename`]).
    renaming: Mutex<()>,
    /// Its folder.
    pub paths: Paths,
    state: Mutex<State>,
    /// Serialises start, stop, restart and remove.
    op: tokio::sync::Mutex<()>,
    signals: watch::Sender<Signals>,
    attach_waiters: Mutex<Vec<AttachWaiter>>,
    health: Mutex<Option<tokio::task::AbortHandle>>,
    backoff: Mutex<Duration>,
    /// The networks it joins, first one first (see [`network::Attachment`]).
    networks: Mutex<Vec<network::Attachment>>,
    /// Its published ports while it runs (see [`publish`]).
    published: Mutex<Option<crate::network::ports::Published>>,
    /// The host config as `update` last left it (the record's otherwise).
    host_config: Mutex<HostConfig>,
}

impl Container {
    fn new(record: Record, dir: PathBuf, state: State) -> Self {
        Self {
            name: Mutex::new(record.name.clone()),
            renaming: Mutex::new(()),
            paths: Paths::new(dir),
            state: Mutex::new(state),
            op: tokio::sync::Mutex::new(()),
            signals: watch::channel(Signals::default()).0,
            attach_waiters: Mutex::new(Vec::new()),
            health: Mutex::new(None),
            backoff: Mutex::new(Duration::ZERO),
            networks: Mutex::new(Vec::new()),
            published: Mutex::new(None),
            host_config: Mutex::new(record.host_config()),
            record,
        }
    }

    /// The host config, with the resources and restart policy `update`
    /// last set.
    pub fn host_config(&self) -> HostConfig {
        self.host_config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Docker's create body with [`Self::host_config`] in it.
    pub fn body(&self) -> ContainerCreateBody {
        ContainerCreateBody {
            host_config: Some(self.host_config()),
            ..self.record.body.clone()
        }
    }

    /// The networks it joins, first one first.
    pub fn attachments(&self) -> Vec<network::Attachment> {
        self.networks.lock().map(|n| n.clone()).unwrap_or_default()
    }

    fn set_attachments_in_memory(&self, attachments: Vec<network::Attachment>) {
        if let Ok(mut n) = self.networks.lock() {
            *n = attachments;
        }
    }

    /// Changes the networks it joins and writes them to its folder.
    pub fn set_attachments(
        &self,
        change: impl FnOnce(&mut Vec<network::Attachment>),
    ) -> Result<()> {
        let snapshot = {
            let mut n = self
                .networks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            change(&mut n);
            n.clone()
        };
        crate::state::write_json_atomic(&self.paths.dir, record::NETWORKS_FILE, &snapshot)
    }

    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The container's name, without `/`.
    pub fn name(&self) -> String {
        self.name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_name(&self, name: &str) {
        *self
            .name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = name.to_string();
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the current state.
    pub fn state(&self) -> State {
        self.lock_state().clone()
    }

    /// Changes the state, writes it to disk and wakes waiters.
    pub fn update(&self, change: impl FnOnce(&mut State)) -> Result<()> {
        let snapshot = {
            let mut s = self.lock_state();
            change(&mut s);
            s.clone()
        };
        self.signals.send_modify(|s| s.generation += 1);
        crate::state::write_json_atomic(&self.paths.dir, record::STATE_FILE, &snapshot)
    }

    /// A receiver of this container's [`Signals`].
    pub fn signals(&self) -> watch::Receiver<Signals> {
        self.signals.subscribe()
    }

    /// Queues an attach client until the next start connects it.
    pub fn add_attach_waiter(&self, waiter: AttachWaiter) {
        if let Ok(mut w) = self.attach_waiters.lock() {
            w.push(waiter);
        }
    }

    fn take_attach_waiters(&self) -> Vec<AttachWaiter> {
        self.attach_waiters
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// The event attributes Docker gives a container: name, image, labels.
    pub fn attributes(&self) -> HashMap<String, String> {
        let mut a = self.record.labels();
        a.insert("name".to_string(), self.name());
        a.insert("image".to_string(), self.record.image_name.clone());
        a
    }

    /// The log file settings: `max-size` and `max-file` from the log config.
    pub fn log_config(&self) -> crate::monitor::LogConfig {
        let opts = self
            .record
            .host_config()
            .log_config
            .and_then(|l| l.config)
            .unwrap_or_default();
        let max_size = opts
            .get("max-size")
            .and_then(|v| parse_size(v))
            .unwrap_or(DEFAULT_LOG_SIZE);
        let max_files = opts
            .get("max-file")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_LOG_FILES);
        crate::monitor::LogConfig {
            path: self.paths.log(),
            max_size,
            max_files,
        }
    }
}

/// Default size at which a container's log file rotates.
pub const DEFAULT_LOG_SIZE: u64 = 10 * 1024 * 1024;
/// Default number of log files kept per container.
pub const DEFAULT_LOG_FILES: u32 = 3;

/// Parses Docker's log sizes (`10m`, `512k`, `1g`, bytes) with the shared
/// size parser; a size of zero, a bad one or one past `u64::MAX` is `None`
/// (the default applies) rather than a wrapped, tiny rotation size.
pub fn parse_size(v: &str) -> Option<u64> {
    servin_values::parse_size(v).ok().filter(|n| *n > 0)
}

/// Every container of the engine.
pub struct Containers {
    dir: PathBuf,
    /// The socket this engine serves (see [`create::DOCKER_SOCKETS`]).
    engine_socket: PathBuf,
    /// The host folders servin's VM shares, when the engine runs there.
    vm_shares: Option<crate::config::VmShares>,
    store: Arc<Store>,
    volumes: Arc<Volumes>,
    runtime: std::result::Result<Runtime, String>,
    init: Option<PathBuf>,
    exe: PathBuf,
    host_nofile: u64,
    map: Mutex<HashMap<String, Arc<Container>>>,
    execs: Mutex<HashMap<String, Arc<exec::ExecInstance>>>,
    /// A monitor started ahead of the next container start.
    standby: Mutex<Option<monitor::Standby>>,
    /// The engine's event stream (shared with the volumes and images).
    pub events: Arc<Events>,
    /// The networks containers join.
    pub networks: Arc<Networks>,
}

/// Where the static init is looked for, in order (`SERVIN_INIT` first).
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/local/bin/tini-static",
    "/sbin/tini-static",
];

fn find_init() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERVIN_INIT").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl Containers {
    /// Opens the containers under `root/containers`, finds the running ones
    /// again and settles the ones whose process ended while the engine was
    /// away. Must run inside the engine's tokio runtime.
    /// Opens the containers under `root`; `engine_socket` is the socket
    /// this engine serves, given to containers that bind Docker's.
    pub fn open(
        root: &Path,
        engine_socket: &Path,
        store: Arc<Store>,
        volumes: Arc<Volumes>,
        events: Arc<Events>,
    ) -> Result<Arc<Self>> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let runtime = Runtime::detect(root).map_err(|e| e.full_message());
        if let Err(e) = &runtime {
            tracing::warn!("containers cannot run: {e}");
        }
        // The monitor is this binary in monitor mode.
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("servin-guest"));
        let host_nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .unwrap_or(1_048_576);
        let this = Arc::new(Self {
            dir,
            engine_socket: engine_socket.to_path_buf(),
            vm_shares: crate::config::VmShares::from_env(),
            store,
            volumes,
            runtime,
            init: find_init(),
            exe,
            host_nofile,
            map: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            standby: Mutex::new(None),
            events,
            networks: Networks::open(root)?,
        });
        this.load()?;
        Ok(this)
    }

    fn lock_map(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The standby monitor, if one is waiting.
    fn take_standby(&self) -> Option<monitor::Standby> {
        self.standby
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Ends the standby monitor, if one is waiting (a reset: no container
    /// will start).
    pub async fn drop_standby(&self) {
        if let Some(standby) = self.take_standby()
            && let Err(e) = standby.end().await
        {
            tracing::warn!("end the standby monitor: {}", e.full_message());
        }
    }

    /// Starts a standby monitor for the next container start unless one
    /// waits already. A failure is only logged: starts then spawn their own.
    fn replenish_standby(&self) {
        let mut slot = self
            .standby
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_some() {
            return;
        }
        match std::path::absolute(&self.dir)
            .map_err(Error::io("resolve", &self.dir))
            .and_then(|root| monitor::Standby::start(&self.exe, &root))
        {
            Ok(standby) => *slot = Some(standby),
            Err(e) => tracing::warn!("start a standby monitor: {}", e.full_message()),
        }
    }

    /// The runtime, or why there is none.
    pub fn runtime(&self) -> Result<&Runtime> {
        self.runtime.as_ref().map_err(|e| Error::Runtime {
            context: "the OCI runtime".to_string(),
            message: e.clone(),
        })
    }

    /// The runtime's name and version for `info`, or why there is none.
    pub fn runtime_summary(&self) -> std::result::Result<(String, Option<String>), String> {
        self.runtime
            .as_ref()
            .map(|r| (r.name.clone(), r.version()))
            .map_err(Clone::clone)
    }

    /// The static init binary, when one was found.
    pub fn init_path(&self) -> Option<&Path> {
        self.init.as_deref()
    }

    /// Every container, oldest first.
    pub fn list(&self) -> Vec<Arc<Container>> {
        let mut all: Vec<Arc<Container>> = self.lock_map().values().cloned().collect();
        all.sort_by(|a, b| a.record.created.cmp(&b.record.created));
        all
    }

    /// Finds a container by full ID, name (with or without `/`) or a unique
    /// ID prefix.
    pub fn get(&self, key: &str) -> Result<Arc<Container>> {
        let map = self.lock_map();
        let bare = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.get(bare) {
            return Ok(Arc::clone(c));
        }
        if let Some(c) = map.values().find(|c| c.name() == bare) {
            return Ok(Arc::clone(c));
        }
        if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&Arc<Container>> = map
                .values()
                .filter(|c| c.record.id.starts_with(bare))
                .collect();
            match hits.as_slice() {
                [one] => return Ok(Arc::clone(one)),
                [] => {}
                _ => {
                    return Err(ContainerError::AmbiguousId(bare.to_string()).into());
                }
            }
        }
        Err(Error::NoSuchContainer(key.to_string()))
    }

    /// Image IDs used by containers, with one container using each.
    pub fn images_in_use(&self) -> HashMap<String, String> {
        self.lock_map()
            .values()
            .map(|c| (c.record.image_id.clone(), c.record.id.clone()))
            .collect()
    }

    /// How many containers there are, how many run (paused ones too) and
    /// how many are stopped, for `/info`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let map = self.lock_map();
        let running = map
            .values()
            .filter(|c| c.state().status.is_running())
            .count();
        (map.len(), running, map.len() - running)
    }

    /// How many running containers are paused.
    pub fn paused_count(&self) -> usize {
        self.lock_map()
            .values()
            .filter(|c| {
                let s = c.state();
                s.paused && s.status.is_running()
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sizes_are_checked_not_wrapped() {
        assert_eq!(parse_size("10m"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("512k"), Some(512 * 1024));
        assert_eq!(parse_size("1g"), Some(1024 * 1024 * 1024));
        assert_eq!(parse_size("2kb"), Some(2048));
        assert_eq!(parse_size("100"), Some(100));
        // 2^64 / 2^30 rounds down to 17179869184: one more gigabyte
        // overflows, and used to wrap to a rotation size of a few bytes.
        assert_eq!(parse_size("17179869183g"), Some(17_179_869_183 << 30));
        assert_eq!(parse_size("17179869184g"), None);
        assert_eq!(parse_size("99999999999999999999"), None);
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("ten"), None);
    }
}
