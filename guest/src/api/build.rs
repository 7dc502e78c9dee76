//! The builder's calls: servin's own (`/servin/v1/build...`: contexts sent
//! incrementally, progress as [`BuildEvent`] lines) and Docker's classic
//! `POST /build` (a tar context, progress as `{"stream": ...}` lines), plus
//! `POST /build/prune`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use servin_proto::build::{BuildEvent, BuildRequest, DELTA_CONTENT_TYPE, Missing, Received};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::body;
use super::routes::{Body, Query, json, streaming};
use crate::build::error::BuildError;
use crate::build::{self, BuildOptions, Cancel};
use crate::engine::Engine;
use crate::error::{Error, RequestError, Result};
use crate::image::store::short_id;

/// `GET /servin/v1/build/contexts/{digest}/missing`; `404` when the
/// engine does not hold that index.
pub fn missing(engine: &Arc<Engine>, digest: &str) -> Result<Response<Body>> {
    let contexts = &engine.builder.contexts;
    match contexts.get(digest)? {
        Some(index) => Ok(json(
            StatusCode::OK,
            &Missing {
                missing: contexts.missing(&index),
            },
        )),
        None => Ok(not_held(digest)),
    }
}

/// Docker's error shape for an index the engine does not hold.
fn not_held(digest: &str) -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({
            "message": format!("build context index {digest} is not held by the engine: send it whole")
        }),
    )
}

/// `PUT /servin/v1/build/contexts/{digest}[?base={digest}]`: the index
/// whole (binary, [`servin_proto::build::INDEX_CONTENT_TYPE`], or JSON), or with `base` a delta
/// from an index the engine holds ([`DELTA_CONTENT_TYPE`]); `404` when it
/// does not hold `base`.
pub async fn put_context(
    engine: &Arc<Engine>,
    digest: &str,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let base = query.get("base").map(str::to_string);
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let is_delta = content_type == DELTA_CONTENT_TYPE;
    if is_delta != base.is_some() {
        super::routes::discard_body(req).await;
        let why = if is_delta {
            "a context index delta needs the base index's digest (?base=sha256:...)"
        } else {
            "?base= takes a context index delta (Content-Type: application/vnd.servin.context-index-delta)"
        };
        return Err(BuildError::Invalid(format!("build context index {digest}: {why}")).into());
    }
    let what = if is_delta {
        "build context index delta"
    } else {
        "build context index"
    };
    let bytes = body::read(req.into_body(), what).await?;
    let builder = Arc::clone(&engine.builder);
    let digest = digest.to_string();
    let t = std::time::Instant::now();
    let len = bytes.len();
    let stored = tokio::task::spawn_blocking(move || -> Result<Option<Missing>> {
        let contexts = &builder.contexts;
        let index = match &base {
            Some(base) => contexts.put_delta(&digest, base, &bytes)?,
            None => Some(contexts.put(&digest, &bytes)?),
        };
        Ok(index.map(|index| Missing {
            missing: contexts.missing(&index),
        }))
    })
    .await
    .map_err(|e| RequestError::Invalid(format!("store the {what}: {e}")))??;
    tracing::debug!(
        ms = t.elapsed().as_millis() as u64,
        bytes = len,
        delta = is_delta,
        "build timing: context index stored"
    );
    match stored {
        Some(missing) => Ok(json(StatusCode::OK, &missing)),
        None => Ok(not_held(query.get("base").unwrap_or_default())),
    }
}

