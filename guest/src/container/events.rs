//! The engine's event stream (`GET /events`): what happened to containers,
//! as Docker reports it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard_stubs::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum,
};
use tokio::sync::broadcast;

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

/// Docker's `filters` for events: `type`, `event`/`action`, `container`,
/// `label` (`key` or `key=value`).
#[derive(Debug, Default)]
pub struct Filter {
    filters: HashMap<String, Vec<String>>,
}

impl Filter {
    /// Parses the `filters` query value (`{"type":["container"]}`; Docker's
    /// older `{"type":{"container":true}}` form too).
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            filters: parse_filters(raw)?,
        })
    }

    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &EventMessage) -> bool {
        let empty = HashMap::new();
        let actor = event.actor.as_ref();
        let id = actor.and_then(|a| a.id.as_deref()).unwrap_or_default();
        let attrs = actor.and_then(|a| a.attributes.as_ref()).unwrap_or(&empty);
        let action = event.action.as_deref().unwrap_or_default();
        self.filters.iter().all(|(key, wanted)| {
            wanted.is_empty()
                || wanted.iter().any(|w| match key.as_str() {
                    "type" => event.typ.map(|t| t.to_string()).as_deref() == Some(w.as_str()),
                    "event" | "action" => {
                        action == w || action.split(':').next() == Some(w.as_str())
                    }
                    "container" => {
                        id.starts_with(w.as_str())
                            || attrs.get("name").map(String::as_str) == Some(w.as_str())
                    }
                    "label" => match w.split_once('=') {
                        Some((k, v)) => attrs.get(k).map(String::as_str) == Some(v),
                        None => attrs.contains_key(w.as_str()),
                    },
                    _ => true,
                })
        })
    }
}

/// Docker's `filters` query value as name to wanted values: the current
/// `{"key":["v"]}` form, the older `{"key":{"v":true}}` one, or a string.
pub fn parse_filters(raw: Option<&str>) -> Result<HashMap<String, Vec<String>>, String> {
    let Some(raw) = raw else {
        return Ok(HashMap::new());
    };
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("invalid filters {raw:?}: {e}"))?;
    let mut filters = HashMap::new();
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let values = match v {
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                serde_json::Value::Object(o) => o.keys().cloned().collect(),
                serde_json::Value::String(s) => vec![s],
                _ => Vec::new(),
            };
            filters.insert(k, values);
        }
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
}
