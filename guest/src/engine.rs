//! The engine: the state every API request shares.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::container::Containers;
use crate::error::Result;
use crate::registry::Registries;
use crate::store::Store;
use crate::volume::Volumes;

/// The running engine.
pub struct Engine {
    /// Settings it was started with.
    pub config: Config,
    /// The image store.
    pub store: Arc<Store>,
    /// The containers.
    pub containers: Arc<Containers>,
    /// The named volumes.
    pub volumes: Arc<Volumes>,
    /// Registry clients and credentials.
    pub registries: Registries,
    /// When it started.
    pub started: Instant,
    /// One apply or down per project at a time.
    pub projects: crate::project::apply::Locks,
}

impl Engine {
    /// Opens the engine's state under `config.root`, finding running
    /// containers again. Must be called inside the tokio runtime.
    pub fn open(config: Config) -> Result<Self> {
        let store = Arc::new(Store::open(&config.root)?);
        let volumes = Arc::new(Volumes::open(&config.root)?);
        let containers = Containers::open(&config.root, Arc::clone(&store), Arc::clone(&volumes))?;
        let registries = Registries::new(config.insecure_registries.clone(), config.home.clone());
        Ok(Self {
            config,
            store,
            containers,
            volumes,
            registries,
            started: Instant::now(),
            projects: Default::default(),
        })
    }
}
