//! Unpacking layer tars into snapshot folders.
//!
//! Each layer is unpacked on its own into a folder keyed by its chain ID;
//! stacking them is overlayfs's job. OCI whiteouts become overlayfs
//! whiteouts (`.wh.NAME` a 0/0 character device, `.wh..wh..opq` the
//! `trusted.overlay.opaque` attribute). Entries that would land outside the
//! folder are refused before anything is written for them.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode, XattrFlags};

use crate::error::{Error, Result};
use crate::image::digest::HashingReader;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What unpacking a layer found.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Bytes of file content written.
    pub size: u64,
}

/// The compression of a layer, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Sniffs the compression from the first bytes of a blob.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

/// Opens `blob` and returns a reader of its uncompressed content.
pub fn decompressed(blob: &Path) -> Result<Box<dyn Read + Send>> {
    let mut file = fs::File::open(blob).map_err(Error::io("open", blob))?;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut file, &mut head).map_err(Error::io("read", blob))?;
    let file = io::BufReader::with_capacity(256 * 1024, file);
    let start = io::Cursor::new(head[..n].to_vec()).chain(file);
    Ok(match Compression::sniff(&head[..n]) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(start)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(start).map_err(Error::io("read", blob))?)
        }
        Compression::None => Box::new(start),
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Unpacks the layer `blob` (digest `layer`) into the empty folder `dest`.
/// When `diff_id` is given, the uncompressed content must hash to it.
pub fn unpack_layer(
    blob: &Path,
    layer: &str,
    diff_id: Option<&str>,
    dest: &Path,
) -> Result<Unpacked> {
    let err = |entry: &str, message: String| Error::Unpack {
        layer: layer.to_string(),
        entry: entry.to_string(),
        message,
    };
    let reader = HashingReader::new(decompressed(blob)?);
    let mut archive = tar::Archive::new(reader);
    let mut size = 0u64;
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| err("", format!("reading the tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err("", format!("reading the tar: {e}")))?;
        let raw_path = entry
            .path()
            .map_err(|e| err("", format!("bad entry name: {e}")))?;
        let name = raw_path.to_string_lossy().into_owned();
        let rel = safe_relative(&raw_path).map_err(|m| err(&name, m))?;
        let written = write_entry(&mut entry, dest, &rel).map_err(|m| err(&name, m))?;
        size += written.size;
        if let Some(t) = written.dir_mtime {
            dir_times.push((dest.join(&rel), t));
        }
    }
    // Drain the end of the stream (tar padding) so the digest covers it all.
    let mut reader = archive.into_inner();
    io::copy(&mut reader, &mut io::sink()).map_err(|e| err("", format!("reading the tar: {e}")))?;
    let actual = reader.into_hasher().finish();
    if let Some(want) = diff_id
        && want != actual
    {
        return Err(Error::Content {
            subject: format!("layer {layer}"),
            message: format!(
                "uncompressed content has digest {actual}, the image config says {want}"
            ),
        });
    }
    // Directory times last, since writing inside a folder changes its time.
    for (dir, secs) in dir_times.into_iter().rev() {
        if let Ok(f) = fs::File::open(&dir) {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let _ = f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t));
        }
    }
    Ok(Unpacked {
        diff_id: actual,
        size,
    })
}

/// Turns an entry name into a relative path of normal components, as
/// Docker's extraction cleans it: `.` is dropped, `..` steps back, and a
/// leading `/` means the snapshot's root (`/etc/x` lands at `etc/x`,
/// `./a/../b` at `b`). A name whose `..` would leave the root is refused.
pub fn safe_relative(path: &Path) -> std::result::Result<PathBuf, String> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    let mut rooted = false;
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => rooted = true,
            Component::ParentDir => {
                // `/..` is `/`, as in any cleaned path; a relative name
                // climbing above its start leaves the snapshot.
                if parts.pop().is_none() && !rooted {
                    return Err(
                        "path contains \"..\" above its root; refusing to write outside the snapshot"
                            .into(),
                    );
                }
            }
        }
    }
    Ok(parts.iter().collect())
}

/// Makes sure every folder above `rel` exists inside `root` and none is a
/// symlink, so writing `root/rel` cannot land elsewhere.
fn prepare_parents(root: &Path, rel: &Path) -> std::result::Result<(), String> {
    let mut cur = root.to_path_buf();
    let parents: Vec<Component<'_>> = rel.components().collect();
    let count = parents.len().saturating_sub(1);
    for c in parents.into_iter().take(count) {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "parent {:?} is a symlink; refusing to write through it",
                    cur.strip_prefix(root).unwrap_or(&cur)
                ));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "parent {:?} is not a directory",
                    cur.strip_prefix(root).unwrap_or(&cur)
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(|e| format!("create {}: {e}", cur.display()))?;
                let _ = fs::set_permissions(&cur, fs::Permissions::from_mode(0o755));
            }
            Err(e) => return Err(format!("inspect {}: {e}", cur.display())),
        }
    }
    Ok(())
}

/// Removes whatever is at `path` unless it is a folder and `keep_dir` is set.
fn clear(path: &Path, keep_dir: bool) -> std::result::Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if keep_dir {
                Ok(())
            } else {
                fs::remove_dir_all(path).map_err(|e| format!("remove {}: {e}", path.display()))
            }
        }
        Ok(_) => fs::remove_file(path).map_err(|e| format!("remove {}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("inspect {}: {e}", path.display())),
    }
}

struct Written {
    size: u64,
    dir_mtime: Option<u64>,
}

