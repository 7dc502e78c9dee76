//! `servin cp`: Docker's rules for what a copy between the host and a
//! container does, and the host side of it (a tar of host files made as it
//! is sent, a tar from the engine extracted as it arrives).
//!
//! The rules, as `docker cp` documents them, for a source SRC and a
//! destination DEST:
//! - SRC is a file: DEST missing → a file created at DEST (a DEST ending in
//!   `/` must exist); DEST a file → overwritten; DEST a folder → the file
//!   copied into it under its own name.
//! - SRC is a folder: DEST missing → created as a folder with SRC's
//!   content; DEST a file → refused; DEST a folder → SRC copied into it, or
//!   only its content when SRC ends in `/.`.
//!
//! The engine extracts into a folder and the host side too, so each case
//! becomes: which folder to extract into, and which name the tar's top
//! entry takes there ([`Placement`]).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::Error;

/// Go's `os.ModeDir`, as Docker's stat header carries it.
pub const GO_MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink`.
pub const GO_MODE_SYMLINK: u32 = 1 << 27;

/// What the engine says about a path in a container
/// (`X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PathStat {
    /// Its base name.
    pub name: String,
    /// Its size in bytes.
    pub size: i64,
    /// Go's `os.FileMode`.
    pub mode: u32,
    /// Its modification time.
    pub mtime: String,
    /// Where a symlink leads, as an absolute path in the container.
    #[serde(rename = "linkTarget", default)]
    pub link_target: String,
}

impl PathStat {
    /// Whether it is a folder.
    pub fn is_dir(&self) -> bool {
        self.mode & GO_MODE_DIR != 0
    }

    /// Whether it is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & GO_MODE_SYMLINK != 0
    }
}

/// One side of `servin cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `CONTAINER:PATH`.
    Container {
        /// The container's name or ID.
        container: String,
        /// The path in it, absolute.
        path: String,
    },
    /// A path on the host.
    Local(String),
    /// `-`: a tar on stdin or stdout.
    Stream,
}

/// Reads a `servin cp` argument as Docker does: an absolute path, a path
/// starting with `.` before its `:`, or one without `:` is local; else
/// `CONTAINER:PATH`, the path relative to the container's `/`.
pub fn endpoint(arg: &str) -> Endpoint {
    if arg == "-" {
        return Endpoint::Stream;
    }
    if arg.starts_with('/') {
        return Endpoint::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((ctr, path)) if !ctr.starts_with('.') && !ctr.is_empty() => Endpoint::Container {
            container: ctr.to_string(),
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
        },
        _ => Endpoint::Local(arg.to_string()),
    }
}

/// Whether a path asks for a folder's content: it ends in `/.`.
pub fn wants_content(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// Whether a path asserts a folder: it ends in `/` or `/.`.
pub fn asserts_dir(path: &str) -> bool {
    path.ends_with('/') || wants_content(path)
}

/// The base name of a path as a copy names it: the last component
/// (trailing `/` ignored), `.` for a folder's content.
pub fn base_of(path: &str) -> String {
    if wants_content(path) {
        return ".".to_string();
    }
    let t = path.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        Some(_) => "/".to_string(),
        None if t.is_empty() => "/".to_string(),
        None => t.to_string(),
    }
}

/// The folder holding a path (`/` for a top-level one, `.` for a bare name).
pub fn parent_of(path: &str) -> String {
    let t = path.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((p, _)) => p.to_string(),
        None => ".".to_string(),
    }
}

/// What the destination is, before the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestKind {
    /// Nothing is there.
    Missing,
    /// A folder.
    Dir,
    /// Anything else.
    File,
}

/// Where a copy lands: the folder the tar is extracted into and the name
/// its top entry takes there (`None`: the name it has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The folder extracted into.
    pub dir: String,
    /// The new name of the tar's top entry.
    pub rename: Option<String>,
}

/// Docker's rules (see the module doc): where a source (a folder or not)
/// lands at `dest`, which is `kind`.
pub fn place(src_is_dir: bool, dest: &str, kind: DestKind) -> Result<Placement, Error> {
    match kind {
        DestKind::Dir => Ok(Placement {
            dir: dest.to_string(),
            rename: None,
        }),
        DestKind::File if src_is_dir => Err(Error::Invalid(format!(
            "cannot copy a directory to a file: {dest} is a file"
        ))),
        DestKind::Missing if !src_is_dir && asserts_dir(dest) => Err(Error::Invalid(format!(
            "destination directory {dest} does not exist"
        ))),
        DestKind::File | DestKind::Missing => Ok(Placement {
            dir: parent_of(dest),
            rename: Some(base_of(dest)),
        }),
    }
}

/// An entry name of a tar as a relative path, with its top component
/// renamed from `old` to `new` when asked; `None` when it climbs out of
/// the folder it is extracted into.
pub fn rebased(name: &Path, rename: Option<(&str, &str)>) -> Option<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    if let Some((old, new)) = rename {
        if old == "." || old == "/" {
            parts.insert(0, new.to_string());
        } else if parts.first().is_some_and(|f| f == old) {
            parts[0] = new.to_string();
        }
    }
    Some(parts.iter().collect())
}

