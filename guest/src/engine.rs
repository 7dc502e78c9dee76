//! The engine: the state every API request shares.

use std::time::Instant;

use crate::config::Config;
use crate::error::Result;
use crate::registry::Registries;
use crate::store::Store;

/// The running engine.
pub struct Engine {
    /// Settings it was started with.
    pub config: Config,
    /// The image store.
    pub store: Store,
    /// Registry clients and credentials.
    pub registries: Registries,
    /// When it started.
    pub started: Instant,
}

impl Engine {
    /// Opens the engine's state under `config.root`.
    pub fn open(config: Config) -> Result<Self> {
        let store = Store::open(&config.root)?;
        let registries = Registries::new(config.insecure_registries.clone(), config.home.clone());
        Ok(Self {
            config,
            store,
            registries,
            started: Instant::now(),
        })
    }
}
