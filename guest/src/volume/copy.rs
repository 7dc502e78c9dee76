//! Copy-up: on first mount into an empty volume, the image's content at the
//! mount path is copied into it, as Docker does. Owners, modes, times,
//! symlinks, hard links, fifos and device nodes are kept; the volume's root
//! takes the owner and mode of the image's folder.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Timespec, Timestamps};

use crate::error::{Error, Result};

/// How many symlinks a path may pass through, as the kernel allows.
const MAX_LINKS: usize = 40;

/// Resolves `path` (absolute, as the container sees it) inside `root`, with
/// symlinks followed as the container would follow them: never out of
/// `root`. `None` when a part of it does not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut todo: Vec<String> = components(path).into_iter().rev().collect();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        let md = std::fs::symlink_metadata(root.join(&next)).ok()?;
        if md.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(root.join(&next)).ok()?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                cur = PathBuf::new();
            }
            todo.extend(components(&target).into_iter().rev());
        } else {
            cur = next;
        }
    }
    Some(root.join(cur))
}

/// The normal and `..` parts of a path.
fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// Whether the folder `dir` has no entries (a missing folder counts as
/// empty).
pub fn is_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io("read", dir)(e)),
    }
}

/// Copies what the container's root `rootfs` has at `dest` into the volume
/// folder `data` when `data` is empty and `dest` is a folder; returns whether
/// it copied.
pub fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<bool> {
    if !is_empty(data)? {
        return Ok(false);
    }
    let Some(src) = resolve_in_root(rootfs, dest) else {
        return Ok(false);
    };
    let Ok(md) = std::fs::symlink_metadata(&src) else {
        return Ok(false);
    };
    if !md.is_dir() {
        return Ok(false);
    }
    let mut links = HashMap::new();
    copy_dir(&src, data, &mut links)?;
    set_dir_attrs(data, &md)?;
    Ok(true)
}

/// Copies the entries of `src` into the existing folder `dst`.
fn copy_dir(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(src).map_err(Error::io("read", src))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("read", src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let md = std::fs::symlink_metadata(&from).map_err(Error::io("stat", &from))?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to).map_err(Error::io("create", &to))?;
            copy_dir(&from, &to, links)?;
            set_dir_attrs(&to, &md)?;
            continue;
        }
        if md.nlink() > 1 && !ft.is_symlink() {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                std::fs::hard_link(first, &to).map_err(Error::io("link", &to))?;
                continue;
            }
            links.insert((md.dev(), md.ino()), to.clone());
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(Error::io("read link", &from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(Error::io("symlink", &to))?;
            std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()))
                .map_err(Error::io("chown", &to))?;
            set_times(&to, &md)?;
            continue;
        }
        if ft.is_file() {
            copy_file(&from, &to, &md)?;
            continue;
        } else {
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_fifo() {
                FileType::Fifo
            } else if ft.is_char_device() {
                FileType::CharacterDevice
            } else if ft.is_block_device() {
                FileType::BlockDevice
            } else {
                // Sockets belong to the process that made them.
                continue;
            };
            rustix::fs::mknodat(
                CWD,
                &to,
                kind,
                Mode::from_raw_mode(md.mode() & 0o7777),
                md.rdev(),
            )
            .map_err(|e| Error::io("mknod", &to)(e.into()))?;
        }
        set_attrs(&to, &md)?;
    }
    Ok(())
}

/// Copies a regular file into a new file (never through a symlink that
/// appeared at `to`), with the owner, mode and times of `md`.
fn copy_file(from: &Path, to: &Path, md: &std::fs::Metadata) -> Result<()> {
    let mut src = std::fs::File::open(from).map_err(Error::io("open", from))?;
    let mut dst = std::fs::File::create_new(to).map_err(Error::io("create", to))?;
    std::io::copy(&mut src, &mut dst).map_err(Error::io("copy", from))?;
    fd_attrs(&dst, to, md)
}

/// Owner, mode and times of `md` onto the folder `path`, opened without
/// following a symlink.
fn set_dir_attrs(path: &Path, md: &std::fs::Metadata) -> Result<()> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", path)(e.into()))?;
    fd_attrs(&fd, path, md)
}

