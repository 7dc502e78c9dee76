//! The engine's event stream (`GET /events`): what happened to containers,
//! images, networks and volumes, as Docker reports it.
//!
//! One [`Events`] serves the whole engine: the containers, the image store
//! and the volumes each hold an `Arc` of it and publish what they do.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard_stubs::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum,
};
use tokio::sync::broadcast;

use crate::filters::{FilterError, Filters};

/// How many past events `since` can reach back to.
const KEPT: usize = 1024;

/// Publishes events to every subscriber and keeps the recent ones.
pub struct Events {
    tx: broadcast::Sender<EventMessage>,
    recent: Mutex<VecDeque<EventMessage>>,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(256);
        Self {
            tx,
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
        }
    }
}

impl Events {
    /// Publishes a container event.
    pub fn container(&self, action: &str, id: &str, attributes: HashMap<String, String>) {
        self.publish(EventMessageTypeEnum::CONTAINER, action, id, attributes);
    }

    /// Publishes a network event (`create`, `connect`, `disconnect`,
    /// `destroy`).
    pub fn network(&self, action: &str, id: &str, attributes: HashMap<String, String>) {
        self.publish(EventMessageTypeEnum::NETWORK, action, id, attributes);
    }

    /// Publishes a volume event (`create`, `mount`, `unmount`, `destroy`);
    /// the actor is the volume's name.
    pub fn volume(&self, action: &str, name: &str, attributes: HashMap<String, String>) {
        self.publish(EventMessageTypeEnum::VOLUME, action, name, attributes);
    }

    /// Publishes an image event (`pull`, `push`, `tag`, `untag`, `delete`,
    /// `load`, `save`); the actor is what Docker names: the reference for
    /// `pull` and `push`, the image ID otherwise.
    pub fn image(&self, action: &str, id: &str, attributes: HashMap<String, String>) {
        self.publish(EventMessageTypeEnum::IMAGE, action, id, attributes);
    }

    fn publish(
        &self,
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attributes: HashMap<String, String>,
    ) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let event = EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: i64::try_from(now.as_secs()).ok(),
            time_nano: i64::try_from(now.as_nanos()).ok(),
        };
        tracing::debug!(action, id, "event");
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == KEPT {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        let _ = self.tx.send(event);
    }

    /// The kept events at or after `since_nanos`, and a receiver for new ones.
    pub fn subscribe(
        &self,
        since_nanos: Option<i64>,
    ) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let rx = self.tx.subscribe();
        let past = match (since_nanos, self.recent.lock()) {
            (Some(since), Ok(recent)) => recent
                .iter()
                .filter(|e| e.time_nano.unwrap_or(0) >= since)
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        (past, rx)
    }
}

/// An event as `/events` sends it: Docker's message, with the fields that
/// API versions before 1.52 still fill for container and image events
/// (`status`, the action; `id`, the actor's ID; `from`, a container's
/// image). docker-py's and Compose v1's event readers use them.
#[derive(Debug, serde::Serialize)]
pub struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(flatten)]
    message: &'a EventMessage,
}

impl<'a> Wire<'a> {
    /// `message` with the older fields its type has.
    pub fn new(message: &'a EventMessage) -> Self {
        let legacy = matches!(
            message.typ,
            Some(EventMessageTypeEnum::CONTAINER | EventMessageTypeEnum::IMAGE)
        );
        let actor = message.actor.as_ref().filter(|_| legacy);
        let from = actor
            .filter(|_| message.typ == Some(EventMessageTypeEnum::CONTAINER))
            .and_then(|a| a.attributes.as_ref())
            .and_then(|a| a.get("image"))
            .map(String::as_str);
        Self {
            status: message.action.as_deref().filter(|_| legacy),
            id: actor.and_then(|a| a.id.as_deref()),
            from,
            message,
        }
    }
}

/// The keys `/events` takes.
pub const FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "action",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Docker's `filters` for events (see [`crate::filters`] for the rules):
/// `type`, `event` (also `action`), `container`, `image`, `network`,
/// `volume` (the object's ID, a prefix of it, or its name), `label` (each
/// value on the actor's attributes), `scope` (`local`), `daemon`; the
/// Swarm keys (`config`, `node`, `plugin`, `secret`, `service`) match no
/// event of this engine.
#[derive(Debug, Default)]
pub struct Filter {
    filters: Filters,
}

