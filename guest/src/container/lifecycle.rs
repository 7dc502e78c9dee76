//! Create, start, stop, kill, remove and wait; exits, restart policies and
//! recovery after an engine restart.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bollard_stubs::models::{ContainerCreateBody, Health, HealthStatusEnum, RestartPolicyNameEnum};

use super::networking::NetSetup;
use super::record::{self, Record, State, Status};
use super::{Container, Containers, names};
use crate::error::{Error, Result};
use crate::monitor::{self, ExitRecord, MonitorConfig};
use crate::runtime::etc::{self, EtcFiles};
use crate::runtime::host::HostFacts;
use crate::runtime::{rootfs, spec};
use crate::timefmt;

/// What `wait` waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Until the container is not running (at once when it is not).
    NotRunning,
    /// Until its process next exits.
    NextExit,
    /// Until it is removed.
    Removed,
}

impl WaitCondition {
    /// Parses Docker's `condition` query value.
    pub fn parse(v: Option<&str>) -> Result<Self> {
        match v {
            None | Some("not-running") => Ok(Self::NotRunning),
            Some("next-exit") => Ok(Self::NextExit),
            Some("removed") => Ok(Self::Removed),
            Some(other) => Err(Error::BadRequest(format!(
                "invalid condition {other:?}: use not-running, next-exit or removed"
            ))),
        }
    }
}

/// Default seconds `stop` waits before SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;
/// How long a run must last for the restart back-off to start over.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

fn host_cpus() -> i64 {
    std::thread::available_parallelism()
        .map(|n| i64::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

/// Checks what Docker checks at create time, so a bad value fails before
/// anything is written.
fn validate(body: &ContainerCreateBody) -> Result<()> {
    let hc = body.host_config.clone().unwrap_or_default();
    if let Some(m) = hc.memory
        && m != 0
    {
        if m < 0 {
            return Err(Error::BadRequest(format!(
                "invalid memory limit {m}: must be positive"
            )));
        }
        if m < 6 * 1024 * 1024 {
            return Err(Error::BadRequest(format!(
                "invalid memory limit {m}: the minimum memory limit allowed is 6MB"
            )));
        }
    }
    if let Some(n) = hc.nano_cpus
        && n != 0
    {
        let cpus = host_cpus();
        if n < 10_000_000 || n > cpus * 1_000_000_000 {
            return Err(Error::BadRequest(format!(
                "invalid CPU count {:.2}: the range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available",
                n as f64 / 1e9
            )));
        }
    }
    if let Some(p) = hc.pids_limit
        && p < -1
    {
        return Err(Error::BadRequest(format!("invalid pids limit {p}")));
    }
    for bind in hc.binds.iter().flatten() {
        let src = bind.split(':').next().unwrap_or_default();
        if src.starts_with('/') && !std::path::Path::new(src).exists() {
            return Err(Error::BadRequest(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}"
            )));
        }
    }
    for m in hc.mounts.iter().flatten() {
        let is_bind = m.typ.map(|t| t.to_string()).as_deref() == Some("bind");
        if is_bind
            && let Some(src) = &m.source
            && !std::path::Path::new(src).exists()
        {
            return Err(Error::BadRequest(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}"
            )));
        }
    }
    Ok(())
}