/// Owner, then mode (chown clears set-id bits), then times, through `fd`.
fn fd_attrs(fd: impl std::os::fd::AsFd, path: &Path, md: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::fchown(&fd, Some(md.uid()), Some(md.gid()))
        .map_err(Error::io("chown", path))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(md.mode() & 0o7777))
        .map_err(|e| Error::io("chmod", path)(e.into()))?;
    rustix::fs::futimens(&fd, &timestamps(md))
        .map_err(|e| Error::io("set times of", path)(e.into()))
}

fn timestamps(md: &std::fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: md.atime(),
            tv_nsec: md.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: md.mtime(),
            tv_nsec: md.mtime_nsec(),
        },
    }
}

/// Owner, mode and times of `md` onto the special file `path`.
fn set_attrs(path: &Path, md: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(md.uid()), Some(md.gid()))
        .map_err(Error::io("chown", path))?;
    // After the owner: chown clears set-id bits.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(md.mode() & 0o7777))
        .map_err(Error::io("chmod", path))?;
    set_times(path, md)
}

fn set_times(path: &Path, md: &std::fs::Metadata) -> Result<()> {
    rustix::fs::utimensat(CWD, path, &timestamps(md), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io("set times of", path)(e.into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("srv/data")).unwrap();
        std::os::unix::fs::symlink("/srv", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("srv/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(resolve_in_root(r, "/abs/data"), Some(r.join("srv/data")));
        assert_eq!(resolve_in_root(r, "/srv/up/srv"), Some(r.join("srv")));
        assert_eq!(resolve_in_root(r, "/../../srv"), Some(r.join("srv")));
        assert_eq!(resolve_in_root(r, "/nope"), None);
        assert_eq!(resolve_in_root(r, "/loop"), None);
    }

    #[test]
    fn copies_content_owners_modes_and_links_once() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let src = r.join("app");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "hello").unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::os::unix::fs::lchown(src.join("sub/f"), Some(1234), Some(5678)).unwrap();
        std::fs::write(src.join("suid"), "s").unwrap();
        std::os::unix::fs::lchown(src.join("suid"), Some(1000), Some(1000)).unwrap();
        std::fs::set_permissions(src.join("suid"), std::fs::Permissions::from_mode(0o4750))
            .unwrap();
        let old = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 5,
            },
        };
        rustix::fs::utimensat(CWD, src.join("sub/f"), &old, AtFlags::empty()).unwrap();
        std::fs::hard_link(src.join("sub/f"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        rustix::fs::mknodat(
            CWD,
            src.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::lchown(&src, Some(99), Some(98)).unwrap();
        let data = r.join("data");
        std::fs::create_dir(&data).unwrap();
        assert!(copy_up(r, "/app", &data).unwrap());
        assert_eq!(
            std::fs::read_to_string(data.join("sub/f")).unwrap(),
            "hello"
        );
        let md = std::fs::metadata(data.join("sub/f")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (1234, 5678, 0o640)
        );
        assert_eq!((md.mtime(), md.mtime_nsec()), (1_000_000_000, 5));
        let suid = std::fs::metadata(data.join("suid")).unwrap();
        assert_eq!(
            (suid.uid(), suid.mode() & 0o7777),
            (1000, 0o4750),
            "set-id bits survive the chown"
        );
        let hard = std::fs::metadata(data.join("hard")).unwrap();
        assert_eq!(hard.ino(), md.ino(), "hard links stay linked");
        assert_eq!(
            std::fs::read_link(data.join("link")).unwrap(),
            Path::new("sub/f")
        );
        assert!(
            std::fs::symlink_metadata(data.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let top = std::fs::metadata(&data).unwrap();
        assert_eq!((top.uid(), top.gid(), top.mode() & 0o7777), (99, 98, 0o750));
        // Not empty any more: a second mount copies nothing.
        std::fs::write(src.join("new"), "x").unwrap();
        assert!(!copy_up(r, "/app", &data).unwrap());
        assert!(!data.join("new").exists());
        // Nothing at the path, or a file there: nothing to copy.
        let other = r.join("other");
        std::fs::create_dir(&other).unwrap();
        assert!(!copy_up(r, "/missing", &other).unwrap());
        assert!(!copy_up(r, "/app/sub/f", &other).unwrap());
    }

    use std::os::unix::fs::FileTypeExt;
}
