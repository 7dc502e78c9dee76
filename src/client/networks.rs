//! The engine's `/networks/...` calls.

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use super::{Engine, Error, encode};

impl Engine {
    fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        step: &str,
    ) -> Result<Bytes, Error> {
        let resp = self.send(
            method,
            path,
            &[("Content-Type", "application/json".to_string())],
            Bytes::from(body.to_string()),
            step,
        )?;
        let resp = self.check(resp, step)?;
        self.body(resp, step)
    }

    fn decode(bytes: &[u8], step: &str) -> Result<Value, Error> {
        serde_json::from_slice(bytes).map_err(|source| Error::Decode {
            step: step.to_string(),
            source,
        })
    }

    /// `POST /networks/create`; returns the new network's ID.
    pub fn create_network(&self, request: &Value) -> Result<String, Error> {
        let step = "create the network";
        let bytes = self.send_json(Method::POST, "/networks/create", request, step)?;
        let v = Self::decode(&bytes, step)?;
        Ok(v["Id"].as_str().unwrap_or_default().to_string())
    }

    /// `GET /networks`: Docker's network objects.
    pub fn networks(&self) -> Result<Vec<Value>, Error> {
        self.json(Method::GET, "/networks", "list networks")
    }

    /// `GET /networks/{id}`.
    pub fn inspect_network(&self, key: &str) -> Result<Value, Error> {
        self.json(
            Method::GET,
            &format!("/networks/{}", encode(key)),
            &format!("inspect network {key}"),
        )
    }

    /// `DELETE /networks/{id}`.
    pub fn remove_network(&self, key: &str) -> Result<(), Error> {
        let step = format!("remove network {key}");
        let resp = self.send(
            Method::DELETE,
            &format!("/networks/{}", encode(key)),
            &[],
            Bytes::new(),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        self.body(resp, &step).map(drop)
    }

    /// `POST /networks/{id}/connect`.
    pub fn connect_network(
        &self,
        key: &str,
        container: &str,
        aliases: &[String],
        ip: Option<&str>,
    ) -> Result<(), Error> {
        let mut endpoint = serde_json::json!({ "Aliases": aliases });
        if let Some(ip) = ip {
            endpoint["IPAMConfig"] = serde_json::json!({ "IPv4Address": ip });
        }
        let body = serde_json::json!({ "Container": container, "EndpointConfig": endpoint });
        self.send_json(
            Method::POST,
            &format!("/networks/{}/connect", encode(key)),
            &body,
            &format!("connect {container} to network {key}"),
        )
        .map(drop)
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn disconnect_network(&self, key: &str, container: &str, force: bool) -> Result<(), Error> {
        let body = serde_json::json!({ "Container": container, "Force": force });
        self.send_json(
            Method::POST,
            &format!("/networks/{}/disconnect", encode(key)),
            &body,
            &format!("disconnect {container} from network {key}"),
        )
        .map(drop)
    }

    /// `POST /networks/prune`; returns the removed networks' names.
    pub fn prune_networks(&self) -> Result<Vec<String>, Error> {
        let step = "prune networks";
        let bytes = self.send_json(Method::POST, "/networks/prune", &Value::Null, step)?;
        let v = Self::decode(&bytes, step)?;
        Ok(v["NetworksDeleted"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }
}
