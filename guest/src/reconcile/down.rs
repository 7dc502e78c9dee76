//! Taking a project down from its labels alone (no project file needed):
//! its containers in reverse dependency order, every container of one
//! level removed at the same time, then its networks, and its volumes and
//! images when asked. Like apply, down may be interrupted and run again:
//! what is left is still labelled and found next time.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::future::join_all;
use servin_proto::apply::{StepObject, StepStatus};
use servin_proto::{Action, ActionKind, ObjectKind, labels};

use super::apply::{Report, remove_container};
use super::observe::{Observed, observe};
use super::world::{EngineWorld, ImageRemoval, World};
use crate::engine::Engine;

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

/// What a down removes, in order: the container batches (leftovers without
/// a place in the graph first, then the dependency levels from the
/// dependants down), the images, the networks, the volumes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownPlan {
    /// Each batch removed at the same time, the batches one after another.
    pub batches: Vec<Vec<Action>>,
    /// The images to remove after the containers.
    pub images: Vec<String>,
    /// The project's networks (ID, name).
    pub networks: Vec<(String, String)>,
    /// The project's volumes to remove.
    pub volumes: Vec<String>,
}

/// Plans taking down what exists of a project: `observed` (its containers)
/// with the images they run (ID to image, for `options.images`), its
/// networks (ID, name) and its volumes. Pure.
pub fn down_plan(
    project: &str,
    observed: &[Observed],
    images_of: &HashMap<String, String>,
    networks: Vec<(String, String)>,
    volumes: Vec<String>,
    options: &DownOptions,
) -> DownPlan {
    let levels = super::graph::down_levels(observed).unwrap_or_else(|e| {
        tracing::warn!("project {project}: down order: {e}; taking everything down at once");
        Vec::new()
    });
    let placed: BTreeSet<&str> = levels.iter().flatten().map(String::as_str).collect();
    let remove = |o: &Observed| Action {
        kind: ActionKind::Remove,
        object: ObjectKind::Container,
        name: o.name.clone(),
        service: o.labels.get(labels::NAME).cloned(),
        replica: None,
        id: Some(o.id.clone()),
        reason: "down".to_string(),
        changed: Vec::new(),
    };
    let mut batches = vec![
        observed
            .iter()
            .filter(|o| {
                o.labels
                    .get(labels::NAME)
                    .is_none_or(|s| !placed.contains(s.as_str()))
            })
            .map(remove)
            .collect::<Vec<_>>(),
    ];
    for level in &levels {
        batches.push(
            observed
                .iter()
                .filter(|o| {
                    o.labels
                        .get(labels::NAME)
                        .is_some_and(|s| level.contains(s))
                })
                .map(remove)
                .collect(),
        );
    }
    batches.retain(|b| !b.is_empty());
    let images: BTreeSet<String> = if options.images {
        observed
            .iter()
            .filter_map(|o| images_of.get(&o.id).cloned())
            .collect()
    } else {
        BTreeSet::new()
    };
    DownPlan {
        batches,
        images: images.into_iter().collect(),
        networks,
        volumes: if options.volumes { volumes } else { Vec::new() },
    }
}

/// Takes project `name` down from its labels alone: its containers in
/// reverse dependency order (each level in parallel), then its networks,
/// and its volumes when asked. Other projects are untouched.
pub async fn down(engine: Arc<Engine>, name: String, options: DownOptions, report: Arc<Report>) {
    let _guard = engine.projects.acquire(&name, &report).await;
    let observed = observe(&engine.containers, &name);
    let images_of: HashMap<String, String> = observed
        .iter()
        .filter_map(|o| engine.containers.get(&o.id).ok())
        .map(|c| (c.id().to_string(), c.record.image_name.clone()))
        .collect();
    let ours = |l: &HashMap<String, String>| {
        l.get(labels::PROJECT).map(String::as_str) == Some(name.as_str())
    };
    let networks = engine
        .containers
        .networks
        .list()
        .into_iter()
        .filter(|rec| ours(&rec.labels))
        .map(|rec| (rec.id, rec.name))
        .collect();
    let volumes = engine
        .volumes
        .list()
        .into_iter()
        .filter(|v| ours(&v.labels()))
        .map(|v| v.info().name.clone())
        .collect();
    let plan = down_plan(&name, &observed, &images_of, networks, volumes, &options);
    let world = EngineWorld(engine);
    run_down(&world, plan, options.timeout, &report).await;
}

/// Runs a [`DownPlan`]: every batch's containers removed at the same time,
/// then the images (and the content they leave unused), networks and
/// volumes. A failure is reported and the rest goes on.
pub async fn run_down(world: &dyn World, plan: DownPlan, timeout: Option<i64>, report: &Report) {
    for batch in &plan.batches {
        join_all(
            batch
                .iter()
                .map(|a| remove_container(world, a, timeout, report)),
        )
        .await;
    }
    if !plan.images.is_empty() {
        remove_images(world, &plan.images, report).await;
    }
    for (id, name) in &plan.networks {
        match world.remove_network(id).await {
            Ok(()) => report.other(StepObject::Network, name, "removed"),
            Err(e) => report.fail(StepObject::Network, name, &format!("remove: {e}")),
        }
    }
    for name in &plan.volumes {
        match world.remove_volume(name).await {
            Ok(()) => report.other(StepObject::Volume, name, "removed"),
            Err(e) => report.fail(StepObject::Volume, name, &format!("remove: {e}")),
        }
    }
}

/// Removes `images` (those the project's removed containers ran), leaving
/// those another container still uses.
async fn remove_images(world: &dyn World, images: &[String], report: &Report) {
    let mut deleted = false;
    for image in images {
        match world.remove_image(image) {
            Ok(ImageRemoval::Removed { deleted: d }) => {
                deleted |= d;
                report.other(StepObject::Image, image, "removed");
            }
            Ok(ImageRemoval::Kept(m)) => report.step(
                StepObject::Image,
                image,
                StepStatus::Done,
                &format!("kept: {m}"),
            ),
            Ok(ImageRemoval::Gone) => {}
            Err(e) => report.fail(StepObject::Image, image, &format!("remove: {e}")),
        }
    }
    if deleted && let Err(e) = world.collect_garbage().await {
        tracing::warn!("garbage collection after down: {e}");
    }
}
