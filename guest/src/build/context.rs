//! Build contexts on the engine's side: the indexes the CLI sent (by
//! digest) and the contents they name (by content digest), so a rebuild
//! after one file changed receives only that file.
//!
//! Layout under `<root>/build/`: `contexts/<index hex>.idx` (the index in
//! its compact binary form, [`ContextIndex::encode`]) and
//! `blobs/sha256/<content hex>`. A `contexts/<hex>.json` left by an older
//! engine is not read: that index counts as not held and is sent again.
//!
//! An index arrives whole, or as a [`Delta`] from one the engine holds: a
//! rebuild after one file changed sends one entry, not the tens of MB of
//! a large context's index. Whatever way it came, the index stored is
//! checked to have the digest it is stored under, and the contents it
//! needs are always worked out from the whole index against the blob
//! store, so a base whose contents were pruned still asks for them.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use servin_buildctx::{BlobStore, ContextIndex, Delta};

use super::error::BuildError;
use crate::error::{Error, Result};

/// How many indexes stay decoded in memory (the newest used): a context
/// of 50,000 files is tens of MB decoded, and a rebuild needs its own and
/// the previous one.
const LOADED: usize = 4;

/// The contexts and contents the engine holds.
pub struct Contexts {
    dir: PathBuf,
    /// The contents.
    pub blobs: BlobStore,
    /// The newest used last.
    loaded: Mutex<VecDeque<(String, Arc<ContextIndex>)>>,
    /// Indexes being written on threads of their own.
    writing: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Writes `index` at `path`; a failure is only logged (the next build
/// sends the index again).
fn keep_on_disk(path: &Path, index: &ContextIndex) {
    if let Err(e) = super::cache::write_record(path, &index.encode()) {
        tracing::warn!(error = %e, "a context index was not kept on disk; the next build sends it again");
    }
}

fn hex_of(digest: &str) -> Result<&str> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(BuildError::Invalid(format!("invalid context digest {digest:?}")).into())
    }
}

