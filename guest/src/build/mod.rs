//! The image builder: a Dockerfile and a context in, an image in the store
//! out. Each `RUN` runs in a real container of this engine ([`run`]); each
//! step that changes files becomes a layer made from its overlay upper
//! folder; every step's result is cached by a content key ([`cache`]).
//!
//! - [`context`]: the contexts the CLI sent and their contents.
//! - [`cache`]: cache keys, the cache index, and why a step missed.
//! - [`exec`]: stages and steps.
//! - [`copy`]: `COPY` and `ADD`.
//! - [`fetch`]: the URLs of `ADD`.
//! - [`run`]: `RUN` containers.
//! - [`error`]: what a build fails with ([`error::BuildError`]).

pub mod cache;
pub mod context;
pub mod copy;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use servin_proto::build::{BuildEvent, BuildRequest};
use tokio::sync::mpsc::UnboundedSender;

use self::cache::Cache;
use self::context::Contexts;
use self::error::BuildError;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// How a build runs beyond its request.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Keep the `RUN` containers (Docker's `rm=false`).
    pub keep_containers: bool,
    /// Keep the container of a `RUN` step that failed (Docker's classic
    /// builder does unless `forcerm` is set, so that it can be inspected).
    pub keep_failed: bool,
    /// The network of `RUN` steps without `--network`: `default`, `host`
    /// or `none`.
    pub network: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            keep_containers: false,
            keep_failed: false,
            network: "default".to_string(),
        }
    }
}

/// A build's cancellation: fired when the client goes away.
#[derive(Clone)]
pub struct Cancel(tokio::sync::watch::Receiver<bool>);

/// Fires a [`Cancel`].
pub struct CancelHandle(tokio::sync::watch::Sender<bool>);

