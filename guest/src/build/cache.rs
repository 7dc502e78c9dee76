//! The build cache: a step's key is what its result depends on (the parent
//! image, the instruction after expansion, the build args it can see, the
//! content of its sources); the index maps a key to the image it made.
//!
//! Layout under `<root>/build/`:
//! - `cache/<key hex>`: the image ID a step with that key made. A lookup
//!   reads one file: no scan of the images.
//! - `steps/<slot hex>`: the inputs of the last run of one step of one
//!   Dockerfile (its "slot"), kept to say why the next build of that step
//!   missed the cache. Secrets never reach either.
//! - `copies/<slot hex>`: the last result of one `COPY`/`ADD` step from
//!   the context ([`CopyRecord`]), so that when only some sources changed
//!   the next build writes just those on top of it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What a step's result depends on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inputs {
    /// The image the step starts from (`sha256:...`), or `scratch`.
    pub parent: String,
    /// The instruction, expanded, in a canonical form.
    pub instruction: String,
    /// The build args the step can see, with their values.
    pub args: BTreeMap<String, String>,
    /// The sources' content, by path (for `COPY`/`ADD`): the digest of
    /// each file's bytes, mode and owner. Never mtimes.
    pub sources: BTreeMap<String, String>,
    /// Other inputs (a digest of a stage's image, a URL's checksum).
    pub extra: BTreeMap<String, String>,
}

impl Inputs {
    /// The cache key.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"servin-build-step v1\0");
        for part in [&self.parent, &self.instruction] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        for map in [&self.args, &self.sources, &self.extra] {
            h.update(b"\x01");
            for (k, v) in map {
                h.update(k.as_bytes());
                h.update(b"=");
                h.update(v.as_bytes());
                h.update(b"\0");
            }
        }
        hex(&h.finalize())
    }

    /// The key of everything but the sources: two runs of a copy step with
    /// the same shape differ only in what they copy.
    pub fn shape(&self) -> String {
        Self {
            sources: BTreeMap::new(),
            ..self.clone()
        }
        .key()
    }

    /// Why a step with these inputs is not the cached run of `before`, in
    /// one line.
    pub fn why_not(&self, before: Option<&Inputs>) -> String {
        let Some(before) = before else {
            return "not built before".to_string();
        };
        if self.parent != before.parent {
            return "the step before it changed".to_string();
        }
        if self.instruction != before.instruction {
            return "the instruction changed".to_string();
        }
        let mut args: Vec<&str> = Vec::new();
        for (k, v) in &self.args {
            if before.args.get(k) != Some(v) {
                args.push(k);
            }
        }
        for k in before.args.keys() {
            if !self.args.contains_key(k) {
                args.push(k);
            }
        }
        if !args.is_empty() {
            args.sort_unstable();
            args.dedup();
            let s = if args.len() == 1 { "" } else { "s" };
            return format!("build arg{s} {} changed", args.join(", "));
        }
        if self.sources != before.sources {
            let mut changed: Vec<String> = Vec::new();
            for (path, digest) in &self.sources {
                match before.sources.get(path) {
                    Some(d) if d == digest => {}
                    Some(_) => changed.push(format!("{path} changed")),
                    None => changed.push(format!("{path} added")),
                }
            }
            for path in before.sources.keys() {
                if !self.sources.contains_key(path) {
                    changed.push(format!("{path} removed"));
                }
            }
            let shown = changed.len().min(3);
            let mut line = changed[..shown].join(", ");
            if changed.len() > shown {
                line.push_str(&format!(" and {} more", changed.len() - shown));
            }
            return line;
        }
        if self.extra != before.extra {
            let mut what: Vec<&str> = self
                .extra
                .iter()
                .filter(|(k, v)| before.extra.get(*k) != Some(v))
                .map(|(k, _)| k.as_str())
                .collect();
            what.extend(
                before
                    .extra
                    .keys()
                    .filter(|k| !self.extra.contains_key(*k))
                    .map(String::as_str),
            );
            what.sort_unstable();
            what.dedup();
            return format!("{} changed", what.join(", "));
        }
        "its cached result is gone".to_string()
    }
}

/// The last result of a `COPY`/`ADD` step from the context: what it
/// copied and onto what, so that a later run whose sources changed (and
/// nothing else) can start from it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CopyRecord {
    /// [`Inputs::shape`] of the step: everything but the sources.
    pub shape: String,
    /// The step's parent image.
    pub parent: String,
    /// The image the step made.
    pub image: String,
    /// The context index (digest) it copied from.
    pub context: String,
    /// Whether the destination was a folder in the parent.
    pub dest_was_dir: bool,
    /// How many layers of changes lie on the step's full copy in `image`
    /// (0: `image` is a full copy).
    pub deltas: u32,
}

