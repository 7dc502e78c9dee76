//! Applying a project: running the plan of [`super::plan::plan`], made
//! from what exists when the apply takes the project's lock. Apply decides
//! nothing the plan does not say; it only reports what each step did.
//!
//! One apply (or [`super::down`]) per project at a time: a second waits on the
//! project's lock ([`Locks`]). An apply runs, in this order:
//! 1. the removal of leftovers of interrupted recreates;
//! 2. the network and volume actions: a refusal fails the apply before any
//!    container is touched; a replacement removes the containers using the
//!    object first (the plan recreates them);
//! 3. the removal of the containers the project no longer wants;
//! 4. the planned image pulls, in parallel;
//! 5. the container actions as a dependency graph: one task per service,
//!    which waits for what it depends on (`started`, `healthy`,
//!    `completed`), then acts on its replicas. A failed dependency fails its
//!    dependants with an error naming the chain; other branches go on;
//! 6. the removal of the networks the project no longer names.
//!
//! Each step leaves labelled objects, so an apply interrupted anywhere is
//! finished by the next one: it observes again and plans what is left.
//! A recreate makes the new container under a temporary name, stops and
//! removes the old one, renames the new one and starts it: a failed create
//! leaves the old container running. Every step streams a line
//! ([`servin_proto::apply::Event`]); the last line is the summary.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bollard_stubs::models::HealthStatusEnum;
use futures_util::future::join_all;
use servin_proto::apply::{Event, Failure, Step, StepObject, StepStatus, Summary};
use servin_proto::{
    Action, ActionKind, Condition, DesiredContainer, DesiredNetwork, DesiredProject, DesiredVolume,
    ObjectKind, TEMPORARY_SUFFIX,
};
use tokio::sync::watch;

use crate::container::{Container, Status};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image::progress::Progress;
use crate::image::pull::{self, Platform};
use crate::image::reference::ImageRef;

use super::observe::{image_of, observe_all};
use super::plan::{LEFTOVER, Options};
use crate::network::create::create_network;

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

/// Applies `desired` (already validated) as [`super::plan::plan`] plans it
/// against what exists now, streaming to `report`.
pub async fn apply(
    engine: Arc<Engine>,
    desired: DesiredProject,
    options: Options,
    report: Arc<Report>,
) {
    let name = desired.name.clone();
    let _guard = engine.projects.acquire(&name, &report).await;
    let observed = observe_all(&engine, &desired);
    let plan = match super::plan::plan(&desired, &observed, &options) {
        Ok(p) => p,
        Err(e) => {
            report.fail(StepObject::Project, &name, &e);
            return;
        }
    };
    let (leftovers, actions): (Vec<Action>, Vec<Action>) = plan
        .actions
        .into_iter()
        .partition(|a| a.kind == ActionKind::Remove && a.reason == LEFTOVER);
    for a in &leftovers {
        remove_leftover(&engine, a, &report).await;
    }
    let mut ok = true;
    for a in &plan.resources {
        ok &= match a.object {
            ObjectKind::Network if a.kind != ActionKind::Remove => {
                match desired.networks.iter().find(|n| n.create.name == a.name) {
                    Some(n) => run_network(&engine, a, n, &report).await,
                    None => true,
                }
            }
            ObjectKind::Volume => match desired
                .volumes
                .iter()
                .find(|v| v.create.name.as_ref().unwrap_or(&v.name) == &a.name)
            {
                Some(v) => run_volume(&engine, a, v, &report).await,
                None => true,
            },
            _ => true,
        };
    }
    if !ok {
        for a in actions.iter().filter(|a| a.kind != ActionKind::Remove) {
            report.fail(
                StepObject::Container,
                &a.name,
                "not applied: the project's networks or volumes could not be made",
            );
        }
        return;
    }
    let (removals, actions): (Vec<Action>, Vec<Action>) = actions
        .into_iter()
        .partition(|a| a.kind == ActionKind::Remove);
    join_all(
        removals
            .iter()
            .map(|a| remove_container(&engine, a, None, &report)),
    )
    .await;

    let pulls: Vec<&Action> = plan
        .resources
        .iter()
        .filter(|a| a.kind == ActionKind::Pull)
        .collect();
    let images = pull_all(&engine, &pulls, &report).await;
    run_graph(&engine, &desired, actions, &images, &report).await;
    for a in plan
        .resources
        .iter()
        .filter(|a| a.object == ObjectKind::Network && a.kind == ActionKind::Remove)
    {
        remove_orphan_network(&engine, a, &report).await;
    }
}

