//! The filesystem side of `docker cp`: stat a path inside a container's
//! root, write a tar of it, extract a tar into a folder of it.
//!
//! Everything works on a directory descriptor of the container's root
//! (its overlay, or `/proc/<pid>/root` of a running container, where its
//! volumes and binds are mounted too). Paths are resolved with `openat2`
//! and `RESOLVE_IN_ROOT`, so a symlink resolves as it would inside the
//! container and never reaches the host; below the resolved path the walk
//! opens each entry relative to its folder without following links. The
//! final component of a requested path is followed only when the path ends
//! in `/` or `/.`, as Docker does: a `GET` of a symlink is the symlink.
//!
//! Tar entry names are cleaned as Docker cleans them (`a/../b` is `b`, a
//! leading `/` is dropped); a name that climbs out of the destination is
//! refused. A file is written under a temporary name in its folder and
//! renamed over the old one, so a failed copy never leaves a half-written
//! file at the destination's name.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps, Uid,
};
use rustix::io::Errno;
use serde::Serialize;

/// What went wrong, before it is given its container's name.
#[derive(Debug)]
pub enum Failure {
    /// The path (or a folder on the way to it) does not exist.
    NotFound,
    /// The extraction point is not a folder.
    NotADirectory,
    /// The filesystem is read-only there.
    ReadOnly,
    /// A tar entry that cannot be written; the message names it.
    BadArchive(String),
    /// An entry would replace a folder by a file or a file by a folder.
    WouldReplace(String),
    /// A filesystem call failed on the named path.
    Io(String, io::Error),
}

impl Failure {
    fn io(what: impl Into<String>) -> impl FnOnce(Errno) -> Self {
        let what = what.into();
        move |e| match e {
            Errno::ROFS => Self::ReadOnly,
            e => Self::Io(what, e.into()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => write!(f, "no such file or folder"),
            Self::NotADirectory => write!(f, "not a folder"),
            Self::ReadOnly => write!(f, "read-only file system"),
            Self::BadArchive(m) | Self::WouldReplace(m) => write!(f, "{m}"),
            Self::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

type Res<T> = std::result::Result<T, Failure>;

/// Go's `os.FileMode` bits, as Docker sends them in the stat header.
mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// A Unix `st_mode` as Go's `os.FileMode`: permission bits, then one bit
/// per file type and per special bit.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & 0o170_000 {
        0o040_000 => go_mode::DIR,
        0o120_000 => go_mode::SYMLINK,
        0o060_000 => go_mode::DEVICE,
        0o020_000 => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        0o010_000 => go_mode::NAMED_PIPE,
        0o140_000 => go_mode::SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= go_mode::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= go_mode::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= go_mode::STICKY;
    }
    m
}

/// What `X-Docker-Container-Path-Stat` carries (Docker's
/// `container.PathStat`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathStat {
    /// The base name of the requested path.
    pub name: String,
    /// Its size in bytes.
    pub size: i64,
    /// Go's `os.FileMode`.
    pub mode: u32,
    /// Its modification time, RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink, the absolute path it resolves to in the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Cleans `path` as Go's `filepath.Clean` of a rooted path: absolute, no
/// `.` or `..` (a `..` above the root stays at the root), no trailing `/`.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether the last component of `path` is followed when it is a symlink:
/// the path ends in `/` or `/.` (Docker's "asserts a directory").
pub fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// The name the tar's entries start with and the stat header names: the
/// base name of the path, `.` for a path ending in `/.` (copy the
/// folder's content) or for the root.
pub fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".to_string();
    }
    let c = clean(path);
    match c.rsplit_once('/') {
        Some((_, "")) | None => ".".to_string(),
        Some((_, base)) => base.to_string(),
    }
}

/// A tar entry's name as a path relative to the extraction folder, cleaned
/// as Docker cleans it; `None` for a name that climbs out of it.
pub fn entry_path(name: &Path) -> Option<PathBuf> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop()?;
            }
        }
    }
    Some(out.iter().collect())
}

