//! Observing: what exists of a project, found by its labels, as plain
//! data the planner reads. Observing changes nothing.

use std::collections::{BTreeSet, HashMap};

use servin_proto::{DesiredContainer, DesiredProject, labels};

use crate::container::{Containers, Status};
use crate::engine::Engine;

/// Everything the planner reads about what exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The containers labelled with the project, oldest first.
    pub containers: Vec<Observed>,
    /// The networks the desired state names, and those labelled with the
    /// project.
    pub networks: Vec<ObservedObject>,
    /// The volumes the desired state names.
    pub volumes: Vec<ObservedObject>,
    /// The images the desired containers run that the store has.
    pub images: BTreeSet<String>,
}

/// A network or volume as the engine finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedObject {
    /// Its ID (a volume's is its name).
    pub id: String,
    /// Its engine name.
    pub name: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// Observes what the planner needs to plan `desired`.
pub fn observe_all(engine: &Engine, desired: &DesiredProject) -> Observation {
    let named: BTreeSet<&str> = desired
        .networks
        .iter()
        .map(|n| n.create.name.as_str())
        .collect();
    let networks = engine
        .containers
        .networks
        .list()
        .into_iter()
        .filter(|n| {
            named.contains(n.name.as_str()) || n.labels.get(labels::PROJECT) == Some(&desired.name)
        })
        .map(|n| ObservedObject {
            id: n.id.clone(),
            name: n.name.clone(),
            labels: n.labels.clone(),
        })
        .collect();
    let volumes = desired
        .volumes
        .iter()
        .filter_map(|v| {
            let name = v.create.name.clone().unwrap_or_else(|| v.name.clone());
            let found = engine.volumes.get(&name).ok()?;
            Some(ObservedObject {
                id: name.clone(),
                name,
                labels: found.labels(),
            })
        })
        .collect();
    let images = desired
        .containers
        .iter()
        .map(image_of)
        .filter(|i| engine.store.resolve(i).is_ok())
        .collect();
    Observation {
        containers: observe(&engine.containers, &desired.name),
        networks,
        volumes,
        images,
    }
}

/// The image reference a desired container runs (its create body's, when
/// set).
pub fn image_of(c: &DesiredContainer) -> String {
    c.body
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| c.image.clone())
}

/// A container of a project as the engine finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Its ID.
    pub id: String,
    /// Its name, without `/`.
    pub name: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Whether its process runs (or a restart policy is bringing it back).
    pub running: bool,
    /// Whether its process exited with status 0 (and does not run again).
    pub completed: bool,
    /// The networks it joins (IDs, or `bridge` for the default one).
    pub networks: Vec<String>,
    /// The named volumes it mounts.
    pub volumes: Vec<String>,
}

/// The containers labelled as belonging to `project`, oldest first.
pub fn observe(containers: &Containers, project: &str) -> Vec<Observed> {
    containers
        .list()
        .into_iter()
        .filter_map(|c| {
            let labels = c.record.labels();
            if labels.get(labels::PROJECT).map(String::as_str) != Some(project) {
                return None;
            }
            let status = c.state().status;
            Some(Observed {
                id: c.id().to_string(),
                name: c.name().to_string(),
                labels,
                running: matches!(status, Status::Running | Status::Restarting),
                completed: status == Status::Exited && c.state().exit_code == 0,
                networks: c.attachments().into_iter().map(|a| a.network).collect(),
                volumes: c.record.volumes.iter().map(|v| v.name.clone()).collect(),
            })
        })
        .collect()
}