impl Contexts {
    /// Opens (creating) the stores under `build_dir`.
    pub fn open(build_dir: &Path) -> Result<Self> {
        let dir = build_dir.join("contexts");
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        // What an engine stopped in the middle of writing an index left.
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let blobs_dir = build_dir.join("blobs");
        let blobs = BlobStore::open(&blobs_dir)
            .map_err(|e| BuildError::Invalid(format!("open {}: {e}", blobs_dir.display())))?;
        Ok(Self {
            dir,
            blobs,
            loaded: Mutex::new(VecDeque::new()),
            writing: Mutex::new(Vec::new()),
        })
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Arc<ContextIndex>)>> {
        self.loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `index` decoded as the newest used, dropping the oldest.
    fn keep(&self, hex: &str, index: &Arc<ContextIndex>) {
        let mut loaded = self.loaded();
        loaded.retain(|(h, _)| h != hex);
        loaded.push_back((hex.to_string(), Arc::clone(index)));
        while loaded.len() > LOADED {
            loaded.pop_front();
        }
    }

    fn file_of(&self, hex: &str) -> PathBuf {
        self.dir.join(format!("{hex}.idx"))
    }

    /// The index with `digest`, if the engine holds it. One whose file
    /// does not decode (cut short by a crash: indexes are written without
    /// an fsync) is removed and counts as not held, so the CLI sends it
    /// again.
    pub fn get(&self, digest: &str) -> Result<Option<Arc<ContextIndex>>> {
        let hex = hex_of(digest)?;
        let found = self
            .loaded()
            .iter()
            .find(|(h, _)| h == hex)
            .map(|(_, i)| Arc::clone(i));
        if let Some(found) = found {
            self.keep(hex, &found);
            return Ok(Some(found));
        }
        let path = self.file_of(hex);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        let index = match ContextIndex::decode(&bytes) {
            Ok(i) if i.digest().strip_prefix("sha256:") == Some(hex) => Arc::new(i),
            _ => {
                tracing::warn!(path = %path.display(), "a stored context index does not decode to its digest; removed");
                let _ = fs::remove_file(&path);
                return Ok(None);
            }
        };
        self.keep(hex, &index);
        Ok(Some(index))
    }

    /// Keeps the index sent as `bytes` (its binary form, or JSON), which
    /// must have `digest`.
    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<Arc<ContextIndex>> {
        let hex = hex_of(digest)?.to_string();
        let index = if ContextIndex::is_encoded(bytes) {
            ContextIndex::decode(bytes)
                .map_err(|e| BuildError::Invalid(format!("malformed context index: {e}")))?
        } else {
            serde_json::from_slice(bytes)
                .map_err(|e| BuildError::Invalid(format!("malformed context index: {e}")))?
        };
        self.store(digest, &hex, index, "the context index has")
    }

    /// Keeps the index with `digest` sent as a [`Delta`] from the index
    /// `base`. `None` when the engine does not hold `base` (the sender
    /// then sends the whole index).
    pub fn put_delta(
        &self,
        digest: &str,
        base: &str,
        bytes: &[u8],
    ) -> Result<Option<Arc<ContextIndex>>> {
        let hex = hex_of(digest)?.to_string();
        hex_of(base)?;
        let delta = Delta::decode(bytes).map_err(|e| {
            BuildError::Invalid(format!("malformed context index delta from {base}: {e}"))
        })?;
        let Some(base_index) = self.get(base)? else {
            return Ok(None);
        };
        let index = base_index
            .apply(&delta)
            .map_err(|e| BuildError::Invalid(format!("context index delta from {base}: {e}")))?;
        let what = format!("the context index delta from {base} gives an index with");
        self.store(digest, &hex, index, &what).map(Some)
    }

    /// Checks `index` has `digest`, writes it, keeps it decoded; `what`
    /// begins the message when it has another digest.
    fn store(
        &self,
        digest: &str,
        hex: &str,
        index: ContextIndex,
        what: &str,
    ) -> Result<Arc<ContextIndex>> {
        let actual = index.digest();
        if actual.strip_prefix("sha256:").unwrap_or(&actual) != hex {
            return Err(
                BuildError::Invalid(format!("{what} digest {actual}, not {digest}")).into(),
            );
        }
        let index = Arc::new(index);
        self.keep(hex, &index);
        // Written on a thread of its own while the build goes on (it is
        // kept in memory meanwhile): whole or not at all (a temporary file
        // renamed), but without an fsync, MBs for a large context at every
        // build whose context changed. One lost to a crash or a failed
        // write is sent again ([`Contexts::get`]).
        let (path, theirs) = (self.file_of(hex), Arc::clone(&index));
        let mut writing = self.writing();
        writing.retain(|h| !h.is_finished());
        match std::thread::Builder::new()
            .name("context-index".into())
            .spawn(move || keep_on_disk(&path, &theirs))
        {
            Ok(handle) => writing.push(handle),
            Err(e) => {
                tracing::warn!(error = %e, "no thread to write a context index; written now");
                drop(writing);
                keep_on_disk(&self.file_of(hex), &index);
            }
        }
        Ok(index)
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, Vec<std::thread::JoinHandle<()>>> {
        self.writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for the indexes being written.
    pub fn settle(&self) {
        let handles: Vec<_> = std::mem::take(&mut *self.writing());
        for h in handles {
            let _ = h.join();
        }
    }

    /// The content digests of `index` the engine has no content for.
    pub fn missing(&self, index: &ContextIndex) -> Vec<String> {
        let mut wanted: Vec<[u8; 32]> = index
            .entries()
            .iter()
            .filter_map(|e| e.digest.as_deref().and_then(servin_buildctx::parse_digest))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // An unreadable store asks for everything again.
        let missing = self.blobs.missing_digests(&wanted).unwrap_or(wanted);
        missing
            .iter()
            .map(|d| servin_buildctx::format_digest(d))
            .collect()
    }

    /// Removes the indexes and the contents: the next build sends its
    /// context again. Returns the bytes freed.
    pub fn prune(&self) -> u64 {
        self.settle();
        self.loaded().clear();
        let mut freed = 0;
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = fs::remove_file(entry.path());
        }
        freed += self
            .blobs
            .gc(&std::collections::HashSet::new())
            .map(|r| r.bytes)
            .unwrap_or(0);
        freed
    }
}
