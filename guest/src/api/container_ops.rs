//! The container calls of `docker stats`, `top`, `pause`, `unpause` and
//! `update`. The figures, freezing and limits are
//! [`crate::container::stats`]', [`crate::container::pause`]'s and
//! [`crate::container::update`]'s work; this module reads the request and
//! shapes the answer.

use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::ContainerUpdateResponse;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::body;
use super::routes::{Body, Query, empty, json, streaming_bounded};
use crate::container::Container;
use crate::container::stats::{self, Subject};
use crate::container::update::Change;
use crate::engine::Engine;
use crate::error::{Error, RequestError, Result};

/// How often a stats stream sends a sample (Docker's figure).
const STREAM_INTERVAL: Duration = Duration::from_secs(1);
/// The gap between the two samples of `stream=false`, so that its
/// `precpu_stats` are filled without holding the client a whole second.
const NO_STREAM_GAP: Duration = Duration::from_millis(100);

fn task_error(what: &str) -> impl FnOnce(tokio::task::JoinError) -> Error + '_ {
    move |e| Error::Runtime {
        context: what.to_string(),
        message: e.to_string(),
    }
}

async fn sample(s: Subject) -> Result<Option<bollard_stubs::models::ContainerStatsResponse>> {
    tokio::task::spawn_blocking(move || stats::sample(&s))
        .await
        .map_err(task_error("stats"))
}

fn bool_param(query: &Query, key: &str, default: bool) -> Result<bool> {
    match query.get(key) {
        None => Ok(default),
        Some("1" | "true" | "True") => Ok(true),
        Some("0" | "false" | "False") => Ok(false),
        Some(v) => {
            Err(RequestError::Invalid(format!("invalid {key} {v:?}: want true or false")).into())
        }
    }
}

fn line(v: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(v).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// `GET /containers/{id}/stats?stream=&one-shot=`.
pub async fn stats(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let stream = bool_param(query, "stream", true)?;
    let one_shot = bool_param(query, "one-shot", false)?;
    if one_shot && stream {
        return Err(
            RequestError::Invalid("cannot have stream=true and one-shot=true".to_string()).into(),
        );
    }
    if !stream {
        let subject = Subject::of(&c);
        let Some(first) = sample(subject.clone()).await? else {
            return Ok(json(StatusCode::OK, &stats::zeroed(&subject)));
        };
        if one_shot {
            return Ok(json(StatusCode::OK, &stats::with_previous(first, None)));
        }
        tokio::time::sleep(NO_STREAM_GAP).await;
        let v = match sample(subject.clone()).await? {
            Some(second) => stats::with_previous(second, Some(&first)),
            None => stats::zeroed(&subject),
        };
        return Ok(json(StatusCode::OK, &v));
    }
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(stream_stats(c, tx));
    Ok(streaming_bounded("application/json", rx))
}

/// Sends a sample a second until the client goes, the container is
/// removed, or (when it was running) it stops; a container that is not
/// running gets Docker's zeroed stats.
async fn stream_stats(c: Arc<Container>, tx: mpsc::Sender<Bytes>) {
    let was_running = c.state().status.is_running();
    let mut previous = None;
    loop {
        let subject = Subject::of(&c);
        let now = match sample(subject.clone()).await {
            Ok(now) => now,
            Err(e) => {
                tracing::warn!("container {}: stats: {}", c.name(), e.full_message());
                None
            }
        };
        let v = match &now {
            Some(s) => stats::with_previous(s.clone(), previous.as_ref()),
            None => stats::zeroed(&subject),
        };
        if tx.send(line(&v)).await.is_err() {
            return;
        }
        previous = now;
        let state = c.state();
        if c.signals().borrow().removed || (was_running && !state.status.is_running()) {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(STREAM_INTERVAL) => {}
            () = tx.closed() => return,
        }
    }
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let top = engine.containers.top(&c, query.get("ps_args")).await?;
    Ok(json(StatusCode::OK, &top))
}

/// `POST /containers/{id}/pause`.
pub async fn pause(engine: &Arc<Engine>, key: &str) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    engine.containers.pause(&c).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(engine: &Arc<Engine>, key: &str) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    engine.containers.unpause(&c).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/update`.
pub async fn update(
    engine: &Arc<Engine>,
    key: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let body: Value = body::json(req.into_body(), "container update").await?;
    let c = engine.containers.get(key)?;
    let change = Change::parse(&body)?;
    engine.containers.update_resources(&c, &change).await?;
    Ok(json(
        StatusCode::OK,
        &ContainerUpdateResponse {
            warnings: Some(Vec::new()),
        },
    ))
}
