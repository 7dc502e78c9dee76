//! Starting a container: the overlay root, the volumes, the network and
//! the bundle are made while the monitor starts; then the monitor runs the
//! container. A start that fails leaves nothing behind in the runtime (the
//! container is deleted from it) and records why.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bollard_stubs::models::{Health, HealthStatusEnum};

use super::health::health_test;
use super::networking::NetSetup;
use super::record::Status;
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::monitor::{self, MonitorConfig};
use crate::runtime::OciRuntime;
use crate::runtime::etc::{self, EtcFiles};
use crate::runtime::host::HostFacts;
use crate::runtime::{rootfs, spec};
use crate::timefmt;

impl Containers {
    /// Starts a container; `Ok(false)` when it already runs.
    pub async fn start(self: &Arc<Self>, c: &Arc<Container>) -> Result<bool> {
        let _op = c.op.lock().await;
        self.start_locked(c).await
    }

    pub(super) async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<bool> {
        match c.state().status {
            Status::Running => return Ok(false),
            Status::Removing => {
                return Err(Error::from(ContainerError::WrongState(format!(
                    "container {} is being removed",
                    c.name()
                ))));
            }
            _ => {}
        }
        let result = self.launch(c).await;
        match result {
            Ok((monitor_pid, pid)) => {
                let has_health = health_test(&c.record).is_some();
                c.update(|s| {
                    s.status = Status::Running;
                    s.paused = false;
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
                self.volume_events(c, "mount");
                self.events.container("start", c.id(), c.attributes());
                self.watch(c, i64::from(monitor_pid));
                self.start_health(c);
                Ok(true)
            }
            Err(e) => {
                self.clean_runtime(c).await;
                let code = failed_start_code(&e);
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
        let links = self.resolve_links(c)?;
        super::links::save_env(&paths.dir, &links.env)?;
        let etc = self.write_etc_files(c, net, &links)?;
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
        // The body with the resources `update` last set.
        let body = c.body();
        let input = spec::SpecInput {
            id: c.id(),
            name: &c.name(),
            config: &body,
            image: c.record.image_config.as_ref(),
            rootfs: &rootfs_path,
            etc: &etc,
            init,
            netns: net.netns.as_deref(),
            volume_path: &volume_path,
            anonymous_volumes: &anonymous_volumes,
            host: &host,
            links_env: &links.env,
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
    pub(super) fn mount_root(&self, c: &Container) -> Result<()> {
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
            // A root removed with its container needs no writeback, nor
            // does a build's `RUN`, whose changes become a layer as an
            // unpacked one's do (its blob is synced when committed):
            // unmounting a normal overlay writes back the whole filesystem.
            let volatile = c.record.host_config().auto_remove.unwrap_or(false)
                || c.record
                    .body
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(crate::build::run::BUILD_LABEL));
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

    fn write_etc_files(
        &self,
        c: &Container,
        net: &NetSetup,
        links: &super::links::Resolved,
    ) -> Result<EtcFiles> {
        let paths = &c.paths;
        let body = &c.record.body;
        let hc = c.record.host_config();
        let hostname = spec::hostname_of(body, c.id());
        // A user-defined network answers names on its gateway; the default
        // network keeps the host's resolvers, as in Docker.
        let host_resolv = match net.dns {
            Some(gw) => super::networking::resolv_base(gw),
            None => etc::host_resolv_conf(),
        };
        let mut hosts = etc::hosts_file_with_gateway(
            &hostname,
            &hc.extra_hosts.clone().unwrap_or_default(),
            &net.addresses,
            net.gateway,
        )?;
        hosts.push_str(&links.hosts_lines());
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
        etc.write(&hosts, &hostname, &resolv)?;
        Ok(etc)
    }

    /// Deletes the runtime's container and unmounts the root.
    pub(super) async fn clean_runtime(&self, c: &Container) {
        if let Ok(rt) = self.runtime() {
            forget(rt, c.id(), &c.name()).await;
        }
        // On a blocking thread: the exits of a `down` are cleaned up
        // together, not one unmount after another on the async thread.
        let root = c.paths.rootfs();
        let unmounted = tokio::task::spawn_blocking(move || rootfs::unmount(&root))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.full_message()));
        if let Err(e) = unmounted {
            tracing::warn!("unmount the root of {}: {e}", c.name());
        }
        self.teardown_network(c).await;
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

/// The exit code a start that failed records, as Docker's: 127 when the
/// command is not in the image, else 128.
fn failed_start_code(e: &Error) -> i64 {
    if matches!(e, Error::CommandNotFound(_)) {
        127
    } else {
        128
    }
}

/// Deletes the container from the runtime after its process is gone (a
/// failed start, an exit); a failure is only logged, as the next start
/// deletes leftovers with `delete --force` first.
pub(super) async fn forget<R: OciRuntime>(rt: &R, id: &str, name: &str) {
    if let Err(e) = rt.delete_stopped(id).await {
        tracing::warn!("delete {name} from the runtime: {}", e.full_message());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::oci::fake::{Call, Recording};

    #[test]
    fn a_missing_command_exits_127_like_docker() {
        assert_eq!(
            failed_start_code(&Error::CommandNotFound("x".to_string())),
            127
        );
        assert_eq!(
            failed_start_code(&Error::from(crate::error::SpecError::Invalid(
                "x".to_string()
            ))),
            128
        );
    }

    #[tokio::test]
    async fn a_failed_start_is_deleted_from_the_runtime_without_a_signal() {
        let rt = Recording::new(|_, _| {});
        forget(&rt, "c1", "web").await;
        assert_eq!(
            rt.calls(),
            [Call::DeleteStopped {
                id: "c1".to_string()
            }]
        );
    }
}
