//! The labels every project object carries, and how values are written in
//! them.
//!
//! The engine recognises a project's containers, networks and volumes by
//! these labels, never by parsing names; enough is stored that a project can
//! be planned against and taken down without its file.

use std::collections::BTreeMap;

use crate::desired::{Condition, Dependency};

/// The project the object belongs to.
pub const PROJECT: &str = "servin.project";
/// The logical name from the file: the container's service, the network's
/// or volume's key.
pub const NAME: &str = "servin.name";
/// The 1-based replica index of a container.
pub const REPLICA: &str = "servin.replica";
/// The config hash (see [`crate::Projection::hash`]).
pub const CONFIG_HASH: &str = "servin.config-hash";
/// The digests of the projection's fields (see [`crate::FieldDigests`]),
/// from which a recreate names the fields that changed.
pub const FIELDS: &str = "servin.fields";
/// The resolved image digest (`sha256:...`), when one was known.
pub const IMAGE_DIGEST: &str = "servin.image-digest";
/// The container's dependency edges (see [`format_dependencies`]).
pub const DEPENDS_ON: &str = "servin.depends-on";
/// The servin version that made the object.
pub const VERSION: &str = "servin.version";
/// `true` on a container that runs to completion once (an init container
/// of `servin kube play`): once it exited with status 0, a plan keeps it
/// as it is while its configuration is unchanged, instead of starting it
/// again.
pub const RUN_ONCE: &str = "servin.run-once";

/// The absolute path of the project file the container was made from, so
/// that `servin dashboard` can plan, apply and take down a project it
/// finds running. Informational: it enters neither the config hash nor
/// the plan's comparison, so a project moved to another folder keeps its
/// containers.
pub const PROJECT_FILE: &str = "servin.project-file";

/// Every label name above, for listing and filtering.
pub const ALL: [&str; 10] = [
    PROJECT,
    NAME,
    REPLICA,
    CONFIG_HASH,
    FIELDS,
    IMAGE_DIGEST,
    DEPENDS_ON,
    VERSION,
    RUN_ONCE,
    PROJECT_FILE,
];

/// The engine name of a container: `{project}-{service}-{replica}`.
pub fn container_name(project: &str, service: &str, replica: u32) -> String {
    format!("{project}-{service}-{replica}")
}

/// The engine name of a project's network or volume: `{project}_{name}`.
pub fn object_name(project: &str, name: &str) -> String {
    format!("{project}_{name}")
}

/// Writes dependency edges as `db:healthy,cache:started`, sorted by service.
pub fn format_dependencies(deps: &[Dependency]) -> String {
    let sorted: BTreeMap<&str, Condition> = deps
        .iter()
        .map(|d| (d.service.as_str(), d.condition))
        .collect();
    sorted
        .iter()
        .map(|(s, c)| format!("{s}:{}", c.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads what [`format_dependencies`] wrote; `Err` names the bad entry.
pub fn parse_dependencies(label: &str) -> Result<Vec<Dependency>, String> {
    label
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (service, condition) = entry
                .split_once(':')
                .ok_or_else(|| format!("dependency {entry:?} has no condition"))?;
            if service.is_empty() {
                return Err(format!("dependency {entry:?} has no service"));
            }
            Ok(Dependency {
                service: service.to_string(),
                condition: Condition::parse(condition)
                    .ok_or_else(|| format!("dependency {entry:?}: unknown condition"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dependencies_round_trip_sorted() {
        let deps = vec![
            Dependency {
                service: "web".into(),
                condition: Condition::Started,
            },
            Dependency {
                service: "db".into(),
                condition: Condition::Healthy,
            },
        ];
        let label = format_dependencies(&deps);
        assert_eq!(label, "db:healthy,web:started");
        let back = parse_dependencies(&label).unwrap();
        assert_eq!(back[0].service, "db");
        assert_eq!(back[1].condition, Condition::Started);
        assert!(parse_dependencies("").unwrap().is_empty());
    }

    #[test]
    fn bad_dependency_labels_are_errors() {
        assert!(parse_dependencies("db").unwrap_err().contains("\"db\""));
        assert!(parse_dependencies("db:sometimes").is_err());
        assert!(parse_dependencies(":started").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(container_name("shop", "web", 2), "shop-web-2");
        assert_eq!(object_name("shop", "data"), "shop_data");
    }
}
