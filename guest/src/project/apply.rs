//! Applying a project: making what exists match the desired state.
//!
//! One apply (or down) per project at a time: a second waits on the
//! project's lock ([`Locks`]). An apply
//! 1. removes containers an interrupted apply left under a temporary name
//!    (found by the project label, their name not the one their labels
//!    call for);
//! 2. makes the missing networks and volumes with the project labels (an
//!    `external` one must exist);
//! 3. plans ([`super::plan::plan`]), removes the containers the project no
//!    longer wants, pulls the missing images;
//! 4. runs the container actions as a dependency graph: one task per
//!    service, which waits for what it depends on (`started`, `healthy`,
//!    `completed`), then acts on its replicas. A failed dependency fails its
//!    dependants with an error naming the chain; other branches go on.
//!
//! A recreate makes the new container under a temporary name, stops and
//! removes the old one, renames the new one and starts it: a failed create
//! leaves the old container running. Every step streams a line
//! ([`servin_proto::apply::Event`]); the last line is the summary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bollard_stubs::models::HealthStatusEnum;
use futures_util::future::join_all;
use servin_proto::apply::{Event, Failure, Step, StepObject, StepStatus, Summary};
use servin_proto::{
    Action, ActionKind, Condition, DesiredContainer, DesiredProject, ObjectKind, TEMPORARY_SUFFIX,
    labels,
};
use tokio::sync::watch;

use crate::container::{Container, Status};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image::progress::Progress;
use crate::image::pull::{self, Platform};
use crate::image::reference::ImageRef;

use super::{Observed, observe};

/// The per-project locks that keep applies and downs of one project from
/// interleaving.
#[derive(Default)]
pub struct Locks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Locks {
    /// Takes project `name`'s lock, telling `report` when it must wait.
    pub async fn acquire(&self, name: &str, report: &Report) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry(name.to_string()).or_default())
        };
        match Arc::clone(&lock).try_lock_owned() {
            Ok(g) => g,
            Err(_) => {
                report.step(
                    StepObject::Project,
                    name,
                    StepStatus::Working,
                    "waiting for another apply or down of the project to finish",
                );
                lock.lock_owned().await
            }
        }
    }
}

/// Streams steps and gathers the summary.
pub struct Report {
    progress: Progress,
    summary: Mutex<Summary>,
}

impl Report {
    /// A report of project `project` streamed to `progress`.
    pub fn new(project: &str, progress: Progress) -> Self {
        Self {
            progress,
            summary: Mutex::new(Summary {
                project: project.to_string(),
                ..Default::default()
            }),
        }
    }

    /// Streams one step.
    pub fn step(&self, object: StepObject, name: &str, status: StepStatus, message: &str) {
        self.progress.send_json(&Event::Step(Step {
            object,
            name: name.to_string(),
            status,
            message: message.to_string(),
        }));
    }

    /// Streams a failed step and records the failure.
    pub fn fail(&self, object: StepObject, name: &str, error: &str) {
        self.step(object, name, StepStatus::Failed, error);
        self.with(|s| {
            s.failed.push(Failure {
                object,
                name: name.to_string(),
                error: error.to_string(),
            })
        });
    }

    /// Streams a finished container action and counts it.
    pub fn done(&self, kind: ActionKind, name: &str, message: &str) {
        self.step(StepObject::Container, name, StepStatus::Done, message);
        self.with(|s| s.count(kind));
    }

    /// Streams a finished step on a network, volume or image and notes it.
    pub fn other(&self, object: StepObject, name: &str, message: &str) {
        self.step(object, name, StepStatus::Done, message);
        self.with(|s| {
            s.others
                .push(format!("{} {name}: {message}", object.as_str()))
        });
    }

