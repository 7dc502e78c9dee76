//! The calls that take a container's files out as an image or a tar, and
//! bring a tar in as an image: `POST /commit`, `GET
//! /containers/{id}/changes`, `GET /containers/{id}/export` and `POST
//! /images/create?fromSrc=` (`docker import`). The work is
//! [`crate::container::commit`]'s and [`crate::image::import`]'s; this
//! module reads the request and shapes the answer.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::body;
use super::routes::{Body, Query, json as json_response, streaming};
use crate::container::commit::CommitOptions;
use crate::engine::Engine;
use crate::error::{Error, ImageError, RequestError, Result};
use crate::image::import::{self, ImportOptions};
use crate::image::progress::Progress;
use crate::image::pull::Platform;
use crate::image::reference::ImageRef;

/// The full tagged name of `repo` and `tag` (`latest` when no tag), or
/// `None` without a repository; refused when it is not a name.
fn target(query: &Query) -> Result<Option<String>> {
    let Some(repo) = query.get("repo") else {
        return Ok(None);
    };
    let name = match query.get("tag") {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let r = ImageRef::parse(&name)?;
    if r.digest.is_some() {
        return Err(ImageError::TagWithDigest.into());
    }
    let with_tag = if r.tag.is_none() {
        ImageRef::parse(&format!("{name}:latest"))?
    } else {
        r
    };
    Ok(with_tag.tagged())
}

fn pause_param(query: &Query) -> Result<bool> {
    match query.get("pause") {
        None | Some("1" | "true" | "True") => Ok(true),
        Some("0" | "false" | "False") => Ok(false),
        Some(v) => {
            Err(RequestError::Invalid(format!("invalid pause {v:?}: want true or false")).into())
        }
    }
}

/// `POST /commit`.
pub async fn commit(
    engine: &Arc<Engine>,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let config: Value = body::json_or_default(req.into_body(), "commit").await?;
    let c = engine
        .containers
        .get(query.get("container").unwrap_or_default())?;
    let opts = CommitOptions {
        tag: target(query)?,
        comment: query.get("comment").map(String::from),
        author: query.get("author").map(String::from),
        pause: pause_param(query)?,
        changes: query.all("changes"),
        config: config.is_object().then_some(config),
    };
    let image = engine.containers.commit(&c, opts).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "Id": image.id }),
    ))
}

/// `GET /containers/{id}/changes`.
pub async fn changes(engine: &Arc<Engine>, key: &str) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let list: Vec<Value> = engine
        .containers
        .changes(&c)
        .await?
        .into_iter()
        .map(|ch| json!({"Path": ch.path, "Kind": ch.kind.code()}))
        .collect();
    Ok(json_response(StatusCode::OK, &list))
}

/// `GET /containers/{id}/export`.
pub async fn export(engine: &Arc<Engine>, key: &str) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let rx = engine.containers.export(c).await?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece.map(Frame::data), rx))
    });
    let mut r = Response::new(BodyExt::boxed_unsync(http_body_util::StreamBody::new(
        stream,
    )));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(r)
}

/// Downloads `url` to the file at `path`, reporting progress.
async fn download(url: &str, file: &mut tokio::fs::File, progress: &Progress) -> Result<()> {
    let failed =
        |message: String| Error::from(ImageError::Archive(format!("import from {url}: {message}")));
    let parsed = url
        .parse::<reqwest::Url>()
        .map_err(|e| failed(format!("not a URL: {e}")))?;
    let mut resp = reqwest::get(parsed)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("the server answered {}", resp.status())));
    }
    let total = resp.content_length().unwrap_or(0);
    let mut current = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        file.write_all(&chunk)
            .await
            .map_err(|e| failed(format!("write: {e}")))?;
        current += chunk.len() as u64;
        progress.bytes("", "Importing", current, total);
    }
    file.flush()
        .await
        .map_err(|e| failed(format!("write: {e}")))?;
    Ok(())
}

/// `POST /images/create?fromSrc=-|URL` (`docker import`): the body (or
/// the URL's content) is the tar; answers Docker's JSON progress stream
/// ending with the image ID.
pub async fn import(
    engine: &Arc<Engine>,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let source = query.get("fromSrc").unwrap_or("-").to_string();
    let checked = (|| {
        if let Some(p) = query.get("platform") {
            let want = Platform::parse(p)?;
            let host = Platform::host();
            if want.os != host.os || want.architecture != host.architecture {
                return Err(Error::from(RequestError::Invalid(format!(
                    "import for platform {p}: the servin engine imports for its own platform {}/{} only",
                    host.os, host.architecture
                ))));
            }
        }
        if source != "-" && !(source.starts_with("http://") || source.starts_with("https://")) {
            return Err(Error::from(RequestError::Invalid(format!(
                "fromSrc {source:?}: want - (the request body) or an http(s) URL"
            ))));
        }
        target(query)
    })();
    let tag = match checked {
        Ok(t) => t,
        Err(e) => {
            super::routes::discard(req).await;
            return Err(e);
        }
    };
    let opts = ImportOptions {
        source: source.clone(),
        tag,
        message: query.get("message").map(String::from),
        changes: query.all("changes"),
    };
    let tmp = engine.store.temp_path("import-upload");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(Error::io("create", &tmp))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = Progress::new(tx);
    if source == "-" {
        let received = body::upload(req.into_body(), &mut file, &tmp).await;
        if let Err(e) = received {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    } else {
        super::routes::discard(req).await;
    }
    let store = Arc::clone(&engine.store);
    tokio::spawn(async move {
        let fetched = if opts.source == "-" {
            Ok(())
        } else {
            download(&opts.source, &mut file, &progress).await
        };
        drop(file);
        let made = match fetched {
            Ok(()) => import::import(&store, &tmp, &opts).await,
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&tmp).await;
        match made {
            Ok(image) => progress.status(None, &image.id),
            Err(e) => progress.error(&e.full_message()),
        }
    });
    Ok(streaming("application/json", rx))
}
