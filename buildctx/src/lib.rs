//! The build context of servin's image builder: which files a build may
//! see, what they hold, and moving only what the engine lacks.
//!
//! Synchronous std code, used on both sides: the CLI indexes and packs, the
//! engine receives, stores and selects `COPY` sources.
//!
//! - [`ignore`]: `.dockerignore` with Docker's exact semantics
//!   ([`Matcher::parse`], [`Matcher::excluded`],
//!   [`Matcher::may_reinclude_under`]) and [`load_for`], which picks
//!   `<Dockerfile>.dockerignore` over `<context>/.dockerignore`.
//! - [`index`]: [`ContextIndex::build`] walks the context on a few threads
//!   (symlinks never followed, ignored folders pruned), hashes files on a
//!   few threads and keeps a stat cache between runs so a re-index reads
//!   only changed files; [`ContextIndex::digest`] names the whole index;
//!   the index is serde and has a compact [`ContextIndex::encode`] form.
//! - [`delta`]: a [`Delta`] is an index as its change from one the engine
//!   holds, [`ContextIndex::apply`] gives the index back.
//! - [`select`]: [`ContextIndex::select`] gives the entries a `COPY`/`ADD`
//!   source names, grouped by matched path, and
//!   [`ContextIndex::content_digest`] their cache-key digest. No digest
//!   includes mtimes.
//! - [`transfer`]: [`pack`] writes the wanted content as a tar of blobs
//!   named by digest; [`BlobStore`] is the engine's content-addressed store
//!   that tells what is [`missing`](BlobStore::missing) and
//!   [`receive`](BlobStore::receive)s a stream, verifying every blob.
//!
//! Digests are written `sha256:<64 lower-case hex>` everywhere.

#![warn(missing_docs)]

mod cache;
mod codec;
pub mod delta;
mod hash;
pub mod ignore;
pub mod index;
pub mod select;
pub mod transfer;
mod walk;

pub use cache::RACY_MARGIN_NS;
pub use codec::{DecodeError, format_digest, parse_digest};
pub use delta::Delta;
pub use ignore::{IgnoreError, Matcher, load_for};
pub use index::{ContextIndex, Entry, EntryKind, IndexError, IndexStats, PendingCache};
pub use select::{SelectError, Selection};
pub use transfer::{BlobStore, Received, TransferError, pack};
