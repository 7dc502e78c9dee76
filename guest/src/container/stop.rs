//! Stopping a container: its stop signal, then SIGKILL to every process
//! in it when the grace period passes.

use std::sync::Arc;
use std::time::Duration;

use super::record::Status;
use super::wait::wait_exits;
use super::{Container, Containers};
use crate::error::{Error, Result};

/// Default seconds `stop` waits before SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

impl Containers {
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

    pub(super) async fn stop_locked(
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
}
