//! `GET`, `HEAD` and `PUT /containers/{id}/archive`: `docker cp` both ways.
//! The stat of the path travels in the `X-Docker-Container-Path-Stat`
//! header (base64 of its JSON) as Docker sends it; the tar streams both
//! ways, never held whole. The copy itself is
//! [`crate::container::archive`]'s.

use std::sync::Arc;

use base64::Engine as _;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::body::MAX_UPLOAD;
use super::routes::{Body, Query, empty};
use crate::container::archive::{PutOptions, UploadPiece};
use crate::container::archive_tar::PathStat;
use crate::engine::Engine;
use crate::error::{Error, RequestError, Result};

/// The header carrying a path's stat.
pub const STAT_HEADER: &str = "x-docker-container-path-stat";

fn path_param(query: &Query) -> Result<String> {
    query.get("path").map(str::to_string).ok_or_else(|| {
        Error::from(RequestError::Invalid(
            "bad parameter: path cannot be empty".to_string(),
        ))
    })
}

fn with_stat(mut r: Response<Body>, stat: &PathStat) -> Result<Response<Body>> {
    let json = serde_json::to_vec(stat).map_err(Error::json("path stat"))?;
    let value = base64::engine::general_purpose::STANDARD.encode(json);
    let value = HeaderValue::from_str(&value)
        .map_err(|e| Error::from(RequestError::Invalid(format!("path stat header: {e}"))))?;
    r.headers_mut().insert(STAT_HEADER, value);
    Ok(r)
}

/// `HEAD /containers/{id}/archive?path=P`: the stat header only.
pub async fn head(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let path = path_param(query)?;
    let stat = engine.containers.archive_stat(&c, &path).await?;
    with_stat(empty(StatusCode::OK), &stat)
}

/// `GET /containers/{id}/archive?path=P`: a tar of P, made as it is sent.
pub async fn get(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let path = path_param(query)?;
    let (stat, rx) = engine.containers.archive_get(c, path).await?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece.map(Frame::data), rx))
    });
    let mut r = Response::new(BodyExt::boxed_unsync(http_body_util::StreamBody::new(
        stream,
    )));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    with_stat(r, &stat)
}

/// `PUT /containers/{id}/archive?path=DIR`: extracts the uploaded tar
/// into DIR as it arrives (at most [`MAX_UPLOAD`] bytes).
pub async fn put(
    engine: &Arc<Engine>,
    key: &str,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let checked = engine
        .containers
        .get(key)
        .and_then(|c| path_param(query).map(|p| (c, p)));
    let (c, path) = match checked {
        Ok(v) => v,
        Err(e) => {
            super::routes::discard(req).await;
            return Err(e);
        }
    };
    let opts = PutOptions {
        no_overwrite_dir_non_dir: query.flag("noOverwriteDirNonDir"),
        copy_uid_gid: query.flag("copyUIDGID"),
    };
    let (tx, rx) = mpsc::channel::<UploadPiece>(8);
    let pump = tokio::spawn(pump_body(req.into_body(), tx));
    let result = engine.containers.archive_put(c, path, opts, rx).await;
    // The rest of the body is read (and dropped) before the answer, so a
    // client still sending gets it rather than a broken pipe.
    let _ = pump.await;
    result.map(|()| empty(StatusCode::OK))
}

/// Feeds the upload to the extraction; once it stops taking pieces (done
/// or failed), reads the rest and drops it.
pub(crate) async fn pump_body(mut body: Incoming, tx: mpsc::Sender<UploadPiece>) {
    if body.size_hint().lower() > MAX_UPLOAD {
        let _ = tx
            .send(Err(format!(
                "the upload is over the engine's limit of {MAX_UPLOAD} bytes"
            )))
            .await;
    }
    let mut tx = Some(tx);
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let piece = match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => Ok(d),
                Err(_) => continue,
            },
            Err(e) => Err(format!("reading the upload: {e}")),
        };
        let failed = piece.is_err();
        if let Ok(d) = &piece {
            size = size.saturating_add(u64::try_from(d.len()).unwrap_or(u64::MAX));
        }
        let piece = if size > MAX_UPLOAD {
            Err(format!(
                "the upload is over the engine's limit of {MAX_UPLOAD} bytes"
            ))
        } else {
            piece
        };
        if let Some(t) = &tx
            && t.send(piece).await.is_err()
        {
            tx = None;
        }
        if failed {
            return;
        }
    }
}