/// `POST /servin/v1/build/blobs`: a tar of contents named by digest.
pub async fn put_blobs(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let tmp = engine.store.temp_path("build-blobs");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(Error::io("create", &tmp))?;
    let uploaded = body::upload(req.into_body(), &mut file, &tmp).await;
    drop(file);
    if let Err(e) = uploaded {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let builder = Arc::clone(&engine.builder);
    let tmp2 = tmp.clone();
    let received = tokio::task::spawn_blocking(move || -> Result<Received> {
        let f = std::fs::File::open(&tmp2).map_err(Error::io("open", &tmp2))?;
        let r = builder
            .contexts
            .blobs
            .receive(std::io::BufReader::with_capacity(1 << 20, f))
            .map_err(|e| BuildError::Invalid(format!("receive build context contents: {e}")))?;
        Ok(Received {
            count: r.count,
            bytes: r.bytes,
        })
    })
    .await
    .map_err(|e| RequestError::Invalid(format!("receive build context contents: {e}")));
    let _ = tokio::fs::remove_file(&tmp).await;
    Ok(json(StatusCode::OK, &received??))
}

/// Runs a build in the background; its events go to the returned
/// receiver; the build is cancelled when the handle fires.
fn spawn_build(
    engine: &Arc<Engine>,
    request: BuildRequest,
    options: BuildOptions,
) -> (UnboundedReceiver<BuildEvent>, crate::build::CancelHandle) {
    let (tx, rx) = unbounded_channel::<BuildEvent>();
    let (cancel, handle) = Cancel::new();
    let engine = Arc::clone(engine);
    tokio::spawn(async move {
        if let Err(e) = build::build(&engine, request, options, tx.clone(), cancel).await {
            let _ = tx.send(build::failure(&e));
        }
    });
    (rx, handle)
}

/// `POST /servin/v1/build`: a [`BuildRequest`]; progress as JSON lines.
/// A client that goes away cancels the build.
pub async fn build(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let request: BuildRequest = body::json(req.into_body(), "build request").await?;
    let (mut rx, cancel) = spawn_build(engine, request, BuildOptions::default());
    let (out_tx, out_rx) = unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { return };
                    if let Ok(mut line) = serde_json::to_vec(&event) {
                        line.push(b'\n');
                        if out_tx.send(Bytes::from(line)).is_err() {
                            cancel.cancel();
                            return;
                        }
                    }
                }
                () = out_tx.closed() => {
                    cancel.cancel();
                    return;
                }
            }
        }
    });
    Ok(streaming("application/json", out_rx))
}

/// The classic `POST /build` query parameters servin takes; the others are
/// refused when set to anything but their default.
fn classic_request(query: &Query) -> Result<(BuildRequest, BuildOptions, bool)> {
    for (key, default) in [
        ("remote", ""),
        ("extrahosts", ""),
        ("cachefrom", ""),
        ("squash", ""),
        ("outputs", ""),
        ("memory", "0"),
        ("memswap", "0"),
        ("cpushares", "0"),
        ("cpusetcpus", ""),
        ("cpusetmems", ""),
        ("cgroupparent", ""),
        ("ulimits", "[]"),
        ("cpuperiod", "0"),
        ("cpuquota", "0"),
        ("shmsize", "0"),
        ("isolation", ""),
        ("session", ""),
    ] {
        if let Some(v) = query.get(key)
            && !v.is_empty()
            && v != default
            && !(matches!(key, "cachefrom" | "ulimits") && matches!(v, "[]" | "null"))
            && (key != "squash" || bool_value(query, "squash"))
        {
            return Err(RequestError::Invalid(format!(
                "build: {key}={v} is not supported by servin's builder"
            ))
            .into());
        }
    }
    // The classic builder is version 1; Docker takes an empty value as 1.
    if let Some(v) = query.get("version")
        && !matches!(v, "" | "1")
    {
        return Err(RequestError::Invalid(format!(
            "build: builder version {v} (BuildKit) is not served: use DOCKER_BUILDKIT=0 or `servin build`"
        ))
        .into());
    }
    if let Some(p) = query.get("platform").filter(|p| !p.is_empty()) {
        let asked = crate::image::pull::Platform::parse(p)?;
        let host = crate::image::pull::Platform::host();
        if asked.os != host.os || asked.architecture != host.architecture {
            return Err(RequestError::Invalid(format!(
                "build: platform {p} cannot be built on this {}/{} engine",
                host.os, host.architecture
            ))
            .into());
        }
    }
    let network = query.get("networkmode").unwrap_or("default");
    if !matches!(network, "" | "default" | "bridge" | "host" | "none") {
        return Err(RequestError::Invalid(format!(
            "build: network mode {network:?} is not supported: use default, bridge, host or none"
        ))
        .into());
    }
    let map = |key: &str| -> Result<BTreeMap<String, String>> {
        match query.get(key).filter(|v| !v.is_empty()) {
            None => Ok(BTreeMap::new()),
            Some(v) => {
                let m: BTreeMap<String, Option<String>> = serde_json::from_str(v).map_err(|e| {
                    RequestError::Invalid(format!("build: malformed {key} {v:?}: {e}"))
                })?;
                // A null build arg is one given without a value and not
                // set in the client's environment: Docker drops it.
                Ok(m.into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect())
            }
        }
    };
    let tags = query.all("t");
    for t in &tags {
        crate::image::reference::ImageRef::parse(t)?;
    }
    let request = BuildRequest {
        dockerfile: String::new(),
        dockerfile_name: query
            .get("dockerfile")
            .filter(|d| !d.is_empty())
            .unwrap_or("Dockerfile")
            .to_string(),
        context: String::new(),
        tags,
        build_args: map("buildargs")?,
        target: query
            .get("target")
            .filter(|t| !t.is_empty())
            .map(String::from),
        no_cache: bool_value(query, "nocache"),
        pull: bool_value(query, "pull"),
        labels: map("labels")?,
        secrets: Vec::new(),
        dry_run: false,
        pinned: BTreeMap::new(),
    };
    // Docker removes a step's container once the step succeeded unless
    // `rm` is false (docker-py's default), keeps the container of a failed
    // step for inspection, and removes every one with `forcerm`.
    let force_remove = bool_value(query, "forcerm");
    let options = BuildOptions {
        keep_containers: query.get("rm").is_some() && !bool_value(query, "rm") && !force_remove,
        keep_failed: !force_remove,
        network: match network {
            "" | "bridge" => "default".to_string(),
            other => other.to_string(),
        },
    };
    Ok((request, options, bool_value(query, "q")))
}

