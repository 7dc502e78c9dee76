//! The build cache: a step's key is what its result depends on (the parent
//! image, the instruction after expansion, the build args it can see, the
//! content of its sources); the index maps a key to the image it made.
//!
//! Layout under `<root>/build/`:
//! - `cache/<key hex>`: the image ID a step with that key made. A lookup
//!   reads one file: no scan of the images.
//! - `steps/<slot hex>`: the inputs of the last run of one step of one
//!   Dockerfile (its "slot"), kept to say why the next build of that step
//!   missed the cache. Secrets never reach either. A small JSON head, then
//!   the sources as a compact sorted list ([`SourceList`]): a `COPY` of
//!   50,000 files is compared with its last run, keyed and recorded in a
//!   few milliseconds. A record of an older form reads as none ("not
//!   built before").
//! - `copies/<slot hex>`: the last result of one `COPY`/`ADD` step from
//!   the context ([`CopyRecord`]), so that when only some sources changed
//!   the next build writes just those on top of it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use servin_buildctx::select::sources::{Change, SourceList};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What a step's result depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// The image the step starts from (`sha256:...`), or `scratch`.
    pub parent: String,
    /// The instruction, expanded, in a canonical form.
    pub instruction: String,
    /// The build args the step can see, with their values.
    pub args: BTreeMap<String, String>,
    /// The sources (for `COPY`/`ADD` from the context), by path: each
    /// entry's kind, mode, owner and content digest or link target. Never
    /// mtimes.
    pub sources: SourceList,
    /// Other inputs (a digest of a stage's image, a URL's checksum).
    pub extra: BTreeMap<String, String>,
}

/// What a step record holds besides its sources.
#[derive(Serialize, Deserialize)]
struct RecordHead {
    parent: String,
    instruction: String,
    args: BTreeMap<String, String>,
    extra: BTreeMap<String, String>,
}

/// Marks a step record's binary form. A record of an older form (JSON)
/// does not start with it, and reads as no record.
const RECORD_MAGIC: &[u8] = b"servin-step-record 2\n";

impl Inputs {
    /// The cache key.
    pub fn key(&self) -> String {
        self.hash(Some(&self.sources.digest()))
    }

    /// The key of everything but the sources: two runs of a copy step with
    /// the same shape differ only in what they copy.
    pub fn shape(&self) -> String {
        self.hash(None)
    }

