//! The servin engine.
//!
//! `servin-guest` is the only part of servin that owns images (and, later,
//! containers, networks and volumes). It serves a subset of the Docker Engine
//! API plus `/servin/v1/...` on a unix socket.
//!
//! A tour of the modules:
//! - [`config`]: where the engine keeps its state and listens (`SERVIN_ROOT`,
//!   `SERVIN_HOST`).
//! - [`error`]: the engine's error type and its HTTP status.
//! - [`digest`]: sha256 digests, validated before they name a file.
//! - [`reference`]: image references in Docker's normalised form.
//! - [`engine`]: the shared state every request sees.
//! - [`store`]: the content-addressed blob store and the image records.
//! - [`unpack`]: layer tars into overlayfs-ready snapshot directories.
//! - [`registry`]: registry clients, credentials and insecure registries.
//! - [`pull`], [`push`]: moving images between a registry and the store.
//! - [`archive`]: `docker save` tars and OCI layouts, in and out.
//! - [`progress`]: Docker-style JSON progress messages.
//! - [`runtime`]: runc/crun, OCI bundles and overlayfs root filesystems.
//! - [`monitor`]: the per-container monitor process, logs and exec.
//! - [`container`]: container records, lifecycle, restarts and health.
//! - [`network`]: bridges, address management, namespaces and firewall rules.
//! - [`volume`]: named volumes and copying image content into them.
//! - [`project`]: the reconciler: plans a project's desired state.
//! - [`dns`]: the embedded DNS server that resolves container names.
//! - [`ports`]: published ports, forwarded from the host in userland.
//! - [`api`]: the HTTP server and its routes.

pub mod api;
pub mod archive;
pub mod config;
pub mod container;
pub mod digest;
pub mod dns;
pub mod engine;
pub mod error;
pub mod monitor;
pub mod network;
pub mod ports;
pub mod progress;
pub mod project;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod runtime;
pub mod store;
pub mod timefmt;
pub mod unpack;
pub mod volume;

/// The engine's version, reported by `/version` and `/info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
