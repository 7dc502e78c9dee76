//! The index cache: what the last indexing of a context learned, so that the
//! next one hashes only files that changed.
//!
//! A file is taken from the cache when its path, device, inode, size,
//! modification time and change time (both to the nanosecond) are all as
//! recorded. The change time catches what the others miss: `touch -m` with
//! an old time, or a file swapped in by rename, move the ctime forward.
//!
//! A record is not trusted when the file was modified shortly before the
//! run that hashed it started ([`RACY_MARGIN_NS`]): a write in the same
//! coarse filesystem tick as the hash could leave the times unchanged with
//! new content (git calls this a "racily clean" entry). Such files are
//! simply hashed again next time.
//!
//! On disk: a marker, the start time of the run, the records, and a
//! sha256 of all that. The file is written to a temporary name and renamed
//! over the old one (not synced), and a file that fails its checksum (torn
//! by a crash, or not ours) is ignored: the cache is an optimisation, never a source of
//! truth, so a bad cache costs one cold run and nothing else.

use std::{
    fs, io,
    io::Write as _,
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
};

use sha2::{Digest as _, Sha256};

use crate::codec::{DecodeError, Reader, Writer};

const MAGIC: &[u8; 8] = b"SVBCXC01";

/// Files modified less than this long before a run started are hashed again
/// on the next run whatever their stat says.
pub const RACY_MARGIN_NS: i64 = 100_000_000;

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) ctime_ns: i64,
}

/// What the cache knows of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) path: String,
    pub(crate) stat: Stat,
    pub(crate) digest: [u8; 32],
}

/// The cache of one run, as loaded or as about to be written: records
/// sorted by path, so that the records below a folder are one slice.
#[derive(Debug, Default)]
pub(crate) struct StatCache {
    /// When the run that hashed these files started (ns since the epoch).
    pub(crate) started_ns: i64,
    pub(crate) records: Vec<Record>,
}

impl StatCache {
    /// Loads the cache at `path`; a missing, unreadable or damaged cache is
    /// an empty one.
    pub(crate) fn load(path: &Path) -> StatCache {
        fs::read(path)
            .ok()
            .and_then(|bytes| Self::decode(&bytes).ok())
            .unwrap_or_default()
    }

    /// The records whose path starts with `prefix` (a folder's path and
    /// `/`, or empty for all).
    pub(crate) fn under(&self, prefix: &str) -> &[Record] {
        let start = self.records.partition_point(|r| r.path.as_str() < prefix);
        let len = self.records[start..].partition_point(|r| r.path.starts_with(prefix));
        &self.records[start..start + len]
    }

    /// The record's digest, when the file still has the recorded stat and
    /// was not racily modified.
    pub(crate) fn check(&self, record: &Record, stat: &Stat) -> Option<[u8; 32]> {
        let racy = stat.mtime_ns.max(stat.ctime_ns) + RACY_MARGIN_NS >= self.started_ns;
        (record.stat == *stat && !racy).then_some(record.digest)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.records.len() * 120);
        w.bytes(MAGIC);
        w.i64(self.started_ns);
        w.u64(self.records.len() as u64);
        for Record { path, stat, digest } in &self.records {
            w.str(path);
            w.u64(stat.dev);
            w.u64(stat.ino);
            w.u64(stat.size);
            w.i64(stat.mtime_ns);
            w.i64(stat.ctime_ns);
            w.bytes(digest);
        }
        let sum = Sha256::digest(&w.buf);
        w.bytes(&sum);
        w.buf
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<StatCache, DecodeError> {
        let Some(body_len) = bytes.len().checked_sub(32) else {
            return Err(DecodeError::Truncated(0));
        };
        let (body, sum) = bytes.split_at(body_len);
        if Sha256::digest(body).as_slice() != sum {
            return Err(DecodeError::Value {
                at: body_len,
                what: "checksum does not match",
            });
        }
        let mut r = Reader::new(body);
        if r.take(8)? != MAGIC {
            return Err(DecodeError::Magic("a servin index cache"));
        }
        let started_ns = r.i64()?;
        let count = r.u64()?;
        let mut records =
            Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(r.remaining() / 72));
        for _ in 0..count {
            let path = r.str()?.to_owned();
            let stat = Stat {
                dev: r.u64()?,
                ino: r.u64()?,
                size: r.u64()?,
                mtime_ns: r.i64()?,
                ctime_ns: r.i64()?,
            };
            let digest = r.array::<32>()?;
            records.push(Record { path, stat, digest });
        }
        // Written sorted; a cache that is not is not ours to trust.
        if records.windows(2).any(|w| w[0].path >= w[1].path) {
            return Err(DecodeError::Value {
                at: r.pos,
                what: "records are not sorted by path",
            });
        }
        Ok(StatCache {
            started_ns,
            records,
        })
    }

    /// Writes the cache to `path` through a temporary file in the same
    /// folder and a rename, so that readers see the old cache or the new
    /// one, never a mix.
    pub(crate) fn save(&self, path: &Path) -> io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&self.encode())?;
            // No fsync: a cache torn by a crash fails its checksum and
            // costs one cold run, while a sync on every changed run would
            // cost the dev loop tens of milliseconds on a busy disk.
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn stat(mtime_ns: i64) -> Stat {
        Stat {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
            ctime_ns: mtime_ns,
        }
    }

    fn record(path: &str, mtime_ns: i64, digest: u8) -> Record {
        Record {
            path: path.into(),
            stat: stat(mtime_ns),
            digest: [digest; 32],
        }
    }

    #[test]
    fn round_trip_lookup_and_racy_entries() {
        let mut cache = StatCache {
            started_ns: 10_000_000_000,
            records: Vec::new(),
        };
        cache.records.push(record("a/x", 1_000, 1));
        cache
            .records
            .push(record("a/y", 10_000_000_000 - 50_000_000, 2));
        cache.records.push(record("ab", 1_000, 3));
        let back = StatCache::decode(&cache.encode()).unwrap();
        assert_eq!(back.started_ns, cache.started_ns);
        assert_eq!(back.records, cache.records);
        let under_a: Vec<&str> = back.under("a/").iter().map(|r| r.path.as_str()).collect();
        assert_eq!(under_a, ["a/x", "a/y"]);
        assert_eq!(back.under("").len(), 3);
        assert!(back.under("b/").is_empty());
        let [x, y, ab] = &back.records[..] else {
            panic!()
        };
        assert_eq!(back.check(x, &stat(1_000)), Some([1; 32]));
        assert_eq!(back.check(x, &stat(1_001)), None, "mtime changed");
        assert_eq!(
            back.check(y, &stat(10_000_000_000 - 50_000_000)),
            None,
            "racy"
        );
        assert_eq!(back.check(ab, &stat(1_000)), Some([3; 32]));

        cache.records.swap(0, 2);
        assert!(StatCache::decode(&cache.encode()).is_err(), "unsorted");
    }

    #[test]
    fn a_damaged_cache_is_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let mut cache = StatCache::default();
        cache.records.push(record("a", 1, 9));
        cache.save(&path).unwrap();
        assert_eq!(StatCache::load(&path).records.len(), 1);
        let mut bytes = fs::read(&path).unwrap();
        bytes[12] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(StatCache::load(&path).records.is_empty());
        fs::write(&path, b"short").unwrap();
        assert!(StatCache::load(&path).records.is_empty());
        assert!(StatCache::load(&dir.path().join("none")).records.is_empty());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left");
    }
}
