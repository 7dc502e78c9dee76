//! The container-wide `MacAddress` of a create body (`Config.MacAddress`),
//! as Docker still takes it: API 1.44 moved the MAC address to the
//! endpoint settings of each network (`EndpointSettings.MacAddress`).
//! A container-wide one is copied to the endpoint of the container's first
//! network (with a deprecation warning for clients of 1.44 and later, as
//! Docker gives), and clients older than 1.44 find it again in the inspect
//! output's `Config.MacAddress`.

use bollard_stubs::models::{ContainerCreateBody, NetworkingConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::container::Container;
use crate::container::networking::{Mode, mode_of};
use crate::error::{ContainerError, Error, Result};
use crate::network::DEFAULT_NETWORK;

/// The first API version with a MAC address per endpoint.
const PER_ENDPOINT_FROM: (u32, u32) = (1, 44);

/// Docker's warning for a container-wide MAC address from a newer client.
pub const DEPRECATED: &str = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.";

/// A create body with the container-wide `MacAddress` the API model no
/// longer has.
#[derive(Debug, Default, Deserialize)]
pub struct CreateBody {
    /// Everything else.
    #[serde(flatten)]
    pub body: ContainerCreateBody,
    /// `Config.MacAddress`.
    #[serde(rename = "MacAddress", default)]
    pub mac_address: Option<String>,
}

impl CreateBody {
    /// The body with a container-wide MAC address moved to the first
    /// network's endpoint, and the warning to give (if any).
    pub fn into_body(
        self,
        version: Option<(u32, u32)>,
    ) -> Result<(ContainerCreateBody, Option<String>)> {
        let mut body = self.body;
        let Some(mac) = self.mac_address.filter(|m| !m.is_empty()) else {
            return Ok((body, None));
        };
        let network = match mode_of(&body) {
            Mode::Network(n) => n,
            Mode::Host | Mode::None | Mode::Container(_) => {
                return Err(Error::from(ContainerError::InvalidConfig(
                    "conflicting options: mac-address and the network mode".to_string(),
                )));
            }
        };
        let endpoints = body
            .networking_config
            .get_or_insert_with(NetworkingConfig::default)
            .endpoints_config
            .get_or_insert_with(Default::default);
        // Docker names the default network `default` or `bridge` here.
        let key = if network == DEFAULT_NETWORK && endpoints.contains_key("default") {
            "default".to_string()
        } else {
            network
        };
        let endpoint = endpoints.entry(key).or_default();
        match endpoint.mac_address.as_deref().filter(|m| !m.is_empty()) {
            Some(own) if !own.eq_ignore_ascii_case(&mac) => {
                return Err(Error::from(ContainerError::InvalidConfig(
                    "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty".to_string(),
                )));
            }
            _ => endpoint.mac_address = Some(mac),
        }
        let warning = version
            .is_none_or(|v| v >= PER_ENDPOINT_FROM)
            .then(|| DEPRECATED.to_string());
        Ok((body, warning))
    }
}

/// Adds `Config.MacAddress` (the first network's MAC address as asked
/// for, or empty) to a container's inspect output for clients older than
/// 1.44.
pub fn add_to_inspect(out: &mut Value, c: &Container, version: Option<(u32, u32)>) {
    if version.is_none_or(|v| v >= PER_ENDPOINT_FROM) {
        return;
    }
    let mac = c
        .attachments()
        .first()
        .and_then(|a| a.mac.clone())
        .unwrap_or_default();
    if let Some(config) = out.get_mut("Config").and_then(Value::as_object_mut) {
        config.insert("MacAddress".to_string(), Value::String(mac));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(json: &str) -> CreateBody {
        serde_json::from_str(json).unwrap()
    }

    fn mac_of(b: &ContainerCreateBody, net: &str) -> Option<String> {
        b.networking_config
            .as_ref()?
            .endpoints_config
            .as_ref()?
            .get(net)?
            .mac_address
            .clone()
    }

    #[test]
    fn an_old_client_mac_goes_to_the_first_network_without_a_warning() {
        let (b, w) = body(r#"{"Image":"x","MacAddress":"02:42:ac:11:00:09"}"#)
            .into_body(Some((1, 43)))
            .unwrap();
        assert_eq!(mac_of(&b, "bridge").as_deref(), Some("02:42:ac:11:00:09"));
        assert_eq!(b.image.as_deref(), Some("x"));
        assert_eq!(w, None);
        let (b, _) =
            body(r#"{"MacAddress":"02:42:ac:11:00:09","HostConfig":{"NetworkMode":"net1"}}"#)
                .into_body(Some((1, 43)))
                .unwrap();
        assert_eq!(mac_of(&b, "net1").as_deref(), Some("02:42:ac:11:00:09"));
    }

    #[test]
    fn a_new_client_is_warned_and_a_different_endpoint_mac_refused() {
        let (_, w) = body(r#"{"MacAddress":"02:42:ac:11:00:09"}"#)
            .into_body(Some((1, 47)))
            .unwrap();
        assert_eq!(w.as_deref(), Some(DEPRECATED));
        let e = body(
            r#"{"MacAddress":"02:42:ac:11:00:09","NetworkingConfig":{"EndpointsConfig":{"default":{"MacAddress":"02:42:ac:11:00:0a"}}}}"#,
        )
        .into_body(Some((1, 47)))
        .unwrap_err();
        assert!(e.to_string().contains("must match"), "{e}");
        let e = body(r#"{"MacAddress":"02:42:ac:11:00:09","HostConfig":{"NetworkMode":"host"}}"#)
            .into_body(None)
            .unwrap_err();
        assert!(e.to_string().contains("conflicting options"), "{e}");
    }

    #[test]
    fn no_mac_changes_nothing() {
        let (b, w) = body(r#"{"Image":"x","MacAddress":""}"#)
            .into_body(None)
            .unwrap();
        assert!(b.networking_config.is_none());
        assert_eq!(w, None);
    }
}
