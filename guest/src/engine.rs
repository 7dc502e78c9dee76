//! The engine: the state every API request shares.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::container::Containers;
use crate::container::discovery::{self, ContainerNames};
use crate::error::Result;
use crate::events::Events;
use crate::image::registry::Registries;
use crate::image::store::Store;
use crate::network::dns::{self, DnsConfig, DnsServer};
use crate::volume::Volumes;

/// The running engine.
pub struct Engine {
    /// Settings it was started with.
    pub config: Config,
    /// The image store.
    pub store: Arc<Store>,
    /// The containers.
    pub containers: Arc<Containers>,
    /// The event stream of `/events`, shared by the containers, the
    /// images and the volumes.
    pub events: Arc<Events>,
    /// The named volumes.
    pub volumes: Arc<Volumes>,
    /// Registry clients and credentials.
    pub registries: Registries,
    /// The DNS server of the user-defined networks.
    pub dns: Arc<DnsServer>,
    /// When it started.
    pub started: Instant,
    /// One apply or down per project at a time.
    pub projects: crate::reconcile::apply::Locks,
    /// The images running applies wait for while the CLI builds them.
    pub pending_images: crate::reconcile::pending::PendingImages,
    /// Notified to stop serving (after a reset).
    pub shutdown: tokio::sync::Notify,
    /// The image builder's contexts and cache.
    pub builder: Arc<crate::build::Builder>,
}

impl Engine {
    /// Opens the engine's state under `config.root`, finding running
    /// containers again, and starts the networks' DNS server (forwarding to
    /// the host's resolvers). Must be called inside the tokio runtime.
    pub fn open(config: Config) -> Result<Self> {
        let config_root = config.root.clone();
        let events = Arc::new(Events::default());
        let store = Arc::new(Store::open(&config.root, Arc::clone(&events))?);
        let volumes = Arc::new(Volumes::open(&config.root, Arc::clone(&events))?);
        let containers = Containers::open(
            &config.root,
            &config.socket,
            Arc::clone(&store),
            Arc::clone(&volumes),
            Arc::clone(&events),
        )?;
        let registries = Registries::new(config.insecure_registries.clone(), config.home.clone());
        let upstreams = host_resolvers();
        let dns = Arc::new(DnsServer::new(
            Arc::new(ContainerNames::new(Arc::downgrade(&containers))),
            DnsConfig {
                upstreams,
                ..DnsConfig::default()
            },
        ));
        discovery::serve(Arc::clone(&dns), Arc::clone(&containers.networks));
        Ok(Self {
            config,
            store,
            containers,
            events,
            volumes,
            registries,
            dns,
            started: Instant::now(),
            projects: Default::default(),
            pending_images: Default::default(),
            shutdown: tokio::sync::Notify::new(),
            builder: Arc::new(crate::build::Builder::open(&config_root)?),
        })
    }
}

/// The host's resolvers, from `/etc/resolv.conf`, or, when that names only
/// a local stub resolver, from systemd-resolved's list of the real ones.
fn host_resolvers() -> Vec<std::net::SocketAddr> {
    let mut last = None;
    for file in ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"] {
        let path = std::path::Path::new(file);
        if file != "/etc/resolv.conf" && !path.exists() {
            continue;
        }
        match dns::upstreams_from_resolv_conf(path) {
            Ok(found) if !found.is_empty() => return found,
            Ok(_) => {}
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => tracing::warn!(
            "names outside the networks will not resolve in containers: {}",
            e.full_message()
        ),
        None => tracing::warn!(
            "names outside the networks will not resolve in containers: the host's resolv.conf names no usable resolver"
        ),
    }
    Vec::new()
}
