//! Sending a signal to a running container (`docker kill`); SIGKILL counts
//! as a stop by the user, so the restart policy leaves it down.

use std::sync::Arc;
use std::time::Duration;

use super::record::Status;
use super::wait::wait_exits;
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::runtime::OciRuntime;

/// How long a SIGKILL waits for the container to go down (Docker's
/// figure).
const KILL_WAIT: Duration = Duration::from_secs(10);

impl Containers {
    /// Sends a signal to a running container; with SIGKILL, returns once it
    /// has exited.
    pub async fn kill(&self, c: &Arc<Container>, signal: &str) -> Result<()> {
        if c.state().status != Status::Running {
            return Err(Error::from(ContainerError::NotRunning(format!(
                "cannot kill container {}: container {} is not running",
                c.name(),
                c.id()
            ))));
        }
        let for_good = stops_for_good(signal);
        if for_good {
            c.update(|s| s.stopped_by_user = true)?;
        }
        let mut signals = c.signals();
        let exits = signals.borrow().exits;
        self.runtime()?.kill(c.id(), signal, false).await?;
        if for_good && c.state().paused {
            // A frozen process takes its SIGKILL once thawed (Docker
            // resumes a paused container it kills).
            self.thaw_after_signal(c).await;
        }
        let mut attrs = c.attributes();
        attrs.insert("signal".to_string(), signal.to_string());
        self.events.container("kill", c.id(), attrs);
        if for_good {
            // As Docker: a SIGKILL returns once the container is down, so
            // an inspect right after shows it stopped.
            let down = wait_exits(&mut signals, exits, Some(KILL_WAIT)).await;
            if !down {
                tracing::warn!(
                    "container {}: kill: still running {}s after SIGKILL",
                    c.name(),
                    KILL_WAIT.as_secs()
                );
            }
        }
        Ok(())
    }
}

/// Whether `signal` is SIGKILL (by any of its names), which Docker counts
/// as a stop by the user: the restart policy leaves the container down.
fn stops_for_good(signal: &str) -> bool {
    matches!(signal, "KILL" | "SIGKILL" | "9")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sigkill_keeps_a_container_down() {
        for signal in ["KILL", "SIGKILL", "9"] {
            assert!(stops_for_good(signal), "{signal}");
        }
        for signal in ["TERM", "SIGHUP", "15", "kill"] {
            assert!(!stops_for_good(signal), "{signal}");
        }
    }
}
