//! What the engine streams back while it applies a project or takes it
//! down: one [`Event`] per JSON line, a [`Event::Step`] for each step on an
//! object and a final [`Event::Summary`].

use serde::{Deserialize, Serialize};

use crate::plan::{ActionKind, ObjectKind};

/// One line of an apply or down stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A step on one object.
    Step(Step),
    /// The outcome, always the last line.
    Summary(Summary),
}

/// A step on one object: begun, finished or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What kind of object (images are named by their reference).
    pub object: StepObject,
    /// The object's engine name (or image reference).
    pub name: String,
    /// Where the step is.
    pub status: StepStatus,
    /// What is being done or was done (`pulling`, `waiting for db
    /// (healthy)`, `created`, ...), or the error.
    pub message: String,
}

/// The object of a [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepObject {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A named volume.
    Volume,
    /// An image.
    Image,
    /// The whole project (waiting for its lock).
    Project,
}

impl From<ObjectKind> for StepObject {
    fn from(k: ObjectKind) -> Self {
        match k {
            ObjectKind::Container => Self::Container,
            ObjectKind::Network => Self::Network,
            ObjectKind::Volume => Self::Volume,
            ObjectKind::Image => Self::Image,
        }
    }
}

impl StepObject {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Image => "image",
            Self::Project => "project",
        }
    }
}

/// Where a [`Step`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Under way.
    Working,
    /// Finished.
    Done,
    /// Failed; the message says why.
    Failed,
}

/// What an apply or down did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The project.
    pub project: String,
    /// The container actions done, by kind.
    pub done: Vec<(ActionKind, u32)>,
    /// Networks and volumes created or removed, images pulled.
    pub others: Vec<String>,
    /// Every failure: the object and the error.
    pub failed: Vec<Failure>,
}

impl Summary {
    /// Whether everything succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }

    /// Counts one container action done.
    pub fn count(&mut self, kind: ActionKind) {
        match self.done.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.done.push((kind, 1)),
        }
    }

    /// How many container actions of `kind` were done.
    pub fn done_of(&self, kind: ActionKind) -> u32 {
        self.done
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// A failed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of object.
    pub object: StepObject,
    /// Its name.
    pub name: String,
    /// The error.
    pub error: String,
}

/// What the CLI reports about an image an apply waits for (one of
/// [`crate::DesiredProject::pending_images`]): its ID once built, or why it
/// could not be built. Exactly one of `id` and `error` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltImage {
    /// The image's reference, as the containers name it.
    pub reference: String,
    /// The built image's ID (`sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why the build failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_wire_shape_of_events() {
        let step = Event::Step(Step {
            object: StepObject::Container,
            name: "shop-web-1".into(),
            status: StepStatus::Done,
            message: "created".into(),
        });
        assert_eq!(
            serde_json::to_value(&step).unwrap(),
            serde_json::json!({"type": "step", "object": "container", "name": "shop-web-1",
                "status": "done", "message": "created"})
        );
        let mut s = Summary {
            project: "shop".into(),
            ..Default::default()
        };
        s.count(ActionKind::Create);
        s.count(ActionKind::Create);
        assert_eq!(s.done_of(ActionKind::Create), 2);
        assert_eq!(s.done_of(ActionKind::Remove), 0);
        assert!(s.ok());
        let back: Event =
            serde_json::from_str(&serde_json::to_string(&Event::Summary(s.clone())).unwrap())
                .unwrap();
        assert_eq!(back, Event::Summary(s));
    }
}
