//! `/servin/v1/workspaces/{volume}`: the synced copies of workspaces (see
//! [`crate::workspace`]).
//!
//! - `GET .../{volume}`: `{"generation": ...}` of an existing copy (404
//!   when there is none).
//! - `GET .../{volume}/manifest`: `{"generation", "entries": [...]}`.
//! - `POST .../{volume}/batch`: writes a batch (length-prefixed JSON
//!   header, then a tar stream), making the volume when missing; answers
//!   with a [`BatchOutcome`] naming each path that failed.

use std::io::Read;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::routes::{Body, json};
use crate::container::archive::{UploadPiece, UploadReader};
use crate::engine::Engine;
use crate::error::{Error, RequestError, Result, VolumeError};
use crate::volume::Volume;
use crate::workspace::{self, BatchHeader, BatchOutcome, WORKSPACE_LABEL};
use servin_proto::workspace::{Manifest, WorkspaceInfo};

/// The largest batch header taken (the JSON list of deletions).
const MAX_HEADER: u32 = 256 * 1024 * 1024;

/// A workspace volume by name: it must carry [`WORKSPACE_LABEL`].
fn workspace_volume(engine: &Engine, name: &str) -> Result<Volume> {
    let v = engine.volumes.get(name)?;
    if !v.meta.labels.contains_key(WORKSPACE_LABEL) {
        return Err(VolumeError::NotWorkspace(name.to_string()).into());
    }
    Ok(v)
}

/// `GET /servin/v1/workspaces/{volume}`.
pub fn inspect(engine: &Arc<Engine>, name: &str) -> Result<Response<Body>> {
    let v = workspace_volume(engine, name)?;
    Ok(json(
        StatusCode::OK,
        &WorkspaceInfo {
            generation: workspace::generation(&v),
        },
    ))
}

/// `GET /servin/v1/workspaces/{volume}/manifest`.
pub async fn manifest(engine: &Arc<Engine>, name: &str) -> Result<Response<Body>> {
    let v = workspace_volume(engine, name)?;
    let data = engine.volumes.mount_path(name)?;
    let entries = tokio::task::spawn_blocking(move || workspace::manifest::manifest(&data))
        .await
        .map_err(|e| Error::Runtime {
            context: format!("workspace {}: manifest", v.meta.name),
            message: e.to_string(),
        })??;
    Ok(json(
        StatusCode::OK,
        &Manifest {
            generation: workspace::generation(&v),
            entries,
        },
    ))
}

/// `POST /servin/v1/workspaces/{volume}/batch`.
pub async fn batch(
    engine: &Arc<Engine>,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let (tx, rx) = mpsc::channel::<UploadPiece>(8);
    let pump = tokio::spawn(super::archive::pump_body(req.into_body(), tx));
    let engine2 = Arc::clone(engine);
    let name2 = name.to_string();
    let result = tokio::task::spawn_blocking(move || write_batch(&engine2, &name2, rx))
        .await
        .map_err(|e| Error::Runtime {
            context: format!("workspace {name}: batch"),
            message: e.to_string(),
        });
    // The rest of the body is read before the answer, as `archive` does.
    let _ = pump.await;
    let outcome = result??;
    for f in &outcome.failed {
        tracing::warn!("workspace {name}: {}: {}", f.path, f.message);
    }
    Ok(json(StatusCode::OK, &outcome))
}

fn write_batch(
    engine: &Engine,
    name: &str,
    rx: mpsc::Receiver<UploadPiece>,
) -> Result<BatchOutcome> {
    let mut input = UploadReader::new(rx);
    let header = read_header(name, &mut input)?;
    let v = match workspace_volume(engine, name) {
        Ok(v) => v,
        Err(Error::NoSuchVolume(_)) => {
            if !header.labels.contains_key(WORKSPACE_LABEL) {
                return Err(RequestError::Invalid(format!(
                    "workspace {name}: the batch's labels need {WORKSPACE_LABEL} to make the volume"
                ))
                .into());
            }
            engine
                .volumes
                .create(Some(name), None, header.labels.clone(), Default::default())?
        }
        Err(e) => return Err(e),
    };
    let data = engine.volumes.mount_path(name)?;
    let mut outcome = workspace::apply::apply(&data, &header, input)?;
    outcome.generation = workspace::generation(&v);
    Ok(outcome)
}

fn read_header(name: &str, input: &mut impl Read) -> Result<BatchHeader> {
    let bad = |m: String| Error::from(RequestError::Invalid(format!("workspace {name}: {m}")));
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|e| bad(format!("batch header length: {e}")))?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return Err(bad(format!(
            "batch header of {len} bytes is over the limit of {MAX_HEADER}"
        )));
    }
    let mut raw = vec![0u8; len as usize];
    input
        .read_exact(&mut raw)
        .map_err(|e| bad(format!("batch header: {e}")))?;
    serde_json::from_slice(&raw).map_err(|e| bad(format!("batch header: {e}")))
}
