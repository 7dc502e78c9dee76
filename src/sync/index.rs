//! The index of a workspace: what the engine's copy holds as far as this
//! CLI knows (each path's kind, mode, size, modification time, inode and
//! content digest), with the generation of the volume it describes.
//!
//! It is kept in `.servin/sync/<project>/<container>.json` beside the project file
//! and written crash-safely (temporary file, rename), only after the
//! engine confirmed a batch: a `servin up` or `servin watch` started again
//! sends nothing that did not change. When the volume's generation differs
//! (it was removed and made again), the index is replaced by the engine's
//! manifest, so only what differs is sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use servin_proto::workspace::Manifest;

use super::tree::{Kind, Node};

/// The index format's version.
const VERSION: u32 = 1;

/// A SHA-256 digest, kept as its 32 bytes (an index of a large tree holds
/// one per file) and written as `sha256:<hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Reads `sha256:<64 hex digits>`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a sha256 digest: {s}")))
    }
}

/// One path as last sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    #[serde(default)]
    pub size: u64,
    /// 0 when unknown (taken from the engine's manifest).
    #[serde(default)]
    pub mtime_ns: i64,
    /// 0 when unknown.
    #[serde(default)]
    pub ino: u64,
    /// The SHA-256 of a file's content (`sha256:<hex>` in the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// A link's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Entry {
    /// The entry of `node` as sent, with the file's `digest`.
    pub fn of(node: &Node, digest: Option<&str>) -> Self {
        Self {
            kind: node.kind,
            mode: node.mode,
            size: node.size,
            mtime_ns: node.mtime_ns,
            ino: node.ino,
            digest: digest.and_then(Digest::parse),
            target: node.target.clone(),
        }
    }

    /// Whether `node` is this entry with its stat unchanged, so its
    /// content need not be read.
    pub fn same_stat(&self, node: &Node) -> bool {
        self.kind == node.kind
            && self.mode == node.mode
            && self.size == node.size
            && self.mtime_ns == node.mtime_ns
            && self.ino == node.ino
            && self.target == node.target
    }
}

/// What the engine's copy holds, as far as this CLI knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub version: u32,
    /// The volume's generation the entries describe.
    #[serde(default)]
    pub generation: String,
    /// The owner the entries were written with.
    #[serde(default)]
    pub owner: (u32, u32),
    #[serde(default)]
    pub entries: BTreeMap<String, Entry>,
}

impl Index {
    /// Reads the index at `path`; a missing or unreadable one is empty
    /// (everything is compared with the engine's manifest then).
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Index>(&b).ok())
            .filter(|i| i.version == VERSION)
            .unwrap_or_default()
    }

    /// Writes the index to `path` through a temporary file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut me = self.clone();
        me.version = VERSION;
        let bytes = serde_json::to_vec(&me).map_err(std::io::Error::other)?;
        let tmp = tmp_path(path);
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }

    /// The index that the engine's `manifest` describes (stats unknown,
    /// so every file's content is compared by digest).
    pub fn from_manifest(m: &Manifest, owner: (u32, u32)) -> Self {
        let entries = m
            .entries
            .iter()
            .filter_map(|e| {
                let kind = match e.kind.as_str() {
                    "dir" => Kind::Dir,
                    "file" => Kind::File,
                    "symlink" => Kind::Symlink,
                    _ => return None,
                };
                // An entry owned by someone else is written again.
                let mode = if (e.uid, e.gid) == owner {
                    e.mode
                } else {
                    u32::MAX
                };
                Some((
                    e.path.clone(),
                    Entry {
                        kind,
                        mode,
                        size: e.size,
                        mtime_ns: 0,
                        ino: 0,
                        digest: e.digest.as_deref().and_then(Digest::parse),
                        target: e.target.clone(),
                    },
                ))
            })
            .collect();
        Self {
            version: VERSION,
            generation: m.generation.clone(),
            owner,
            entries,
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Where the index of container `container`'s workspace is kept: beside
/// the project file, in `.servin/sync/`.
pub fn index_path(project_file: &Path, project: &str, container: &str) -> PathBuf {
    project_file
        .parent()
        .unwrap_or(Path::new("."))
        .join(".servin")
        .join("sync")
        .join(project)
        .join(format!("{container}.json"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_digest_reads_back_as_written() {
        let text = format!("sha256:{}", "0a".repeat(32));
        let d = Digest::parse(&text).unwrap();
        assert_eq!(d.0, [10u8; 32]);
        assert_eq!(d.to_string(), text);
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{text}\""));
        for bad in ["sha256:0a", "md5:00", "sha256:zz"] {
            assert!(Digest::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn two_projects_in_one_folder_keep_separate_indexes() {
        let file = Path::new("/p/servin-a.toml");
        let a = index_path(file, "a", "web");
        let b = index_path(Path::new("/p/servin-b.toml"), "b", "web");
        assert_ne!(a, b);
        assert_eq!(a, Path::new("/p/.servin/sync/a/web.json"));
    }

    #[test]
    fn an_index_saved_loads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".servin/sync/web.json");
        let mut i = Index {
            generation: "g".into(),
            owner: (1000, 1000),
            ..Index::default()
        };
        i.entries.insert(
            "a.txt".into(),
            Entry {
                kind: Kind::File,
                mode: 0o644,
                size: 3,
                mtime_ns: 5,
                ino: 9,
                digest: Digest::parse(&format!("sha256:{}", "ab".repeat(32))),
                target: None,
            },
        );
        i.save(&path).unwrap();
        let back = Index::load(&path);
        assert_eq!(back.entries, i.entries);
        assert_eq!(back.generation, "g");
        // A damaged index is empty (the engine's manifest stands in).
        std::fs::write(&path, "{").unwrap();
        assert!(Index::load(&path).entries.is_empty());
    }
}
