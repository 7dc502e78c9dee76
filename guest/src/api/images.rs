//! The `/images/...` calls.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{
    ImageDeleteResponseItem, ImageInspect, ImageInspectRootFs, ImagePruneResponse, ImageSummary,
};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;

use super::body;
use super::routes::{Body, Query, empty, json, streaming, streaming_file};
use crate::engine::Engine;
use crate::error::{Error, ImageError, RequestError, Result};
use crate::filters::{Filters, glob_match};
use crate::image::archive;
use crate::image::progress::Progress;
use crate::image::pull::{self, Platform};
use crate::image::push;
use crate::image::reference::{ImageRef, familiar};
use crate::image::store::{ImageRecord, Removal};

pub(super) fn summary(img: &ImageRecord, created: i64) -> ImageSummary {
    ImageSummary {
        id: img.id.clone(),
        parent_id: String::new(),
        repo_tags: img.repo_tags.iter().map(|t| familiar(t)).collect(),
        repo_digests: img.repo_digests.iter().map(|t| familiar(t)).collect(),
        created,
        size: i64::try_from(img.size).unwrap_or(i64::MAX),
        shared_size: -1,
        labels: HashMap::new(),
        containers: -1,
        manifests: None,
        descriptor: None,
    }
}

fn config_of(engine: &Engine, img: &ImageRecord) -> Option<serde_json::Value> {
    let bytes = engine.store.read_blob(&img.id).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn created_of(config: Option<&serde_json::Value>) -> (Option<String>, i64) {
    let s = config
        .and_then(|c| c.get("created"))
        .and_then(|c| c.as_str())
        .map(String::from);
    let secs = s
        .as_deref()
        .and_then(crate::timefmt::parse_rfc3339)
        .unwrap_or(0);
    (s, secs)
}

/// What the image filters compare: when it was made and its labels.
pub(super) fn facts(engine: &Engine, img: &ImageRecord) -> (i64, HashMap<String, String>) {
    let config = config_of(engine, img);
    let (_, created) = created_of(config.as_ref());
    let labels = config
        .as_ref()
        .and_then(|c| c.get("config"))
        .and_then(|c| c.get("Labels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    (created, labels)
}

/// Docker's `reference` filter: a pattern (Go's `path.Match`) against one
/// of an image's names in its familiar form, with and without the tag.
fn reference_matches(pattern: &str, reference: &str) -> bool {
    let bare = match reference.split_once('@') {
        Some((n, _)) => n,
        None => match reference.rsplit_once(':') {
            Some((n, tag)) if !tag.contains('/') => n,
            _ => reference,
        },
    };
    glob_match(pattern, reference) || glob_match(pattern, bare)
}

/// The creation time of the image a `before` or `since` filter names.
fn created_of_named(engine: &Engine, filters: &Filters, key: &str) -> Result<Option<i64>> {
    match filters.get(key).last() {
        Some(name) => {
            let img = engine.store.resolve(name)?;
            Ok(Some(facts(engine, &img).0))
        }
        None => Ok(None),
    }
}

/// `GET /images/json`: filters `before`, `dangling`, `label`, `reference`,
/// `since`, `until`.
pub fn list(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let filters = Filters::parse(
        query.get("filters"),
        &["before", "dangling", "label", "reference", "since", "until"],
    )?;
    let dangling = filters.boolean("dangling")?;
    let before = created_of_named(engine, &filters, "before")?;
    let since = created_of_named(engine, &filters, "since")?;
    let until = filters.until(crate::timefmt::now())?;
    let mut out = Vec::new();
    for img in engine.store.images() {
        if img.build_cache && img.repo_tags.is_empty() {
            // A build step's result: the build cache, not an image to list.
            continue;
        }
        let (created, labels) = facts(engine, &img);
        let passes = dangling.is_none_or(|d| d == img.repo_tags.is_empty())
            && filters.labels(&labels)
            && before.is_none_or(|t| created < t)
            && since.is_none_or(|t| created > t)
            && until.is_none_or(|t| created < t);
        if !passes {
            continue;
        }
        let mut s = summary(&img, created);
        s.labels = labels;
        if filters.contains("reference") {
            // Docker lists only the names that match, and the image only
            // when one does.
            let keep = |r: &String| filters.any("reference", |p| reference_matches(p, r));
            s.repo_tags.retain(keep);
            s.repo_digests.retain(keep);
            if s.repo_tags.is_empty() && s.repo_digests.is_empty() {
                continue;
            }
        }
        out.push(s);
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(json(StatusCode::OK, &out))
}

/// The first API version whose image inspect leaves out `Container` and
/// `ContainerConfig` (Docker 26): clients of older versions get them, as
/// from Docker's graph-driver image store, and Compose v1 (API 1.38) reads
/// `ContainerConfig.Volumes` when it recreates a container.
const NO_CONTAINER_CONFIG_FROM: (u32, u32) = (1, 45);

/// An image's `Container` and `ContainerConfig` as Docker reports them:
/// those its config records (images built by the classic builder), else
/// an empty ID and a zero-valued container config with every key.
fn legacy_container_fields(config: Option<&serde_json::Value>) -> (Value, Value) {
    let mut zero = serde_json::json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let (Some(recorded), Some(out)) = (
        config
            .and_then(|c| c.get("container_config"))
            .and_then(Value::as_object),
        zero.as_object_mut(),
    ) {
        out.extend(recorded.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let container = config
        .and_then(|c| c.get("container"))
        .cloned()
        .unwrap_or_else(|| Value::String(String::new()));
    (container, zero)
}

/// `GET /images/{name}/json`; `version` is the API version the request
/// names.
pub fn inspect(
    engine: &Arc<Engine>,
    name: &str,
    version: Option<(u32, u32)>,
) -> Result<Response<Body>> {
    let img = engine.store.resolve(name)?;
    let config = config_of(engine, &img);
    let (created, _) = created_of(config.as_ref());
    let field = |k: &str| {
        config
            .as_ref()
            .and_then(|c| c.get(k))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    let image_config = config
        .as_ref()
        .and_then(|c| c.get("config"))
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let out = ImageInspect {
        id: Some(img.id.clone()),
        repo_tags: Some(img.repo_tags.iter().map(|t| familiar(t)).collect()),
        repo_digests: Some(img.repo_digests.iter().map(|t| familiar(t)).collect()),
        created,
        author: field("author"),
        comment: field("comment"),
        architecture: field("architecture"),
        variant: field("variant"),
        os: field("os"),
        size: i64::try_from(img.size).ok(),
        config: image_config,
        root_fs: Some(ImageInspectRootFs {
            typ: "layers".to_string(),
            layers: Some(img.layers.iter().map(|l| l.diff_id.clone()).collect()),
        }),
        graph_driver: Some(image_graph_driver(engine, &img)),
        // No local tag time is kept: Docker then leaves LastTagTime out.
        metadata: Some(Default::default()),
        ..Default::default()
    };
    let mut v = serde_json::to_value(&out).map_err(Error::json("image inspect"))?;
    if let Some(o) = v.as_object_mut() {
        // Fields of the API version the engine announces that the newer
        // model no longer has.
        o.insert("Parent".to_string(), serde_json::json!(""));
        o.insert(
            "DockerVersion".to_string(),
            serde_json::json!(field("docker_version").unwrap_or_default()),
        );
        if version.is_some_and(|v| v < NO_CONTAINER_CONFIG_FROM) {
            let (container, container_config) = legacy_container_fields(config.as_ref());
            o.insert("Container".to_string(), container);
            o.insert("ContainerConfig".to_string(), container_config);
        }
    }
    Ok(json(StatusCode::OK, &v))
}

/// Where an image's layers are, as Docker's overlay driver reports them:
/// the top layer's folder and the ones below it, top first.
fn image_graph_driver(engine: &Engine, img: &ImageRecord) -> bollard_stubs::models::DriverData {
    let mut dirs: Vec<String> = img
        .chain_ids()
        .iter()
        .rev()
        .filter_map(|c| engine.store.snapshot_path(c).ok())
        .map(|p| p.display().to_string())
        .collect();
    let mut data = HashMap::new();
    if !dirs.is_empty() {
        data.insert("UpperDir".to_string(), dirs.remove(0));
    }
    if !dirs.is_empty() {
        data.insert("LowerDir".to_string(), dirs.join(":"));
    }
    bollard_stubs::models::DriverData {
        name: "overlay".to_string(),
        data,
    }
}

fn registry_auth_header(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// `POST /images/create`: pulls `fromImage` (with `tag`, `platform`).
pub async fn create(
    engine: &Arc<Engine>,
    query: &Query,
    req: &Request<Incoming>,
) -> Result<Response<Body>> {
    let from = query
        .get("fromImage")
        .ok_or_else(|| Error::from(RequestError::Invalid("fromImage is required".to_string())))?;
    let name = match query.get("tag") {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let r = ImageRef::parse(&name)?;
    let platform = match query.get("platform") {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let auth = engine
        .registries
        .auth(&r, registry_auth_header(req).as_deref());
    let resolved = pull::resolve(&engine.registries, &r, &platform, &auth).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = Progress::new(tx);
    let store = Arc::clone(&engine.store);
    tokio::spawn(async move {
        if let Err(e) = pull::fetch(&store, resolved, &progress).await {
            tracing::warn!("{}", e.full_message());
            progress.error(&e.full_message());
        }
    });
    Ok(streaming("application/json", rx))
}

/// `POST /images/{name}/push`.
pub async fn push(
    engine: &Arc<Engine>,
    name: &str,
    query: &Query,
    req: &Request<Incoming>,
) -> Result<Response<Body>> {
    let mut target = ImageRef::parse(name)?;
    if let Some(t) = query.get("tag") {
        target.tag = Some(t.to_string());
        target.digest = None;
    }
    let tagged = target.tagged().unwrap_or_else(|| target.to_string());
    let image = engine.store.resolve(&tagged).map_err(|_| {
        Error::NoSuchImage(format!(
            "{} (an image does not exist locally with this tag)",
            familiar(&tagged)
        ))
    })?;
    let auth = engine
        .registries
        .auth(&target, registry_auth_header(req).as_deref());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = Progress::new(tx);
    let engine = Arc::clone(engine);
    tokio::spawn(async move {
        match push::push(
            &engine.store,
            &engine.registries,
            &image,
            &target,
            &auth,
            &progress,
        )
        .await
        {
            Ok(digest) => {
                let repo_digest = format!("{}@{digest}", target.name());
                if let Err(e) = engine.store.add_image(image, None, Some(&repo_digest)) {
                    progress.error(&e.full_message());
                }
            }
            Err(e) => {
                tracing::warn!("{}", e.full_message());
                progress.error(&e.full_message());
            }
        }
    });
    Ok(streaming("application/json", rx))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub fn tag(engine: &Arc<Engine>, name: &str, query: &Query) -> Result<Response<Body>> {
    let img = engine.store.resolve(name)?;
    let repo = query
        .get("repo")
        .ok_or_else(|| Error::from(RequestError::Invalid("repo is required".to_string())))?;
    let full = match query.get("tag") {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let r = ImageRef::parse(&full)?;
    if r.digest.is_some() {
        return Err(ImageError::TagWithDigest.into());
    }
    let t = r.tagged().unwrap_or_default();
    engine.store.tag(&img.id, &t)?;
    Ok(empty(StatusCode::CREATED))
}

fn removal_items(r: Removal) -> Vec<ImageDeleteResponseItem> {
    r.untagged
        .into_iter()
        .map(|u| ImageDeleteResponseItem {
            untagged: Some(familiar(&u)),
            deleted: None,
        })
        .chain(r.deleted.into_iter().map(|d| ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(d),
        }))
        .collect()
}

/// `DELETE /images/{name}`.
pub async fn remove(engine: &Arc<Engine>, name: &str, query: &Query) -> Result<Response<Body>> {
    let in_use = engine.containers.images_in_use();
    let removal = engine.store.remove(name, query.flag("force"), &in_use)?;
    let deleted = !removal.deleted.is_empty();
    let items = removal_items(removal);
    if deleted {
        crate::image::gc::collect_garbage(engine).await?;
    }
    Ok(json(StatusCode::OK, &items))
}

/// `POST /images/prune`: dangling images, or every unused image with
/// `dangling=false`; `until`, `label` and `label!` narrow it.
pub async fn prune(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let filters = Filters::parse(
        query.get("filters"),
        &["dangling", "until", "label", "label!"],
    )?;
    let all = filters.boolean("dangling")? == Some(false);
    let until = filters.until(crate::timefmt::now())?;
    let chosen: std::collections::HashSet<String> = engine
        .store
        .images()
        .into_iter()
        .filter(|img| {
            let (created, labels) = facts(engine, img);
            filters.labels(&labels) && until.is_none_or(|t| created < t)
        })
        .map(|img| img.id)
        .collect();
    let removal = engine
        .store
        .prune(all, &engine.containers.images_in_use(), |img| {
            chosen.contains(&img.id)
        })?;
    let freed = crate::image::gc::collect_garbage(engine).await?;
    let items = removal_items(removal);
    let out = ImagePruneResponse {
        images_deleted: (!items.is_empty()).then_some(items),
        space_reclaimed: i64::try_from(freed).ok(),
    };
    Ok(json(StatusCode::OK, &out))
}

/// `GET /images/get?names=...` and `GET /images/{name}/get`.
pub async fn save(engine: &Arc<Engine>, names: &[String]) -> Result<Response<Body>> {
    if names.is_empty() {
        return Err(Error::from(RequestError::Invalid(
            "names is required".to_string(),
        )));
    }
    let mut chosen: Vec<(ImageRecord, Vec<String>)> = Vec::new();
    for name in names {
        let img = engine.store.resolve(name)?;
        let tags: Vec<String> = match ImageRef::parse(name).ok().and_then(|r| r.tagged()) {
            Some(t) if img.repo_tags.contains(&t) => vec![t],
            _ => img.repo_tags.clone(),
        };
        match chosen.iter_mut().find(|(i, _)| i.id == img.id) {
            Some((_, existing)) => {
                for t in tags {
                    if !existing.contains(&t) {
                        existing.push(t);
                    }
                }
            }
            None => chosen.push((img, tags)),
        }
    }
    let out = engine.store.temp_path("save");
    let store = Arc::clone(&engine.store);
    let out2 = out.clone();
    let written = tokio::task::spawn_blocking(move || archive::save(&store, &chosen, &out2))
        .await
        .map_err(|e| Error::from(ImageError::Task("save", e.to_string())))
        .and_then(|r| r);
    let file = match written {
        Ok(()) => tokio::fs::File::open(&out)
            .await
            .map_err(Error::io("open", &out)),
        Err(e) => Err(e),
    };
    // The open file keeps the data; the name can go now.
    let _ = tokio::fs::remove_file(&out).await;
    Ok(streaming_file("application/x-tar", file?))
}

/// `POST /images/load`.
pub async fn load(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>> {
    let tmp = engine.store.temp_path("upload");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(Error::io("create", &tmp))?;
    let received = body::upload(req.into_body(), &mut file, &tmp).await;
    drop(file);
    if let Err(e) = received {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = Progress::new(tx);
    let store = Arc::clone(&engine.store);
    tokio::spawn(async move {
        let loaded = archive::load(&store, &tmp, &progress).await;
        // The upload goes before the client hears the end, so nothing of
        // it is left once the answer is complete.
        let _ = tokio::fs::remove_file(&tmp).await;
        if let Err(e) = loaded {
            progress.error(&e.full_message());
        }
    });
    Ok(streaming("application/json", rx))
}
