//! Syncing one container's workspace: scan (all of it, or the paths a
//! watcher saw change), compare with the index, send the difference as
//! one batch, record what the engine confirmed.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use servin_proto::workspace::{BatchHeader, WORKSPACE_LABEL};
use sha2::{Digest, Sha256};

use super::SyncError;
use super::index::{Entry, Index};
use super::matcher::Matcher;
use super::plan::{self, Diff};
use super::tree::{self, Kind, Node, Tree};
use crate::client::Engine;

/// Files up to this size are read whole before they are sent, so their
/// size and digest are those of the bytes sent.
const WHOLE: u64 = 64 * 1024 * 1024;

/// One container's synced workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The project's name.
    pub project: String,
    /// The container's key in the file.
    pub container: String,
    /// The workspace volume's engine name.
    pub volume: String,
    /// The host folder.
    pub source: PathBuf,
    /// Where the copy appears in the container.
    pub target: String,
    /// The workspace's `ignore` patterns.
    pub ignore: Vec<String>,
    /// The owner of the copy's files.
    pub uid: u32,
    /// Their group.
    pub gid: u32,
    /// Where the index is kept.
    pub index_path: PathBuf,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Paths written.
    pub written: usize,
    /// Paths removed.
    pub deleted: usize,
    /// Bytes of file content sent.
    pub bytes: u64,
    /// Paths not synced, with why (refused on the host, or failed in the
    /// engine).
    pub failed: Vec<(String, String)>,
    /// Paths written or removed, for the follow-up's trigger.
    pub changed: Vec<String>,
}

impl Report {
    /// Whether the batch changed anything in the copy.
    pub fn changed_anything(&self) -> bool {
        self.written > 0 || self.deleted > 0
    }
}

/// A workspace with its matcher and index, ready to sync.
pub struct Syncer {
    pub ws: Workspace,
    matcher: Matcher,
    index: Index,
    /// The next batch sweeps the temporary files of an interrupted one.
    sweep: bool,
    /// The index changed since it was last written.
    dirty: bool,
    saved_at: Instant,
    /// The paths not synced as last reported, with why: a full rescan
    /// reports again only what is new, so a watcher does not repeat the
    /// same warnings on every rescan.
    said: BTreeMap<String, String>,
}

/// While watching, the index is written at most this often (and when the
/// watch ends): writing it after every batch would cost a large tree's
/// whole index per keystroke.
const SAVE_EVERY: Duration = Duration::from_secs(2);

impl Syncer {
    /// Reads the workspace's rules and index; when the engine's copy is
    /// not the one the index describes (it was removed and made again, or
    /// the index is missing), the index becomes the copy's manifest.
    pub fn open(engine: &Engine, ws: Workspace) -> Result<Self, SyncError> {
        if !ws.source.is_dir() {
            return Err(SyncError::Source(ws.source.clone()));
        }
        let matcher = Matcher::new(&ws.source, &ws.ignore)?;
        let mut index = Index::load(&ws.index_path);
        let owner = (ws.uid, ws.gid);
        let interrupted = marker(&ws.index_path).exists();
        match engine.workspace_generation(&ws.volume)? {
            None => index = Index::default(),
            Some(g) if g == index.generation && index.owner == owner && !interrupted => {}
            Some(_) => {
                let m = engine.workspace_manifest(&ws.volume)?;
                index = Index::from_manifest(&m, owner);
            }
        }
        index.owner = owner;
        Ok(Self {
            ws,
            matcher,
            index,
            sweep: interrupted,
            dirty: false,
            saved_at: Instant::now(),
            said: BTreeMap::new(),
        })
    }

    /// The matcher (shared with the watcher and the rebuild trigger).
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Reads the ignore rules again (a rule file changed).
    pub fn reload_rules(&mut self) -> Result<(), SyncError> {
        self.matcher = Matcher::new(&self.ws.source, &self.ws.ignore)?;
        Ok(())
    }

