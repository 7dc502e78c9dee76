//! Resetting the engine (`POST /servin/v1/reset`, `servin system reset`):
//! removing everything it made, found from its own records, so that only
//! this engine's objects go and another engine's on the same host stay.
//!
//! The order matters: the containers first (killed, then removed, which
//! takes their veths, namespaces, root mounts and runtime state), so that
//! nothing uses the volumes, images and networks that go next; a network's
//! removal takes its bridge and its firewall table or chains. Then the DNS
//! server stops listening and whatever is still mounted below the state
//! root is unmounted. A failed step is reported, naming its object, and
//! the rest goes on: a reset removes all it can.

use std::path::Path;
use std::sync::Arc;

use servin_proto::reset::{RemovedContainer, RemovedImage, RemovedNetwork, ResetReport};

use crate::container::Status;
use crate::engine::Engine;
use crate::image::reference::familiar;
use crate::network::firewall::Backend;

/// Removes every container, volume, image and network of `engine` and
/// everything they held on the host; says what went and what failed.
pub async fn reset(engine: &Arc<Engine>) -> ResetReport {
    let mut report = ResetReport {
        engine_pid: std::process::id(),
        ..ResetReport::default()
    };
    remove_containers(engine, &mut report).await;
    remove_volumes(engine, &mut report).await;
    remove_images(engine, &mut report).await;
    remove_networks(engine, &mut report).await;
    for addr in engine.dns.listening() {
        report.dns_listeners.push(addr.to_string());
    }
    engine.dns.shutdown().await;
    report.dns_listeners.sort();
    unmount_below(&engine.config.root, &mut report).await;
    tracing::info!(
        containers = report.containers.len(),
        images = report.images.len(),
        volumes = report.volumes.len(),
        networks = report.networks.len(),
        errors = report.errors.len(),
        "engine reset"
    );
    report
}

async fn remove_containers(engine: &Arc<Engine>, report: &mut ResetReport) {
    let containers = &engine.containers;
    for c in containers.list() {
        let state = c.state();
        let name = c.name();
        if state.paused {
            // A frozen process does not take SIGKILL until it is thawed.
            if let Err(e) = containers.unpause(&c).await {
                tracing::debug!("unpause {name} before removing it: {}", e.full_message());
            }
        }
        match containers.remove(&c, true).await {
            Ok(()) => report.containers.push(RemovedContainer {
                id: c.id().to_string(),
                name,
                was_running: state.status == Status::Running,
            }),
            Err(e) => report
                .errors
                .push(format!("remove container {name}: {}", e.full_message())),
        }
    }
    containers.drop_standby().await;
}

async fn remove_volumes(engine: &Arc<Engine>, report: &mut ResetReport) {
    for v in engine.volumes.list() {
        let name = v.meta.name;
        let containers = Arc::clone(&engine.containers);
        let n = name.clone();
        let removed = tokio::task::spawn_blocking(move || containers.remove_volume(&n, true))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.full_message()));
        match removed {
            Ok(()) => report.volumes.push(name),
            Err(e) => report.errors.push(format!("remove volume {name}: {e}")),
        }
    }
}

async fn remove_images(engine: &Arc<Engine>, report: &mut ResetReport) {
    let images = engine.store.images();
    let in_use = engine.containers.images_in_use();
    match engine.store.prune(true, &in_use, |_| true) {
        Ok(removal) => {
            for img in images
                .into_iter()
                .filter(|i| removal.deleted.contains(&i.id))
            {
                report.images.push(RemovedImage {
                    tags: img.repo_tags.iter().map(|t| familiar(t)).collect(),
                    id: img.id,
                });
            }
        }
        Err(e) => report
            .errors
            .push(format!("remove the images: {}", e.full_message())),
    }
    if let Err(e) = crate::image::gc::collect_garbage(engine).await {
        report.errors.push(format!(
            "delete the images' layers and blobs: {}",
            e.full_message()
        ));
    }
    for id in in_use.keys() {
        report
            .errors
            .push(format!("remove image {id}: a container still uses it"));
    }
}

async fn remove_networks(engine: &Arc<Engine>, report: &mut ResetReport) {
    for rec in engine.containers.networks.list() {
        let firewall = match rec.firewall {
            Backend::Nft => format!("nftables table inet servin-{}", rec.tag()),
            Backend::Iptables => format!("iptables chains SERVIN-{}-*", rec.tag()),
        };
        match engine.containers.remove_network(&rec.id).await {
            Ok(rec) => report.networks.push(RemovedNetwork {
                id: rec.id.clone(),
                name: rec.name.clone(),
                bridge: rec.bridge.clone(),
                firewall,
            }),
            Err(e) => report.errors.push(format!(
                "remove network {} (bridge {}): {}",
                rec.name,
                rec.bridge,
                e.full_message()
            )),
        }
    }
}

/// Unmounts (lazily, deepest first) whatever is still mounted at or below
/// `root`.
async fn unmount_below(root: &Path, report: &mut ResetReport) {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let info = match tokio::fs::read_to_string("/proc/self/mountinfo").await {
        Ok(text) => text,
        Err(e) => {
            report
                .errors
                .push(format!("read /proc/self/mountinfo: {e}"));
            return;
        }
    };
    for m in servin_values::mountinfo::mounts_below(&info, &root)
        .into_iter()
        .rev()
    {
        match crate::runtime::rootfs::unmount(&m) {
            Ok(()) => report.mounts.push(m.display().to_string()),
            Err(e) => report.errors.push(e.full_message()),
        }
    }
}