impl Cancel {
    /// A cancellation and its trigger.
    pub fn new() -> (Self, CancelHandle) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (Self(rx), CancelHandle(tx))
    }

    /// Whether it fired.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when it fires (never when the trigger is dropped unfired).
    pub async fn cancelled(&self) {
        let mut rx = self.0.clone();
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl CancelHandle {
    /// Fires it.
    pub fn cancel(&self) {
        let _ = self.0.send(true);
    }
}

/// The builder's state in the engine.
pub struct Builder {
    dir: PathBuf,
    /// Contexts and their contents.
    pub contexts: Contexts,
    /// The step cache.
    pub cache: Cache,
    /// One user of a `sharing=locked` cache mount at a time, by id.
    cache_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// What the last copies from the context gave, by step slot and
    /// context digest (newest last, a few kept): the next run of the same
    /// step compares with it instead of working it out again.
    copy_results: Mutex<std::collections::VecDeque<(String, Arc<copy::Flat>)>>,
}

/// How many copy results [`Builder`] keeps.
const COPY_RESULTS: usize = 4;

impl Builder {
    /// Opens (creating) the builder's state under `<root>/build`, clearing
    /// what an interrupted build left in its scratch folder.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("build");
        let tmp = dir.join("tmp");
        if tmp.exists() {
            for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
                let p = entry.path();
                crate::runtime::rootfs::unmount_all_under(&p);
                let _ = if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        for sub in ["tmp", "mounts"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        Ok(Self {
            contexts: Contexts::open(&dir)?,
            cache: Cache::open(&dir)?,
            cache_locks: Mutex::new(HashMap::new()),
            copy_results: Mutex::default(),
            dir,
        })
    }

    /// A fresh scratch folder path (not created).
    pub fn temp_path(&self, what: &str) -> PathBuf {
        let n: u64 = rand_u64();
        self.dir.join("tmp").join(format!("{what}-{n:016x}"))
    }

    fn copy_results(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(String, Arc<copy::Flat>)>> {
        self.copy_results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the copy step `slot` gave from the context `context`, if kept.
    pub fn copy_result(&self, slot: &str, context: &str) -> Option<Arc<copy::Flat>> {
        let key = format!("{slot} {context}");
        self.copy_results()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| Arc::clone(f))
    }

    /// Keeps what the copy step `slot` gave from the context `context`.
    pub fn keep_copy_result(&self, slot: &str, context: &str, flat: copy::Flat) {
        let key = format!("{slot} {context}");
        let mut kept = self.copy_results();
        kept.retain(|(k, _)| *k != key);
        kept.push_back((key, Arc::new(flat)));
        while kept.len() > COPY_RESULTS {
            kept.pop_front();
        }
    }

    /// The folder of cache mount `id`.
    pub fn cache_mount_dir(&self, id: &str) -> PathBuf {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(id.as_bytes());
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join("mounts").join(hex)
    }

    /// The lock of cache mount `id`.
    pub fn cache_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .cache_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(id.to_string()).or_default())
    }

    /// Reads a classic build's context tar into the content store; returns
    /// the Dockerfile's text and the context index's digest. The context
    /// honours its `.dockerignore` (and `<Dockerfile>.dockerignore`).
    pub fn ingest_tar(&self, tar: &Path, dockerfile: &str) -> Result<(String, String)> {
        let root = self.temp_path("context");
        let done = self.ingest_tar_at(tar, dockerfile, &root);
        let _ = std::fs::remove_dir_all(&root);
        done
    }

    fn ingest_tar_at(&self, tar: &Path, dockerfile: &str, root: &Path) -> Result<(String, String)> {
        std::fs::create_dir_all(root).map_err(Error::io("create", root))?;
        let reader = crate::image::unpack::decompressed(tar)?;
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        archive.set_unpack_xattrs(false);
        // Docker's API takes the context only as a (possibly compressed)
        // tar; its CLI wraps a Dockerfile read from stdin in one.
        let not_tar = |e: std::io::Error| {
            BuildError::Invalid(format!(
                "the build context is not a tar archive (send a Dockerfile alone as a tar \
                 holding it, as `docker build -` does): {e}"
            ))
        };
        for entry in archive.entries().map_err(not_tar)? {
            let mut entry = entry.map_err(not_tar)?;
            // `unpack_in` refuses entries that would land outside the root.
            entry
                .unpack_in(root)
                .map_err(|e| BuildError::Invalid(format!("extract the build context: {e}")))?;
        }
        let mut file = crate::api::build::dockerfile_in(root, dockerfile)?;
        // As Docker, the default name falls back to `dockerfile`.
        if dockerfile == "Dockerfile" && !file.exists() && root.join("dockerfile").is_file() {
            file = root.join("dockerfile");
        }
        let text = std::fs::read_to_string(&file).map_err(|e| {
            BuildError::Invalid(format!(
                "Cannot locate specified Dockerfile: {dockerfile} ({e})"
            ))
        })?;
        if text.is_empty() {
            return Err(BuildError::Invalid(format!(
                "the Dockerfile ({dockerfile}) cannot be empty"
            ))
            .into());
        }
        let matcher = servin_buildctx::load_for(root, &file)
            .map_err(|e| BuildError::Invalid(format!("read .dockerignore: {e}")))?;
        let (index, _) = servin_buildctx::ContextIndex::build(root, &matcher, None)
            .map_err(|e| BuildError::Invalid(format!("index the build context: {e}")))?;
        let missing = self.contexts.missing(&index);
        if !missing.is_empty() {
            let (reader, writer) = std::io::pipe().map_err(Error::io("pipe", root))?;
            let blobs = &self.contexts.blobs;
            std::thread::scope(|s| -> Result<()> {
                let packer = s.spawn(|| {
                    let w = std::io::BufWriter::with_capacity(1 << 20, writer);
                    servin_buildctx::pack(root, &index, &missing, w)
                });
                let received = blobs.receive(std::io::BufReader::with_capacity(1 << 20, reader));
                let packed = packer
                    .join()
                    .map_err(|_| BuildError::Invalid("pack the build context: panicked".into()))?;
                packed.map_err(|e| BuildError::Invalid(format!("pack the build context: {e}")))?;
                received
                    .map_err(|e| BuildError::Invalid(format!("store the build context: {e}")))?;
                Ok(())
            })?;
        }
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| BuildError::Invalid(format!("encode the context index: {e}")))?;
        let digest = index.digest();
        self.contexts.put(&digest, &bytes)?;
        Ok((text, digest))
    }

    /// Removes the build cache: the cached steps' images no name or
    /// container holds, the cache mounts, and the contents no context
    /// needs. Returns the removed images and the bytes reclaimed.
    pub async fn prune(&self, engine: &Arc<Engine>) -> Result<(Vec<String>, u64)> {
        let in_use = engine.containers.images_in_use();
        let mut deleted = Vec::new();
        for img in engine.store.images() {
            if img.build_cache
                && img.repo_tags.is_empty()
                && !in_use.contains_key(&img.id)
                && let Ok(r) = engine.store.remove(&img.id, false, &in_use)
            {
                deleted.extend(r.deleted);
            }
        }
        let store = Arc::clone(&engine.store);
        self.cache.prune(|id| store.image(id).is_some());
        let mut reclaimed = crate::image::gc::collect_garbage(engine).await?;
        let mounts = self.dir.join("mounts");
        reclaimed += dir_size(&mounts);
        let _ = std::fs::remove_dir_all(&mounts);
        std::fs::create_dir_all(&mounts).map_err(Error::io("create", &mounts))?;
        reclaimed += self.contexts.prune();
        Ok((deleted, reclaimed))
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(m) = entry.metadata() {
                if m.is_dir() {
                    stack.push(entry.path());
                } else {
                    total += m.len();
                }
            }
        }
    }
    total
}

fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The event that ends a failed build (or a dry run that would build).
pub fn failure(e: &Error) -> BuildEvent {
    match e {
        Error::Build(BuildError::WouldBuild { at, reason }) => BuildEvent::WouldBuild {
            at: at.clone(),
            reason: reason.clone(),
        },
        Error::Build(BuildError::Dockerfile { diagnostic, .. }) => BuildEvent::Failed {
            message: e.to_string(),
            at: None,
            exit_code: None,
            diagnostic: Some((**diagnostic).clone()),
        },
        Error::Build(BuildError::RunFailed { at, code, .. }) => BuildEvent::Failed {
            message: e.to_string(),
            at: Some(at.clone()),
            exit_code: Some(*code),
            diagnostic: None,
        },
        Error::Build(BuildError::Step { at, .. }) => BuildEvent::Failed {
            message: e.to_string(),
            at: Some(at.clone()),
            exit_code: None,
            diagnostic: None,
        },
        other => BuildEvent::Failed {
            message: other.full_message(),
            at: None,
            exit_code: None,
            diagnostic: None,
        },
    }
}

/// Runs the build `request`; its progress goes to `events`, ending with
/// [`BuildEvent::Built`] (or the caller sends [`failure`] of the error).
pub async fn build(
    engine: &Arc<Engine>,
    request: BuildRequest,
    options: BuildOptions,
    events: UnboundedSender<BuildEvent>,
    cancel: Cancel,
) -> Result<String> {
    exec::build(engine, request, options, events, cancel).await
}
