//! Docker's pre-defined networks as clients see them: `bridge` (the
//! engine's default network, made when first listed, inspected or used),
//! `host` (the engine's own network namespace) and `none` (loopback only).
//! `host` and `none` are not bridges: they have no record; they are listed
//! and inspected with a fixed ID and the running containers that use them,
//! and they cannot be created, removed, connected to or disconnected from.

use serde_json::{Value, json};

use crate::container::networking::{Mode, mode_of};
use crate::container::record::Status;
use crate::engine::Engine;
use crate::error::{NetworkError, Result};
use crate::filters::Filters;

/// The two networks without a bridge: their names and Docker's drivers.
pub const NAMESPACE_NETWORKS: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

/// The fixed ID of `host` or `none` (64 hex digits).
pub fn id(name: &str) -> String {
    let mut h = crate::image::digest::Hasher::default();
    h.update(format!("servin pre-defined network {name}").as_bytes());
    h.finish().trim_start_matches("sha256:").to_string()
}

/// `host` or `none` when `key` names one by name or full ID; with
/// `prefix`, also by a prefix of its ID.
pub fn find(key: &str, prefix: bool) -> Option<(&'static str, &'static str)> {
    NAMESPACE_NETWORKS.into_iter().find(|(name, _)| {
        let id = id(name);
        key == *name || key == id || (prefix && !key.is_empty() && id.starts_with(key))
    })
}

/// Refuses a change to `host` or `none` (`what`: "connected to", ...).
pub fn refuse(key: &str, what: &'static str) -> Result<()> {
    match find(key, false) {
        Some((name, _)) => Err(NetworkError::Predefined(name.to_string(), what).into()),
        None => Ok(()),
    }
}

/// Docker's network object for `host` or `none`: the running containers
/// using it, without addresses. `created` is the default network's
/// creation time (Docker gives the time the daemon first made them).
pub fn network_json(engine: &Engine, name: &str, driver: &str, created: &str) -> Value {
    let want = if name == "host" {
        Mode::Host
    } else {
        Mode::None
    };
    let containers: serde_json::Map<String, Value> = engine
        .containers
        .list()
        .into_iter()
        .filter(|c| c.state().status == Status::Running && mode_of(&c.record.body) == want)
        .map(|c| {
            (
                c.id().to_string(),
                json!({
                    "Name": c.name(),
                    "EndpointID": id(&format!("{name}/{}", c.id())),
                    "MacAddress": "",
                    "IPv4Address": "",
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": name,
        "Id": id(name),
        "Created": created,
        "Scope": "local",
        "Driver": driver,
        "EnableIPv4": false,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {},
        "Labels": {},
    })
}

/// Whether `host` or `none` passes the list filters (`builtin`, never
/// dangling, no labels).
pub fn matches(name: &str, driver: &str, f: &Filters, dangling: Option<bool>) -> bool {
    f.id_prefix("id", &id(name))
        && f.name("name", name)
        && f.exact("driver", driver)
        && f.exact("scope", "local")
        && f.exact("type", "builtin")
        && f.labels(&Default::default())
        && dangling != Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_none_have_fixed_distinct_ids() {
        assert_eq!(id("host").len(), 64);
        assert_ne!(id("host"), id("none"));
        assert_eq!(find("host", false), Some(("host", "host")));
        assert_eq!(find(&id("none"), false), Some(("none", "null")));
        assert_eq!(find(&id("none")[..6], false), None);
        assert_eq!(find(&id("none")[..6], true), Some(("none", "null")));
        assert_eq!(find("bridge", true), None);
        assert_eq!(find("", true), None);
    }

    #[test]
    fn host_and_none_are_builtin_and_never_dangling() {
        let f = Filters::parse(Some(r#"{"type":["builtin"]}"#), &["type"]).unwrap_or_default();
        assert!(matches("host", "host", &f, None));
        let f = Filters::parse(Some(r#"{"type":["custom"]}"#), &["type"]).unwrap_or_default();
        assert!(!matches("host", "host", &f, None));
        let f = Filters::default();
        assert!(!matches("none", "null", &f, Some(true)));
        assert!(matches("none", "null", &f, Some(false)));
        let f = Filters::parse(Some(r#"{"driver":["null"]}"#), &["driver"]).unwrap_or_default();
        assert!(matches("none", "null", &f, None));
        assert!(!matches("host", "host", &f, None));
    }
}