impl Containers {
    /// Loads every container folder (called by [`Containers::open`]).
    pub(super) fn load(self: &Arc<Self>) -> Result<()> {
        let entries = std::fs::read_dir(&self.dir).map_err(Error::io("read", &self.dir))?;
        let mut loaded = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // A create or remove cut short by a crash.
                if let (Some(id), Ok(rt)) = (name.strip_prefix(".removing-"), self.runtime()) {
                    let (rt, id) = (rt.clone(), id.to_string());
                    tokio::spawn(async move { rt.delete(&id, true).await });
                }
                let _ = rootfs::unmount(&path.join("rootfs"));
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!("remove leftover {}: {e}", path.display());
                }
                continue;
            }
            let rec: Record = match crate::state::read_json(&path, record::RECORD_FILE) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(
                        "skipping container folder {}: {}",
                        path.display(),
                        e.full_message()
                    );
                    continue;
                }
            };
            let state: State =
                crate::state::read_json(&path, record::STATE_FILE).unwrap_or_default();
            let attachments = crate::state::read_json(&path, record::NETWORKS_FILE)
                .unwrap_or_else(|_| self.attachments_for(&rec.body).unwrap_or_default());
            let c = Arc::new(Container::new(rec, path, state));
            c.set_attachments_in_memory(attachments);
            self.lock_map().insert(c.record.id.clone(), Arc::clone(&c));
            loaded.push(c);
        }
        let running: std::collections::HashSet<String> = loaded
            .iter()
            .filter(|c| {
                let s = c.state();
                s.status == Status::Running && monitor::alive(&c.paths.dir) && s.monitor_pid > 0
            })
            .map(|c| c.id().to_string())
            .collect();
        self.recover_networks(&running);
        // Ports of containers that died while the engine was away must not
        // stay forwarded: the kernel's forwarding starts empty, and the
        // ports of those still running are added again below.
        if let Err(e) = self.networks.flush_kernel_ports() {
            tracing::warn!(
                "empty the kernel's forwarding of published ports: {}",
                e.full_message()
            );
        }
        for c in loaded {
            let state = c.state();
            match state.status {
                Status::Running if monitor::alive(&c.paths.dir) && state.monitor_pid > 0 => {
                    tracing::info!(id = %c.id(), name = %c.name(), "found running container");
                    self.watch(&c, state.monitor_pid);
                    self.start_health(&c);
                    match self.publish_userland(&c) {
                        Ok(Some((network_id, ports))) => {
                            let this = Arc::clone(self);
                            let c = Arc::clone(&c);
                            tokio::spawn(async move {
                                this.publish_kernel(&c, &network_id, ports).await;
                            });
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(
                            "publish the ports of {} again: {}",
                            c.name(),
                            e.full_message()
                        ),
                    }
                }
                Status::Running | Status::Restarting => {
                    let exit = monitor::read_exit(&c.paths.dir).ok().flatten();
                    let this = Arc::clone(self);
                    tokio::spawn(async move { this.finish(&c, exit, None).await });
                }
                Status::Removing => {
                    let this = Arc::clone(self);
                    tokio::spawn(async move {
                        if let Err(e) = this.remove_now(&c).await {
                            tracing::warn!("finish removing {}: {}", c.name(), e.full_message());
                        }
                    });
                }
                Status::Created | Status::Exited | Status::Dead => {
                    let _ = rootfs::unmount(&c.paths.rootfs());
                    let _ = crate::network::link::remove_netns(&c.paths.netns());
                }
            }
        }
        Ok(())
    }

    /// Creates a container from Docker's create body; returns its ID and
    /// warnings. Nothing is left behind when it fails.
    pub fn create(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<(String, Vec<String>)> {
        let image_name = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::BadRequest("no image given for the container".to_string()))?;
        let image = self.store.resolve(&image_name)?;
        validate(&body)?;
        let attachments = self.attachments_for(&body)?;
        let image_config = self
            .store
            .read_blob(&image.id)
            .ok()
            .and_then(|b| serde_json::from_slice::<oci_spec::image::ImageConfiguration>(&b).ok())
            .and_then(|c| c.config().clone());
        let wanted = super::volumes::wanted(&body, image_config.as_ref())?;
        let warnings = super::publish::check(&body, image_config.as_ref())?;
        let id = crate::state::new_id()?;
        let mut map = self.lock_map();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::check_name(n)?;
                if let Some(other) = map.values().find(|c| c.record.name == n) {
                    return Err(Error::Conflict(format!(
                        "the container name \"/{n}\" is already in use by container \"{}\": remove (or rename) that container to be able to reuse that name",
                        other.record.id
                    )));
                }
                n
            }
            None => names::random_name(|n| map.values().any(|c| c.record.name == n))?,
        };
        let (volumes, made_volumes) = self.make_volumes(&wanted)?;
        let record = Record {
            id: id.clone(),
            name,
            created: timefmt::format_nanos(SystemTime::now()),
            image_id: image.id.clone(),
            image_name,
            layers: image.chain_ids(),
            image_config,
            body,
            volumes,
        };
        // Written under a dot name and renamed, so a crash never leaves a
        // half-made container.
        let tmp = self.dir.join(format!(".creating-{id}"));
        let dir = self.dir.join(&id);
        let made = (|| -> Result<()> {
            std::fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
            // Atomic (a dot folder renamed into place) but not fsynced: a
            // killed engine never leaves half a container, and the start
            // path does not wait for the disk.
            crate::state::write_json_atomic(&tmp, record::RECORD_FILE, &record)?;
            crate::state::write_json_atomic(&tmp, record::STATE_FILE, &State::default())?;
            crate::state::write_json_atomic(&tmp, record::NETWORKS_FILE, &attachments)?;
            std::fs::rename(&tmp, &dir).map_err(Error::io("rename", &tmp))?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            self.drop_volumes(&made_volumes);
            return Err(e);
        }
        let c = Arc::new(Container::new(record, dir, State::default()));
        c.set_attachments_in_memory(attachments);
        map.insert(id.clone(), Arc::clone(&c));
        drop(map);
        self.events.container("create", &id, c.attributes());
        Ok((id, warnings))
    }

    /// Starts a container; `Ok(false)` when it already runs.
    pub async fn start(self: &Arc<Self>, c: &Arc<Container>) -> Result<bool> {
        let _op = c.op.lock().await;
        self.start_locked(c).await
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<bool> {
        match c.state().status {
            Status::Running => return Ok(false),
            Status::Removing => {
                return Err(Error::Conflict(format!(
                    "container {} is being removed",
                    c.name()
                )));
            }
            _ => {}
        }
        let result = self.launch(c).await;
        match result {
            Ok((monitor_pid, pid)) => {
                let has_health = health_test(&c.record).is_some();
                c.update(|s| {
                    s.status = Status::Running;
                    s.pid = i64::from(pid);
                    s.monitor_pid = i64::from(monitor_pid);
                    s.error.clear();
                    s.oom_killed = false;
                    s.started_at = timefmt::format_nanos(SystemTime::now());
                    s.stopped_by_user = false;
                    s.health = has_health.then(|| Health {
                        status: Some(HealthStatusEnum::STARTING),
                        failing_streak: Some(0),
                        log: Some(Vec::new()),
                    });
                })?;
                self.events.container("start", c.id(), c.attributes());
                self.watch(c, i64::from(monitor_pid));
                self.start_health(c);
                Ok(true)
            }
            Err(e) => {
                self.clean_runtime(c).await;
                let code = if matches!(e, Error::CommandNotFound(_)) {
                    127
                } else {
                    128
                };
                let message = e.full_message();
                let _ = c.update(|s| {
                    s.error = message.clone();
                    s.exit_code = code;
                });
                if c.record.host_config().auto_remove.unwrap_or(false)
                    && self.remove_now(c).await.is_ok()
                {
                    self.drop_anonymous_volumes(c).await;
                }
                Err(e)
            }
        }
    }

    /// Mounts the root, writes the bundle and starts the monitor; returns
    /// the monitor's PID and the container's.
    async fn launch(self: &Arc<Self>, c: &Arc<Container>) -> Result<(i32, i32)> {
        let runtime = self.runtime()?;
        let t0 = Instant::now();
        // Leftovers of an earlier run.
        runtime.delete(c.id(), true).await?;
        let paths = &c.paths;
        let _ = std::fs::remove_file(paths.dir.join(monitor::EXIT_FILE));
        if self.needs_copy_up(c) {
            // Copying an image's folder into a volume may take a while: not
            // on the engine's thread.
            let (this, c2) = (Arc::clone(self), Arc::clone(c));
            tokio::task::spawn_blocking(move || {
                this.mount_root(&c2)?;
                this.prepare_volumes(&c2).map(|_| ())
            })
            .await
            .map_err(|e| Error::Runtime {
                context: format!("container {}: copy into its volumes", c.name()),
                message: e.to_string(),
            })??;
        }
        let memory_cgroup = std::path::Path::new("/sys/fs/cgroup/memory")
            .is_dir()
            .then(|| std::path::PathBuf::from(format!("/sys/fs/cgroup/memory/servin/{}", c.id())));
        let config = MonitorConfig {
            id: c.id().to_string(),
            runtime: runtime.binary.clone(),
            runtime_root: runtime.root.clone(),
            bundle: paths.bundle(),
            tty: c.record.tty(),
            open_stdin: c.record.body.open_stdin.unwrap_or(false),
            stdin_once: c.record.body.stdin_once.unwrap_or(false),
            log: c.log_config(),
            memory_cgroup,
        };
        // The monitor starts (a process of its own, on the other core) while
        // the bundle is written: it needs the bundle only on "start".
        let (created, prepared) = tokio::join!(
            monitor::spawn_with(&self.exe, &paths.dir, &config, self.take_standby()),
            async {
                let (net, plan) = self.reserve_network(c).await?;
                // The devices are made (netlink, on this thread) while the
                // root is mounted and the files written (blocking, on
                // another); the host ports are bound there too, and the
                // kernel forwards them once the devices exist.
                let (this, c2) = (Arc::clone(self), Arc::clone(c));
                let written = tokio::task::spawn_blocking(move || {
                    let kernel = this.publish_userland(&c2)?;
                    this.prepare_bundle(&c2, &net).map(|()| kernel)
                });
                let (plumbed, written) = tokio::join!(self.plumb_network(c, plan), written);
                let written = written.unwrap_or_else(|e| {
                    Err(Error::Runtime {
                        context: format!("container {}: write its bundle", c.name()),
                        message: e.to_string(),
                    })
                });
                tracing::debug!(id = %c.id(), elapsed = ?t0.elapsed(), "bundle written");
                match (plumbed, written) {
                    (Ok(()), Ok(kernel)) => {
                        if let Some((network_id, ports)) = kernel {
                            self.publish_kernel(c, &network_id, ports).await;
                        }
                        Ok(())
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
        );
        let created = created?;
        if let Err(e) = prepared {
            if let Err(abort) = created.abort().await {
                tracing::warn!("stop the monitor of {}: {}", c.name(), abort.full_message());
            }
            return Err(e);
        }
        tracing::debug!(id = %c.id(), elapsed = ?t0.elapsed(), "monitor ready");
        let monitor_pid = created.monitor_pid;
        for waiter in c.take_attach_waiters() {
            let conn = connect_attach(&paths.dir).await;
            let _ = waiter.send(conn);
        }
        created.start().await?;
        tracing::debug!(id = %c.id(), elapsed = ?t0.elapsed(), "container running");
        self.replenish_standby();
        // The monitor runs the container on "start"; the runtime wrote its
        // init's pid.
        let pid_file = paths.dir.join(monitor::CONTAINER_PID_FILE);
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .unwrap_or(0);
        Ok((monitor_pid, pid))
    }

    /// Mounts the overlay root, writes the generated files and the OCI
    /// spec, and checks the command exists in the image.
    fn prepare_bundle(&self, c: &Container, net: &NetSetup) -> Result<()> {
        let step = |what: &str| format!("container {}: {what}", c.name());
        let paths = &c.paths;
        self.mount_root(c)?;
        let etc = self.write_etc_files(c, net)?;
        let init = if c.record.init() {
            Some(self.init.as_deref().ok_or_else(|| Error::Runtime {
                context: step("start"),
                message: "no init binary found (looked for SERVIN_INIT and tini-static): install tini (apt-get install tini) or run with --no-init / init = false".to_string(),
            })?)
        } else {
            None
        };
        let anonymous_volumes = self.prepare_volumes(c)?;
        let volume_path = |name: &str| self.volume_path(name);
        let rootfs_path = paths.rootfs();
        // Read at each start, as the spec used to read them itself: a
        // device plugged in since the engine started reaches a privileged
        // container.
        let host = HostFacts::read(
            self.host_nofile,
            c.record.host_config().privileged.unwrap_or(false),
        );
        let input = spec::SpecInput {
            id: c.id(),
            name: c.name(),
            config: &c.record.body,
            image: c.record.image_config.as_ref(),
            rootfs: &rootfs_path,
            etc: &etc,
            init,
            netns: net.netns.as_deref(),
            volume_path: &volume_path,
            anonymous_volumes: &anonymous_volumes,
            host: &host,
        };
        // `spec::build` leaves out the network namespace for `host`.
        let oci = spec::build(&input)?;
        let argv = spec::command_line(&c.record.body, c.record.image_config.as_ref())?;
        let env: Vec<String> = oci
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default();
        if let Some(argv0) = argv.first() {
            rootfs::lookup_command(&rootfs_path, argv0, &env)?;
        }
        crate::state::write_json_atomic(&paths.bundle(), "config.json", &oci)
    }

    /// Makes the container's folders and mounts its overlay root, unless
    /// it is mounted already.
    fn mount_root(&self, c: &Container) -> Result<()> {
        let paths = &c.paths;
        for d in [paths.bundle(), paths.rootfs(), paths.upper(), paths.work()] {
            std::fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
        }
        if !rootfs::is_mounted(&paths.rootfs()) {
            let lower: Vec<std::path::PathBuf> = c
                .record
                .layers
                .iter()
                .rev()
                .map(|chain| self.store.snapshot_path(chain))
                .collect::<Result<_>>()?;
            // A root removed with its container needs no writeback.
            let volatile = c.record.host_config().auto_remove.unwrap_or(false);
            rootfs::mount_overlay_with(
                &lower,
                &paths.upper(),
                &paths.work(),
                &paths.rootfs(),
                volatile,
            )?;
        }
        Ok(())
    }

    fn write_etc_files(&self, c: &Container, net: &NetSetup) -> Result<EtcFiles> {
        let paths = &c.paths;
        let body = &c.record.body;
        let hc = c.record.host_config();
        let hostname = body
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| c.id().chars().take(12).collect());
        // A user-defined network answers names on its gateway; the default
        // network keeps the host's resolvers, as in Docker.
        let host_resolv = match net.dns {
            Some(gw) => super::networking::resolv_base(gw),
            None => etc::host_resolv_conf(),
        };
        let hosts = etc::hosts_file_with_gateway(
            &hostname,
            &hc.extra_hosts.clone().unwrap_or_default(),
            &net.addresses,
            net.gateway,
        )?;
        let resolv = etc::resolv_conf(
            &host_resolv,
            &hc.dns.clone().unwrap_or_default(),
            &hc.dns_search.clone().unwrap_or_default(),
            &hc.dns_options.clone().unwrap_or_default(),
        );
        let etc = EtcFiles {
            hosts: paths.hosts(),
            hostname: paths.hostname(),
            resolv_conf: paths.resolv_conf(),
        };
        for (path, text) in [
            (&etc.hosts, hosts),
            (&etc.hostname, format!("{hostname}\n")),
            (&etc.resolv_conf, resolv),
        ] {
            std::fs::write(path, text).map_err(Error::io("write", path))?;
        }
        Ok(etc)
    }

    /// Deletes the runtime's container and unmounts the root.
    async fn clean_runtime(&self, c: &Container) {
        if let Ok(rt) = self.runtime()
            && let Err(e) = rt.delete_stopped(c.id()).await
        {
            tracing::warn!("delete {} from the runtime: {}", c.name(), e.full_message());
        }
        if let Err(e) = rootfs::unmount(&c.paths.rootfs()) {
            tracing::warn!("unmount the root of {}: {}", c.name(), e.full_message());
        }
        self.teardown_network(c).await;
    }

    /// Watches the monitor `monitor_pid` and records the exit when it goes.
    pub(super) fn watch(self: &Arc<Self>, c: &Arc<Container>, monitor_pid: i64) {
        let this = Arc::clone(self);
        let c = Arc::clone(c);
        tokio::spawn(async move {
            let started = Instant::now();
            super::reaper::wait_for_exit(monitor_pid).await;
            let exit = monitor::read_exit(&c.paths.dir).ok().flatten();
            this.finish(&c, exit, Some(started.elapsed())).await;
        });
    }

    /// Records an exit (or a dead monitor), cleans up, and applies
    /// auto-removal or the restart policy.
    pub(super) async fn finish(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit: Option<ExitRecord>,
        ran: Option<Duration>,
    ) {
        if let Some(h) = c.health.lock().ok().and_then(|mut h| h.take()) {
            h.abort();
        }
        if exit.is_none()
            && let Ok(rt) = self.runtime()
        {
            // The monitor died without recording the exit: make sure nothing
            // of the container is left running.
            let _ = rt.kill(c.id(), "KILL", true).await;
        }
        let (code, dead) = match &exit {
            Some(e) => (i64::from(e.code), false),
            None => (255, true),
        };
        let finished = exit.as_ref().map_or_else(
            || timefmt::format_nanos(SystemTime::now()),
            |e| e.finished_at.clone(),
        );
        let oom = exit.as_ref().is_some_and(|e| e.oom_killed);
        if let Some(at) = timefmt::parse_nanos(&finished) {
            let noticed = SystemTime::now().duration_since(at).unwrap_or_default();
            tracing::debug!(id = %c.id(), after = ?noticed, "exit noticed");
        }
        // Its addresses are free once the exit is known (before waiters
        // wake: a `stop` that returns has released them); the namespace's
        // mount goes with the runtime's state below.
        self.networks.release_all(c.id());
        self.unpublish_ports(c).await;
        let res = c.update(|s| {
            s.status = if dead { Status::Dead } else { Status::Exited };
            s.exit_code = code;
            s.pid = 0;
            s.monitor_pid = 0;
            s.oom_killed = oom;
            s.finished_at = finished.clone();
            if dead {
                s.error = "the container's monitor died without recording its exit".to_string();
            }
        });
        if let Err(e) = res {
            tracing::warn!("record the exit of {}: {}", c.name(), e.full_message());
        }
        c.signals.send_modify(|s| {
            s.exits += 1;
            s.generation += 1;
        });
        let mut attrs = c.attributes();
        attrs.insert("exitCode".to_string(), code.to_string());
        self.events.container("die", c.id(), attrs);
        if oom {
            self.events.container("oom", c.id(), c.attributes());
        }
        // Waiters were woken first; the runtime's state and the mount go
        // now, under the operation lock so a start that follows waits for
        // them (and a start that came first, as in a restart, is not undone).
        let _op = c.op.lock().await;
        let hc = c.record.host_config();
        if hc.auto_remove.unwrap_or(false) {
            match self.remove_now(c).await {
                Ok(()) => self.drop_anonymous_volumes(c).await,
                Err(e) => tracing::warn!("auto-remove {}: {}", c.name(), e.full_message()),
            }
            return;
        }
        let still_down = matches!(c.state().status, Status::Exited | Status::Dead);
        if still_down && self.get(c.id()).is_ok() {
            self.clean_runtime(c).await;
        }
        drop(_op);
        self.maybe_restart(c, ran);
    }

    /// Schedules a restart when the policy asks for one.
    fn maybe_restart(self: &Arc<Self>, c: &Arc<Container>, ran: Option<Duration>) {
        let state = c.state();
        let policy = c.record.host_config().restart_policy.unwrap_or_default();
        let max = policy.maximum_retry_count.unwrap_or(0);
        let wanted = !state.stopped_by_user
            && match policy.name {
                Some(RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED) => true,
                Some(RestartPolicyNameEnum::ON_FAILURE) => {
                    state.exit_code != 0 && (max <= 0 || state.restart_count < max)
                }
                _ => false,
            };
        if !wanted {
            return;
        }
        let delay = {
            let mut b = c
                .backoff
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *b = if ran.is_some_and(|r| r >= BACKOFF_RESET) || b.is_zero() {
                BACKOFF_FIRST
            } else {
                (*b * 2).min(BACKOFF_MAX)
            };
            *b
        };
        let _ = c.update(|s| s.status = Status::Restarting);
        let this = Arc::clone(self);
        let c = Arc::clone(c);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            let s = c.state();
            if s.status != Status::Restarting || s.stopped_by_user || this.get(c.id()).is_err() {
                return;
            }
            let _ = c.update(|s| s.restart_count += 1);
            self::restart_event(&this, &c);
            if let Err(e) = this.start_locked(&c).await {
                tracing::warn!("restart {}: {}", c.name(), e.full_message());
                let _ = c.update(|s| s.status = Status::Exited);
                this.maybe_restart(&c, None);
            }
        });
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout`
    /// seconds. `Ok(false)` when it was not running.
    pub async fn stop(
        self: &Arc<Self>,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let _op = c.op.lock().await;
        self.stop_locked(c, timeout, signal).await
    }

    async fn stop_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let state = c.state();
        c.update(|s| {
            s.stopped_by_user = true;
            if s.status == Status::Restarting {
                s.status = Status::Exited;
            }
        })?;
        if state.status != Status::Running {
            return Ok(false);
        }
        let rt = self.runtime()?;
        let mut signals = c.signals();
        let exits = signals.borrow().exits;
        let sig = signal
            .map(String::from)
            .or_else(|| c.record.body.stop_signal.clone())
            .unwrap_or_else(|| "TERM".to_string());
        let timeout = timeout
            .or(c.record.body.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        if let Err(e) = rt.kill(c.id(), &sig, false).await {
            tracing::debug!("stop signal to {}: {}", c.name(), e.full_message());
        }
        let grace = Duration::from_secs(u64::try_from(timeout.max(0)).unwrap_or(0));
        let exited = wait_exits(&mut signals, exits, Some(grace)).await;
        if !exited {
            tracing::info!(name = %c.name(), "did not stop within {timeout}s: killing it");
            if let Err(e) = rt.kill(c.id(), "KILL", true).await {
                tracing::debug!("SIGKILL to {}: {}", c.name(), e.full_message());
            }
            if !wait_exits(&mut signals, exits, Some(Duration::from_secs(30))).await {
                return Err(Error::Runtime {
                    context: format!("container {}: stop", c.name()),
                    message: "the process did not exit after SIGKILL".to_string(),
                });
            }
        }
        self.events.container("stop", c.id(), c.attributes());
        Ok(true)
    }

    /// Stops (when running) and starts a container.
    pub async fn restart(
        self: &Arc<Self>,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let _op = c.op.lock().await;
        self.stop_locked(c, timeout, signal).await?;
        self.start_locked(c).await?;
        restart_event(self, c);
        Ok(())
    }

    /// Sends a signal to a running container.
    pub async fn kill(&self, c: &Arc<Container>, signal: &str) -> Result<()> {
        if c.state().status != Status::Running {
            return Err(Error::Conflict(format!(
                "cannot kill container {}: container {} is not running",
                c.name(),
                c.id()
            )));
        }
        if matches!(signal, "KILL" | "SIGKILL" | "9") {
            c.update(|s| s.stopped_by_user = true)?;
        }
        self.runtime()?.kill(c.id(), signal, false).await?;
        let mut attrs = c.attributes();
        attrs.insert("signal".to_string(), signal.to_string());
        self.events.container("kill", c.id(), attrs);
        Ok(())
    }

    /// Removes a container; a running one only with `force` (it is killed).
    pub async fn remove(self: &Arc<Self>, c: &Arc<Container>, force: bool) -> Result<()> {
        let _op = c.op.lock().await;
        if c.state().status == Status::Running {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name()
                )));
            }
            c.update(|s| s.stopped_by_user = true)?;
            let mut signals = c.signals();
            let exits = signals.borrow().exits;
            if let Err(e) = self.runtime()?.kill(c.id(), "KILL", true).await {
                tracing::debug!("SIGKILL to {}: {}", c.name(), e.full_message());
            }
            if !wait_exits(&mut signals, exits, Some(Duration::from_secs(30))).await {
                return Err(Error::Runtime {
                    context: format!("container {}: remove", c.name()),
                    message: "the process did not exit after SIGKILL".to_string(),
                });
            }
        }
        self.remove_now(c).await
    }

    /// Removes a stopped container's runtime state, mounts and folder.
    pub(super) async fn remove_now(&self, c: &Arc<Container>) -> Result<()> {
        if self.lock_map().get(c.id()).is_none() {
            return Ok(());
        }
        c.update(|s| s.status = Status::Removing)?;
        self.forget_execs(c.id());
        self.teardown_network(c).await;
        // Out of sight first (a crash from here on is finished by `load`),
        // then the waiters, then the runtime's state, the mount and files.
        let aside = self.dir.join(format!(".removing-{}", c.id()));
        std::fs::rename(&c.paths.dir, &aside).map_err(Error::io("rename", &c.paths.dir))?;
        self.lock_map().remove(c.id());
        c.signals.send_modify(|s| {
            s.removed = true;
            s.generation += 1;
        });
        self.events.container("destroy", c.id(), c.attributes());
        if let Ok(rt) = self.runtime()
            && let Err(e) = rt.delete_stopped(c.id()).await
        {
            tracing::warn!("delete {} from the runtime: {}", c.name(), e.full_message());
        }
        // Unmounting and deleting files block: on a thread of their own,
        // so the waiters woken above answer meanwhile.
        let name = c.name().to_string();
        let cleaned = tokio::task::spawn_blocking(move || {
            if let Err(e) = rootfs::unmount(&aside.join("rootfs")) {
                tracing::warn!("unmount the root of {name}: {}", e.full_message());
            }
            if let Err(e) = std::fs::remove_dir_all(&aside) {
                tracing::warn!("remove {}: {e}", aside.display());
            }
        })
        .await;
        if let Err(e) = cleaned {
            tracing::warn!("remove the files of {}: {e}", c.name());
        }
        Ok(())
    }

    /// Waits for `condition`; returns the exit code.
    pub async fn wait(&self, c: &Arc<Container>, condition: WaitCondition) -> i64 {
        let mut signals = c.signals();
        let start = *signals.borrow();
        loop {
            let now = *signals.borrow_and_update();
            let state = c.state();
            let done = match condition {
                WaitCondition::NotRunning => {
                    now.removed || !matches!(state.status, Status::Running | Status::Restarting)
                }
                WaitCondition::NextExit => now.removed || now.exits > start.exits,
                WaitCondition::Removed => now.removed,
            };
            if done {
                return state.exit_code;
            }
            if signals.changed().await.is_err() {
                return c.state().exit_code;
            }
        }
    }

    /// Shuts down: stops nothing (containers outlive the engine), but stops
    /// health checks.
    pub fn shutdown(&self) {
        for c in self.list() {
            if let Some(h) = c.health.lock().ok().and_then(|mut h| h.take()) {
                h.abort();
            }
        }
    }
}

fn restart_event(this: &Containers, c: &Container) {
    this.events.container("restart", c.id(), c.attributes());
}

/// The health check command, when the container has one.
pub fn health_test(rec: &Record) -> Option<Vec<String>> {
    let test = rec.body.healthcheck.as_ref().and_then(|h| h.test.clone())?;
    match test.first().map(String::as_str) {
        Some("CMD") => Some(test[1..].to_vec()).filter(|t| !t.is_empty()),
        Some("CMD-SHELL") => test
            .get(1)
            .map(|cmd| vec!["/bin/sh".to_string(), "-c".to_string(), cmd.clone()]),
        _ => None,
    }
}

/// Waits until the exit counter passes `exits`, or `timeout` passes.
async fn wait_exits(
    signals: &mut tokio::sync::watch::Receiver<super::Signals>,
    exits: u64,
    timeout: Option<Duration>,
) -> bool {
    let wait = async {
        loop {
            if signals.borrow_and_update().exits > exits {
                return true;
            }
            if signals.changed().await.is_err() {
                return false;
            }
        }
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, wait).await.unwrap_or(false),
        None => wait.await,
    }
}

/// Connects to a monitor's attach socket, retrying briefly while it binds.
pub async fn connect_attach(
    dir: &std::path::Path,
) -> Result<(monitor::attach::AttachReader, monitor::attach::AttachWriter)> {
    let mut last = None;
    for _ in 0..100 {
        match monitor::attach::connect(dir).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(last.unwrap_or_else(|| Error::Runtime {
        context: "attach".to_string(),
        message: "the monitor did not answer".to_string(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bollard_stubs::models::HostConfig;

    fn body(hc: HostConfig) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some("x".to_string()),
            host_config: Some(hc),
            ..Default::default()
        }
    }

    #[test]
    fn rejects_bad_limits_and_missing_bind_sources() {
        let too_small = body(HostConfig {
            memory: Some(1024),
            ..Default::default()
        });
        assert!(
            validate(&too_small)
                .unwrap_err()
                .to_string()
                .contains("6MB")
        );
        let cpus = body(HostConfig {
            nano_cpus: Some(1_000_000_000_000),
            ..Default::default()
        });
        assert!(
            validate(&cpus)
                .unwrap_err()
                .to_string()
                .contains("range of CPUs")
        );
        let bind = body(HostConfig {
            binds: Some(vec!["/no/such/dir:/x".to_string()]),
            ..Default::default()
        });
        assert!(
            validate(&bind)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        assert!(validate(&body(HostConfig::default())).is_ok());
    }

    #[test]
    fn wait_conditions_parse() {
        assert_eq!(
            WaitCondition::parse(None).unwrap(),
            WaitCondition::NotRunning
        );
        assert_eq!(
            WaitCondition::parse(Some("removed")).unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse(Some("soon")).is_err());
    }
}
