//! Moving content from the CLI to the engine, only what the engine lacks.
//!
//! The CLI sends the [`ContextIndex`]; the engine answers with the digests
//! its [`BlobStore`] is [`missing`](BlobStore::missing); the CLI
//! [`pack`]s exactly those files as a tar stream whose entries are named by
//! the hex of their sha256 (one entry per distinct content, however many
//! paths share it); the engine [`receive`](BlobStore::receive)s it. A
//! rebuild after one file changed sends that one file.
//!
//! Both ends check content against its digest. [`pack`] fails when a file
//! no longer has the content it was indexed with (the stream is then to be
//! dropped: a build must never see half-changed content), and
//! [`BlobStore::receive`] keeps nothing of a stream holding a bad blob.

use std::{
    collections::{HashMap, HashSet},
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use sha2::{Digest as _, Sha256};

use crate::{
    codec,
    index::{ContextIndex, EntryKind},
};

/// Why content could not be packed, received or found.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A digest is not of the form `sha256:<64 lower-case hex>`.
    #[error("bad digest {digest:?}: expected sha256:<64 lower-case hex digits>")]
    BadDigest {
        /// The digest as given.
        digest: String,
    },
    /// A wanted digest is the content of no file of the index.
    #[error("no file of the build context has the content {digest}")]
    UnknownDigest {
        /// The digest.
        digest: String,
    },
    /// A file of the context no longer has its indexed content.
    #[error("{} changed since the build context was indexed; run the build again", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// A file or folder could not be read or written.
    #[error("cannot access {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tar stream could not be written or read.
    #[error("broken context stream")]
    Stream(#[source] io::Error),
    /// The stream holds an entry that is not a blob named by its digest.
    #[error(
        "unexpected entry {name:?} in the context stream: expected regular files named by sha256 hex"
    )]
    BadEntry {
        /// The entry's name.
        name: String,
    },
    /// A blob's content does not have the digest it is named by.
    #[error("blob {expected} in the context stream has the content {actual}")]
    Mismatch {
        /// The digest the entry is named by.
        expected: String,
        /// The digest of what it holds.
        actual: String,
    },
    /// The store holds no blob with this digest.
    #[error("no blob {digest} in the store")]
    NotInStore {
        /// The digest.
        digest: String,
    },
}

/// Up to this many blobs, [`BlobStore::receive`] syncs each; above, the
/// whole filesystem once.
const SYNC_EACH_UP_TO: usize = 32;

/// What a [`pack`] or a [`BlobStore::receive`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Blobs written (for `receive`: new to the store).
    pub count: u64,
    /// Their bytes of content.
    pub bytes: u64,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A reader of a file's indexed content that hashes as it goes and fails
/// when the file ends early.
struct Verifying {
    file: fs::File,
    remaining: u64,
    hasher: Sha256,
    short: bool,
}

impl Read for Verifying {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            self.short = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter",
            ));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Writes the content of the index's files with the `wanted` digests to
/// `out` as a tar stream, one regular-file entry per distinct digest named
/// by its hex, streaming file by file. Each file is checked to still have
/// the size and digest it was indexed with.
///
/// # Errors
///
/// [`TransferError::BadDigest`] / [`TransferError::UnknownDigest`] for a
/// wanted digest that is malformed or in no file; [`TransferError::Changed`]
/// naming a file whose content changed since indexing (what was written is
/// then unusable and must be dropped); [`TransferError::Io`] /
/// [`TransferError::Stream`] for read and write failures.
pub fn pack(
    context_dir: &Path,
    index: &ContextIndex,
    wanted: &[String],
    out: impl Write,
) -> Result<Received, TransferError> {
    // A rebuild wants a few of tens of thousands of files: index only those.
    let wanted_set: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut by_digest = HashMap::with_capacity(wanted_set.len());
    for entry in index.entries() {
        if let (EntryKind::File, Some(d)) = (&entry.kind, entry.digest.as_deref())
            && wanted_set.contains(d)
        {
            by_digest.entry(d).or_insert(entry);
        }
    }
    let mut builder = tar::Builder::new(out);
    let mut done = HashSet::new();
    let mut sent = Received::default();
    for digest in wanted {
        if codec::parse_digest(digest).is_none() {
            return Err(TransferError::BadDigest {
                digest: digest.clone(),
            });
        }
        if !done.insert(digest.as_str()) {
            continue;
        }
        let entry = by_digest
            .get(digest.as_str())
            .ok_or_else(|| TransferError::UnknownDigest {
                digest: digest.clone(),
            })?;
        let path = context_dir.join(&entry.path);
        let changed = || TransferError::Changed { path: path.clone() };
        let file = fs::File::open(&path).map_err(io_at(&path))?;
        let meta = file.metadata().map_err(io_at(&path))?;
        if !meta.is_file() || meta.len() != entry.size {
            return Err(changed());
        }
        let mut header = tar::Header::new_gnu();
        let hex = digest.trim_start_matches("sha256:");
        header.set_path(hex).map_err(TransferError::Stream)?;
        header.set_size(entry.size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut reader = Verifying {
            file,
            remaining: entry.size,
            hasher: Sha256::new(),
            short: false,
        };
        match builder.append(&header, &mut reader) {
            Ok(()) => {}
            Err(_) if reader.short => return Err(changed()),
            Err(e) => return Err(TransferError::Stream(e)),
        }
        if codec::format_digest(&reader.hasher.finalize()) != *digest {
            return Err(changed());
        }
        sent.count += 1;
        sent.bytes += entry.size;
    }
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(TransferError::Stream)?;
    Ok(sent)
}

/// The engine's content-addressed store of context files:
/// `<dir>/sha256/<hex>`, each file holding exactly the content its name is
/// the digest of. Streams being received are staged in
/// `<dir>/tmp/recv-<pid>-<n>/` and moved into place whole.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// The digests held, once listed: the store is this process's alone,
    /// so receives and collections keep the set true, and a rebuild asks
    /// about tens of thousands of digests without listing the folder.
    held: std::sync::Arc<std::sync::Mutex<Option<HashSet<[u8; 32]>>>>,
}

