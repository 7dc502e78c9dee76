//! Copying files out of and into a container (`docker cp`): the stat of a
//! path, a tar of it, and an upload extracted into a folder.
//!
//! The copy works on the container's root as the container sees it:
//! - A running container: `/proc/<pid>/root` of its init, where its
//!   volumes, binds and tmpfs mounts are mounted over its overlay, so a copy
//!   to a volume's path lands in the volume as in Docker.
//! - A container that does not run: its operation lock is held for the
//!   whole copy (a start waits), its overlay is mounted if it is not, and
//!   its named volumes and binds (folders and single files) are
//!   bind-mounted at their paths in it, as Docker mounts them for a copy;
//!   all of these are unmounted afterwards. What is written goes to the
//!   overlay's upper folder (or the volume, or the bound host file) and is
//!   there when it starts.
//!
//! The filesystem work, and why it cannot leave the root, is in
//! [`super::archive_tar`]; it runs on blocking threads.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::archive_tar::{self as fs_tar, ExtractOptions, Failure, PathStat};
use super::{Container, Containers, Status};
use crate::error::{ContainerError, Error, Result};
use crate::runtime::rootfs;

/// How many tar pieces a `GET` holds while the client has not read them.
const TAR_BUFFER: usize = 8;
/// The size of one piece of a streamed tar.
const TAR_CHUNK: usize = 256 * 1024;

/// What an upload may carry: a piece of the tar, or why the body broke.
pub type UploadPiece = std::result::Result<Bytes, String>;

/// How an upload is written (`PUT /containers/{id}/archive`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    /// Refuse to replace a folder by a non-folder and the other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// Own what is written by the container's user (its `User`), as
    /// `docker cp -a` asks; without it the tar's owners are kept.
    pub copy_uid_gid: bool,
}

/// Where a mount of the container comes from, for a copy into a container
/// that does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A named (or anonymous) volume.
    Volume(String),
    /// A folder of the host.
    Host(PathBuf),
}

/// A mount of the container: its source, its path in the container and
/// whether it is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyMount {
    /// Where it comes from (`None` for a tmpfs).
    pub source: Option<MountSource>,
    /// Its path in the container.
    pub destination: String,
    /// Whether it is mounted read-only.
    pub read_only: bool,
}

/// The mounts of a container's record: volumes, host binds (`Binds` and
/// `Mounts`) and tmpfs mounts, shallowest first.
pub fn mounts_of(c: &super::Record) -> Vec<CopyMount> {
    let hc = c.host_config();
    let mut out: Vec<CopyMount> = c
        .volumes
        .iter()
        .map(|v| CopyMount {
            source: Some(MountSource::Volume(v.name.clone())),
            destination: v.destination.clone(),
            read_only: v.read_only,
        })
        .collect();
    for b in hc.binds.iter().flatten() {
        let mut parts = b.splitn(3, ':');
        let (Some(src), Some(dst)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !src.starts_with('/') {
            continue; // a named volume: in `volumes` above
        }
        let ro = parts
            .next()
            .is_some_and(|o| o.split(',').any(|o| o == "ro"));
        out.push(CopyMount {
            source: Some(MountSource::Host(PathBuf::from(src))),
            destination: dst.to_string(),
            read_only: ro,
        });
    }
    for m in hc.mounts.iter().flatten() {
        let dst = m.target.clone().unwrap_or_default();
        let ro = m.read_only.unwrap_or(false);
        match m.typ {
            Some(bollard_stubs::models::MountType::BIND) => out.push(CopyMount {
                source: Some(MountSource::Host(PathBuf::from(
                    m.source.clone().unwrap_or_default(),
                ))),
                destination: dst,
                read_only: ro,
            }),
            Some(bollard_stubs::models::MountType::TMPFS) => out.push(CopyMount {
                source: None,
                destination: dst,
                read_only: ro,
            }),
            _ => {}
        }
    }
    for dst in hc.tmpfs.iter().flat_map(|t| t.keys()) {
        out.push(CopyMount {
            source: None,
            destination: dst.clone(),
            read_only: false,
        });
    }
    out.sort_by_key(|m| fs_tar::clean(&m.destination).matches('/').count());
    out
}

/// The container's root, open for a copy, and what to undo afterwards.
struct CopyRoot<'a> {
    fd: OwnedFd,
    /// The overlay root, for looking up users.
    rootfs: PathBuf,
    undo: Option<Undo>,
    _op: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// The mounts made for a copy into a container that does not run.
struct Undo {
    binds: Vec<PathBuf>,
    root: Option<PathBuf>,
}

impl Undo {
    fn run(self) {
        for b in self.binds.iter().rev() {
            if let Err(e) = rootfs::unmount(b) {
                tracing::warn!("unmount {} after a copy: {}", b.display(), e.full_message());
            }
        }
        if let Some(r) = self.root
            && let Err(e) = rootfs::unmount(&r)
        {
            tracing::warn!("unmount {} after a copy: {}", r.display(), e.full_message());
        }
    }
}

impl CopyRoot<'_> {
    fn fd(&self) -> Result<OwnedFd> {
        self.fd.try_clone().map_err(Error::io("open", &self.rootfs))
    }

    async fn release(self) {
        if let Some(undo) = self.undo
            && let Err(e) = tokio::task::spawn_blocking(move || undo.run()).await
        {
            tracing::warn!("unmount after a copy: {e}");
        }
    }
}

