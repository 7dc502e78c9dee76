//! What the DNS server and the port forwarder follow: an
//! [`EndpointEvent`] whenever an endpoint is added or removed, and when a
//! network's bridge comes up (its gateway address exists: bind to it then)
//! or the network is removed ([`Networks::subscribe`]).

use std::net::Ipv4Addr;

use tokio::sync::broadcast;

use super::Networks;
use super::record::Endpoint;

/// An endpoint came or went, or a network's bridge came up or went.
#[derive(Debug, Clone)]
pub enum EndpointEvent {
    /// A network's bridge exists with its gateway address (at its
    /// creation, and the first time the engine uses it after starting):
    /// a server may bind to the gateway now.
    NetworkUp {
        /// The network's ID.
        network: String,
        /// Its gateway.
        gateway: Ipv4Addr,
    },
    /// A network and its bridge were removed.
    NetworkRemoved {
        /// The network's ID.
        network: String,
        /// Its gateway (an address the host no longer has).
        gateway: Ipv4Addr,
    },
    /// A container joined `network` (at its start or a connect).
    Added {
        /// The network's ID.
        network: String,
        /// The network's gateway.
        gateway: Ipv4Addr,
        /// The new endpoint.
        endpoint: Endpoint,
    },
    /// A container left `network` (it stopped, or was disconnected).
    Removed {
        /// The network's ID.
        network: String,
        /// The network's gateway.
        gateway: Ipv4Addr,
        /// The endpoint that went.
        endpoint: Endpoint,
    },
}

impl Networks {
    /// A receiver of every endpoint added or removed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EndpointEvent> {
        self.events.subscribe()
    }
}