impl BlobStore {
    /// Opens (creating if needed) the store in `dir`, and removes what
    /// receives of earlier engine processes left staged when they died.
    ///
    /// # Errors
    ///
    /// [`TransferError::Io`] when the folders cannot be made.
    pub fn open(dir: &Path) -> Result<BlobStore, TransferError> {
        let store = BlobStore {
            root: dir.to_path_buf(),
            held: std::sync::Arc::default(),
        };
        for sub in [store.blobs_dir(), store.tmp_dir()] {
            fs::create_dir_all(&sub).map_err(io_at(&sub))?;
        }
        let ours = format!("recv-{}-", std::process::id());
        let tmp = store.tmp_dir();
        for staged in fs::read_dir(&tmp).map_err(io_at(&tmp))? {
            let staged = staged.map_err(io_at(&tmp))?;
            let name = staged.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("recv-") && !name.starts_with(&ours) {
                let path = staged.path();
                fs::remove_dir_all(&path).map_err(io_at(&path))?;
            }
        }
        Ok(store)
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("sha256")
    }

    fn held_set(&self) -> std::sync::MutexGuard<'_, Option<HashSet<[u8; 32]>>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    ///
    /// # Errors
    ///
    /// [`TransferError::BadDigest`] for a malformed digest.
    pub fn path(&self, digest: &str) -> Result<PathBuf, TransferError> {
        match codec::parse_digest(digest) {
            Some(bytes) => Ok(self.blobs_dir().join(codec::hex(&bytes))),
            None => Err(TransferError::BadDigest {
                digest: digest.to_owned(),
            }),
        }
    }

    /// Whether the store holds the blob.
    ///
    /// # Errors
    ///
    /// [`TransferError::BadDigest`] for a malformed digest.
    pub fn has(&self, digest: &str) -> Result<bool, TransferError> {
        Ok(self.path(digest)?.is_file())
    }

