//! A context index as the change from one the engine already holds.
//!
//! A rebuild after one file changed has an index that differs from the
//! last one sent by one entry. Sending the whole index again costs a
//! large context tens of milliseconds on each side (MBs encoded, sent,
//! decoded, checked); a [`Delta`] sends the paths removed and the entries
//! added or changed (a change of kind, mode, owner, size, content or
//! mtime is a change), and the engine applies it to its copy of the base
//! ([`ContextIndex::apply`]) and checks the result has the digest the
//! request names. A delta against another base than the one it was made
//! from can therefore never be stored under a wrong digest.
//!
//! Encoded: a marker, the removed paths (sorted, unique), then the added
//! or changed entries (sorted, unique) in [`ContextIndex::encode`]'s entry
//! form.

use crate::{
    codec::{DecodeError, Reader, Writer},
    index::{ContextIndex, Entry, IndexError, check_entry, read_entry, write_entry},
};

const DELTA_MAGIC: &[u8; 8] = b"SVBCXD01";

/// How one index differs from a base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Paths of the base that are gone, sorted, unique.
    pub removed: Vec<String>,
    /// Entries new or different from the base's at their path, sorted by
    /// path, unique.
    pub changed: Vec<Entry>,
}

impl Delta {
    /// What turns `base` into `next`.
    pub fn between(base: &ContextIndex, next: &ContextIndex) -> Delta {
        let (old, new) = (base.entries(), next.entries());
        let mut delta = Delta::default();
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) if o.path == n.path => {
                    if o != n {
                        delta.changed.push(n.clone());
                    }
                    i += 1;
                    j += 1;
                }
                (Some(o), Some(n)) if o.path < n.path => {
                    delta.removed.push(o.path.clone());
                    i += 1;
                }
                (Some(o), None) => {
                    delta.removed.push(o.path.clone());
                    i += 1;
                }
                (_, Some(n)) => {
                    delta.changed.push(n.clone());
                    j += 1;
                }
                (None, None) => break,
            }
        }
        delta
    }

    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.changed.is_empty()
    }

    /// The delta's encoded form, to send.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + self.changed.len() * 128);
        w.bytes(DELTA_MAGIC);
        w.u64(self.removed.len() as u64);
        for path in &self.removed {
            w.str(path);
        }
        w.u64(self.changed.len() as u64);
        for entry in &self.changed {
            write_entry(&mut w, entry);
        }
        w.buf
    }

    /// Reads back [`Delta::encode`]'s form, checking each entry as
    /// [`ContextIndex::from_entries`] does and both lists' order.
    ///
    /// # Errors
    ///
    /// [`IndexError::Decode`] for malformed bytes, [`IndexError::Invalid`]
    /// naming the first entry or removed path breaking a rule.
    pub fn decode(bytes: &[u8]) -> Result<Delta, IndexError> {
        let mut r = Reader::new(bytes);
        if r.take(DELTA_MAGIC.len())? != DELTA_MAGIC {
            return Err(DecodeError::Magic("an encoded servin context index delta").into());
        }
        let count = r.u64()?;
        // A removed path takes at least 4 bytes, an entry at least 33:
        // refuse counts the input cannot hold before allocating for them.
        if count > (r.remaining() / 4) as u64 {
            return Err(DecodeError::Truncated(r.pos).into());
        }
        let mut removed: Vec<String> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let path = r.str()?;
            if removed.last().is_some_and(|prev| prev.as_str() >= path) {
                return Err(IndexError::Invalid {
                    path: path.to_owned(),
                    reason: "removed paths must be sorted and unique",
                });
            }
            removed.push(path.to_owned());
        }
        let count = r.u64()?;
        if count > (r.remaining() / 33) as u64 {
            return Err(DecodeError::Truncated(r.pos).into());
        }
        let mut changed: Vec<Entry> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let entry = read_entry(&mut r)?;
            check_entry(&entry)?;
            if changed.last().is_some_and(|prev| prev.path >= entry.path) {
                return Err(IndexError::Invalid {
                    path: entry.path,
                    reason: "changed entries must be sorted and unique",
                });
            }
            changed.push(entry);
        }
        if r.remaining() != 0 {
            return Err(DecodeError::Value {
                at: r.pos,
                what: "bytes after the last entry",
            }
            .into());
        }
        Ok(Delta { removed, changed })
    }
}

