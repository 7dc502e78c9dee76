//! Workspace copies: the engine side of `mode = "sync"`.
//!
//! A synced workspace lives in a named volume of its own, labelled
//! [`WORKSPACE_LABEL`] (and with the project's labels, so `down --volumes`
//! removes it and a recreate keeps it). The CLI sends batches of changes
//! through `POST /servin/v1/workspaces/{volume}/batch`; [`apply`] writes
//! them into the volume's data folder. `GET .../manifest` ([`manifest`])
//! lists what the volume holds, with content digests, so a CLI that lost
//! its index sends only what differs.
//!
//! A batch travels as one binary stream:
//!
//! ```text
//! u32 (big-endian) header length N
//! N bytes of JSON: BatchHeader { uid, gid, labels, delete: [paths] }
//! a tar stream: folders, regular files and symbolic links to write
//! ```
//!
//! Deletions run first (so a file that became a folder, or a renamed
//! folder, leaves nothing behind), then the tar's entries in order. Every
//! path is relative to the volume; one that is absolute, holds `..` or
//! `.`, or whose parent inside the volume is a symbolic link is refused,
//! and every lookup goes through `openat2` with `RESOLVE_BENEATH` and
//! `RESOLVE_NO_SYMLINKS`, so nothing is ever written outside the volume
//! whatever the container did to it. A new file is written unnamed
//! (`O_TMPFILE`) and linked in; a changed one is written to a temporary
//! name in its folder and renamed over the old: a program in the container
//! sees the old content or the new, never a half-written or missing file.
//! A path that cannot be written is reported by name in the answer and the
//! rest of the batch goes on. Files and links are written by a small pool
//! of threads while the stream is read, each folder resolved once per
//! batch; an entry in the way of one still being written waits for it, so
//! the copy ends as if the entries were written one after the other.
//! Files are not fsynced (`rsync` does not either): the CLI's in-flight
//! marker and the manifest mend a batch cut short by a crash.
//!
//! - [`apply`]: writing a batch.
//! - [`manifest`]: listing a volume's content.
//! - [`path`]: the rule for a batch's paths.

pub mod apply;
pub mod manifest;
pub mod path;

pub use servin_proto::workspace::{BatchHeader, BatchOutcome, Failure, WORKSPACE_LABEL};

/// The generation of a volume: its name and creation time.
pub fn generation(v: &crate::volume::Volume) -> String {
    format!("{}@{}", v.meta.name, v.meta.created)
}
