//! Walking the context on a few threads.
//!
//! A re-index with a warm cache reads no file content: its cost is one
//! `stat` per path, most of it in the kernel. Threads take folders from a
//! shared queue, so on N cores N folders are listed and stat'ed at once.
//! Each entry is stat'ed by name relative to its open folder, so the
//! kernel does not walk the whole path again for each one.
//!
//! The stat cache's records are sorted by path, and each folder's names
//! are sorted before they are looked at, so the records of a folder's
//! files are found by one merge pass over the slice of records under that
//! folder: no hashing of paths, no shared index, memory read in order.

use std::{
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    sync::{Condvar, Mutex, PoisonError},
};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RawMode};

use crate::{
    cache::{Stat, StatCache},
    ignore::Matcher,
    index::{Entry, EntryKind, IndexError, entry_of, stat_of},
};

/// One path the walk kept.
pub(crate) struct Walked {
    pub(crate) entry: Entry,
    /// For files: their stat, for the next cache.
    pub(crate) stat: Option<Stat>,
    /// For files the cache knew: their digest.
    pub(crate) digest: Option<[u8; 32]>,
    /// For files the cache did not know: where to read them.
    pub(crate) to_hash: Option<PathBuf>,
}

/// What the walk found.
pub(crate) struct Walk {
    /// In no particular order.
    pub(crate) items: Vec<Walked>,
    /// Files whose digest came from the cache.
    pub(crate) hits: usize,
}

/// A folder waiting to be listed.
struct DirJob {
    abs: PathBuf,
    rel: String,
    /// Per pattern: whether it matched this folder or a parent.
    flags: Vec<bool>,
    /// The context root may be reached through a symlink; nothing else.
    root: bool,
}

struct Queue {
    dirs: Vec<DirJob>,
    busy: usize,
    failed: bool,
}

/// How many threads walk: the machine's parallelism, at most 4 (the walk
/// is mostly the kernel's `stat`, which stops scaling early).
fn walk_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
}

/// Walks the context below `root`; see [`crate::ContextIndex::build`].
pub(crate) fn walk(
    root: &Path,
    matcher: &Matcher,
    previous: &StatCache,
) -> Result<Walk, IndexError> {
    let queue = Mutex::new(Queue {
        dirs: vec![DirJob {
            abs: root.to_path_buf(),
            rel: String::new(),
            flags: vec![false; matcher.patterns().len()],
            root: true,
        }],
        busy: 0,
        failed: false,
    });
    let wake = Condvar::new();
    let worker = || -> Result<Walk, IndexError> {
        let mut out = Walk {
            items: Vec::new(),
            hits: 0,
        };
        loop {
            let job = {
                let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if q.failed {
                        return Ok(out);
                    }
                    if let Some(job) = q.dirs.pop() {
                        q.busy += 1;
                        break job;
                    }
                    if q.busy == 0 {
                        return Ok(out);
                    }
                    q = wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let mut subdirs = Vec::new();
            let result = walk_dir(&job, matcher, previous, &mut out, &mut subdirs);
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.busy -= 1;
            match result {
                Ok(()) => q.dirs.extend(subdirs),
                Err(e) => {
                    q.failed = true;
                    wake.notify_all();
                    return Err(e);
                }
            }
            wake.notify_all();
        }
    };
    let results: Vec<Result<Walk, IndexError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..walk_threads()).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(IndexError::Read {
                        path: root.to_path_buf(),
                        source: std::io::Error::other("a walking thread panicked"),
                    })
                })
            })
            .collect()
    });
    let mut all = Walk {
        items: Vec::new(),
        hits: 0,
    };
    for result in results {
        let part = result?;
        all.items.extend(part.items);
        all.hits += part.hits;
    }
    Ok(all)
}

/// Lists one folder: its kept entries go to `out`, the folders to enter
/// to `subdirs`.
fn walk_dir(
    job: &DirJob,
    matcher: &Matcher,
    previous: &StatCache,
    out: &mut Walk,
    subdirs: &mut Vec<DirJob>,
) -> Result<(), IndexError> {
    let dir_err = |e: rustix::io::Errno| IndexError::Read {
        path: job.abs.clone(),
        source: e.into(),
    };
    let mut oflags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !job.root {
        oflags |= OFlags::NOFOLLOW;
    }
    let fd = rfs::open(&job.abs, oflags, Mode::empty()).map_err(dir_err)?;
    let mut names: Vec<CString> = Vec::new();
    for child in rfs::Dir::read_from(&fd).map_err(dir_err)? {
        let child = child.map_err(dir_err)?;
        let name = child.file_name();
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable();

    // The records under this folder, and a merge cursor into them.
    let prefix = if job.rel.is_empty() {
        String::new()
    } else {
        format!("{}/", job.rel)
    };
    let records = previous.under(&prefix);
    let mut at = 0;

    for c_name in &names {
        let name_bytes = c_name.to_bytes();
        let abs = || job.abs.join(OsStr::from_bytes(name_bytes));
        let Ok(name) = c_name.to_str() else {
            return Err(IndexError::NotUtf8 { path: abs() });
        };
        let mut rel = String::with_capacity(prefix.len() + name.len());
        rel.push_str(&prefix);
        rel.push_str(name);
        let (excluded, flags) = matcher.excluded_below(&rel, &job.flags);
        let child_err = |e: rustix::io::Errno| IndexError::Read {
            path: abs(),
            source: e.into(),
        };
        let st = rfs::statat(&fd, c_name, AtFlags::SYMLINK_NOFOLLOW).map_err(child_err)?;
        let ft = FileType::from_raw_mode(st.st_mode as RawMode);
        if ft == FileType::Socket || (excluded && ft != FileType::Directory) {
            continue;
        }
        let kind = match ft {
            FileType::Directory => {
                if excluded && !matcher.may_reinclude_under(&rel) {
                    continue;
                }
                if !excluded {
                    out.items.push(Walked {
                        entry: entry_of(&rel, EntryKind::Dir, &st, 0),
                        stat: None,
                        digest: None,
                        to_hash: None,
                    });
                }
                subdirs.push(DirJob {
                    abs: abs(),
                    rel,
                    flags,
                    root: false,
                });
                continue;
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(&fd, c_name, Vec::new()).map_err(child_err)?;
                match target.into_string() {
                    Ok(target) => EntryKind::Symlink { target },
                    Err(_) => return Err(IndexError::NotUtf8 { path: abs() }),
                }
            }
            FileType::RegularFile => EntryKind::File,
            _ => return Err(IndexError::Unsupported { path: abs() }),
        };
        let stat = stat_of(&st);
        if kind != EntryKind::File {
            out.items.push(Walked {
                entry: entry_of(&rel, kind, &st, stat.size),
                stat: None,
                digest: None,
                to_hash: None,
            });
            continue;
        }
        // Names and records are both in byte order: advance to the first
        // record not before this name.
        while records
            .get(at)
            .is_some_and(|r| r.path.as_bytes()[prefix.len()..] < *name.as_bytes())
        {
            at += 1;
        }
        let known = records
            .get(at)
            .filter(|r| r.path.as_bytes()[prefix.len()..] == *name.as_bytes())
            .and_then(|r| previous.check(r, &stat));
        if known.is_some() {
            out.hits += 1;
        }
        out.items.push(Walked {
            entry: entry_of(&rel, EntryKind::File, &st, stat.size),
            stat: Some(stat),
            digest: known,
            to_hash: known.is_none().then(abs),
        });
    }
    Ok(())
}