impl ContextIndex {
    /// This index changed by `delta`. The caller checks the result's
    /// [`digest`](ContextIndex::digest) is the one it expects: applied to
    /// another base than its own, a delta gives another index.
    ///
    /// # Errors
    ///
    /// [`IndexError::Invalid`] naming a removed path this index does not
    /// have, or a path both removed and changed; entries that break the
    /// format's rules are refused by [`Delta::decode`], and the lists'
    /// order is checked here too.
    pub fn apply(&self, delta: &Delta) -> Result<ContextIndex, IndexError> {
        let bad = |path: &str, reason| IndexError::Invalid {
            path: path.to_owned(),
            reason,
        };
        for pair in delta.removed.windows(2) {
            if pair[0] >= pair[1] {
                return Err(bad(&pair[1], "removed paths must be sorted and unique"));
            }
        }
        for pair in delta.changed.windows(2) {
            if pair[0].path >= pair[1].path {
                return Err(bad(
                    &pair[1].path,
                    "changed entries must be sorted and unique",
                ));
            }
        }
        let base = self.entries();
        let mut out = Vec::with_capacity(base.len() + delta.changed.len());
        let mut removed = delta.removed.iter().peekable();
        let mut changed = delta.changed.iter().peekable();
        for entry in base {
            while let Some(c) = changed.next_if(|c| c.path < entry.path) {
                out.push(c.clone());
            }
            if let Some(r) = removed.next_if(|r| **r <= entry.path) {
                if *r != entry.path {
                    return Err(bad(r, "the delta removes a path its base does not have"));
                }
                if changed.peek().is_some_and(|c| c.path == entry.path) {
                    return Err(bad(r, "the delta both removes and changes the path"));
                }
                continue;
            }
            match changed.next_if(|c| c.path == entry.path) {
                Some(c) => out.push(c.clone()),
                None => out.push(entry.clone()),
            }
        }
        if let Some(r) = removed.next() {
            return Err(bad(r, "the delta removes a path its base does not have"));
        }
        out.extend(changed.cloned());
        Ok(ContextIndex::from_checked(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::index::EntryKind;

    fn file(path: &str, content: u8) -> Entry {
        Entry::plain_file(
            path,
            1,
            format!("sha256:{}", format!("{content:02x}").repeat(32)),
        )
    }

    fn dir(path: &str) -> Entry {
        Entry::plain_dir(path)
    }

    fn index(entries: Vec<Entry>) -> ContextIndex {
        ContextIndex::from_entries(entries).unwrap()
    }

    /// `between`, then through the wire form, then `apply` gives `next`.
    fn round_trip(base: &ContextIndex, next: &ContextIndex) -> Delta {
        let delta = Delta::between(base, next);
        let back = Delta::decode(&delta.encode()).unwrap();
        assert_eq!(back, delta);
        let applied = base.apply(&back).unwrap();
        assert_eq!(&applied, next);
        assert_eq!(applied.digest(), next.digest());
        delta
    }

    #[test]
    fn add_change_remove_and_kind_change_round_trip() {
        let base = index(vec![
            file("a", 1),
            dir("d"),
            file("d/x", 2),
            file("d/y", 3),
            file("z", 4),
        ]);
        // Nothing changed: an empty delta.
        assert!(round_trip(&base, &base).is_empty());

        // One file's content changed, one added first, one added last.
        let next = index(vec![
            file("0", 9),
            file("a", 1),
            dir("d"),
            file("d/x", 7),
            file("d/y", 3),
            file("z", 4),
            file("zz", 5),
        ]);
        let d = round_trip(&base, &next);
        assert!(d.removed.is_empty());
        let changed: Vec<&str> = d.changed.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(changed, ["0", "d/x", "zz"]);

        // A folder with its files removed; an mtime alone is a change.
        let mut touched = file("z", 4);
        touched.mtime_ns = 2;
        let next = index(vec![file("a", 1), touched]);
        let d = round_trip(&base, &next);
        assert_eq!(d.removed, ["d", "d/x", "d/y"]);
        assert_eq!(d.changed.len(), 1);

        // A file becomes a folder, a folder a symlink.
        let mut link = dir("d");
        link.kind = EntryKind::Symlink { target: "a".into() };
        link.size = 1;
        let next = index(vec![dir("a"), file("a/new", 8), link, file("z", 4)]);
        let d = round_trip(&base, &next);
        assert_eq!(d.removed, ["d/x", "d/y"]);
        let changed: Vec<&str> = d.changed.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(changed, ["a", "a/new", "d"]);

        // Everything removed, from and to nothing.
        let empty = index(vec![]);
        assert_eq!(round_trip(&base, &empty).removed.len(), 5);
        assert_eq!(round_trip(&empty, &base).changed.len(), 5);
    }

    #[test]
    fn a_delta_against_the_wrong_base_gives_another_index_or_is_refused() {
        let base = index(vec![file("a", 1), file("b", 2)]);
        let next = index(vec![file("a", 1), file("b", 3)]);
        let delta = Delta::between(&base, &next);
        // Another base holding the same paths: the result is not `next`,
        // which the engine sees by its digest.
        let other = index(vec![file("a", 5), file("b", 2)]);
        let applied = other.apply(&delta).unwrap();
        assert_ne!(applied.digest(), next.digest());

        // A removal of a path the base lacks is refused, naming it.
        let removes = Delta::between(&base, &index(vec![file("b", 2)]));
        let e = index(vec![file("b", 2)]).apply(&removes).unwrap_err();
        assert!(
            e.to_string().contains("\"a\"") && e.to_string().contains("does not have"),
            "{e}"
        );
        let e = index(vec![file("0", 2)]).apply(&removes).unwrap_err();
        assert!(e.to_string().contains("does not have"), "{e}");

        // Removed and changed at once.
        let both = Delta {
            removed: vec!["a".into()],
            changed: vec![file("a", 4)],
        };
        let e = base.apply(&both).unwrap_err();
        assert!(e.to_string().contains("both removes and changes"), "{e}");
    }

    #[test]
    fn malformed_deltas_are_refused_naming_what_is_wrong() {
        assert!(matches!(
            Delta::decode(b"SVBCXI01\0\0\0\0\0\0\0\0"),
            Err(IndexError::Decode(DecodeError::Magic(_)))
        ));
        let good = Delta {
            removed: vec!["a".into(), "b".into()],
            changed: vec![file("c", 1)],
        }
        .encode();
        for cut in [9, 20, good.len() - 1] {
            assert!(
                matches!(Delta::decode(&good[..cut]), Err(IndexError::Decode(_))),
                "cut at {cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert!(Delta::decode(&long).is_err());

        let unsorted = Delta {
            removed: vec!["b".into(), "a".into()],
            changed: vec![],
        };
        let e = Delta::decode(&unsorted.encode()).unwrap_err();
        assert!(e.to_string().contains("sorted"), "{e}");
        assert!(
            index(vec![file("a", 1), file("b", 1)])
                .apply(&unsorted)
                .is_err()
        );
        let unsorted = Delta {
            removed: vec![],
            changed: vec![file("b", 1), file("a", 1)],
        };
        assert!(Delta::decode(&unsorted.encode()).is_err());
        for bad in ["../x", "/abs", "a/../b", ""] {
            let d = Delta {
                removed: vec![],
                changed: vec![file(bad, 1)],
            };
            let e = Delta::decode(&d.encode()).unwrap_err();
            assert!(matches!(e, IndexError::Invalid { .. }), "{bad}: {e}");
        }
        // A huge count in a short input is refused before allocating.
        let mut huge = DELTA_MAGIC.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Delta::decode(&huge),
            Err(IndexError::Decode(DecodeError::Truncated(_)))
        ));
    }
}
