//! A recording [`World`] for the reconciler's unit tests: every call is
//! written down in order, asynchronous calls give way to other tasks
//! between their `begin` and `end` (so calls of one level that run at the
//! same time show as overlapping), and any step can be made to fail.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use bollard_stubs::models::NetworkCreateRequest;
use servin_proto::{Condition, DesiredContainer, DesiredVolume};

use super::world::{ImageRemoval, StepResult, World};

/// Containers (ID, name).
type Users = Vec<(String, String)>;

/// The fake world.
#[derive(Default)]
pub struct Recording {
    /// Every call, in order: `create NAME`, `begin start ID`, `end start ID`, ...
    calls: Mutex<Vec<String>>,
    /// Calls (as recorded, without `begin`) that fail with `boom`.
    failing: Mutex<HashSet<String>>,
    /// Containers that exist (IDs and names).
    containers: Mutex<HashSet<String>>,
    /// Network name or ID to (ID, users).
    networks: Mutex<HashMap<String, (String, Users)>>,
    /// Volume name to users.
    volume_users: Mutex<HashMap<String, Users>>,
    /// Container name to the image it was made with.
    images: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Recording {
    /// Makes `call` (e.g. `start shop-db-1`) fail.
    pub fn fail(&self, call: &str) {
        lock(&self.failing).insert(call.to_string());
    }

    /// Says that a container with this ID or name exists.
    pub fn exists(&self, id: &str) {
        lock(&self.containers).insert(id.to_string());
    }

    /// Says that network `name` exists with ID `id`, joined by `users`.
    pub fn network_with(&self, name: &str, id: &str, users: &[(&str, &str)]) {
        let users: Vec<(String, String)> = users
            .iter()
            .map(|(i, n)| (i.to_string(), n.to_string()))
            .collect();
        let mut n = lock(&self.networks);
        n.insert(name.to_string(), (id.to_string(), users.clone()));
        n.insert(id.to_string(), (id.to_string(), users));
        for (i, _) in n.get(id).map(|v| v.1.clone()).unwrap_or_default() {
            lock(&self.containers).insert(i);
        }
    }

    /// Says that volume `name` is used by `users`.
    pub fn volume_with(&self, name: &str, users: &[(&str, &str)]) {
        for (i, _) in users {
            self.exists(i);
        }
        lock(&self.volume_users).insert(
            name.to_string(),
            users
                .iter()
                .map(|(i, n)| (i.to_string(), n.to_string()))
                .collect(),
        );
    }

    /// The image container `name` was made with.
    pub fn image_of(&self, name: &str) -> Option<String> {
        lock(&self.images).get(name).cloned()
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// The calls without the `begin`/`end` marks of asynchronous ones.
    pub fn steps(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c.strip_prefix("begin ") {
                Some(rest) => Some(rest.to_string()),
                None if c.starts_with("end ") => None,
                None => Some(c),
            })
            .collect()
    }

    fn record(&self, call: String) -> StepResult {
        let fails = lock(&self.failing).contains(&call);
        lock(&self.calls).push(call);
        if fails {
            Err("boom".to_string())
        } else {
            Ok(())
        }
    }

    /// An asynchronous call: `begin`, a few turns for other tasks, `end`.
    async fn around(&self, call: String) -> StepResult {
        let result = self.record(format!("begin {call}"));
        let fails = lock(&self.failing).contains(&call);
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        lock(&self.calls).push(format!("end {call}"));
        if fails {
            Err("boom".to_string())
        } else {
            result
        }
    }
}

#[async_trait]
impl World for Recording {
    fn container_exists(&self, id: &str) -> bool {
        lock(&self.containers).contains(id)
    }

    fn create_container(&self, name: &str, want: &DesiredContainer) -> StepResult<String> {
        self.record(format!("create {name}"))?;
        lock(&self.images).insert(name.to_string(), super::observe::image_of(want));
        self.exists(name);
        Ok(name.to_string())
    }

    async fn start_container(&self, id: &str) -> StepResult {
        self.around(format!("start {id}")).await
    }

    fn rename_container(&self, id: &str, name: &str) -> StepResult<String> {
        self.record(format!("rename {id} {name}"))?;
        let mut c = lock(&self.containers);
        c.remove(id);
        c.insert(name.to_string());
        Ok(name.to_string())
    }

    async fn stop_and_remove(&self, id: &str, _timeout: Option<i64>) -> StepResult {
        self.around(format!("remove {id}")).await?;
        lock(&self.containers).remove(id);
        Ok(())
    }

    async fn force_remove(&self, id: &str) -> StepResult {
        self.around(format!("force-remove {id}")).await?;
        lock(&self.containers).remove(id);
        Ok(())
    }

    async fn reach(&self, names: &[String], condition: Condition) -> StepResult {
        self.around(format!("reach {} {}", names.join(","), condition.as_str()))
            .await
    }

    fn network(&self, name_or_id: &str) -> Option<(String, Vec<(String, String)>)> {
        lock(&self.networks).get(name_or_id).cloned()
    }

    async fn create_network(&self, create: &NetworkCreateRequest) -> StepResult {
        self.around(format!("create-network {}", create.name)).await
    }

    async fn remove_network(&self, id: &str) -> StepResult {
        self.around(format!("remove-network {id}")).await
    }

    fn volume_users(&self, name: &str) -> Vec<(String, String)> {
        lock(&self.volume_users)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    fn create_volume(&self, name: &str, _v: &DesiredVolume) -> StepResult {
        self.record(format!("create-volume {name}"))
    }

    async fn remove_volume(&self, name: &str) -> StepResult {
        self.around(format!("remove-volume {name}")).await
    }

    async fn pull(&self, image: &str) -> StepResult {
        self.around(format!("pull {image}")).await
    }

    fn remove_image(&self, image: &str) -> StepResult<ImageRemoval> {
        self.record(format!("remove-image {image}"))?;
        Ok(ImageRemoval::Removed { deleted: true })
    }

    async fn collect_garbage(&self) -> StepResult {
        self.around("collect-garbage".to_string()).await
    }
}
