//! Writing a batch into a workspace volume's data folder.
//!
//! Every lookup is relative to a descriptor of the data folder and goes
//! through `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a path
//! whose parent is a symbolic link (one the container made, say) is
//! refused rather than followed. Files and links are made under a
//! temporary name in their folder and renamed into place.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use super::path::components;
use super::{BatchHeader, BatchOutcome, Failure};
use crate::error::{Error, RequestError, Result};

/// Folders made for a file whose parents are missing get this mode.
const DIR_MODE: u32 = 0o755;

/// Files up to this size are read whole from the stream and written by
/// the pool; a larger one is written by the reading thread as it arrives.
const POOLED_MAX: u64 = 4 * 1024 * 1024;

/// At most this many bytes of content wait for the pool at once.
const POOL_BYTES: u64 = 32 * 1024 * 1024;

/// The pool's threads: a file's cost is mostly system calls, and files of
/// different folders do not contend for a folder's lock.
fn pool_size() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// Writes the batch: `header.delete` first, then each entry of `tar`, into
/// `data`. A path that fails is reported in the outcome and the rest goes
/// on; a stream that cannot be read fails the whole call (what was written
/// before stays, each file whole). The outcome's `generation` is left to
/// the caller.
///
/// Files and links are written by a small pool of threads while the
/// stream is read; an entry whose path is, is inside, or holds a path
/// still being written waits until the pool is idle, so the result is
/// that of writing the entries one after the other in their order.
/// Folders are made by the reading thread, in order.
pub fn apply(data: &Path, header: &BatchHeader, tar: impl Read) -> Result<BatchOutcome> {
    apply_with(data, header, tar, pool_size())
}

/// [`apply`] with `threads` writers.
pub fn apply_with(
    data: &Path,
    header: &BatchHeader,
    tar: impl Read,
    threads: usize,
) -> Result<BatchOutcome> {
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
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(stream_error)?;
    let (written, mut failed) = std::thread::scope(|s| {
        let mut pool = Pool::start(s, &w, threads.max(1));
        let read = read_entries(entries, &w, &mut pool);
        let done = pool.finish();
        read.map(|()| done)
    })?;
    failed.sort_by_key(|(seq, _)| *seq);
    out.failed.extend(failed.into_iter().map(|(_, f)| f));
    out.written = written;
    out.deleted = deleted;
    Ok(out)
}

/// Reads the stream's entries, making folders and handing files and
/// links to `pool`.
fn read_entries<R: Read>(entries: tar::Entries<'_, R>, w: &Writer, pool: &mut Pool) -> Result<()> {
    for (seq, entry) in entries.enumerate() {
        let mut entry = entry.map_err(stream_error)?;
        let raw = entry.path_bytes().into_owned();
        let Ok(path) = String::from_utf8(raw) else {
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            pool.failed(seq, path, "the path is not UTF-8".to_string());
            continue;
        };
        let h = entry.header();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let mtime = h.mtime().unwrap_or(0);
        let size = entry.size();
        match h.entry_type() {
            tar::EntryType::Directory => {
                pool.wait_for(&path);
                let r = w.dir(&path, mode);
                pool.done_inline(seq, path, r);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous if size <= POOLED_MAX => {
                let mut content = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                Whole::new(&mut entry, size)
                    .read_to_end(&mut content)
                    .map_err(stream_error)?;
                pool.wait_for(&path);
                pool.send(Job {
                    seq,
                    path,
                    what: What::File {
                        mode,
                        mtime,
                        content,
                    },
                });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                pool.wait_for(&path);
                let r = w.file(&path, mode, mtime, &mut Whole::new(&mut entry, size));
                pool.done_inline(seq, path, r);
            }
            tar::EntryType::Symlink => match entry.link_name_bytes() {
                Some(target) => {
                    let target = target.into_owned();
                    pool.wait_for(&path);
                    pool.send(Job {
                        seq,
                        path,
                        what: What::Link(target),
                    });
                }
                None => pool.failed(seq, path, "a symbolic link without a target".to_string()),
            },
            other => pool.failed(
                seq,
                path,
                format!(
                    "entry type {other:?} is not synced: only folders, files and symbolic links are"
                ),
            ),
        }
    }
    Ok(())
}

fn stream_error(e: io::Error) -> Error {
    Error::from(RequestError::Invalid(format!("workspace batch: {e}")))
}

/// Reads an entry's content and fails when the stream ends before its
/// size: a cut stream never leaves a short file in place.
struct Whole<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Whole<R> {
    fn new(inner: R, size: u64) -> Self {
        Self { inner, left: size }
    }
}

impl<R: Read> Read for Whole<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the stream ended {} bytes before the file's end", self.left),
            ));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