/// What a copy carried: bytes of file content.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    /// Bytes of file content.
    pub bytes: u64,
}

/// Writes a tar of the host path `src` to `out`, its top entry named
/// `top` (`.` for a folder's content). Symlinks are archived as links;
/// `follow` follows `src` itself when it is one.
pub fn write_local_tar(src: &Path, top: &str, follow: bool, out: impl Write) -> io::Result<Copied> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let meta = if follow {
        fs::metadata(src)?
    } else {
        fs::symlink_metadata(src)?
    };
    let mut copied = Copied::default();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    add_local(&mut b, src, &meta, Path::new(top), &mut copied, &mut links)?;
    b.into_inner()?.flush()?;
    Ok(copied)
}

/// The extended attribute Docker's archives carry: a file's capabilities.
const CAPABILITY_XATTR: &str = "security.capability";

/// The extended attributes a tar entry carries (`SCHILY.xattr.NAME`).
fn xattrs_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(Some(name)) = ext.key().map(|k| k.strip_prefix("SCHILY.xattr.")) {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Sets extended attributes on `path` (not following a link); those the
/// file system or the user may not set are passed over, as Docker does.
fn set_xattrs(path: &Path, xattrs: &[(String, Vec<u8>)]) -> io::Result<()> {
    for (key, value) in xattrs {
        match rustix::fs::lsetxattr(path, key.as_str(), value, rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM) => {}
            Err(e) => {
                return Err(io::Error::other(format!(
                    "set {key} on {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

fn add_local<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    meta: &fs::Metadata,
    name: &Path,
    copied: &mut Copied,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    let ft = meta.file_type();
    if ft.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, name, io::empty())?;
        let mut kids: Vec<_> = fs::read_dir(path)?.collect::<io::Result<Vec<_>>>()?;
        kids.sort_by_key(fs::DirEntry::file_name);
        for k in kids {
            let m = fs::symlink_metadata(k.path())?;
            add_local(b, &k.path(), &m, &name.join(k.file_name()), copied, links)?;
        }
        return Ok(());
    }
    if ft.is_symlink() {
        let target = fs::read_link(path)?;
        h.set_size(0);
        return b.append_link(&mut h, name, target);
    }
    if ft.is_file() {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return b.append_link(&mut h, name, first);
            }
            links.insert(key, name.to_path_buf());
        }
        // File capabilities travel as in Docker's archives: the one
        // extended attribute they carry, in a PAX record.
        let mut cap = [0u8; 64];
        if let Ok(n) = rustix::fs::lgetxattr(path, CAPABILITY_XATTR, &mut cap[..]) {
            let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
            b.append_pax_extensions([(key.as_str(), &cap[..n])])?;
        }
        let f = fs::File::open(path)?;
        let size = meta.len();
        copied.bytes += size;
        // A file that shrinks while it is read is padded to its size.
        return b.append_data(&mut h, name, f.take(size).chain(io::repeat(0)).take(size));
    }
    // Fifos and devices: the header alone; sockets are skipped.
    use std::os::unix::fs::FileTypeExt;
    if ft.is_socket() {
        return Ok(());
    }
    h.set_size(0);
    b.append_data(&mut h, name, io::empty())
}

/// Extracts the tar read from `input` into the host folder `dir`, its top
/// entry renamed as asked. Entries that climb out of `dir`, or would be
/// written through a symlink leading out of it, are refused. Owners are
/// kept only when `owners` is set (and the user may give them away).
pub fn extract_local(
    input: impl Read,
    dir: &Path,
    rename: Option<(&str, &str)>,
    owners: bool,
) -> io::Result<Copied> {
    let root = fs::canonicalize(dir)?;
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(owners);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut copied = Copied::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let refuse = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the tar entry {} {what}", raw.display()),
            )
        };
        let rel = rebased(&raw, rename).ok_or_else(|| refuse("is outside the destination"))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = root.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
            if !fs::canonicalize(parent)?.starts_with(&root) {
                return Err(refuse(
                    "would be written through a link out of the destination",
                ));
            }
        }
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::Link {
            let link = entry
                .link_name()?
                .ok_or_else(|| refuse("is a hard link without a target"))?;
            let from = rebased(&link, rename).ok_or_else(|| refuse("links outside"))?;
            if target.symlink_metadata().is_ok() {
                fs::remove_file(&target)?;
            }
            fs::hard_link(root.join(from), &target)?;
            continue;
        }
        if kind == tar::EntryType::Directory && target.is_dir() {
            // Keep the folder; only its mode follows the tar.
            if let Ok(mode) = entry.header().mode() {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))?;
            }
            continue;
        }
        if kind.is_file() {
            copied.bytes += entry.header().size().unwrap_or(0);
        }
        let xattrs = xattrs_of(&mut entry)?;
        entry.unpack(&target)?;
        set_xattrs(&target, &xattrs)?;
    }
    Ok(copied)
}

