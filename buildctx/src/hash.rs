//! Hashing the files of a context on a few threads.
//!
//! Files are handed out one at a time from a shared counter, so a few
//! large files do not leave a thread idle while another works through a
//! long list. Files sharing an inode (hard links) are read once. Each file
//! is checked after reading against the stat the walk saw: a file that
//! changed meanwhile is an error rather than a digest of half-old content.

use std::{
    collections::HashMap,
    fs,
    io::{self, Read as _},
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use rustix::fs as rfs;
use sha2::{Digest as _, Sha256};

use crate::{
    cache::Stat,
    index::{IndexError, stat_of},
};

/// A file waiting to be hashed.
pub(crate) struct Job {
    pub(crate) entry: usize,
    pub(crate) path: PathBuf,
    pub(crate) stat: Stat,
}

/// How many threads hash: the machine's parallelism, at most 8 (more
/// rarely helps sha256 against one disk).
fn hash_threads(jobs: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    cpus.clamp(1, 8).min(jobs.max(1))
}

/// The digests of [`hash_all`]'s jobs, in job order, and what was read.
pub(crate) struct Hashed {
    pub(crate) digests: Vec<[u8; 32]>,
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

/// Hashes the jobs' files on a few threads; files sharing an inode (hard
/// links) are read once.
pub(crate) fn hash_all(jobs: &[Job]) -> Result<Hashed, IndexError> {
    // The first job of each inode does the work; the others copy it.
    let mut first_of: HashMap<(u64, u64), usize> = HashMap::new();
    let mut owner = Vec::with_capacity(jobs.len());
    let mut unique = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let first = *first_of.entry((job.stat.dev, job.stat.ino)).or_insert(i);
        if first == i {
            unique.push(i);
        }
        owner.push(first);
    }
    if unique.is_empty() {
        return Ok(Hashed {
            digests: Vec::new(),
            files: 0,
            bytes: 0,
        });
    }
    let results: Mutex<Vec<Option<[u8; 32]>>> = Mutex::new(vec![None; jobs.len()]);
    let failure: Mutex<Option<IndexError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..hash_threads(unique.len()) {
            scope.spawn(|| {
                let mut buf = vec![0u8; 256 * 1024];
                let mut local = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = unique.get(n) else { break };
                    match hash_file(&jobs[i], &mut buf) {
                        Ok(d) => local.push((i, d)),
                        Err(e) => {
                            // Stop the others early: the build fails anyway.
                            next.store(unique.len(), Ordering::Relaxed);
                            if let Ok(mut slot) = failure.lock() {
                                slot.get_or_insert(e);
                            }
                            break;
                        }
                    }
                }
                if let Ok(mut all) = results.lock() {
                    for (i, d) in local {
                        all[i] = Some(d);
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_default();
    let digests = owner
        .iter()
        .zip(jobs)
        .map(|(first, job)| {
            results
                .get(*first)
                .copied()
                .flatten()
                .ok_or_else(|| IndexError::Read {
                    path: job.path.clone(),
                    source: io::Error::other("a hashing thread failed"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Hashed {
        digests,
        files: unique.len() as u64,
        bytes: unique.iter().map(|i| jobs[*i].stat.size).sum(),
    })
}

/// Hashes one file and checks it did not change while being read.
fn hash_file(job: &Job, buf: &mut [u8]) -> Result<[u8; 32], IndexError> {
    let read_err = |source| IndexError::Read {
        path: job.path.clone(),
        source,
    };
    let mut file = fs::File::open(&job.path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let after = rfs::fstat(&file).map_err(|e| read_err(e.into()))?;
    let after = stat_of(&after);
    if after != job.stat || total != job.stat.size {
        return Err(IndexError::Changed {
            path: job.path.clone(),
        });
    }
    Ok(hasher.finalize().into())
}
