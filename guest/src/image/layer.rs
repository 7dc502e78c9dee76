//! Layers from overlay upper folders: what a container (or a build step)
//! wrote, as an OCI layer tar, as Docker's change list, and as a new
//! snapshot in the store.
//!
//! An overlayfs upper folder already is a layer, in overlay's own words:
//! a deleted file is a 0/0 character device, a folder that hides the one
//! below carries `trusted.overlay.opaque=y` (the engine mounts without
//! `userxattr`, see [`crate::runtime::rootfs`]). This module writes those
//! the OCI way (`.wh.NAME`, `DIR/.wh..wh..opq`), the reverse of
//! [`super::unpack`].
//!
//! The upper folder also holds what the engine itself made there: the
//! mount points runc creates for `/proc`, `/sys`, `/dev`, the generated
//! `/etc` files, the init and the volumes. Docker keeps those in a layer
//! of their own (its "init layer") that no commit, diff or export shows;
//! [`Exclusions`] leaves them out when they are still empty and were not
//! in the image.
//!
//! The work is done in three steps: one walk reads the metadata of the
//! whole folder (names sorted, so the same tree gives the same bytes),
//! the decisions (exclusions, added or modified) are taken on that list,
//! and one pass writes the tar, reading each file's data once through a
//! large buffer that also hashes it.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::container::record::Record;
use crate::error::{Error, Result};
use crate::image::digest::{self, Hasher};
use crate::image::store::{LayerRecord, Store};
use crate::state::sync_dir;

/// The media type of the layers this module writes.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_XATTRS: &str = "trusted.overlay.";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The buffer between the tar and its destination: file data is read
/// straight into it, and it is hashed and written in pieces this large.
const BUFFER: usize = 4 * 1024 * 1024;

/// Paths the engine creates in a container's upper folder only as mount
/// points, which no layer shows while they are empty and not in the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    /// Relative paths (`etc/hosts`), cleaned.
    paths: BTreeSet<PathBuf>,
}

impl Exclusions {
    /// Nothing is left out (a build step's upper folder, an export).
    pub fn none() -> Self {
        Self::default()
    }

    /// These paths (absolute or relative, in the container) are mount
    /// points.
    pub fn of_paths<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let paths = paths
            .into_iter()
            .filter_map(|p| {
                let rel = super::unpack::safe_relative(Path::new(p.as_ref())).ok()?;
                (!rel.as_os_str().is_empty()).then_some(rel)
            })
            .collect();
        Self { paths }
    }

    /// The mount points the engine makes for container `record`: the
    /// standard file systems, the generated `/etc` files, the init, and
    /// the targets of its volumes, binds and tmpfs mounts (see
    /// [`crate::runtime::spec`]).
    pub fn for_container(record: &Record) -> Self {
        let hc = record.host_config();
        let mut paths: Vec<String> = [
            "/proc",
            "/sys",
            "/dev",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            crate::runtime::spec::INIT_PATH,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        paths.extend(record.volumes.iter().map(|v| v.destination.clone()));
        for b in hc.binds.iter().flatten() {
            if let Some(dst) = b.split(':').nth(1) {
                paths.push(dst.to_string());
            }
        }
        paths.extend(hc.mounts.iter().flatten().filter_map(|m| m.target.clone()));
        paths.extend(hc.tmpfs.iter().flatten().map(|(k, _)| k.clone()));
        if let Some(vols) = record.body.volumes.as_ref() {
            paths.extend(vols.iter().cloned());
        }
        if let Some(vols) = record
            .image_config
            .as_ref()
            .and_then(|c| c.volumes().clone())
        {
            paths.extend(vols);
        }
        Self::of_paths(paths)
    }

    /// The excluded paths and every folder above them: the candidates.
    fn candidates(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for p in &self.paths {
            let mut cur = Some(p.as_path());
            while let Some(c) = cur.filter(|c| !c.as_os_str().is_empty()) {
                out.insert(c.to_path_buf());
                cur = c.parent();
            }
        }
        out
    }
}

/// What writing a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// Digest of the tar written (the layer's diff ID; the blob's digest
    /// too, as it is not compressed).
    pub diff_id: String,
    /// Bytes of tar written.
    pub size: u64,
    /// Entries written (whiteouts and opaque markers included).
    pub entries: u64,
    /// Changes as `docker diff` counts them: 0 means the upper folder holds
    /// nothing the image lacks.
    pub changes: usize,
}

/// One change of a container's filesystem, in Docker's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// Changed (`C`, 0).
    Modified,
    /// Added (`A`, 1).
    Added,
    /// Deleted (`D`, 2).
    Deleted,
}

