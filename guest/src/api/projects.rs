//! The `/servin/v1/projects/...` calls: the reconciler's API.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use servin_proto::DesiredProject;
use servin_proto::apply::BuiltImage;

use crate::engine::Engine;
use crate::error::{Error, RequestError, Result};
use crate::image::progress::Progress;
use crate::reconcile;
use crate::reconcile::apply::Report;

use super::body;
use super::routes::{Body, Query, empty, json, streaming};

/// `POST /servin/v1/projects/{name}/plan[?services=S...][&recreate_volumes=1]`:
/// the plan that would take the project to the desired state in the body,
/// as `apply` with the same query would run it. Changes nothing.
pub async fn plan(
    engine: &Arc<Engine>,
    name: &str,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let desired = read_desired(name, req).await?;
    let observed = reconcile::observe::observe_all(engine, &desired);
    let plan = reconcile::plan::plan(&desired, &observed, &options(query))
        .map_err(|e| Error::from(RequestError::Invalid(format!("project {name}: {e}"))))?;
    Ok(json(StatusCode::OK, &plan))
}

/// The plan's limits from `services` and `recreate_volumes`.
fn options(query: &Query) -> reconcile::plan::Options {
    reconcile::plan::Options {
        services: query
            .all("services")
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
        recreate_volumes: query.flag("recreate_volumes"),
    }
}

/// `POST /servin/v1/projects/{name}/apply[?services=S...][&recreate_volumes=1]`: makes what
/// exists match the desired state in the body, streaming one JSON line per
/// step and a summary last (see [`servin_proto::apply::Event`]). The apply
/// goes on if the client leaves. With `recreate_volumes`, a project volume
/// or network whose definition changed is replaced (with the containers
/// using it) instead of refused.
pub async fn apply(
    engine: &Arc<Engine>,
    name: &str,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let desired = read_desired(name, req).await?;
    let options = options(query);
    // The table exists before the answer names it, so no report can come
    // before it.
    let pending = (!desired.pending_images.is_empty())
        .then(|| engine.pending_images.open(name, &desired.pending_images));
    let apply_id = pending.as_ref().map(|p| p.id.clone());
    let engine = Arc::clone(engine);
    let mut response = stream_report(name, |report| {
        reconcile::apply::apply(engine, desired, options, report, pending)
    });
    if let Some(id) = apply_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(servin_proto::APPLY_ID_HEADER, id);
    }
    Ok(response)
}

/// `POST /servin/v1/projects/{name}/applies/{apply}/images`: the CLI
/// reports an image that apply `apply` (named by the apply's
/// [`servin_proto::APPLY_ID_HEADER`]) waits for: its ID once built, or its
/// build's error ([`BuiltImage`]). 204; 404 when the apply ended or does
/// not wait for the image, 409 when it was reported already.
pub async fn built_image(
    engine: &Arc<Engine>,
    name: &str,
    apply: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let subject = format!("project {name} apply {apply} image report");
    let body = body::read(req.into_body(), &subject).await?;
    let report: BuiltImage = serde_json::from_slice(&body)
        .map_err(|e| Error::from(RequestError::Invalid(format!("{subject}: {e}"))))?;
    engine
        .pending_images
        .report(name, apply, &report.reference, report.id, report.error)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /servin/v1/projects/{name}/down[?volumes=1][&rmi=all][&t=SECONDS]`: removes
/// the project's containers (dependants first), networks and, when asked,
/// volumes and the images its containers ran, found by label; streams as
/// `apply` does.
pub fn down(engine: &Arc<Engine>, name: &str, query: &Query) -> Result<Response<Body>> {
    if name.is_empty() {
        return Err(Error::from(RequestError::Invalid(
            "down: no project name given".to_string(),
        )));
    }
    let images = match query.get("rmi") {
        None => false,
        Some("all") => true,
        Some(other) => {
            return Err(Error::from(RequestError::Invalid(format!(
                "down: rmi={other:?}: only rmi=all (every image the project's containers ran) is taken"
            ))));
        }
    };
    let options = reconcile::down::DownOptions {
        volumes: query.flag("volumes"),
        images,
        timeout: query
            .get("t")
            .map(|t| {
                t.parse::<i64>().map_err(|_| {
                    Error::from(RequestError::Invalid(format!(
                        "down: t={t:?} is not a number of seconds"
                    )))
                })
            })
            .transpose()?,
    };
    let engine = Arc::clone(engine);
    let project = name.to_string();
    Ok(stream_report(name, |report| {
        reconcile::down::down(engine, project, options, report)
    }))
}

/// Runs `work` (an apply or a down of project `name`) on a task of its
/// own, so that it goes on if the client leaves, and streams its report:
/// one JSON line per step, the summary last.
fn stream_report<F>(name: &str, work: impl FnOnce(Arc<Report>) -> F) -> Response<Body>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let report = Arc::new(Report::new(name, Progress::new(tx)));
    let work = work(Arc::clone(&report));
    tokio::spawn(async move {
        work.await;
        report.finish();
    });
    streaming("application/json", rx)
}

/// The desired state in the body, checked for consistency.
async fn read_desired(name: &str, req: Request<Incoming>) -> Result<DesiredProject> {
    let body = body::read(req.into_body(), &format!("project {name} desired state")).await?;
    let desired = serde_json::from_slice(&body).map_err(|e| {
        Error::from(RequestError::Invalid(format!(
            "project {name}: invalid desired state: {e}"
        )))
    })?;
    reconcile::validate(name, &desired)?;
    Ok(desired)
}
