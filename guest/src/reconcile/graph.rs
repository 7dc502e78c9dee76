//! The `depends_on` graph in topological levels.
//!
//! Level 0 holds the services that depend on nothing; level n the services
//! whose dependencies all sit in lower levels. Apply runs the levels in
//! order (each level's services in parallel); down runs them in reverse.
//! The graph comes from the desired state ([`desired_graph`]) for apply,
//! and from the containers' labels ([`observed_graph`]) for down, which
//! needs no project file.

use std::collections::{BTreeMap, BTreeSet};

use servin_proto::{DesiredProject, labels};

use super::observe::Observed;

/// Why a dependency graph has no order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A service depends on one that does not exist.
    #[error("service {service} depends on {missing}, which is not a service of the project")]
    Unknown {
        /// The dependant.
        service: String,
        /// The missing dependency.
        missing: String,
    },
    /// The dependencies go round; the services in the order of the edges,
    /// the first repeated at the end.
    #[error("the dependencies form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// Sorts `graph` (service to the services it depends on) into levels, each
/// in name order.
pub fn levels(graph: &BTreeMap<String, Vec<String>>) -> Result<Vec<Vec<String>>, GraphError> {
    for (service, deps) in graph {
        if let Some(missing) = deps.iter().find(|d| !graph.contains_key(*d)) {
            return Err(GraphError::Unknown {
                service: service.clone(),
                missing: missing.clone(),
            });
        }
    }
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while placed.len() < graph.len() {
        let level: Vec<String> = graph
            .iter()
            .filter(|(s, deps)| {
                !placed.contains(s.as_str()) && deps.iter().all(|d| placed.contains(d.as_str()))
            })
            .map(|(s, _)| s.clone())
            .collect();
        if level.is_empty() {
            return Err(GraphError::Cycle(find_cycle(graph, &placed)));
        }
        placed.extend(
            graph
                .keys()
                .filter(|k| level.contains(k))
                .map(String::as_str),
        );
        out.push(level);
    }
    Ok(out)
}

/// A cycle among the services not yet placed: every one of them has an
/// unplaced dependency, so walking unplaced dependencies from the first
/// must come back to a service already walked.
fn find_cycle(graph: &BTreeMap<String, Vec<String>>, placed: &BTreeSet<&str>) -> Vec<String> {
    let Some(start) = graph.keys().find(|k| !placed.contains(k.as_str())) else {
        return Vec::new();
    };
    let mut path: Vec<&str> = vec![start.as_str()];
    loop {
        let Some(current) = path.last().copied() else {
            return Vec::new();
        };
        let next = graph.get(current).and_then(|deps| {
            let mut unplaced: Vec<&String> = deps
                .iter()
                .filter(|d| !placed.contains(d.as_str()))
                .collect();
            unplaced.sort();
            unplaced.first().map(|d| d.as_str())
        });
        let Some(next) = next else {
            return Vec::new();
        };
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.to_string());
            return cycle;
        }
        path.push(next);
    }
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
pub fn down_levels(observed: &[Observed]) -> Result<Vec<Vec<String>>, GraphError> {
    let mut levels = levels(&observed_graph(observed))?;
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
    use std::collections::HashMap;

    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(s, deps)| (s.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn independent_services_share_level_zero() {
        let g = graph(&[("b", &[]), ("a", &[])]);
        assert_eq!(levels(&g).unwrap(), vec![vec!["a", "b"]]);
        assert!(levels(&BTreeMap::new()).unwrap().is_empty());
    }

    #[test]
    fn a_diamond_takes_three_levels() {
        let g = graph(&[
            ("web", &["api", "cache"]),
            ("api", &["db"]),
            ("cache", &["db"]),
            ("db", &[]),
            ("tool", &[]),
        ]);
        assert_eq!(
            levels(&g).unwrap(),
            vec![vec!["db", "tool"], vec!["api", "cache"], vec!["web"]]
        );
    }

    #[test]
    fn a_long_chain_is_one_service_per_level() {
        let g = graph(&[("d", &["c"]), ("c", &["b"]), ("b", &["a"]), ("a", &[])]);
        assert_eq!(
            levels(&g).unwrap(),
            vec![vec!["a"], vec!["b"], vec!["c"], vec!["d"]]
        );
    }

    #[test]
    fn cycles_are_named() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("x", &[])]);
        let e = levels(&g).unwrap_err();
        assert_eq!(
            e,
            GraphError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(
            e.to_string(),
            "the dependencies form a cycle: a -> b -> c -> a"
        );
    }

    #[test]
    fn a_cycle_behind_a_dependant_is_found() {
        // `top` waits on the cycle but is not part of it.
        let g = graph(&[("top", &["m"]), ("m", &["n"]), ("n", &["m"])]);
        assert_eq!(
            levels(&g).unwrap_err(),
            GraphError::Cycle(vec!["m".into(), "n".into(), "m".into()])
        );
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let g = graph(&[("a", &["a"])]);
        assert_eq!(
            levels(&g).unwrap_err(),
            GraphError::Cycle(vec!["a".into(), "a".into()])
        );
    }

    #[test]
    fn unknown_dependencies_are_named() {
        let g = graph(&[("web", &["db"])]);
        assert_eq!(
            levels(&g).unwrap_err().to_string(),
            "service web depends on db, which is not a service of the project"
        );
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
                completed: false,
                networks: Vec::new(),
                volumes: Vec::new(),
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
        assert_eq!(levels(&g).unwrap(), vec![vec!["db", "odd"], vec!["web"]]);
        assert_eq!(
            down_levels(&observed).unwrap(),
            vec![vec!["web"], vec!["db", "odd"]]
        );
    }
}
