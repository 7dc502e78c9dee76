//! The engine's bottom-level state helpers, shared by containers, networks,
//! volumes and images: crash-safe JSON files and random IDs.
//!
//! Every record the engine keeps is a small JSON file in the object's
//! folder. [`write_json`] makes it survive a crash (temporary file, fsync,
//! rename, fsync of the folder); [`write_json_atomic`] only keeps a killed
//! engine from leaving half a file, for files rewritten on every start.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `value` as JSON to `dir/name` crash-safely.
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(Error::json(name.to_string()))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    write_synced(&tmp, &bytes)?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(Error::io("rename", &path))?;
    sync_dir(dir);
    Ok(())
}

/// Writes `value` as JSON to `dir/name` atomically (temp file, rename) but
/// without waiting for the disk: for files rewritten on every start and
/// exit (the state, the bundle's spec, exec specs), where the rename is what
/// keeps a killed engine from leaving half a file, and an fsync on the start
/// path costs milliseconds on a busy disk.
pub fn write_json_atomic(dir: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(Error::json(name.to_string()))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, &bytes).map_err(Error::io("write", &tmp))?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(Error::io("rename", &path))
}

/// Reads `dir/name` as JSON.
pub fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let path = dir.join(name);
    let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
    serde_json::from_slice(&bytes).map_err(Error::json(path.display().to_string()))
}

/// Writes `data` to `path` and fsyncs it.
pub fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(Error::io("create", path))?;
    f.write_all(data).map_err(Error::io("write", path))?;
    f.sync_all().map_err(Error::io("sync", path))
}

/// Fsyncs a folder so a rename inside it survives a crash. Best effort: some
/// filesystems refuse to sync folders.
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Random bytes from the kernel.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let path = std::path::Path::new("/dev/urandom");
    let mut f = std::fs::File::open(path).map_err(Error::io("open", path))?;
    let mut buf = vec![0u8; n];
    f.read_exact(&mut buf).map_err(Error::io("read", path))?;
    Ok(buf)
}

/// A new 64-hex-digit container or exec ID.
pub fn new_id() -> Result<String> {
    Ok(random_bytes(32)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
