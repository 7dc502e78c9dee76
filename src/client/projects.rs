//! The project operations of the servin API (`/servin/v1/projects/...`).

use bytes::Bytes;
use hyper::Method;
use servin_proto::apply::{BuiltImage, Event, Summary};
use servin_proto::{DesiredProject, Plan};

use super::{Engine, Error, encode};

impl Engine {
    /// `POST /servin/v1/projects/{name}/plan`: what applying `desired`
    /// with the same `services` and `recreate_volumes` would do. Changes
    /// nothing.
    pub fn plan_project(
        &self,
        desired: &DesiredProject,
        services: &[String],
        recreate_volumes: bool,
    ) -> Result<Plan, Error> {
        let step = format!("plan project {}", desired.name);
        let path = with_query(
            servin_proto::plan_path(&desired.name),
            services,
            recreate_volumes,
        );
        self.post_json(&path, desired, &step)
    }

    /// `POST /servin/v1/projects/{name}/apply`: makes what exists match
    /// `desired` (only `services` and what they depend on, when given),
    /// calling `each` with every event as it streams in; returns the
    /// summary.
    pub fn apply_project(
        &self,
        desired: &DesiredProject,
        services: &[String],
        recreate_volumes: bool,
        each: impl FnMut(&Event),
    ) -> Result<Summary, Error> {
        self.apply_project_started(desired, services, recreate_volumes, |_| {}, each)
    }

    /// As [`Self::apply_project`], calling `started` once the engine has
    /// accepted the apply, before any event, with the apply's ID when it
    /// waits for `desired.pending_images` (to report them with
    /// [`Self::report_built_image`]).
    pub fn apply_project_started(
        &self,
        desired: &DesiredProject,
        services: &[String],
        recreate_volumes: bool,
        started: impl FnOnce(Option<String>),
        each: impl FnMut(&Event),
    ) -> Result<Summary, Error> {
        let step = format!("apply project {}", desired.name);
        let body = serde_json::to_vec(desired).map_err(|source| Error::Decode {
            step: step.clone(),
            source,
        })?;
        let path = with_query(
            servin_proto::apply_path(&desired.name),
            services,
            recreate_volumes,
        );
        let resp = self.send(
            Method::POST,
            &path,
            &[("Content-Type", "application/json".to_string())],
            Bytes::from(body),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        started(
            resp.headers()
                .get(servin_proto::APPLY_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        );
        self.events(resp, &step, each)
    }

    /// `POST /servin/v1/projects/{name}/applies/{apply}/images`: tells
    /// apply `apply` of project `name` that an image it waits for is built
    /// (or why it is not).
    pub fn report_built_image(
        &self,
        name: &str,
        apply: &str,
        image: &BuiltImage,
    ) -> Result<(), Error> {
        let step = format!(
            "report image {} to the apply of project {name}",
            image.reference
        );
        let body = serde_json::to_vec(image).map_err(|source| Error::Decode {
            step: step.clone(),
            source,
        })?;
        let resp = self.send(
            Method::POST,
            &servin_proto::built_image_path(&encode(name), &encode(apply)),
            &[("Content-Type", "application/json".to_string())],
            Bytes::from(body),
            &step,
        )?;
        self.check(resp, &step).map(|_| ())
    }

    /// `POST /servin/v1/projects/{name}/down`: removes project `name`'s
    /// containers and networks (and volumes with `volumes`, the images its
    /// containers ran with `images`; each container given `timeout` seconds
    /// to stop, default its own), calling `each`
    /// with every event; returns the summary.
    pub fn down_project(
        &self,
        name: &str,
        volumes: bool,
        images: bool,
        timeout: Option<i64>,
        each: impl FnMut(&Event),
    ) -> Result<Summary, Error> {
        let step = format!("take project {name} down");
        let mut path = format!(
            "{}?volumes={volumes}{}",
            servin_proto::down_path(&encode(name)),
            if images { "&rmi=all" } else { "" }
        );
        if let Some(t) = timeout {
            path.push_str(&format!("&t={t}"));
        }
        let resp = self.send(Method::POST, &path, &[], Bytes::new(), &step)?;
        self.events(resp, &step, each)
    }

    fn events(
        &self,
        resp: hyper::Response<hyper::body::Incoming>,
        step: &str,
        mut each: impl FnMut(&Event),
    ) -> Result<Summary, Error> {
        let resp = self.check(resp, step)?;
        let mut summary = None;
        self.json_lines(resp, step, |v| {
            // Lines this client does not know are skipped: a newer engine
            // may say more.
            if let Ok(event) = serde_json::from_value::<Event>(v) {
                if let Event::Summary(s) = &event {
                    summary = Some(s.clone());
                }
                each(&event);
            }
            Ok(())
        })?;
        summary.ok_or_else(|| Error::Engine {
            step: step.to_string(),
            status: 500,
            message: "the engine ended the stream without a summary (did it stop?)".to_string(),
        })
    }
}

/// `path` with the `services` and `recreate_volumes` query of plan and
/// apply.
fn with_query(path: String, services: &[String], recreate_volumes: bool) -> String {
    let mut query: Vec<String> = services
        .iter()
        .map(|s| format!("services={}", encode(s)))
        .collect();
    if recreate_volumes {
        query.push("recreate_volumes=1".to_string());
    }
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}
