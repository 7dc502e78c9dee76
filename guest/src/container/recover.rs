//! Finding containers again at engine start: every container folder is
//! loaded; a running one whose monitor lives is watched again (its health
//! checks and published ports too), one whose process ended meanwhile is
//! settled, a removal or create cut short by a crash is finished. At
//! engine stop nothing is stopped: containers outlive the engine.

use std::sync::Arc;

use super::record::{self, Record, State, Status};
use super::{Container, Containers};
use crate::error::{Error, Result};
use crate::monitor;
use crate::runtime::OciRuntime;
use crate::runtime::rootfs;

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
