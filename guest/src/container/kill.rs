//! Sending a signal to a running container (`docker kill`); SIGKILL counts
//! as a stop by the user, so the restart policy leaves it down.

use std::sync::Arc;

use super::record::Status;
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::runtime::OciRuntime;

impl Containers {
    /// Sends a signal to a running container.
    pub async fn kill(&self, c: &Arc<Container>, signal: &str) -> Result<()> {
        if c.state().status != Status::Running {
            return Err(Error::from(ContainerError::NotRunning(format!(
                "cannot kill container {}: container {} is not running",
                c.name(),
                c.id()
            ))));
        }
        if stops_for_good(signal) {
            c.update(|s| s.stopped_by_user = true)?;
        }
        self.runtime()?.kill(c.id(), signal, false).await?;
        let mut attrs = c.attributes();
        attrs.insert("signal".to_string(), signal.to_string());
        self.events.container("kill", c.id(), attrs);
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
