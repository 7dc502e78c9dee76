//! What the reconciler does to the world, behind one narrow trait.
//!
//! [`apply`](super::apply) and [`down`](super::down) decide nothing: they
//! run a plan. Every side effect of running it (making and removing
//! networks, volumes and containers, pulling, waiting for a dependency's
//! condition, removing images) goes through [`World`], so the order in
//! which a plan runs, how a failure propagates, what a replacement does to
//! the containers that use an object and what an interrupted recreate
//! leaves are unit-tested on a recording fake (`fake.rs`) without root,
//! and the engine ([`EngineWorld`]) is tested for real in the integration
//! tests.
//!
//! Errors are the engine's full messages (the object and the cause, once);
//! the executor adds the step (`create: `, `start: `, ...), as users see it
//! in the apply stream.

use std::sync::Arc;

use async_trait::async_trait;
use bollard_stubs::models::{HealthStatusEnum, NetworkCreateRequest};
use servin_proto::{Condition, DesiredContainer, DesiredVolume};

use crate::container::Status;
use crate::engine::Engine;
use crate::error::{Error, ImageError};
use crate::image::progress::Progress;
use crate::image::pull::{self, Platform};
use crate::image::reference::ImageRef;

use super::observe::image_of;

/// A step's error, as the apply stream shows it.
pub type StepResult<T = ()> = std::result::Result<T, String>;

/// What removing one image did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRemoval {
    /// Removed; `deleted` when content went with it (garbage to collect).
    Removed {
        /// Whether any image content was deleted.
        deleted: bool,
    },
    /// Kept: another container or tag still uses it (the reason).
    Kept(String),
    /// There was no such image any more.
    Gone,
}

/// The side effects of running a plan.
#[async_trait]
pub trait World: Send + Sync {
    /// Whether a container with this ID (or name) exists.
    fn container_exists(&self, id: &str) -> bool;
    /// Makes container `name` from `want`'s create body; its ID.
    fn create_container(&self, name: &str, want: &DesiredContainer) -> StepResult<String>;
    /// Starts the container.
    async fn start_container(&self, id: &str) -> StepResult;
    /// Gives a created container its final name; its ID.
    fn rename_container(&self, id: &str, name: &str) -> StepResult<String>;
    /// Stops the container (its stop signal, then `timeout` seconds or its
    /// own) and removes it.
    async fn stop_and_remove(&self, id: &str, timeout: Option<i64>) -> StepResult;
    /// Removes the container at once, running or not.
    async fn force_remove(&self, id: &str) -> StepResult;
    /// Waits until every container in `names` has reached `condition`.
    async fn reach(&self, names: &[String], condition: Condition) -> StepResult;
    /// The network's ID and the containers (ID, name) joining it, when it
    /// exists.
    fn network(&self, name_or_id: &str) -> Option<(String, Vec<(String, String)>)>;
    /// Makes a network from its Docker create request.
    async fn create_network(&self, create: &NetworkCreateRequest) -> StepResult;
    /// Removes a network.
    async fn remove_network(&self, id: &str) -> StepResult;
    /// The containers (ID, name) using volume `name`.
    fn volume_users(&self, name: &str) -> Vec<(String, String)>;
    /// Makes volume `name` from its create request.
    fn create_volume(&self, name: &str, v: &DesiredVolume) -> StepResult;
    /// Removes volume `name` and its data.
    async fn remove_volume(&self, name: &str) -> StepResult;
    /// Pulls `image` into the store.
    async fn pull(&self, image: &str) -> StepResult;
    /// Removes image `image` unless a container uses it.
    fn remove_image(&self, image: &str) -> StepResult<ImageRemoval>;
    /// Deletes content no image refers to any more.
    async fn collect_garbage(&self) -> StepResult;
}

/// The engine as the reconciler's world.
pub struct EngineWorld(pub Arc<Engine>);

#[async_trait]
impl World for EngineWorld {
    fn container_exists(&self, id: &str) -> bool {
        self.0.containers.get(id).is_ok()
    }

