//! `COPY` and `ADD`: the sources (from the context's content store, from
//! another stage's or image's root, or here-documents) become a tar stream
//! named as Docker places them, extracted into the step's root with the
//! same in-root extraction as `docker cp` (symlinks in the image resolve
//! inside it, never outside).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use servin_buildctx::select::sources::{
    Change, PathTable, PathTableBuilder, content_bytes_of_digest as digest_bytes,
};
use servin_buildctx::{BlobStore, ContextIndex, EntryKind, Selection};

use crate::container::archive_tar::{self, ExtractOptions};

/// Where the sources come from.
pub enum Source<'a> {
    /// The build context.
    Context {
        /// Its index.
        index: &'a ContextIndex,
        /// The contents.
        blobs: &'a BlobStore,
    },
    /// The root folder of another stage or image (mounted read-only).
    Root(&'a Path),
}

/// One `COPY`/`ADD`, expanded.
#[derive(Debug, Clone)]
pub struct CopyJob {
    /// Sources as written (paths or globs).
    pub sources: Vec<String>,
    /// Here-documents: (file name, content).
    pub heredocs: Vec<(String, String)>,
    /// Destination, absolute (the working folder already joined).
    pub dest: String,
    /// Whether the destination was written with a trailing `/`.
    pub dest_is_dir: bool,
    /// `--chown`, resolved.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// `ADD`: extract local tar archives.
    pub extract_archives: bool,
    /// `ADD`: URLs, downloaded before the copy (never extracted).
    pub urls: Vec<super::fetch::UrlSource>,
}

impl CopyJob {
    /// Whether a run of this job (from the context) can be redone as the
    /// changes since its previous run: it has context sources, and no
    /// downloads. (`ADD`'s archives are refused later, by
    /// [`copy_changes`].)
    pub fn redone_as_changes(&self) -> bool {
        !self.sources.is_empty() && self.urls.is_empty()
    }
}

/// One tar entry to write: where it goes (relative to a destination
/// folder) and what it is.
enum Item<'a> {
    /// An entry of the context, under its name (below a copied folder,
    /// its path with the folder's taken off: no allocation per entry).
    Context(Cow<'a, str>, &'a servin_buildctx::Entry),
    Data {
        name: String,
        data: Vec<u8>,
        mode: u32,
    },
    /// A downloaded URL: mode 0600, the server's time.
    File {
        name: String,
        path: std::path::PathBuf,
        mtime: u64,
    },
}

fn fail(what: impl std::fmt::Display) -> String {
    what.to_string()
}

fn base(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}

fn parent(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => trimmed[..i].to_string(),
    }
}

fn is_dir_in(root: &OwnedFd, path: &str) -> bool {
    archive_tar::is_dir(root, path)
}

/// Copies `job`'s sources from `source` into the root mounted at `target`.
/// Returns whether the destination already was a folder there (which
/// decides, with the sources' count, whether a file keeps its name).
pub fn copy_into(target: &Path, job: &CopyJob, source: &Source<'_>) -> Result<bool, String> {
    copy_into_keeping(target, job, source, false).map(|(dest_was_dir, _)| dest_was_dir)
}

/// [`copy_into`]; with `keep`, also what a copy from the context gave,
/// as [`copy_changes`] compares it (its next run then need not work that
/// out again from this run's context).
pub fn copy_into_keeping(
    target: &Path,
    job: &CopyJob,
    source: &Source<'_>,
    keep: bool,
) -> Result<(bool, Option<Flat>), String> {
    let root = archive_tar::open_root(target).map_err(|e| fail(format!("open the root: {e}")))?;
    let dest_was_dir = is_dir_in(&root, &job.dest);
    let mut kept = None;
    match source {
        Source::Context { index, blobs } => {
            let plan = plan_context(job, index, dest_was_dir)?;
            if keep && !job.extract_archives {
                kept = Some(flatten(&plan, job.chmod));
            }
            write_plan(target, &root, job, plan, blobs)?;
        }
        Source::Root(from) => copy_root(target, &root, job, from)?,
    }
    Ok((dest_was_dir, kept))
}

