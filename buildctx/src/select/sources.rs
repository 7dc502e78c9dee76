//! Compact, sorted tables of paths for the build cache.
//!
//! A `COPY` of a large context compares 50,000 sources at every rebuild:
//! with the cache record of the step's previous run (the cache key and the
//! "why it runs" line), and with what the previous copy wrote (to write
//! only the changes). A map of owned strings costs an allocation, a
//! formatted value and a tree insert per entry, and as much again to drop.
//! A [`PathTable`] holds every path in one string and a fixed-size value
//! per path in one vector, sorted by path: built in one pass over the
//! index's entries (already in path order), compared with another in one
//! merge pass ([`PathTable::diff`]), dropped in two frees.
//!
//! [`SourceList`] is the table of a step's sources: each entry's
//! [`SourceId`] (kind, mode, owner, and the content digest or the link
//! target's digest; never the mtime), with a digest for the cache key and
//! a binary form for the step records.

use std::cmp::Ordering;

use sha2::{Digest as _, Sha256};

use crate::{
    codec::{DecodeError, Reader, Writer},
    index::{Entry, EntryKind},
};

/// Paths in byte order, unique, each with a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTable<T> {
    /// Every path, one after the other.
    text: String,
    /// Where each path ends in `text` (it starts where the one before
    /// ends), and its value.
    rows: Vec<(usize, T)>,
}

impl<T> Default for PathTable<T> {
    fn default() -> Self {
        Self {
            text: String::new(),
            rows: Vec::new(),
        }
    }
}

/// One difference between two [`PathTable`]s, from [`PathTable::diff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a, T> {
    /// In the new table only: its row there, path and value.
    Added(usize, &'a str, &'a T),
    /// In the old table only: its row there, path and value.
    Removed(usize, &'a str, &'a T),
    /// In both with different values: the row in the new table, the path,
    /// the new value and the old one.
    Changed(usize, &'a str, &'a T, &'a T),
}

/// Builds a [`PathTable`] from paths in any order.
#[derive(Debug)]
pub struct PathTableBuilder<T> {
    table: PathTable<T>,
    /// Whether the paths pushed so far are strictly increasing.
    sorted: bool,
}

impl<T: Clone> PathTableBuilder<T> {
    /// A builder for about `rows` paths of about `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        Self {
            table: PathTable {
                text: String::with_capacity(bytes),
                rows: Vec::with_capacity(rows),
            },
            sorted: true,
        }
    }

    /// Adds `path` with `value`; a path added twice keeps its last value.
    pub fn push(&mut self, path: &str, value: T) {
        if self.sorted
            && let Some(last) = self.table.rows.len().checked_sub(1)
            && self.table.path(last) >= path
        {
            self.sorted = false;
        }
        self.table.text.push_str(path);
        self.table.rows.push((self.table.text.len(), value));
    }

    /// Adds a path made of `parts` joined, with `value`, without building
    /// the path first.
    pub fn push_parts(&mut self, parts: &[&str], value: T) {
        let start = self.table.text.len();
        for p in parts {
            self.table.text.push_str(p);
        }
        if self.sorted
            && let Some(last) = self.table.rows.len().checked_sub(1)
            && self.table.path(last) >= &self.table.text[start..]
        {
            self.sorted = false;
        }
        self.table.rows.push((self.table.text.len(), value));
    }

    /// The table: sorted, each path once. Paths pushed in order (the
    /// common case: a context's entries) cost no sort.
    pub fn finish(self) -> PathTable<T> {
        if self.sorted {
            return self.table;
        }
        let table = self.table;
        let mut order: Vec<usize> = (0..table.rows.len()).collect();
        // Stable: of equal paths the last pushed stays last.
        order.sort_by(|&a, &b| table.path(a).cmp(table.path(b)));
        let mut out = PathTable {
            text: String::with_capacity(table.text.len()),
            rows: Vec::with_capacity(table.rows.len()),
        };
        for (n, &i) in order.iter().enumerate() {
            let path = table.path(i);
            if order.get(n + 1).is_some_and(|&j| table.path(j) == path) {
                continue;
            }
            out.text.push_str(path);
            out.rows.push((out.text.len(), table.rows[i].1.clone()));
        }
        out
    }
}

