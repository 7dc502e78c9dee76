//! The ConfigMap and Secret files of a played project.
//!
//! They live beside the YAML file, in `.servin-kube/PROJECT/POD/VOLUME/`,
//! where the engine can bind them as it binds any project folder (the
//! engine's own state is not the CLI's to write). `.servin-kube` is made
//! readable by its owner only and holds a `.gitignore` of `*`, so Secret
//! values are neither shown to other users nor committed. A second play
//! rewrites only what changed, in place, so that a container sees the new
//! content through its bind (as a pod sees an updated ConfigMap), and
//! removes what the file no longer names; `--down` removes the project's
//! folder, and `.servin-kube` once it holds no other project.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use super::map::File;

/// The folder name beside the YAML file.
pub const FOLDER: &str = ".servin-kube";

/// A file or folder that could not be written or removed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct FilesError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn fail(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FilesError {
    let path = path.to_path_buf();
    move |source| FilesError {
        action,
        path,
        source,
    }
}

/// The files folder of project `project` played from `yaml`.
pub fn folder(yaml: &Path, project: &str) -> PathBuf {
    let parent = yaml.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    parent.join(FOLDER).join(project)
}

/// Makes `dir` hold exactly `dirs` and `files` (paths relative to it).
pub fn write(dir: &Path, dirs: &BTreeSet<PathBuf>, files: &[File]) -> Result<(), FilesError> {
    if let Some(top) = dir.parent() {
        make_private(top)?;
    }
    std::fs::create_dir_all(dir).map_err(fail("make folder", dir))?;
    let mut wanted_dirs = BTreeSet::new();
    for d in dirs {
        let full = dir.join(d);
        std::fs::create_dir_all(&full).map_err(fail("make folder", &full))?;
        wanted_dirs.insert(full);
    }
    let mut wanted_files = BTreeSet::new();
    for f in files {
        let full = dir.join(&f.path);
        if let Some(p) = full.parent() {
            std::fs::create_dir_all(p).map_err(fail("make folder", p))?;
            wanted_dirs.insert(p.to_path_buf());
        }
        if std::fs::read(&full).ok().as_deref() != Some(f.data.as_slice()) {
            // In place (not renamed over), so that a bind of the file
            // itself sees the new content too.
            std::fs::write(&full, &f.data).map_err(fail("write", &full))?;
        }
        wanted_files.insert(full);
    }
    prune(dir, &wanted_dirs, &wanted_files)?;
    Ok(())
}

/// `.servin-kube`: only its owner may enter; ignored by git.
fn make_private(top: &Path) -> Result<(), FilesError> {
    use std::os::unix::fs::PermissionsExt;
    if !top.is_dir() {
        std::fs::create_dir_all(top).map_err(fail("make folder", top))?;
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o700))
            .map_err(fail("set the permissions of", top))?;
    }
    let ignore = top.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "*\n").map_err(fail("write", &ignore))?;
    }
    Ok(())
}

/// Removes below `dir` what is neither wanted nor on the way to it.
fn prune(
    dir: &Path,
    wanted_dirs: &BTreeSet<PathBuf>,
    wanted_files: &BTreeSet<PathBuf>,
) -> Result<(), FilesError> {
    let entries = std::fs::read_dir(dir).map_err(fail("read folder", dir))?;
    for entry in entries {
        let entry = entry.map_err(fail("read folder", dir))?;
        let path = entry.path();
        let is_dir = entry
            .file_type()
            .map_err(fail("read folder", dir))?
            .is_dir();
        if is_dir {
            let needed = wanted_dirs.iter().any(|w| w.starts_with(&path))
                || wanted_files.iter().any(|w| w.starts_with(&path));
            if needed {
                prune(&path, wanted_dirs, wanted_files)?;
            } else {
                std::fs::remove_dir_all(&path).map_err(fail("remove", &path))?;
            }
        } else if !wanted_files.contains(&path) {
            std::fs::remove_file(&path).map_err(fail("remove", &path))?;
        }
    }
    Ok(())
}

/// Removes the project's files folder, and `.servin-kube` when nothing but
/// its `.gitignore` is left. Whether anything was removed.
pub fn remove(dir: &Path) -> Result<bool, FilesError> {
    if !dir.exists() {
        return Ok(false);
    }
    std::fs::remove_dir_all(dir).map_err(fail("remove", dir))?;
    if let Some(top) = dir.parent() {
        let left: Vec<_> = std::fs::read_dir(top)
            .map_err(fail("read folder", top))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != ".gitignore")
            .collect();
        if left.is_empty() {
            std::fs::remove_dir_all(top).map_err(fail("remove", top))?;
        }
    }
    Ok(true)
}