/// Opens the container's root at `rootfs` for lookups.
pub fn open_root(rootfs: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn open_in(root: &OwnedFd, path: &str, flags: OFlags) -> std::result::Result<OwnedFd, Errno> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Whether `path` is a folder in the root (symlinks followed inside it).
pub fn is_dir(root: &OwnedFd, path: &str) -> bool {
    open_in(root, path, OFlags::PATH | OFlags::DIRECTORY).is_ok()
}

/// The names in the folder `path` of the root, sorted.
pub fn list_dir(root: &OwnedFd, path: &str) -> io::Result<Vec<String>> {
    let fd = open_in(root, path, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn not_found(e: Errno, what: &str) -> Failure {
    match e {
        Errno::NOENT | Errno::NOTDIR | Errno::LOOP => Failure::NotFound,
        e => Failure::Io(what.to_string(), e.into()),
    }
}

/// `path` resolved to its folder (opened) and its last component, which is
/// not followed; the root itself is `(root, ".")`.
fn parent_and_last(root: &OwnedFd, cleaned: &str) -> Res<(OwnedFd, String)> {
    match cleaned.rsplit_once('/') {
        Some((_, "")) | None => Ok((
            open_in(root, "/", OFlags::PATH | OFlags::DIRECTORY).map_err(|e| not_found(e, "/"))?,
            ".".to_string(),
        )),
        Some((parent, last)) => Ok((
            open_in(root, parent, OFlags::PATH | OFlags::DIRECTORY)
                .map_err(|e| not_found(e, cleaned))?,
            last.to_string(),
        )),
    }
}

/// Removes `path` of the root (a folder with everything in it); its last
/// component is not followed. A path that is not there is no error.
pub fn remove(root: &OwnedFd, path: &str) -> io::Result<()> {
    let cleaned = clean(path);
    let (dir, last) = match parent_and_last(root, &cleaned) {
        Ok(found) => found,
        Err(Failure::NotFound) => return Ok(()),
        Err(e) => return Err(io::Error::other(e.to_string())),
    };
    if last == "." {
        return Err(io::Error::other("refusing to remove the root"));
    }
    remove_tree(&dir, OsStr::new(&last), &cleaned).map_err(|e| io::Error::other(e.to_string()))
}

/// What `path` is, as Docker's `HEAD` and `GET` describe it.
pub fn stat(root: &OwnedFd, path: &str) -> Res<PathStat> {
    let cleaned = clean(path);
    let (st, link_target) = if follows_last(path) {
        let fd = open_in(root, &cleaned, OFlags::PATH).map_err(|e| not_found(e, &cleaned))?;
        (
            rustix::fs::fstat(&fd).map_err(|e| not_found(e, &cleaned))?,
            String::new(),
        )
    } else {
        let (dir, last) = parent_and_last(root, &cleaned)?;
        let st = rustix::fs::statat(&dir, last.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| not_found(e, &cleaned))?;
        let target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            resolve_link(root, &cleaned)
        } else {
            String::new()
        };
        (st, target)
    };
    Ok(PathStat {
        name: base_name(path),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: mtime_text(&st),
        link_target,
    })
}

fn mtime_text(st: &Stat) -> String {
    let secs = u64::try_from(st.st_mtime).unwrap_or(0);
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    crate::timefmt::format_nanos(t)
}

/// Where the symlink at `path` leads, as an absolute path in the
/// container (links followed until a non-link, at most 40).
fn resolve_link(root: &OwnedFd, path: &str) -> String {
    let mut cur = path.to_string();
    for _ in 0..40 {
        let Ok((dir, last)) = parent_and_last(root, &cur) else {
            return cur;
        };
        let Ok(target) = rustix::fs::readlinkat(&dir, last.as_str(), Vec::new()) else {
            return cur;
        };
        let target = target.to_string_lossy().into_owned();
        let parent = cur.rsplit_once('/').map_or("", |(p, _)| p);
        cur = if target.starts_with('/') {
            clean(&target)
        } else {
            clean(&format!("{parent}/{target}"))
        };
    }
    cur
}

/// Writes a tar of `path` to `out`: the file, or the folder and everything
/// under it, named from [`base_name`] down. Links below the path are
/// archived as links, never followed. Returns `out` unflushed: the caller
/// decides when the last piece goes.
pub fn write_tar<W: Write>(root: &OwnedFd, path: &str, out: W) -> Res<W> {
    let cleaned = clean(path);
    let base = base_name(path);
    let mut tar = TarWriter {
        builder: tar::Builder::new(out),
        links: HashMap::new(),
    };
    if follows_last(path) {
        let fd = open_in(root, &cleaned, OFlags::PATH).map_err(|e| not_found(e, &cleaned))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| not_found(e, &cleaned))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let dir =
                rustix::fs::openat(&fd, ".", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                    .map_err(Failure::io(&cleaned))?;
            tar.dir(&dir, &st, &base, &cleaned)?;
        } else {
            let (dir, last) = parent_and_last(root, &cleaned)?;
            tar.entry(&dir, &last, &base, &cleaned)?;
        }
    } else {
        let (dir, last) = parent_and_last(root, &cleaned)?;
        tar.entry(&dir, &last, &base, &cleaned)?;
    }
    tar.builder
        .into_inner()
        .map_err(|e| Failure::Io("write the tar".to_string(), e))
}

/// The extended attribute Docker's archives carry: a file's capabilities.
const CAPABILITY_XATTR: &str = "security.capability";

struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    /// Hard-linked files already written: (device, inode) to entry name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarWriter<W> {
    /// Writes the entry `name` of folder `dir` as `entry`.
    fn entry(&mut self, dir: &OwnedFd, name: &str, entry: &str, shown: &str) -> Res<()> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| not_found(e, shown))?;
        let mut h = header_of(&st);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sub = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(Failure::io(shown))?;
                return self.dir(&sub, &st, entry, shown);
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        return self.append(&mut h, entry.as_bytes(), Some(&first), io::empty());
                    }
                    self.links.insert(key, entry.as_bytes().to_vec());
                }
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(Failure::io(shown))?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(u64::try_from(st.st_size).unwrap_or(0));
                // File capabilities travel as Docker's archives carry them:
                // the one extended attribute it reads, in a PAX record.
                let mut cap = [0u8; 64];
                if let Ok(n) = rustix::fs::fgetxattr(&fd, CAPABILITY_XATTR, &mut cap[..]) {
                    let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
                    self.builder
                        .append_pax_extensions([(key.as_str(), &cap[..n])])
                        .map_err(|e| Failure::Io("write the tar".to_string(), e))?;
                }
                let file = std::fs::File::from(fd);
                // A file that shrinks while it is read would leave the tar
                // short: pad it with zeros to the size in its header.
                let size = h.size().unwrap_or(0);
                let data = file.take(size).chain(io::repeat(0)).take(size);
                return self.append(&mut h, entry.as_bytes(), None, data);
            }
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(dir, name, Vec::new()).map_err(Failure::io(shown))?;
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                return self.append(
                    &mut h,
                    entry.as_bytes(),
                    Some(target.as_bytes()),
                    io::empty(),
                );
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let char = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice;
                h.set_entry_type(if char {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                let _ = h.set_device_major(rustix::fs::major(st.st_rdev));
                let _ = h.set_device_minor(rustix::fs::minor(st.st_rdev));
            }
            FileType::Fifo => h.set_entry_type(tar::EntryType::Fifo),
            // Sockets are not archived, as Docker does not archive them.
            _ => return Ok(()),
        }
        h.set_size(0);
        self.append(&mut h, entry.as_bytes(), None, io::empty())
    }

    fn dir(&mut self, dir: &OwnedFd, st: &Stat, entry: &str, shown: &str) -> Res<()> {
        let mut h = header_of(st);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        self.append(&mut h, format!("{entry}/").as_bytes(), None, io::empty())?;
        let mut names: Vec<OsString> = Vec::new();
        for item in Dir::read_from(dir).map_err(Failure::io(shown))? {
            let item = item.map_err(Failure::io(shown))?;
            let n = item.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsString::from_vec(n.to_vec()));
            }
        }
        names.sort();
        for n in names {
            let n = n.to_string_lossy().into_owned();
            self.entry(dir, &n, &format!("{entry}/{n}"), &format!("{shown}/{n}"))?;
        }
        Ok(())
    }

    /// Appends one entry with its name (and link name) written as given:
    /// a leading `./` is kept, as Docker writes it for a `/.` copy. Names
    /// past the header's 100 bytes go in GNU long-name entries.
    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> Res<()> {
        let write = |e: io::Error| Failure::Io("write the tar".to_string(), e);
        if name.len() > 100 {
            self.long(b'L', name).map_err(write)?;
        }
        if let Some(link) = link {
            if link.len() > 100 {
                self.long(b'K', link).map_err(write)?;
            }
            let gnu = h.as_old_mut();
            let n = link.len().min(100);
            gnu.linkname = [0; 100];
            gnu.linkname[..n].copy_from_slice(&link[..n]);
        }
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name = [0; 100];
        old.name[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        self.builder.append(h, data).map_err(write)
    }

    fn long(&mut self, kind: u8, value: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        let name = b"././@LongLink";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(u64::try_from(value.len() + 1).unwrap_or(u64::MAX));
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        let mut data = value.to_vec();
        data.push(0);
        self.builder.append(&h, data.as_slice())
    }
}