    /// Sends what changed: everything (`scope` `None`) or the paths in
    /// `scope` and below them. Nothing is sent when nothing changed.
    pub fn sync(&mut self, engine: &Engine, scope: Option<&[String]>) -> Result<Report, SyncError> {
        if !self.ws.source.is_dir() {
            return Err(SyncError::Source(self.ws.source.clone()));
        }
        let tree = match scope {
            None => tree::scan(&self.matcher),
            Some(paths) => self.scan_scope(paths),
        };
        let mut report = Report {
            failed: tree.refused.clone(),
            ..Report::default()
        };
        let mut d = plan::diff(&self.index.entries, &tree.nodes, scope);
        self.settle_checks(&mut d, &tree.nodes);
        if d.delete.is_empty() && d.put.is_empty() && !self.sweep {
            self.mark()?;
            report.failed = news(&mut self.said, scope, std::mem::take(&mut report.failed));
            return Ok(report);
        }
        let header = BatchHeader {
            uid: self.ws.uid,
            gid: self.ws.gid,
            labels: HashMap::from([
                (
                    servin_proto::labels::PROJECT.to_string(),
                    self.ws.project.clone(),
                ),
                (WORKSPACE_LABEL.to_string(), self.ws.container.clone()),
                (
                    servin_proto::labels::VERSION.to_string(),
                    crate::project::desired::VERSION.to_string(),
                ),
            ]),
            delete: d.delete.clone(),
            sweep: self.sweep,
        };
        let puts: Vec<(String, Node)> = d
            .put
            .iter()
            .filter_map(|p| tree.nodes.get(p).map(|n| (p.clone(), n.clone())))
            .collect();
        let root = self.ws.source.clone();
        // Marked before the batch leaves: if no answer is recorded, the
        // next sync compares with the engine's copy and sweeps it.
        let flag = marker(&self.ws.index_path);
        if let Some(dir) = flag.parent() {
            std::fs::create_dir_all(dir).map_err(|source| SyncError::Index {
                path: flag.clone(),
                source,
            })?;
        }
        std::fs::write(&flag, b"").map_err(|source| SyncError::Index {
            path: flag.clone(),
            source,
        })?;
        let sent = engine.workspace_batch(&self.ws.volume, move |w| {
            write_batch(w, &header, &root, &puts)
        });
        let (outcome, made) = match sent {
            Ok(v) => v,
            Err(e) => {
                // The engine may hold part of the batch: compare with its
                // copy next time, and sweep it.
                let m = engine.workspace_manifest(&self.ws.volume);
                if let Ok(m) = m {
                    self.index = Index::from_manifest(&m, self.index.owner);
                    self.dirty = true;
                }
                self.sweep = true;
                return Err(e.into());
            }
        };
        self.sweep = false;
        let engine_failed: BTreeMap<String, String> = outcome
            .failed
            .iter()
            .map(|f| (f.path.clone(), f.message.clone()))
            .collect();
        // Record what the engine confirmed.
        if outcome.generation != self.index.generation {
            self.index.generation = outcome.generation.clone();
        }
        for top in &d.delete {
            if engine_failed.contains_key(top) {
                continue;
            }
            self.index.entries.retain(|p, _| !plan::under(p, top));
            report.deleted += 1;
            report.changed.push(top.clone());
        }
        for (path, digest) in &made.sent {
            if let Some(m) = engine_failed.get(path) {
                report.failed.push((path.clone(), m.clone()));
                self.index.entries.remove(path);
                continue;
            }
            if let Some(n) = made.nodes.get(path) {
                self.index
                    .entries
                    .insert(path.clone(), Entry::of(n, digest.as_deref()));
                report.written += 1;
                report.changed.push(path.clone());
            }
        }
        for (path, why) in made.failed {
            report.failed.push((path, why));
        }
        for (path, m) in engine_failed {
            if !made.sent.iter().any(|(p, _)| *p == path) && !d.delete.contains(&path) {
                report.failed.push((path, m));
            }
        }
        report.bytes = made.bytes;
        report.failed = news(&mut self.said, scope, std::mem::take(&mut report.failed));
        // An index not yet written is only stale: a sync started from it
        // sends again what changed since, nothing is lost.
        self.mark()?;
        let _ = std::fs::remove_file(&flag);
        Ok(report)
    }

