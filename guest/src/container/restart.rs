//! Restarts: the restart policy (`always`, `unless-stopped`,
//! `on-failure[:N]`) with its doubling back-off after an exit, and the
//! `restart` operation (stop, then start).

use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::RestartPolicyNameEnum;

use super::record::Status;
use super::{Container, Containers};
use crate::error::Result;

/// How long a run must last for the restart back-off to start over.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

impl Containers {
    /// Schedules a restart when the policy asks for one.
    pub(super) fn maybe_restart(self: &Arc<Self>, c: &Arc<Container>, ran: Option<Duration>) {
        let state = c.state();
        let policy = c.host_config().restart_policy.unwrap_or_default();
        let max = policy.maximum_retry_count.unwrap_or(0);
        // A start that came first (a `docker restart` whose stop caused
        // this exit) leaves nothing to restart.
        let down = matches!(state.status, Status::Exited | Status::Dead);
        let wanted = down
            && !state.stopped_by_user
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
}

fn restart_event(this: &Containers, c: &Container) {
    this.events.container("restart", c.id(), c.attributes());
}
