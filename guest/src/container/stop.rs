//! Stopping a container: its stop signal, then SIGKILL to every process
//! in it when the grace period passes.

use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::ContainerCreateBody;
use tokio::sync::watch;

use super::record::Status;
use super::wait::wait_exits;
use super::{Container, Containers, Signals};
use crate::error::{Error, Result};
use crate::runtime::OciRuntime;

/// Default seconds `stop` waits before SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;
/// How long a SIGKILLed container may take to exit before the stop (or
/// remove) fails.
const KILL_WAIT: Duration = Duration::from_secs(30);

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
        if state.paused {
            // As Docker: a paused container is thawed, so that its
            // process can take the stop signal.
            self.thaw_after_signal(c).await;
        }
        let sig = stop_signal(signal, &c.record.body);
        let timeout = timeout
            .or(c.record.body.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        signal_then_kill(rt, c.id(), &c.name(), &sig, timeout, &mut signals, exits).await?;
        self.events.container("stop", c.id(), c.attributes());
        Ok(true)
    }
}

/// The signal `stop` sends first: the one asked for, else the container's
/// `StopSignal`, else SIGTERM.
fn stop_signal(asked: Option<&str>, body: &ContainerCreateBody) -> String {
    asked
        .map(String::from)
        .or_else(|| body.stop_signal.clone())
        .unwrap_or_else(|| "TERM".to_string())
}

/// Sends `signal` to the container's init and waits `timeout` seconds for
/// its exit (the exit counter passing `exits`); then SIGKILLs every process
/// in it. A failed signal is only logged: the container may be exiting
/// already, and the wait decides.
async fn signal_then_kill<R: OciRuntime>(
    rt: &R,
    id: &str,
    name: &str,
    signal: &str,
    timeout: i64,
    signals: &mut watch::Receiver<Signals>,
    exits: u64,
) -> Result<()> {
    if let Err(e) = rt.kill(id, signal, false).await {
        tracing::debug!("stop signal to {name}: {}", e.full_message());
    }
    let grace = Duration::from_secs(u64::try_from(timeout.max(0)).unwrap_or(0));
    if wait_exits(signals, exits, Some(grace)).await {
        return Ok(());
    }
    tracing::info!(name = %name, "did not stop within {timeout}s: killing it");
    kill_all(rt, id, name, "stop", signals, exits).await
}

/// SIGKILLs every process of the container and waits for the exit; `step`
/// names the operation in the error when it does not come.
pub(super) async fn kill_all<R: OciRuntime>(
    rt: &R,
    id: &str,
    name: &str,
    step: &str,
    signals: &mut watch::Receiver<Signals>,
    exits: u64,
) -> Result<()> {
    if let Err(e) = rt.kill(id, "KILL", true).await {
        tracing::debug!("SIGKILL to {name}: {}", e.full_message());
    }
    if wait_exits(signals, exits, Some(KILL_WAIT)).await {
        Ok(())
    } else {
        Err(Error::Runtime {
            context: format!("container {name}: {step}"),
            message: "the process did not exit after SIGKILL".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::runtime::oci::fake::{Call, Recording};

    fn kill(signal: &str, all: bool) -> Call {
        Call::Kill {
            id: "c1".to_string(),
            signal: signal.to_string(),
            all,
        }
    }

    /// A container whose process exits on the signals `exits_on` accepts.
    fn container(
        exits_on: fn(&str, bool) -> bool,
    ) -> (
        Recording,
        watch::Receiver<Signals>,
        Arc<watch::Sender<Signals>>,
    ) {
        let (tx, rx) = watch::channel(Signals::default());
        let tx = Arc::new(tx);
        let sender = Arc::clone(&tx);
        let rt = Recording::new(move |signal, all| {
            if exits_on(signal, all) {
                sender.send_modify(|s| s.exits += 1);
            }
        });
        (rt, rx, tx)
    }

    #[test]
    fn the_stop_signal_is_the_asked_then_the_containers_then_term() {
        let mut body = ContainerCreateBody::default();
        assert_eq!(stop_signal(None, &body), "TERM");
        body.stop_signal = Some("SIGQUIT".to_string());
        assert_eq!(stop_signal(None, &body), "SIGQUIT");
        assert_eq!(stop_signal(Some("INT"), &body), "INT");
    }

    #[tokio::test]
    async fn a_process_that_exits_on_the_signal_is_not_killed() {
        let (rt, mut rx, _tx) = container(|signal, _| signal == "TERM");
        signal_then_kill(&rt, "c1", "web", "TERM", 10, &mut rx, 0)
            .await
            .unwrap();
        assert_eq!(rt.calls(), [kill("TERM", false)]);
    }

    #[tokio::test]
    async fn a_process_that_ignores_sigterm_gets_sigkill_to_all() {
        let (rt, mut rx, _tx) = container(|signal, _| signal == "KILL");
        signal_then_kill(&rt, "c1", "web", "TERM", 0, &mut rx, 0)
            .await
            .unwrap();
        assert_eq!(rt.calls(), [kill("TERM", false), kill("KILL", true)]);
    }

    #[tokio::test]
    async fn a_failed_signal_still_waits_for_the_exit() {
        let rt = Recording::failing_kills("container not running");
        let (tx, mut rx) = watch::channel(Signals::default());
        // The process exits by itself while the stop waits.
        tx.send_modify(|s| s.exits += 1);
        signal_then_kill(&rt, "c1", "web", "TERM", 10, &mut rx, 0)
            .await
            .unwrap();
        assert_eq!(rt.calls(), [kill("TERM", false)]);
    }

    #[tokio::test]
    async fn no_exit_after_sigkill_names_the_step() {
        let rt = Recording::new(|_, _| {});
        let (tx, mut rx) = watch::channel(Signals::default());
        // The 30 s wait is not run out here: the watch's sender going away
        // ends it at once, as an engine shutting down would.
        drop(tx);
        let e = kill_all(&rt, "c1", "web", "remove", &mut rx, 0)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("web") && e.contains("remove") && e.contains("SIGKILL"),
            "{e}"
        );
        assert_eq!(rt.calls(), [kill("KILL", true)]);
    }
}