    /// The digests among `digests` the store does not hold, each once, in
    /// the order given: what to ask the CLI for. For many digests the
    /// store's folder is listed once rather than each blob looked up.
    ///
    /// # Errors
    ///
    /// [`TransferError::BadDigest`] for a malformed digest,
    /// [`TransferError::Io`] when the store cannot be listed.
    pub fn missing(&self, digests: &[String]) -> Result<Vec<String>, TransferError> {
        let bytes = digests
            .iter()
            .map(|d| {
                codec::parse_digest(d).ok_or_else(|| TransferError::BadDigest { digest: d.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .missing_digests(&bytes)?
            .iter()
            .map(|d| codec::format_digest(d))
            .collect())
    }

    /// [`BlobStore::missing`] for digests as their 32 bytes: a large
    /// context's tens of thousands of digests are looked up without
    /// formatting or parsing text.
    ///
    /// # Errors
    ///
    /// [`TransferError::Io`] when the store cannot be listed.
    pub fn missing_digests(&self, digests: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, TransferError> {
        const LIST_ABOVE: usize = 256;
        let mut guard = self.held_set();
        if guard.is_none() && digests.len() > LIST_ABOVE {
            let blobs = self.blobs_dir();
            let mut held = HashSet::new();
            for blob in fs::read_dir(&blobs).map_err(io_at(&blobs))? {
                let blob = blob.map_err(io_at(&blobs))?;
                if let Some(bytes) = blob.file_name().to_str().and_then(codec::parse_hex32) {
                    held.insert(bytes);
                }
            }
            *guard = Some(held);
        }
        let held = guard.as_ref();
        // Sorted and unique (as an index's are) needs no set to say so.
        let unique = digests.windows(2).all(|w| w[0] < w[1]);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for bytes in digests {
            if !unique && !seen.insert(bytes) {
                continue;
            }
            let present = match held {
                Some(held) => held.contains(bytes),
                None => self.blobs_dir().join(codec::hex(bytes)).is_file(),
            };
            if !present {
                out.push(*bytes);
            }
        }
        Ok(out)
    }

    /// Opens a blob for reading (the executor copies from it).
    ///
    /// # Errors
    ///
    /// [`TransferError::NotInStore`] when the store lacks it,
    /// [`TransferError::BadDigest`] / [`TransferError::Io`] otherwise.
    pub fn open_blob(&self, digest: &str) -> Result<fs::File, TransferError> {
        let path = self.path(digest)?;
        match fs::File::open(&path) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(TransferError::NotInStore {
                digest: digest.to_owned(),
            }),
            Err(source) => Err(TransferError::Io { path, source }),
        }
    }

    /// Reads a stream made by [`pack`], checks every blob against the
    /// digest it is named by, and moves them into the store once the whole
    /// stream is good (synced, then renamed into place). Blobs the store
    /// already holds are skipped.
    ///
    /// # Errors
    ///
    /// [`TransferError::Mismatch`] for a blob whose content is not its
    /// name's digest, [`TransferError::BadEntry`] for anything else than a
    /// blob, [`TransferError::Stream`] / [`TransferError::Io`] for read and
    /// write failures. On any error nothing of the stream stays in the
    /// store.
    pub fn receive(&self, stream: impl Read) -> Result<Received, TransferError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let staging = self.tmp_dir().join(format!(
            "recv-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&staging).map_err(io_at(&staging))?;
        let result = self.receive_into(&staging, stream);
        let _ = fs::remove_dir_all(&staging);
        result
    }

    fn receive_into(&self, staging: &Path, stream: impl Read) -> Result<Received, TransferError> {
        let mut archive = tar::Archive::new(stream);
        let mut staged = Vec::new();
        let mut staged_names = HashSet::new();
        let mut got = Received::default();
        let mut buf = vec![0u8; 256 * 1024];
        for entry in archive.entries().map_err(TransferError::Stream)? {
            let mut entry = entry.map_err(TransferError::Stream)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let regular = entry.header().entry_type() == tar::EntryType::Regular;
            let Some(bytes) = codec::parse_hex32(&name).filter(|_| regular) else {
                return Err(TransferError::BadEntry { name });
            };
            let digest = codec::format_digest(&bytes);
            let target = self.blobs_dir().join(&name);
            if staged_names.contains(&bytes) || target.is_file() {
                continue;
            }
            staged_names.insert(bytes);
            let tmp = staging.join(&name);
            let mut file = fs::File::create(&tmp).map_err(io_at(&tmp))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(TransferError::Stream(e)),
                };
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n]).map_err(io_at(&tmp))?;
                size += n as u64;
            }
            let actual = codec::format_digest(&hasher.finalize());
            if actual != digest {
                return Err(TransferError::Mismatch {
                    expected: digest,
                    actual,
                });
            }
            got.count += 1;
            got.bytes += size;
            staged.push((tmp, target));
        }
        if staged.is_empty() {
            return Ok(got);
        }
        // Durable before visible. A first build sends tens of thousands
        // of small files: one sync of the filesystem then costs less than
        // one per blob; a rebuild sends a few, and syncing the filesystem
        // would also wait for everyone else's writes.
        if staged.len() > SYNC_EACH_UP_TO {
            let dir = fs::File::open(staging).map_err(io_at(staging))?;
            rustix::fs::syncfs(&dir).map_err(|e| TransferError::Io {
                path: staging.to_path_buf(),
                source: e.into(),
            })?;
        } else {
            for (tmp, _) in &staged {
                fs::File::open(tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io_at(tmp))?;
            }
        }
        for (tmp, target) in &staged {
            fs::rename(tmp, target).map_err(io_at(target))?;
            let name = target.file_name().and_then(|n| n.to_str());
            if let (Some(held), Some(bytes)) =
                (self.held_set().as_mut(), name.and_then(codec::parse_hex32))
            {
                held.insert(bytes);
            }
        }
        let blobs = self.blobs_dir();
        fs::File::open(&blobs)
            .and_then(|d| d.sync_all())
            .map_err(io_at(&blobs))?;
        Ok(got)
    }

    /// Removes every blob whose digest is not in `keep`. Returns what was
    /// removed.
    ///
    /// # Errors
    ///
    /// [`TransferError::Io`] naming the blob or folder that could not be
    /// listed or removed.
    pub fn gc(&self, keep: &HashSet<String>) -> Result<Received, TransferError> {
        let blobs = self.blobs_dir();
        let mut removed = Received::default();
        for blob in fs::read_dir(&blobs).map_err(io_at(&blobs))? {
            let blob = blob.map_err(io_at(&blobs))?;
            let name = blob.file_name().to_string_lossy().into_owned();
            if keep.contains(&format!("sha256:{name}")) {
                continue;
            }
            let path = blob.path();
            let size = blob.metadata().map(|m| m.len()).unwrap_or(0);
            // Forgotten first: a set that still names a removed blob would
            // make a build use content that is gone.
            if let (Some(held), Some(bytes)) = (self.held_set().as_mut(), codec::parse_hex32(&name))
            {
                held.remove(&bytes);
            }
            fs::remove_file(&path).map_err(io_at(&path))?;
            removed.count += 1;
            removed.bytes += size;
        }
        Ok(removed)
    }
}
