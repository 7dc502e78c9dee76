//! Which entries a `COPY`/`ADD` source names, and the digest of their
//! content for the build cache.
//!
//! Docker's rules for a local source:
//!
//! - It is relative to the context root whatever its form (`/app`, `./app`
//!   and `app` are the same) and cleaned first; one that leaves the root
//!   (`../x`) is refused.
//! - Without wildcards it names one path. A folder selects itself and
//!   everything below it (the executor copies its *contents*).
//! - With `*`, `?` or `[...]` (Go's `filepath.Match`, segment by segment) it
//!   selects every path it matches, and `**` matches any number of folders
//!   as BuildKit allows. A matched folder brings everything below it, so
//!   each match is a [`Selection`] with its root.
//! - A source that is a symlink, or goes through one, is followed inside
//!   the context ([`ContextIndex::resolve`]): `COPY link /x` copies what
//!   `link` points to. Symlinks *below* a copied folder stay symlinks.
//! - Nothing matched is an error, worded as Docker words it.
//!
//! [`sources`] holds what the build cache keeps of a selection: a compact
//! sorted [`SourceList`](sources::SourceList) of each entry's identity,
//! compared with another in one merge pass.

pub mod sources;

use std::collections::{BTreeMap, VecDeque};

use sha2::{Digest as _, Sha256};

use crate::{
    codec::{self, Writer},
    ignore,
    index::{ContextIndex, Entry, EntryKind, write_entry_identity},
};

/// One path a source matched, with the entries it brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    /// The matched path as the source names it, relative to the context
    /// root; empty for the root itself (`COPY . /app`). A file copied into
    /// a folder takes this path's last name.
    pub root: String,
    /// Where the entries are: `root` with symlinks followed (Docker follows
    /// a source that is a symlink, or goes through one, and copies what it
    /// points to); the same as `root` when there are none.
    pub target: String,
    /// The entry at `target` (absent for the context root, and for a
    /// folder that `.dockerignore` excluded while re-including paths below
    /// it) then every entry below it, in path order.
    pub entries: Vec<&'a Entry>,
}

