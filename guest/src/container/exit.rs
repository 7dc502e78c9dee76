//! A container's exit: the monitor is watched, and when it goes its exit
//! record is read, the network and ports are released, waiters are woken,
//! the runtime's state and the root are cleaned up, and auto-removal or the
//! restart policy applies.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::record::Status;
use super::{Container, Containers};
use crate::monitor::{self, ExitRecord};
use crate::runtime::OciRuntime;
use crate::timefmt;

impl Containers {
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
        // Docker unmounts the volumes before it reports the death (and
        // before a waiter hears of the exit).
        self.volume_events(c, "unmount");
        let res = c.update(|s| {
            s.status = if dead { Status::Dead } else { Status::Exited };
            s.paused = false;
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
        let hc = c.host_config();
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
}