    fn with(&self, f: impl FnOnce(&mut Summary)) {
        f(&mut self
            .summary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Streams the summary as the last line and returns it.
    pub fn finish(&self) -> Summary {
        let s = self
            .summary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.progress.send_json(&Event::Summary(s.clone()));
        s
    }
}

/// What an apply is limited to.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these services and what they depend on; orphans are then left
    /// alone. Empty: the whole project.
    pub services: Vec<String>,
    /// Replace a project volume or network whose definition changed (with
    /// the containers using it) instead of refusing; a volume's data is
    /// lost.
    pub recreate_volumes: bool,
}

/// Applies `desired` (already validated), streaming to `report`.
pub async fn apply(
    engine: Arc<Engine>,
    desired: DesiredProject,
    options: Options,
    report: Arc<Report>,
) {
    let name = desired.name.clone();
    let _guard = engine.projects.acquire(&name, &report).await;
    let selected = match select(&desired, &options.services) {
        Ok(s) => s,
        Err(e) => {
            report.fail(StepObject::Project, &name, &e);
            return;
        }
    };
    remove_leftovers(&engine, &name, &report).await;
    let recreate = options.recreate_volumes;
    if !ensure_networks(&engine, &desired, recreate, &report).await
        | !ensure_volumes(&engine, &desired, recreate, &report).await
    {
        for c in desired
            .containers
            .iter()
            .filter(|c| selected.contains(&c.service))
        {
            report.fail(
                StepObject::Container,
                &c.name,
                "not applied: the project's networks or volumes could not be made",
            );
        }
        return;
    }
    let observed = observe(&engine.containers, &name);
    let plan = super::plan::plan(&desired, &observed);
    let whole = options.services.is_empty();
    let (removals, actions): (Vec<Action>, Vec<Action>) = plan
        .actions
        .into_iter()
        .filter(|a| match &a.service {
            Some(s) if a.kind != ActionKind::Remove || !whole => selected.contains(s),
            _ => whole,
        })
        .partition(|a| a.kind == ActionKind::Remove);
    join_all(
        removals
            .iter()
            .map(|a| remove_container(&engine, a, None, &report)),
    )
    .await;

    let images = pull_missing(&engine, &desired, &actions, &report).await;
    run_graph(&engine, &desired, actions, &images, &report).await;
    if whole {
        remove_orphan_networks(&engine, &desired, &report).await;
    }
}

/// The services to act on: `wanted` and everything they depend on, or
/// every service when `wanted` is empty.
fn select(
    desired: &DesiredProject,
    wanted: &[String],
) -> std::result::Result<BTreeSet<String>, String> {
    let graph = super::desired_graph(desired);
    if wanted.is_empty() {
        return Ok(graph.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = wanted.to_vec();
    while let Some(s) = todo.pop() {
        let Some(deps) = graph.get(&s) else {
            return Err(format!("no service {s} in project {}", desired.name));
        };
        if out.insert(s.clone()) {
            todo.extend(deps.iter().cloned());
        }
    }
    Ok(out)
}

/// Removes the project's stopped containers whose name is not the one
/// their labels call for: new containers of a recreate that an
/// interrupted apply never renamed.
async fn remove_leftovers(engine: &Arc<Engine>, project: &str, report: &Report) {
    for o in observe(&engine.containers, project) {
        let canonical = o
            .labels
            .get(labels::NAME)
            .zip(o.labels.get(labels::REPLICA))
            .map(|(s, r)| format!("{project}-{s}-{r}"));
        if o.running || canonical.as_deref() == Some(o.name.as_str()) {
            continue;
        }
        if !o.name.ends_with(TEMPORARY_SUFFIX) {
            continue;
        }
        let Ok(c) = engine.containers.get(&o.id) else {
            continue;
        };
        match engine.containers.remove(&c, true).await {
            Ok(()) => report.other(
                StepObject::Container,
                &o.name,
                "removed: left by an interrupted apply",
            ),
            Err(e) => report.fail(
                StepObject::Container,
                &o.name,
                &format!(
                    "remove the leftover of an interrupted apply: {}",
                    e.full_message()
                ),
            ),
        }
    }
}

/// Makes the missing networks; `false` when one could not be had.
/// A network whose definition changed is removed, with the containers
/// joining it, and made again when `recreate`; refused otherwise.
async fn ensure_networks(
    engine: &Arc<Engine>,
    desired: &DesiredProject,
    recreate: bool,
    report: &Report,
) -> bool {
    let mut ok = true;
    for n in &desired.networks {
        let engine_name = n.create.name.clone();
        let mut existing = engine.containers.networks.get(&engine_name).ok();
        if recreate
            && !n.external
            && let Some(rec) = existing.as_ref().filter(|rec| {
                rec.labels.get(labels::PROJECT).map(String::as_str) == Some(desired.name.as_str())
                    && changed(&rec.labels, n.create.labels.as_ref())
            })
        {
            let users = engine.containers.network_users(rec);
            if !remove_users(engine, users, &engine_name, report).await {
                ok = false;
                continue;
            }
            match engine.containers.remove_network(&rec.id).await {
                Ok(_) => {
                    report.other(
                        StepObject::Network,
                        &engine_name,
                        "removed: definition changed",
                    );
                    existing = None;
                }
                Err(e) => {
                    ok = false;
                    report.fail(
                        StepObject::Network,
                        &engine_name,
                        &format!("remove to recreate: {}", e.full_message()),
                    );
                    continue;
                }
            }
        }
        if n.external {
            if existing.is_none() {
                ok = false;
                report.fail(
                    StepObject::Network,
                    &engine_name,
                    &format!(
                        "network {} is external (made outside the project) but does not exist: create it first",
                        engine_name
                    ),
                );
            }
            continue;
        }
        if let Some(rec) = existing {
            if rec.labels.get(labels::PROJECT).map(String::as_str) != Some(desired.name.as_str()) {
                ok = false;
                report.fail(
                    StepObject::Network,
                    &engine_name,
                    &format!(
                        "a network named {engine_name} exists but does not belong to project {}",
                        desired.name
                    ),
                );
            } else if changed(&rec.labels, n.create.labels.as_ref()) {
                ok = false;
                report.fail(
                    StepObject::Network,
                    &engine_name,
                    "its definition changed (subnet, gateway, internal or labels); a network is not replaced under its containers: run `servin up --recreate-volumes` to replace it (its containers are recreated), or `servin down`, then `servin up`",
                );
            }
            continue;
        }
        report.step(
            StepObject::Network,
            &engine_name,
            StepStatus::Working,
            "creating",
        );
        let made = crate::api::networks::create_network(engine, n.create.clone()).await;
        match made {
            Ok(_) => report.other(StepObject::Network, &engine_name, "created"),
            Err(e) => {
                ok = false;
                report.fail(
                    StepObject::Network,
                    &engine_name,
                    &format!("create: {}", e.full_message()),
                );
            }
        }
    }
    ok
}

/// Makes the missing volumes; `false` when one could not be had. A volume
/// whose definition changed is removed, with the containers using it, and
/// made again when `recreate`; refused otherwise.
async fn ensure_volumes(
    engine: &Arc<Engine>,
    desired: &DesiredProject,
    recreate: bool,
    report: &Report,
) -> bool {
    let mut ok = true;
    for v in &desired.volumes {
        let engine_name = v.create.name.clone().unwrap_or_else(|| v.name.clone());
        let exists = engine.volumes.get(&engine_name).is_ok();
        if v.external {
            if !exists {
                ok = false;
                report.fail(
                    StepObject::Volume,
                    &engine_name,
                    &format!(
                        "volume {engine_name} is external (made outside the project) but does not exist: create it first"
                    ),
                );
            }
            continue;
        }
        if let Ok(existing) = engine.volumes.get(&engine_name) {
            let differs = changed(&existing.labels(), v.create.labels.as_ref());
            if differs && recreate {
                if !replace_volume(engine, &engine_name, report).await {
                    ok = false;
                    continue;
                }
            } else if differs {
                ok = false;
                report.fail(
                    StepObject::Volume,
                    &engine_name,
                    "its definition changed; up never replaces a volume silently, as its data would be lost: run `servin up --recreate-volumes` to start it afresh (its containers are recreated)",
                );
                continue;
            } else {
                continue;
            }
        }
        let made = engine.volumes.create(
            Some(&engine_name),
            v.create.driver.as_deref(),
            v.create.labels.clone().unwrap_or_default(),
            v.create.driver_opts.clone().unwrap_or_default(),
        );
        match made {
            Ok(_) => report.other(StepObject::Volume, &engine_name, "created"),
            Err(e) => {
                ok = false;
                report.fail(
                    StepObject::Volume,
                    &engine_name,
                    &format!("create: {}", e.full_message()),
                );
            }
        }
    }
    ok
}

/// Removes the containers using volume `name`, then the volume; `false`
/// (reported) when that failed.
async fn replace_volume(engine: &Arc<Engine>, name: &str, report: &Report) -> bool {
    let users: Vec<(String, String)> = engine
        .containers
        .list()
        .into_iter()
        .filter(|c| c.record.volumes.iter().any(|v| v.name == name))
        .map(|c| (c.record.id.clone(), c.record.name.clone()))
        .collect();
    if !remove_users(engine, users, name, report).await {
        return false;
    }
    match remove_volume(engine, name).await {
        Ok(()) => {
            report.other(StepObject::Volume, name, "removed: definition changed");
            true
        }
        Err(e) => {
            report.fail(
                StepObject::Volume,
                name,
                &format!("remove to recreate: {}", e.full_message()),
            );
            false
        }
    }
}

/// Stops and removes `users` (ID, name), the containers of network or
/// volume `object` about to be replaced (the plan makes them again);
/// `false` (reported) when one could not be removed.
async fn remove_users(
    engine: &Arc<Engine>,
    users: Vec<(String, String)>,
    object: &str,
    report: &Report,
) -> bool {
    let mut ok = true;
    for (id, name) in users {
        let result = async {
            let c = engine.containers.get(&id)?;
            stop_and_remove(engine, &c, None).await
        }
        .await;
        match result {
            Ok(()) => report.other(
                StepObject::Container,
                &name,
                &format!("removed: {object} is recreated"),
            ),
            Err(e) => {
                ok = false;
                report.fail(
                    StepObject::Container,
                    &name,
                    &format!("remove to recreate {object}: {}", e.full_message()),
                );
            }
        }
    }
    ok
}

/// Whether an existing network's or volume's config hash label differs
/// from the wanted one (both present: objects made by hand have none).
fn changed(existing: &HashMap<String, String>, wanted: Option<&HashMap<String, String>>) -> bool {
    match (
        existing.get(labels::CONFIG_HASH),
        wanted.and_then(|w| w.get(labels::CONFIG_HASH)),
    ) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Pulls the images that containers to make need and the store lacks;
/// the error of each image that could not be had.
async fn pull_missing(
    engine: &Arc<Engine>,
    desired: &DesiredProject,
    actions: &[Action],
    report: &Report,
) -> HashMap<String, String> {
    let making: BTreeSet<&str> = actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Create | ActionKind::Recreate))
        .map(|a| a.name.as_str())
        .collect();
    let images: BTreeSet<String> = desired
        .containers
        .iter()
        .filter(|c| making.contains(c.name.as_str()))
        .map(image_of)
        .filter(|i| engine.store.resolve(i).is_err())
        .collect();
    let results = join_all(images.into_iter().map(|image| async move {
        report.step(StepObject::Image, &image, StepStatus::Working, "pulling");
        match pull_one(engine, &image).await {
            Ok(()) => {
                report.other(StepObject::Image, &image, "pulled");
                None
            }
            Err(e) => {
                let msg = format!("pull: {}", e.full_message());
                report.fail(StepObject::Image, &image, &msg);
                Some((image, msg))
            }
        }
    }))
    .await;
    results.into_iter().flatten().collect()
}

fn image_of(c: &DesiredContainer) -> String {
    c.body
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| c.image.clone())
}

async fn pull_one(engine: &Arc<Engine>, image: &str) -> Result<()> {
    let r = ImageRef::parse(image)?;
    let auth = engine.registries.auth(&r, None);
    let resolved = pull::resolve(engine, &r, &Platform::host(), &auth).await?;
    pull::fetch(engine, resolved, &Progress::silent()).await?;
    Ok(())
}

/// Stops and removes the container of a `remove` action.
async fn remove_container(engine: &Arc<Engine>, a: &Action, timeout: Option<i64>, report: &Report) {
    let Some(id) = &a.id else { return };
    report.step(
        StepObject::Container,
        &a.name,
        StepStatus::Working,
        "removing",
    );
    let result = async {
        let c = engine.containers.get(id)?;
        stop_and_remove(engine, &c, timeout).await
    }
    .await;
    match result {
        Ok(()) => report.done(
            ActionKind::Remove,
            &a.name,
            &format!("removed ({})", a.reason),
        ),
        Err(e) => report.fail(
            StepObject::Container,
            &a.name,
            &format!("remove: {}", e.full_message()),
        ),
    }
}

/// Stops `c` with its stop signal and `timeout` (default: its own), then
/// removes it.
pub async fn stop_and_remove(
    engine: &Arc<Engine>,
    c: &Arc<Container>,
    timeout: Option<i64>,
) -> Result<()> {
    engine.containers.stop(c, timeout, None).await?;
    engine.containers.remove(c, true).await
}

/// Where a service is, as its dependants see it.
#[derive(Debug, Clone)]
enum Ready {
    /// Not yet acted on.
    Pending,
    /// Its containers were made and started (or kept).
    Started,
    /// It failed: the services from it down to the one that failed, and the
    /// error.
    Failed(Vec<String>, String),
}

/// Runs the container actions, one task per service, each waiting for what
/// it depends on.
async fn run_graph(
    engine: &Arc<Engine>,
    desired: &DesiredProject,
    actions: Vec<Action>,
    images: &HashMap<String, String>,
    report: &Arc<Report>,
) {
    let by_name: HashMap<&str, &DesiredContainer> = desired
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let mut per_service: BTreeMap<String, Vec<(Action, DesiredContainer)>> = BTreeMap::new();
    for a in actions {
        if let Some(c) = by_name.get(a.name.as_str()) {
            per_service
                .entry(c.service.clone())
                .or_default()
                .push((a, (*c).clone()));
        }
    }
    let mut senders: HashMap<String, watch::Sender<Ready>> = HashMap::new();
    let mut receivers: HashMap<String, watch::Receiver<Ready>> = HashMap::new();
    for s in per_service.keys() {
        let (tx, rx) = watch::channel(Ready::Pending);
        senders.insert(s.clone(), tx);
        receivers.insert(s.clone(), rx);
    }
    let replica_names: HashMap<String, Vec<String>> =
        per_service.iter().fold(HashMap::new(), |mut m, (s, list)| {
            m.insert(
                s.clone(),
                list.iter().map(|(_, c)| c.name.clone()).collect(),
            );
            m
        });
    let mut tasks = tokio::task::JoinSet::new();
    for (service, list) in per_service {
        let deps: Vec<(String, Condition, watch::Receiver<Ready>, Vec<String>)> = list
            .first()
            .map(|(_, c)| c.depends_on.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| {
                let rx = receivers.get(&d.service)?.clone();
                let names = replica_names.get(&d.service).cloned().unwrap_or_default();
                Some((d.service, d.condition, rx, names))
            })
            .collect();
        let Some(tx) = senders.remove(&service) else {
            continue;
        };
        let engine = Arc::clone(engine);
        let report = Arc::clone(report);
        let images = images.clone();
        tasks.spawn(async move {
            let outcome = run_service(&engine, &service, deps, list, &images, &report).await;
            let _ = tx.send(outcome);
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn run_service(
    engine: &Arc<Engine>,
    service: &str,
    deps: Vec<(String, Condition, watch::Receiver<Ready>, Vec<String>)>,
    list: Vec<(Action, DesiredContainer)>,
    images: &HashMap<String, String>,
    report: &Report,
) -> Ready {
    for (dep, condition, mut rx, names) in deps {
        let waiting = format!("waiting for {dep} ({})", condition.as_str());
        for (_, c) in &list {
            report.step(
                StepObject::Container,
                &c.name,
                StepStatus::Working,
                &waiting,
            );
        }
        let state = match rx.wait_for(|r| !matches!(r, Ready::Pending)).await {
            Ok(r) => r.clone(),
            Err(_) => Ready::Failed(vec![dep.clone()], "its apply ended early".to_string()),
        };
        let failure = match state {
            Ready::Failed(mut chain, error) => {
                chain.insert(0, service.to_string());
                Some((chain, error))
            }
            _ if condition == Condition::Started => None,
            _ => {
                let waiting = format!("waiting for {dep} to become {}", condition.as_str());
                for (_, c) in &list {
                    report.step(
                        StepObject::Container,
                        &c.name,
                        StepStatus::Working,
                        &waiting,
                    );
                }
                match reach(engine, &names, condition).await {
                    Ok(()) => None,
                    Err(e) => Some((
                        vec![service.to_string(), dep.clone()],
                        format!("{dep} did not become {}: {e}", condition.as_str()),
                    )),
                }
            }
        };
        if let Some((chain, error)) = failure {
            let message = format!(
                "not started: dependency chain {} failed: {error}",
                chain.join(" -> ")
            );
            for (_, c) in &list {
                report.fail(StepObject::Container, &c.name, &message);
            }
            return Ready::Failed(chain, error);
        }
    }
    let results = join_all(list.iter().map(|(a, c)| act(engine, a, c, images, report))).await;
    match results.into_iter().find_map(|r| r.err()) {
        Some(e) => Ready::Failed(vec![service.to_string()], e),
        None => Ready::Started,
    }
}

/// Waits until every container in `names` reaches `condition`.
async fn reach(
    engine: &Arc<Engine>,
    names: &[String],
    condition: Condition,
) -> std::result::Result<(), String> {
    for name in names {
        let c = engine.containers.get(name).map_err(|e| e.full_message())?;
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
                    Some(HealthStatusEnum::UNHEALTHY) => Some(Err(format!("{name} is unhealthy"))),
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

/// Does one container action; the error is streamed and returned.
async fn act(
    engine: &Arc<Engine>,
    a: &Action,
    want: &DesiredContainer,
    images: &HashMap<String, String>,
    report: &Report,
) -> std::result::Result<(), String> {
    let image = image_of(want);
    let result = match a.kind {
        ActionKind::Keep => {
            report.done(ActionKind::Keep, &a.name, "up to date");
            return Ok(());
        }
        _ if matches!(a.kind, ActionKind::Create | ActionKind::Recreate)
            && images.contains_key(&image) =>
        {
            Err(format!("image {image} could not be pulled"))
        }
        ActionKind::Create => {
            report.step(
                StepObject::Container,
                &a.name,
                StepStatus::Working,
                "creating",
            );
            create_and_start(engine, want, &want.name)
                .await
                .map(|_| "created and started")
        }
        ActionKind::Recreate => {
            report.step(
                StepObject::Container,
                &a.name,
                StepStatus::Working,
                &format!("recreating ({})", a.reason),
            );
            recreate(engine, a, want)
                .await
                .map(|()| "recreated and started")
        }
        ActionKind::Start => {
            report.step(
                StepObject::Container,
                &a.name,
                StepStatus::Working,
                "starting",
            );
            start_existing(engine, a).await.map(|()| "started")
        }
        ActionKind::Remove => return Ok(()),
    };
    match result {
        Ok(message) => {
            report.done(a.kind, &a.name, message);
            Ok(())
        }
        Err(e) => {
            let message = format!("{}: {e}", a.kind.as_str());
            report.fail(StepObject::Container, &a.name, &message);
            Err(format!("{}: {message}", a.name))
        }
    }
}

async fn create_and_start(
    engine: &Arc<Engine>,
    want: &DesiredContainer,
    name: &str,
) -> std::result::Result<Arc<Container>, String> {
    let c = create(engine, want, name)?;
    engine
        .containers
        .start(&c)
        .await
        .map_err(|e| format!("start: {}", e.full_message()))?;
    Ok(c)
}

fn create(
    engine: &Arc<Engine>,
    want: &DesiredContainer,
    name: &str,
) -> std::result::Result<Arc<Container>, String> {
    let mut body = want.body.clone();
    body.image = Some(image_of(want));
    let (id, _) = engine
        .containers
        .create(Some(name), body)
        .map_err(|e| format!("create: {}", e.full_message()))?;
    engine.containers.get(&id).map_err(|e| e.full_message())
}

/// Makes the new container under a temporary name, then stops and removes
/// the old one, renames the new one and starts it.
async fn recreate(
    engine: &Arc<Engine>,
    a: &Action,
    want: &DesiredContainer,
) -> std::result::Result<(), String> {
    let temporary = format!("{}{TEMPORARY_SUFFIX}", want.name);
    let new = create(engine, want, &temporary)?;
    if let Some(old) =
        a.id.as_deref()
            .and_then(|id| engine.containers.get(id).ok())
    {
        stop_and_remove(engine, &old, None)
            .await
            .map_err(|e| format!("remove the old container: {}", e.full_message()))?;
    }
    let renamed = engine
        .containers
        .rename_created(&new, &want.name)
        .map_err(|e| e.full_message())?;
    engine
        .containers
        .start(&renamed)
        .await
        .map_err(|e| format!("start: {}", e.full_message()))?;
    Ok(())
}

async fn start_existing(engine: &Arc<Engine>, a: &Action) -> std::result::Result<(), String> {
    let id = a.id.as_deref().unwrap_or(&a.name);
    let c = engine.containers.get(id).map_err(|e| e.full_message())?;
    engine
        .containers
        .start(&c)
        .await
        .map(|_| ())
        .map_err(|e| e.full_message())
}

/// Removes the project's networks the desired state no longer names (and
/// no container uses).
async fn remove_orphan_networks(engine: &Arc<Engine>, desired: &DesiredProject, report: &Report) {
    let wanted: BTreeSet<&str> = desired
        .networks
        .iter()
        .map(|n| n.create.name.as_str())
        .collect();
    for rec in engine.containers.networks.list() {
        if rec.labels.get(labels::PROJECT).map(String::as_str) != Some(desired.name.as_str())
            || wanted.contains(rec.name.as_str())
        {
            continue;
        }
        match engine.containers.remove_network(&rec.id).await {
            Ok(_) => report.other(
                StepObject::Network,
                &rec.name,
                "removed (no longer in the project)",
            ),
            Err(e) => report.fail(
                StepObject::Network,
                &rec.name,
                &format!("remove: {}", e.full_message()),
            ),
        }
    }
}

/// What `down` removes besides containers and networks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownOptions {
    /// The project's named volumes too.
    pub volumes: bool,
    /// The images the project's containers ran too (those no other
    /// container uses).
    pub images: bool,
    /// Seconds to wait for each container to stop before killing it;
    /// `None`: its own `stop_timeout`.
    pub timeout: Option<i64>,
}

/// Takes project `name` down from its labels alone: its containers in
/// reverse dependency order (each level in parallel), then its networks,
/// and its volumes when asked. Other projects are untouched.
pub async fn down(engine: Arc<Engine>, name: String, options: DownOptions, report: Arc<Report>) {
    let _guard = engine.projects.acquire(&name, &report).await;
    let observed = observe(&engine.containers, &name);
    let levels = super::down_levels(&observed).unwrap_or_else(|e| {
        tracing::warn!("project {name}: down order: {e}; taking everything down at once");
        Vec::new()
    });
    let images: BTreeSet<String> = observed
        .iter()
        .filter(|_| options.images)
        .filter_map(|o| engine.containers.get(&o.id).ok())
        .map(|c| c.record.image_name.clone())
        .collect();
    let mut batches: Vec<Vec<&Observed>> = Vec::new();
    let placed: BTreeSet<&str> = levels.iter().flatten().map(String::as_str).collect();
    batches.push(
        observed
            .iter()
            .filter(|o| {
                o.labels
                    .get(labels::NAME)
                    .is_none_or(|s| !placed.contains(s.as_str()))
            })
            .collect(),
    );
    for level in &levels {
        batches.push(
            observed
                .iter()
                .filter(|o| {
                    o.labels
                        .get(labels::NAME)
                        .is_some_and(|s| level.contains(s))
                })
                .collect(),
        );
    }
    for batch in batches {
        join_all(batch.into_iter().map(|o| {
            let a = Action {
                kind: ActionKind::Remove,
                object: ObjectKind::Container,
                name: o.name.clone(),
                service: o.labels.get(labels::NAME).cloned(),
                replica: None,
                id: Some(o.id.clone()),
                reason: "down".to_string(),
                changed: Vec::new(),
            };
            let engine = &engine;
            let report = &report;
            async move { remove_container(engine, &a, options.timeout, report).await }
        }))
        .await;
    }
    if options.images {
        remove_images(&engine, images, &report).await;
    }
    for rec in engine.containers.networks.list() {
        if rec.labels.get(labels::PROJECT).map(String::as_str) != Some(name.as_str()) {
            continue;
        }
        match engine.containers.remove_network(&rec.id).await {
            Ok(_) => report.other(StepObject::Network, &rec.name, "removed"),
            Err(e) => report.fail(
                StepObject::Network,
                &rec.name,
                &format!("remove: {}", e.full_message()),
            ),
        }
    }
    if options.volumes {
        for v in engine.volumes.list() {
            if v.labels().get(labels::PROJECT).map(String::as_str) != Some(name.as_str()) {
                continue;
            }
            let vname = v.info().name.clone();
            match remove_volume(&engine, &vname).await {
                Ok(()) => report.other(StepObject::Volume, &vname, "removed"),
                Err(e) => report.fail(
                    StepObject::Volume,
                    &vname,
                    &format!("remove: {}", e.full_message()),
                ),
            }
        }
    }
}

/// Removes `images` (those the project's removed containers ran), leaving
/// those another container still uses.
async fn remove_images(engine: &Arc<Engine>, images: BTreeSet<String>, report: &Report) {
    let mut deleted = false;
    for image in images {
        let in_use = engine.containers.images_in_use();
        match engine.store.remove(&image, false, &in_use) {
            Ok(r) => {
                deleted |= !r.deleted.is_empty();
                report.other(StepObject::Image, &image, "removed");
            }
            Err(Error::Conflict(m)) => report.step(
                StepObject::Image,
                &image,
                StepStatus::Done,
                &format!("kept: {m}"),
            ),
            Err(Error::NoSuchImage(_)) => {}
            Err(e) => report.fail(
                StepObject::Image,
                &image,
                &format!("remove: {}", e.full_message()),
            ),
        }
    }
    if deleted && let Err(e) = crate::api::images::collect_garbage(engine).await {
        tracing::warn!("garbage collection after down: {}", e.full_message());
    }
}

/// Removes the volume `name` off the engine thread (deleting its files may
/// take a while).
async fn remove_volume(engine: &Engine, name: &str) -> Result<()> {
    let containers = Arc::clone(&engine.containers);
    let n = name.to_string();
    tokio::task::spawn_blocking(move || containers.remove_volume(&n, false))
        .await
        .map_err(|e| Error::Runtime {
            context: format!("volume {name}: remove"),
            message: e.to_string(),
        })
        .and_then(|r| r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use crate::project::tests::container;

    #[test]
    fn selecting_services_takes_what_they_depend_on() {
        let d = DesiredProject {
            name: "shop".into(),
            containers: vec![
                container("web", &["api"]),
                container("api", &["db"]),
                container("db", &[]),
                container("tool", &[]),
            ],
            ..Default::default()
        };
        let all: Vec<String> = select(&d, &[]).unwrap().into_iter().collect();
        assert_eq!(all, vec!["api", "db", "tool", "web"]);
        let web: Vec<String> = select(&d, &["web".into()]).unwrap().into_iter().collect();
        assert_eq!(web, vec!["api", "db", "web"]);
        assert_eq!(
            select(&d, &["nope".into()]).unwrap_err(),
            "no service nope in project shop"
        );
    }

    #[test]
    fn the_summary_counts_and_lists_failures() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let r = Report::new("shop", Progress::new(tx));
        r.done(ActionKind::Create, "shop-web-1", "created and started");
        r.fail(StepObject::Container, "shop-db-1", "start: boom");
        let s = r.finish();
        assert_eq!(s.done_of(ActionKind::Create), 1);
        assert_eq!(s.failed[0].name, "shop-db-1");
        let mut lines = Vec::new();
        while let Ok(b) = rx.try_recv() {
            lines.push(serde_json::from_slice::<Event>(&b).unwrap());
        }
        assert_eq!(lines.len(), 3);
        assert!(matches!(&lines[2], Event::Summary(x) if !x.ok()));
    }
}
