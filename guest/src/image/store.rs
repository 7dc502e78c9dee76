//! The content-addressed image store.
//!
//! Layout under `<root>/images/`:
//! - `blobs/sha256/<hex>`: manifests, configs and layers, each verified
//!   against its digest before it is renamed into place;
//! - `snapshots/<chain-id hex>/`: one unpacked layer, in overlayfs form;
//! - `tmp/`: downloads and unpacks in progress, emptied at start;
//! - `state.json`: the image records, written crash-safely.
//!
//! Build cache is the exception to writing everything durably at once: a
//! build step's image ([`Store::add_build_cache`]) has its config and
//! manifest blobs written without an fsync and its record kept in memory
//! only, until the next save of `state.json` (at the latest when the build
//! ends). Each save first fsyncs those blobs, so the records on disk never
//! name a blob a crash could lose; a crash before the save loses only cache
//! records, which costs a rerun of their steps. Fifteen metadata steps used
//! to cost four fsyncs each (two blobs, `state.json` twice).
//!
//! What changes the records is an event on the engine's stream (`tag`,
//! `untag`, `delete`; `pull`, `push`, `load` and `save` are published by
//! the operations that do them, through [`Store::image_event`]).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ImageError, Result};
use crate::events::Events;
use crate::image::digest;
use crate::image::reference::{ImageRef, familiar};
use crate::state::{sync_dir, write_synced};

/// One layer of an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// Digest of the blob as stored (compressed or not).
    pub digest: String,
    /// Media type from the manifest.
    pub media_type: String,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
}

/// An image known to the engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// Image ID: the config digest.
    pub id: String,
    /// Digest of the manifest blob.
    pub manifest_digest: String,
    /// Media type of the manifest.
    pub manifest_media_type: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Full tagged names, e.g. `docker.io/library/busybox:latest`.
    pub repo_tags: Vec<String>,
    /// Full digested names, e.g. `docker.io/library/busybox@sha256:...`.
    pub repo_digests: Vec<String>,
    /// Size of the unpacked layers in bytes.
    pub size: u64,
    /// When the image entered the store (seconds since the epoch).
    pub added: i64,
    /// A step of a build kept as build cache: not listed, not pruned as
    /// dangling, removed by `builder prune` (`POST /build/prune`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_cache: bool,
}

impl ImageRecord {
    /// Chain IDs of the layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        let diffs: Vec<String> = self.layers.iter().map(|l| l.diff_id.clone()).collect();
        digest::chain_ids(&diffs)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    images: BTreeMap<String, ImageRecord>,
}

/// What a removal did, in Docker's words.
#[derive(Debug, Default)]
pub struct Removal {
    /// Names untagged.
    pub untagged: Vec<String>,
    /// Image IDs deleted.
    pub deleted: Vec<String>,
}

/// The image store.
pub struct Store {
    dir: PathBuf,
    state: Mutex<State>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Held shared by operations that add content, exclusively by garbage
    /// collection, so collection never removes a blob a pull just wrote.
    pub gc_lock: tokio::sync::RwLock<()>,
    counter: AtomicU64,
    events: Arc<Events>,
    /// Blobs renamed into place without an fsync (build cache), synced
    /// before the next save of `state.json`.
    unsynced: Mutex<Vec<PathBuf>>,
    /// Whether the records in memory hold build cache not saved yet.
    dirty: AtomicBool,
}