/// A stable name for one step of one Dockerfile, across builds.
pub fn slot(identity: &str, stage: &str, step: usize) -> String {
    let mut h = Sha256::new();
    h.update(identity.as_bytes());
    h.update(b"\0");
    h.update(stage.as_bytes());
    h.update(b"\0");
    h.update(step.to_le_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a cache record: whole or not at all (a temporary file of its
/// own, renamed), but without waiting for the disk. A record a crash loses
/// only costs a step's rerun, and an fsync per step cost 5-10 ms each on a
/// busy disk, for every step of every build; concurrent builds writing the
/// same record each rename their own file.
pub(super) fn write_record(path: &Path, bytes: &[u8]) -> Result<()> {
    write_record_if(path, bytes, || true)
}

/// How many sources (summed over records) the step records kept in
/// memory may hold: a `COPY` of a 50,000-file context records each file's
/// digest, megabytes to decode at every rebuild.
const RECENT_SOURCES: usize = 200_000;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`write_record`], renaming into place only while `newest` says so.
fn write_record_if(path: &Path, bytes: &[u8], newest: impl Fn() -> bool) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", super::rand_u64()));
    let written = fs::write(&tmp, bytes)
        .map_err(Error::io("write", &tmp))
        .and_then(|()| {
            if newest() {
                fs::rename(&tmp, path).map_err(Error::io("rename", path))
            } else {
                let _ = fs::remove_file(&tmp);
                Ok(())
            }
        });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// The cache index and the step records.
pub struct Cache {
    dir: PathBuf,
    /// The step records written or read last, newest at the back.
    recent: std::sync::Mutex<std::collections::VecDeque<(String, std::sync::Arc<Inputs>)>>,
    /// The newest write of each step record, so an older one finishing
    /// late (large records are written by a thread of their own) does not
    /// replace it.
    writes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    next_write: std::sync::atomic::AtomicU64,
}

/// Step records with more sources than this are written to disk by a
/// thread of their own: a `COPY` of a large context records megabytes,
/// which the build need not wait for (the record is in memory already).
const WRITE_BEHIND_SOURCES: usize = 1_000;

#[derive(Serialize, Deserialize)]
struct Entry {
    image: String,
}

impl Cache {
    /// Opens (creating) the cache under `<root>/build`.
    pub fn open(build_dir: &Path) -> Result<Self> {
        for sub in ["cache", "steps", "copies"] {
            let p = build_dir.join(sub);
            fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        Ok(Self {
            dir: build_dir.to_path_buf(),
            recent: std::sync::Mutex::default(),
            writes: std::sync::Arc::default(),
            next_write: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The image a step with `key` made, if recorded.
    pub fn get(&self, key: &str) -> Option<String> {
        let bytes = fs::read(self.dir.join("cache").join(key)).ok()?;
        serde_json::from_slice::<Entry>(&bytes)
            .ok()
            .map(|e| e.image)
    }

    /// Records that a step with `key` made `image`.
    pub fn put(&self, key: &str, image: &str) -> Result<()> {
        let path = self.dir.join("cache").join(key);
        let bytes = serde_json::to_vec(&Entry {
            image: image.to_string(),
        })
        .map_err(Error::json(path.display().to_string()))?;
        write_record(&path, &bytes)
    }

    fn recent(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(String, std::sync::Arc<Inputs>)>>
    {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `inputs` in memory as `slot`'s newest record.
    fn keep(&self, slot: &str, inputs: std::sync::Arc<Inputs>) {
        let mut recent = self.recent();
        recent.retain(|(s, _)| s != slot);
        recent.push_back((slot.to_string(), inputs));
        let mut total: usize = recent.iter().map(|(_, i)| i.sources.len()).sum();
        while total > RECENT_SOURCES && recent.len() > 1 {
            if let Some((_, gone)) = recent.pop_front() {
                total -= gone.sources.len();
            }
        }
    }

    /// The inputs of the last run of `slot`.
    pub fn last_run(&self, slot: &str) -> Option<std::sync::Arc<Inputs>> {
        let found = self
            .recent()
            .iter()
            .find(|(s, _)| s == slot)
            .map(|(_, i)| std::sync::Arc::clone(i));
        if let Some(found) = found {
            return Some(found);
        }
        let bytes = fs::read(self.dir.join("steps").join(slot)).ok()?;
        let inputs = std::sync::Arc::new(serde_json::from_slice::<Inputs>(&bytes).ok()?);
        self.keep(slot, std::sync::Arc::clone(&inputs));
        Some(inputs)
    }

    /// Keeps `inputs` as the last run of `slot`: in memory for the next
    /// build of the same step, and on disk (by a thread of its own for a
    /// large record; one an engine stopping at that moment loses only
    /// costs the next build its "why it runs" line).
    pub fn remember(&self, slot: &str, inputs: Inputs) -> Result<()> {
        let path = self.dir.join("steps").join(slot);
        let inputs = std::sync::Arc::new(inputs);
        self.keep(slot, std::sync::Arc::clone(&inputs));
        let n = self
            .next_write
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        lock(&self.writes).insert(slot.to_string(), n);
        let writes = std::sync::Arc::clone(&self.writes);
        let slot = slot.to_string();
        let large = inputs.sources.len() > WRITE_BEHIND_SOURCES;
        let write = move || -> Result<()> {
            let bytes =
                serde_json::to_vec(&*inputs).map_err(Error::json(path.display().to_string()))?;
            let newest = || lock(&writes).get(&slot) == Some(&n);
            write_record_if(&path, &bytes, newest)
        };
        if large {
            std::thread::spawn(move || {
                if let Err(e) = write() {
                    tracing::warn!("save a build step record: {}", e.full_message());
                }
            });
            Ok(())
        } else {
            write()
        }
    }

    /// The last result of the copy step `slot`.
    pub fn last_copy(&self, slot: &str) -> Option<CopyRecord> {
        let bytes = fs::read(self.dir.join("copies").join(slot)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Keeps `record` as the last result of the copy step `slot`.
    pub fn remember_copy(&self, slot: &str, record: &CopyRecord) -> Result<()> {
        let path = self.dir.join("copies").join(slot);
        let bytes = serde_json::to_vec(record).map_err(Error::json(path.display().to_string()))?;
        write_record(&path, &bytes)
    }

    /// Forgets every entry whose image is not kept by `keep`; returns how
    /// many went.
    pub fn prune(&self, keep: impl Fn(&str) -> bool) -> usize {
        let mut gone = 0;
        let dir = self.dir.join("cache");
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            let image = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
                .map(|e| e.image);
            if image.as_deref().is_none_or(|i| !keep(i)) && fs::remove_file(&p).is_ok() {
                gone += 1;
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            parent: "sha256:aa".into(),
            instruction: "RUN make".into(),
            args: [("V".to_string(), "1".to_string())].into(),
            sources: [
                ("src/a.js".to_string(), "sha256:1".to_string()),
                ("src/b.js".to_string(), "sha256:2".to_string()),
            ]
            .into(),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn keys_follow_every_input() {
        let a = inputs();
        assert_eq!(a.key(), inputs().key());
        let mut b = inputs();
        b.parent = "sha256:bb".into();
        assert_ne!(a.key(), b.key());
        let mut c = inputs();
        c.args.insert("V".into(), "2".into());
        assert_ne!(a.key(), c.key());
        let mut d = inputs();
        d.sources.insert("src/a.js".into(), "sha256:9".into());
        assert_ne!(a.key(), d.key());
        // The separators keep an arg and a source with the same text apart.
        let mut e = Inputs::default();
        e.args.insert("x".into(), "y".into());
        let mut f = Inputs::default();
        f.sources.insert("x".into(), "y".into());
        assert_ne!(e.key(), f.key());
    }

    #[test]
    fn says_why_in_one_line() {
        let a = inputs();
        assert_eq!(a.why_not(None), "not built before");
        let mut b = inputs();
        b.parent = "sha256:bb".into();
        assert_eq!(b.why_not(Some(&a)), "the step before it changed");
        let mut c = inputs();
        c.args.insert("V".into(), "2".into());
        assert_eq!(c.why_not(Some(&a)), "build arg V changed");
        let mut d = inputs();
        d.sources.insert("src/a.js".into(), "sha256:9".into());
        d.sources.remove("src/b.js");
        d.sources.insert("src/c.js".into(), "sha256:3".into());
        assert_eq!(
            d.why_not(Some(&a)),
            "src/a.js changed, src/c.js added, src/b.js removed"
        );
        assert_eq!(a.why_not(Some(&a)), "its cached result is gone");
    }

    #[test]
    fn index_round_trips_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let k = inputs().key();
        assert_eq!(cache.get(&k), None);
        cache.put(&k, "sha256:img").unwrap();
        assert_eq!(cache.get(&k).as_deref(), Some("sha256:img"));
        let s = slot("Dockerfile", "0", 2);
        cache.remember(&s, inputs()).unwrap();
        assert_eq!(cache.last_run(&s).as_deref(), Some(&inputs()));
        // And from the disk, as a new engine reads it.
        let again = Cache::open(dir.path()).unwrap();
        assert_eq!(again.last_run(&s).as_deref(), Some(&inputs()));
        assert_eq!(cache.prune(|i| i == "sha256:img"), 0);
        assert_eq!(cache.prune(|_| false), 1);
        assert_eq!(cache.get(&k), None);
    }
}