fn header_of(st: &Stat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h
}

/// How an upload is extracted.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a folder by a non-folder and the other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// Own every entry by this UID and GID instead of the tar's.
    pub owner: Option<(u32, u32)>,
}

/// Checks that `dir` is a folder in the root, before an upload is read.
pub fn check_extraction_point(root: &OwnedFd, dir: &str) -> Res<()> {
    let fd = open_in(root, &clean(dir), OFlags::PATH).map_err(|e| not_found(e, dir))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| not_found(e, dir))?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        Ok(())
    } else {
        Err(Failure::NotADirectory)
    }
}

/// Extracts the tar read from `input` into the folder `dir` of the root.
pub fn extract(root: &OwnedFd, dir: &str, input: impl Read, opts: ExtractOptions) -> Res<()> {
    check_extraction_point(root, dir)?;
    let dest = clean(dir);
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| Failure::BadArchive(format!("reading the tar: {e}")))?;
    let mut dir_times: Vec<(String, u64)> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| Failure::BadArchive(format!("reading the tar: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| Failure::BadArchive(format!("bad entry name: {e}")))?
            .into_owned();
        let shown = raw.display().to_string();
        let rel = entry_path(&raw).ok_or_else(|| {
            Failure::BadArchive(format!(
                "the entry {shown:?} is outside the folder it is extracted into"
            ))
        })?;
        if let Some(t) = write_entry(root, &dest, &rel, &mut entry, opts, &shown)? {
            dir_times.push(t);
        }
    }
    // Folder times last: writing inside a folder changes its time.
    for (path, mtime) in dir_times.into_iter().rev() {
        if let Ok(fd) = open_in(root, &path, OFlags::PATH) {
            let _ = rustix::fs::utimensat(
                &fd,
                "",
                &times(mtime),
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            );
        }
    }
    Ok(())
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(0),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Opens (making it when missing) the folder `dest/rel`'s parent, with
/// links on the way followed inside the root; returns it and the last name.
fn open_parent(root: &OwnedFd, dest: &str, rel: &Path) -> Res<(OwnedFd, OsString)> {
    let mut here = dest.trim_end_matches('/').to_string();
    let parts: Vec<&OsStr> = rel.iter().collect();
    let Some((last, parents)) = parts.split_last() else {
        return Err(Failure::BadArchive("an entry without a name".to_string()));
    };
    let mut fd =
        open_in(root, &here, OFlags::PATH | OFlags::DIRECTORY).map_err(|e| not_found(e, &here))?;
    for p in parents {
        let name = p.to_string_lossy();
        let next = format!("{here}/{name}");
        fd = match open_in(root, &next, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&fd, *p, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Failure::io(&next)(e)),
                }
                open_in(root, &next, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(Failure::io(&next))?
            }
            Err(Errno::NOTDIR) => {
                return Err(Failure::WouldReplace(format!(
                    "{next} is not a folder, the tar has entries below it"
                )));
            }
            Err(e) => return Err(Failure::io(&next)(e)),
        };
        here = next;
    }
    Ok((fd, (*last).to_os_string()))
}

