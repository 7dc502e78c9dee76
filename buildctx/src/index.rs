//! The context index: every path of the build context that `.dockerignore`
//! lets through, with what a build may depend on (kind, mode, owner, size,
//! content digest), in path order.
//!
//! The CLI builds it ([`ContextIndex::build`]) and sends it to the engine,
//! which asks for the content it lacks (see [`crate::transfer`]). Content
//! digests are sha256 of the bytes, hashed by a few threads (the `hash`
//! module); a stat cache
//! (see the `cache` module) lets a re-index hash only files whose device,
//! inode, size, mtime or ctime changed.
//!
//! Modification times are recorded (the executor may want them for `ADD`
//! of archives, as Docker keeps them) but take part in no digest:
//! touching every file changes neither [`ContextIndex::digest`] nor any
//! [`ContextIndex::content_digest`], so it invalidates no build cache.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use rustix::fs as rfs;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{
    cache::{Record, Stat, StatCache},
    codec::{self, DecodeError, Reader, Writer},
    hash::{Job, hash_all},
    ignore::Matcher,
    walk::{self, Walk},
};

/// What kind of filesystem object an [`Entry`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file (its content is in [`Entry::digest`]).
    File,
    /// A folder.
    Dir,
    /// A symbolic link, never followed while indexing.
    Symlink {
        /// The link's target, as stored in the link.
        target: String,
    },
}

/// One path of the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the context root, `/`-separated, cleaned, never empty.
    pub path: String,
    /// File, folder or symlink.
    pub kind: EntryKind,
    /// Permission bits, setuid, setgid and sticky included (`mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Size in bytes of a file's content or of a symlink's target; 0 for
    /// folders.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch. Part of no digest.
    pub mtime_ns: i64,
    /// `sha256:<hex>` of a file's content; `None` for folders and symlinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Entry {
    /// A file at `path` made by hand rather than by a walk (tests,
    /// fixtures): `size` bytes of content with `digest` (`sha256:<hex>`),
    /// mode 0644, owned by root, modified 1 ns after the epoch.
    pub fn plain_file(path: &str, size: u64, digest: String) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime_ns: 1,
            digest: Some(digest),
        }
    }

    /// A folder at `path` made by hand, as [`Entry::plain_file`]: mode
    /// 0755.
    pub fn plain_dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime_ns: 1,
            digest: None,
        }
    }
}

/// What indexing did, to report and to prove the stat cache works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Regular files in the index.
    pub files: u64,
    /// Files whose content was read and hashed: the others came from the
    /// cache, or share an inode (hard links) with one that was read.
    pub hashed: u64,
    /// Bytes read to hash them.
    pub bytes_hashed: u64,
}

