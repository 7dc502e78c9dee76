//! Waiting on a container (`docker wait`): until it is not running, its
//! next exit, or its removal; and the wait on the exit counter that stop
//! and remove use.

use std::sync::Arc;
use std::time::Duration;

use super::record::Status;
use super::{Container, Containers};
use crate::error::{Error, RequestError, Result};

/// What `wait` waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Until the container is not running (at once when it is not).
    NotRunning,
    /// Until its process next exits.
    NextExit,
    /// Until it is removed.
    Removed,
}

impl WaitCondition {
    /// Parses Docker's `condition` query value.
    pub fn parse(v: Option<&str>) -> Result<Self> {
        match v {
            None | Some("not-running") => Ok(Self::NotRunning),
            Some("next-exit") => Ok(Self::NextExit),
            Some("removed") => Ok(Self::Removed),
            Some(other) => Err(Error::from(RequestError::Invalid(format!(
                "invalid condition {other:?}: use not-running, next-exit or removed"
            )))),
        }
    }
}

impl Containers {
    /// Waits for `condition`; returns the exit code.
    pub async fn wait(&self, c: &Arc<Container>, condition: WaitCondition) -> i64 {
        let mut signals = c.signals();
        let start = *signals.borrow();
        loop {
            let now = *signals.borrow_and_update();
            let state = c.state();
            let done = match condition {
                // An exit since the wait began ends it too, as Docker's
                // does: a container with a restart policy is back to
                // running (or restarting) by the time the waiter looks.
                WaitCondition::NotRunning => {
                    now.removed
                        || now.exits > start.exits
                        || !matches!(state.status, Status::Running | Status::Restarting)
                }
                WaitCondition::NextExit => now.removed || now.exits > start.exits,
                WaitCondition::Removed => now.removed,
            };
            if done {
                return state.exit_code;
            }
            if signals.changed().await.is_err() {
                return c.state().exit_code;
            }
        }
    }
}

/// Waits until the exit counter passes `exits`, or `timeout` passes.
pub(super) async fn wait_exits(
    signals: &mut tokio::sync::watch::Receiver<super::Signals>,
    exits: u64,
    timeout: Option<Duration>,
) -> bool {
    let wait = async {
        loop {
            if signals.borrow_and_update().exits > exits {
                return true;
            }
            if signals.changed().await.is_err() {
                return false;
            }
        }
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, wait).await.unwrap_or(false),
        None => wait.await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wait_conditions_parse() {
        assert_eq!(
            WaitCondition::parse(None).unwrap(),
            WaitCondition::NotRunning
        );
        assert_eq!(
            WaitCondition::parse(Some("removed")).unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse(Some("soon")).is_err());
    }
}