impl Store {
    /// Opens (creating if needed) the store under `<root>/images`.
    pub fn open(root: &Path, events: Arc<Events>) -> Result<Self> {
        let dir = root.join("images");
        for sub in ["blobs/sha256", "snapshots", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        // Leftovers of an interrupted run: partial downloads and unpacks.
        let tmp = dir.join("tmp");
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let p = entry.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
        let state_path = dir.join("state.json");
        let state = match fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(Error::json(state_path.display().to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(Error::io("read", &state_path)(e)),
        };
        Ok(Self {
            dir,
            state: Mutex::new(state),
            locks: Mutex::new(HashMap::new()),
            gc_lock: tokio::sync::RwLock::new(()),
            counter: AtomicU64::new(0),
            events,
            unsynced: Mutex::new(Vec::new()),
            dirty: AtomicBool::new(false),
        })
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The labels of image `id`'s config (none when it cannot be read).
    pub fn labels(&self, id: &str) -> HashMap<String, String> {
        self.read_blob(id)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|c| c.pointer("/config/Labels").cloned())
            .and_then(|l| serde_json::from_value(l).ok())
            .unwrap_or_default()
    }

    /// Publishes an image event as Docker does: actor `actor`, attribute
    /// `name`, and the labels of image `id` when it is known.
    pub fn image_event(&self, action: &str, actor: &str, name: &str, id: Option<&str>) {
        let mut a = id.map(|id| self.labels(id)).unwrap_or_default();
        a.insert("name".to_string(), name.to_string());
        self.events.image(action, actor, a);
    }

    /// Publishes the events of removing names from image `id`: one
    /// `untag` per name, then `delete` when the image went (actor and name
    /// the image ID, as Docker gives them).
    fn removal_events(&self, id: &str, untagged: usize, deleted: bool) {
        for _ in 0..untagged {
            self.image_event("untag", id, id, Some(id));
        }
        if deleted {
            self.image_event("delete", id, id, Some(id));
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The path of a blob (which may not exist).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest::hex_of(digest)?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    /// Whether a blob is present.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Reads a whole blob (for manifests and configs).
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Content {
                    subject: format!("blob {digest}"),
                    message: "missing from the store".to_string(),
                }
            } else {
                Error::io("read", &p)(e)
            }
        })
    }