/// Why a source selects nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The source leaves the context root.
    #[error("forbidden path outside the build context: {src}")]
    OutsideContext {
        /// The source as written.
        src: String,
    },
    /// A source without wildcards names nothing in the context.
    #[error("file not found in build context or excluded by .dockerignore: {src}")]
    NotFound {
        /// The source as written.
        src: String,
    },
    /// A source with wildcards matches nothing.
    #[error("no source files were specified: nothing in the build context matches {src}")]
    NoMatch {
        /// The source as written.
        src: String,
    },
    /// The wildcards are malformed.
    #[error("bad source pattern {src}: {reason}")]
    BadPattern {
        /// The source as written.
        src: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Whether Docker treats the source as a pattern: an unescaped `*`, `?` or
/// `[`.
fn has_wildcards(src: &str) -> bool {
    let mut chars = src.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

impl ContextIndex {
    /// The entries the `COPY`/`ADD` source `src` selects, one
    /// [`Selection`] per matched path, in path order.
    ///
    /// # Errors
    ///
    /// [`SelectError`]: outside the context, not found, no match, or a
    /// malformed pattern.
    pub fn select(&self, src: &str) -> Result<Vec<Selection<'_>>, SelectError> {
        let cleaned = ignore::clean(src.trim_start_matches('/'));
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(SelectError::OutsideContext {
                src: src.to_owned(),
            });
        }
        let not_found = || SelectError::NotFound {
            src: src.to_owned(),
        };
        if cleaned == "." {
            return Ok(vec![Selection {
                root: String::new(),
                target: String::new(),
                entries: self.entries().iter().collect(),
            }]);
        }
        if !has_wildcards(&cleaned) {
            let target = self.resolve(&cleaned).ok_or_else(not_found)?;
            let entries = self.below(&target);
            if entries.is_empty() && !target.is_empty() {
                return Err(not_found());
            }
            return Ok(vec![Selection {
                root: cleaned,
                target,
                entries,
            }]);
        }
        let tokens = ignore::compile(&cleaned).map_err(|reason| SelectError::BadPattern {
            src: src.to_owned(),
            reason,
        })?;
        let mut groups: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
        for entry in self.entries() {
            let chars: Vec<char> = entry.path.chars().collect();
            // The shortest matching path wins: a matched folder brings
            // everything below it, as Docker's walk stops there.
            let ends = chars
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == '/')
                .map(|(i, _)| i)
                .chain([chars.len()]);
            for end in ends {
                if ignore::match_tokens(&tokens, &chars[..end]) {
                    let root: String = chars[..end].iter().collect();
                    groups.entry(root).or_default().push(entry);
                    break;
                }
            }
        }
        if groups.is_empty() {
            return Err(SelectError::NoMatch {
                src: src.to_owned(),
            });
        }
        let mut out = Vec::with_capacity(groups.len());
        for (root, entries) in groups {
            let is_link = matches!(
                entries.first(),
                Some(Entry { path, kind: EntryKind::Symlink { .. }, .. }) if *path == root
            );
            if !is_link {
                out.push(Selection {
                    target: root.clone(),
                    root,
                    entries,
                });
                continue;
            }
            let target = self.resolve(&root).ok_or_else(not_found)?;
            let entries = self.below(&target);
            if entries.is_empty() && !target.is_empty() {
                return Err(not_found());
            }
            out.push(Selection {
                root,
                target,
                entries,
            });
        }
        Ok(out)
    }

    /// The entry at `path` (empty: the context root, which has none) and
    /// every entry below it.
    fn below(&self, path: &str) -> Vec<&Entry> {
        let entries = self.entries();
        if path.is_empty() {
            return entries.iter().collect();
        }
        // `web`, then `web-extra`, then `web/...`: the entries below a
        // folder are contiguous, but not always right after it.
        let below = format!("{path}/");
        let start = entries.partition_point(|e| e.path.as_str() < below.as_str());
        self.get(path)
            .into_iter()
            .chain(
                entries[start..]
                    .iter()
                    .take_while(|e| e.path.starts_with(&below)),
            )
            .collect()
    }

    /// `path` with every symlink along it followed inside the context, as
    /// Docker resolves a `COPY` source: an absolute link target starts
    /// from the context root and `..` stops there, so nothing resolves
    /// outside the context. `None` after 40 links (a loop). The result may
    /// name nothing in the context (a dangling link); empty is the root.
    pub fn resolve(&self, path: &str) -> Option<String> {
        const MAX_LINKS: usize = 40;
        let mut pending: VecDeque<String> = path.split('/').map(str::to_owned).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => resolved.push(part),
            }
            let here = resolved.join("/");
            let Some(Entry {
                kind: EntryKind::Symlink { target },
                ..
            }) = self.get(&here)
            else {
                continue;
            };
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            for part in target.split('/').rev() {
                pending.push_front(part.to_owned());
            }
        }
        Some(resolved.join("/"))
    }

    /// `sha256:<hex>` of what a source set brings into an image, for the
    /// cache key of a `COPY`/`ADD`: for each selection its root, then for
    /// each entry its path relative to the target, kind, symlink target,
    /// mode, owner, size and content digest. Never the mtime: touching
    /// files does not invalidate the cache.
    pub fn content_digest(&self, selections: &[Selection<'_>]) -> String {
        let mut hasher = Sha256::new();
        let mut w = Writer::with_capacity(256);
        for selection in selections {
            w.buf.clear();
            w.u8(b'R');
            w.str(&selection.root);
            hasher.update(&w.buf);
            for entry in &selection.entries {
                let rel = if selection.target.is_empty() {
                    entry.path.as_str()
                } else {
                    entry
                        .path
                        .strip_prefix(selection.target.as_str())
                        .map_or(entry.path.as_str(), |r| r.trim_start_matches('/'))
                };
                w.buf.clear();
                w.u8(b'E');
                write_entry_identity(&mut w, rel, entry);
                hasher.update(&w.buf);
            }
        }
        codec::format_digest(&hasher.finalize())
    }
}
