//! Registry clients, credentials and which registries speak plain HTTP.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::error::Error;
use crate::image::reference::{ImageRef, host_of};

/// Makes and keeps registry clients (one per registry and credentials, so
/// tokens are reused between pulls).
pub struct Registries {
    insecure: Vec<String>,
    home: Option<PathBuf>,
    clients: Mutex<HashMap<String, Arc<Client>>>,
}

#[derive(Deserialize, Default)]
struct AuthHeader {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    registrytoken: String,
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

impl Registries {
    /// Registries reached over `http://` are loopback ones and `insecure`.
    pub fn new(insecure: Vec<String>, home: Option<PathBuf>) -> Self {
        Self {
            insecure,
            home,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `registry` is reached over plain HTTP.
    pub fn is_plain_http(&self, r: &ImageRef) -> bool {
        r.is_loopback_registry()
            || self
                .insecure
                .iter()
                .any(|i| i == &r.registry || i == host_of(&r.registry))
    }

    fn key(&self, r: &ImageRef, auth: &RegistryAuth) -> (String, bool) {
        let plain = self.is_plain_http(r);
        let who = match auth {
            RegistryAuth::Anonymous => String::new(),
            RegistryAuth::Basic(u, p) => crate::image::digest::of(format!("{u}:{p}").as_bytes()),
            RegistryAuth::Bearer(t) => crate::image::digest::of(t.as_bytes()),
        };
        (format!("{}|{plain}|{who}", r.registry), plain)
    }

    /// Drops the client kept for `r`'s registry and `auth` (after the
    /// registry refused them).
    pub fn forget(&self, r: &ImageRef, auth: &RegistryAuth) {
        let (key, _) = self.key(r, auth);
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
    }

    /// A client for `r`'s registry carrying `auth`; an error when no TLS
    /// client can be made (a host without CA certificates).
    pub fn client(&self, r: &ImageRef, auth: &RegistryAuth) -> Result<Arc<Client>, Error> {
        let (key, plain) = self.key(r, auth);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(&key) {
            return Ok(Arc::clone(c));
        }
        let config = ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            platform_resolver: None,
            user_agent: concat!("servin/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        // Not `Client::new`, which falls back to a default client that
        // panics when the system has no CA certificates.
        let client = Client::try_from(config).map_err(|e| Error::Registry {
            context: format!("connect to {}", r.registry),
            message: format!(
                "cannot make an HTTPS client: {e} (are CA certificates installed? apt install ca-certificates)"
            ),
            status: 500,
        })?;
        let client = Arc::new(client);
        clients.insert(key, Arc::clone(&client));
        Ok(client)
    }

    /// Credentials for `r`: from the `X-Registry-Auth` header when it carries
    /// any, else from `~/.servin/auth.json`, else `~/.docker/config.json`.
    pub fn auth(&self, r: &ImageRef, header: Option<&str>) -> RegistryAuth {
        if let Some(auth) = header.and_then(decode_header) {
            return auth;
        }
        let Some(home) = &self.home else {
            return RegistryAuth::Anonymous;
        };
        for file in [".servin/auth.json", ".docker/config.json"] {
            if let Some(auth) = from_file(&home.join(file), &r.registry) {
                return auth;
            }
        }
        RegistryAuth::Anonymous
    }
}

fn decode_header(value: &str) -> Option<RegistryAuth> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(value).ok())?;
    let h: AuthHeader = serde_json::from_slice(&bytes).ok()?;
    if !h.registrytoken.is_empty() {
        return Some(RegistryAuth::Bearer(h.registrytoken));
    }
    if !h.username.is_empty() {
        return Some(RegistryAuth::Basic(h.username, h.password));
    }
    if !h.auth.is_empty() {
        return basic_from_auth(&h.auth);
    }
    None
}

fn basic_from_auth(auth: &str) -> Option<RegistryAuth> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(RegistryAuth::Basic(u.to_string(), p.to_string()))
}

/// Reads credentials for `registry` from a Docker-style `auths` file.
fn from_file(path: &Path, registry: &str) -> Option<RegistryAuth> {
    let bytes = std::fs::read(path).ok()?;
    let file: AuthFile = serde_json::from_slice(&bytes).ok()?;
    let wanted = if registry == crate::image::reference::DOCKER_HUB {
        "index.docker.io"
    } else {
        registry
    };
    file.auths.iter().find_map(|(key, entry)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        if host != wanted && host != registry {
            return None;
        }
        if !entry.username.is_empty() {
            Some(RegistryAuth::Basic(
                entry.username.clone(),
                entry.password.clone(),
            ))
        } else {
            basic_from_auth(&entry.auth)
        }
    })
}

