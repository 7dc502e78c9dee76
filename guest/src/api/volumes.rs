//! The `/volumes/...` calls: list, create, inspect, remove and prune.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::body;
use super::routes::{Body, Query, empty, json};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::volume::{Filters, VolumeInfo};

/// `POST /volumes/create`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateBody {
    /// The name; empty for a random one.
    pub name: Option<String>,
    /// The driver; `local` or empty.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: Option<HashMap<String, String>>,
    /// Labels.
    pub labels: Option<HashMap<String, String>>,
}

/// `GET /volumes`'s answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResponse {
    /// The volumes.
    pub volumes: Vec<VolumeInfo>,
    /// Always empty.
    pub warnings: Vec<String>,
}

/// `POST /volumes/prune`'s answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneResponse {
    /// Names of the volumes removed.
    pub volumes_deleted: Vec<String>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

fn filters(query: &Query, allowed: &[&str]) -> Result<Filters> {
    Filters::parse(query.get("filters"), allowed)
}

/// Runs blocking volume work (folder removal) off the engine's thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Runtime {
            context: "volume operation".to_string(),
            message: e.to_string(),
        })?
}

/// `GET /volumes`: filters `name`, `label`, `label!`, `driver`, `dangling`.
pub fn list(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let f = filters(query, &["name", "label", "label!", "driver", "dangling"])?;
    let used = engine.containers.volumes_in_use();
    let volumes = engine
        .volumes
        .list()
        .into_iter()
        .filter(|v| f.matches(v, used.contains_key(&v.meta.name)))
        .map(|v| v.info())
        .collect();
    Ok(json(
        StatusCode::OK,
        &ListResponse {
            volumes,
            warnings: Vec::new(),
        },
    ))
}

/// `POST /volumes/create`.
pub async fn create(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let body: CreateBody = body::json_or_default(req.into_body(), "volume create").await?;
    let v = engine.volumes.create(
        body.name.as_deref(),
        body.driver.as_deref(),
        body.labels.unwrap_or_default(),
        body.driver_opts.unwrap_or_default(),
    )?;
    Ok(json(StatusCode::CREATED, &v.info()))
}

/// `GET /volumes/{name}`.
pub fn inspect(engine: &Arc<Engine>, name: &str) -> Result<Response<Body>> {
    let v = engine.volumes.get(name)?;
    Ok(json(StatusCode::OK, &v.info()))
}

/// `DELETE /volumes/{name}?force=1`: refused while a container uses it;
/// `force` makes a missing volume no error.
pub async fn remove(engine: &Arc<Engine>, name: &str, query: &Query) -> Result<Response<Body>> {
    let force = query.flag("force");
    let containers = Arc::clone(&engine.containers);
    let name = name.to_string();
    blocking(move || containers.remove_volume(&name, force)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Whether a request path (`/v1.41/volumes/prune`) names an API version
/// older than 1.42, where prune removed named volumes too.
fn before_1_42(raw_path: &str) -> bool {
    let Some(v) = raw_path
        .strip_prefix("/v")
        .and_then(|rest| rest.split('/').next())
    else {
        return false;
    };
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < (1, 42),
        _ => false,
    }
}

/// `POST /volumes/prune`: unused anonymous volumes, or every unused volume
/// with the `all=true` filter (and for clients of API versions before
/// 1.42, as Docker does); `label` and `label!` filters too.
pub async fn prune(engine: &Arc<Engine>, query: &Query, raw_path: &str) -> Result<Response<Body>> {
    let mut f = filters(query, &["label", "label!", "all"])?;
    if before_1_42(raw_path) && !query.get("filters").is_some_and(|q| q.contains("\"all\"")) {
        f.all = true;
    }
    let containers = Arc::clone(&engine.containers);
    let (deleted, freed) = blocking(move || containers.prune_volumes(&f)).await?;
    Ok(json(
        StatusCode::OK,
        &PruneResponse {
            volumes_deleted: deleted,
            space_reclaimed: freed,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_clients_prune_named_volumes_too() {
        assert!(before_1_42("/v1.41/volumes/prune"));
        assert!(before_1_42("/v1.24/volumes/prune"));
        assert!(!before_1_42("/v1.42/volumes/prune"));
        assert!(!before_1_42("/v1.47/volumes/prune"));
        assert!(!before_1_42("/volumes/prune"));
        assert!(!before_1_42("/vx/volumes/prune"));
    }
}
