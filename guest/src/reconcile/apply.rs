//! Applying a project: running the plan of [`super::plan::plan`], made
//! from what exists when the apply takes the project's lock. Apply decides
//! nothing the plan does not say; it only reports what each step did, and
//! does every step through [`World`] ([`execute`] is the executor; the
//! engine is one world, the unit tests' recording fake another).
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
//!    `completed`), then for its image when the CLI is still building it
//!    ([`super::pending`]; the action is then decided again with the
//!    image's ID), then acts on its replicas. A failed dependency or build
//!    fails its dependants with an error naming the chain; other branches
//!    go on. Meanwhile each pending image shows as a step of its own, and
//!    the apply ends only once every one is reported (or its client left);
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

use futures_util::future::join_all;
use servin_proto::apply::{Event, Failure, Step, StepObject, StepStatus, Summary};
use servin_proto::{
    Action, ActionKind, Condition, DesiredContainer, DesiredNetwork, DesiredProject, DesiredVolume,
    ObjectKind, Plan, TEMPORARY_SUFFIX,
};
use tokio::sync::watch;

use crate::engine::Engine;
use crate::image::progress::Progress;

use super::observe::{Observed, image_of, observe_all};
use super::pending::{Outcome, Registration, Table, with_image};
use super::plan::{LEFTOVER, Options, with_image_known};
use super::world::{EngineWorld, StepResult, World};

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

    /// Resolves once the client reading the stream has left.
    pub async fn client_gone(&self) {
        self.progress.closed().await
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

    /// Reports how step `what` on `object` `name` ended: `done` when it
    /// succeeded, else its error after `what`; whether it succeeded.
    fn outcome(
        &self,
        object: StepObject,
        name: &str,
        result: StepResult,
        done: &str,
        what: &str,
    ) -> bool {
        match result {
            Ok(()) => {
                self.other(object, name, done);
                true
            }
            Err(e) => {
                self.fail(object, name, &format!("{what}: {e}"));
                false
            }
        }
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
/// against what exists now, streaming to `report`; `pending` is the table
/// of the images the CLI is still building (closed when the apply ends).
pub async fn apply(
    engine: Arc<Engine>,
    desired: DesiredProject,
    options: Options,
    report: Arc<Report>,
    pending: Option<Registration>,
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
    let pending = pending.as_ref().map(|r| {
        Arc::new(Pending {
            table: Arc::clone(&r.table),
            observed: observed.containers.clone(),
        })
    });
    let world: Arc<dyn World> = Arc::new(EngineWorld(engine));
    execute_with(&world, &desired, plan, pending, &report).await;
}

/// The images an apply waits for, and what it observed to decide again
/// once one is known.
pub struct Pending {
    /// The images and their outcomes as the CLI reports them.
    pub table: Arc<Table>,
    /// The project's containers as the plan saw them.
    pub observed: Vec<Observed>,
}

impl Pending {
    /// `reference`'s outcome, or an error once the client has left (nobody
    /// is left to report it); `None` when it is not pending.
    async fn outcome(&self, reference: &str, report: &Report) -> Option<Outcome> {
        if !self.table.contains(reference) {
            return None;
        }
        tokio::select! {
            o = self.table.wait(reference) => o,
            () = report.client_gone() => Some(Err(
                "the client building it left before it was reported".to_string(),
            )),
        }
    }
}

/// Runs `plan` (made for `desired`) against `world`, in the order of the
/// module doc. Decides nothing the plan does not say.
pub async fn execute(
    world: &Arc<dyn World>,
    desired: &DesiredProject,
    plan: Plan,
    report: &Arc<Report>,
) {
    execute_with(world, desired, plan, None, report).await
}

/// As [`execute`], the images of `pending` still being built: each shows
/// as a step until it is reported, and the containers running one wait
/// for it.
pub async fn execute_with(
    world: &Arc<dyn World>,
    desired: &DesiredProject,
    plan: Plan,
    pending: Option<Arc<Pending>>,
    report: &Arc<Report>,
) {
    let images = async {
        let Some(p) = &pending else { return };
        join_all(p.table.references().into_iter().map(|r| async move {
            report.step(StepObject::Image, &r, StepStatus::Working, "building");
            match p.outcome(&r, report).await {
                Some(Ok(id)) => report.step(
                    StepObject::Image,
                    &r,
                    StepStatus::Done,
                    &format!("built {}", short_id(&id)),
                ),
                Some(Err(e)) => report.fail(StepObject::Image, &r, &format!("build: {e}")),
                None => {}
            }
        }))
        .await;
    };
    tokio::join!(
        images,
        run_plan(world, desired, plan, pending.clone(), report)
    );
}

/// An image ID as Docker shows it: 12 hex digits.
fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

async fn run_plan(
    world: &Arc<dyn World>,
    desired: &DesiredProject,
    plan: Plan,
    pending: Option<Arc<Pending>>,
    report: &Arc<Report>,
) {
    let (leftovers, actions): (Vec<Action>, Vec<Action>) = plan
        .actions
        .into_iter()
        .partition(|a| a.kind == ActionKind::Remove && a.reason == LEFTOVER);
    for a in &leftovers {
        remove_leftover(world.as_ref(), a, report).await;
    }
    let mut ok = true;
    for a in &plan.resources {
        ok &= match a.object {
            ObjectKind::Network if a.kind != ActionKind::Remove => {
                match desired.networks.iter().find(|n| n.create.name == a.name) {
                    Some(n) => run_network(world.as_ref(), a, n, report).await,
                    None => true,
                }
            }
            ObjectKind::Volume => match desired
                .volumes
                .iter()
                .find(|v| v.create.name.as_ref().unwrap_or(&v.name) == &a.name)
            {
                Some(v) => run_volume(world.as_ref(), a, v, report).await,
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
            .map(|a| remove_container(world.as_ref(), a, None, report)),
    )
    .await;

    let pulls: Vec<&Action> = plan
        .resources
        .iter()
        .filter(|a| a.kind == ActionKind::Pull)
        .collect();
    let images = pull_all(world.as_ref(), &pulls, report).await;
    run_graph(world, desired, actions, &images, pending, report).await;
    for a in plan
        .resources
        .iter()
        .filter(|a| a.object == ObjectKind::Network && a.kind == ActionKind::Remove)
    {
        remove_orphan_network(world.as_ref(), a, report).await;
    }
}

/// Removes a leftover of an interrupted recreate.
async fn remove_leftover(world: &dyn World, a: &Action, report: &Report) {
    let Some(id) = a.id.as_deref().filter(|id| world.container_exists(id)) else {
        return;
    };
    match world.force_remove(id).await {
        Ok(()) => report.other(
            StepObject::Container,
            &a.name,
            &format!("removed: {LEFTOVER}"),
        ),
        Err(e) => report.fail(
            StepObject::Container,
            &a.name,
            &format!("remove the leftover of an interrupted apply: {e}"),
        ),
    }
}

/// Runs a network's action; `false` (reported) when the network cannot be
/// had. A recreate removes the containers joining it first (the plan
/// recreates them).
async fn run_network(world: &dyn World, a: &Action, n: &DesiredNetwork, report: &Report) -> bool {
    let name = a.name.as_str();
    let replace = async {
        match world.network(a.id.as_deref().unwrap_or(name)) {
            Some((id, users)) => {
                let remove = world.remove_network(&id);
                remove_to_recreate(world, StepObject::Network, name, users, remove, report).await
            }
            None => true,
        }
    };
    let create = async {
        report.step(StepObject::Network, name, StepStatus::Working, "creating");
        world.create_network(&n.create).await
    };
    run_resource(StepObject::Network, a, replace, create, report).await
}

/// Runs a volume's action; `false` (reported) when the volume cannot be
/// had. A recreate removes the containers using it first (the plan
/// recreates them); its data is lost.
async fn run_volume(world: &dyn World, a: &Action, v: &DesiredVolume, report: &Report) -> bool {
    let name = a.name.as_str();
    let replace = async {
        let users = world.volume_users(name);
        let remove = world.remove_volume(name);
        remove_to_recreate(world, StepObject::Volume, name, users, remove, report).await
    };
    let create = async { world.create_volume(name, v) };
    run_resource(StepObject::Volume, a, replace, create, report).await
}

/// Runs the action `a` on a network or a volume (`object`): a refusal
/// fails; a recreate awaits `replace` first; a create or a recreate then
/// awaits `create`. `false` (reported) when the object cannot be had.
async fn run_resource(
    object: StepObject,
    a: &Action,
    replace: impl Future<Output = bool>,
    create: impl Future<Output = StepResult>,
    report: &Report,
) -> bool {
    let name = a.name.as_str();
    match a.kind {
        ActionKind::Refuse => {
            report.fail(object, name, &a.reason);
            return false;
        }
        ActionKind::Recreate => {
            if !replace.await {
                return false;
            }
        }
        ActionKind::Create => {}
        _ => return true,
    }
    report.outcome(object, name, create.await, "created", "create")
}

/// Removes `users`, the containers of network or volume `name`, then the
/// object itself by awaiting `remove`; `false` (reported) when that failed.
async fn remove_to_recreate(
    world: &dyn World,
    object: StepObject,
    name: &str,
    users: Vec<(String, String)>,
    remove: impl Future<Output = StepResult>,
    report: &Report,
) -> bool {
    if !remove_users(world, users, name, report).await {
        return false;
    }
    let removed = remove.await;
    report.outcome(
        object,
        name,
        removed,
        "removed: definition changed",
        "remove to recreate",
    )
}

/// Stops and removes `users` (ID, name), the containers of network or
/// volume `object` about to be replaced (the plan makes them again);
/// `false` (reported) when one could not be removed.
async fn remove_users(
    world: &dyn World,
    users: Vec<(String, String)>,
    object: &str,
    report: &Report,
) -> bool {
    let mut ok = true;
    for (id, name) in users {
        match world.stop_and_remove(&id, None).await {
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
                    &format!("remove to recreate {object}: {e}"),
                );
            }
        }
    }
    ok
}

/// Pulls the planned images; the error of each image that could not be
/// had.
async fn pull_all(
    world: &dyn World,
    pulls: &[&Action],
    report: &Report,
) -> HashMap<String, String> {
    let results = join_all(pulls.iter().map(|a| async move {
        let image = a.name.clone();
        report.step(StepObject::Image, &image, StepStatus::Working, "pulling");
        match world.pull(&image).await {
            Ok(()) => {
                report.other(StepObject::Image, &image, "pulled");
                None
            }
            Err(e) => {
                let msg = format!("pull: {e}");
                report.fail(StepObject::Image, &image, &msg);
                Some((image, msg))
            }
        }
    }))
    .await;
    results.into_iter().flatten().collect()
}

/// Stops and removes the container of a `remove` action.
pub(super) async fn remove_container(
    world: &dyn World,
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
    match world.stop_and_remove(id, timeout).await {
        Ok(()) => report.done(
            ActionKind::Remove,
            &a.name,
            &format!("removed ({})", a.reason),
        ),
        Err(e) => report.fail(StepObject::Container, &a.name, &format!("remove: {e}")),
    }
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

/// A dependency of a service as its task waits for it: the service, the
/// condition, where it is, and its containers' names.
type Waiting = (String, Condition, watch::Receiver<Ready>, Vec<String>);

/// Runs the container actions, one task per service, each waiting for what
/// it depends on.
async fn run_graph(
    world: &Arc<dyn World>,
    desired: &DesiredProject,
    actions: Vec<Action>,
    images: &HashMap<String, String>,
    pending: Option<Arc<Pending>>,
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
        let deps: Vec<Waiting> = list
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
        let world = Arc::clone(world);
        let report = Arc::clone(report);
        let images = images.clone();
        let pending = pending.clone();
        tasks.spawn(async move {
            let outcome = run_service(
                world.as_ref(),
                &service,
                deps,
                list,
                &images,
                pending.as_deref(),
                &report,
            )
            .await;
            let _ = tx.send(outcome);
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn run_service(
    world: &dyn World,
    service: &str,
    deps: Vec<Waiting>,
    list: Vec<(Action, DesiredContainer)>,
    images: &HashMap<String, String>,
    pending: Option<&Pending>,
    report: &Report,
) -> Ready {
    // Each replica of the service shows what it waits for.
    let waiting = |message: &str| {
        for (_, c) in &list {
            report.step(StepObject::Container, &c.name, StepStatus::Working, message);
        }
    };
    for (dep, condition, mut rx, names) in deps {
        waiting(&format!("waiting for {dep} ({})", condition.as_str()));
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
                waiting(&format!(
                    "waiting for {dep} to become {}",
                    condition.as_str()
                ));
                match world.reach(&names, condition).await {
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
    let list = match pending {
        Some(p) => match with_built_image(p, service, list, report).await {
            Ok(list) => list,
            Err(failed) => return failed,
        },
        None => list,
    };
    let results = join_all(list.iter().map(|(a, c)| act(world, a, c, images, report))).await;
    match results.into_iter().find_map(|r| r.err()) {
        Some(e) => Ready::Failed(vec![service.to_string()], e),
        None => Ready::Started,
    }
}

/// `list` (the actions of `service` and their containers) once its image,
/// when pending, is built: each container then runs the image by ID and
/// its action is decided again. A failed build fails them all (reported).
async fn with_built_image(
    pending: &Pending,
    service: &str,
    list: Vec<(Action, DesiredContainer)>,
    report: &Report,
) -> std::result::Result<Vec<(Action, DesiredContainer)>, Ready> {
    // The replicas of a service run one image.
    let Some(image) = list
        .first()
        .map(|(_, c)| c.image.clone())
        .filter(|i| pending.table.contains(i))
    else {
        return Ok(list);
    };
    for (_, c) in &list {
        report.step(
            StepObject::Container,
            &c.name,
            StepStatus::Working,
            &format!("waiting for image {image} (building)"),
        );
    }
    match pending.outcome(&image, report).await {
        Some(Ok(id)) => Ok(list
            .into_iter()
            .map(|(a, c)| {
                let c = with_image(&c, &id);
                (with_image_known(&a, &c, &pending.observed), c)
            })
            .collect()),
        Some(Err(e)) => {
            let error = format!("image {image} could not be built: {e}");
            for (_, c) in &list {
                report.fail(
                    StepObject::Container,
                    &c.name,
                    &format!("not started: {error}"),
                );
            }
            Err(Ready::Failed(vec![service.to_string()], error))
        }
        None => Ok(list),
    }
}

/// Does one container action; the error is streamed and returned.
async fn act(
    world: &dyn World,
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
            create_and_start(world, want)
                .await
                .map(|()| "created and started")
        }
        ActionKind::Recreate => {
            report.step(
                StepObject::Container,
                &a.name,
                StepStatus::Working,
                &format!("recreating ({})", a.reason),
            );
            recreate(world, a, want)
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
            world
                .start_container(a.id.as_deref().unwrap_or(&a.name))
                .await
                .map(|()| "started")
        }
        ActionKind::Remove | ActionKind::Pull | ActionKind::Build | ActionKind::Refuse => {
            return Ok(());
        }
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
    world: &dyn World,
    want: &DesiredContainer,
) -> std::result::Result<(), String> {
    let id = world
        .create_container(&want.name, want)
        .map_err(|e| format!("create: {e}"))?;
    world
        .start_container(&id)
        .await
        .map_err(|e| format!("start: {e}"))
}

/// Makes the new container under a temporary name, then stops and removes
/// the old one, renames the new one and starts it: a failed create leaves
/// the old container running, and a recreate interrupted after the create
/// leaves a container under the temporary name that the next apply
/// removes as a leftover.
async fn recreate(
    world: &dyn World,
    a: &Action,
    want: &DesiredContainer,
) -> std::result::Result<(), String> {
    let temporary = format!("{}{TEMPORARY_SUFFIX}", want.name);
    let new = world
        .create_container(&temporary, want)
        .map_err(|e| format!("create: {e}"))?;
    if let Some(old) = a.id.as_deref().filter(|id| world.container_exists(id)) {
        world
            .stop_and_remove(old, None)
            .await
            .map_err(|e| format!("remove the old container: {e}"))?;
    }
    let renamed = world.rename_container(&new, &want.name)?;
    world
        .start_container(&renamed)
        .await
        .map_err(|e| format!("start: {e}"))
}

/// Removes a network the project no longer names.
async fn remove_orphan_network(world: &dyn World, a: &Action, report: &Report) {
    match world
        .remove_network(a.id.as_deref().unwrap_or(&a.name))
        .await
    {
        Ok(()) => report.other(
            StepObject::Network,
            &a.name,
            "removed (no longer in the project)",
        ),
        Err(e) => report.fail(StepObject::Network, &a.name, &format!("remove: {e}")),
    }
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