    /// A fresh path in the store's temporary folder.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.dir
            .join("tmp")
            .join(format!("{what}-{}-{n}-{nanos}", std::process::id()))
    }

    /// Stores `data` as a blob after checking it against `expected` (when
    /// given), and returns its digest.
    pub fn put_blob(&self, data: &[u8], expected: Option<&str>) -> Result<String> {
        let actual = digest::of(data);
        if let Some(want) = expected
            && want != actual
        {
            return Err(Error::Content {
                subject: format!("blob {want}"),
                message: format!("content has digest {actual}"),
            });
        }
        if self.holds_blob(&actual, data) {
            return Ok(actual);
        }
        let tmp = self.temp_path("blob");
        write_synced(&tmp, data)?;
        self.commit_blob(&tmp, &actual)?;
        Ok(actual)
    }

    /// Stores `data` as a blob without an fsync, for a build step's config
    /// and manifest: the blob is synced before the next save of the records
    /// (see the module's note), and returns its digest.
    pub fn put_blob_unsynced(&self, data: &[u8]) -> Result<String> {
        let actual = digest::of(data);
        if self.holds_blob(&actual, data) {
            return Ok(actual);
        }
        let tmp = self.temp_path("blob");
        fs::write(&tmp, data).map_err(Error::io("write", &tmp))?;
        let dst = self.blob_path(&actual)?;
        fs::rename(&tmp, &dst).map_err(Error::io("rename", &dst))?;
        self.unsynced_blobs().push(dst);
        Ok(actual)
    }

    /// Whether blob `digest` is present with `data`'s length. A blob
    /// written without an fsync and cut short by a machine crash (before
    /// any record named it) is written again instead of trusted.
    fn holds_blob(&self, digest: &str, data: &[u8]) -> bool {
        self.blob_path(digest)
            .ok()
            .and_then(|p| fs::metadata(p).ok())
            .is_some_and(|m| m.is_file() && m.len() == data.len() as u64)
    }

    /// Moves a verified temporary file into place as blob `digest`.
    pub fn commit_blob(&self, tmp: &Path, digest: &str) -> Result<()> {
        let dst = self.blob_path(digest)?;
        fs::rename(tmp, &dst).map_err(Error::io("rename", &dst))?;
        sync_dir(dst.parent().unwrap_or(&self.dir));
        Ok(())
    }

    /// A lock serialising work on one key (a blob digest or a chain ID), so
    /// that concurrent pulls fetch and unpack shared content once.
    pub fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }

    /// The snapshot folder of a chain ID.
    pub fn snapshot_path(&self, chain_id: &str) -> Result<PathBuf> {
        let hex = digest::hex_of(chain_id)?;
        Ok(self.dir.join("snapshots").join(hex))
    }

    /// Whether the snapshot of a chain ID is complete.
    pub fn has_snapshot(&self, chain_id: &str) -> bool {
        self.snapshot_path(chain_id).is_ok_and(|p| p.is_dir())
    }

    /// All images.
    pub fn images(&self) -> Vec<ImageRecord> {
        self.state().images.values().cloned().collect()
    }

    /// One image by ID.
    pub fn image(&self, id: &str) -> Option<ImageRecord> {
        self.state().images.get(id).cloned()
    }

    /// Finds an image by name, `name@digest`, full ID or unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let state = self.state();
        let not_found = || Error::NoSuchImage(name.to_string());
        let by_prefix = |hex: &str| -> Result<ImageRecord> {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(not_found());
            }
            let found: Vec<&ImageRecord> = state
                .images
                .values()
                .filter(|i| {
                    i.id.strip_prefix("sha256:")
                        .is_some_and(|h| h.starts_with(hex))
                })
                .collect();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(not_found()),
                _ => Err(ImageError::AmbiguousId(hex.to_string()).into()),
            }
        };
        if let Some(hex) = name.strip_prefix("sha256:") {
            return by_prefix(hex);
        }
        if let Ok(r) = ImageRef::parse(name) {
            let hit = if let Some(d) = &r.digest {
                let wanted = format!("{}@{d}", r.name());
                state
                    .images
                    .values()
                    .find(|i| i.repo_digests.contains(&wanted))
            } else {
                let wanted = r.tagged().unwrap_or_default();
                state
                    .images
                    .values()
                    .find(|i| i.repo_tags.contains(&wanted))
            };
            if let Some(i) = hit {
                return Ok(i.clone());
            }
        }
        if name.len() == 64 || name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return by_prefix(name);
        }
        Err(not_found())
    }

    /// Adds or updates an image, giving it `tag` (taken off any other image)
    /// and `repo_digest`. Returns whether it was already present with `tag`.
    pub fn add_image(
        &self,
        mut record: ImageRecord,
        tag: Option<&str>,
        repo_digest: Option<&str>,
    ) -> Result<bool> {
        let mut state = self.state();
        let mut had_tag = false;
        if let Some(existing) = state.images.get(&record.id) {
            had_tag = tag.is_some_and(|t| existing.repo_tags.iter().any(|x| x == t));
            record.repo_tags = existing.repo_tags.clone();
            record.repo_digests = existing.repo_digests.clone();
            record.added = existing.added;
        }
        if let Some(t) = tag {
            for other in state.images.values_mut() {
                other.repo_tags.retain(|x| x != t);
            }
            if !record.repo_tags.iter().any(|x| x == t) {
                record.repo_tags.push(t.to_string());
            }
        }
        if let Some(d) = repo_digest
            && !record.repo_digests.iter().any(|x| x == d)
        {
            record.repo_digests.push(d.to_string());
        }
        state.images.insert(record.id.clone(), record);
        self.save(&state)?;
        Ok(had_tag)
    }

    /// Records a build step's image as build cache, in memory only: it is
    /// saved with the next save of the records (at the latest by
    /// [`Store::flush`] when the build ends). An image already recorded
    /// keeps its names and whether it is cache.
    pub fn add_build_cache(&self, mut record: ImageRecord) {
        let mut state = self.state();
        if let Some(existing) = state.images.get(&record.id) {
            record.repo_tags = existing.repo_tags.clone();
            record.repo_digests = existing.repo_digests.clone();
            record.added = existing.added;
            record.build_cache = existing.build_cache;
        } else {
            record.build_cache = true;
        }
        state.images.insert(record.id.clone(), record);
        self.dirty.store(true, Ordering::SeqCst);
    }

    /// Saves the records if build cache was added since the last save.
    pub fn flush(&self) -> Result<()> {
        let state = self.state();
        if self.dirty.load(Ordering::SeqCst) {
            self.save(&state)?;
        }
        Ok(())
    }

    /// Marks image `id` as build cache (or not).
    pub fn set_build_cache(&self, id: &str, cache: bool) -> Result<()> {
        let mut state = self.state();
        let Some(img) = state.images.get_mut(id) else {
            return Err(Error::NoSuchImage(id.to_string()));
        };
        if img.build_cache == cache {
            return Ok(());
        }
        img.build_cache = cache;
        self.save(&state)
    }

    /// Ends a build: image `id` is no longer build cache and gets the full
    /// tagged names `tags` (each taken off any other image), saved once
    /// together with the build's cache records (see [`Self::flush`]).
    pub fn finish_build(&self, id: &str, tags: &[String]) -> Result<()> {
        let mut state = self.state();
        if !state.images.contains_key(id) {
            return Err(Error::NoSuchImage(id.to_string()));
        }
        for tag in tags {
            for other in state.images.values_mut() {
                other.repo_tags.retain(|x| x != tag);
            }
        }
        if let Some(img) = state.images.get_mut(id) {
            img.build_cache = false;
            img.repo_tags.extend(tags.iter().cloned());
        }
        self.save(&state)?;
        drop(state);
        for tag in tags {
            self.image_event("tag", id, &familiar(tag), Some(id));
        }
        Ok(())
    }

    /// Gives image `id` the full tagged name `tag`.
    pub fn tag(&self, id: &str, tag: &str) -> Result<()> {
        let mut state = self.state();
        if !state.images.contains_key(id) {
            return Err(Error::NoSuchImage(id.to_string()));
        }
        for other in state.images.values_mut() {
            other.repo_tags.retain(|x| x != tag);
        }
        if let Some(img) = state.images.get_mut(id) {
            img.repo_tags.push(tag.to_string());
        }
        self.save(&state)?;
        drop(state);
        self.image_event("tag", id, &familiar(tag), Some(id));
        Ok(())
    }

    /// Removes `name` the way `docker rmi` does: a tag of an image with other
    /// tags is only untagged; otherwise the image goes. `in_use` maps image
    /// IDs to a container using each: such an image is refused, or with
    /// `force` only untagged (its layers stay for the container).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &std::collections::HashMap<String, String>,
    ) -> Result<Removal> {
        let image = self.resolve(name)?;
        let mut state = self.state();
        let mut out = Removal::default();
        let by_tag = ImageRef::parse(name)
            .ok()
            .and_then(|r| r.tagged())
            .filter(|t| image.repo_tags.contains(t));
        if let Some(t) = by_tag {
            if let Some(img) = state.images.get_mut(&image.id) {
                img.repo_tags.retain(|x| *x != t);
                out.untagged.push(t);
                if !img.repo_tags.is_empty() {
                    self.save(&state)?;
                    drop(state);
                    self.removal_events(&image.id, 1, false);
                    return Ok(out);
                }
            }
        } else if image.repo_tags.len() > 1 && !force {
            return Err(ImageError::MultipleRepositories(short_id(&image.id).to_string()).into());
        } else {
            out.untagged.extend(image.repo_tags.iter().cloned());
        }
        if let Some(container) = in_use.get(&image.id) {
            if !force {
                return Err(ImageError::UsedByContainer {
                    reference: name.to_string(),
                    container: short_id(container).to_string(),
                    image: short_id(&image.id).to_string(),
                }
                .into());
            }
            if let Some(img) = state.images.get_mut(&image.id) {
                out.untagged = std::mem::take(&mut img.repo_tags);
            }
            self.save(&state)?;
            drop(state);
            self.removal_events(&image.id, out.untagged.len(), false);
            return Ok(out);
        }
        if let Some(img) = state.images.remove(&image.id) {
            out.untagged.extend(img.repo_digests);
        }
        out.deleted.push(image.id.clone());
        self.save(&state)?;
        drop(state);
        self.removal_events(&image.id, out.untagged.len(), true);
        Ok(out)
    }

    /// Removes images without tags, or (with `all`) every image, except
    /// those in `in_use` (image IDs), and returns what went.
    pub fn prune(
        &self,
        all: bool,
        in_use: &std::collections::HashMap<String, String>,
        chosen: impl Fn(&ImageRecord) -> bool,
    ) -> Result<Removal> {
        let mut state = self.state();
        let mut out = Removal::default();
        let gone: Vec<String> = state
            .images
            .values()
            .filter(|i| {
                (all || i.repo_tags.is_empty())
                    && !i.build_cache
                    && !in_use.contains_key(&i.id)
                    && chosen(i)
            })
            .map(|i| i.id.clone())
            .collect();
        let mut removed = Vec::new();
        for id in gone {
            if let Some(img) = state.images.remove(&id) {
                let names = img.repo_tags.len() + img.repo_digests.len();
                out.untagged.extend(img.repo_tags);
                out.untagged.extend(img.repo_digests);
                removed.push((id.clone(), names));
                out.deleted.push(id);
            }
        }
        self.save(&state)?;
        drop(state);
        for (id, names) in removed {
            self.removal_events(&id, names, true);
        }
        Ok(out)
    }

    /// Removes blobs and snapshots no image refers to; returns bytes freed.
    /// Callers hold [`Store::gc_lock`] exclusively.
    pub fn collect_garbage(&self) -> Result<u64> {
        let (blobs, snapshots) = {
            let state = self.state();
            let mut blobs = std::collections::HashSet::new();
            let mut snaps = std::collections::HashSet::new();
            for img in state.images.values() {
                blobs.insert(hex_owned(&img.id));
                blobs.insert(hex_owned(&img.manifest_digest));
                for l in &img.layers {
                    blobs.insert(hex_owned(&l.digest));
                }
                for c in img.chain_ids() {
                    snaps.insert(hex_owned(&c));
                }
            }
            (blobs, snaps)
        };
        let mut freed = 0;
        let blob_dir = self.dir.join("blobs/sha256");
        for entry in fs::read_dir(&blob_dir)
            .map_err(Error::io("read", &blob_dir))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                freed += entry.metadata().map_or(0, |m| m.len());
                let p = entry.path();
                fs::remove_file(&p).map_err(Error::io("remove", &p))?;
            }
        }
        let snap_dir = self.dir.join("snapshots");
        for entry in fs::read_dir(&snap_dir)
            .map_err(Error::io("read", &snap_dir))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !snapshots.contains(&name) {
                let p = entry.path();
                // Move it aside first so a half-removed snapshot never looks complete.
                let aside = self.temp_path("gc");
                fs::rename(&p, &aside).map_err(Error::io("rename", &p))?;
                fs::remove_dir_all(&aside).map_err(Error::io("remove", &aside))?;
            }
        }
        Ok(freed)
    }

    fn save(&self, state: &State) -> Result<()> {
        let unsynced = std::mem::take(&mut *self.unsynced_blobs());
        let saved = self.write_state(state, &unsynced);
        match &saved {
            Ok(()) => self.dirty.store(false, Ordering::SeqCst),
            // Still to sync at the next save.
            Err(_) => self.unsynced_blobs().extend(unsynced),
        }
        saved
    }

    fn unsynced_blobs(&self) -> MutexGuard<'_, Vec<PathBuf>> {
        self.unsynced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `state.json` durably, after the blobs written without an
    /// fsync that the records may name.
    fn write_state(&self, state: &State, unsynced: &[PathBuf]) -> Result<()> {
        sync_files(unsynced)?;
        if !unsynced.is_empty() {
            sync_dir(&self.dir.join("blobs/sha256"));
        }
        let path = self.dir.join("state.json");
        let bytes = serde_json::to_vec_pretty(state).map_err(Error::json("image state"))?;
        let tmp = self.temp_path("state");
        write_synced(&tmp, &bytes)?;
        fs::rename(&tmp, &path).map_err(Error::io("rename", &path))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Bytes used by blobs and snapshots, for `/info`.
    pub fn usage(&self) -> (u64, usize) {
        let mut bytes = 0;
        let mut count = 0;
        if let Ok(entries) = fs::read_dir(self.dir.join("blobs/sha256")) {
            for e in entries.flatten() {
                bytes += e.metadata().map_or(0, |m| m.len());
                count += 1;
            }
        }
        (bytes, count)
    }
}

