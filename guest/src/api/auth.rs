//! `POST /auth`: checks registry credentials, as `docker login` asks.

use std::sync::Arc;

use bollard_stubs::models::AuthConfig;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use oci_client::secrets::RegistryAuth;

use super::routes::{Body, json};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::reference::ImageRef;
use crate::registry::registry_error;

/// The registry host of a login's server address: `https://x/v1/` is `x`;
/// none, `index.docker.io` and `registry-1.docker.io` are `docker.io`.
pub fn login_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or_default();
    match s {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Checks the credentials by reading the tags of a repository with them:
/// the registry answers "unknown name" to good credentials and "unauthorized"
/// to bad ones, whether it takes basic or bearer-token authentication.
pub async fn auth(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let body = http_body_util::Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|e| Error::BadRequest(format!("read the login body: {e}")))?
        .to_bytes();
    let cfg: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("invalid login body: {e}")))?;
    let user = cfg.username.clone().unwrap_or_default();
    let password = cfg.password.clone().unwrap_or_default();
    if user.is_empty() {
        return Err(Error::BadRequest(
            "a username is needed to log in".to_string(),
        ));
    }
    let host = login_host(cfg.serveraddress.as_deref().unwrap_or_default());
    let r = ImageRef::parse(&format!("{host}/servin/login-check"))
        .map_err(|e| Error::BadRequest(format!("invalid registry {host:?}: {e}")))?;
    let registry_auth = RegistryAuth::Basic(user, password);
    let client = engine.registries.client(&r, &registry_auth);
    let context = format!("login to {host}");
    let outcome = client
        .list_tags(&r.to_oci(), &registry_auth, Some(1), None)
        .await;
    match outcome.map_err(|e| registry_error(&context, e)) {
        Ok(_) => {}
        Err(Error::Registry { status: 404, .. }) => {}
        Err(Error::Registry {
            status: 403,
            message,
            ..
        }) => {
            return Err(Error::Registry {
                context,
                message: format!("unauthorized: incorrect username or password ({message})"),
                status: 401,
            });
        }
        Err(other) => return Err(other),
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(login_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_host(""), "docker.io");
        assert_eq!(login_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            login_host("http://reg.example:5000/v2/"),
            "reg.example:5000"
        );
    }
}