/// Longest part of a registry's refusal quoted in an error.
const MAX_REASON: usize = 200;

/// The words for credentials a registry or its token server refused, with
/// what it said (cut short).
pub fn refused(detail: &str) -> String {
    let mut detail: String = detail.trim().chars().take(MAX_REASON).collect();
    if detail.is_empty() {
        detail = "refused".to_string();
    }
    format!("unauthorized: incorrect username or password ({detail})")
}

/// What a token server's refusal says: the messages of a registry-style
/// `errors` list, Docker Hub's `details`, or the body itself.
fn token_reason(body: &str) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        #[serde(default)]
        errors: Vec<RefusalError>,
        #[serde(default)]
        details: String,
    }
    #[derive(Deserialize)]
    struct RefusalError {
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Refusal>(body) {
        Ok(r) if !r.details.is_empty() => r.details,
        Ok(r) if r.errors.iter().any(|e| !e.message.is_empty()) => r
            .errors
            .iter()
            .map(|e| e.message.as_str())
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.trim().to_string(),
    }
}

/// Like [`registry_error`] for an error of authenticating with `auth`: a
/// token server refusing credentials that were given is reported as wrong
/// credentials.
pub fn auth_error(context: &str, auth: &RegistryAuth, e: OciDistributionError) -> Error {
    match (&e, auth) {
        (OciDistributionError::AuthenticationFailure(m), RegistryAuth::Basic(..)) => {
            Error::Registry {
                context: context.to_string(),
                message: refused(&format!("token server: {}", token_reason(m))),
                status: 403,
            }
        }
        _ => registry_error(context, e),
    }
}

/// Turns an oci-client error into an engine error about `context`.
pub fn registry_error(context: &str, e: OciDistributionError) -> Error {
    let (status, message) = match &e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let status = envelope.errors.iter().map(|err| match err.code {
                OciErrorCode::ManifestUnknown
                | OciErrorCode::NameUnknown
                | OciErrorCode::BlobUnknown
                | OciErrorCode::NotFound => 404,
                // 403, not 401: a 401 makes the docker CLI prompt for a login.
                OciErrorCode::Unauthorized | OciErrorCode::Denied => 403,
                _ => 502,
            });
            let status = status.min().unwrap_or(502);
            let text: Vec<String> = envelope
                .errors
                .iter()
                .map(|err| {
                    if err.message.is_empty() {
                        format!("{:?}", err.code)
                    } else {
                        err.message.clone()
                    }
                })
                .collect();
            (status, text.join("; "))
        }
        OciDistributionError::AuthenticationFailure(m) => (
            403,
            format!(
                "unauthorized: authentication required (token server: {})",
                token_reason(m)
            ),
        ),
        OciDistributionError::UnauthorizedError { .. } => {
            (403, "unauthorized: authentication required".to_string())
        }
        OciDistributionError::ImageManifestNotFoundError(m) => {
            (404, format!("manifest unknown: {m}"))
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let status = match code {
                401 | 403 => 403,
                404 => 404,
                _ => 502,
            };
            (status, format!("registry answered {code}: {message}"))
        }
        OciDistributionError::RequestError(re) => {
            let mut text = format!("registry unreachable: {re}");
            let mut src = std::error::Error::source(re);
            while let Some(s) = src {
                text.push_str(&format!(": {s}"));
                src = s.source();
            }
            (502, text)
        }
        other => (502, other.to_string()),
    };
    Error::Registry {
        context: context.to_string(),
        message,
        status,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_docker_auth_header_and_files() {
        let header = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"p","serveraddress":"x"}"#);
        assert!(
            matches!(decode_header(&header), Some(RegistryAuth::Basic(u, p)) if u == "u" && p == "p")
        );
        assert!(decode_header("e30=").is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("me:secret");
        std::fs::write(
            &file,
            format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        assert!(
            matches!(from_file(&file, "127.0.0.1:5000"), Some(RegistryAuth::Basic(u, _)) if u == "me")
        );
        assert!(from_file(&file, "other:1").is_none());
    }

    #[test]
    fn token_server_refusals_are_quoted_briefly() {
        assert_eq!(
            token_reason(r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#),
            "bad credentials"
        );
        assert_eq!(
            token_reason(r#"{"details":"incorrect username or password"}"#),
            "incorrect username or password"
        );
        assert_eq!(token_reason(" nope \n"), "nope");
        let long = refused(&"x".repeat(1000));
        assert!(long.len() < 300, "{long}");
        assert!(refused("").ends_with("(refused)"));
    }
}
