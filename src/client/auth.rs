//! Registry credentials: `~/.servin/auth.json` (ours, mode 0600, written
//! atomically), falling back to `~/.docker/config.json` for reading.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::Error;

/// One registry's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The contents of `~/.servin/auth.json`, in the docker config layout.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AuthFile {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
}

/// One entry: `auth` is base64 of `user:password`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: String,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `~/.servin/auth.json`.
pub fn auth_path() -> Result<PathBuf, Error> {
    home()
        .map(|h| h.join(".servin/auth.json"))
        .ok_or_else(|| Error::Invalid("HOME is not set".to_string()))
}

fn read(path: &PathBuf) -> Result<AuthFile, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{} is not valid JSON: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(source) => Err(Error::File {
            path: path.clone(),
            source,
        }),
    }
}

fn decode(entry: &AuthEntry) -> Option<Credentials> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// Credentials for `registry` from our file, else docker's.
pub fn lookup(registry: &str) -> Option<Credentials> {
    let home = home()?;
    for file in [".servin/auth.json", ".docker/config.json"] {
        if let Ok(f) = read(&home.join(file))
            && let Some(c) = f.auths.get(registry).and_then(decode)
        {
            return Some(c);
        }
    }
    None
}

fn write(f: &AuthFile) -> Result<PathBuf, Error> {
    let path = auth_path()?;
    let dir = path
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| Error::Invalid("no folder for auth.json".to_string()))?;
    let err = |p: &PathBuf| {
        let p = p.clone();
        move |source| Error::File { path: p, source }
    };
    std::fs::create_dir_all(&dir).map_err(err(&dir))?;
    let tmp = dir.join(format!(".auth.json.{}", std::process::id()));
    let body = serde_json::to_vec_pretty(f)
        .map_err(|e| Error::Invalid(format!("cannot encode credentials: {e}")))?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err(&tmp))?;
    out.write_all(&body).map_err(err(&tmp))?;
    out.sync_all().map_err(err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(err(&path))?;
    Ok(path)
}

/// Stores credentials for `registry`; returns the file written.
pub fn store(registry: &str, c: &Credentials) -> Result<PathBuf, Error> {
    let mut f = read(&auth_path()?)?;
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    f.auths.insert(registry.to_string(), AuthEntry { auth });
    write(&f)
}

/// Removes `registry`'s credentials; false when there were none.
pub fn remove(registry: &str) -> Result<bool, Error> {
    let mut f = read(&auth_path()?)?;
    if f.auths.remove(registry).is_none() {
        return Ok(false);
    }
    write(&f)?;
    Ok(true)
}

/// The `X-Registry-Auth` header value (base64url JSON), as docker sends it.
pub fn header(registry: &str, c: &Credentials) -> String {
    let json = serde_json::json!({
        "username": c.username,
        "password": c.password,
        "serveraddress": registry,
    });
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// The registry host of an image reference (`docker.io` when none).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_of_references() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/a/b:c"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }
}
