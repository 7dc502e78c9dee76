//! Registry credentials: `~/.servin/auth.json` (ours, mode 0600, written
//! atomically), falling back to `~/.docker/config.json` as the docker CLI
//! keeps it: `auths` (an `auth` or a `username` and `password`), and the
//! credential helpers `credHelpers` (per registry) and `credsStore` (for
//! the rest), run as the `docker-credential-NAME` programs. So one
//! `docker login` serves both tools.

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

/// The docker CLI's `~/.docker/config.json`, the parts about credentials.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, DockerAuth>,
    /// The helper for every registry without its own.
    #[serde(default, rename = "credsStore")]
    pub creds_store: Option<String>,
    /// A helper per registry.
    #[serde(default, rename = "credHelpers")]
    pub cred_helpers: BTreeMap<String, String>,
}

/// One `auths` entry, in either of the docker CLI's forms.
#[derive(Debug, Default, Deserialize)]
pub struct DockerAuth {
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// The names Docker Hub goes by in a docker config.
const DOCKER_HUB: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "https://index.docker.io/v1/",
];

/// A config key (`https://host/v1/`, `host`, `host:port`) as a host name,
/// as the docker CLI compares them.
fn hostname_of(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Whether config key `key` names `registry`.
fn names(key: &str, registry: &str) -> bool {
    let host = hostname_of(key);
    host == registry
        || (DOCKER_HUB.contains(&registry)
            && (DOCKER_HUB.contains(&host) || DOCKER_HUB.contains(&key)))
}

/// The server address a credential helper is asked about: Docker Hub's
/// legacy URL, or the host.
fn helper_server(registry: &str) -> &str {
    if DOCKER_HUB.contains(&registry) {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

impl DockerConfig {
    /// The helper for `registry`: its own, else the store.
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        self.cred_helpers
            .iter()
            .find(|(k, _)| names(k, registry))
            .map(|(_, v)| v.as_str())
            .or(self.creds_store.as_deref())
            .filter(|h| !h.is_empty())
    }

    /// `registry`'s credentials written in the file itself.
    pub fn inline(&self, registry: &str) -> Option<Credentials> {
        let entry = self
            .auths
            .iter()
            .find(|(k, _)| names(k, registry))
            .map(|(_, v)| v)?;
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => decode(&AuthEntry {
                auth: entry.auth.clone(),
            }),
        }
    }
}

/// What a credential helper answers to `get`.
#[derive(Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Asks `docker-credential-HELPER get` for `registry`'s credentials; `None`
/// when it has none. An identity token (user `<token>`) is not a password
/// and is not used.
pub fn from_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, Error> {
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let failed = |why: String| {
        Error::Invalid(format!(
            "error getting credentials for {registry} from {program} (credsStore or credHelpers in ~/.docker/config.json): {why}"
        ))
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(helper_server(registry).as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let said = format!(
            "{}{}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("it exited with {}: {said}", out.status)));
    }
    let answer: HelperAnswer = serde_json::from_str(text.trim())
        .map_err(|e| failed(format!("its answer is not the helper protocol's JSON: {e}")))?;
    if answer.username == "<token>" || answer.username.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

fn read_docker_config(path: &PathBuf) -> Result<DockerConfig, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{} is not valid JSON: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
        Err(source) => Err(Error::File {
            path: path.clone(),
            source,
        }),
    }
}

/// Credentials for `registry` from our file, else docker's (its helper
/// first, as the docker CLI does, then its `auths`).
pub fn lookup(registry: &str) -> Result<Option<Credentials>, Error> {
    let Some(home) = home() else {
        return Ok(None);
    };
    if let Ok(f) = read(&home.join(".servin/auth.json"))
        && let Some(c) = f.auths.get(registry).and_then(decode)
    {
        return Ok(Some(c));
    }
    let docker = read_docker_config(&home.join(".docker/config.json"))?;
    if let Some(helper) = docker.helper_for(registry)
        && let Some(c) = from_helper(helper, registry)?
    {
        return Ok(Some(c));
    }
    Ok(docker.inline(registry))
}

/// Stores credentials for `registry` in `~/.docker/config.json` instead of
/// servin's file (`servin login --docker-config`), as the docker CLI keeps
/// them without a helper: an `auths` entry, the rest of the file kept.
pub fn store_in_docker_config(registry: &str, c: &Credentials) -> Result<PathBuf, Error> {
    let path = home()
        .map(|h| h.join(".docker/config.json"))
        .ok_or_else(|| Error::Invalid("HOME is not set".to_string()))?;
    let mut doc: serde_json::Value = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{} is not valid JSON: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(source) => return Err(Error::File { path, source }),
    };
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| Error::Invalid(format!("{} is not a JSON object", path.display())))?;
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    let auths = auths
        .as_object_mut()
        .ok_or_else(|| Error::Invalid(format!("`auths` in {} is not an object", path.display())))?;
    auths.insert(registry.to_string(), serde_json::json!({ "auth": auth }));
    let body = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::Invalid(format!("cannot encode credentials: {e}")))?;
    write_private(&path, &body)?;
    Ok(path)
}

fn write(f: &AuthFile) -> Result<PathBuf, Error> {
    let path = auth_path()?;
    let body = serde_json::to_vec_pretty(f)
        .map_err(|e| Error::Invalid(format!("cannot encode credentials: {e}")))?;
    write_private(&path, &body)?;
    Ok(path)
}

/// Writes `body` to `path` atomically, mode 0600, making its folder.
fn write_private(path: &PathBuf, body: &[u8]) -> Result<(), Error> {
    let dir = path
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| Error::Invalid(format!("no folder for {}", path.display())))?;
    let err = |p: &PathBuf| {
        let p = p.clone();
        move |source| Error::File { path: p, source }
    };
    std::fs::create_dir_all(&dir).map_err(err(&dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err(&tmp))?;
    out.write_all(body).map_err(err(&tmp))?;
    out.sync_all().map_err(err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(err(path))?;
    Ok(())
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn registry_of_references() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/a/b:c"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    fn config(json: &str) -> DockerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn docker_config_keys_name_registries_as_the_docker_cli_does() {
        let c = config(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"https://reg.example:5000/v2/":{"username":"a","password":"b"}}}"#,
        );
        let hub = c.inline("docker.io").unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        let reg = c.inline("reg.example:5000").unwrap();
        assert_eq!((reg.username.as_str(), reg.password.as_str()), ("a", "b"));
        assert!(c.inline("other.example").is_none());
    }

    #[test]
    fn a_registry_helper_beats_the_store() {
        let c = config(r#"{"credsStore":"desktop","credHelpers":{"reg.example":"ecr-login"}}"#);
        assert_eq!(c.helper_for("reg.example"), Some("ecr-login"));
        assert_eq!(c.helper_for("docker.io"), Some("desktop"));
        assert_eq!(config("{}").helper_for("docker.io"), None);
        assert_eq!(helper_server("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(helper_server("reg.example"), "reg.example");
    }

    #[test]
    fn a_missing_helper_is_an_error_naming_it() {
        let e = from_helper("servin-no-such-helper", "reg.example").unwrap_err();
        assert!(
            e.to_string()
                .contains("docker-credential-servin-no-such-helper"),
            "{e}"
        );
    }
}
