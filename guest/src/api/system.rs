//! `/_ping`, `/version`, `/info` and `/servin/v1/info`.

use std::sync::Arc;

use bollard_stubs::models::{
    SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};
use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::routes::{Body, json, with_type};
use super::{API_VERSION, MIN_API_VERSION};
use crate::engine::Engine;

/// `GET|HEAD /_ping`.
pub fn ping(method: &Method) -> Response<Body> {
    let body = if method == Method::HEAD { "" } else { "OK" };
    let mut r = with_type(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    );
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    r
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn kernel() -> String {
    read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default()
}

fn arch() -> String {
    crate::image::pull::Platform::host().architecture
}

/// `GET /version`.
pub fn version() -> Response<Body> {
    let v = SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: "servin".to_string(),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".to_string(),
            version: crate::VERSION.to_string(),
            details: Some(
                [
                    ("ApiVersion", API_VERSION.to_string()),
                    ("MinAPIVersion", MIN_API_VERSION.to_string()),
                    ("Os", "linux".to_string()),
                    ("Arch", arch()),
                    ("KernelVersion", kernel()),
                    ("Experimental", "false".to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ),
        }]),
        version: Some(crate::VERSION.to_string()),
        api_version: Some(API_VERSION.to_string()),
        min_api_version: Some(MIN_API_VERSION.to_string()),
        git_commit: Some(String::new()),
        go_version: Some(String::new()),
        os: Some("linux".to_string()),
        arch: Some(arch()),
        kernel_version: Some(kernel()),
        experimental: Some(false),
        build_time: Some(String::new()),
    };
    json(StatusCode::OK, &v)
}

fn mem_total() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The engine's resident memory in bytes.
pub fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `GET /info`.
pub fn info(engine: &Arc<Engine>) -> Response<Body> {
    let (blob_bytes, blobs) = engine.store.usage();
    let images = engine.store.images().len();
    let (all, running, stopped) = engine.containers.counts();
    let paused = engine.containers.paused_count();
    let runtime = engine.containers.runtime_summary().ok().map(|r| r.0);
    let info = SystemInfo {
        id: Some(format!("servin-{}", std::process::id())),
        containers: i64::try_from(all).ok(),
        containers_running: i64::try_from(running.saturating_sub(paused)).ok(),
        containers_paused: i64::try_from(paused).ok(),
        containers_stopped: i64::try_from(stopped).ok(),
        images: i64::try_from(images).ok(),
        driver: Some("overlayfs".to_string()),
        driver_status: Some(vec![
            vec!["Blobs".to_string(), blobs.to_string()],
            vec!["Blob bytes".to_string(), blob_bytes.to_string()],
        ]),
        docker_root_dir: Some(engine.config.root.display().to_string()),
        kernel_version: Some(kernel()),
        operating_system: Some("servin".to_string()),
        os_type: Some("linux".to_string()),
        architecture: Some(arch()),
        ncpu: std::thread::available_parallelism()
            .ok()
            .and_then(|n| i64::try_from(n.get()).ok()),
        mem_total: mem_total(),
        name: read_trimmed("/proc/sys/kernel/hostname"),
        server_version: Some(crate::VERSION.to_string()),
        default_runtime: runtime,
        logging_driver: Some("json-file".to_string()),
        experimental_build: Some(false),
        debug: Some(false),
        ..Default::default()
    };
    json(StatusCode::OK, &info)
}

/// `GET /servin/v1/info`: what Docker's `/info` has no field for.
pub fn servin_info(engine: &Arc<Engine>) -> Response<Body> {
    let (blob_bytes, blobs) = engine.store.usage();
    let snapshots =
        std::fs::read_dir(engine.store.dir().join("snapshots")).map_or(0, Iterator::count);
    let (containers, running, _) = engine.containers.counts();
    let runtime = match engine.containers.runtime_summary() {
        Ok((name, version)) => serde_json::json!({ "name": name, "version": version }),
        Err(why) => serde_json::json!({ "error": why }),
    };
    let body = serde_json::json!({
        "mode": "native",
        "version": crate::VERSION,
        "api_version": API_VERSION,
        "root": engine.config.root,
        "socket": engine.config.socket,
        "runtime": runtime,
        "init": engine.containers.init_path(),
        "containers": { "total": containers, "running": running },
        "storage": {
            "driver": "overlayfs",
            "images": engine.store.images().len(),
            "blobs": blobs,
            "blob_bytes": blob_bytes,
            "snapshots": snapshots,
        },
        "pid": std::process::id(),
        "uptime_seconds": engine.started.elapsed().as_secs(),
        "rss_bytes": rss_bytes(),
    });
    json(StatusCode::OK, &body)
}
