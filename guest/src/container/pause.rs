//! Freezing and thawing a running container (`docker pause`, `unpause`)
//! with the runtime's `pause` and `resume`, which drive the cgroup freezer
//! (`freezer.state` on cgroup v1, `cgroup.freeze` on v2). A paused
//! container still counts as running; the flag is kept in its state file,
//! so it stays paused across an engine restart.

use std::sync::Arc;

use super::record::Status;
use super::{Container, Containers};
use crate::error::{ContainerError, Result};
use crate::runtime::OciRuntime;

/// Why a container cannot be paused or unpaused now, in Docker's words;
/// `None` when it can.
pub fn refusal(status: Status, paused: bool, pause: bool, name: &str) -> Option<ContainerError> {
    match status {
        Status::Restarting => Some(ContainerError::WrongState(format!(
            "Container {name} is restarting, wait until the container is running"
        ))),
        Status::Running if pause && paused => Some(ContainerError::WrongState(format!(
            "Container {name} is already paused"
        ))),
        Status::Running if !pause && !paused => Some(ContainerError::WrongState(format!(
            "Container {name} is not paused"
        ))),
        Status::Running => None,
        _ if pause => Some(ContainerError::NotRunning(format!(
            "Container {name} is not running"
        ))),
        _ => Some(ContainerError::WrongState(format!(
            "Container {name} is not paused"
        ))),
    }
}

impl Containers {
    /// Freezes every process of a running container.
    pub async fn pause(&self, c: &Arc<Container>) -> Result<()> {
        let _op = c.op.lock().await;
        let s = c.state();
        if let Some(e) = refusal(s.status, s.paused, true, c.id()) {
            return Err(e.into());
        }
        self.runtime()?.pause(c.id()).await?;
        c.update(|s| s.paused = true)?;
        self.events.container("pause", c.id(), c.attributes());
        Ok(())
    }

    /// Thaws a paused container.
    pub async fn unpause(&self, c: &Arc<Container>) -> Result<()> {
        let _op = c.op.lock().await;
        let s = c.state();
        if let Some(e) = refusal(s.status, s.paused, false, c.id()) {
            return Err(e.into());
        }
        self.runtime()?.resume(c.id()).await?;
        c.update(|s| s.paused = false)?;
        self.events.container("unpause", c.id(), c.attributes());
        Ok(())
    }

    /// Thaws a paused container that was just signalled (stop, kill), so
    /// that the signal lands; a failure is only logged, since the signal
    /// was sent and the exit decides.
    pub(super) async fn thaw_after_signal(&self, c: &Arc<Container>) {
        let resumed = match self.runtime() {
            Ok(rt) => rt.resume(c.id()).await,
            Err(e) => Err(e),
        };
        match resumed {
            Ok(()) => {
                if let Err(e) = c.update(|s| s.paused = false) {
                    tracing::warn!("container {}: unpause: {}", c.name(), e.full_message());
                }
                self.events.container("unpause", c.id(), c.attributes());
            }
            Err(e) => tracing::warn!("container {}: unpause: {}", c.name(), e.full_message()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_as_docker_does() {
        let msg = |s, p, pause| refusal(s, p, pause, "c1").map(|e| e.to_string());
        assert_eq!(msg(Status::Running, false, true), None);
        assert_eq!(msg(Status::Running, true, false), None);
        assert_eq!(
            msg(Status::Running, true, true).as_deref(),
            Some("Container c1 is already paused")
        );
        assert_eq!(
            msg(Status::Running, false, false).as_deref(),
            Some("Container c1 is not paused")
        );
        assert_eq!(
            msg(Status::Exited, false, true).as_deref(),
            Some("Container c1 is not running")
        );
        assert_eq!(
            msg(Status::Created, false, false).as_deref(),
            Some("Container c1 is not paused")
        );
        assert!(matches!(
            refusal(Status::Exited, false, true, "c1"),
            Some(ContainerError::NotRunning(_))
        ));
        assert!(
            msg(Status::Restarting, false, true)
                .unwrap_or_default()
                .contains("restarting")
        );
    }
}
