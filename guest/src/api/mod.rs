//! The HTTP API: Docker Engine API calls where Docker has them, and
//! `/servin/v1/...` for what it lacks.
//!
//! - [`server`]: the unix socket listener and connection loop.
//! - [`routes`]: request dispatch, queries and response helpers.
//! - [`body`]: request bodies, with the one limit for JSON bodies and the
//!   one for uploads.
//! - [`system`]: `/_ping`, `/version`, `/info`, `/servin/v1/info`.
//! - [`auth`]: `POST /auth`, checking registry credentials.
//! - [`images`]: the `/images/...` calls.
//! - [`container_filter`]: Docker's container filters, for lists and prune.
//! - [`archive`]: `/containers/{id}/archive`, `docker cp` both ways.
//! - [`containers`]: the `/containers/...`, `/exec/...` and `/events` calls.
//! - [`container_ops`]: stats, top, pause, unpause and update.
//! - [`commit`]: `docker commit`, `diff`, `export` and `import`.
//! - [`system_df`]: `GET /system/df`, the disk use of images, containers
//!   and volumes.
//! - [`system_reset`]: `POST /servin/v1/reset`, removing everything the
//!   engine made, then stopping it.
//! - [`attach`], [`exec`]: the stream pumps of attach and exec, carrying a
//!   container's or an exec process's stdio over the connection.
//! - [`inspect_shape`]: the fields Docker fills in a container's inspect.
//! - [`detach`]: detach keys on attached and exec'd terminals.
//! - [`networks`]: the `/networks/...` calls.
//! - [`volumes`]: the `/volumes/...` calls.
//! - [`projects`]: `/servin/v1/projects/...`, the reconciler.
//! - [`workspaces`]: `/servin/v1/workspaces/...`, batches of synced
//!   workspace changes and the manifest of a workspace copy.
//! - [`stream`]: hijacked connections and Docker's stream framing.
//! - [`request`]: what can be wrong with a request itself.
//! - [`status`]: the HTTP status of every engine error, the one place where
//!   errors meet HTTP.

pub mod archive;
pub mod attach;
pub mod auth;
pub mod body;
pub mod build;
pub mod commit;
pub mod container_filter;
pub mod container_ops;
pub mod containers;
pub mod detach;
pub mod exec;
pub mod image_history;
pub mod images;
pub mod inspect_shape;
pub mod legacy_mac;
pub mod networks;
pub mod predefined;
pub mod projects;
pub mod request;
pub mod routes;
pub mod server;
pub mod status;
pub mod stream;
pub mod system;
pub mod system_df;
pub mod system_reset;
pub mod volumes;
pub mod workspaces;

/// The Docker API version this engine speaks.
pub const API_VERSION: &str = "1.47";
/// The oldest Docker API version it accepts.
pub const MIN_API_VERSION: &str = "1.24";