/// A name no entry has, for writing `name` before it is renamed in place.
fn temp_name(name: &OsStr) -> OsString {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut t = OsString::from(format!(".servin-cp-{}-{n}-", std::process::id()));
    // Keep the temporary name within NAME_MAX.
    let keep = &name.as_bytes()[..name.len().min(200)];
    t.push(OsStr::from_bytes(keep));
    t
}

fn write_entry<R: Read>(
    root: &OwnedFd,
    dest: &str,
    rel: &Path,
    entry: &mut tar::Entry<'_, R>,
    opts: ExtractOptions,
    shown: &str,
) -> Res<Option<(String, u64)>> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink
    ) {
        return Ok(None);
    }
    let bad = |what: &str| Failure::BadArchive(format!("the entry {shown:?} has a bad {what}"));
    // An empty number field reads as 0, as Go's archive/tar reads it.
    let mode = header.mode().unwrap_or(0) & 0o7777;
    let (uid, gid) = match opts.owner {
        Some(o) => o,
        None => (
            u32::try_from(header.uid().unwrap_or(0)).map_err(|_| bad("uid"))?,
            u32::try_from(header.gid().unwrap_or(0)).map_err(|_| bad("gid"))?,
        ),
    };
    let mtime = header.mtime().unwrap_or(0);
    let full = format!("{}/{}", dest.trim_end_matches('/'), rel.display());
    if rel.as_os_str().is_empty() {
        // The folder extracted into: it keeps its own attributes.
        return Ok(None);
    }
    let (dir, name) = open_parent(root, dest, rel)?;
    let existing = rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).ok();
    let existing_dir =
        existing.is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
    let is_dir = kind == tar::EntryType::Directory;
    if opts.no_overwrite_dir_non_dir && existing.is_some() && existing_dir != is_dir {
        return Err(Failure::WouldReplace(if existing_dir {
            format!("cannot overwrite the folder {full} with the non-folder {shown}")
        } else {
            format!("cannot overwrite the non-folder {full} with the folder {shown}")
        }));
    }
    let owner = |fd: &OwnedFd, n: &OsStr| {
        rustix::fs::chownat(
            fd,
            n,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(Failure::io(&full))
    };
    let xattrs = xattrs_of(entry, shown)?;
    if is_dir {
        if !existing_dir {
            if existing.is_some() {
                remove_tree(&dir, &name, &full)?;
            }
            rustix::fs::mkdirat(&dir, name.as_os_str(), Mode::from_raw_mode(0o700))
                .map_err(Failure::io(&full))?;
        }
        owner(&dir, &name)?;
        chmod(&dir, &name, mode, &full)?;
        set_xattrs(&dir, &name, &xattrs, &full)?;
        return Ok(Some((full, mtime)));
    }
    let regular = matches!(
        kind,
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
    );
    if regular
        && existing.is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        && is_mount_root(&dir, &name)
    {
        // A file bound over the container's (`-v FILE:PATH`) cannot be
        // replaced by a rename (EBUSY): its content is written in place,
        // and it keeps its owner (the bound file is the host's).
        return write_in_place(&dir, &name, entry, mode, mtime, &xattrs, shown, &full)
            .map(|()| None);
    }
    let tmp = temp_name(&name);
    let made = make_node(
        &dir, &tmp, kind, entry, &header, root, dest, mode, shown, &full,
    );
    let placed = made.and_then(|()| {
        if kind != tar::EntryType::Link {
            owner(&dir, &tmp)?;
            if kind != tar::EntryType::Symlink {
                chmod(&dir, &tmp, mode, &full)?;
            }
            // After the owner: a change of owner drops file capabilities.
            set_xattrs(&dir, &tmp, &xattrs, &full)?;
            let _ = rustix::fs::utimensat(
                &dir,
                tmp.as_os_str(),
                &times(mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
        if existing_dir {
            remove_tree(&dir, &name, &full)?;
        }
        rustix::fs::renameat(&dir, tmp.as_os_str(), &dir, name.as_os_str())
            .map_err(Failure::io(&full))
    });
    if placed.is_err() {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_os_str(), AtFlags::empty());
    }
    placed.map(|()| None)
}

/// Copies an entry's content into `f`: a read-only file system is
/// [`Failure::ReadOnly`], any other failure the entry's.
fn copy_content<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    f: &mut std::fs::File,
    shown: &str,
) -> Res<()> {
    copy_big(entry, f).map(|_| ()).map_err(|e| {
        if e.raw_os_error() == Some(Errno::ROFS.raw_os_error()) {
            Failure::ReadOnly
        } else {
            Failure::BadArchive(format!("the entry {shown:?}: {e}"))
        }
    })
}

/// Sets the permission bits of `name` of `dir`.
fn chmod(dir: &OwnedFd, name: &OsStr, mode: u32, full: &str) -> Res<()> {
    rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty())
        .map_err(Failure::io(full))
}