fn write_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    root: &Path,
    rel: &Path,
) -> std::result::Result<Written, String> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    let mode = header.mode().map_err(|e| format!("bad mode: {e}"))? & 0o7777;
    let uid = header.uid().map_err(|e| format!("bad uid: {e}"))?;
    let gid = header.gid().map_err(|e| format!("bad gid: {e}"))?;
    let mtime = header.mtime().unwrap_or(0);
    let uid = u32::try_from(uid).map_err(|_| "uid out of range".to_string())?;
    let gid = u32::try_from(gid).map_err(|_| "gid out of range".to_string())?;
    let none = Written {
        size: 0,
        dir_mtime: None,
    };

    if rel.as_os_str().is_empty() {
        // The layer's root folder: only its attributes apply.
        if kind.is_dir() {
            apply_owner_mode(root, uid, gid, Some(mode))?;
        }
        return Ok(none);
    }
    prepare_parents(root, rel)?;
    let target = root.join(rel);
    let file_name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    if file_name == OPAQUE_MARKER {
        let dir = target.parent().unwrap_or(root);
        rustix::fs::lsetxattr(dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())
            .map_err(|e| format!("mark {} opaque: {e}", dir.display()))?;
        return Ok(none);
    }
    if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err("malformed whiteout".to_string());
        }
        let dst = target.with_file_name(hidden);
        clear(&dst, false)?;
        rustix::fs::mknodat(
            CWD,
            &dst,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|e| format!("create whiteout {}: {e}", dst.display()))?;
        return Ok(none);
    }

    let mut size = 0;
    let mut dir_mtime = None;
    match kind {
        tar::EntryType::Directory => {
            clear(&target, true)?;
            if !target.is_dir() {
                fs::create_dir(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
            }
            dir_mtime = Some(mtime);
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            clear(&target, false)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(|e| format!("create {}: {e}", target.display()))?;
            size =
                io::copy(entry, &mut f).map_err(|e| format!("write {}: {e}", target.display()))?;
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
            let _ = f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t));
        }
        tar::EntryType::Symlink => {
            let link = entry
                .link_name()
                .map_err(|e| format!("bad link name: {e}"))?
                .ok_or_else(|| "symlink without a target".to_string())?;
            clear(&target, false)?;
            symlink(&link, &target)
                .map_err(|e| format!("create symlink {}: {e}", target.display()))?;
        }
        tar::EntryType::Link => {
            let link = entry
                .link_name()
                .map_err(|e| format!("bad link name: {e}"))?
                .ok_or_else(|| "hardlink without a target".to_string())?;
            let link_rel = safe_relative(&link)
                .map_err(|m| format!("hardlink target {}: {m}", link.display()))?;
            if link_rel.as_os_str().is_empty() {
                return Err("hardlink to the snapshot root".to_string());
            }
            prepare_parents(root, &link_rel)
                .map_err(|m| format!("hardlink target {}: {m}", link.display()))?;
            let source = root.join(&link_rel);
            let meta = fs::symlink_metadata(&source).map_err(|e| {
                format!(
                    "hardlink target {} is not in this layer: {e}",
                    link.display()
                )
            })?;
            if meta.is_dir() {
                return Err(format!("hardlink target {} is a directory", link.display()));
            }
            clear(&target, false)?;
            fs::hard_link(&source, &target)
                .map_err(|e| format!("hardlink {}: {e}", target.display()))?;
            return Ok(none);
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let file_type = match kind {
                tar::EntryType::Char => FileType::CharacterDevice,
                tar::EntryType::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            clear(&target, false)?;
            rustix::fs::mknodat(
                CWD,
                &target,
                file_type,
                Mode::from_raw_mode(mode),
                rustix::fs::makedev(major, minor),
            )
            .map_err(|e| format!("create device {}: {e}", target.display()))?;
        }
        tar::EntryType::XGlobalHeader
        | tar::EntryType::XHeader
        | tar::EntryType::GNULongName
        | tar::EntryType::GNULongLink => {
            return Ok(none);
        }
        other => return Err(format!("unsupported entry type {other:?}")),
    }
    let is_symlink = kind == tar::EntryType::Symlink;
    apply_owner_mode(&target, uid, gid, (!is_symlink).then_some(mode))?;
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                match rustix::fs::lsetxattr(&target, attr, ext.value_bytes(), XattrFlags::empty()) {
                    Ok(()) => {}
                    Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::PERM => {
                        tracing::debug!(path = %target.display(), attr, "xattr not supported here");
                    }
                    Err(e) => return Err(format!("set xattr {attr} on {}: {e}", target.display())),
                }
            }
        }
    }
    Ok(Written { size, dir_mtime })
}

fn apply_owner_mode(
    path: &Path,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
) -> std::result::Result<(), String> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if let Some(mode) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn relative_paths_only() {
        assert_eq!(safe_relative(Path::new("./a/b")), Ok(PathBuf::from("a/b")));
        assert!(safe_relative(Path::new("../x")).is_err());
        assert!(safe_relative(Path::new("a/../../x")).is_err());
        // Where Docker extracts them: inside the root once cleaned.
        assert_eq!(
            safe_relative(Path::new("/etc/passwd")),
            Ok(PathBuf::from("etc/passwd"))
        );
        assert_eq!(safe_relative(Path::new("./a/../b")), Ok(PathBuf::from("b")));
        assert_eq!(safe_relative(Path::new("/../x")), Ok(PathBuf::from("x")));
    }

    #[test]
    fn sniffs_compression() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"abc"), Compression::None);
    }
}