impl ChangeKind {
    /// Docker's number for it.
    pub fn code(self) -> u8 {
        match self {
            Self::Modified => 0,
            Self::Added => 1,
            Self::Deleted => 2,
        }
    }
}

/// A changed path (absolute, as in the container).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// The path, e.g. `/etc/passwd`.
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// What an entry of the upper folder is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir { opaque: bool },
    File,
    Symlink,
    Whiteout,
    Device,
    Fifo,
    Socket,
}

/// Extended attributes by name, sorted.
type Xattrs = Vec<(String, Vec<u8>)>;

#[derive(Debug)]
struct Node {
    /// Relative to the upper folder.
    rel: PathBuf,
    meta: fs::Metadata,
    kind: Kind,
    /// Extended attributes that travel in the tar.
    xattrs: Xattrs,
    /// Whether the path exists in a lower layer.
    in_lower: bool,
}

/// How an entry of the upper folder is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Left out: an empty mount point, a socket, an unchanged folder.
    Skip,
    /// Written, and a change of this kind.
    Write(Option<ChangeKind>),
}

/// The walked and judged upper folder.
struct Plan {
    nodes: Vec<Node>,
    fates: Vec<Fate>,
}

impl Plan {
    fn read(upper: &Path, lower: &[PathBuf], exclude: &Exclusions) -> Result<Self> {
        let mut nodes = Vec::new();
        walk(upper, Path::new(""), lower, true, &mut nodes)?;
        let excluded = excluded(upper, &nodes, exclude);
        // A folder that is in the image counts as changed when anything
        // was written in it (which moves its time) or its owner or mode
        // changed; otherwise it is only there for what lies below it.
        let mut has_written_child: BTreeSet<PathBuf> = BTreeSet::new();
        for n in &nodes {
            if excluded.contains(&n.rel) || n.kind == Kind::Socket {
                continue;
            }
            if let Some(parent) = n.rel.parent() {
                has_written_child.insert(parent.to_path_buf());
            }
        }
        let lower_meta = |rel: &Path| -> Option<fs::Metadata> {
            lower
                .iter()
                .find_map(|l| fs::symlink_metadata(l.join(rel)).ok())
        };
        let fates = nodes
            .iter()
            .map(|n| {
                if excluded.contains(&n.rel) || n.kind == Kind::Socket {
                    return Fate::Skip;
                }
                match &n.kind {
                    Kind::Whiteout => Fate::Write(Some(ChangeKind::Deleted)),
                    Kind::Dir { opaque } if n.in_lower => {
                        let changed = *opaque
                            || has_written_child.contains(&n.rel)
                            || lower_meta(&n.rel).is_none_or(|m| {
                                !m.is_dir()
                                    || m.mode() != n.meta.mode()
                                    || m.uid() != n.meta.uid()
                                    || m.gid() != n.meta.gid()
                                    || m.mtime() != n.meta.mtime()
                            });
                        if changed {
                            Fate::Write(Some(ChangeKind::Modified))
                        } else {
                            Fate::Skip
                        }
                    }
                    _ if n.in_lower => Fate::Write(Some(ChangeKind::Modified)),
                    _ => Fate::Write(Some(ChangeKind::Added)),
                }
            })
            .collect();
        Ok(Self { nodes, fates })
    }