/// Whether `name` of `dir` is a mount point (statx's mount-root attribute;
/// kernels without it say no).
fn is_mount_root(dir: &OwnedFd, name: &OsStr) -> bool {
    use rustix::fs::{StatxAttributes, StatxFlags};
    rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )
    .is_ok_and(|st| {
        st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
            && st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
    })
}

/// Writes an entry's content into the existing file `name` of `dir` (a
/// bound file), then its mode, extended attributes and time.
#[allow(clippy::too_many_arguments)]
fn write_in_place<R: Read>(
    dir: &OwnedFd,
    name: &OsStr,
    entry: &mut tar::Entry<'_, R>,
    mode: u32,
    mtime: u64,
    xattrs: &[(String, Vec<u8>)],
    shown: &str,
    full: &str,
) -> Res<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Failure::io(full))?;
    let mut f = std::fs::File::from(fd);
    copy_content(entry, &mut f, shown)?;
    rustix::fs::fchmod(&f, Mode::from_raw_mode(mode)).map_err(Failure::io(full))?;
    set_xattrs(dir, name, xattrs, full)?;
    let _ = rustix::fs::futimens(&f, &times(mtime));
    Ok(())
}

/// The extended attributes an entry carries (`SCHILY.xattr.NAME` PAX
/// records).
fn xattrs_of<R: Read>(entry: &mut tar::Entry<'_, R>, shown: &str) -> Res<Vec<(String, Vec<u8>)>> {
    let bad = |e: io::Error| Failure::BadArchive(format!("the entry {shown:?}: {e}"));
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(bad)? {
        for ext in exts {
            let ext = ext.map_err(bad)?;
            if let Ok(Some(name)) = ext.key().map(|k| k.strip_prefix("SCHILY.xattr.")) {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Sets extended attributes on `name` of `dir` (not following a link), as
/// Docker's extractor does: a file system or a namespace that does not take
/// one (`ENOTSUP`, `EPERM`) is passed over.
fn set_xattrs(dir: &OwnedFd, name: &OsStr, xattrs: &[(String, Vec<u8>)], full: &str) -> Res<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let mut path = OsString::from(format!(
        "/proc/self/fd/{}/",
        std::os::fd::AsRawFd::as_raw_fd(dir)
    ));
    path.push(name);
    for (key, value) in xattrs {
        match rustix::fs::lsetxattr(&path, key.as_str(), value, rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP | Errno::PERM) => {}
            Err(e) => return Err(Failure::io(format!("{full}: set {key}"))(e)),
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_node<R: Read>(
    dir: &OwnedFd,
    tmp: &OsStr,
    kind: tar::EntryType,
    entry: &mut tar::Entry<'_, R>,
    header: &tar::Header,
    root: &OwnedFd,
    dest: &str,
    mode: u32,
    shown: &str,
    full: &str,
) -> Res<()> {
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let fd = rustix::fs::openat(
                dir,
                tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(Failure::io(full))?;
            let mut f = std::fs::File::from(fd);
            copy_content(entry, &mut f, shown)?;
            Ok(())
        }
        tar::EntryType::Symlink => {
            let target = entry.link_name().ok().flatten().ok_or_else(|| {
                Failure::BadArchive(format!("the symlink {shown:?} has no target"))
            })?;
            rustix::fs::symlinkat(target.as_os_str(), dir, tmp).map_err(Failure::io(full))
        }
        tar::EntryType::Link => {
            let target = entry.link_name().ok().flatten().ok_or_else(|| {
                Failure::BadArchive(format!("the hard link {shown:?} has no target"))
            })?;
            let rel = entry_path(&target)
                .filter(|r| !r.as_os_str().is_empty())
                .ok_or_else(|| {
                    Failure::BadArchive(format!(
                        "the hard link {shown:?} points outside the folder it is extracted into"
                    ))
                })?;
            let (tdir, tname) = open_parent(root, dest, &rel)?;
            rustix::fs::linkat(&tdir, tname.as_os_str(), dir, tmp, AtFlags::empty()).map_err(|e| {
                match e {
                    Errno::NOENT => Failure::BadArchive(format!(
                        "the hard link {shown:?} points to {} which is not there",
                        target.display()
                    )),
                    e => Failure::io(full)(e),
                }
            })
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let file_type = match kind {
                tar::EntryType::Char => FileType::CharacterDevice,
                tar::EntryType::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            rustix::fs::mknodat(
                dir,
                tmp,
                file_type,
                Mode::from_raw_mode(mode),
                rustix::fs::makedev(major, minor),
            )
            .map_err(Failure::io(full))
        }
        other => Err(Failure::BadArchive(format!(
            "the entry {shown:?} has a type servin does not extract ({other:?})"
        ))),
    }
}

/// Copies `from` to `to` in pieces of up to 256 KiB (`io::copy` writes
/// 8 KiB at a time: many more system calls for a large file).
fn copy_big(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match from.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..filled])?;
        total += filled as u64;
    }
}

/// Removes `name` in `dir`, a folder with everything in it, or a file;
/// links are removed, never followed.
fn remove_tree(dir: &OwnedFd, name: &OsStr, shown: &str) -> Res<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(Failure::io(shown)(e)),
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Failure::io(shown))?;
    let mut names = Vec::new();
    for item in Dir::read_from(&sub).map_err(Failure::io(shown))? {
        let item = item.map_err(Failure::io(shown))?;
        let n = item.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsString::from_vec(n.to_vec()));
        }
    }
    for n in names {
        remove_tree(&sub, &n, shown)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(Failure::io(shown))
}

