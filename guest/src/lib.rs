//! The servin engine.
//!
//! `servin-guest` is the only part of servin that owns images (and, later,
//! containers, networks and volumes). It serves a subset of the Docker Engine
//! API plus `/servin/v1/...` on a unix socket.
//!
//! A tour of the modules:
//! - [`config`]: where the engine keeps its state and listens (`SERVIN_ROOT`,
//!   `SERVIN_HOST`).
//! - [`error`]: the engine's error type, gathering each module's own error
//!   enum (`image::error`, `container::error`, `network::error`,
//!   `volume::error`, `runtime::error`, `reconcile::error`,
//!   `api::request`); the HTTP status of each is decided in `api::status`.
//! - [`filters`]: Docker's `filters` argument with Docker's semantics.
//! - [`state`]: crash-safe JSON records and random IDs, beneath everything.
//! - [`engine`]: the shared state every request sees.
//! - [`events`]: the event stream of `GET /events` (containers, images,
//!   networks, volumes), one for the whole engine.
//! - [`image`]: references, digests, the blob store, registries, pull and
//!   push, unpacking layers, archives and progress messages.
//! - [`runtime`]: runc/crun, OCI bundles and overlayfs root filesystems.
//! - [`monitor`]: the per-container monitor process, logs and exec.
//! - [`container`]: container records, lifecycle, restarts and health.
//! - [`network`]: bridges, address management, namespaces, firewall rules,
//!   the embedded DNS server and published ports.
//! - [`volume`]: named volumes and copying image content into them.
//! - [`workspace`]: synced workspace copies: batches written atomically
//!   into a workspace volume, and its manifest.
//! - [`reconcile`]: the reconciler: observes a project, plans (purely) what
//!   takes it to its desired state, applies the plan in dependency order,
//!   takes it down.
//! - [`build`]: the image builder (Dockerfiles, contexts, the step cache).
//! - [`reset`]: removing everything the engine made (`servin system
//!   reset`).
//! - [`api`]: the HTTP server and its routes.
//! - [`channel`]: the guest end of the host-VM channel in VM mode
//!   (`servin-guest channel`).
//! - [`timefmt`]: times in Docker's RFC 3339 forms (chrono underneath).

pub mod api;
pub mod build;
pub mod channel;
pub mod config;
pub mod container;
pub mod engine;
pub mod error;
pub mod events;
pub mod filters;
pub mod image;
pub mod init;
pub mod monitor;
pub mod network;
pub mod reconcile;
pub mod reset;
pub mod runtime;
pub mod state;
pub mod timefmt;
pub mod volume;
pub mod workspace;

/// The engine's version, reported by `/version` and `/info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