impl<T> PathTable<T> {
    /// How many paths.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The path of row `i`.
    ///
    /// # Panics
    ///
    /// When `i` is not below [`len`](Self::len).
    pub fn path(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.rows[i - 1].0 };
        &self.text[start..self.rows[i].0]
    }

    /// The value of row `i`.
    ///
    /// # Panics
    ///
    /// When `i` is not below [`len`](Self::len).
    pub fn value(&self, i: usize) -> &T {
        &self.rows[i].1
    }

    /// Every path with its value, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> + '_ {
        let mut start = 0;
        self.rows.iter().map(move |(end, v)| {
            let path = &self.text[start..*end];
            start = *end;
            (path, v)
        })
    }

    /// The row of `path`, if present.
    pub fn find(&self, path: &str) -> Option<usize> {
        let mut lo = 0;
        let mut hi = self.rows.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path(mid).cmp(path) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

impl<T: PartialEq> PathTable<T> {
    /// What differs from `before` to `self`, in path order, in one merge
    /// pass over both tables.
    pub fn diff<'a>(&'a self, before: &'a PathTable<T>) -> impl Iterator<Item = Change<'a, T>> {
        let (mut i, mut j) = (0, 0);
        let (new, old) = (self, before);
        std::iter::from_fn(move || {
            loop {
                match (i < new.len(), j < old.len()) {
                    (false, false) => return None,
                    (true, false) => {
                        i += 1;
                        return Some(Change::Added(i - 1, new.path(i - 1), new.value(i - 1)));
                    }
                    (false, true) => {
                        j += 1;
                        return Some(Change::Removed(j - 1, old.path(j - 1), old.value(j - 1)));
                    }
                    (true, true) => {
                        let (p, q) = (new.path(i), old.path(j));
                        match p.cmp(q) {
                            Ordering::Less => {
                                i += 1;
                                return Some(Change::Added(i - 1, p, new.value(i - 1)));
                            }
                            Ordering::Greater => {
                                j += 1;
                                return Some(Change::Removed(j - 1, q, old.value(j - 1)));
                            }
                            Ordering::Equal => {
                                let (a, b) = (new.value(i), old.value(j));
                                i += 1;
                                j += 1;
                                if a != b {
                                    return Some(Change::Changed(i - 1, p, a, b));
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}

/// What one source entry brings into an image, for the cache: its kind,
/// permission bits, owner, and content (the file's digest, the digest of
/// a symlink's target, nothing for a folder). Never its mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    /// 0 file, 1 folder, 2 symlink.
    pub kind: u8,
    /// Permission bits, setuid, setgid and sticky included.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// A file's content digest, the sha256 of a symlink's target, zeros
    /// for a folder.
    pub content: [u8; 32],
}

impl SourceId {
    /// The identity of `entry`.
    pub fn of(entry: &Entry) -> SourceId {
        let (kind, content) = match &entry.kind {
            EntryKind::File => (
                0,
                entry
                    .digest
                    .as_deref()
                    .map_or([0; 32], content_bytes_of_digest),
            ),
            EntryKind::Dir => (1, [0; 32]),
            EntryKind::Symlink { target } => (2, Sha256::digest(target.as_bytes()).into()),
        };
        SourceId {
            kind,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            content,
        }
    }

    const ENCODED: usize = 1 + 4 + 4 + 4 + 32;

    fn write(&self, w: &mut Writer) {
        w.u8(self.kind);
        w.u32(self.mode);
        w.u32(self.uid);
        w.u32(self.gid);
        w.bytes(&self.content);
    }

    fn read(r: &mut Reader<'_>) -> Result<SourceId, DecodeError> {
        let at = r.pos;
        let kind = r.u8()?;
        if kind > 2 {
            return Err(DecodeError::Value {
                at,
                what: "unknown source kind",
            });
        }
        Ok(SourceId {
            kind,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            content: r.array()?,
        })
    }
}

/// The value of each lower-case hex digit, 0xff for any other byte.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The 32 bytes of a canonical `sha256:<hex>` digest; any other text (the
/// index refuses it, but a digest is only an identity here) is hashed.
/// A table lookup per digit: 50,000 of these are decoded per rebuild of a
/// large `COPY`.
pub fn content_bytes_of_digest(digest: &str) -> [u8; 32] {
    let hashed = || Sha256::digest(digest.as_bytes()).into();
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return hashed();
    };
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return hashed();
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (a, b) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        bad |= a | b;
        *o = (a << 4) | (b & 0x0f);
    }
    if bad & 0xf0 != 0 {
        return hashed();
    }
    out
}

/// A step's sources: every entry its `COPY`/`ADD` sources select, by its
/// path in the context, with its [`SourceId`].
pub type SourceList = PathTable<SourceId>;

/// Marks the binary form of a [`SourceList`].
const SOURCES_MAGIC: &[u8] = b"servin-sources 1\n";

impl PathTable<SourceId> {
    /// The sources made of `entries` (in any order; an entry named twice
    /// counts once). Entries in path order, as one selection gives them,
    /// are taken in one pass without sorting.
    pub fn of_entries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> SourceList {
        let entries = entries.into_iter();
        let mut b = PathTableBuilder::with_capacity(entries.size_hint().0, 0);
        for e in entries {
            b.push(&e.path, SourceId::of(e));
        }
        b.finish()
    }

    /// A digest of every path and identity, for a cache key: equal lists
    /// give equal digests, and any difference of path, kind, mode, owner,
    /// content or link target gives another.
    pub fn digest(&self) -> [u8; 32] {
        const CHUNK: usize = 64 * 1024;
        let mut h = Sha256::new();
        h.update(b"servin-sources 1\0");
        let mut w = Writer::with_capacity(CHUNK + 4096);
        for (path, id) in self.iter() {
            w.str(path);
            id.write(&mut w);
            if w.buf.len() >= CHUNK {
                h.update(&w.buf);
                w.buf.clear();
            }
        }
        h.update(&w.buf);
        h.finalize().into()
    }

    /// The binary form, for [`SourceList::decode`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            SOURCES_MAGIC.len() + 16 + self.text.len() + self.rows.len() * (4 + SourceId::ENCODED),
        );
        w.bytes(SOURCES_MAGIC);
        w.u64(self.rows.len() as u64);
        for (path, id) in self.iter() {
            w.str(path);
            id.write(&mut w);
        }
        w.buf
    }

    /// Reads what [`SourceList::encode`] wrote.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for anything else: another format, a truncated
    /// input, paths out of order.
    pub fn decode(bytes: &[u8]) -> Result<SourceList, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.take(SOURCES_MAGIC.len())? != SOURCES_MAGIC {
            return Err(DecodeError::Magic("a servin source list"));
        }
        let at = r.pos;
        let n = usize::try_from(r.u64()?).map_err(|_| DecodeError::Value {
            at,
            what: "too many sources",
        })?;
        // Each row takes at least its length and identity: a count the
        // input cannot hold is refused before anything is allocated.
        if n > r.remaining() / (4 + SourceId::ENCODED) {
            return Err(DecodeError::Truncated(r.remaining()));
        }
        let mut table = PathTable {
            text: String::with_capacity(r.remaining() - n * (4 + SourceId::ENCODED)),
            rows: Vec::with_capacity(n),
        };
        for i in 0..n {
            let at = r.pos;
            let path = r.str()?;
            if i > 0 && table.path(i - 1) >= path {
                return Err(DecodeError::Value {
                    at,
                    what: "source paths out of order",
                });
            }
            let id = SourceId::read(&mut r)?;
            table.text.push_str(path);
            table.rows.push((table.text.len(), id));
        }
        if r.remaining() != 0 {
            return Err(DecodeError::Value {
                at: r.pos,
                what: "bytes after the last source",
            });
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::codec;

    fn file(path: &str, content: &str) -> Entry {
        Entry::plain_file(
            path,
            content.len() as u64,
            codec::format_digest(&Sha256::digest(content.as_bytes())),
        )
    }

    fn table(rows: &[(&str, u8)]) -> PathTable<u8> {
        let mut b = PathTableBuilder::with_capacity(rows.len(), 0);
        for (p, v) in rows {
            b.push(p, *v);
        }
        b.finish()
    }

    #[test]
    fn builds_sorted_and_unique_whatever_the_order() {
        let t = table(&[("b", 1), ("a", 2), ("b", 3), ("a-c", 4), ("a/b", 5)]);
        let rows: Vec<(&str, u8)> = t.iter().map(|(p, v)| (p, *v)).collect();
        // Byte order: `-` sorts before `/`; the last value of `b` stays.
        assert_eq!(rows, [("a", 2), ("a-c", 4), ("a/b", 5), ("b", 3)]);
        assert_eq!(t.find("a/b"), Some(2));
        assert_eq!(t.find("a/"), None);
        assert_eq!(t.path(3), "b");
        let mut b = PathTableBuilder::with_capacity(2, 0);
        b.push_parts(&["/app", "/", "x"], 1u8);
        b.push_parts(&["/app", "/", "y"], 2u8);
        let t = b.finish();
        assert_eq!(t.find("/app/y"), Some(1));
        assert!(PathTable::<u8>::default().is_empty());
    }

    #[test]
    fn diff_is_one_merge_in_path_order() {
        let old = table(&[("a", 1), ("b", 2), ("c", 3), ("e", 5)]);
        let new = table(&[("a", 1), ("b", 9), ("d", 4), ("e", 5), ("f", 6)]);
        let got: Vec<String> = new
            .diff(&old)
            .map(|c| match c {
                Change::Added(i, p, v) => format!("+{i}{p}{v}"),
                Change::Removed(i, p, v) => format!("-{i}{p}{v}"),
                Change::Changed(i, p, v, w) => format!("~{i}{p}{w}{v}"),
            })
            .collect();
        assert_eq!(got, ["~1b29", "-2c3", "+2d4", "+4f6"]);
        assert_eq!(new.diff(&new).count(), 0);
        assert_eq!(new.diff(&PathTable::default()).count(), new.len());
        assert_eq!(PathTable::default().diff(&old).count(), old.len());
    }

    #[test]
    fn identity_ignores_mtime_and_follows_content_mode_owner_and_link() {
        let a = file("src/a", "hello");
        let key = |e: &Entry| SourceList::of_entries([e]).digest();
        let base = key(&a);
        let mut touched = a.clone();
        touched.mtime_ns = 99;
        assert_eq!(key(&touched), base);
        let mut byte = a.clone();
        byte.digest = file("src/a", "hellp").digest;
        assert_ne!(key(&byte), base);
        let mut mode = a.clone();
        mode.mode = 0o755;
        assert_ne!(key(&mode), base);
        let mut uid = a.clone();
        uid.uid = 1000;
        assert_ne!(key(&uid), base);
        let mut gid = a.clone();
        gid.gid = 1000;
        assert_ne!(key(&gid), base);
        let mut renamed = a.clone();
        renamed.path = "src/b".into();
        assert_ne!(key(&renamed), base);
        let link = |t: &str| Entry {
            kind: EntryKind::Symlink { target: t.into() },
            digest: None,
            ..a.clone()
        };
        assert_ne!(key(&link("x")), key(&link("y")));
        let dir = Entry {
            kind: EntryKind::Dir,
            digest: None,
            ..a.clone()
        };
        assert_ne!(key(&dir), key(&link("")));
        // The path and the identity stay apart: no two lists collide by
        // moving bytes from one to the other.
        assert_ne!(
            SourceList::of_entries([&file("ab", "x")]).digest(),
            SourceList::of_entries([&file("a", "x")]).digest()
        );
    }

    #[test]
    fn digests_decode_as_the_codec_does_and_other_text_is_hashed() {
        let hex = "0123456789abcdef".repeat(4);
        let canonical = format!("sha256:{hex}");
        assert_eq!(
            Some(content_bytes_of_digest(&canonical)),
            codec::parse_digest(&canonical)
        );
        for other in [
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}g", &hex[..63]),
            "sha256:abc".to_string(),
            hex.clone(),
        ] {
            assert_eq!(
                content_bytes_of_digest(&other),
                <[u8; 32]>::from(Sha256::digest(other.as_bytes())),
                "{other}"
            );
        }
    }

    #[test]
    fn encodes_and_refuses_what_is_not_a_list() {
        let entries = [file("b", "2"), file("a", "1"), file("a/c", "3")];
        let list = SourceList::of_entries(&entries);
        let bytes = list.encode();
        assert_eq!(SourceList::decode(&bytes).unwrap(), list);
        assert!(SourceList::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(SourceList::decode(b"{\"parent\":\"x\"}").is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(SourceList::decode(&extra).is_err());
        // A count larger than the input holds is refused, not allocated.
        let mut huge = SOURCES_MAGIC.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(SourceList::decode(&huge).is_err());
        assert_eq!(
            SourceList::decode(&SourceList::default().encode()).unwrap(),
            SourceList::default()
        );
    }
}
