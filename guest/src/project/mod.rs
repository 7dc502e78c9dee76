//! Projects: the server side of the reconciler.
//!
//! The CLI sends a project's desired state ([`servin_proto::DesiredProject`]);
//! the engine finds the project's containers by their labels
//! ([`observe`]), checks the desired state ([`validate`]), and plans
//! ([`plan::plan`]). Planning is pure: it reads what exists and changes
//! nothing.
//!
//! - [`plan`]: desired state and observed containers to a plan of actions.
//! - [`graph`]: the `depends_on` graph in topological levels, for apply and
//!   down.
//! - [`apply`]: applying a plan as a dependency graph, and taking a project
//!   down.

pub mod apply;
pub mod graph;
pub mod plan;

use std::collections::{BTreeMap, HashMap, HashSet};

use servin_proto::{DesiredProject, labels};

use crate::container::{Containers, Status};
use crate::error::{Error, Result};

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

/// Checks a desired state sent for project `name`: the names agree, every
/// container is named and hashed as the contract says and appears once,
/// every dependency is a service of the project, and the dependencies have
/// no cycle. The error names the first problem.
pub fn validate(name: &str, desired: &DesiredProject) -> Result<()> {
    let bad = |m: String| Err(Error::BadRequest(format!("project {name}: {m}")));
    if desired.name != name {
        return bad(format!(
            "the desired state is for project {:?}",
            desired.name
        ));
    }
    let mut seen = HashSet::new();
    for c in &desired.containers {
        if c.service.is_empty() || c.replica == 0 {
            return bad(format!(
                "container {:?} needs a service and a replica from 1",
                c.name
            ));
        }
        let expected = labels::container_name(name, &c.service, c.replica);
        if c.name != expected {
            return bad(format!(
                "container {:?} of service {} replica {} should be named {expected:?}",
                c.name, c.service, c.replica
            ));
        }
        if !seen.insert(c.name.as_str()) {
            return bad(format!("container {:?} appears twice", c.name));
        }
        if c.config_hash != c.projection.hash() {
            return bad(format!(
                "container {}: the config hash does not match its projection",
                c.name
            ));
        }
    }
    graph::levels(&desired_graph(desired))
        .map(|_| ())
        .map_err(|e| Error::BadRequest(format!("project {name}: {e}")))
}

/// The dependency graph of a desired state: service to the services it
/// depends on.
pub fn desired_graph(desired: &DesiredProject) -> BTreeMap<String, Vec<String>> {
    let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &desired.containers {
        let deps = g.entry(c.service.clone()).or_default();
        for d in &c.depends_on {
            if !deps.contains(&d.service) {
                deps.push(d.service.clone());
            }
        }
    }
    g
}

/// The order to take down what exists: the levels of [`observed_graph`]
/// reversed, so dependants go before what they depend on.
pub fn down_levels(observed: &[Observed]) -> Result<Vec<Vec<String>>, graph::GraphError> {
    let mut levels = graph::levels(&observed_graph(observed))?;
    levels.reverse();
    Ok(levels)
}

/// The dependency graph of what exists, from the containers' labels (what
/// `down` needs without the project file). Edges to services that have no
/// container any more, and unreadable labels, are left out: they cannot
/// order anything.
pub fn observed_graph(observed: &[Observed]) -> BTreeMap<String, Vec<String>> {
    let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in observed {
        if let Some(service) = o.labels.get(labels::NAME) {
            g.entry(service.clone()).or_default();
        }
    }
    for o in observed {
        let (Some(service), Some(label)) =
            (o.labels.get(labels::NAME), o.labels.get(labels::DEPENDS_ON))
        else {
            continue;
        };
        let Ok(deps) = labels::parse_dependencies(label) else {
            continue;
        };
        let present: Vec<String> = deps
            .into_iter()
            .map(|d| d.service)
            .filter(|s| g.contains_key(s) && s != service)
            .collect();
        if let Some(edges) = g.get_mut(service) {
            for s in present {
                if !edges.contains(&s) {
                    edges.push(s);
                }
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use servin_proto::{Condition, Dependency, DesiredContainer, Projection};

    use super::*;

    /// A desired container of project `shop` depending (`started`) on `deps`.
    pub(crate) fn container(service: &str, deps: &[&str]) -> DesiredContainer {
        let p = Projection::new(1);
        DesiredContainer {
            service: service.into(),
            replica: 1,
            name: labels::container_name("shop", service, 1),
            image: "busybox".into(),
            image_digest: None,
            depends_on: deps
                .iter()
                .map(|d| Dependency {
                    service: d.to_string(),
                    condition: Condition::Started,
                })
                .collect(),
            config_hash: p.hash(),
            projection: p,
            body: Default::default(),
        }
    }

    fn project(containers: Vec<DesiredContainer>) -> DesiredProject {
        DesiredProject {
            name: "shop".into(),
            containers,
            ..Default::default()
        }
    }

    fn err(name: &str, d: &DesiredProject) -> String {
        validate(name, d).unwrap_err().to_string()
    }

    #[test]
    fn a_consistent_desired_state_is_valid() {
        let d = project(vec![container("web", &["db"]), container("db", &[])]);
        validate("shop", &d).unwrap();
    }

    #[test]
    fn inconsistent_desired_states_are_refused_with_the_reason() {
        let d = project(vec![container("web", &[])]);
        assert!(err("other", &d).contains("is for project \"shop\""));

        let mut bad_name = container("web", &[]);
        bad_name.name = "web".into();
        assert!(err("shop", &project(vec![bad_name])).contains("should be named \"shop-web-1\""));

        let twice = project(vec![container("web", &[]), container("web", &[])]);
        assert!(err("shop", &twice).contains("appears twice"));

        let mut bad_hash = container("web", &[]);
        bad_hash.config_hash = "sha256:00".into();
        assert!(err("shop", &project(vec![bad_hash])).contains("config hash"));

        let cycle = project(vec![container("a", &["b"]), container("b", &["a"])]);
        assert!(err("shop", &cycle).contains("cycle: a -> b -> a"));

        let unknown = project(vec![container("web", &["db"])]);
        assert!(err("shop", &unknown).contains("depends on db"));
    }

    #[test]
    fn the_observed_graph_comes_from_labels() {
        let seen = |service: &str, deps: &str| {
            let mut labels = HashMap::new();
            labels.insert(labels::NAME.to_string(), service.to_string());
            labels.insert(labels::DEPENDS_ON.to_string(), deps.to_string());
            Observed {
                id: service.into(),
                name: service.into(),
                labels,
                running: true,
            }
        };
        let observed = [
            seen("web", "db:healthy,gone:started"),
            seen("db", ""),
            seen("odd", "not a label"),
        ];
        let g = observed_graph(&observed);
        assert_eq!(g["web"], vec!["db"]);
        assert!(g["db"].is_empty() && g["odd"].is_empty());
        assert_eq!(
            graph::levels(&g).unwrap(),
            vec![vec!["db", "odd"], vec!["web"]]
        );
        assert_eq!(
            down_levels(&observed).unwrap(),
            vec![vec!["web"], vec!["db", "odd"]]
        );
    }
}