    /// The tree below the paths of `scope` (each a path that changed).
    fn scan_scope(&self, scope: &[String]) -> Tree {
        let mut t = Tree::default();
        for rel in scope {
            let Some(n) = tree::node(&self.matcher, rel, &mut t.refused) else {
                continue;
            };
            let is_dir = n.kind == Kind::Dir;
            t.nodes.insert(rel.clone(), n);
            if is_dir {
                let below = tree::scan_below(&self.matcher, rel);
                t.refused.extend(below.refused);
                t.nodes.extend(below.nodes);
            }
        }
        t
    }

    /// Hashes the files whose stat changed but not their size: the same
    /// content only refreshes the index; other content is sent.
    fn settle_checks(&mut self, d: &mut Diff, nodes: &BTreeMap<String, Node>) {
        for path in std::mem::take(&mut d.check) {
            let Some(n) = nodes.get(&path) else { continue };
            let same = match (
                digest_of(&self.ws.source.join(&path)),
                self.index.entries.get(&path),
            ) {
                (Ok(now), Some(e)) => {
                    e.digest.map(|d| d.to_string()).as_deref() == Some(now.as_str())
                        && e.mode == n.mode
                }
                _ => false,
            };
            if same {
                if let Some(e) = self.index.entries.get_mut(&path) {
                    let digest = e.digest;
                    *e = Entry::of(n, None);
                    e.digest = digest;
                }
            } else {
                d.put.push(path);
            }
        }
        d.put.sort();
    }

    /// Notes that the index changed; writes it when it was last written
    /// [`SAVE_EVERY`] ago.
    fn mark(&mut self) -> Result<(), SyncError> {
        self.dirty = true;
        if self.saved_at.elapsed() >= SAVE_EVERY {
            self.save()?;
        }
        Ok(())
    }

    /// Writes the index if it changed.
    pub fn flush(&mut self) -> Result<(), SyncError> {
        if self.dirty {
            self.save()?;
        }
        Ok(())
    }

    /// Whether the index changed since it was written, and how long ago
    /// that was.
    pub fn unsaved_for(&self) -> Option<Duration> {
        self.dirty.then(|| self.saved_at.elapsed())
    }

    fn save(&mut self) -> Result<(), SyncError> {
        self.index
            .save(&self.ws.index_path)
            .map_err(|source| SyncError::Index {
                path: self.ws.index_path.clone(),
                source,
            })?;
        self.dirty = false;
        self.saved_at = Instant::now();
        Ok(())
    }
}

/// The file that says a batch was sent and its answer not recorded.
fn marker(index: &std::path::Path) -> PathBuf {
    index.with_extension("inflight")
}

/// What writing a batch learnt.
#[derive(Debug, Default)]
struct Made {
    /// Paths put in the batch, with the digest of each file's content.
    sent: Vec<(String, Option<String>)>,
    /// The nodes sent (a file's stat as read).
    nodes: BTreeMap<String, Node>,
    /// Paths that could not be read, with why.
    failed: Vec<(String, String)>,
    /// Bytes of content.
    bytes: u64,
}

