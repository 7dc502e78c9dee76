//! A plan: the actions that take what exists to what a project wants, each
//! with its reason. Planning changes nothing; a plan is data.
//!
//! Container actions are in [`Plan::actions`]; the project's networks,
//! volumes and images in [`Plan::resources`], in the order apply takes
//! them (networks and volumes, then pulls, then the removal of networks the
//! project no longer names). What cannot be had is a [`ActionKind::Refuse`]
//! whose reason is the error, so a plan shows why `up` would fail.

use serde::{Deserialize, Serialize};

use crate::apply::StepObject;

/// The plan of one project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The project's name.
    pub project: String,
    /// Every container action, wanted containers first (in service then
    /// replica order), then removals.
    pub actions: Vec<Action>,
    /// The actions on the project's networks, volumes and images, in the
    /// order apply runs them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Action>,
}

impl Plan {
    /// Whether applying the plan would change nothing.
    pub fn is_noop(&self) -> bool {
        self.actions
            .iter()
            .chain(&self.resources)
            .all(|a| a.kind == ActionKind::Keep)
    }

    /// The refusals: what `up` cannot have, with the reason.
    pub fn refusals(&self) -> impl Iterator<Item = &Action> {
        self.resources
            .iter()
            .chain(&self.actions)
            .filter(|a| a.kind == ActionKind::Refuse)
    }
}

/// One action on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What to do.
    pub kind: ActionKind,
    /// What kind of object.
    pub object: ObjectKind,
    /// The object's engine name.
    pub name: String,
    /// The service (containers) or logical name (networks, volumes), when
    /// known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The replica index of a container, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// The ID of the existing object the action concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why, in a few words.
    pub reason: String,
    /// For a recreate: the projection fields that changed (`image-digest`
    /// when only the image's digest did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Make the missing object.
    Create,
    /// Replace the object: its configuration changed.
    Recreate,
    /// Start the stopped object.
    Start,
    /// Leave it as it is.
    Keep,
    /// Remove the object: the project no longer wants it.
    Remove,
    /// Pull the missing image.
    Pull,
    /// Build the image (added by the CLI, which builds before it applies).
    Build,
    /// The object cannot be had as the project wants it; the reason is the
    /// error (`up` fails on it, changing nothing that depends on it).
    Refuse,
}

impl ActionKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Recreate => "recreate",
            Self::Start => "start",
            Self::Keep => "keep",
            Self::Remove => "remove",
            Self::Pull => "pull",
            Self::Build => "build",
            Self::Refuse => "refuse",
        }
    }
}

/// The kind of object an action concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A named volume.
    Volume,
    /// An image, named by its reference.
    Image,
}

impl ObjectKind {
    /// The lowercase name (the same as its [`StepObject`]'s).
    pub fn as_str(self) -> &'static str {
        StepObject::from(self).as_str()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_wire_shape_of_an_action() {
        let recreate = Action {
            kind: ActionKind::Recreate,
            object: ObjectKind::Container,
            name: "shop-web-1".into(),
            service: Some("web".into()),
            replica: Some(1),
            id: Some("abc".into()),
            reason: "config changed: env".into(),
            changed: vec!["env".into()],
        };
        assert_eq!(
            serde_json::to_value(&recreate).unwrap(),
            serde_json::json!({
                "kind": "recreate", "object": "container", "name": "shop-web-1",
                "service": "web", "replica": 1, "id": "abc",
                "reason": "config changed: env", "changed": ["env"]
            })
        );
        let create: Action = serde_json::from_value(serde_json::json!({
            "kind": "create", "object": "container", "name": "shop-db-1", "reason": "missing"
        }))
        .unwrap();
        assert_eq!(create.kind.as_str(), "create");
        assert!(create.id.is_none() && create.changed.is_empty());
        let plan = Plan {
            project: "shop".into(),
            actions: vec![create.clone()],
            ..Default::default()
        };
        assert!(!plan.is_noop());
        let keep = Action {
            kind: ActionKind::Keep,
            ..create
        };
        assert!(
            Plan {
                project: "shop".into(),
                actions: vec![keep],
                ..Default::default()
            }
            .is_noop()
        );
    }

    #[test]
    fn the_wire_shape_of_resources_pulls_and_refusals() {
        // A plan without resources keeps the old shape.
        let bare = Plan {
            project: "shop".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            serde_json::json!({"project": "shop", "actions": []})
        );
        let pull = Action {
            kind: ActionKind::Pull,
            object: ObjectKind::Image,
            name: "busybox:1".into(),
            service: None,
            replica: None,
            id: None,
            reason: "missing, needed by shop-web-1".into(),
            changed: Vec::new(),
        };
        let refuse = Action {
            kind: ActionKind::Refuse,
            object: ObjectKind::Network,
            name: "shop_back".into(),
            reason: "its definition changed".into(),
            ..pull.clone()
        };
        let plan = Plan {
            project: "shop".into(),
            actions: Vec::new(),
            resources: vec![pull.clone(), refuse.clone()],
        };
        let v = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            v["resources"],
            serde_json::json!([
                {"kind": "pull", "object": "image", "name": "busybox:1",
                 "reason": "missing, needed by shop-web-1"},
                {"kind": "refuse", "object": "network", "name": "shop_back",
                 "reason": "its definition changed"}
            ])
        );
        assert_eq!(serde_json::from_value::<Plan>(v).unwrap(), plan);
        assert!(!plan.is_noop());
        assert_eq!(plan.refusals().collect::<Vec<_>>(), vec![&refuse]);
    }
}