/// Removes a leftover of an interrupted recreate.
async fn remove_leftover(engine: &Arc<Engine>, a: &Action, report: &Report) {
    let Some(c) =
        a.id.as_deref()
            .and_then(|id| engine.containers.get(id).ok())
    else {
        return;
    };
    match engine.containers.remove(&c, true).await {
        Ok(()) => report.other(
            StepObject::Container,
            &a.name,
            &format!("removed: {LEFTOVER}"),
        ),
        Err(e) => report.fail(
            StepObject::Container,
            &a.name,
            &format!(
                "remove the leftover of an interrupted apply: {}",
                e.full_message()
            ),
        ),
    }
}

/// Runs a network's action; `false` (reported) when the network cannot be
/// had. A recreate removes the containers joining it first (the plan
/// recreates them).
async fn run_network(
    engine: &Arc<Engine>,
    a: &Action,
    n: &DesiredNetwork,
    report: &Report,
) -> bool {
    let name = a.name.as_str();
    match a.kind {
        ActionKind::Refuse => {
            report.fail(StepObject::Network, name, &a.reason);
            return false;
        }
        ActionKind::Recreate => {
            if let Ok(rec) = engine
                .containers
                .networks
                .get(a.id.as_deref().unwrap_or(name))
            {
                let users = engine.containers.network_users(&rec);
                if !remove_users(engine, users, name, report).await {
                    return false;
                }
                if let Err(e) = engine.containers.remove_network(&rec.id).await {
                    report.fail(
                        StepObject::Network,
                        name,
                        &format!("remove to recreate: {}", e.full_message()),
                    );
                    return false;
                }
                report.other(StepObject::Network, name, "removed: definition changed");
            }
        }
        ActionKind::Create => {}
        _ => return true,
    }
    report.step(StepObject::Network, name, StepStatus::Working, "creating");
    match create_network(engine, n.create.clone()).await {
        Ok(_) => {
            report.other(StepObject::Network, name, "created");
            true
        }
        Err(e) => {
            report.fail(
                StepObject::Network,
                name,
                &format!("create: {}", e.full_message()),
            );
            false
        }
    }
}

/// Runs a volume's action; `false` (reported) when the volume cannot be
/// had. A recreate removes the containers using it first (the plan
/// recreates them); its data is lost.
async fn run_volume(engine: &Arc<Engine>, a: &Action, v: &DesiredVolume, report: &Report) -> bool {
    let name = a.name.as_str();
    match a.kind {
        ActionKind::Refuse => {
            report.fail(StepObject::Volume, name, &a.reason);
            return false;
        }
        ActionKind::Recreate => {
            if !replace_volume(engine, name, report).await {
                return false;
            }
        }
        ActionKind::Create => {}
        _ => return true,
    }
    let made = engine.volumes.create(
        Some(name),
        v.create.driver.as_deref(),
        v.create.labels.clone().unwrap_or_default(),
        v.create.driver_opts.clone().unwrap_or_default(),
    );
    match made {
        Ok(_) => {
            report.other(StepObject::Volume, name, "created");
            true
        }
        Err(e) => {
            report.fail(
                StepObject::Volume,
                name,
                &format!("create: {}", e.full_message()),
            );
            false
        }
    }
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

/// Pulls the planned images; the error of each image that could not be
/// had.
async fn pull_all(
    engine: &Arc<Engine>,
    pulls: &[&Action],
    report: &Report,
) -> HashMap<String, String> {
    let results = join_all(pulls.iter().map(|a| async move {
        let image = a.name.clone();
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

async fn pull_one(engine: &Arc<Engine>, image: &str) -> Result<()> {
    let r = ImageRef::parse(image)?;
    let auth = engine.registries.auth(&r, None);
    let resolved = pull::resolve(&engine.registries, &r, &Platform::host(), &auth).await?;
    pull::fetch(&engine.store, resolved, &Progress::silent()).await?;
    Ok(())
}

/// Stops and removes the container of a `remove` action.
pub(super) async fn remove_container(
    engine: &Arc<Engine>,
    a: &Action,
    timeout: Option<i64>,
    report: &Report,
) {
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
        ActionKind::Remove | ActionKind::Pull | ActionKind::Refuse => return Ok(()),
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

/// Removes a network the project no longer names.
async fn remove_orphan_network(engine: &Arc<Engine>, a: &Action, report: &Report) {
    match engine
        .containers
        .remove_network(a.id.as_deref().unwrap_or(&a.name))
        .await
    {
        Ok(_) => report.other(
            StepObject::Network,
            &a.name,
            "removed (no longer in the project)",
        ),
        Err(e) => report.fail(
            StepObject::Network,
            &a.name,
            &format!("remove: {}", e.full_message()),
        ),
    }
}

/// Removes the volume `name` off the engine thread (deleting its files may
/// take a while).
pub(super) async fn remove_volume(engine: &Engine, name: &str) -> Result<()> {
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