    fn hash(&self, sources: Option<&[u8; 32]>) -> String {
        let mut h = Sha256::new();
        h.update(b"servin-build-step v2\0");
        for part in [&self.parent, &self.instruction] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        let map = |h: &mut Sha256, map: &BTreeMap<String, String>| {
            h.update(b"\x01");
            for (k, v) in map {
                h.update(k.as_bytes());
                h.update(b"=");
                h.update(v.as_bytes());
                h.update(b"\0");
            }
        };
        map(&mut h, &self.args);
        match sources {
            Some(digest) => {
                h.update(b"\x02");
                h.update(digest);
            }
            None => h.update(b"\x03"),
        }
        map(&mut h, &self.extra);
        hex(&h.finalize())
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
        if let Some(line) = sources_changed(&self.sources, &before.sources) {
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

    /// The step record's bytes: a head in JSON, then the sources in their
    /// binary form (a large `COPY` records 50,000 of them).
    fn encode(&self) -> std::result::Result<Vec<u8>, serde_json::Error> {
        let head = serde_json::to_vec(&RecordHead {
            parent: self.parent.clone(),
            instruction: self.instruction.clone(),
            args: self.args.clone(),
            extra: self.extra.clone(),
        })?;
        let sources = self.sources.encode();
        let mut out = Vec::with_capacity(RECORD_MAGIC.len() + 8 + head.len() + sources.len());
        out.extend_from_slice(RECORD_MAGIC);
        out.extend_from_slice(&(head.len() as u64).to_le_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(&sources);
        Ok(out)
    }

    /// Reads what [`Inputs::encode`] wrote; `None` for anything else (a
    /// record of an older form, a damaged one).
    fn decode(bytes: &[u8]) -> Option<Inputs> {
        let rest = bytes.strip_prefix(RECORD_MAGIC)?;
        let (len, rest) = rest.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
        if len > rest.len() {
            return None;
        }
        let (head, sources) = rest.split_at(len);
        let head: RecordHead = serde_json::from_slice(head).ok()?;
        Some(Inputs {
            parent: head.parent,
            instruction: head.instruction,
            args: head.args,
            sources: SourceList::decode(sources).ok()?,
            extra: head.extra,
        })
    }
}

/// How many changed sources the "why it runs" line names.
const SHOWN_CHANGES: usize = 3;

/// What changed from the sources `before` to `now`, in one line (changed
/// and added paths in path order, then removed ones; the first three
/// named, the rest counted), or `None` when nothing did. One merge pass
/// over the two sorted lists.
fn sources_changed(now: &SourceList, before: &SourceList) -> Option<String> {
    let mut changed: Vec<String> = Vec::new();
    let mut changed_count = 0usize;
    let mut removed: Vec<&str> = Vec::new();
    let mut removed_count = 0usize;
    for c in now.diff(before) {
        match c {
            Change::Changed(_, path, _, _) | Change::Added(_, path, _) => {
                if changed.len() < SHOWN_CHANGES {
                    let how = if matches!(c, Change::Added(..)) {
                        "added"
                    } else {
                        "changed"
                    };
                    changed.push(format!("{path} {how}"));
                }
                changed_count += 1;
            }
            Change::Removed(_, path, _) => {
                if removed.len() < SHOWN_CHANGES {
                    removed.push(path);
                }
                removed_count += 1;
            }
        }
    }
    let total = changed_count + removed_count;
    if total == 0 {
        return None;
    }
    for path in removed {
        if changed.len() == SHOWN_CHANGES {
            break;
        }
        changed.push(format!("{path} removed"));
    }
    let mut line = changed.join(", ");
    if total > changed.len() {
        line.push_str(&format!(" and {} more", total - changed.len()));
    }
    Some(line)
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
    /// With `deltas` above 0: that full copy, on which the changes since
    /// can be written again as one layer when they pile up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<CopyBase>,
}

/// A copy step's full copy (a [`CopyRecord`] with no layer of changes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CopyBase {
    /// The image the full copy made.
    pub image: String,
    /// The context index (digest) it copied from.
    pub context: String,
    /// Whether the destination was a folder in the parent.
    pub dest_was_dir: bool,
}

impl CopyRecord {
    /// The full copy this record's changes lie on, as a record of its
    /// own: all the changes since it go onto it as one layer.
    pub fn rebased(&self) -> Option<CopyRecord> {
        let b = self.base.as_ref()?;
        Some(CopyRecord {
            shape: self.shape.clone(),
            parent: self.parent.clone(),
            image: b.image.clone(),
            context: b.context.clone(),
            dest_was_dir: b.dest_was_dir,
            deltas: 0,
            base: None,
        })
    }

    /// The full copy a layer of changes written onto this record's result
    /// lies on: this one's base, or this record when it is a full copy.
    pub fn base_for_next(&self) -> Option<CopyBase> {
        if self.deltas == 0 {
            return Some(CopyBase {
                image: self.image.clone(),
                context: self.context.clone(),
                dest_was_dir: self.dest_was_dir,
            });
        }
        self.base.clone()
    }
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
        let inputs = std::sync::Arc::new(Inputs::decode(&bytes)?);
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
            let bytes = inputs
                .encode()
                .map_err(Error::json(path.display().to_string()))?;
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
    use servin_buildctx::{Entry, EntryKind};

    use super::*;

    fn file(path: &str, content: u8) -> Entry {
        Entry::plain_file(
            path,
            1,
            format!("sha256:{}", format!("{content:02x}").repeat(32)),
        )
    }

    fn sources(entries: &[Entry]) -> SourceList {
        SourceList::of_entries(entries)
    }

    fn inputs() -> Inputs {
        Inputs {
            parent: "sha256:aa".into(),
            instruction: "RUN make".into(),
            args: [("V".to_string(), "1".to_string())].into(),
            sources: sources(&[file("src/a.js", 1), file("src/b.js", 2)]),
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
        d.sources = sources(&[file("src/a.js", 9), file("src/b.js", 2)]);
        assert_ne!(a.key(), d.key());
        // The separators keep an arg and an extra input with the same
        // text apart.
        let mut e = Inputs::default();
        e.args.insert("x".into(), "y".into());
        let mut f = Inputs::default();
        f.extra.insert("x".into(), "y".into());
        assert_ne!(e.key(), f.key());
        // The shape leaves the sources out, and only them.
        assert_eq!(a.shape(), d.shape());
        assert_ne!(a.shape(), b.shape());
        assert_ne!(a.shape(), a.key());
    }

    #[test]
    fn source_keys_follow_content_mode_and_owner_never_mtime() {
        let key = |e: Entry| {
            Inputs {
                sources: sources(&[e, file("src/b.js", 2)]),
                ..inputs()
            }
            .key()
        };
        let base = key(file("src/a.js", 1));
        let mut touched = file("src/a.js", 1);
        touched.mtime_ns = 5_000_000_000;
        assert_eq!(key(touched), base);
        assert_ne!(key(file("src/a.js", 3)), base);
        let mut mode = file("src/a.js", 1);
        mode.mode = 0o600;
        assert_ne!(key(mode), base);
        let mut owner = file("src/a.js", 1);
        owner.uid = 1000;
        assert_ne!(key(owner), base);
        let mut group = file("src/a.js", 1);
        group.gid = 1000;
        assert_ne!(key(group), base);
        let link = |t: &str| Entry {
            kind: EntryKind::Symlink { target: t.into() },
            digest: None,
            ..file("src/a.js", 1)
        };
        assert_ne!(key(link("x")), key(link("y")));
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
        d.sources = sources(&[file("src/a.js", 9), file("src/c.js", 3)]);
        assert_eq!(
            d.why_not(Some(&a)),
            "src/a.js changed, src/c.js added, src/b.js removed"
        );
        assert_eq!(a.why_not(Some(&a)), "its cached result is gone");
        let mut touched = inputs();
        touched.sources = sources(&[
            Entry {
                mtime_ns: 7,
                ..file("src/a.js", 1)
            },
            file("src/b.js", 2),
        ]);
        assert_eq!(touched.why_not(Some(&a)), "its cached result is gone");
    }

    #[test]
    fn names_three_changes_and_counts_the_rest() {
        let before: Vec<Entry> = (0..10).map(|i| file(&format!("f{i}"), 1)).collect();
        let mut now = before.clone();
        now[2] = file("f2", 2);
        now[7] = file("f7", 2);
        now.remove(5);
        now.remove(0);
        now.push(file("g", 1));
        let line = sources_changed(&sources(&now), &sources(&before)).unwrap();
        assert_eq!(line, "f2 changed, f7 changed, g added and 2 more");
        let only_removed = sources_changed(&sources(&before[..8]), &sources(&before)).unwrap();
        assert_eq!(only_removed, "f8 removed, f9 removed");
        let many = sources_changed(&SourceList::default(), &sources(&before)).unwrap();
        assert_eq!(many, "f0 removed, f1 removed, f2 removed and 7 more");
        assert_eq!(sources_changed(&sources(&now), &sources(&now)), None);
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

    #[test]
    fn records_of_the_old_form_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let s = slot("Dockerfile", "0", 3);
        let path = dir.path().join("steps").join(&s);
        Cache::open(dir.path()).unwrap();
        let old = r#"{"parent":"sha256:aa","instruction":"COPY","args":{},"sources":{"a":"sha256:1 644 0:0 "},"extra":{}}"#;
        fs::write(&path, old).unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert!(cache.last_run(&s).is_none());
        assert_eq!(
            inputs().why_not(cache.last_run(&s).as_deref()),
            "not built before"
        );
        // Nor does a damaged record of the new form.
        let mut bytes = inputs().encode().unwrap();
        bytes.truncate(bytes.len() - 3);
        fs::write(&path, &bytes).unwrap();
        assert!(Cache::open(dir.path()).unwrap().last_run(&s).is_none());
        assert_eq!(
            Inputs::decode(&inputs().encode().unwrap()).as_ref(),
            Some(&inputs())
        );
    }
}