/// The root of the running container `c`, through its init's `/proc` entry.
fn running_root(c: &Container) -> Option<OwnedFd> {
    let state = c.state();
    if state.status != Status::Running || state.pid <= 0 {
        return None;
    }
    let fd = fs_tar::open_root(std::path::Path::new(&format!("/proc/{}/root", state.pid))).ok()?;
    // The process may have ended and its PID been reused meanwhile.
    let now = c.state();
    (now.status == Status::Running && now.pid == state.pid).then_some(fd)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Runtime {
            context: "copy".to_string(),
            message: e.to_string(),
        })
}

impl Containers {
    async fn copy_root<'a>(self: &Arc<Self>, c: &'a Arc<Container>) -> Result<CopyRoot<'a>> {
        if let Some(fd) = running_root(c) {
            return Ok(CopyRoot {
                fd,
                rootfs: c.paths.rootfs(),
                undo: None,
                _op: None,
            });
        }
        let op = c.op.lock().await;
        if let Some(fd) = running_root(c) {
            return Ok(CopyRoot {
                fd,
                rootfs: c.paths.rootfs(),
                undo: None,
                _op: None,
            });
        }
        if c.state().status == Status::Removing {
            return Err(ContainerError::WrongState(format!(
                "container {}: copy: it is being removed",
                c.name()
            ))
            .into());
        }
        let (this, c2) = (Arc::clone(self), Arc::clone(c));
        let (fd, undo) = blocking(move || this.mount_for_copy(&c2)).await??;
        Ok(CopyRoot {
            fd,
            rootfs: c.paths.rootfs(),
            undo: Some(undo),
            _op: Some(op),
        })
    }

    /// Mounts the root of `c`, which does not run, with its volumes and
    /// binds in it.
    fn mount_for_copy(&self, c: &Container) -> Result<(OwnedFd, Undo)> {
        let root = c.paths.rootfs();
        let was_mounted = rootfs::is_mounted(&root);
        self.mount_root(c)?;
        let mut undo = Undo {
            binds: Vec::new(),
            root: (!was_mounted).then(|| root.clone()),
        };
        let done = (|| {
            for m in mounts_of(&c.record) {
                let source = match m.source {
                    Some(MountSource::Volume(name)) => self.volume_path(&name)?,
                    Some(MountSource::Host(p)) if p.is_dir() || p.is_file() => p,
                    _ => continue,
                };
                undo.binds
                    .push(bind_into(&root, &m.destination, &source).map_err(|e| {
                        Error::Runtime {
                            context: format!(
                                "container {}: mount {} at {} for a copy",
                                c.name(),
                                source.display(),
                                m.destination
                            ),
                            message: e.to_string(),
                        }
                    })?);
            }
            fs_tar::open_root(&root).map_err(Error::io("open", &root))
        })();
        match done {
            Ok(fd) => Ok((fd, undo)),
            Err(e) => {
                undo.run();
                Err(e)
            }
        }
    }

    /// `HEAD /containers/{id}/archive`: what `path` is.
    pub async fn archive_stat(
        self: &Arc<Self>,
        c: &Arc<Container>,
        path: &str,
    ) -> Result<PathStat> {
        let root = self.copy_root(c).await?;
        let fd = root.fd();
        let p = path.to_string();
        let r = match fd {
            Ok(fd) => blocking(move || fs_tar::stat(&fd, &p))
                .await
                .and_then(|r| r.map_err(|f| failure(c, path, f))),
            Err(e) => Err(e),
        };
        root.release().await;
        r
    }

    /// `GET /containers/{id}/archive`: the stat of `path` and a stream of
    /// its tar, made as it is read.
    pub async fn archive_get(
        self: &Arc<Self>,
        c: Arc<Container>,
        path: String,
    ) -> Result<(PathStat, mpsc::Receiver<io::Result<Bytes>>)> {
        let (stat_tx, stat_rx) = oneshot::channel::<Result<PathStat>>();
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(TAR_BUFFER);
        let this = Arc::clone(self);
        // A task of its own, so the mounts are undone even when the client
        // goes away mid-stream.
        tokio::spawn(async move {
            let root = match this.copy_root(&c).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = stat_tx.send(Err(e));
                    return;
                }
            };
            let fd = match root.fd() {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = stat_tx.send(Err(e));
                    root.release().await;
                    return;
                }
            };
            let (c2, p) = (Arc::clone(&c), path.clone());
            let streamed = blocking(move || {
                match fs_tar::stat(&fd, &p) {
                    Ok(st) => {
                        let _ = stat_tx.send(Ok(st));
                    }
                    Err(f) => {
                        let _ = stat_tx.send(Err(failure(&c2, &p, f)));
                        return (tx, Vec::new());
                    }
                }
                let out = fs_tar::ChunkWriter::new(TAR_CHUNK, |piece| {
                    tx.blocking_send(Ok(Bytes::from(piece)))
                        .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
                });
                let rest = match fs_tar::write_tar(&fd, &p, out) {
                    Ok(out) => out.into_rest(),
                    Err(f) => {
                        let e = failure(&c2, &p, f);
                        tracing::debug!("copy from {}: {}", c2.name(), e.full_message());
                        let _ = tx.blocking_send(Err(io::Error::other(e.full_message())));
                        Vec::new()
                    }
                };
                (tx, rest)
            })
            .await;
            // The last piece (the tar's end) goes only once the mounts are
            // undone: a client that has the whole tar finds them gone.
            root.release().await;
            match streamed {
                Ok((tx, rest)) if !rest.is_empty() => {
                    let _ = tx.send(Ok(Bytes::from(rest))).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("copy from {}: {}", c.name(), e.full_message()),
            }
        });
        let stat = stat_rx.await.map_err(|_| Error::Runtime {
            context: "copy".to_string(),
            message: "the copy ended before it started".to_string(),
        })??;
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive`: extracts the tar read from `body`
    /// into the folder `path`. The folder is checked before any of the
    /// body is read.
    pub async fn archive_put(
        self: &Arc<Self>,
        c: Arc<Container>,
        path: String,
        opts: PutOptions,
        body: mpsc::Receiver<UploadPiece>,
    ) -> Result<()> {
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let root = this.copy_root(&c).await?;
            let r = put_into(&root, &c, &path, opts, body).await;
            root.release().await;
            r
        });
        task.await.map_err(|e| Error::Runtime {
            context: "copy".to_string(),
            message: e.to_string(),
        })?
    }
}

async fn put_into(
    root: &CopyRoot<'_>,
    c: &Arc<Container>,
    path: &str,
    opts: PutOptions,
    body: mpsc::Receiver<UploadPiece>,
) -> Result<()> {
    let fd = root.fd()?;
    let (c2, p) = (Arc::clone(c), path.to_string());
    let rootfs_path = root.rootfs.clone();
    blocking(move || -> Result<()> {
        fs_tar::check_extraction_point(&fd, &p).map_err(|f| failure(&c2, &p, f))?;
        let hc = c2.record.host_config();
        let mounts: Vec<(String, bool)> = mounts_of(&c2.record)
            .into_iter()
            .map(|m| (m.destination, m.read_only))
            .collect();
        if fs_tar::is_read_only(&p, &mounts, hc.readonly_rootfs.unwrap_or(false)) {
            return Err(failure(&c2, &p, Failure::ReadOnly));
        }
        let user = c2.record.body.user.clone().unwrap_or_default();
        let owner = if opts.copy_uid_gid && !user.is_empty() {
            let u = crate::runtime::user::resolve(&rootfs_path, &user)?;
            Some((u.uid, u.gid))
        } else {
            None
        };
        let input = UploadReader {
            rx: body,
            piece: Bytes::new(),
        };
        let ex = ExtractOptions {
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            owner,
        };
        fs_tar::extract(&fd, &p, input, ex).map_err(|f| failure(&c2, &p, f))
    })
    .await?
}

/// Reads an upload as it arrives, on a blocking thread.
pub(crate) struct UploadReader {
    rx: mpsc::Receiver<UploadPiece>,
    piece: Bytes,
}

impl UploadReader {
    /// A reader of the pieces `rx` receives.
    pub(crate) fn new(rx: mpsc::Receiver<UploadPiece>) -> Self {
        Self {
            rx,
            piece: Bytes::new(),
        }
    }
}

impl Read for UploadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.piece.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(m)) => return Err(io::Error::other(m)),
                Some(Ok(b)) => self.piece = b,
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece[..n]);
        let _ = self.piece.split_to(n);
        Ok(n)
    }
}

/// Bind-mounts `source` (a folder or a file) at `dest` inside `root` (a
/// folder, or an empty file, made if missing, as the runtime makes a mount
/// point; links resolved inside the root); returns where it is mounted on
/// the host.
fn bind_into(root: &std::path::Path, dest: &str, source: &std::path::Path) -> io::Result<PathBuf> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let in_root = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let rel = fs_tar::clean(dest);
    let rel = rel.trim_start_matches('/');
    let rootfd = fs_tar::open_root(root)?;
    let kind = if source.is_dir() {
        rootfs::ensure_dir_in_root(root, dest, 0, 0)
            .map_err(|e| io::Error::other(e.full_message()))?;
        OFlags::DIRECTORY
    } else {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        rootfs::ensure_dir_in_root(root, parent, 0, 0)
            .map_err(|e| io::Error::other(e.full_message()))?;
        let dir = rustix::fs::openat2(
            &rootfd,
            if parent.is_empty() { "." } else { parent },
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            in_root,
        )?;
        match rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(_) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        OFlags::empty()
    };
    let target = rustix::fs::openat2(
        &rootfd,
        if rel.is_empty() { "." } else { rel },
        OFlags::PATH | kind | OFlags::CLOEXEC,
        Mode::empty(),
        in_root,
    )?;
    if kind.is_empty()
        && !rustix::fs::fstat(&target).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
        })
    {
        return Err(io::Error::other(format!(
            "{dest} is not a file in the container, where the file {} is bound",
            source.display()
        )));
    }
    let through = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
    let at = std::fs::read_link(&through)?;
    if !at.starts_with(root) {
        return Err(io::Error::other(format!(
            "{dest} resolves outside the container's root"
        )));
    }
    rustix::mount::mount_bind(source, &through)?;
    Ok(at)
}

/// Gives a filesystem failure its container and path.
fn failure(c: &Container, path: &str, f: Failure) -> Error {
    match f {
        Failure::NotFound => ContainerError::NoSuchPath {
            container: c.name().to_string(),
            path: path.to_string(),
        }
        .into(),
        Failure::NotADirectory => ContainerError::NotAFolder(path.to_string()).into(),
        Failure::ReadOnly => ContainerError::ReadOnlyPath {
            container: c.name().to_string(),
            path: path.to_string(),
        }
        .into(),
        Failure::BadArchive(m) => {
            ContainerError::BadArchive(format!("container {}: copy into {path}: {m}", c.name()))
                .into()
        }
        Failure::WouldReplace(m) => {
            ContainerError::WouldReplace(format!("container {}: copy into {path}: {m}", c.name()))
                .into()
        }
        Failure::Io(what, e) => Error::Io {
            action: "copy",
            path: PathBuf::from(what),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mounts_come_from_volumes_binds_and_tmpfs() {
        let body: bollard_stubs::models::ContainerCreateBody =
            serde_json::from_value(serde_json::json!({
                "HostConfig": {
                    "Binds": ["/srv/data:/data:ro", "named:/named", "/srv/x:/a/b/c"],
                    "Tmpfs": {"/run/t": ""}
                }
            }))
            .unwrap();
        let record = super::super::Record {
            id: "x".into(),
            name: "x".into(),
            created: String::new(),
            image_id: String::new(),
            image_name: String::new(),
            layers: vec![],
            image_config: None,
            body,
            volumes: vec![crate::volume::VolumeMount {
                name: "named".into(),
                destination: "/named".into(),
                read_only: false,
                no_copy: false,
                anonymous: false,
            }],
        };
        let m = mounts_of(&record);
        let dests: Vec<&str> = m.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, ["/named", "/data", "/run/t", "/a/b/c"]);
        assert_eq!(m[1].source, Some(MountSource::Host("/srv/data".into())));
        assert!(m[1].read_only);
        assert_eq!(m[0].source, Some(MountSource::Volume("named".into())));
        assert_eq!(m[2].source, None);
    }
}
