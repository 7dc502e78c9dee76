//! The project operations of the servin API (`/servin/v1/projects/...`).

use servin_proto::{DesiredProject, Plan};

use super::{Engine, Error};

impl Engine {
    /// `POST /servin/v1/projects/{name}/plan`: what applying `desired`
    /// would do. Changes nothing.
    pub fn plan_project(&self, desired: &DesiredProject) -> Result<Plan, Error> {
        let step = format!("plan project {}", desired.name);
        self.post_json(&servin_proto::plan_path(&desired.name), desired, &step)
    }
}