    fn changes(&self) -> Vec<Change> {
        let mut out: Vec<Change> = self
            .nodes
            .iter()
            .zip(&self.fates)
            .filter_map(|(n, f)| match f {
                // A whiteout has the name of what it deletes.
                Fate::Write(Some(kind)) => Some(Change {
                    path: format!("/{}", n.rel.display()),
                    kind: *kind,
                }),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }
}

/// Reads the entries below `dir` (relative `rel`), sorted by name, in
/// pre-order. `parent_in_lower` says whether the folder exists in a lower
/// layer (a path under a new folder cannot).
fn walk(
    upper: &Path,
    rel: &Path,
    lower: &[PathBuf],
    parent_in_lower: bool,
    out: &mut Vec<Node>,
) -> Result<()> {
    let dir = upper.join(rel);
    let mut names: Vec<std::ffi::OsString> = fs::read_dir(&dir)
        .map_err(Error::io("read", &dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(Error::io("read", &dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let child_rel = rel.join(&name);
        let path = upper.join(&child_rel);
        let meta = fs::symlink_metadata(&path).map_err(Error::io("inspect", &path))?;
        let ft = meta.file_type();
        let (xattrs, opaque) = if ft.is_symlink() {
            (Vec::new(), false)
        } else {
            read_xattrs(&path)?
        };
        let kind = if ft.is_dir() {
            Kind::Dir { opaque }
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_char_device() && meta.rdev() == 0 {
            Kind::Whiteout
        } else if ft.is_char_device() || ft.is_block_device() {
            Kind::Device
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Socket
        };
        let in_lower = parent_in_lower
            && lower
                .iter()
                .any(|l| fs::symlink_metadata(l.join(&child_rel)).is_ok());
        let is_dir = ft.is_dir();
        out.push(Node {
            rel: child_rel.clone(),
            meta,
            kind,
            xattrs,
            in_lower,
        });
        if is_dir {
            // Below an opaque folder nothing of the lower layers shows.
            walk(upper, &child_rel, lower, in_lower && !opaque, out)?;
        }
    }
    Ok(())
}

/// The extended attributes of `path` that belong in a layer, sorted, and
/// whether it is an opaque folder. Overlay's own attributes never travel;
/// a redirect or a metacopy means the data is elsewhere, which this
/// module does not follow (the engine mounts without those features).
fn read_xattrs(path: &Path) -> Result<(Xattrs, bool)> {
    let names = match xattr_names(path) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok((Vec::new(), false)),
        Err(e) => return Err(Error::io("list the attributes of", path)(e)),
    };
    let mut out = Vec::new();
    let mut opaque = false;
    for name in names {
        if let Some(which) = name.strip_prefix(OVERLAY_XATTRS) {
            if name == OPAQUE_XATTR {
                opaque = get_xattr(path, &name)?.is_some_and(|v| v == b"y");
            } else if which == "redirect" || which == "metacopy" {
                return Err(Error::Content {
                    subject: format!("overlay upper folder entry {}", path.display()),
                    message: format!(
                        "carries {name}: its data lives in a lower layer, which a layer cannot refer to (mount without redirect_dir and metacopy)"
                    ),
                });
            }
            continue;
        }
        if let Some(value) = get_xattr(path, &name)? {
            out.push((name, value));
        }
    }
    out.sort();
    Ok((out, opaque))
}

fn xattr_names(path: &Path) -> io::Result<Vec<String>> {
    let mut buf = vec![0u8; 1024];
    loop {
        match rustix::fs::llistxattr(path, &mut buf) {
            Ok(n) => {
                return Ok(buf[..n]
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect());
            }
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Err(io::ErrorKind::Unsupported.into()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => {
                return Err(Error::io("read an attribute of", path)(e.into()));
            }
        }
    }
}

/// The entries left out as empty mount points: a candidate not in a lower
/// layer that is an empty file, or a folder holding only left-out entries.
fn excluded(upper: &Path, nodes: &[Node], exclude: &Exclusions) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let candidates = exclude.candidates();
    if candidates.is_empty() {
        return out;
    }
    let by_rel: HashMap<&Path, &Node> = nodes.iter().map(|n| (n.rel.as_path(), n)).collect();
    // Deepest first, so a folder's children are judged before it.
    let mut ordered: Vec<&PathBuf> = candidates.iter().collect();
    ordered.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for rel in ordered {
        let Some(node) = by_rel.get(rel.as_path()) else {
            continue;
        };
        if node.in_lower {
            continue;
        }
        let empty = match node.kind {
            Kind::File => node.meta.len() == 0,
            Kind::Dir { .. } => fs::read_dir(upper.join(rel)).is_ok_and(|entries| {
                entries
                    .flatten()
                    .all(|e| out.contains(&rel.join(e.file_name())))
            }),
            _ => false,
        };
        if empty {
            out.insert(rel.clone());
        }
    }
    out
}

/// A writer that hashes and counts what it passes on.
struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(done) = buf.get(..n) {
            self.hasher.update(done);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The changes of an upper folder as `docker diff` lists them, sorted by
/// path: added (not in `lower`, top layer first), modified (in `lower`;
/// folders when something was written in them), deleted (whiteouts).
pub fn changes(upper: &Path, lower: &[PathBuf], exclude: &Exclusions) -> Result<Vec<Change>> {
    Ok(Plan::read(upper, lower, exclude)?.changes())
}

/// Writes the overlayfs upper folder `upper` as an uncompressed OCI layer
/// tar to `out`: whiteouts as `.wh.NAME`, opaque folders with
/// `.wh..wh..opq`, extended attributes as PAX `SCHILY.xattr.*` records
/// (overlay's own never), owners, modes and times kept, hard links as tar
/// links, sockets and the empty mount points of `exclude` left out,
/// entries in byte order of their names. `lower` (top layer first) tells
/// added from modified. `out` is not flushed before it is returned to
/// the drop of the writer; errors name the path that failed.
pub fn write_layer_tar(
    upper: &Path,
    lower: &[PathBuf],
    exclude: &Exclusions,
    out: impl Write,
) -> Result<LayerStats> {
    let plan = Plan::read(upper, lower, exclude)?;
    let changes = plan.changes().len();
    let (hasher, entries) = write_plan(upper, &plan, out)?;
    Ok(LayerStats {
        size: hasher.len(),
        diff_id: hasher.finish(),
        entries,
        changes,
    })
}

/// Writes a tar of the whole tree under `root` (an export of a mounted
/// root filesystem): every entry, sockets left out, no whiteout handling.
pub fn write_tree_tar(root: &Path, out: impl Write) -> Result<u64> {
    let mut nodes = Vec::new();
    walk(root, Path::new(""), &[], false, &mut nodes)?;
    let fates = nodes
        .iter()
        .map(|n| {
            if n.kind == Kind::Socket {
                Fate::Skip
            } else {
                Fate::Write(None)
            }
        })
        .collect();
    let plan = Plan { nodes, fates };
    let (hasher, _) = write_plan(root, &plan, out)?;
    Ok(hasher.len())
}

fn write_plan(upper: &Path, plan: &Plan, out: impl Write) -> Result<(Hasher, u64)> {
    let tar_err = |what: &Path| {
        let p = upper.join(what);
        move |e: io::Error| Error::io("write the layer entry for", &p)(e)
    };
    let sink = HashingWriter {
        inner: out,
        hasher: Hasher::default(),
    };
    let mut builder = tar::Builder::new(BufWriter::with_capacity(BUFFER, sink));
    builder.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut entries = 0u64;
    for (n, fate) in plan.nodes.iter().zip(&plan.fates) {
        if *fate == Fate::Skip {
            continue;
        }
        let path = upper.join(&n.rel);
        let mut h = header_of(&n.meta);
        match &n.kind {
            Kind::Whiteout => {
                let name = n.rel.file_name().unwrap_or_default();
                let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
                wh.push(name);
                let rel = n.rel.with_file_name(wh);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                h.set_size(0);
                builder
                    .append_data(&mut h, &rel, io::empty())
                    .map_err(tar_err(&rel))?;
            }
            Kind::Dir { opaque } => {
                append_xattrs(&mut builder, &n.xattrs).map_err(tar_err(&n.rel))?;
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                let mut name = n.rel.clone().into_os_string();
                name.push("/");
                builder
                    .append_data(&mut h, Path::new(&name), io::empty())
                    .map_err(tar_err(&n.rel))?;
                if *opaque {
                    let rel = n.rel.join(OPAQUE_MARKER);
                    let mut m = header_of(&n.meta);
                    m.set_entry_type(tar::EntryType::Regular);
                    m.set_mode(0o600);
                    m.set_size(0);
                    builder
                        .append_data(&mut m, &rel, io::empty())
                        .map_err(tar_err(&rel))?;
                    entries += 1;
                }
            }
            Kind::File => {
                let key = (n.meta.dev(), n.meta.ino());
                if n.meta.nlink() > 1 {
                    if let Some(first) = links.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        builder
                            .append_link(&mut h, &n.rel, first)
                            .map_err(tar_err(&n.rel))?;
                        entries += 1;
                        continue;
                    }
                    links.insert(key, n.rel.clone());
                }
                append_xattrs(&mut builder, &n.xattrs).map_err(tar_err(&n.rel))?;
                let file = fs::File::open(&path).map_err(Error::io("open", &path))?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(n.meta.len());
                // A file that changes size while it is read would break the
                // tar: the header's size is what is copied, or an error.
                let mut reader = io::Read::take(file, n.meta.len());
                builder
                    .append_data(&mut h, &n.rel, ExactReader::new(&mut reader, &path))
                    .map_err(tar_err(&n.rel))?;
            }
            Kind::Symlink => {
                let target = fs::read_link(&path).map_err(Error::io("read the link", &path))?;
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                builder
                    .append_link(&mut h, &n.rel, &target)
                    .map_err(tar_err(&n.rel))?;
            }
            Kind::Device | Kind::Fifo => {
                append_xattrs(&mut builder, &n.xattrs).map_err(tar_err(&n.rel))?;
                let ft = n.meta.file_type();
                h.set_entry_type(if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Fifo
                });
                h.set_size(0);
                let rdev = n.meta.rdev();
                let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
                h.set_device_major(major).map_err(tar_err(&n.rel))?;
                h.set_device_minor(minor).map_err(tar_err(&n.rel))?;
                builder
                    .append_data(&mut h, &n.rel, io::empty())
                    .map_err(tar_err(&n.rel))?;
            }
            Kind::Socket => continue,
        }
        entries += 1;
    }
    let buffered = builder
        .into_inner()
        .map_err(|e| Error::io("finish the layer of", upper)(e))?;
    let mut sink = buffered
        .into_inner()
        .map_err(|e| Error::io("write the layer of", upper)(e.into_error()))?;
    sink.flush()
        .map_err(|e| Error::io("write the layer of", upper)(e))?;
    Ok((sink.hasher, entries))
}

/// A tar header with an entry's owner, mode and modification time.
fn header_of(meta: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h
}

fn append_xattrs<W: Write>(
    builder: &mut tar::Builder<W>,
    xattrs: &[(String, Vec<u8>)],
) -> io::Result<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = xattrs
        .iter()
        .map(|(k, _)| format!("SCHILY.xattr.{k}"))
        .collect();
    builder.append_pax_extensions(
        keys.iter()
            .zip(xattrs)
            .map(|(k, (_, v))| (k.as_str(), v.as_slice())),
    )
}

/// Reads exactly the size the header announced: a file that shrank while
/// it was read is an error naming it, not a corrupt tar.
struct ExactReader<'a, R> {
    inner: &'a mut io::Take<R>,
    path: &'a Path,
}

impl<'a, R> ExactReader<'a, R> {
    fn new(inner: &'a mut io::Take<R>, path: &'a Path) -> Self {
        Self { inner, path }
    }
}

impl<R: io::Read> io::Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.inner.limit() > 0 && !buf.is_empty() {
            return Err(io::Error::other(format!(
                "{} shrank while it was read",
                self.path.display()
            )));
        }
        Ok(n)
    }
}

