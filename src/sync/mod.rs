//! Workspace sync: the host side of `mode = "sync"` (and the follow-ups of
//! both modes).
//!
//! A synced workspace is a copy of a host folder in a volume of its own
//! (`{project}_{container}-workspace`, labelled with the project and
//! `servin.workspace`), written by the engine from batches this module
//! sends (`/servin/v1/workspaces/...`, see [`servin_proto::workspace`]).
//!
//! - [`matcher`]: the one ignore matcher (gitignore semantics) used by the
//!   copy, the watcher and the rebuild trigger.
//! - [`tree`]: scanning the source.
//! - [`index`]: what the engine's copy holds, persisted beside the project
//!   file so a restarted `up` or `watch` sends nothing unchanged.
//! - [`plan`]: the batch that takes the copy to the source (pure).
//! - [`workspace`]: one workspace's sync: scan, diff, send, record.
//! - [`watch`]: the file watcher and the follow-ups (`restart`,
//!   `rebuild`, `exec`).

pub mod index;
pub mod matcher;
pub mod plan;
pub mod tree;
pub mod watch;
pub mod workspace;

use std::path::{Path, PathBuf};

use crate::project::normal::{self, WorkspaceMode};

pub use self::workspace::{Report, Syncer, Workspace};

/// What stops a workspace sync; each names its subject.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source folder is missing or not a folder.
    #[error("workspace source {}: not a folder (it vanished, or was never made)", .0.display())]
    Source(PathBuf),
    /// The ignore rules cannot be read.
    #[error(transparent)]
    Rules(#[from] matcher::MatcherError),
    /// The index cannot be written.
    #[error("workspace index {}", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] crate::client::Error),
    /// The file watcher cannot start.
    #[error("watch {}: {message}", path.display())]
    Watch { path: PathBuf, message: String },
}

/// The engine name of container `container`'s workspace volume.
pub fn volume_name(project: &str, container: &str) -> String {
    format!("{project}_{container}-workspace")
}

/// The owner of a workspace's copy: the workspace's `uid` and `gid`, else
/// the container's `user` when it is numeric (`1000` or `1000:1000`), else
/// root. A group left out is the user's number.
pub fn owner(c: &normal::Container, w: &normal::Workspace) -> (u32, u32) {
    let (user_uid, user_gid) = match c.user.as_deref() {
        Some(u) => {
            let (a, b) = u.split_once(':').unwrap_or((u, ""));
            (a.parse::<u32>().ok(), b.parse::<u32>().ok())
        }
        None => (None, None),
    };
    let uid = w.uid.or(user_uid).unwrap_or(0);
    let gid = w.gid.or(user_gid).unwrap_or(uid);
    (uid, gid)
}

/// The synced workspaces of `project`'s containers (`services`, or all
/// when empty), with their indexes beside `project_file`.
pub fn synced(
    project: &normal::Project,
    project_file: &Path,
    services: &[String],
) -> Vec<Workspace> {
    project
        .containers
        .iter()
        .filter(|(k, _)| services.is_empty() || services.contains(k))
        .filter_map(|(k, c)| {
            let w = c.workspace.as_ref()?;
            (w.mode == WorkspaceMode::Sync).then(|| {
                let (uid, gid) = owner(c, w);
                Workspace {
                    project: project.project.name.clone(),
                    container: k.clone(),
                    volume: volume_name(&project.project.name, k),
                    source: PathBuf::from(&w.source),
                    target: w.target.clone(),
                    ignore: w.ignore.clone(),
                    uid,
                    gid,
                    index_path: index::index_path(project_file, &project.project.name, k),
                }
            })
        })
        .collect()
}
