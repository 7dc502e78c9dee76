//! Writing a batch into a workspace volume's data folder.
//!
//! Every lookup is relative to a descriptor of the data folder and goes
//! through `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a path
//! whose parent is a symbolic link (one the container made, say) is
//! refused rather than followed. Files and links are made under a
//! temporary name in their folder and renamed into place.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use super::path::components;
use super::{BatchHeader, BatchOutcome, Failure};
use crate::error::{Error, RequestError, Result};

/// Folders made for a file whose parents are missing get this mode.
const DIR_MODE: u32 = 0o755;

/// Writes the batch: `header.delete` first, then each entry of `tar`, into
/// `data`. A path that fails is reported in the outcome and the rest goes
/// on; a stream that cannot be read fails the whole call (what was written
/// before stays, each file whole). The outcome's `generation` is left to
/// the caller.
pub fn apply(data: &Path, header: &BatchHeader, tar: impl Read) -> Result<BatchOutcome> {
    let w = Writer::open(data, header.uid, header.gid)?;
    let mut out = BatchOutcome::default();
    let mut fail = |path: &str, message: String| {
        out.failed.push(Failure {
            path: path.to_string(),
            message,
        })
    };
    // The data folder itself belongs to the workspace's owner, so a
    // non-root container can make files at its top.
    if let Err(e) = rustix::fs::chown(data, Some(w.uid), Some(w.gid)) {
        fail(".", format!("change the owner: {e}"));
    }
    if header.sweep {
        sweep(data, &mut fail);
    }
    let mut deleted = 0;
    for path in &header.delete {
        match w.delete(path) {
            Ok(()) => deleted += 1,
            Err(m) => fail(path, m),
        }
    }
    let mut written = 0;
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(stream_error)?;
    for entry in entries {
        let mut entry = entry.map_err(stream_error)?;
        let raw = entry.path_bytes().into_owned();
        let Ok(path) = String::from_utf8(raw) else {
            fail(
                &String::from_utf8_lossy(&entry.path_bytes()),
                "the path is not UTF-8".to_string(),
            );
            continue;
        };
        let h = entry.header();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let mtime = h.mtime().unwrap_or(0);
        let result = match h.entry_type() {
            tar::EntryType::Directory => w.dir(&path, mode),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                w.file(&path, mode, mtime, &mut entry)
            }
            tar::EntryType::Symlink => match entry.link_name_bytes() {
                Some(target) => {
                    let target = target.into_owned();
                    w.link(&path, &target)
                }
                None => Err("a symbolic link without a target".to_string()),
            },
            other => Err(format!(
                "entry type {other:?} is not synced: only folders, files and symbolic links are"
            )),
        };
        match result {
            Ok(()) => written += 1,
            Err(m) => fail(&path, m),
        }
    }
    out.written = written;
    out.deleted = deleted;
    Ok(out)
}

fn stream_error(e: io::Error) -> Error {
    Error::from(RequestError::Invalid(format!("workspace batch: {e}")))
}

/// Writes below one data folder as one owner.
struct Writer {
    root: OwnedFd,
    uid: Uid,
    gid: Gid,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

fn errno(what: &str) -> impl FnOnce(Errno) -> String + '_ {
    move |e| {
        if e == Errno::LOOP || e == Errno::XDEV {
            format!("{what}: a parent folder is a symbolic link")
        } else {
            format!("{what}: {e}")
        }
    }
}

impl Writer {
    fn open(data: &Path, uid: u32, gid: u32) -> Result<Self> {
        let root = rustix::fs::open(
            data,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", data)(e.into()))?;
        Ok(Self {
            root,
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
        })
    }

    /// Opens the folder `parts` (an `O_PATH` descriptor), making missing
    /// folders when `make` is set. `Ok(None)` when it is missing and not
    /// made.
    fn folder(&self, parts: &[&str], make: bool) -> std::result::Result<Option<OwnedFd>, String> {
        let mut cur = rustix::io::dup(&self.root).map_err(errno("open the workspace"))?;
        for (i, name) in parts.iter().enumerate() {
            let at = parts[..=i].join("/");
            let opened = rustix::fs::openat2(
                &cur,
                *name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            );
            let next = match opened {
                Ok(fd) => fd,
                Err(Errno::NOENT) if make => {
                    match rustix::fs::mkdirat(&cur, *name, Mode::from_raw_mode(DIR_MODE)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(errno(&format!("make folder {at}"))(e)),
                    }
                    rustix::fs::chownat(
                        &cur,
                        *name,
                        Some(self.uid),
                        Some(self.gid),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(errno(&format!("change the owner of {at}")))?;
                    rustix::fs::openat2(
                        &cur,
                        *name,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                        RESOLVE,
                    )
                    .map_err(errno(&format!("open folder {at}")))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    return Err(format!("{at} is not a folder in the workspace"));
                }
                Err(e) => return Err(errno(&format!("open folder {at}"))(e)),
            };
            cur = next;
        }
        Ok(Some(cur))
    }

    /// The parent folder of `path` (made if missing) and its last name.
    fn parent<'a>(&self, path: &'a str) -> std::result::Result<(OwnedFd, &'a str), String> {
        let parts = components(path).map_err(str::to_string)?;
        let (name, parents) = parts.split_last().ok_or("the path is empty")?;
        let dir = self
            .folder(parents, true)?
            .ok_or_else(|| "the parent folder is missing".to_string())?;
        Ok((dir, name))
    }

    /// The type of `name` in `dir`, without following a link.
    fn kind(dir: &OwnedFd, name: &str) -> Option<FileType> {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| FileType::from_raw_mode(st.st_mode))
    }

