//! The workspace sync calls (`/servin/v1/workspaces/{volume}`): a batch of
//! changes written into a workspace volume, and what the volume holds.
//!
//! A batch's body is one binary stream: a big-endian `u32` length, that
//! many bytes of JSON ([`BatchHeader`]), then a tar stream of folders,
//! regular files and symbolic links to write. Deletions run before the
//! tar's entries. Paths are relative to the workspace, `/`-separated.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The label that marks a volume as a workspace copy; its value is the
/// container's logical name.
pub const WORKSPACE_LABEL: &str = "servin.workspace";

/// The content type of a batch.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.servin.batch";

/// The path of workspace volume `volume` (GET: its generation).
pub fn workspace_path(volume: &str) -> String {
    format!("/servin/v1/workspaces/{volume}")
}

/// The path of a workspace volume's manifest (GET).
pub fn manifest_path(volume: &str) -> String {
    format!("/servin/v1/workspaces/{volume}/manifest")
}

/// The path that takes a batch (POST).
pub fn batch_path(volume: &str) -> String {
    format!("/servin/v1/workspaces/{volume}/batch")
}

/// The JSON header of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchHeader {
    /// The owner of everything written.
    pub uid: u32,
    /// The group of everything written.
    pub gid: u32,
    /// Labels of the volume when the batch makes it; must include
    /// [`WORKSPACE_LABEL`].
    pub labels: HashMap<String, String>,
    /// Paths to remove (files, links, or folders with their content)
    /// before the tar's entries are written.
    pub delete: Vec<String>,
    /// Remove the temporary files an interrupted batch left (the CLI asks
    /// after a batch it sent got no answer).
    pub sweep: bool,
}

/// A path of a batch that could not be written or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The path, relative to the workspace.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The answer to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Identifies this copy of the volume: it changes when the volume is
    /// removed and made again, so a CLI knows its index is stale.
    pub generation: String,
    /// Entries written (folders, files, links).
    pub written: u64,
    /// Paths removed.
    pub deleted: u64,
    /// Paths that failed, each named.
    pub failed: Vec<Failure>,
}

/// The answer of `GET /servin/v1/workspaces/{volume}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// See [`BatchOutcome::generation`].
    pub generation: String,
}

/// One entry of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The path, relative to the workspace, `/`-separated.
    pub path: String,
    /// `dir`, `file` or `symlink`.
    pub kind: String,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes (files).
    pub size: u64,
    /// `sha256:<hex>` of the content (files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The target (links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The owner.
    pub uid: u32,
    /// The group.
    pub gid: u32,
}

/// The answer of `GET /servin/v1/workspaces/{volume}/manifest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// See [`BatchOutcome::generation`].
    pub generation: String,
    /// Every folder, file and link, sorted by path.
    pub entries: Vec<ManifestEntry>,
}