/// A [`Write`] that hands what is written to `send` in pieces of at most
/// `chunk` bytes.
pub struct ChunkWriter<F: FnMut(Vec<u8>) -> io::Result<()>> {
    buf: Vec<u8>,
    chunk: usize,
    send: F,
}

impl<F: FnMut(Vec<u8>) -> io::Result<()>> ChunkWriter<F> {
    /// A writer sending pieces of `chunk` bytes.
    pub fn new(chunk: usize, send: F) -> Self {
        Self {
            buf: Vec::with_capacity(chunk),
            chunk,
            send,
        }
    }
}

impl<F: FnMut(Vec<u8>) -> io::Result<()>> ChunkWriter<F> {
    /// What is written and not sent yet.
    pub fn into_rest(self) -> Vec<u8> {
        self.buf
    }
}

impl<F: FnMut(Vec<u8>) -> io::Result<()>> Write for ChunkWriter<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        (self.send)(full)
    }
}

/// Whether writing at the container path `path` lands on a read-only
/// place: the mount deepest above it (`(destination, read_only)` pairs)
/// decides, else the root filesystem's own setting.
pub fn is_read_only(path: &str, mounts: &[(String, bool)], read_only_root: bool) -> bool {
    let path = clean(path);
    mounts
        .iter()
        .filter(|(dest, _)| {
            let d = clean(dest);
            d == "/" || path == d || path.starts_with(&format!("{d}/"))
        })
        .max_by_key(|(dest, _)| clean(dest).len())
        .map_or(read_only_root, |(_, ro)| *ro)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cleans_paths_as_go_does() {
        assert_eq!(clean("/a/b/../c/./"), "/a/c");
        assert_eq!(clean("../../etc"), "/etc");
        assert_eq!(clean(""), "/");
        assert_eq!(clean("/"), "/");
        assert!(follows_last("/a/"));
        assert!(follows_last("/a/."));
        assert!(!follows_last("/a"));
        assert_eq!(base_name("/etc/hosts"), "hosts");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), ".");
    }

    #[test]
    fn entry_names_stay_inside() {
        assert_eq!(entry_path(Path::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(entry_path(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(
            entry_path(Path::new("/etc/x")),
            Some(PathBuf::from("etc/x"))
        );
        assert_eq!(entry_path(Path::new("./")), Some(PathBuf::new()));
        assert_eq!(entry_path(Path::new("../x")), None);
        assert_eq!(entry_path(Path::new("a/../../x")), None);
    }

    #[test]
    fn modes_are_gos() {
        assert_eq!(go_file_mode(0o100_644), 0o644);
        assert_eq!(go_file_mode(0o040_755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120_777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o020_666), (1 << 26) | (1 << 21) | 0o666);
        assert_eq!(go_file_mode(0o104_755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(0o041_777), (1 << 31) | (1 << 20) | 0o777);
    }

    #[test]
    fn the_deepest_mount_decides_read_only() {
        let mounts = vec![("/data".to_string(), false), ("/data/ro".to_string(), true)];
        assert!(is_read_only("/etc", &mounts, true));
        assert!(!is_read_only("/etc", &mounts, false));
        assert!(!is_read_only("/data/x", &mounts, true));
        assert!(is_read_only("/data/ro/x", &mounts, false));
        assert!(!is_read_only("/database", &mounts, false));
        assert!(is_read_only("/database", &mounts, true));
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("srv/sub")).unwrap();
        std::fs::write(r.join("srv/a.txt"), "a").unwrap();
        std::fs::write(r.join("srv/sub/b.txt"), "bb").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("srv/etc-link")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/", r.join("up")).unwrap();
        d
    }

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn tars_a_folder_and_its_content() {
        let d = tree();
        let root = open_root(d.path()).unwrap();
        let out = write_tar(&root, "/srv", Vec::new()).unwrap();
        assert_eq!(
            names(&out),
            [
                "srv/",
                "srv/a.txt",
                "srv/etc-link",
                "srv/sub/",
                "srv/sub/b.txt"
            ]
        );
        let out = write_tar(&root, "/srv/.", Vec::new()).unwrap();
        assert_eq!(names(&out)[..2], ["./", "./a.txt"]);
        // `/up` leads to the root's own `/`, not the host's.
        let out = write_tar(&root, "/up/srv/sub/", Vec::new()).unwrap();
        assert_eq!(names(&out), ["sub/", "sub/b.txt"]);
        let st = stat(&root, "/srv/etc-link").unwrap();
        assert_eq!(st.link_target, "/etc");
        assert_eq!(st.mode & (1 << 27), 1 << 27);
        assert!(matches!(stat(&root, "/nope"), Err(Failure::NotFound)));
        assert!(matches!(
            stat(&root, "/srv/a.txt/x"),
            Err(Failure::NotFound)
        ));
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn extracts_inside_and_refuses_escapes() {
        let d = tree();
        let root = open_root(d.path()).unwrap();
        let opts = ExtractOptions::default();
        extract(
            &root,
            "/srv",
            tar_of(&[("new/x.txt", b"x"), ("/y", b"y")]).as_slice(),
            opts,
        )
        .unwrap();
        assert_eq!(std::fs::read(d.path().join("srv/new/x.txt")).unwrap(), b"x");
        assert_eq!(std::fs::read(d.path().join("srv/y")).unwrap(), b"y");
        // Through a link to `/`: the root's `/etc`, not the host's.
        extract(&root, "/up/etc", tar_of(&[("z", b"z")]).as_slice(), opts).unwrap();
        assert!(d.path().join("etc/z").is_file());
        let e = extract(
            &root,
            "/srv",
            tar_of(&[("../escape", b"!")]).as_slice(),
            opts,
        );
        assert!(matches!(e, Err(Failure::BadArchive(_))), "{e:?}");
        assert!(!d.path().join("escape").exists());
        let e = extract(&root, "/srv/a.txt", tar_of(&[("q", b"q")]).as_slice(), opts);
        assert!(matches!(e, Err(Failure::NotADirectory)));
        let e = extract(
            &root,
            "/srv",
            &b"not a tar at all, just some words"[..],
            opts,
        );
        assert!(e.is_err());
        let leftovers: Vec<_> = std::fs::read_dir(d.path().join("srv"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".servin-cp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let strict = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            owner: None,
        };
        let e = extract(
            &root,
            "/srv",
            tar_of(&[("sub", b"file")]).as_slice(),
            strict,
        );
        assert!(matches!(e, Err(Failure::WouldReplace(_))), "{e:?}");
    }

    #[test]
    fn chunks_are_bounded() {
        let mut got = Vec::new();
        let mut w = ChunkWriter::new(4, |c| {
            got.push(c);
            Ok(())
        });
        w.write_all(b"0123456789").unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(got, [b"0123".to_vec(), b"4567".to_vec(), b"89".to_vec()]);
    }
}
