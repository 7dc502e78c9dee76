//! Docker's default network, `bridge`: made the first time a container
//! needs it, with a subnet from the pool like any other. It has no DNS
//! server of its own: its containers keep the host's resolvers.

use super::Networks;
use super::bridge::CreateOptions;
use super::record::NetworkRecord;
use crate::error::Result;

/// The default network's name (Docker's).
pub const DEFAULT_NETWORK: &str = "bridge";

impl Networks {
    /// The default network, made on first use.
    pub async fn ensure_default(&self) -> Result<NetworkRecord> {
        if let Ok(n) = self.get(DEFAULT_NETWORK) {
            return Ok(n);
        }
        let _changes = self.changes.lock().await;
        if let Ok(n) = self.get(DEFAULT_NETWORK) {
            return Ok(n);
        }
        self.create_locked(CreateOptions {
            name: DEFAULT_NETWORK.to_string(),
            ..CreateOptions::default()
        })
        .await
    }
}
