//! Sending a signal to a running container (`docker kill`); SIGKILL counts
//! as a stop by the user, so the restart policy leaves it down.

use std::sync::Arc;

use super::record::Status;
use super::{Container, Containers};
use crate::error::{Error, Result};

impl Containers {
    /// Sends a signal to a running container.
    pub async fn kill(&self, c: &Arc<Container>, signal: &str) -> Result<()> {
        if c.state().status != Status::Running {
            return Err(Error::Conflict(format!(
                "cannot kill container {}: container {} is not running",
                c.name(),
                c.id()
            )));
        }
        if matches!(signal, "KILL" | "SIGKILL" | "9") {
            c.update(|s| s.stopped_by_user = true)?;
        }
        self.runtime()?.kill(c.id(), signal, false).await?;
        let mut attrs = c.attributes();
        attrs.insert("signal".to_string(), signal.to_string());
        self.events.container("kill", c.id(), attrs);
        Ok(())
    }
}
