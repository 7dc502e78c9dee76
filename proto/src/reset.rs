//! `POST /servin/v1/reset`: the engine removes everything it made and
//! answers with a [`ResetReport`], then stops. `servin system reset`
//! prints the report and removes the state root and the socket.

use serde::{Deserialize, Serialize};

/// The servin API path that resets the engine.
pub const RESET_PATH: &str = "/servin/v1/reset";

/// What a reset removed, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetReport {
    /// The containers, killed when they ran, then removed.
    pub containers: Vec<RemovedContainer>,
    /// The images, with their names.
    pub images: Vec<RemovedImage>,
    /// The volumes' names.
    pub volumes: Vec<String>,
    /// The networks, the default one too, with their host objects.
    pub networks: Vec<RemovedNetwork>,
    /// The addresses the networks' DNS server stopped answering on.
    pub dns_listeners: Vec<String>,
    /// What was still mounted below the state root and was unmounted.
    pub mounts: Vec<String>,
    /// Each step that failed, naming its object; the rest went on.
    pub errors: Vec<String>,
    /// The engine's process ID: it stops once the answer is sent.
    pub engine_pid: u32,
}

/// A container a reset removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedContainer {
    /// Its full ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it was running (it was killed).
    pub was_running: bool,
}

/// An image a reset removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedImage {
    /// Its ID (`sha256:...`).
    pub id: String,
    /// Its names, in their familiar form.
    pub tags: Vec<String>,
}

/// A network a reset removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedNetwork {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its Linux bridge (`sv-<tag>`).
    pub bridge: String,
    /// Its firewall rules: the nftables table or the iptables chains.
    pub firewall: String,
}
