//! Removing a container: a running one only with `force` (killed first);
//! then the network, the runtime's state, the root's mount and the folder.
//! The folder is renamed aside first, so a crash part-way is finished when
//! the engine finds it again. Its overlay upper folder may be gone already:
//! a build step's layer takes it into the image store
//! ([`crate::image::layer::Take::Move`]).

use std::sync::Arc;

use super::record::Status;
use super::stop::kill_all;
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::runtime::rootfs;

impl Containers {
    /// Removes a container; a running one only with `force` (it is killed).
    pub async fn remove(self: &Arc<Self>, c: &Arc<Container>, force: bool) -> Result<()> {
        let _op = c.op.lock().await;
        if c.state().status == Status::Restarting {
            // Between two runs (the restart policy's back-off): nothing to
            // kill, but Docker wants force all the same.
            if !force {
                return Err(Error::from(ContainerError::WrongState(format!(
                    "cannot remove container \"/{}\": container is restarting: stop the container before removing or force remove",
                    c.name()
                ))));
            }
            c.update(|s| s.stopped_by_user = true)?;
        }
        if c.state().status == Status::Running {
            if !force {
                return Err(Error::from(ContainerError::WrongState(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name()
                ))));
            }
            c.update(|s| s.stopped_by_user = true)?;
            let mut signals = c.signals();
            let exits = signals.borrow().exits;
            kill_all(
                self.runtime()?,
                c.id(),
                &c.name(),
                "remove",
                &mut signals,
                exits,
            )
            .await?;
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
        if let Ok(rt) = self.runtime() {
            super::start::forget(rt, c.id(), &c.name()).await;
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
}
