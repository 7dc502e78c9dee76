//! Volume operations over the Docker API.

use std::collections::HashMap;

use bollard_stubs::models::{Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};
use bytes::Bytes;
use hyper::Method;

use super::{Engine, Error, encode};

/// Docker's `filters` query value for `key=value` pairs.
fn filters_query(filters: &[(String, String)]) -> String {
    let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in filters {
        map.entry(k.as_str()).or_default().push(v.as_str());
    }
    encode(&serde_json::to_string(&map).unwrap_or_default())
}

impl Engine {
    /// `POST /volumes/create`: makes volume `name` (a random name when
    /// `None`), or returns the one of that name.
    pub fn create_volume(
        &self,
        name: Option<&str>,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
        driver: Option<&str>,
    ) -> Result<Volume, Error> {
        let body = VolumeCreateRequest {
            name: name.map(String::from),
            driver: driver.map(String::from),
            driver_opts: Some(options),
            labels: Some(labels),
            ..Default::default()
        };
        let step = match name {
            Some(n) => format!("create volume {n}"),
            None => "create a volume".to_string(),
        };
        let body = serde_json::to_vec(&body).map_err(|source| Error::Decode {
            step: step.clone(),
            source,
        })?;
        let resp = self.send(
            Method::POST,
            "/volumes/create",
            &[("Content-Type", "application/json".to_string())],
            Bytes::from(body),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        let bytes = self.body(resp, &step)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode { step, source })
    }

    /// `GET /volumes` with Docker's filters (`name`, `label`, `dangling`...).
    pub fn volumes(&self, filters: &[(String, String)]) -> Result<Vec<Volume>, Error> {
        let path = if filters.is_empty() {
            "/volumes".to_string()
        } else {
            format!("/volumes?filters={}", filters_query(filters))
        };
        let list: VolumeListResponse = self.json(Method::GET, &path, "list volumes")?;
        Ok(list.volumes.unwrap_or_default())
    }

    /// `GET /volumes/{name}`.
    pub fn inspect_volume(&self, name: &str) -> Result<Volume, Error> {
        self.json(
            Method::GET,
            &format!("/volumes/{}", encode(name)),
            &format!("inspect volume {name}"),
        )
    }

    /// `DELETE /volumes/{name}`: refused while a container uses it; with
    /// `force` a missing volume is no error.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), Error> {
        let step = format!("remove volume {name}");
        let resp = self.send(
            Method::DELETE,
            &format!("/volumes/{}?force={force}", encode(name)),
            &[],
            Bytes::new(),
            &step,
        )?;
        self.check(resp, &step).map(|_| ())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, every unused volume
    /// with `all`.
    pub fn prune_volumes(
        &self,
        all: bool,
        filters: &[(String, String)],
    ) -> Result<VolumePruneResponse, Error> {
        let mut filters = filters.to_vec();
        if all {
            filters.push(("all".to_string(), "true".to_string()));
        }
        let path = if filters.is_empty() {
            "/volumes/prune".to_string()
        } else {
            format!("/volumes/prune?filters={}", filters_query(&filters))
        };
        self.json(Method::POST, &path, "prune volumes")
    }
}