/// A file or link for the pool to write.
struct Job {
    /// The entry's place in the stream (failures are reported in order).
    seq: usize,
    path: String,
    what: What,
}

enum What {
    File {
        mode: u32,
        mtime: u64,
        content: Vec<u8>,
    },
    Link(Vec<u8>),
}

impl Job {
    fn bytes(&self) -> u64 {
        match &self.what {
            What::File { content, .. } => content.len() as u64,
            What::Link(_) => 0,
        }
    }
}

/// What the pool says about one job: its path, the bytes it held, and how
/// it went.
type Done = (usize, String, u64, std::result::Result<(), String>);

/// The writer threads, and what the reading thread knows of them: the
/// paths still being written and the bytes waiting.
struct Pool {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    done: std::sync::mpsc::Receiver<Done>,
    busy: std::collections::BTreeSet<String>,
    bytes: u64,
    written: u64,
    failed: Vec<(usize, Failure)>,
}

impl Pool {
    fn start<'s>(s: &'s std::thread::Scope<'s, '_>, w: &'s Writer, threads: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(threads * 4);
        let (done_tx, done) = std::sync::mpsc::channel::<Done>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for _ in 0..threads {
            let rx = std::sync::Arc::clone(&rx);
            let done_tx = done_tx.clone();
            s.spawn(move || {
                loop {
                    // A poisoned lock means another writer panicked: the
                    // scope passes that panic on.
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let bytes = job.bytes();
                    let r = match job.what {
                        What::File {
                            mode,
                            mtime,
                            content,
                        } => w.file(&job.path, mode, mtime, &mut content.as_slice()),
                        What::Link(target) => w.link(&job.path, &target),
                    };
                    if done_tx.send((job.seq, job.path, bytes, r)).is_err() {
                        return;
                    }
                }
            });
        }
        Self {
            jobs: Some(jobs),
            done,
            busy: Default::default(),
            bytes: 0,
            written: 0,
            failed: Vec::new(),
        }
    }

    fn record(&mut self, seq: usize, path: String, r: std::result::Result<(), String>) {
        match r {
            Ok(()) => self.written += 1,
            Err(message) => self.failed(seq, path, message),
        }
    }

    fn failed(&mut self, seq: usize, path: String, message: String) {
        self.failed.push((seq, Failure { path, message }));
    }

    fn done_inline(&mut self, seq: usize, path: String, r: std::result::Result<(), String>) {
        self.record(seq, path, r);
    }

    /// Takes one finished job's answer, waiting for it when `block`.
    fn collect(&mut self, block: bool) -> bool {
        let got = if block {
            self.done.recv().ok()
        } else {
            self.done.try_recv().ok()
        };
        let Some((seq, path, bytes, r)) = got else {
            return false;
        };
        self.busy.remove(key(&path));
        self.bytes = self.bytes.saturating_sub(bytes);
        self.record(seq, path, r);
        true
    }

    /// Whether `path` is, is inside, or holds a path being written.
    fn conflicts(&self, path: &str) -> bool {
        let path = key(path);
        if self.busy.contains(path) {
            return true;
        }
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            if self.busy.contains(&path[..at + i]) {
                return true;
            }
            at += i + 1;
        }
        let below = format!("{path}/");
        self.busy
            .range(below.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(&below))
    }

    /// Waits until nothing being written is in the way of `path`.
    fn wait_for(&mut self, path: &str) {
        while self.collect(false) {}
        if self.conflicts(path) {
            while !self.busy.is_empty() && self.collect(true) {}
        }
    }

    fn send(&mut self, job: Job) {
        while self.bytes > POOL_BYTES && self.collect(true) {}
        let bytes = job.bytes();
        let (seq, path) = (job.seq, job.path.clone());
        let sent = match &self.jobs {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        };
        if sent {
            self.busy.insert(key(&path).to_string());
            self.bytes += bytes;
        } else {
            self.failed(seq, path, "the writer threads stopped".to_string());
        }
    }

    /// Waits for every job; the paths written and those that failed.
    fn finish(mut self) -> (u64, Vec<(usize, Failure)>) {
        self.jobs = None;
        while self.collect(true) {}
        (self.written, self.failed)
    }
}