impl Filter {
    /// Parses the `filters` query value (`{"type":["container"]}`; Docker's
    /// older `{"type":{"container":true}}` form too).
    pub fn parse(raw: Option<&str>) -> Result<Self, FilterError> {
        Ok(Self {
            filters: Filters::parse(raw, FILTER_KEYS)?,
        })
    }

    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &EventMessage) -> bool {
        let f = &self.filters;
        let empty = HashMap::new();
        let actor = event.actor.as_ref();
        let id = actor.and_then(|a| a.id.as_deref()).unwrap_or_default();
        let attrs = actor.and_then(|a| a.attributes.as_ref()).unwrap_or(&empty);
        let action = event.action.as_deref().unwrap_or_default();
        let typ = event.typ.map(|t| t.to_string()).unwrap_or_default();
        let name = attrs.get("name").map(String::as_str).unwrap_or_default();
        // An object filter passes the events of its own type whose actor
        // is that object (its ID, a prefix of it, or its name).
        let object = |key: &str| {
            f.any(key, |w| {
                typ == key && (id.starts_with(w) && !w.is_empty() || name == w)
            })
        };
        // An `image` filter passes image events by ID or name and the
        // events of the containers that run the image; as Docker does, a
        // name without its tag matches every tag of it (`busybox` passes
        // `busybox:latest`).
        let image = f.any("image", |w| {
            let named = if typ == "image" {
                attrs.get("name")
            } else {
                attrs.get("image")
            };
            let by_id = typ == "image" && (id.starts_with(w) && !w.is_empty() || untagged(id) == w);
            by_id || named.is_some_and(|n| n == w || untagged(n) == w)
        });
        let event_matches = |w: &str| action == w || action.split(':').next() == Some(w);
        f.exact("type", &typ)
            && f.any("event", event_matches)
            && f.any("action", event_matches)
            && object("container")
            && image
            && object("network")
            && object("volume")
            && f.labels(attrs)
            && f.exact("scope", "local")
            && f.any("daemon", |_| typ == "daemon")
            && ["config", "node", "plugin", "secret", "service"]
                .iter()
                .all(|k| !f.contains(k))
    }
}

/// A reference without its tag or digest, in its familiar form
/// (`busybox:1` → `busybox`); what does not parse stays as it is.
fn untagged(reference: &str) -> String {
    match crate::image::reference::ImageRef::parse(reference) {
        Ok(r) => crate::image::reference::familiar(&r.name()),
        Err(_) => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn container_events_carry_the_older_fields_networks_do_not() {
        let events = Events::default();
        let mut attrs = HashMap::new();
        attrs.insert("image".to_string(), "box:1".to_string());
        events.container("die", "abc123", attrs.clone());
        events.network("create", "net456", attrs);
        let (past, _) = events.subscribe(Some(0));
        let c = serde_json::to_value(Wire::new(&past[0])).unwrap();
        assert_eq!(c["status"], "die");
        assert_eq!(c["id"], "abc123");
        assert_eq!(c["from"], "box:1");
        assert_eq!(c["Action"], "die");
        assert_eq!(c["Actor"]["ID"], "abc123");
        assert_eq!(c["Type"], "container");
        let n = serde_json::to_value(Wire::new(&past[1])).unwrap();
        let n = n.as_object().unwrap();
        assert!(
            ["status", "id", "from"].iter().all(|k| !n.contains_key(*k)),
            "{n:?}"
        );
        assert_eq!(n["Action"], "create");
    }

    #[test]
    fn filters_by_type_action_and_container() {
        let events = Events::default();
        let mut attrs = HashMap::new();
        attrs.insert("name".to_string(), "web".to_string());
        events.container("start", "abc123", attrs);
        let (past, _) = events.subscribe(Some(0));
        let e = &past[0];
        assert!(
            Filter::parse(Some(r#"{"type":["container"]}"#))
                .unwrap()
                .matches(e)
        );
        assert!(
            Filter::parse(Some(r#"{"container":["web"]}"#))
                .unwrap()
                .matches(e)
        );
        assert!(
            Filter::parse(Some(r#"{"event":{"start":true}}"#))
                .unwrap()
                .matches(e)
        );
        assert!(
            !Filter::parse(Some(r#"{"event":["die"]}"#))
                .unwrap()
                .matches(e)
        );
        assert!(Filter::parse(Some("{")).is_err());
    }

    #[test]
    fn image_and_volume_events_pass_their_own_filters() {
        let events = Events::default();
        let mut attrs = HashMap::new();
        attrs.insert("name".to_string(), "box:1".to_string());
        attrs.insert("team".to_string(), "a".to_string());
        events.image("tag", "sha256:0123abcd", attrs);
        let mut attrs = HashMap::new();
        attrs.insert("driver".to_string(), "local".to_string());
        events.volume("create", "data", attrs);
        let (past, _) = events.subscribe(Some(0));
        let (img, vol) = (&past[0], &past[1]);
        let passes = |f: &str, e: &EventMessage| Filter::parse(Some(f)).unwrap().matches(e);
        assert!(passes(r#"{"type":["image"]}"#, img));
        assert!(!passes(r#"{"type":["image"]}"#, vol));
        for w in ["box", "box:1", "sha256:0123", "sha256:0123abcd"] {
            assert!(passes(&format!(r#"{{"image":["{w}"]}}"#), img), "{w}");
        }
        assert!(!passes(r#"{"image":["box:2"]}"#, img));
        assert!(!passes(r#"{"image":["box"]}"#, vol));
        assert!(passes(r#"{"label":["team=a"]}"#, img));
        assert!(!passes(r#"{"label":["team=b"]}"#, img));
        assert!(passes(r#"{"volume":["data"],"event":["create"]}"#, vol));
        assert!(!passes(r#"{"volume":["other"]}"#, vol));
        assert!(!passes(r#"{"volume":["data"]}"#, img));
        let wire = serde_json::to_value(Wire::new(img)).unwrap();
        assert_eq!(wire["status"], "tag");
        assert_eq!(wire["id"], "sha256:0123abcd");
    }
}
