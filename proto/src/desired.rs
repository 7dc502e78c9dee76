//! The desired state of a project, as the CLI sends it to the engine.

use bollard_stubs::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use serde::{Deserialize, Serialize};

use crate::projection::Projection;

/// Everything a project wants to exist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredProject {
    /// The project's name (`servin.project`).
    pub name: String,
    /// Its networks, in name order.
    pub networks: Vec<DesiredNetwork>,
    /// Its named volumes, in name order.
    pub volumes: Vec<DesiredVolume>,
    /// Its containers, one per replica, in service then replica order.
    pub containers: Vec<DesiredContainer>,
    /// The images (by the reference the containers name) the CLI is still
    /// building: the containers running one carry no digest and wait until
    /// the CLI reports the image's ID or its error (see
    /// [`crate::apply::BuiltImage`]). Empty when nothing is built.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_images: Vec<String>,
}

/// A network the project wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredNetwork {
    /// The logical name from the file (`servin.name`).
    pub name: String,
    /// Made elsewhere: used as it is, never created or removed.
    pub external: bool,
    /// Docker's create request; its `name` is the engine name and its labels
    /// include the project labels.
    pub create: NetworkCreateRequest,
}

/// A named volume the project wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredVolume {
    /// The logical name from the file (`servin.name`).
    pub name: String,
    /// Made elsewhere: used as it is, never created or removed.
    pub external: bool,
    /// Docker's create request; its `name` is the engine name and its labels
    /// include the project labels.
    pub create: VolumeCreateRequest,
}

/// One container (one replica of a service) the project wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredContainer {
    /// The service: its key in the file (`servin.name`).
    pub service: String,
    /// The 1-based replica index (`servin.replica`).
    pub replica: u32,
    /// The engine name, `{project}-{service}-{replica}`.
    pub name: String,
    /// The image reference it runs.
    pub image: String,
    /// The image's locked or resolved digest (`sha256:...`), when known.
    pub image_digest: Option<String>,
    /// The services it waits for.
    pub depends_on: Vec<Dependency>,
    /// The config hash: [`Projection::hash`] of `projection`.
    pub config_hash: String,
    /// The canonical projection the hash was computed from.
    pub projection: Projection,
    /// Docker's create body, labels included.
    pub body: ContainerCreateBody,
}

/// A `depends_on` edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The service depended on.
    pub service: String,
    /// What it must have reached.
    pub condition: Condition,
}

/// What a dependency must reach before its dependant starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// It runs.
    Started,
    /// Its healthcheck passes.
    Healthy,
    /// It ran and exited with status 0.
    Completed,
}

impl Condition {
    /// The lowercase name, as in the file and the labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Healthy => "healthy",
            Self::Completed => "completed",
        }
    }

    /// Reads [`Self::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "started" => Some(Self::Started),
            "healthy" => Some(Self::Healthy),
            "completed" => Some(Self::Completed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pending_images_go_on_the_wire_only_when_there_are_some() {
        let mut d = DesiredProject {
            name: "shop".into(),
            ..Default::default()
        };
        let plain = serde_json::to_value(&d).unwrap();
        assert!(plain.get("pending_images").is_none(), "{plain}");
        let back: DesiredProject = serde_json::from_value(plain).unwrap();
        assert!(back.pending_images.is_empty());
        d.pending_images = vec!["shop-app".into()];
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["pending_images"], serde_json::json!(["shop-app"]));
        assert_eq!(serde_json::from_value::<DesiredProject>(v).unwrap(), d);
    }
}