/// `1.23kB`, as `docker cp` reports sizes (decimal units).
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        return format!("{bytes}B");
    }
    let s = format!("{v:.3}");
    format!(
        "{}{}",
        s.trim_end_matches('0').trim_end_matches('.'),
        UNITS[i]
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn arguments_split_as_dockers() {
        assert_eq!(
            endpoint("web:/etc/hosts"),
            Endpoint::Container {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(
            endpoint("web:tmp"),
            Endpoint::Container {
                container: "web".into(),
                path: "/tmp".into()
            }
        );
        assert_eq!(endpoint("/a:b"), Endpoint::Local("/a:b".into()));
        assert_eq!(endpoint("./a:b"), Endpoint::Local("./a:b".into()));
        assert_eq!(endpoint("file"), Endpoint::Local("file".into()));
        assert_eq!(endpoint("-"), Endpoint::Stream);
    }

    #[test]
    fn names_and_folders() {
        assert_eq!(base_of("/a/b"), "b");
        assert_eq!(base_of("/a/b/"), "b");
        assert_eq!(base_of("/a/b/."), ".");
        assert_eq!(base_of("b"), "b");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("b"), ".");
        assert!(asserts_dir("/a/") && asserts_dir("/a/.") && !asserts_dir("/a"));
    }

    #[test]
    fn placement_follows_dockers_rules() {
        let into = |d: &str| Placement {
            dir: d.to_string(),
            rename: None,
        };
        let as_name = |d: &str, n: &str| Placement {
            dir: d.to_string(),
            rename: Some(n.to_string()),
        };
        // A file.
        assert_eq!(place(false, "/d", DestKind::Dir).unwrap(), into("/d"));
        assert_eq!(
            place(false, "/d/f", DestKind::File).unwrap(),
            as_name("/d", "f")
        );
        assert_eq!(
            place(false, "/d/new", DestKind::Missing).unwrap(),
            as_name("/d", "new")
        );
        assert!(place(false, "/d/new/", DestKind::Missing).is_err());
        // A folder.
        assert_eq!(place(true, "/d", DestKind::Dir).unwrap(), into("/d"));
        assert!(place(true, "/d/f", DestKind::File).is_err());
        assert_eq!(
            place(true, "/d/new/", DestKind::Missing).unwrap(),
            as_name("/d", "new")
        );
    }

    #[test]
    fn entries_are_renamed_and_kept_inside() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            rebased(Path::new("src/a"), Some(("src", "dst"))),
            Some(p("dst/a"))
        );
        assert_eq!(
            rebased(Path::new("./a"), Some((".", "dst"))),
            Some(p("dst/a"))
        );
        assert_eq!(rebased(Path::new("./"), Some((".", "dst"))), Some(p("dst")));
        assert_eq!(rebased(Path::new("./a"), None), Some(p("a")));
        assert_eq!(rebased(Path::new("../x"), None), None);
        assert_eq!(rebased(Path::new("/etc/x"), None), Some(p("etc/x")));
    }

    #[test]
    fn a_local_round_trip_keeps_content_and_links() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/a"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let mut tar_bytes = Vec::new();
        let sent = write_local_tar(&src, "src", false, &mut tar_bytes).unwrap();
        assert_eq!(sent.bytes, 1);
        let out = d.path().join("out");
        fs::create_dir_all(&out).unwrap();
        let got = extract_local(tar_bytes.as_slice(), &out, Some(("src", "copy")), false).unwrap();
        assert_eq!(got.bytes, 1);
        assert_eq!(fs::read_to_string(out.join("copy/sub/a")).unwrap(), "a");
        assert_eq!(
            fs::read_link(out.join("copy/link")).unwrap(),
            Path::new("/etc/passwd")
        );
        // A tar whose entry climbs out is refused, nothing written outside.
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"!"[..]).unwrap();
        let evil = b.into_inner().unwrap();
        assert!(extract_local(evil.as_slice(), &out, None, false).is_err());
        assert!(!d.path().join("escape").exists());
    }

    /// A file's capabilities go into the tar and come out of it (tests run
    /// as root, who may set them).
    #[test]
    fn file_capabilities_make_the_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("ping");
        fs::write(&src, "#!").unwrap();
        // cap_net_raw, effective (vfs_cap_data revision 2).
        let cap: [u8; 20] = [
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        rustix::fs::lsetxattr(
            &src,
            CAPABILITY_XATTR,
            &cap,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let mut tar_bytes = Vec::new();
        write_local_tar(&src, "ping", false, &mut tar_bytes).unwrap();
        let out = d.path().join("out");
        fs::create_dir_all(&out).unwrap();
        extract_local(tar_bytes.as_slice(), &out, Some(("ping", "copy")), false).unwrap();
        let mut got = [0u8; 64];
        let n = rustix::fs::lgetxattr(out.join("copy"), CAPABILITY_XATTR, &mut got[..]).unwrap();
        assert_eq!(&got[..n], &cap[..]);
    }

    #[test]
    fn sizes_read_as_dockers() {
        assert_eq!(size_text(12), "12B");
        assert_eq!(size_text(1234), "1.234kB");
        assert_eq!(size_text(100_000_000), "100MB");
    }
}