    fn create_container(&self, name: &str, want: &DesiredContainer) -> StepResult<String> {
        let mut body = want.body.clone();
        body.image = Some(image_of(want));
        let (id, _) = self
            .0
            .containers
            .create(Some(name), body)
            .map_err(|e| e.full_message())?;
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> StepResult {
        let c = self.0.containers.get(id).map_err(|e| e.full_message())?;
        self.0
            .containers
            .start(&c)
            .await
            .map(|_| ())
            .map_err(|e| e.full_message())
    }

    fn rename_container(&self, id: &str, name: &str) -> StepResult<String> {
        let c = self.0.containers.get(id).map_err(|e| e.full_message())?;
        self.0
            .containers
            .rename(&c, name)
            .map(|()| c.id().to_string())
            .map_err(|e| e.full_message())
    }

    async fn stop_and_remove(&self, id: &str, timeout: Option<i64>) -> StepResult {
        let run = async {
            let c = self.0.containers.get(id)?;
            self.0.containers.stop(&c, timeout, None).await?;
            self.0.containers.remove(&c, true).await
        };
        run.await.map_err(|e| e.full_message())
    }

    async fn force_remove(&self, id: &str) -> StepResult {
        let c = self.0.containers.get(id).map_err(|e| e.full_message())?;
        self.0
            .containers
            .remove(&c, true)
            .await
            .map_err(|e| e.full_message())
    }

    async fn reach(&self, names: &[String], condition: Condition) -> StepResult {
        for name in names {
            let c = self.0.containers.get(name).map_err(|e| e.full_message())?;
            let mut signals = c.signals();
            loop {
                let s = c.state();
                let health = s.health.as_ref().and_then(|h| h.status);
                let verdict = match condition {
                    Condition::Started => Some(if s.status.is_running() {
                        Ok(())
                    } else {
                        Err(format!("{name} is not running"))
                    }),
                    Condition::Healthy => match health {
                        _ if crate::container::health::health_test(&c.record).is_none() => {
                            Some(Err(format!("{name} has no health check")))
                        }
                        Some(HealthStatusEnum::HEALTHY) => Some(Ok(())),
                        Some(HealthStatusEnum::UNHEALTHY) => {
                            Some(Err(format!("{name} is unhealthy")))
                        }
                        _ if matches!(s.status, Status::Exited | Status::Dead) => {
                            Some(Err(format!("{name} exited with status {}", s.exit_code)))
                        }
                        _ => None,
                    },
                    Condition::Completed => match s.status {
                        Status::Exited | Status::Dead if s.exit_code == 0 => Some(Ok(())),
                        Status::Exited | Status::Dead => {
                            Some(Err(format!("{name} exited with status {}", s.exit_code)))
                        }
                        _ => None,
                    },
                };
                if let Some(v) = verdict {
                    v?;
                    break;
                }
                if signals.changed().await.is_err() || signals.borrow().removed {
                    return Err(format!("{name} was removed"));
                }
            }
        }
        Ok(())
    }

    fn network(&self, name_or_id: &str) -> Option<(String, Vec<(String, String)>)> {
        let rec = self.0.containers.networks.get(name_or_id).ok()?;
        let users = self.0.containers.network_users(&rec);
        Some((rec.id, users))
    }

    async fn create_network(&self, create: &NetworkCreateRequest) -> StepResult {
        crate::network::create::create_network(&self.0, create.clone())
            .await
            .map(|_| ())
            .map_err(|e| e.full_message())
    }

    async fn remove_network(&self, id: &str) -> StepResult {
        self.0
            .containers
            .remove_network(id)
            .await
            .map(|_| ())
            .map_err(|e| e.full_message())
    }

    fn volume_users(&self, name: &str) -> Vec<(String, String)> {
        self.0
            .containers
            .list()
            .into_iter()
            .filter(|c| c.record.volumes.iter().any(|v| v.name == name))
            .map(|c| (c.record.id.clone(), c.name()))
            .collect()
    }

    fn create_volume(&self, name: &str, v: &DesiredVolume) -> StepResult {
        self.0
            .volumes
            .create(
                Some(name),
                v.create.driver.as_deref(),
                v.create.labels.clone().unwrap_or_default(),
                v.create.driver_opts.clone().unwrap_or_default(),
            )
            .map(|_| ())
            .map_err(|e| e.full_message())
    }

    /// Off the engine thread: deleting a volume's files may take a while.
    async fn remove_volume(&self, name: &str) -> StepResult {
        let containers = Arc::clone(&self.0.containers);
        let n = name.to_string();
        match tokio::task::spawn_blocking(move || containers.remove_volume(&n, false)).await {
            Ok(r) => r.map_err(|e| e.full_message()),
            Err(e) => Err(format!("volume {name}: remove: {e}")),
        }
    }

    async fn pull(&self, image: &str) -> StepResult {
        let run = async {
            let r = ImageRef::parse(image)?;
            let auth = self.0.registries.auth(&r, None);
            let resolved = pull::resolve(&self.0.registries, &r, &Platform::host(), &auth).await?;
            pull::fetch(&self.0.store, resolved, &Progress::silent()).await?;
            Ok::<(), Error>(())
        };
        run.await.map_err(|e| e.full_message())
    }

    fn remove_image(&self, image: &str) -> StepResult<ImageRemoval> {
        let in_use = self.0.containers.images_in_use();
        match self.0.store.remove(image, false, &in_use) {
            Ok(r) => Ok(ImageRemoval::Removed {
                deleted: !r.deleted.is_empty(),
            }),
            Err(
                e @ Error::Image(
                    ImageError::AmbiguousId(_)
                    | ImageError::MultipleRepositories(_)
                    | ImageError::UsedByContainer { .. },
                ),
            ) => Ok(ImageRemoval::Kept(e.to_string())),
            Err(Error::NoSuchImage(_)) => Ok(ImageRemoval::Gone),
            Err(e) => Err(e.full_message()),
        }
    }

    async fn collect_garbage(&self) -> StepResult {
        crate::image::gc::collect_garbage(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| e.full_message())
    }
}