/// How [`commit_upper`] makes the new layer's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Rename the upper folder into the store (it must not be mounted and
    /// is gone afterwards): a build step whose container is removed next.
    Move,
    /// Unpack the written tar into a new snapshot, leaving the upper folder
    /// as it is: `docker commit` of a container that goes on.
    Copy,
}

/// Makes a layer of the overlay upper folder `upper` over `lower` (top
/// layer first) whose top layer has chain ID `parent_chain`: writes the
/// tar blob into the store, hashing it as it goes (uncompressed, so its
/// digest is its diff ID), and makes the snapshot of the new chain ID as
/// `how` says. `None` when the upper folder holds no change once `exclude`
/// is applied (then nothing is written and the upper folder is left).
///
/// Blocking: call it on a blocking thread, with `_gc` a read guard of
/// [`Store::gc_lock`] held until the image using the layer is added, so
/// garbage collection cannot take the layer in between. Work happens in
/// the store's `tmp/` and is renamed into place last; commits of the same
/// chain ID are serialised by [`Store::lock_for`].
pub fn commit_upper(
    store: &Store,
    upper: &Path,
    lower: &[PathBuf],
    parent_chain: Option<&str>,
    exclude: &Exclusions,
    how: Take,
    _gc: &tokio::sync::RwLockReadGuard<'_, ()>,
) -> Result<Option<LayerRecord>> {
    let plan = Plan::read(upper, lower, exclude)?;
    if plan.changes().is_empty() {
        return Ok(None);
    }
    let tmp_blob = store.temp_path("layer");
    let written = (|| {
        let file = fs::File::create(&tmp_blob).map_err(Error::io("create", &tmp_blob))?;
        let (hasher, _) = write_synced_behind(&file, |out| write_plan(upper, &plan, out)).map_err(
            |e| match e {
                SyncedBehind::Write(e) => e,
                SyncedBehind::Sync(e) => Error::io("sync", &tmp_blob)(e),
            },
        )?;
        Ok::<_, Error>(hasher)
    })();
    let hasher = match written {
        Ok(h) => h,
        Err(e) => {
            let _ = fs::remove_file(&tmp_blob);
            return Err(e);
        }
    };
    let size = hasher.len();
    let diff_id = hasher.finish();
    let chain_id = match parent_chain {
        Some(p) => digest::of(format!("{p} {diff_id}").as_bytes()),
        None => diff_id.clone(),
    };
    let lock = store.lock_for(&chain_id);
    let _guard = lock.blocking_lock();
    let snapshot = store.snapshot_path(&chain_id)?;
    let result = (|| {
        if store.has_blob(&diff_id) {
            let _ = fs::remove_file(&tmp_blob);
        } else {
            store.commit_blob(&tmp_blob, &diff_id)?;
        }
        if store.has_snapshot(&chain_id) {
            return Ok(());
        }
        let tmp_snap = store.temp_path("snapshot");
        let made = match how {
            Take::Move => {
                fs::rename(upper, &tmp_snap).map_err(Error::io("rename", upper))?;
                tidy_moved(&tmp_snap, &plan)
            }
            Take::Copy => fs::create_dir(&tmp_snap)
                .map_err(Error::io("create", &tmp_snap))
                .and_then(|()| {
                    let blob = store.blob_path(&diff_id)?;
                    super::unpack::unpack_layer(&blob, &diff_id, Some(&diff_id), &tmp_snap)
                        .map(|_| ())
                }),
        };
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&tmp_snap);
            return Err(e);
        }
        sync_dir(&tmp_snap);
        fs::rename(&tmp_snap, &snapshot).map_err(Error::io("rename", &snapshot))?;
        if let Some(parent) = snapshot.parent() {
            sync_dir(parent);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_blob);
    }
    result?;
    Ok(Some(LayerRecord {
        digest: diff_id.clone(),
        media_type: LAYER_MEDIA_TYPE.to_string(),
        size,
        diff_id,
    }))
}

