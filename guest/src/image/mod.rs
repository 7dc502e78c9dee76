//! Images: everything between a registry and an unpacked root filesystem.
//!
//! - [`reference`]: image references in Docker's normalised form.
//! - [`digest`]: sha256 digests, validated before they name a file.
//! - [`error`]: [`error::ImageError`], what image operations refuse.
//! - [`store`]: the content-addressed blob store and the image records.
//! - [`gc`]: deleting the blobs and snapshots no image needs.
//! - [`unpack`]: layer tars into overlayfs-ready snapshot directories.
//! - [`layer`]: the reverse: overlay upper folders into layer tars,
//!   `docker diff`'s change lists and new snapshots.
//! - [`registry`]: registry clients, credentials and insecure registries.
//! - [`pull`], [`push`]: moving images between a registry and the store.
//! - [`import`]: `docker import`, a root filesystem tar as an image.
//! - [`archive`]: `docker save` tars and OCI layouts, in and out.
//! - [`progress`]: Docker-style JSON progress messages.
//! - [`commit`]: new images on a parent (commit, import, build steps),
//!   with the `--change` instructions of [`changes`].
//!
//! Nothing here knows the engine, the API or the containers: a function
//! takes what it works on (the [`store::Store`], the
//! [`registry::Registries`], a platform, a [`progress::Progress`]), so the
//! API, the reconciler and a future builder call the same code, and the
//! folder can be tested on its own.

pub mod archive;
pub mod changes;
pub mod commit;
pub mod digest;
pub mod error;
pub mod gc;
pub mod import;
pub mod layer;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;
