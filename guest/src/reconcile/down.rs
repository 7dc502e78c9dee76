//! Taking a project down from its labels alone (no project file needed):
//! its containers in reverse dependency order, every container of one
//! level removed at the same time, then its networks, and its volumes and
//! images when asked. Like apply, down may be interrupted and run again:
//! what is left is still labelled and found next time.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::join_all;
use servin_proto::apply::{StepObject, StepStatus};
use servin_proto::{Action, ActionKind, ObjectKind, labels};

use super::apply::{Report, remove_container, remove_volume};
use super::observe::{Observed, observe};
use crate::engine::Engine;
use crate::error::Error;

/// What `down` removes besides containers and networks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownOptions {
    /// The project's named volumes too.
    pub volumes: bool,
    /// The images the project's containers ran too (those no other
    /// container uses).
    pub images: bool,
    /// Seconds to wait for each container to stop before killing it;
    /// `None`: its own `stop_timeout`.
    pub timeout: Option<i64>,
}

/// Takes project `name` down from its labels alone: its containers in
/// reverse dependency order (each level in parallel), then its networks,
/// and its volumes when asked. Other projects are untouched.
pub async fn down(engine: Arc<Engine>, name: String, options: DownOptions, report: Arc<Report>) {
    let _guard = engine.projects.acquire(&name, &report).await;
    let observed = observe(&engine.containers, &name);
    let levels = super::graph::down_levels(&observed).unwrap_or_else(|e| {
        tracing::warn!("project {name}: down order: {e}; taking everything down at once");
        Vec::new()
    });
    let images: BTreeSet<String> = observed
        .iter()
        .filter(|_| options.images)
        .filter_map(|o| engine.containers.get(&o.id).ok())
        .map(|c| c.record.image_name.clone())
        .collect();
    let mut batches: Vec<Vec<&Observed>> = Vec::new();
    let placed: BTreeSet<&str> = levels.iter().flatten().map(String::as_str).collect();
    batches.push(
        observed
            .iter()
            .filter(|o| {
                o.labels
                    .get(labels::NAME)
                    .is_none_or(|s| !placed.contains(s.as_str()))
            })
            .collect(),
    );
    for level in &levels {
        batches.push(
            observed
                .iter()
                .filter(|o| {
                    o.labels
                        .get(labels::NAME)
                        .is_some_and(|s| level.contains(s))
                })
                .collect(),
        );
    }
    for batch in batches {
        join_all(batch.into_iter().map(|o| {
            let a = Action {
                kind: ActionKind::Remove,
                object: ObjectKind::Container,
                name: o.name.clone(),
                service: o.labels.get(labels::NAME).cloned(),
                replica: None,
                id: Some(o.id.clone()),
                reason: "down".to_string(),
                changed: Vec::new(),
            };
            let engine = &engine;
            let report = &report;
            async move { remove_container(engine, &a, options.timeout, report).await }
        }))
        .await;
    }
    if options.images {
        remove_images(&engine, images, &report).await;
    }
    for rec in engine.containers.networks.list() {
        if rec.labels.get(labels::PROJECT).map(String::as_str) != Some(name.as_str()) {
            continue;
        }
        match engine.containers.remove_network(&rec.id).await {
            Ok(_) => report.other(StepObject::Network, &rec.name, "removed"),
            Err(e) => report.fail(
                StepObject::Network,
                &rec.name,
                &format!("remove: {}", e.full_message()),
            ),
        }
    }
    if options.volumes {
        for v in engine.volumes.list() {
            if v.labels().get(labels::PROJECT).map(String::as_str) != Some(name.as_str()) {
                continue;
            }
            let vname = v.info().name.clone();
            match remove_volume(&engine, &vname).await {
                Ok(()) => report.other(StepObject::Volume, &vname, "removed"),
                Err(e) => report.fail(
                    StepObject::Volume,
                    &vname,
                    &format!("remove: {}", e.full_message()),
                ),
            }
        }
    }
}

/// Removes `images` (those the project's removed containers ran), leaving
/// those another container still uses.
async fn remove_images(engine: &Arc<Engine>, images: BTreeSet<String>, report: &Report) {
    let mut deleted = false;
    for image in images {
        let in_use = engine.containers.images_in_use();
        match engine.store.remove(&image, false, &in_use) {
            Ok(r) => {
                deleted |= !r.deleted.is_empty();
                report.other(StepObject::Image, &image, "removed");
            }
            Err(Error::Conflict(m)) => report.step(
                StepObject::Image,
                &image,
                StepStatus::Done,
                &format!("kept: {m}"),
            ),
            Err(Error::NoSuchImage(_)) => {}
            Err(e) => report.fail(
                StepObject::Image,
                &image,
                &format!("remove: {}", e.full_message()),
            ),
        }
    }
    if deleted && let Err(e) = crate::image::gc::collect_garbage(engine).await {
        tracing::warn!("garbage collection after down: {}", e.full_message());
    }
}