/// Why a context could not be indexed, or an index is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A path could not be read (listed, stat'ed, opened or hashed).
    #[error("cannot read {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The context root is not a folder.
    #[error("build context {} is not a folder", path.display())]
    NotAFolder {
        /// The context root.
        path: PathBuf,
    },
    /// A name or symlink target is not UTF-8.
    #[error("{}: the name or link target is not UTF-8, which a build context needs", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// A FIFO or device node, which a build context cannot hold.
    #[error("{}: a FIFO or device node cannot be part of a build context (add it to .dockerignore)", path.display())]
    Unsupported {
        /// The path.
        path: PathBuf,
    },
    /// A file changed while it was being hashed.
    #[error("{} changed while it was being indexed; run the build again", path.display())]
    Changed {
        /// The path.
        path: PathBuf,
    },
    /// The stat cache could not be written.
    #[error("cannot write the index cache {}", path.display())]
    CacheWrite {
        /// The cache file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A received index breaks a rule of the format.
    #[error("bad context index entry {path:?}: {reason}")]
    Invalid {
        /// The entry's path.
        path: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An encoded index could not be decoded.
    #[error("bad encoded context index")]
    Decode(#[from] DecodeError),
}

/// The indexed context: entries sorted by path (byte order), unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawIndex")]
pub struct ContextIndex {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct RawIndex {
    entries: Vec<Entry>,
}

impl TryFrom<RawIndex> for ContextIndex {
    type Error = IndexError;

    fn try_from(raw: RawIndex) -> Result<Self, Self::Error> {
        ContextIndex::from_entries(raw.entries)
    }
}

/// A stat cache to write for the next run ([`ContextIndex::build_deferred`]).
#[derive(Debug)]
pub struct PendingCache {
    path: PathBuf,
    cache: StatCache,
}

impl PendingCache {
    /// Writes the cache (a temporary file renamed over the old one).
    ///
    /// # Errors
    ///
    /// [`IndexError::CacheWrite`] naming the file.
    pub fn save(self) -> Result<(), IndexError> {
        self.cache
            .save(&self.path)
            .map_err(|source| IndexError::CacheWrite {
                path: self.path,
                source,
            })
    }
}

impl ContextIndex {
    /// Indexes the folder `context_dir`, leaving out what `matcher`
    /// excludes. Symlinks are recorded, never followed. Excluded folders
    /// are not entered unless an exception could re-include something
    /// below them; an excluded folder is itself absent from the index even
    /// when paths below it are re-included (as in Docker's context tar),
    /// so the executor makes such parents as plain folders.
    ///
    /// With `cache`, a file whose stat matches the previous run's record
    /// is not read again, and the cache is rewritten (when anything
    /// changed) for the next run. Keep the cache file outside the context,
    /// or exclude it: a file that changes on every run would change the
    /// index on every run. Hard links are hashed once per inode.
    ///
    /// # Errors
    ///
    /// [`IndexError`] naming the path that could not be read, is not
    /// UTF-8, is a FIFO or device, or changed while hashed; or the cache
    /// that could not be written. Sockets are skipped, as Docker does.
    pub fn build(
        context_dir: &Path,
        matcher: &Matcher,
        cache: Option<&Path>,
    ) -> Result<(ContextIndex, IndexStats), IndexError> {
        let (index, stats, pending) = Self::build_deferred(context_dir, matcher, cache)?;
        if let Some(pending) = pending {
            pending.save()?;
        }
        Ok((index, stats))
    }

    /// [`ContextIndex::build`], leaving the cache's rewrite to the caller
    /// (`None` when nothing changed): a build can send the index first and
    /// write the cache while the engine works.
    ///
    /// # Errors
    ///
    /// As [`ContextIndex::build`], but for writing the cache.
    pub fn build_deferred(
        context_dir: &Path,
        matcher: &Matcher,
        cache: Option<&Path>,
    ) -> Result<(ContextIndex, IndexStats, Option<PendingCache>), IndexError> {
        let started_ns = now_ns();
        let root_meta = fs::metadata(context_dir).map_err(|source| IndexError::Read {
            path: context_dir.to_path_buf(),
            source,
        })?;
        if !root_meta.is_dir() {
            return Err(IndexError::NotAFolder {
                path: context_dir.to_path_buf(),
            });
        }
        let previous = cache.map(StatCache::load).unwrap_or_default();
        let Walk { mut items, hits } = walk::walk(context_dir, matcher, &previous)?;
        items.sort_unstable_by(|a, b| a.entry.path.cmp(&b.entry.path));

        let mut jobs = Vec::new();
        for (i, item) in items.iter_mut().enumerate() {
            if let (Some(path), Some(stat)) = (item.to_hash.take(), item.stat) {
                jobs.push(Job {
                    entry: i,
                    path,
                    stat,
                });
            }
        }
        let hashed = hash_all(&jobs)?;
        for (job, digest) in jobs.iter().zip(hashed.digests) {
            items[job.entry].digest = Some(digest);
        }
        let files = items.iter().filter(|i| i.stat.is_some()).count();
        let stats = IndexStats {
            files: files as u64,
            hashed: hashed.files,
            bytes_hashed: hashed.bytes,
        };

        let mut pending = None;
        if let Some(path) = cache {
            // Same files, all from the cache: the file on disk already
            // says all a new one would.
            let unchanged = hits == files && files == previous.records.len();
            if !unchanged {
                let next = StatCache {
                    started_ns,
                    records: items
                        .iter()
                        .filter_map(|i| {
                            Some(Record {
                                path: i.entry.path.clone(),
                                stat: i.stat?,
                                digest: i.digest?,
                            })
                        })
                        .collect(),
                };
                pending = Some(PendingCache {
                    path: path.to_path_buf(),
                    cache: next,
                });
            }
        }
        let entries = items
            .into_iter()
            .map(|item| Entry {
                digest: item.digest.map(|d| codec::format_digest(&d)),
                ..item.entry
            })
            .collect();
        Ok((ContextIndex { entries }, stats, pending))
    }

    /// Makes an index from entries, checking the rules a received index
    /// must keep: paths cleaned, relative, not escaping the root, sorted
    /// and unique; a digest on every file and only on files. Used for
    /// every decoded or deserialised index, so the engine never trusts a
    /// path like `../x`.
    ///
    /// # Errors
    ///
    /// [`IndexError::Invalid`] naming the first bad entry.
    pub fn from_entries(entries: Vec<Entry>) -> Result<ContextIndex, IndexError> {
        let mut previous: Option<&str> = None;
        for entry in &entries {
            check_entry(entry)?;
            if previous.is_some_and(|prev| prev >= entry.path.as_str()) {
                return Err(IndexError::Invalid {
                    path: entry.path.clone(),
                    reason: "paths must be sorted and unique",
                });
            }
            previous = Some(&entry.path);
        }
        Ok(ContextIndex { entries })
    }

    /// An index from entries already checked and sorted (a delta applied
    /// to a checked base).
    pub(crate) fn from_checked(entries: Vec<Entry>) -> ContextIndex {
        ContextIndex { entries }
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at `path` (relative, cleaned), if the context has it.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The distinct content digests of the files, sorted: what the engine
    /// checks against its blob store to know what to ask for.
    pub fn file_digests(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| e.digest.clone())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// `sha256:<hex>` of the whole index (paths, kinds, symlink targets,
    /// modes, owners, sizes and content digests; not mtimes), so that an
    /// engine can keep indexes it received by digest.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        let mut w = Writer::with_capacity(256);
        for entry in &self.entries {
            w.buf.clear();
            write_entry_identity(&mut w, &entry.path, entry);
            hasher.update(&w.buf);
        }
        codec::format_digest(&hasher.finalize())
    }

    /// The compact binary form of the index (mtimes included), for the
    /// CLI to send; much smaller and faster than JSON for large contexts.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(16 + self.entries.len() * 96);
        w.bytes(INDEX_MAGIC);
        w.u64(self.entries.len() as u64);
        for e in &self.entries {
            write_entry(&mut w, e);
        }
        w.buf
    }

    /// Whether `bytes` start as [`ContextIndex::encode`]'s form does
    /// (rather than, say, the index as JSON).
    pub fn is_encoded(bytes: &[u8]) -> bool {
        bytes.starts_with(INDEX_MAGIC)
    }

    /// Reads back [`ContextIndex::encode`]'s form and checks it as
    /// [`ContextIndex::from_entries`] does.
    ///
    /// # Errors
    ///
    /// [`IndexError::Decode`] for malformed bytes, [`IndexError::Invalid`]
    /// for an entry breaking the rules.
    pub fn decode(bytes: &[u8]) -> Result<ContextIndex, IndexError> {
        let mut r = Reader::new(bytes);
        if r.take(INDEX_MAGIC.len())? != INDEX_MAGIC {
            return Err(DecodeError::Magic("an encoded servin context index").into());
        }
        let count = r.u64()?;
        // Each entry takes at least 33 bytes: refuse counts the input
        // cannot hold before allocating for them.
        if count > (r.remaining() / 33) as u64 {
            return Err(DecodeError::Truncated(r.pos).into());
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            entries.push(read_entry(&mut r)?);
        }
        if r.remaining() != 0 {
            return Err(DecodeError::Value {
                at: r.pos,
                what: "bytes after the last entry",
            }
            .into());
        }
        ContextIndex::from_entries(entries)
    }
}

const INDEX_MAGIC: &[u8; 8] = b"SVBCXI01";

/// The rules every received entry keeps, but its place in the order:
/// path cleaned, relative, not escaping the root; a digest on every file
/// and only on files; no mode bits beyond `0o7777`.
pub(crate) fn check_entry(entry: &Entry) -> Result<(), IndexError> {
    let bad = |reason| IndexError::Invalid {
        path: entry.path.clone(),
        reason,
    };
    let p = entry.path.as_str();
    if p == ".." || p.starts_with("../") {
        return Err(bad("the path leaves the context"));
    }
    // What `ignore::clean` leaves as it is, without making a new string
    // for each of tens of thousands of paths; `.` is no path of the
    // context either.
    if !p
        .split('/')
        .all(|segment| !matches!(segment, "" | "." | ".."))
    {
        return Err(bad("the path must be relative and cleaned"));
    }
    let has_valid_digest = entry
        .digest
        .as_deref()
        .is_some_and(|d| codec::parse_digest(d).is_some());
    match (&entry.kind, has_valid_digest, entry.digest.is_some()) {
        (EntryKind::File, true, _) | (EntryKind::Dir | EntryKind::Symlink { .. }, _, false) => {}
        (EntryKind::File, false, _) => return Err(bad("a file needs a sha256:<hex> digest")),
        _ => return Err(bad("only files have a digest")),
    }
    if entry.mode & !0o7777 != 0 {
        return Err(bad("the mode has bits beyond 0o7777"));
    }
    Ok(())
}

/// One entry in the encoded form (mtime included).
pub(crate) fn write_entry(w: &mut Writer, e: &Entry) {
    w.str(&e.path);
    match &e.kind {
        EntryKind::File => w.u8(0),
        EntryKind::Dir => w.u8(1),
        EntryKind::Symlink { target } => {
            w.u8(2);
            w.str(target);
        }
    }
    w.u32(e.mode);
    w.u32(e.uid);
    w.u32(e.gid);
    w.u64(e.size);
    w.i64(e.mtime_ns);
    if let Some(d) = e.digest.as_deref().and_then(codec::parse_digest) {
        w.bytes(&d);
    }
}

/// Reads back one [`write_entry`]; its rules are checked by the caller.
pub(crate) fn read_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let path = r.str()?.to_owned();
    let at = r.pos;
    let kind = match r.u8()? {
        0 => EntryKind::File,
        1 => EntryKind::Dir,
        2 => EntryKind::Symlink {
            target: r.str()?.to_owned(),
        },
        _ => {
            return Err(DecodeError::Value {
                at,
                what: "unknown entry kind",
            });
        }
    };
    let mode = r.u32()?;
    let uid = r.u32()?;
    let gid = r.u32()?;
    let size = r.u64()?;
    let mtime_ns = r.i64()?;
    let digest = match kind {
        EntryKind::File => Some(codec::format_digest(&r.array::<32>()?)),
        _ => None,
    };
    Ok(Entry {
        path,
        kind,
        mode,
        uid,
        gid,
        size,
        mtime_ns,
        digest,
    })
}

/// What of an entry takes part in digests, under the name `path`: all but
/// the mtime.
pub(crate) fn write_entry_identity(w: &mut Writer, path: &str, entry: &Entry) {
    w.str(path);
    match &entry.kind {
        EntryKind::File => w.u8(0),
        EntryKind::Dir => w.u8(1),
        EntryKind::Symlink { target } => {
            w.u8(2);
            w.str(target);
        }
    }
    w.u32(entry.mode);
    w.u32(entry.uid);
    w.u32(entry.gid);
    w.u64(entry.size);
    match entry.digest.as_deref() {
        Some(d) => {
            w.u8(1);
            w.str(d);
        }
        None => w.u8(0),
    }
}

#[allow(
    clippy::unnecessary_cast,
    reason = "the stat fields' types differ between architectures"
)]
pub(crate) fn entry_of(path: &str, kind: EntryKind, st: &rfs::Stat, size: u64) -> Entry {
    Entry {
        path: path.to_owned(),
        kind,
        mode: st.st_mode as u32 & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size,
        mtime_ns: time_ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
        digest: None,
    }
}

/// The stat fields' types differ between architectures; these casts are
/// lossless on the 64-bit Linux targets servin builds for.
#[allow(
    clippy::unnecessary_cast,
    reason = "the stat fields' types differ between architectures"
)]
pub(crate) fn stat_of(st: &rfs::Stat) -> Stat {
    Stat {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        size: st.st_size as u64,
        mtime_ns: time_ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime_ns: time_ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
    }
}

fn time_ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
