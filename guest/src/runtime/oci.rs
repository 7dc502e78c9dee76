//! The narrow trait over the OCI runtime: the calls the engine makes on
//! runc or crun about a container (signal it, delete it, ask its state,
//! freeze and thaw it, change its cgroup limits).
//! [`super::runc::Runtime`] runs the real binary; [`fake::Recording`]
//! records the calls, so the decisions around them (which signal `stop`
//! sends and when it kills, what is deleted after a failed start) are
//! unit-tested without root. The monitor runs the runtime's `run` itself,
//! in its own process (see [`crate::monitor`]).

use std::future::Future;

use crate::error::Result;

/// What the runtime says about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    /// `created`, `running`, `stopped` or `paused`.
    pub status: String,
    /// The container's init process, when it has one.
    pub pid: Option<i32>,
}

/// An OCI runtime, as the engine drives it.
pub trait OciRuntime: Send + Sync {
    /// Sends `signal` (`TERM`, `SIGTERM` or a number) to the container's
    /// init, or with `all` to every process in it.
    fn kill(&self, id: &str, signal: &str, all: bool) -> impl Future<Output = Result<()>> + Send;

    /// Deletes the runtime's container (with `force`, a running one too);
    /// fine when it does not exist.
    fn delete(&self, id: &str, force: bool) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a container whose init has exited, as cheaply as the
    /// runtime allows.
    fn delete_stopped(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// The runtime's view of a container, `None` when it has none.
    fn state(&self, id: &str) -> impl Future<Output = Result<Option<RuntimeState>>> + Send;

    /// Freezes every process of the container (the cgroup freezer).
    fn pause(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Thaws a frozen container.
    fn resume(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Applies `resources` (the spec's `linux.resources` as JSON) to the
    /// running container's cgroup.
    fn update(&self, id: &str, resources: &[u8]) -> impl Future<Output = Result<()>> + Send;
}

/// A runtime that records what it is asked, for unit tests.
#[cfg(test)]
pub mod fake {
    use std::sync::Mutex;

    use super::{OciRuntime, RuntimeState};
    use crate::error::{Error, Result};

    /// One call made on the runtime.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Call {
        /// `kill ID SIGNAL` (`--all` when `all`).
        Kill {
            /// The container.
            id: String,
            /// The signal as given.
            signal: String,
            /// Every process, not only the init.
            all: bool,
        },
        /// `delete [--force] ID`.
        Delete {
            /// The container.
            id: String,
            /// `--force`.
            force: bool,
        },
        /// The cleanup of a stopped container.
        DeleteStopped {
            /// The container.
            id: String,
        },
        /// `state ID`.
        State {
            /// The container.
            id: String,
        },
        /// `pause ID`.
        Pause {
            /// The container.
            id: String,
        },
        /// `resume ID`.
        Resume {
            /// The container.
            id: String,
        },
        /// `update --resources - ID`.
        Update {
            /// The container.
            id: String,
            /// The resources as sent.
            resources: String,
        },
    }

    /// The container's side of a signal: called with the signal and `all`.
    type OnKill = Box<dyn Fn(&str, bool) + Send + Sync>;

    /// Records every call; `on_kill` plays the container's side of a
    /// signal (a test bumps the exit counter there for a process that
    /// exits), and kills fail with `kill_error` when set.
    pub struct Recording {
        calls: Mutex<Vec<Call>>,
        on_kill: OnKill,
        kill_error: Option<String>,
    }

    impl Recording {
        /// A runtime whose containers react to signals through `on_kill`
        /// (called with the signal and `all`).
        pub fn new(on_kill: impl Fn(&str, bool) + Send + Sync + 'static) -> Self {
            Self {
                calls: Mutex::new(Vec::new()),
                on_kill: Box::new(on_kill),
                kill_error: None,
            }
        }

        /// The same, with every kill failing with `message`.
        pub fn failing_kills(message: &str) -> Self {
            Self {
                kill_error: Some(message.to_string()),
                ..Self::new(|_, _| {})
            }
        }

        /// The calls so far, in order.
        pub fn calls(&self) -> Vec<Call> {
            self.calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        }

        fn record(&self, call: Call) {
            self.calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(call);
        }
    }

    impl OciRuntime for Recording {
        async fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
            self.record(Call::Kill {
                id: id.to_string(),
                signal: signal.to_string(),
                all,
            });
            if let Some(message) = &self.kill_error {
                return Err(Error::Runtime {
                    context: format!("container {id}: kill"),
                    message: message.clone(),
                });
            }
            (self.on_kill)(signal, all);
            Ok(())
        }

        async fn delete(&self, id: &str, force: bool) -> Result<()> {
            self.record(Call::Delete {
                id: id.to_string(),
                force,
            });
            Ok(())
        }

        async fn delete_stopped(&self, id: &str) -> Result<()> {
            self.record(Call::DeleteStopped { id: id.to_string() });
            Ok(())
        }

        async fn state(&self, id: &str) -> Result<Option<RuntimeState>> {
            self.record(Call::State { id: id.to_string() });
            Ok(None)
        }

        async fn pause(&self, id: &str) -> Result<()> {
            self.record(Call::Pause { id: id.to_string() });
            Ok(())
        }

        async fn resume(&self, id: &str) -> Result<()> {
            self.record(Call::Resume { id: id.to_string() });
            Ok(())
        }

        async fn update(&self, id: &str, resources: &[u8]) -> Result<()> {
            self.record(Call::Update {
                id: id.to_string(),
                resources: String::from_utf8_lossy(resources).into_owned(),
            });
            Ok(())
        }
    }
}