/// A path as the pool keys it: without a trailing `/`.
fn key(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// Writes below one data folder as one owner.
struct Writer {
    root: Arc<OwnedFd>,
    uid: Uid,
    gid: Gid,
    /// The folders resolved so far in this batch, by path: each is
    /// resolved once, not once per file. A folder removed by the batch is
    /// forgotten with everything below it.
    folders: Mutex<HashMap<String, Arc<OwnedFd>>>,
    /// Temporary names are this batch's random prefix and a count.
    temp_prefix: String,
    temp_count: AtomicU64,
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
        let id = crate::state::new_id()?;
        Ok(Self {
            root: Arc::new(root),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            folders: Mutex::new(HashMap::new()),
            temp_prefix: id[..16].to_string(),
            temp_count: AtomicU64::new(0),
        })
    }

    /// A temporary name for a file being written, hidden and unique.
    fn temp_name(&self) -> String {
        let n = self.temp_count.fetch_add(1, Ordering::Relaxed);
        format!(".servin-sync-{}-{n:x}.tmp", self.temp_prefix)
    }

    fn cached(&self, path: &str) -> Option<Arc<OwnedFd>> {
        self.folders.lock().ok()?.get(path).cloned()
    }

    fn remember(&self, path: String, fd: &Arc<OwnedFd>) {
        if let Ok(mut f) = self.folders.lock() {
            f.insert(path, Arc::clone(fd));
        }
    }

    /// Forgets the folder `path` of `dir` and every folder below it.
    fn forget(&self, dir: &OwnedFd, name: &str) {
        let Ok(mut f) = self.folders.lock() else {
            return;
        };
        let Some(parent) = f
            .iter()
            .find(|(_, fd)| same_fd(fd, dir))
            .map(|(p, _)| p.clone())
            .or_else(|| same_fd(&self.root, dir).then(String::new))
        else {
            // The parent is not known by path: forget everything.
            f.clear();
            return;
        };
        let path = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        let below = format!("{path}/");
        f.retain(|p, _| *p != path && !p.starts_with(&below));
    }

    /// Opens the folder `parts` (an `O_PATH` descriptor), making missing
    /// folders when `make` is set. `Ok(None)` when it is missing and not
    /// made. Starts from the deepest folder already resolved.
    fn folder(
        &self,
        parts: &[&str],
        make: bool,
    ) -> std::result::Result<Option<Arc<OwnedFd>>, String> {
        let mut from = parts.len();
        let mut cur = loop {
            if from == 0 {
                break Arc::clone(&self.root);
            }
            if let Some(fd) = self.cached(&parts[..from].join("/")) {
                break fd;
            }
            from -= 1;
        };
        for i in from..parts.len() {
            let name = parts[i];
            let at = || parts[..=i].join("/");
            let opened = rustix::fs::openat2(
                &*cur,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            );
            let next = match opened {
                Ok(fd) => fd,
                Err(Errno::NOENT) if make => {
                    match rustix::fs::mkdirat(&*cur, name, Mode::from_raw_mode(DIR_MODE)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(errno(&format!("make folder {}", at()))(e)),
                    }
                    rustix::fs::chownat(
                        &*cur,
                        name,
                        Some(self.uid),
                        Some(self.gid),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(errno(&format!("change the owner of {}", at())))?;
                    rustix::fs::openat2(
                        &*cur,
                        name,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                        RESOLVE,
                    )
                    .map_err(errno(&format!("open folder {}", at())))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    return Err(format!("{} is not a folder in the workspace", at()));
                }
                Err(e) => return Err(errno(&format!("open folder {}", at()))(e)),
            };
            let next = Arc::new(next);
            self.remember(at(), &next);
            cur = next;
        }
        Ok(Some(cur))
    }

    /// The parent folder of `path` (made if missing) and its last name.
    fn parent<'a>(&self, path: &'a str) -> std::result::Result<(Arc<OwnedFd>, &'a str), String> {
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
        self.remove(&dir, name)
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
                self.remove(&parent, name)?;
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
        // An unnamed file in the folder (`O_TMPFILE`), filled without the
        // folder's lock and then linked in under its name: one operation
        // on the folder for a new file instead of a create and a rename,
        // which matters when several writers fill one folder. Where the
        // filesystem has no unnamed files, a named temporary one.
        let unnamed = rustix::fs::openat2(
            &*parent,
            ".",
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
            RESOLVE,
        );
        let (fd, tmp) = match unnamed {
            Ok(fd) => (fd, None),
            Err(_) => {
                let tmp = self.temp_name();
                let fd = rustix::fs::openat2(
                    &*parent,
                    tmp.as_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                    RESOLVE,
                )
                .map_err(errno("create a temporary file"))?;
                (fd, Some(tmp))
            }
        };
        let mut file = File::from(fd);
        let filled = self.fill(&mut file, mode, mtime, content);
        match tmp {
            Some(tmp) => self.place(&parent, &tmp, name, filled),
            None => {
                filled?;
                match rustix::fs::linkat(&file, "", &*parent, name, AtFlags::EMPTY_PATH) {
                    Ok(()) => Ok(()),
                    // Something is there: link under a temporary name and
                    // rename that over it, so the old file stays whole
                    // until the new one replaces it.
                    Err(Errno::EXIST) => {
                        let tmp = self.temp_name();
                        let linked = rustix::fs::linkat(
                            &file,
                            "",
                            &*parent,
                            tmp.as_str(),
                            AtFlags::EMPTY_PATH,
                        )
                        .map_err(errno("link the new file"));
                        self.place(&parent, &tmp, name, linked)
                    }
                    Err(e) => Err(errno("link the new file")(e)),
                }
            }
        }
    }

    /// Writes `content` into `file` and gives it its owner, mode and time.
    fn fill(
        &self,
        file: &mut File,
        mode: u32,
        mtime: u64,
        content: &mut impl Read,
    ) -> std::result::Result<(), String> {
        io::copy(content, file).map_err(|e| format!("write: {e}"))?;
        // No fsync, as `rsync` does none: a batch cut short by a crash
        // is found by the CLI's in-flight marker and mended from the
        // manifest.
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
    }

    fn link(&self, path: &str, target: &[u8]) -> std::result::Result<(), String> {
        let (parent, name) = self.parent(path)?;
        let tmp = self.temp_name();
        let made = rustix::fs::symlinkat(target, &*parent, tmp.as_str())
            .map_err(errno("create the link"))
            .and_then(|()| {
                rustix::fs::chownat(
                    &*parent,
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
            match rustix::fs::renameat(parent, tmp, parent, name) {
                // A folder is in the way (the rename says so rather than
                // a look before each file).
                Err(Errno::ISDIR) if Self::kind(parent, name) == Some(FileType::Directory) => {
                    self.remove(parent, name)?;
                    rustix::fs::renameat(parent, tmp, parent, name)
                }
                r => r,
            }
            .map_err(errno("rename into place"))
        });
        if placed.is_err() {
            let _ = rustix::fs::unlinkat(parent, tmp, AtFlags::empty());
        }
        placed
    }

    /// Removes `name` in `dir`: a file or link, or a folder with
    /// everything in it (links inside removed, never followed), which the
    /// batch then forgets. Missing is fine.
    fn remove(&self, dir: &OwnedFd, name: &str) -> std::result::Result<(), String> {
        match Self::kind(dir, name) {
            None => Ok(()),
            Some(FileType::Directory) => {
                self.forget(dir, name);
                // The descriptor's /proc link names the folder already
                // resolved beneath the root; remove_dir_all never follows
                // links.
                let path = format!(
                    "/proc/self/fd/{}/{name}",
                    rustix::fd::AsRawFd::as_raw_fd(dir)
                );
                std::fs::remove_dir_all(&path).map_err(|e| format!("remove the folder: {e}"))
            }
            Some(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(errno("remove")),
        }
    }
}

/// Whether two descriptors are the same open file.
fn same_fd(a: &OwnedFd, b: &OwnedFd) -> bool {
    rustix::fd::AsRawFd::as_raw_fd(a) == rustix::fd::AsRawFd::as_raw_fd(b)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Link(&'a str, &'a str),
    }

    fn stream(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_700_000_000);
            match e {
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o750);
                    h.set_size(0);
                    b.append_data(&mut h, p, std::io::empty()).unwrap();
                }
                E::File(p, c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o640);
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, p, *c).unwrap();
                }
                E::Link(p, t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn header() -> BatchHeader {
        BatchHeader {
            uid: 1234,
            gid: 2345,
            labels: Default::default(),
            delete: vec![],
            sweep: false,
        }
    }

    /// Every path below `dir`: a file's content, a link's target, or `/`
    /// for a folder.
    fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for item in std::fs::read_dir(&d).unwrap() {
                let item = item.unwrap();
                let rel = item.path().strip_prefix(dir).unwrap().display().to_string();
                let ft = item.file_type().unwrap();
                if ft.is_dir() {
                    todo.push(item.path());
                    out.insert(rel, b"/".to_vec());
                } else if ft.is_symlink() {
                    let t = std::fs::read_link(item.path()).unwrap();
                    out.insert(rel, t.as_os_str().as_encoded_bytes().to_vec());
                } else {
                    out.insert(rel, std::fs::read(item.path()).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn many_folders_are_written_whole_with_owner_mode_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<(String, Vec<u8>)> = (0..400)
            .map(|i| (format!("d{}/sub/f{i}", i % 7), vec![i as u8; 100 + i * 37]))
            .collect();
        let mut entries = vec![E::Dir("d0"), E::Dir("d0/sub")];
        entries.extend(names.iter().map(|(p, c)| E::File(p, c)));
        entries.push(E::Link("d1/ln", "sub/f1"));
        let out = apply_with(dir.path(), &header(), stream(&entries).as_slice(), 4).unwrap();
        assert!(out.failed.is_empty(), "{:?}", out.failed);
        assert_eq!(out.written, 403);
        let got = listing(dir.path());
        for (p, c) in &names {
            assert_eq!(got.get(p), Some(c), "{p}");
            let m = std::fs::symlink_metadata(dir.path().join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (1234, 2345), "{p}");
            assert_eq!(m.permissions().mode() & 0o7777, 0o640, "{p}");
            assert_eq!(m.mtime(), 1_700_000_000, "{p}");
        }
        assert_eq!(got.get("d1/ln").unwrap(), b"sub/f1");
        let d0 = std::fs::metadata(dir.path().join("d0")).unwrap();
        assert_eq!(d0.permissions().mode() & 0o7777, 0o750);
        assert!(got.keys().all(|p| !p.contains(".servin-sync-")), "{got:?}");
    }

    #[test]
    fn entries_in_each_others_way_end_as_one_after_the_other_would() {
        // A folder's files, then a file where the folder was, then a file
        // inside it (refused: it is no folder now); a link, then a path
        // through it (refused); a file written twice (the last wins).
        let entries = [
            E::File("a/x", b"1"),
            E::File("a/y", b"2"),
            E::File("a", b"now a file"),
            E::File("a/z", b"3"),
            E::Link("l", "a"),
            E::File("l/x", b"4"),
            E::File("twice", b"first"),
            E::File("twice", b"second"),
            E::Dir("twice"),
            E::File("twice/in", b"5"),
        ];
        let body = stream(&entries);
        let one = tempfile::tempdir().unwrap();
        let seq = apply_with(one.path(), &header(), body.as_slice(), 1).unwrap();
        for _ in 0..5 {
            let many = tempfile::tempdir().unwrap();
            let par = apply_with(many.path(), &header(), body.as_slice(), 4).unwrap();
            assert_eq!(listing(many.path()), listing(one.path()));
            assert_eq!(par.written, seq.written);
            assert_eq!(par.failed, seq.failed);
        }
        let got = listing(one.path());
        assert_eq!(got.get("a").unwrap(), b"now a file");
        assert_eq!(got.get("l").unwrap(), b"a");
        assert_eq!(got.get("twice/in").unwrap(), b"5");
        let failed: Vec<&str> = seq.failed.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(failed, ["a/z", "l/x"]);
    }

    #[test]
    fn a_folder_deleted_and_sent_again_is_resolved_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = stream(&[E::File("d/old", b"old")]);
        apply_with(dir.path(), &header(), first.as_slice(), 4).unwrap();
        let mut h = header();
        h.delete = vec!["d".to_string()];
        let second = stream(&[E::File("d/new", b"new"), E::File("e/f", b"f")]);
        let out = apply_with(dir.path(), &h, second.as_slice(), 4).unwrap();
        assert!(out.failed.is_empty(), "{:?}", out.failed);
        assert_eq!((out.written, out.deleted), (2, 1));
        let got = listing(dir.path());
        assert_eq!(got.keys().collect::<Vec<_>>(), ["d", "d/new", "e", "e/f"]);
    }

    #[test]
    fn a_truncated_stream_fails_and_leaves_only_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; 20_000];
        let body = stream(&[E::File("a/one", b"1"), E::File("b/two", &big)]);
        let cut = &body[..512 + 512 + 512 + 5_000];
        assert!(apply_with(dir.path(), &header(), cut, 4).is_err());
        let got = listing(dir.path());
        assert_eq!(got.get("a/one").unwrap(), b"1");
        assert!(!got.contains_key("b/two"));
        assert!(got.keys().all(|p| !p.contains(".servin-sync-")), "{got:?}");
    }
}