/// A boolean query parameter as Docker reads one: absent, empty, `0`,
/// `no`, `false` and `none` (in any case) are false, anything else is true
/// (docker-py sends Python's `True` and `False`).
fn bool_value(query: &Query, key: &str) -> bool {
    query.get(key).is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        )
    })
}

/// `POST /build`: Docker's classic build. The body is the context as a
/// (possibly compressed) tar; the Dockerfile is in it.
pub async fn classic(
    engine: &Arc<Engine>,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let parsed = classic_request(query);
    let (mut request, options, quiet) = match parsed {
        Ok(p) => p,
        Err(e) => {
            super::routes::discard_body(req).await;
            return Err(e);
        }
    };
    let tmp = engine.store.temp_path("build-context");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(Error::io("create", &tmp))?;
    let uploaded = body::upload(req.into_body(), &mut file, &tmp).await;
    drop(file);
    if let Err(e) = uploaded {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let (out_tx, out_rx) = unbounded_channel::<Bytes>();
    let progress = crate::image::progress::Progress::new(out_tx.clone());
    let builder = Arc::clone(&engine.builder);
    let name = request.dockerfile_name.clone();
    let tar = tmp.clone();
    let ingested = tokio::task::spawn_blocking(move || builder.ingest_tar(&tar, &name))
        .await
        .map_err(|e| BuildError::Invalid(format!("read the build context: {e}")));
    let _ = tokio::fs::remove_file(&tmp).await;
    let (dockerfile, context) = match ingested {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(e.into()),
    };
    request.dockerfile = dockerfile;
    request.context = context;
    let removes = !options.keep_containers;
    let (rx, cancel) = spawn_build(engine, request, options);
    tokio::spawn(classic_stream(rx, progress, quiet, removes, out_tx, cancel));
    Ok(streaming("application/json", out_rx))
}

/// Docker's classic progress lines for the builder's events.
async fn classic_stream(
    mut rx: UnboundedReceiver<BuildEvent>,
    progress: crate::image::progress::Progress,
    quiet: bool,
    removes: bool,
    out: tokio::sync::mpsc::UnboundedSender<Bytes>,
    cancel: crate::build::CancelHandle,
) {
    let say = |text: &str| {
        if !quiet {
            progress.stream(text);
        }
    };
    // The containers of the steps running now (stages may run at once).
    let mut running: std::collections::HashMap<(String, usize), String> =
        std::collections::HashMap::new();
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            () = out.closed() => {
                cancel.cancel();
                return;
            }
        };
        let Some(event) = event else { break };
        match event {
            BuildEvent::Step {
                instruction,
                number,
                of,
                ..
            } => {
                say(&format!("Step {number}/{of} : {instruction}\n"));
            }
            BuildEvent::Cached { image, .. } => {
                say(" ---> Using cache\n");
                say(&format!(" ---> {}\n", short_id(&image)));
            }
            BuildEvent::Running { container, at } => {
                say(&format!(" ---> Running in {}\n", short_id(&container)));
                running.insert((at.stage, at.step), container);
            }
            BuildEvent::Output { text, .. } => say(&text),
            BuildEvent::Reason { .. } | BuildEvent::WouldBuild { .. } => {}
            BuildEvent::Done { image, at, .. } => {
                // The step's container is gone once its layer is taken.
                if let Some(c) = running.remove(&(at.stage, at.step))
                    && removes
                {
                    say(&format!(
                        "Removing intermediate container {}\n",
                        short_id(&c)
                    ));
                }
                say(&format!(" ---> {}\n", short_id(&image)));
            }
            BuildEvent::Warning { message } => say(&format!("[Warning] {message}\n")),
            BuildEvent::Built { id, tags } => {
                progress.send_json(&serde_json::json!({ "aux": { "ID": id } }));
                if quiet {
                    progress.stream(&format!("{id}\n"));
                } else {
                    say(&format!("Successfully built {}\n", short_id(&id)));
                    for t in tags {
                        say(&format!(
                            "Successfully tagged {}\n",
                            crate::image::reference::familiar(&t)
                        ));
                    }
                }
            }
            BuildEvent::Failed { message, .. } => {
                progress.error(&message);
            }
        }
    }
}