/// How often the data written is handed to the disk while writing goes
/// on.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

enum SyncedBehind {
    Write(Error),
    Sync(io::Error),
}

/// Runs `write` on `file`, and meanwhile has a helper thread flush what
/// is written every [`SYNC_EVERY`] bytes, so the disk works while the
/// layer is being made and the final sync waits only for the tail
/// (rather than for a whole gigabyte, and the writer for the kernel's
/// dirty-page throttling). Returns once all of it is on disk.
fn write_synced_behind<T>(
    file: &fs::File,
    write: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> std::result::Result<T, SyncedBehind> {
    struct Counting<'a> {
        file: &'a fs::File,
        since: u64,
        tx: std::sync::mpsc::SyncSender<()>,
    }
    impl Write for Counting<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = (&*self.file).write(buf)?;
            self.since += n as u64;
            if self.since >= SYNC_EVERY {
                self.since = 0;
                // A flush already pending covers this one too.
                let _ = self.tx.try_send(());
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let behind = file.try_clone().map_err(SyncedBehind::Sync)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::scope(|scope| {
        let helper = scope.spawn(move || {
            while rx.recv().is_ok() {
                let _ = behind.sync_data();
            }
        });
        let mut out = Counting { file, since: 0, tx };
        let result = write(&mut out).map_err(SyncedBehind::Write);
        drop(out);
        let _ = helper.join();
        let value = result?;
        file.sync_all().map_err(SyncedBehind::Sync)?;
        Ok(value)
    })
}

/// Makes a moved upper folder what the tar says: what the tar left out
/// (empty mount points, sockets, unchanged folders with nothing below
/// them) goes, and overlay's attributes other than opaque go, so the
/// snapshot stacks like an unpacked one.
fn tidy_moved(dir: &Path, plan: &Plan) -> Result<()> {
    // Deepest first, so a folder is empty when its turn comes.
    for (n, fate) in plan.nodes.iter().zip(&plan.fates).rev() {
        let path = dir.join(&n.rel);
        if *fate == Fate::Skip {
            let gone = if matches!(n.kind, Kind::Dir { .. }) {
                fs::remove_dir(&path)
            } else {
                fs::remove_file(&path)
            };
            match gone {
                Ok(()) => {}
                // An unchanged folder with changes below it stays.
                Err(_) if matches!(n.kind, Kind::Dir { .. }) => {}
                Err(e) => return Err(Error::io("remove", &path)(e)),
            }
            continue;
        }
        if n.kind == Kind::Symlink {
            continue;
        }
        for name in xattr_names(&path).unwrap_or_default() {
            if name.starts_with(OVERLAY_XATTRS) && name != OPAQUE_XATTR {
                let _ = rustix::fs::lremovexattr(&path, name.as_str());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::{PermissionsExt, symlink};

    use rustix::fs::{CWD, FileType, Mode, XattrFlags};

    use super::*;

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(
            CWD,
            path,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .unwrap();
    }

    /// A lower layer with `etc/passwd`, `old`, `keep/a`, `keep/b`, and an
    /// upper folder that changes `etc/passwd`, deletes `old`, replaces
    /// `keep` (opaque), adds `new` with a capability attribute and a hard
    /// link to it, a socket, and the engine's empty mount points.
    fn tree(root: &Path) -> (PathBuf, PathBuf) {
        let lower = root.join("lower");
        let upper = root.join("upper");
        for d in ["etc", "keep", "proc"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "root\n").unwrap();
        fs::write(lower.join("old"), "x").unwrap();
        fs::write(lower.join("keep/a"), "a").unwrap();
        fs::write(lower.join("keep/b"), "b").unwrap();
        for d in ["etc", "keep", "proc", "sys", "data", "sbin"] {
            fs::create_dir_all(upper.join(d)).unwrap();
        }
        fs::write(upper.join("etc/passwd"), "root\nme\n").unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("etc/hostname"), "").unwrap();
        fs::write(upper.join("sbin/servin-init"), "").unwrap();
        whiteout(&upper.join("old"));
        rustix::fs::lsetxattr(upper.join("keep"), OPAQUE_XATTR, b"y", XattrFlags::empty()).unwrap();
        fs::write(upper.join("keep/c"), "c").unwrap();
        fs::write(upper.join("new"), "new data").unwrap();
        fs::set_permissions(upper.join("new"), fs::Permissions::from_mode(0o751)).unwrap();
        rustix::fs::lsetxattr(
            upper.join("new"),
            "security.capability",
            &[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::lsetxattr(
            upper.join("new"),
            "trusted.overlay.origin",
            b"zzz",
            XattrFlags::empty(),
        )
        .unwrap();
        fs::hard_link(upper.join("new"), upper.join("new-link")).unwrap();
        symlink("new", upper.join("new-sym")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(upper.join("sock")).unwrap();
        (upper, lower)
    }

    fn exclusions() -> Exclusions {
        Exclusions::of_paths([
            "/proc",
            "/sys",
            "/etc/hosts",
            "/etc/hostname",
            "/data",
            "/sbin/servin-init",
        ])
    }

    struct Entry {
        path: String,
        kind: tar::EntryType,
        link: Option<String>,
        mode: u32,
        pax: Vec<(String, Vec<u8>)>,
    }

    fn entries(bytes: &[u8]) -> Vec<Entry> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let pax = e
                    .pax_extensions()
                    .unwrap()
                    .map(|x| {
                        x.flatten()
                            .map(|x| (x.key().unwrap().to_string(), x.value_bytes().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                Entry {
                    path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    kind: e.header().entry_type(),
                    link: e.link_name().unwrap().map(|l| l.display().to_string()),
                    mode: e.header().mode().unwrap(),
                    pax,
                }
            })
            .collect()
    }

    #[test]
    fn an_upper_folder_becomes_an_oci_layer() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, lower) = tree(dir.path());
        let mut out = Vec::new();
        let stats = write_layer_tar(
            &upper,
            std::slice::from_ref(&lower),
            &exclusions(),
            &mut out,
        )
        .unwrap();
        assert_eq!(stats.diff_id, digest::of(&out));
        assert_eq!(stats.size, out.len() as u64);
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/passwd",
                "keep/",
                "keep/.wh..wh..opq",
                "keep/c",
                "new",
                "new-link",
                "new-sym",
                ".wh.old",
            ]
        );
        let by = |p: &str| got.iter().find(|e| e.path == p).unwrap();
        assert_eq!(by("new").mode, 0o751);
        assert_eq!(
            by("new").pax,
            vec![(
                "SCHILY.xattr.security.capability".to_string(),
                vec![
                    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
                ]
            )]
        );
        assert_eq!(by("new-link").kind, tar::EntryType::Link);
        assert_eq!(by("new-link").link.as_deref(), Some("new"));
        assert_eq!(by("new-sym").kind, tar::EntryType::Symlink);
        assert_eq!(by(".wh.old").kind, tar::EntryType::Regular);
        assert!(
            got.iter()
                .all(|e| e.pax.iter().all(|(k, _)| !k.contains("overlay")))
        );
        assert_eq!(stats.entries, 9);
    }

    #[test]
    fn the_same_tree_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, lower) = tree(dir.path());
        let lower = [lower];
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_layer_tar(&upper, &lower, &exclusions(), &mut a).unwrap();
        write_layer_tar(&upper, &lower, &exclusions(), &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn changes_read_as_docker_diff_does() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, lower) = tree(dir.path());
        let got: Vec<(String, u8)> = changes(&upper, &[lower], &exclusions())
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.kind.code()))
            .collect();
        let want: Vec<(String, u8)> = [
            ("/etc", 0),
            ("/etc/passwd", 0),
            ("/keep", 0),
            ("/keep/c", 1),
            ("/new", 1),
            ("/new-link", 1),
            ("/new-sym", 1),
            ("/old", 2),
        ]
        .iter()
        .map(|(p, k)| (p.to_string(), *k))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn mount_points_with_content_or_in_the_image_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, lower) = tree(dir.path());
        fs::write(upper.join("sys/x"), "written").unwrap();
        fs::write(upper.join("proc/y"), "").unwrap();
        let got: Vec<String> = changes(&upper, &[lower], &exclusions())
            .unwrap()
            .into_iter()
            .map(|c| c.path)
            .collect();
        // /proc is in the image: changed, with what was written in it.
        assert!(got.contains(&"/proc".to_string()), "{got:?}");
        assert!(got.contains(&"/proc/y".to_string()), "{got:?}");
        assert!(got.contains(&"/sys".to_string()), "{got:?}");
        assert!(got.contains(&"/sys/x".to_string()), "{got:?}");
        assert!(!got.contains(&"/etc/hosts".to_string()));
        assert!(!got.contains(&"/sbin".to_string()));
    }

    #[test]
    fn without_exclusions_mount_points_show() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, lower) = tree(dir.path());
        let got: Vec<String> = changes(&upper, &[lower], &Exclusions::none())
            .unwrap()
            .into_iter()
            .map(|c| c.path)
            .collect();
        for p in ["/etc/hosts", "/sbin", "/sbin/servin-init", "/sys", "/data"] {
            assert!(got.contains(&p.to_string()), "{p} in {got:?}");
        }
    }

    fn store(dir: &Path) -> Store {
        Store::open(dir, Default::default()).unwrap()
    }

    #[test]
    fn an_upper_folder_of_mount_points_only_is_no_layer() {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        let store = store(&dir.path().join("root"));
        let gc = store.gc_lock.blocking_read();
        let got = commit_upper(
            &store,
            &upper,
            &[lower],
            None,
            &exclusions(),
            Take::Move,
            &gc,
        )
        .unwrap();
        assert_eq!(got, None);
        assert!(upper.join("etc/hosts").exists(), "nothing moved");
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert_eq!(
            commit_upper(
                &store,
                &empty,
                &[],
                None,
                &Exclusions::none(),
                Take::Copy,
                &gc
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn commit_copies_or_moves_into_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, lower) = tree(dir.path());
        let store = store(&dir.path().join("root"));
        let gc = store.gc_lock.blocking_read();
        let parent = digest::of(b"parent");
        let copied = commit_upper(
            &store,
            &upper,
            std::slice::from_ref(&lower),
            Some(&parent),
            &exclusions(),
            Take::Copy,
            &gc,
        )
        .unwrap()
        .unwrap();
        assert_eq!(copied.digest, copied.diff_id);
        assert_eq!(copied.media_type, LAYER_MEDIA_TYPE);
        let blob = fs::read(store.blob_path(&copied.digest).unwrap()).unwrap();
        assert_eq!(digest::of(&blob), copied.digest);
        assert_eq!(blob.len() as u64, copied.size);
        let chain = digest::of(format!("{parent} {}", copied.diff_id).as_bytes());
        let snap = store.snapshot_path(&chain).unwrap();
        assert_eq!(fs::read(snap.join("keep/c")).unwrap(), b"c");
        assert!(upper.exists(), "a copy leaves the upper folder");
        // The snapshot is in overlay form again.
        let m = fs::symlink_metadata(snap.join("old")).unwrap();
        assert!(m.file_type().is_char_device());
        assert!(!snap.join("etc/hosts").exists());

        // Moving the same content into another chain gives the same blob.
        let moved = commit_upper(
            &store,
            &upper,
            &[lower],
            None,
            &exclusions(),
            Take::Move,
            &gc,
        )
        .unwrap()
        .unwrap();
        assert_eq!(moved.diff_id, copied.diff_id);
        assert!(!upper.exists(), "a move takes the upper folder");
        let snap = store.snapshot_path(&moved.diff_id).unwrap();
        assert_eq!(fs::read(snap.join("new")).unwrap(), b"new data");
        assert!(!snap.join("etc/hosts").exists());
        assert!(!snap.join("sock").exists());
        assert!(!snap.join("proc").exists());
        let names = xattr_names(&snap.join("new")).unwrap();
        assert!(
            !names.iter().any(|n| n == "trusted.overlay.origin"),
            "{names:?}"
        );
        let mut again = Vec::new();
        write_layer_tar(&snap, &[], &Exclusions::none(), &mut again).unwrap();
        assert_eq!(
            digest::of(&again),
            moved.diff_id,
            "the moved snapshot is the layer"
        );
    }

    #[test]
    fn overlay_redirects_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        fs::create_dir_all(upper.join("moved")).unwrap();
        rustix::fs::lsetxattr(
            upper.join("moved"),
            "trusted.overlay.redirect",
            b"/orig",
            XattrFlags::empty(),
        )
        .unwrap();
        let e = write_layer_tar(&upper, &[], &Exclusions::none(), io::sink()).unwrap_err();
        assert!(e.full_message().contains("moved"), "{}", e.full_message());
    }
}
