//! Observing: what exists of a project, found by its labels, as plain
//! data the planner reads. Observing changes nothing.

use std::collections::HashMap;

use servin_proto::labels;

use crate::container::{Containers, Status};

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
            })
        })
        .collect()
}
