//! `POST /auth`: checks registry credentials, as `docker login` asks.

use std::sync::Arc;

use bollard_stubs::models::AuthConfig;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use super::body;
use super::routes::{Body, json};
use crate::engine::Engine;
use crate::error::{Error, RequestError, Result};
use crate::image::reference::ImageRef;
use crate::image::registry::{auth_error, refused, registry_error};

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

/// `POST /auth`: checks the credentials of an `AuthConfig` body with its
/// registry, as `docker login` does. Answers 200 `Login Succeeded`, or 401
/// naming the registry when it refuses them.
pub async fn auth(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let cfg: AuthConfig = body::json(req.into_body(), "login").await?;
    let user = cfg.username.clone().unwrap_or_default();
    let password = cfg.password.clone().unwrap_or_default();
    if user.is_empty() {
        return Err(Error::from(RequestError::Invalid(
            "a username is needed to log in".to_string(),
        )));
    }
    let host = login_host(cfg.serveraddress.as_deref().unwrap_or_default());
    let r = ImageRef::parse(&format!("{host}/servin/login-check")).map_err(|e| {
        Error::from(RequestError::Invalid(format!(
            "invalid registry {host:?}: {e}"
        )))
    })?;
    let registry_auth = RegistryAuth::Basic(user, password);
    let client = engine.registries.client(&r, &registry_auth)?;
    let context = format!("log in to {host}");
    let checked = check(&client, &r, &registry_auth, &context).await;
    if checked.is_err() {
        // No point keeping a client (and its connections) for credentials
        // that do not work.
        engine.registries.forget(&r, &registry_auth);
    }
    checked?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}

/// A refusal answered with 401, as Docker's `POST /auth` does.
fn unauthorized(context: &str, message: String) -> Error {
    Error::Registry {
        context: context.to_string(),
        message,
        status: 401,
    }
}

/// Pings the registry and authenticates. A registry handing out bearer
/// tokens accepts the credentials when its token server issues a token for
/// them (as `docker login` judges; the token may grant nothing on the probe
/// repository). A registry taking basic authentication, or none, is asked
/// for the tags of a probe repository with the credentials: "unknown name"
/// means they were accepted, "unauthorized" that they were not.
async fn check(client: &Client, r: &ImageRef, auth: &RegistryAuth, context: &str) -> Result<()> {
    let oci = r.to_oci();
    match client.auth(&oci, auth, RegistryOperation::Pull).await {
        Ok(Some(_bearer_token)) => return Ok(()),
        Ok(None) => {}
        Err(e) => {
            return Err(match auth_error(context, auth, e) {
                Error::Registry {
                    status: 403,
                    message,
                    ..
                } => unauthorized(context, message),
                other => other,
            });
        }
    }
    match client.list_tags(&oci, auth, Some(1), None).await {
        Ok(_) => Ok(()),
        Err(e) => match registry_error(context, e) {
            Error::Registry { status: 404, .. } => Ok(()),
            Error::Registry {
                status: 403,
                message,
                ..
            } => Err(unauthorized(context, refused(&message))),
            other => Err(other),
        },
    }
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
