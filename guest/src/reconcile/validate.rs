//! Checking a desired state before anything is planned from it: the
//! contract between the CLI and the engine (names, hashes, a dependency
//! graph without cycles), so a bad request changes nothing.

use std::collections::HashSet;

use servin_proto::{DesiredProject, labels};

use super::graph;
use crate::error::{ProjectError, Result};

/// Checks a desired state sent for project `name`: the names agree, every
/// container is named and hashed as the contract says and appears once,
/// every dependency is a service of the project, and the dependencies have
/// no cycle. The error names the first problem.
pub fn validate(name: &str, desired: &DesiredProject) -> Result<()> {
    let bad = |why: String| {
        Err(ProjectError {
            project: name.to_string(),
            why,
        }
        .into())
    };
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
    let mut pending = HashSet::new();
    for r in &desired.pending_images {
        if r.is_empty() {
            return bad("a pending image has no reference".to_string());
        }
        if !pending.insert(r.as_str()) {
            return bad(format!("pending image {r} appears twice"));
        }
    }
    if let Some(c) = desired
        .containers
        .iter()
        .find(|c| pending.contains(c.image.as_str()) && c.image_digest.is_some())
    {
        return bad(format!(
            "container {}: its image {} is pending, yet its digest is given",
            c.name, c.image
        ));
    }
    graph::levels(&graph::desired_graph(desired))
        .map(|_| ())
        .map_err(|e| {
            ProjectError {
                project: name.to_string(),
                why: e.to_string(),
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use servin_proto::DesiredContainer;

    use super::*;
    use crate::reconcile::fixtures::container;

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

        let mut twice_pending = project(vec![container("web", &[])]);
        twice_pending.pending_images = vec!["shop-app".into(), "shop-app".into()];
        assert!(err("shop", &twice_pending).contains("pending image shop-app appears twice"));

        let mut known = container("web", &[]);
        known.image_digest = Some("sha256:ab".into());
        let mut digest_of_pending = project(vec![known]);
        digest_of_pending.pending_images = vec!["busybox".into()];
        assert_eq!(
            err("shop", &digest_of_pending),
            "project shop: container shop-web-1: its image busybox is pending, yet its digest is given"
        );
    }
}