/// `POST /build/prune`: the build cache, and the context contents no
/// context needs.
///
/// Everything no image name or container holds is removed, which is what
/// Docker's `all` asks for (and more than its default of dangling entries
/// only); `keep-storage` and `filters` are refused rather than ignored.
pub async fn prune(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    if let Some(v) = query.get("keep-storage").filter(|v| *v != "0") {
        return Err(RequestError::Invalid(format!(
            "build cache prune: keep-storage={v} is not supported: servin removes the whole unused build cache"
        ))
        .into());
    }
    if let Some(v) = query
        .get("filters")
        .filter(|v| !matches!(*v, "{}" | "null"))
    {
        return Err(RequestError::Invalid(format!(
            "build cache prune: filters {v} are not supported: servin removes the whole unused build cache"
        ))
        .into());
    }
    let builder = Arc::clone(&engine.builder);
    let engine2 = Arc::clone(engine);
    let (deleted, reclaimed) = builder.prune(&engine2).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "CachesDeleted": deleted, "SpaceReclaimed": reclaimed }),
    ))
}

/// The Dockerfile's path inside an extracted classic context, refused when
/// it leaves the context.
pub fn dockerfile_in(root: &Path, name: &str) -> Result<std::path::PathBuf> {
    let rel = crate::image::unpack::safe_relative(Path::new(name)).map_err(|why| {
        BuildError::Invalid(format!(
            "the Dockerfile {name:?} is outside the build context: {why}"
        ))
    })?;
    Ok(root.join(rel))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(q: &str) -> Result<(BuildRequest, BuildOptions, bool)> {
        classic_request(&Query::parse(Some(q)))
    }

    #[test]
    fn booleans_are_read_as_docker_reads_them() {
        for (q, kept) in [
            ("", false),
            ("rm=1", false),
            ("rm=True", false),
            ("rm=0", true),
            ("rm=false", true),
            ("rm=False", true),
            ("rm=no", true),
            ("rm=False&forcerm=True", false),
        ] {
            let (_, options, _) = request(q).unwrap();
            assert_eq!(options.keep_containers, kept, "{q}");
            assert_eq!(options.keep_failed, !q.contains("forcerm"), "{q}");
        }
        let (r, _, quiet) = request("q=True&nocache=true&pull=1").unwrap();
        assert!(quiet && r.no_cache && r.pull);
        let (r, _, quiet) = request("q=False&nocache=0&pull=none").unwrap();
        assert!(!quiet && !r.no_cache && !r.pull);
    }

    #[test]
    fn what_the_builder_does_not_honour_is_refused_naming_it() {
        // What the docker CLI sends by default is accepted.
        request(
            "buildargs=%7B%7D&cachefrom=%5B%5D&cgroupparent=&cpuperiod=0&cpuquota=0\
             &cpusetcpus=&cpusetmems=&cpushares=0&dockerfile=Dockerfile&labels=%7B%7D\
             &memory=0&memswap=0&networkmode=default&rm=1&shmsize=0&t=a%3A1&target=\
             &ulimits=%5B%5D&version=1",
        )
        .unwrap();
        request("ulimits=null&version=&squash=False").unwrap();
        for (q, named) in [
            ("memory=1024", "memory=1024"),
            ("cgroupparent=x", "cgroupparent=x"),
            ("cpusetmems=0", "cpusetmems=0"),
            ("ulimits=%5B%7B%22Name%22%3A%22nofile%22%7D%5D", "ulimits="),
            ("squash=1", "squash=1"),
            ("remote=https%3A%2F%2Fexample.com%2Fctx.tar", "remote="),
            ("outputs=%5B%7B%7D%5D", "outputs="),
            ("version=2", "builder version 2"),
            ("networkmode=mynet", "\"mynet\""),
        ] {
            let e = request(q)
                .err()
                .unwrap_or_else(|| panic!("{q} was accepted"));
            assert!(e.to_string().contains(named), "{q}: {e}");
        }
    }
}
