//! `GET /system/df`: what images, containers and volumes take on disk, in
//! Docker's shape (`LayersSize`, `Images`, `Containers`, `Volumes`,
//! `BuildCache`). Sizes are measured (unpacked layers, containers' upper
//! folders, volumes' data) on a blocking thread.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{ContainerSummary, ImageSummary};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::routes::{Body, Query, json};
use crate::engine::Engine;
use crate::error::{Error, RequestError, Result};
use crate::volume::{VolumeInfo, dir_size};

/// A volume with Docker's `UsageData`.
#[derive(Debug, Serialize)]
struct VolumeUsage {
    #[serde(flatten)]
    info: VolumeInfo,
    #[serde(rename = "UsageData")]
    usage_data: UsageData,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UsageData {
    size: i64,
    ref_count: i64,
}

/// Docker's answer (API 1.44 to 1.51).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DiskUsage {
    layers_size: i64,
    images: Vec<ImageSummary>,
    containers: Vec<ContainerSummary>,
    volumes: Vec<VolumeUsage>,
    build_cache: Vec<serde_json::Value>,
}

/// Which sections `type=` asks for (all when none is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    images: bool,
    containers: bool,
    volumes: bool,
}

fn wanted(query: &Query) -> Result<Wanted> {
    let types = query.all("type");
    if types.is_empty() {
        return Ok(Wanted {
            images: true,
            containers: true,
            volumes: true,
        });
    }
    let mut w = Wanted {
        images: false,
        containers: false,
        volumes: false,
    };
    for t in &types {
        match t.as_str() {
            "image" => w.images = true,
            "container" => w.containers = true,
            "volume" => w.volumes = true,
            "build-cache" => {}
            other => {
                return Err(RequestError::Invalid(format!(
                    "unknown object type {other:?}: want container, image, volume or build-cache"
                ))
                .into());
            }
        }
    }
    Ok(w)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn measure(engine: &Engine, w: Wanted) -> DiskUsage {
    let containers = engine.containers.list();
    let mut layers_size = 0;
    let mut images = Vec::new();
    if w.images {
        let all = engine.store.images();
        // Each layer's unpacked size once, and how many images use it.
        let mut layer_size: HashMap<String, u64> = HashMap::new();
        let mut users: HashMap<String, usize> = HashMap::new();
        for img in &all {
            for chain in img.chain_ids() {
                *users.entry(chain.clone()).or_default() += 1;
                layer_size.entry(chain).or_insert_with_key(|chain| {
                    engine
                        .store
                        .snapshot_path(chain)
                        .map(|p| dir_size(&p))
                        .unwrap_or(0)
                });
            }
        }
        layers_size = to_i64(layer_size.values().sum());
        for img in &all {
            let (created, labels) = super::images::facts(engine, img);
            let mut s = super::images::summary(img, created);
            s.labels = labels;
            s.shared_size = to_i64(
                img.chain_ids()
                    .iter()
                    .filter(|c| users.get(*c).copied().unwrap_or(0) > 1)
                    .filter_map(|c| layer_size.get(c))
                    .sum(),
            );
            s.containers = to_i64(
                containers
                    .iter()
                    .filter(|c| c.record.image_id == img.id)
                    .count() as u64,
            );
            images.push(s);
        }
    }
    let mut container_rows = Vec::new();
    if w.containers {
        let image_size: HashMap<String, u64> = engine
            .store
            .images()
            .into_iter()
            .map(|i| (i.id, i.size))
            .collect();
        for c in &containers {
            let rw = dir_size(&c.paths.upper());
            let mut s = super::containers::summary(engine, c);
            s.size_rw = Some(to_i64(rw));
            s.size_root_fs = Some(to_i64(
                rw + image_size.get(&c.record.image_id).copied().unwrap_or(0),
            ));
            container_rows.push(s);
        }
    }
    let mut volumes = Vec::new();
    if w.volumes {
        let used = engine.containers.volumes_in_use();
        for v in engine.volumes.list() {
            let refs = used.get(&v.meta.name).map_or(0, Vec::len);
            volumes.push(VolumeUsage {
                usage_data: UsageData {
                    size: to_i64(dir_size(&v.mountpoint)),
                    ref_count: to_i64(refs as u64),
                },
                info: v.info(),
            });
        }
    }
    DiskUsage {
        layers_size,
        images,
        containers: container_rows,
        volumes,
        build_cache: Vec::new(),
    }
}

/// `GET /system/df?type=`.
pub async fn df(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let w = wanted(query)?;
    let engine = Arc::clone(engine);
    let usage = tokio::task::spawn_blocking(move || measure(&engine, w))
        .await
        .map_err(|e| Error::Runtime {
            context: "system df".to_string(),
            message: e.to_string(),
        })?;
    Ok(json(StatusCode::OK, &usage))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn types_pick_sections() {
        let all = wanted(&Query::parse(None)).unwrap();
        assert!(all.images && all.containers && all.volumes);
        let v = wanted(&Query::parse(Some("type=volume&type=build-cache"))).unwrap();
        assert!(v.volumes && !v.images && !v.containers);
        let e = wanted(&Query::parse(Some("type=disk"))).unwrap_err();
        assert!(e.to_string().contains("disk"), "{e}");
    }
}