/// How many files [`sync_files`] syncs at once.
const SYNC_THREADS: usize = 8;

/// Fsyncs `paths`, several at a time: concurrent fsyncs share the
/// filesystem's journal commits, where one after another each waits for
/// its own (about 9 ms each on this machine's ext4, measured).
fn sync_files(paths: &[PathBuf]) -> Result<()> {
    let sync = |p: &PathBuf| match fs::File::open(p) {
        Ok(f) => f.sync_all().map_err(Error::io("sync", p)),
        // Removed since by garbage collection: nothing to sync.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("open", p)(e)),
    };
    if paths.len() <= 1 {
        return paths.iter().try_for_each(sync);
    }
    let per = paths.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(per)
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(sync)))
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| {
                Err(Error::Content {
                    subject: "image store".to_string(),
                    message: "a thread syncing blobs panicked".to_string(),
                })
            })
        })
    })
}

fn hex_owned(digest: &str) -> String {
    digest.strip_prefix("sha256:").unwrap_or(digest).to_string()
}

/// The 12-character short form of an ID.
pub fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn record(id: &str, tags: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id.to_string(),
            manifest_digest: digest::of(id.as_bytes()),
            manifest_media_type: String::new(),
            layers: vec![],
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: vec![],
            size: 0,
            added: 0,
            build_cache: false,
        }
    }

    #[test]
    fn tags_move_and_rmi_untags_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let a = digest::of(b"a");
        let b = digest::of(b"b");
        let t1 = "docker.io/library/x:1";
        let t2 = "docker.io/library/x:2";
        store.add_image(record(&a, &[]), Some(t1), None).unwrap();
        store.add_image(record(&b, &[]), Some(t1), None).unwrap();
        assert!(store.image(&a).unwrap().repo_tags.is_empty());
        store.tag(&b, t2).unwrap();
        let r = store.remove("x:1", false, &Default::default()).unwrap();
        assert_eq!(r.untagged, vec![t1.to_string()]);
        assert!(r.deleted.is_empty());
        assert_eq!(store.resolve("x:2").unwrap().id, b);
        assert_eq!(store.resolve(&b[7..19]).unwrap().id, b);
        let pruned = store.prune(false, &Default::default(), |_| true).unwrap();
        assert_eq!(pruned.deleted, vec![a.clone()]);
        // The state survives a reopen.
        drop(store);
        let store = Store::open(dir.path(), Default::default()).unwrap();
        assert_eq!(store.images().len(), 1);
        assert!(matches!(store.resolve("nope"), Err(Error::NoSuchImage(_))));
    }

    #[test]
    fn build_cache_is_kept_in_memory_until_a_save_which_makes_its_blobs_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let config = store.put_blob_unsynced(b"{\"config\":{}}").unwrap();
        assert_eq!(store.read_blob(&config).unwrap(), b"{\"config\":{}}");
        assert_eq!(store.unsynced_blobs().len(), 1);
        store.add_build_cache(record(&config, &[]));
        assert!(store.image(&config).unwrap().build_cache);
        // Not on disk yet: a crash now loses only this cache record.
        let reopened = Store::open(dir.path(), Default::default()).unwrap();
        assert!(reopened.image(&config).is_none());
        store.flush().unwrap();
        assert!(store.unsynced_blobs().is_empty());
        let reopened = Store::open(dir.path(), Default::default()).unwrap();
        assert!(reopened.image(&config).unwrap().build_cache);
        // Nothing new: no save.
        let before = fs::metadata(dir.path().join("images/state.json")).unwrap();
        store.flush().unwrap();
        let after = fs::metadata(dir.path().join("images/state.json")).unwrap();
        assert_eq!(before.ino(), after.ino());
        // Any other save writes the cache records too.
        let other = store.put_blob_unsynced(b"other").unwrap();
        store.add_build_cache(record(&other, &[]));
        store
            .add_image(
                record(&digest::of(b"t"), &[]),
                Some("docker.io/library/t:1"),
                None,
            )
            .unwrap();
        let reopened = Store::open(dir.path(), Default::default()).unwrap();
        assert!(reopened.image(&other).is_some());
    }

    #[test]
    fn a_tagged_image_stays_tagged_when_a_build_records_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let id = digest::of(b"img");
        store
            .add_image(record(&id, &[]), Some("docker.io/library/kept:1"), None)
            .unwrap();
        store.add_build_cache(record(&id, &[]));
        let img = store.image(&id).unwrap();
        assert!(!img.build_cache);
        assert_eq!(img.repo_tags, vec!["docker.io/library/kept:1".to_string()]);
    }

    #[test]
    fn a_blob_cut_short_by_a_crash_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let data = b"{\"architecture\":\"amd64\"}";
        let d = digest::of(data);
        // What a machine crash can leave of a blob renamed without an fsync.
        fs::write(store.blob_path(&d).unwrap(), b"").unwrap();
        assert_eq!(store.put_blob_unsynced(data).unwrap(), d);
        assert_eq!(store.read_blob(&d).unwrap(), data);
        fs::write(store.blob_path(&d).unwrap(), b"").unwrap();
        assert_eq!(store.put_blob(data, None).unwrap(), d);
        assert_eq!(store.read_blob(&d).unwrap(), data);
    }

    /// The engine once read `docker.io/busybox` as `docker.io/busybox:latest`,
    /// an image apart from `busybox`: every spelling finds, tags and
    /// untags the one image.
    #[test]
    fn docker_io_busybox_and_busybox_name_one_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let a = digest::of(b"busybox");
        store
            .add_image(
                record(&a, &[]),
                Some("docker.io/library/busybox:latest"),
                None,
            )
            .unwrap();
        for name in [
            "busybox",
            "busybox:latest",
            "docker.io/busybox",
            "docker.io/library/busybox",
            "index.docker.io/busybox:latest",
        ] {
            assert_eq!(store.resolve(name).unwrap().id, a, "{name}");
        }
        let r = store
            .remove("docker.io/busybox", false, &Default::default())
            .unwrap();
        assert_eq!(r.deleted, vec![a.clone()]);
        assert!(matches!(
            store.resolve("busybox"),
            Err(Error::NoSuchImage(_))
        ));
    }
}