/// Ensures `dir` exists in the root, owned as `owner` says (root else).
fn ensure_dir(target: &Path, dir: &str, owner: Option<(u32, u32)>) -> Result<(), String> {
    let (uid, gid) = owner.unwrap_or((0, 0));
    crate::runtime::rootfs::ensure_dir_in_root(target, dir, uid, gid).map_err(|e| e.full_message())
}

/// Where each source entry of a context copy lands: items per
/// destination folder, named as Docker places them. `dest_was_dir` says
/// whether the destination was a folder in the step's parent.
fn plan_context<'a>(
    job: &CopyJob,
    index: &'a ContextIndex,
    dest_was_dir: bool,
) -> Result<Vec<(String, Vec<Item<'a>>)>, String> {
    let mut selections: Vec<Selection<'_>> = Vec::new();
    for src in &job.sources {
        selections.extend(index.select(src).map_err(fail)?);
    }
    let count = selections.len() + job.heredocs.len() + job.urls.len();
    let into_dir = job.dest_is_dir || count > 1 || dest_was_dir;
    // Items per destination folder.
    let mut plan: Vec<(String, Vec<Item<'_>>)> = Vec::new();
    for sel in &selections {
        let top_is_dir = sel.root.is_empty()
            || sel
                .entries
                .first()
                .is_none_or(|e| e.path != sel.root || e.kind == EntryKind::Dir);
        if top_is_dir {
            // A folder's contents go into the destination folder.
            let mut items = Vec::new();
            for e in &sel.entries {
                if e.path == sel.root {
                    continue;
                }
                let rel = if sel.root.is_empty() {
                    e.path.as_str()
                } else {
                    e.path
                        .strip_prefix(sel.root.as_str())
                        .and_then(|r| r.strip_prefix('/'))
                        .unwrap_or(&e.path)
                };
                items.push(Item::Context(Cow::Borrowed(rel), e));
            }
            plan.push((job.dest.clone(), items));
        } else if let Some(e) = sel.entries.first() {
            let (dir, name) = if into_dir {
                (job.dest.clone(), base(&e.path))
            } else {
                (parent(&job.dest), base(&job.dest))
            };
            plan.push((dir, vec![Item::Context(Cow::Owned(name), e)]));
        }
    }
    for u in &job.urls {
        let Some(f) = &u.fetched else {
            return Err(fail(format!("{} was not downloaded", u.url)));
        };
        let (dir, file) = if into_dir {
            (job.dest.clone(), super::fetch::file_name(&u.url))
        } else {
            (parent(&job.dest), base(&job.dest))
        };
        plan.push((
            dir,
            vec![Item::File {
                name: file,
                path: f.path.clone(),
                mtime: f.mtime,
            }],
        ));
    }
    for (name, content) in &job.heredocs {
        let (dir, file) = if into_dir {
            (job.dest.clone(), name.clone())
        } else {
            (parent(&job.dest), base(&job.dest))
        };
        plan.push((
            dir,
            vec![Item::Data {
                name: file,
                data: content.clone().into_bytes(),
                mode: 0o644,
            }],
        ));
    }
    Ok(plan)
}

/// Writes a planned context copy into the root.
fn write_plan(
    target: &Path,
    root: &OwnedFd,
    job: &CopyJob,
    plan: Vec<(String, Vec<Item<'_>>)>,
    blobs: &BlobStore,
) -> Result<(), String> {
    for (dir, items) in plan {
        ensure_dir(target, &dir, job.owner)?;
        // `ADD` of a local archive: its contents, extracted.
        if job.extract_archives {
            let mut rest = Vec::new();
            for item in items {
                if let Item::Context(_, e) = &item
                    && e.kind == EntryKind::File
                    && let Some(d) = &e.digest
                    && let Ok(path) = blobs.path(d)
                    && let Some(reader) = archive_reader(&path)
                {
                    archive_tar::extract(
                        root,
                        &dir,
                        reader,
                        ExtractOptions {
                            no_overwrite_dir_non_dir: false,
                            owner: job.owner,
                        },
                    )
                    .map_err(|e| fail(format!("extract {} into {dir}: {e}", e_path(&item))))?;
                    continue;
                }
                rest.push(item);
            }
            write_items(root, &dir, rest, job, blobs)?;
        } else {
            write_items(root, &dir, items, job, blobs)?;
        }
    }
    Ok(())
}

/// What a copy writes at one path, for comparing two copies: its kind,
/// its content, its mode and its time (the owner is the job's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// 0 file, 1 folder, 2 symlink, 3 downloaded file.
    kind: u8,
    /// A file's content digest; the sha256 of a link's target, of a
    /// here-document, or of a download's scratch path; zeros for a folder.
    content: [u8; 32],
    mode: u32,
    /// Whole seconds, as the tar carries them.
    secs: i64,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

fn written(item: &Item<'_>, chmod: Option<u32>) -> Written {
    match item {
        Item::Data { data, mode, .. } => Written {
            kind: 0,
            content: sha256(data),
            mode: chmod.unwrap_or(*mode),
            secs: 0,
        },
        Item::File { path, mtime, .. } => Written {
            kind: 3,
            content: sha256(path.as_os_str().as_encoded_bytes()),
            mode: chmod.unwrap_or(0o600),
            secs: i64::try_from(*mtime).unwrap_or(i64::MAX),
        },
        Item::Context(_, e) => {
            let (kind, content) = match &e.kind {
                EntryKind::File => (0, digest_bytes(e.digest.as_deref().unwrap_or_default())),
                EntryKind::Dir => (1, [0; 32]),
                EntryKind::Symlink { target } => (2, sha256(target.as_bytes())),
            };
            Written {
                kind,
                content,
                mode: chmod.unwrap_or(e.mode),
                secs: e.mtime_ns / 1_000_000_000,
            }
        }
    }
}

fn item_name<'b>(item: &'b Item<'_>) -> &'b str {
    match item {
        Item::Context(name, _) => name,
        Item::Data { name, .. } | Item::File { name, .. } => name,
    }
}

/// Whether `name` joined below a clean folder is clean as it is: no
/// empty, `.` or `..` segment.
fn is_plain(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(|p| !matches!(p, "" | "." | ".."))
}

/// Writes into `out` the cleaned absolute path of `name` in the folder
/// whose cleaned path is `clean_dir`, as [`archive_tar::clean`] gives it,
/// without allocating in the common case.
fn dest_path(out: &mut String, clean_dir: &str, name: &str) {
    out.clear();
    if is_plain(name) {
        if clean_dir != "/" {
            out.push_str(clean_dir);
        }
        out.push('/');
        out.push_str(name);
    } else {
        out.push_str(&archive_tar::clean(&format!("{clean_dir}/{name}")));
    }
}

/// What a copy gives, by cleaned destination path (sorted, each once).
pub type Flat = PathTable<Written>;

/// What `plan` writes, by destination path: where two items write the
/// same path, the later one wins, as in the copy.
fn flatten(plan: &[(String, Vec<Item<'_>>)], chmod: Option<u32>) -> Flat {
    let rows = plan.iter().map(|(_, items)| items.len()).sum();
    let mut out = PathTableBuilder::with_capacity(rows, rows * 32);
    let mut path = String::new();
    for (dir, items) in plan {
        let clean_dir = archive_tar::clean(dir);
        for item in items {
            dest_path(&mut path, &clean_dir, item_name(item));
            out.push(&path, written(item, chmod));
        }
    }
    out.finish()
}

/// The previous run of a copy step, for [`copy_changes`]: what it gave
/// if the caller kept that, else the context it copied from.
#[derive(Clone, Copy)]
pub struct Previous<'a> {
    /// The context of the previous run, if at hand (needed without `old`).
    pub before: Option<&'a ContextIndex>,
    /// What the previous run gave, if kept.
    pub old: Option<&'a Flat>,
}

/// What [`copy_changes`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// The changed entries were written and the gone ones deleted.
    Applied {
        /// Entries written (changed or added, and the folders above them).
        written: usize,
        /// Entries deleted.
        removed: usize,
    },
    /// A full copy is needed (or cheaper): nothing was written.
    FullCopy,
}

/// Brings the root at `target`, which holds the result of the same copy
/// from the context `before`, to what `job` from `index` gives: writes
/// what changed (with the folders above it, so their times are restored)
/// and deletes what is gone (overlay records the deletions as whiteouts).
///
/// `dest_was_dir` is the destination's kind in the step's parent, and
/// `in_parent` tells whether a path exists in the parent: a deleted entry
/// that was there before the copy must come back, which a deletion here
/// cannot do, so such a change (and a change of an entry's kind, and a
/// change of most of the entries) is left to a full copy.
///
/// `old` is what the same copy gave from `before`, when the caller kept it
/// from the previous run ([`Delta::Applied`] hands back the new one to
/// keep); otherwise it is worked out from `before`.
pub fn copy_changes(
    target: &Path,
    job: &CopyJob,
    index: &ContextIndex,
    previous: Previous<'_>,
    blobs: &BlobStore,
    dest_was_dir: bool,
    in_parent: &dyn Fn(&str) -> bool,
) -> Result<(Delta, Option<Flat>), String> {
    if job.extract_archives {
        // An archive's entries are not in the index: no comparing them.
        return Ok((Delta::FullCopy, None));
    }
    let Previous { before, old } = previous;
    let new_plan = plan_context(job, index, dest_was_dir)?;
    let new_map = flatten(&new_plan, job.chmod);
    let worked_out;
    let old_map = match (old, before) {
        (Some(m), _) => m,
        (None, Some(before)) => {
            worked_out = flatten(&plan_context(job, before, dest_was_dir)?, job.chmod);
            &worked_out
        }
        (None, None) => return Ok((Delta::FullCopy, None)),
    };
    // One merge of the two sorted results.
    let mut write: BTreeSet<String> = BTreeSet::new();
    let mut removed: Vec<&str> = Vec::new();
    for change in new_map.diff(old_map) {
        match change {
            Change::Changed(_, _, new, old) if new.kind != old.kind => {
                return Ok((Delta::FullCopy, None));
            }
            Change::Changed(_, path, _, _) | Change::Added(_, path, _) => {
                write.insert(path.to_string());
            }
            Change::Removed(_, path, _) => removed.push(path),
        }
        if write.len() + removed.len() > new_map.len() / 2 + 1 {
            return Ok((Delta::FullCopy, None));
        }
    }
    if removed.iter().any(|p| in_parent(p)) {
        return Ok((Delta::FullCopy, None));
    }
    // The folders above what changed or went are rewritten too: their
    // times (and modes) come back to what a full copy gives them.
    let touched: Vec<String> = write
        .iter()
        .cloned()
        .chain(removed.iter().map(|p| (*p).to_string()))
        .collect();
    for path in touched {
        let mut cur = parent(&path);
        while cur != "/" && new_map.find(&cur).is_some() && write.insert(cur.clone()) {
            cur = parent(&cur);
        }
    }
    let root = archive_tar::open_root(target).map_err(|e| fail(format!("open the root: {e}")))?;
    // Deepest first, so a folder is empty when its turn comes.
    for path in removed.iter().rev() {
        archive_tar::remove(&root, path).map_err(|e| fail(format!("delete {path}: {e}")))?;
    }
    let written = write.len();
    let removed = removed.len();
    // Only the folders with something to write below them are looked at
    // item by item.
    let mut path = String::new();
    let plan: Vec<(String, Vec<Item<'_>>)> = new_plan
        .into_iter()
        .map(|(dir, items)| {
            let clean_dir = archive_tar::clean(&dir);
            let mut prefix = clean_dir.clone();
            if !prefix.ends_with('/') {
                prefix.push('/');
            }
            let any_below = write
                .range(prefix.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&prefix));
            if !any_below {
                return (dir, Vec::new());
            }
            let kept = items
                .into_iter()
                .filter(|i| {
                    dest_path(&mut path, &clean_dir, item_name(i));
                    write.contains(&path)
                })
                .collect();
            (dir, kept)
        })
        .collect();
    write_plan(target, &root, job, plan, blobs)?;
    Ok((Delta::Applied { written, removed }, Some(new_map)))
}

fn e_path(item: &Item<'_>) -> String {
    match item {
        Item::Context(_, e) => e.path.clone(),
        Item::Data { name, .. } | Item::File { name, .. } => name.clone(),
    }
}

/// A reader of a tar archive's entries, when `path` holds one (plain,
/// gzip or zstd); `None` for any other file, which `ADD` copies as is.
fn archive_reader(path: &Path) -> Option<Box<dyn Read + Send>> {
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut head).ok()?;
    let compressed =
        head[..n].starts_with(&[0x1f, 0x8b]) || head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let plain_tar = n >= 262 && &head[257..262] == b"ustar";
    if !compressed && !plain_tar {
        return None;
    }
    let mut reader = crate::image::unpack::decompressed(path).ok()?;
    if compressed {
        // Only archives count: a compressed file that is no tar is copied.
        let mut inner = [0u8; 512];
        let mut got = 0;
        while got < inner.len() {
            match reader.read(&mut inner[got..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        if got < 262 || &inner[257..262] != b"ustar" {
            return None;
        }
        return crate::image::unpack::decompressed(path).ok();
    }
    Some(reader)
}

/// Writes `items` as a tar and extracts it into `dir` of the root.
fn write_items(
    root: &OwnedFd,
    dir: &str,
    items: Vec<Item<'_>>,
    job: &CopyJob,
    blobs: &BlobStore,
) -> Result<(), String> {
    if items.is_empty() {
        return Ok(());
    }
    let (reader, writer) = std::io::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    let chmod = job.chmod;
    std::thread::scope(|s| -> Result<(), String> {
        let producer = s.spawn(move || -> Result<(), String> {
            let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, writer));
            tar.mode(tar::HeaderMode::Complete);
            for item in items {
                let mut h = tar::Header::new_gnu();
                h.set_uid(0);
                h.set_gid(0);
                match item {
                    Item::File { name, path, mtime } => {
                        let f = std::fs::File::open(&path)
                            .map_err(|e| fail(format!("read {}: {e}", path.display())))?;
                        let size = f
                            .metadata()
                            .map_err(|e| fail(format!("read {}: {e}", path.display())))?
                            .len();
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_mode(chmod.unwrap_or(0o600));
                        h.set_size(size);
                        h.set_mtime(mtime);
                        tar.append_data(&mut h, &name, f.take(size))
                            .map_err(|e| fail(format!("write {name}: {e}")))?;
                    }
                    Item::Data { name, data, mode } => {
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_mode(chmod.unwrap_or(mode));
                        h.set_size(data.len() as u64);
                        h.set_mtime(0);
                        tar.append_data(&mut h, &name, data.as_slice())
                            .map_err(|e| fail(format!("write {name}: {e}")))?;
                    }
                    Item::Context(name, e) => {
                        let mode = chmod.unwrap_or(e.mode);
                        h.set_mode(mode);
                        h.set_mtime(u64::try_from(e.mtime_ns / 1_000_000_000).unwrap_or(0));
                        match &e.kind {
                            EntryKind::Dir => {
                                h.set_entry_type(tar::EntryType::Directory);
                                h.set_size(0);
                                tar.append_data(&mut h, format!("{name}/"), std::io::empty())
                                    .map_err(|err| fail(format!("write {}: {err}", e.path)))?;
                            }
                            EntryKind::Symlink { target } => {
                                h.set_entry_type(tar::EntryType::Symlink);
                                h.set_size(0);
                                tar.append_link(&mut h, name.as_ref(), target)
                                    .map_err(|err| fail(format!("write {}: {err}", e.path)))?;
                            }
                            EntryKind::File => {
                                let digest = e.digest.as_deref().unwrap_or_default();
                                let f = blobs.open_blob(digest).map_err(|err| {
                                    fail(format!("read {} (content {digest}): {err}", e.path))
                                })?;
                                h.set_entry_type(tar::EntryType::Regular);
                                h.set_size(e.size);
                                tar.append_data(&mut h, name.as_ref(), f.take(e.size))
                                    .map_err(|err| fail(format!("write {}: {err}", e.path)))?;
                            }
                        }
                    }
                }
            }
            let mut out = tar
                .into_inner()
                .map_err(|e| fail(format!("finish the tar: {e}")))?;
            out.flush()
                .map_err(|e| fail(format!("finish the tar: {e}")))
        });
        let extracted = archive_tar::extract(
            root,
            dir,
            std::io::BufReader::with_capacity(1 << 20, reader),
            ExtractOptions {
                no_overwrite_dir_non_dir: false,
                owner: Some(job.owner.unwrap_or((0, 0))),
            },
        );
        let produced = producer
            .join()
            .map_err(|_| fail("the tar writer panicked"))?;
        extracted.map_err(|e| fail(format!("copy into {dir}: {e}")))?;
        produced
    })
}

/// Matches a glob segment (`*`, `?`, `[...]`) against a name.
fn glob(pattern: &str, name: &str) -> bool {
    crate::filters::glob_match(pattern, name)
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The paths `src` names in the root at `from` (globs in any segment).
fn expand_in_root(from_root: &OwnedFd, src: &str) -> Result<Vec<String>, String> {
    let cleaned = archive_tar::clean(&format!("/{src}"));
    if !has_wildcard(&cleaned) {
        archive_tar::stat(from_root, &cleaned)
            .map_err(|_| fail(format!("{src}: not found in the source image")))?;
        return Ok(vec![cleaned]);
    }
    let mut found = vec!["/".to_string()];
    for seg in cleaned.split('/').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            let base_dir = if dir == "/" {
                String::new()
            } else {
                dir.clone()
            };
            if has_wildcard(seg) {
                for name in archive_tar::list_dir(from_root, dir).unwrap_or_default() {
                    if glob(seg, &name) {
                        next.push(format!("{base_dir}/{name}"));
                    }
                }
            } else {
                let p = format!("{base_dir}/{seg}");
                if archive_tar::stat(from_root, &p).is_ok() {
                    next.push(p);
                }
            }
        }
        next.sort();
        found = next;
    }
    if found.is_empty() {
        return Err(fail(format!(
            "no source files were specified: nothing in the source image matches {src}"
        )));
    }
    Ok(found)
}

fn copy_root(target: &Path, root: &OwnedFd, job: &CopyJob, from: &Path) -> Result<(), String> {
    let from_root =
        archive_tar::open_root(from).map_err(|e| fail(format!("open the source root: {e}")))?;
    let mut paths = Vec::new();
    for src in &job.sources {
        paths.extend(expand_in_root(&from_root, src)?);
    }
    let into_dir = job.dest_is_dir || paths.len() > 1 || is_dir_in(root, &job.dest);
    for p in paths {
        let src_is_dir = is_dir_in(&from_root, &p);
        let (dir, rename): (String, Option<String>) = if src_is_dir {
            (job.dest.clone(), None)
        } else if into_dir {
            (job.dest.clone(), Some(base(&p)))
        } else {
            (parent(&job.dest), Some(base(&job.dest)))
        };
        ensure_dir(target, &dir, job.owner)?;
        // The source tarred from its root, entries renamed: a folder's
        // contents land in `dir`, a file under its destination name.
        let mut buf = Vec::new();
        archive_tar::write_tar(&from_root, &p, &mut buf)
            .map_err(|e| fail(format!("read {p} from the source image: {e}")))?;
        let renamed = rename_entries(&buf, src_is_dir, rename.as_deref(), job.chmod)
            .map_err(|e| fail(format!("read {p} from the source image: {e}")))?;
        archive_tar::extract(
            root,
            &dir,
            renamed.as_slice(),
            ExtractOptions {
                no_overwrite_dir_non_dir: false,
                owner: job.owner,
            },
        )
        .map_err(|e| fail(format!("copy {p} into {dir}: {e}")))?;
    }
    Ok(())
}

/// Rewrites a tar whose entries start with one top name: a folder's top
/// entry is dropped and its children lose the prefix; a file is renamed.
fn rename_entries(
    tar_bytes: &[u8],
    strip_top: bool,
    rename: Option<&str>,
    chmod: Option<u32>,
) -> std::io::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    out.mode(tar::HeaderMode::Complete);
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_end_matches('/').to_string();
        let (top, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let name = if strip_top {
            if rest.is_empty() {
                continue;
            }
            rest.to_string()
        } else {
            match (rename, rest.is_empty()) {
                (Some(r), true) => r.to_string(),
                (Some(r), false) => format!("{r}/{rest}"),
                (None, _) => format!("{top}/{rest}"),
            }
        };
        let mut header = entry.header().clone();
        if let Some(m) = chmod {
            header.set_mode(m);
        }
        let link = entry.link_name()?.map(|l| l.to_string_lossy().into_owned());
        let kind = header.entry_type();
        if kind.is_symlink() {
            out.append_link(&mut header, &name, link.unwrap_or_default())?;
        } else if kind.is_hard_link() {
            // A hard link names another entry: rename its target the same way.
            let target = link.unwrap_or_default();
            let target = target.trim_end_matches('/');
            let (_, trest) = target.split_once('/').unwrap_or((target, ""));
            let renamed = if strip_top {
                trest.to_string()
            } else {
                match rename {
                    Some(r) if trest.is_empty() => r.to_string(),
                    Some(r) => format!("{r}/{trest}"),
                    None => target.to_string(),
                }
            };
            out.append_link(&mut header, &name, renamed)?;
        } else {
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            out.append_data(&mut header, &name, data.as_slice())?;
        }
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use servin_buildctx::Entry;

    use super::*;

    fn entry(path: &str, kind: EntryKind, digest: Option<&str>) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 1,
            mtime_ns: 3_500_000_000,
            digest: digest.map(str::to_string),
        }
    }

    #[test]
    fn dest_paths_are_cleaned_as_clean_does() {
        let mut out = String::new();
        for (dir, name) in [
            ("/app/src/", "a/b"),
            ("/", "x"),
            ("/app", "./x"),
            ("/app", "../x"),
            ("//app/./", "a//b/"),
            ("/app/../", "y"),
        ] {
            let clean_dir = archive_tar::clean(dir);
            dest_path(&mut out, &clean_dir, name);
            assert_eq!(
                out,
                archive_tar::clean(&format!("{dir}/{name}")),
                "{dir} {name}"
            );
        }
    }

    #[test]
    fn digests_become_their_bytes_and_other_text_is_hashed() {
        let hex = "0f".repeat(32);
        assert_eq!(digest_bytes(&format!("sha256:{hex}")), [0x0f; 32]);
        assert_ne!(digest_bytes("sha256:xyz"), digest_bytes("sha256:xyw"));
        assert_ne!(digest_bytes(""), [0; 32]);
    }

    #[test]
    fn a_flattened_plan_follows_content_mode_and_time_and_the_last_write_wins() {
        let one = format!("sha256:{}", "01".repeat(32));
        let two = format!("sha256:{}", "02".repeat(32));
        let a = entry("src/a", EntryKind::File, Some(&one));
        let b = entry("src/b", EntryKind::File, Some(&two));
        let d = entry("src", EntryKind::Dir, None);
        let plan = vec![
            (
                "/app/".to_string(),
                vec![
                    Item::Context(Cow::Borrowed("src/b"), &b),
                    Item::Context(Cow::Borrowed("src"), &d),
                    Item::Context(Cow::Borrowed("src/a"), &a),
                ],
            ),
            (
                "/app/src".to_string(),
                vec![Item::Data {
                    name: "b".into(),
                    data: b"here".to_vec(),
                    mode: 0o644,
                }],
            ),
        ];
        let flat = flatten(&plan, None);
        let paths: Vec<&str> = flat.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["/app/src", "/app/src/a", "/app/src/b"]);
        // The here-document written last replaced the context's file.
        let at_b = flat.value(flat.find("/app/src/b").unwrap());
        assert_eq!(at_b.content, sha256(b"here"));
        let at_a = *flat.value(flat.find("/app/src/a").unwrap());
        assert_eq!(
            (at_a.kind, at_a.content, at_a.mode, at_a.secs),
            (0, [1; 32], 0o644, 3)
        );
        // `--chmod` sets every mode.
        let chmod = flatten(&plan, Some(0o600));
        assert!(chmod.iter().all(|(_, w)| w.mode == 0o600));
        // A touch within the same second writes the same thing; another
        // second, or other content, does not.
        let at = |mtime_ns: i64| {
            let touched = Entry {
                mtime_ns,
                ..a.clone()
            };
            flatten(
                &[(
                    "/app".into(),
                    vec![Item::Context(Cow::Borrowed("src/a"), &touched)],
                )],
                None,
            )
        };
        let same = at(a.mtime_ns + 100);
        assert_eq!(same.value(0), &at_a);
        let later = at(a.mtime_ns + 100 + 1_000_000_000);
        assert_ne!(later.value(0), &at_a);
    }
}