    fn delete(&self, path: &str) -> std::result::Result<(), String> {
        let parts = components(path).map_err(str::to_string)?;
        let Some((name, parents)) = parts.split_last() else {
            return Err("the path is empty".to_string());
        };
        let Some(dir) = self.folder(parents, false)? else {
            return Ok(());
        };
        remove(&dir, name)
    }

    fn dir(&self, path: &str, mode: u32) -> std::result::Result<(), String> {
        let (parent, name) = self.parent(path)?;
        match Self::kind(&parent, name) {
            Some(FileType::Directory) => {}
            None => match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno("make the folder")(e)),
            },
            Some(_) => {
                remove(&parent, name)?;
                rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(mode))
                    .map_err(errno("make the folder"))?;
            }
        }
        let fd = rustix::fs::openat2(
            &parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(errno("open the folder"))?;
        rustix::fs::fchown(&fd, Some(self.uid), Some(self.gid))
            .map_err(errno("change the owner"))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(errno("change the mode"))?;
        Ok(())
    }

    fn file(
        &self,
        path: &str,
        mode: u32,
        mtime: u64,
        content: &mut impl Read,
    ) -> std::result::Result<(), String> {
        let (parent, name) = self.parent(path)?;
        let tmp = temp_name()?;
        let fd = rustix::fs::openat2(
            &parent,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
            RESOLVE,
        )
        .map_err(errno("create a temporary file"))?;
        let filled = (|| {
            let mut file = File::from(fd);
            io::copy(content, &mut file).map_err(|e| format!("write: {e}"))?;
            rustix::fs::fchown(file.as_fd(), Some(self.uid), Some(self.gid))
                .map_err(errno("change the owner"))?;
            // After the owner: changing it clears set-user-ID bits.
            rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(mode))
                .map_err(errno("change the mode"))?;
            let t = Timespec {
                tv_sec: i64::try_from(mtime).unwrap_or(0),
                tv_nsec: 0,
            };
            rustix::fs::futimens(
                file.as_fd(),
                &Timestamps {
                    last_access: t,
                    last_modification: t,
                },
            )
            .map_err(errno("set the modification time"))?;
            Ok(())
        })();
        self.place(&parent, &tmp, name, filled)
    }

    fn link(&self, path: &str, target: &[u8]) -> std::result::Result<(), String> {
        let (parent, name) = self.parent(path)?;
        let tmp = temp_name()?;
        let made = rustix::fs::symlinkat(target, &parent, tmp.as_str())
            .map_err(errno("create the link"))
            .and_then(|()| {
                rustix::fs::chownat(
                    &parent,
                    tmp.as_str(),
                    Some(self.uid),
                    Some(self.gid),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(errno("change the owner"))
            });
        self.place(&parent, &tmp, name, made)
    }

    /// Renames `tmp` over `name` once it is `ready`; removes `tmp` when
    /// anything failed. A folder in the way is removed first.
    fn place(
        &self,
        parent: &OwnedFd,
        tmp: &str,
        name: &str,
        ready: std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        let placed = ready.and_then(|()| {
            if Self::kind(parent, name) == Some(FileType::Directory) {
                remove(parent, name)?;
            }
            rustix::fs::renameat(parent, tmp, parent, name).map_err(errno("rename into place"))
        });
        if placed.is_err() {
            let _ = rustix::fs::unlinkat(parent, tmp, AtFlags::empty());
        }
        placed
    }
}

/// Whether `name` is a temporary file of a batch.
pub fn is_temp(name: &str) -> bool {
    name.starts_with(".servin-sync-") && name.ends_with(".tmp")
}

/// Removes the temporary files below `data` that an interrupted batch
/// left; links are not followed.
fn sweep(data: &Path, fail: &mut impl FnMut(&str, String)) {
    let mut todo = vec![data.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in read.flatten() {
            let Ok(ft) = item.file_type() else { continue };
            let name = item.file_name();
            let name = name.to_string_lossy();
            if ft.is_dir() {
                todo.push(item.path());
            } else if is_temp(&name)
                && let Err(e) = std::fs::remove_file(item.path())
            {
                let rel = item.path();
                let rel = rel.strip_prefix(data).unwrap_or(&rel);
                fail(
                    &rel.to_string_lossy(),
                    format!("remove a temporary file: {e}"),
                );
            }
        }
    }
}

/// A temporary name for a file being written, hidden and unique.
fn temp_name() -> std::result::Result<String, String> {
    let id = crate::state::new_id().map_err(|e| e.full_message())?;
    Ok(format!(".servin-sync-{}.tmp", &id[..16]))
}

/// Removes `name` in `dir`: a file or link, or a folder with everything in
/// it (links inside removed, never followed). Missing is fine.
fn remove(dir: &OwnedFd, name: &str) -> std::result::Result<(), String> {
    match Writer::kind(dir, name) {
        None => Ok(()),
        Some(FileType::Directory) => {
            // The descriptor's /proc link names the folder already resolved
            // beneath the root; remove_dir_all never follows links.
            let path = format!(
                "/proc/self/fd/{}/{name}",
                rustix::fd::AsRawFd::as_raw_fd(dir)
            );
            std::fs::remove_dir_all(&path).map_err(|e| format!("remove the folder: {e}"))
        }
        Some(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(errno("remove")),
    }
}
