//! The `/servin/v1/projects/...` calls: the reconciler's API.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use servin_proto::DesiredProject;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::project;

use super::routes::{Body, json};

/// The largest desired state accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// `POST /servin/v1/projects/{name}/plan`: the plan that would take the
/// project's containers to the desired state in the body. Changes nothing.
pub async fn plan(
    engine: &Arc<Engine>,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let desired = read_desired(name, req).await?;
    project::validate(name, &desired)?;
    let observed = project::observe(&engine.containers, name);
    Ok(json(
        StatusCode::OK,
        &project::plan::plan(&desired, &observed),
    ))
}

async fn read_desired(name: &str, req: Request<Incoming>) -> Result<DesiredProject> {
    let body = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| Error::BadRequest(format!("project {name}: read the desired state: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("project {name}: invalid desired state: {e}")))
}