/// Writes the batch: header, then the tar of `puts` read from `root`.
fn write_batch(
    w: &mut dyn Write,
    header: &BatchHeader,
    root: &std::path::Path,
    puts: &[(String, Node)],
) -> std::io::Result<Made> {
    let head = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    let len = u32::try_from(head.len()).map_err(std::io::Error::other)?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&head)?;
    let mut made = Made::default();
    let mut tar = tar::Builder::new(w);
    for (path, node) in puts {
        let mut h = tar::Header::new_gnu();
        h.set_mode(node.mode);
        h.set_mtime(u64::try_from(node.mtime_ns / 1_000_000_000).unwrap_or(0));
        match node.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, path, std::io::empty())?;
                made.sent.push((path.clone(), None));
            }
            Kind::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, path, node.target.as_deref().unwrap_or_default())?;
                made.sent.push((path.clone(), None));
            }
            Kind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                let full = root.join(path);
                let mut f = match std::fs::File::open(&full) {
                    Ok(f) => f,
                    Err(e) => {
                        made.failed.push((path.clone(), format!("open: {e}")));
                        continue;
                    }
                };
                let digest = if node.size <= WHOLE {
                    let mut data = Vec::with_capacity(usize::try_from(node.size).unwrap_or(0));
                    if let Err(e) = f.read_to_end(&mut data) {
                        made.failed.push((path.clone(), format!("read: {e}")));
                        continue;
                    }
                    h.set_size(data.len() as u64);
                    tar.append_data(&mut h, path, data.as_slice())?;
                    made.bytes += data.len() as u64;
                    // The size read may differ from the scan's: the index
                    // then keeps a stat that no longer matches, and the
                    // next scan looks again.
                    Some(hex_digest(&data))
                } else {
                    h.set_size(node.size);
                    let mut hashing = Hashing {
                        inner: f.take(node.size),
                        hash: Sha256::new(),
                        read: 0,
                    };
                    tar.append_data(&mut h, path, &mut hashing)?;
                    made.bytes += node.size;
                    let d = hashing.finish();
                    (hashing_read_all(&d, node.size)).then_some(d.0)
                };
                made.sent.push((path.clone(), digest));
            }
        }
        made.nodes.insert(path.clone(), node.clone());
    }
    tar.finish()?;
    Ok(made)
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

impl<R> Hashing<R> {
    fn finish(&mut self) -> (String, u64) {
        let h = std::mem::take(&mut self.hash);
        (hex(&h.finalize()), self.read)
    }
}

fn hashing_read_all(d: &(String, u64), size: u64) -> bool {
    d.1 == size
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(7 + bytes.len() * 2);
    s.push_str("sha256:");
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// `sha256:<hex>` of `data`.
pub fn hex_digest(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `sha256:<hex>` of the file at `path`.
pub fn digest_of(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Hashing {
        inner: &mut f,
        hash: Sha256::new(),
        read: 0,
    };
    std::io::copy(&mut h, &mut std::io::sink())?;
    Ok(h.finish().0)
}

/// The paths not synced that a batch reports: after a full scan,
/// those not reported before with the same reason; after a scoped
/// one, all of them (their paths were just changed).
fn news(
    said: &mut BTreeMap<String, String>,
    scope: Option<&[String]>,
    failed: Vec<(String, String)>,
) -> Vec<(String, String)> {
    match scope {
        None => {
            let before = std::mem::take(said);
            *said = failed.iter().cloned().collect();
            failed
                .into_iter()
                .filter(|(p, why)| before.get(p) != Some(why))
                .collect()
        }
        Some(paths) => {
            said.retain(|p, _| !paths.iter().any(|top| plan::under(p, top)));
            said.extend(failed.iter().cloned());
            failed
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn a_full_scan_reports_a_path_not_synced_once_a_changed_one_always() {
        let mut said = BTreeMap::new();
        let f = |p: &str, why: &str| (p.to_string(), why.to_string());
        let link = f("escape", "points outside");
        // The first full scan says it; the next full scans do not.
        assert_eq!(
            super::news(&mut said, None, vec![link.clone()]),
            vec![link.clone()]
        );
        assert!(super::news(&mut said, None, vec![link.clone()]).is_empty());
        // A new reason is said.
        let other = f("escape", "unreadable");
        assert_eq!(
            super::news(&mut said, None, vec![other.clone()]),
            vec![other.clone()]
        );
        // A scoped batch that touched it says it again.
        let scope = ["escape".to_string()];
        assert_eq!(
            super::news(&mut said, Some(&scope), vec![other.clone()]),
            vec![other.clone()]
        );
        assert!(super::news(&mut said, None, vec![other.clone()]).is_empty());
        // Fixed, then broken again: said again.
        assert!(super::news(&mut said, Some(&scope), vec![]).is_empty());
        assert_eq!(
            super::news(&mut said, None, vec![other.clone()]),
            vec![other]
        );
        // Fixed and seen by a full scan: forgotten too.
        assert!(super::news(&mut said, None, vec![]).is_empty());
        assert_eq!(super::news(&mut said, None, vec![link.clone()]), vec![link]);
    }

    #[test]
    fn digests_are_sha256_in_lower_hex() {
        assert_eq!(
            super::hex_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            super::hex_digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
