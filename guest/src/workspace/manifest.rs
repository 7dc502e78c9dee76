//! What a workspace volume holds: every folder, file and link below its
//! data folder, with a SHA-256 digest of each file's content. Links are
//! listed, never followed.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub use servin_proto::workspace::ManifestEntry as Entry;

/// The manifest of `data`, sorted by path.
pub fn manifest(data: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk(data, "", &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<()> {
    let read = std::fs::read_dir(dir).map_err(Error::io("read folder", dir))?;
    for item in read {
        let item = item.map_err(Error::io("read folder", dir))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if super::apply::is_temp(&name) {
            continue;
        }
        let path = item.path();
        let meta = std::fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
        let rel = format!("{prefix}{name}");
        let ft = meta.file_type();
        let mut e = Entry {
            path: rel.clone(),
            kind: String::new(),
            mode: meta.permissions().mode() & 0o7777,
            size: 0,
            digest: None,
            target: None,
            uid: meta.uid(),
            gid: meta.gid(),
        };
        if ft.is_dir() {
            e.kind = "dir".to_string();
            out.push(e);
            walk(&path, &format!("{rel}/"), out)?;
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&path).map_err(Error::io("read link", &path))?;
            e.kind = "symlink".to_string();
            e.target = Some(t.to_string_lossy().into_owned());
            out.push(e);
        } else if ft.is_file() {
            e.kind = "file".to_string();
            e.size = meta.len();
            e.digest = Some(file_digest(&path)?);
            out.push(e);
        }
    }
    Ok(())
}

fn file_digest(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(Error::io("open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}
