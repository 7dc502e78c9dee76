//! The executor's rules on the recording fake, without root: the order of
//! a plan's steps, how failures propagate, what replacing a network or a
//! volume does to the containers using it, interrupted recreates, and
//! down's order and parallelism.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{NetworkCreateRequest, VolumeCreateRequest};
use servin_proto::apply::Summary;
use servin_proto::{
    Action, ActionKind, DesiredNetwork, DesiredProject, DesiredVolume, ObjectKind, Plan, labels,
};

use super::apply::{Pending, Report, execute, execute_with};
use super::down::{DownOptions, down_plan, run_down};
use super::fake::Recording;
use super::fixtures::container;
use super::observe::Observed;
use super::pending::{PendingImages, Registration};
use super::plan::LEFTOVER;
use super::world::World;
use crate::image::progress::Progress;

fn action(kind: ActionKind, object: ObjectKind, name: &str, id: Option<&str>) -> Action {
    Action {
        kind,
        object,
        name: name.into(),
        service: None,
        replica: None,
        id: id.map(str::to_string),
        reason: "test".into(),
        changed: Vec::new(),
    }
}

fn create(name: &str) -> Action {
    action(ActionKind::Create, ObjectKind::Container, name, None)
}

fn recreate(name: &str, id: &str) -> Action {
    action(ActionKind::Recreate, ObjectKind::Container, name, Some(id))
}

/// A plan of project `shop`.
fn shop_plan(actions: Vec<Action>, resources: Vec<Action>) -> Plan {
    Plan {
        project: "shop".into(),
        actions,
        resources,
    }
}

/// Network `name` of the project, made as `full`.
fn network(name: &str, full: &str) -> DesiredNetwork {
    DesiredNetwork {
        name: name.into(),
        external: false,
        create: NetworkCreateRequest {
            name: full.into(),
            ..Default::default()
        },
    }
}

/// Volume `name` of the project, made as `full`.
fn volume(name: &str, full: &str) -> DesiredVolume {
    DesiredVolume {
        name: name.into(),
        external: false,
        create: VolumeCreateRequest {
            name: Some(full.into()),
            ..Default::default()
        },
    }
}

/// Runs `plan` for `desired` on `world`; the summary.
async fn run(world: &Arc<Recording>, desired: &DesiredProject, plan: Plan) -> Summary {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let report = Arc::new(Report::new("shop", Progress::new(tx)));
    let w: Arc<dyn World> = Arc::clone(world) as Arc<dyn World>;
    execute(&w, desired, plan, &report).await;
    report.finish()
}

fn project(services: &[(&str, &[&str])]) -> DesiredProject {
    DesiredProject {
        name: "shop".into(),
        containers: services.iter().map(|(s, d)| container(s, d)).collect(),
        ..Default::default()
    }
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("{call} not in {calls:?}"))
}

fn failure<'a>(s: &'a Summary, name: &str) -> &'a str {
    &s.failed
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no failure of {name} in {:?}", s.failed))
        .error
}

#[tokio::test]
async fn a_level_runs_at_once_and_dependants_wait_for_it() {
    let world = Arc::new(Recording::default());
    let desired = project(&[("web", &["db", "cache"]), ("db", &[]), ("cache", &[])]);
    let plan = shop_plan(
        vec![
            create("shop-cache-1"),
            create("shop-db-1"),
            create("shop-web-1"),
        ],
        vec![],
    );
    let s = run(&world, &desired, plan).await;
    assert!(s.ok(), "{s:?}");
    assert_eq!(s.done_of(ActionKind::Create), 3);
    let calls = world.calls();
    // cache and db start together: each begins before the other ends.
    assert!(position(&calls, "begin start shop-db-1") < position(&calls, "end start shop-cache-1"));
    assert!(position(&calls, "begin start shop-cache-1") < position(&calls, "end start shop-db-1"));
    // web is made only once both have started.
    let web = position(&calls, "create shop-web-1");
    assert!(web > position(&calls, "end start shop-db-1"));
    assert!(web > position(&calls, "end start shop-cache-1"));
}

#[tokio::test]
async fn a_failed_dependency_fails_its_dependants_and_other_branches_go_on() {
    let world = Arc::new(Recording::default());
    world.fail("start shop-db-1");
    let desired = project(&[
        ("web", &["api"]),
        ("api", &["db"]),
        ("db", &[]),
        ("tool", &[]),
    ]);
    let plan = shop_plan(
        ["shop-api-1", "shop-db-1", "shop-tool-1", "shop-web-1"]
            .into_iter()
            .map(create)
            .collect(),
        vec![],
    );
    let s = run(&world, &desired, plan).await;
    assert_eq!(failure(&s, "shop-db-1"), "create: start: boom");
    assert_eq!(
        failure(&s, "shop-api-1"),
        "not started: dependency chain api -> db failed: shop-db-1: create: start: boom"
    );
    assert_eq!(
        failure(&s, "shop-web-1"),
        "not started: dependency chain web -> api -> db failed: shop-db-1: create: start: boom"
    );
    let steps = world.steps();
    assert!(
        steps.contains(&"start shop-tool-1".to_string()),
        "{steps:?}"
    );
    assert!(
        !steps
            .iter()
            .any(|c| c.contains("shop-api-1") || c.contains("shop-web-1"))
    );
    assert_eq!(s.done_of(ActionKind::Create), 1);
}

#[tokio::test]
async fn a_replaced_network_takes_its_containers_down_first_and_they_come_back() {
    let world = Arc::new(Recording::default());
    world.network_with("shop_back", "net1", &[("c1", "shop-api-1")]);
    let mut desired = project(&[("api", &[])]);
    desired.networks.push(network("back", "shop_back"));
    let mut replaced = recreate("shop-api-1", "c1");
    replaced.reason = "network shop_back is replaced".into();
    let plan = shop_plan(
        vec![replaced],
        vec![action(
            ActionKind::Recreate,
            ObjectKind::Network,
            "shop_back",
            Some("net1"),
        )],
    );
    let s = run(&world, &desired, plan).await;
    assert!(s.ok(), "{s:?}");
    assert_eq!(
        world.steps(),
        vec![
            "remove c1",
            "remove-network net1",
            "create-network shop_back",
            "create shop-api-1-servin-new",
            "rename shop-api-1-servin-new shop-api-1",
            "start shop-api-1",
        ]
    );
}

#[tokio::test]
async fn a_replaced_volume_goes_after_its_users_and_before_it_is_made_again() {
    let world = Arc::new(Recording::default());
    world.volume_with("shop_data", &[("c1", "shop-db-1")]);
    let mut desired = project(&[("db", &[])]);
    desired.volumes.push(volume("data", "shop_data"));
    let plan = shop_plan(
        vec![recreate("shop-db-1", "c1")],
        vec![action(
            ActionKind::Recreate,
            ObjectKind::Volume,
            "shop_data",
            None,
        )],
    );
    let s = run(&world, &desired, plan).await;
    assert!(s.ok(), "{s:?}");
    let steps = world.steps();
    assert_eq!(
        &steps[..3],
        [
            "remove c1",
            "remove-volume shop_data",
            "create-volume shop_data"
        ]
    );
    assert_eq!(steps.last().unwrap(), "start shop-db-1");
}

#[tokio::test]
async fn a_refused_network_fails_the_apply_before_any_container_is_touched() {
    let world = Arc::new(Recording::default());
    world.exists("old");
    let mut desired = project(&[("web", &[])]);
    desired.networks.push(network("default", "shop_default"));
    let mut refuse = action(
        ActionKind::Refuse,
        ObjectKind::Network,
        "shop_default",
        Some("n1"),
    );
    refuse.reason = "its definition changed".into();
    let plan = shop_plan(
        vec![
            create("shop-web-1"),
            action(
                ActionKind::Remove,
                ObjectKind::Container,
                "shop-old-1",
                Some("old"),
            ),
        ],
        vec![refuse],
    );
    let s = run(&world, &desired, plan).await;
    assert_eq!(failure(&s, "shop_default"), "its definition changed");
    assert_eq!(
        failure(&s, "shop-web-1"),
        "not applied: the project's networks or volumes could not be made"
    );
    assert!(world.calls().is_empty(), "{:?}", world.calls());
}

#[tokio::test]
async fn a_leftover_of_an_interrupted_recreate_goes_first() {
    let world = Arc::new(Recording::default());
    world.exists("tmp");
    world.exists("old");
    let desired = project(&[("web", &[])]);
    let mut leftover = action(
        ActionKind::Remove,
        ObjectKind::Container,
        "shop-web-1-servin-new",
        Some("tmp"),
    );
    leftover.reason = LEFTOVER.into();
    let plan = shop_plan(vec![leftover, recreate("shop-web-1", "old")], vec![]);
    let s = run(&world, &desired, plan).await;
    assert!(s.ok(), "{s:?}");
    assert_eq!(
        world.steps(),
        vec![
            "force-remove tmp",
            "create shop-web-1-servin-new",
            "remove old",
            "rename shop-web-1-servin-new shop-web-1",
            "start shop-web-1",
        ]
    );
}

#[tokio::test]
async fn a_recreate_whose_create_fails_leaves_the_old_container_running() {
    let world = Arc::new(Recording::default());
    world.exists("old");
    world.fail("create shop-web-1-servin-new");
    let desired = project(&[("web", &[])]);
    let plan = shop_plan(vec![recreate("shop-web-1", "old")], vec![]);
    let s = run(&world, &desired, plan).await;
    assert_eq!(failure(&s, "shop-web-1"), "recreate: create: boom");
    assert_eq!(world.steps(), vec!["create shop-web-1-servin-new"]);
    assert!(world.container_exists("old"));
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_only_its_containers() {
    let world = Arc::new(Recording::default());
    world.fail("pull busybox");
    let mut desired = project(&[("web", &[]), ("db", &[])]);
    desired.containers[1].image = "postgres".into();
    let plan = shop_plan(
        vec![create("shop-web-1"), create("shop-db-1")],
        vec![action(ActionKind::Pull, ObjectKind::Image, "busybox", None)],
    );
    let s = run(&world, &desired, plan).await;
    assert_eq!(failure(&s, "busybox"), "pull: boom");
    assert_eq!(
        failure(&s, "shop-web-1"),
        "create: image busybox could not be pulled"
    );
    let steps = world.steps();
    assert!(steps.contains(&"create shop-db-1".to_string()), "{steps:?}");
    assert!(!steps.contains(&"create shop-web-1".to_string()));
}

#[tokio::test]
async fn down_removes_dependants_first_each_level_at_once_then_networks_and_volumes() {
    let seen = |id: &str, service: &str, replica: u32, deps: &str| {
        let mut l = HashMap::new();
        l.insert(labels::PROJECT.to_string(), "shop".to_string());
        l.insert(labels::NAME.to_string(), service.to_string());
        l.insert(labels::REPLICA.to_string(), replica.to_string());
        l.insert(labels::DEPENDS_ON.to_string(), deps.to_string());
        Observed {
            id: id.into(),
            name: labels::container_name("shop", service, replica),
            labels: l,
            running: true,
            completed: false,
            networks: Vec::new(),
            volumes: Vec::new(),
        }
    };
    let observed = [
        seen("d1", "db", 1, ""),
        seen("w1", "web", 1, "db:healthy"),
        seen("w2", "web", 2, "db:healthy"),
    ];
    let images: HashMap<String, String> = [("d1", "postgres"), ("w1", "web"), ("w2", "web")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let options = DownOptions {
        volumes: true,
        images: true,
        timeout: None,
    };
    let plan = down_plan(
        "shop",
        &observed,
        &images,
        vec![("n1".into(), "shop_default".into())],
        vec!["shop_data".into()],
        &options,
    );
    assert_eq!(plan.batches.len(), 2);
    let world = Recording::default();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let report = Report::new("shop", Progress::new(tx));
    run_down(&world, plan, None, &report).await;
    let calls = world.calls();
    assert!(position(&calls, "begin remove w2") < position(&calls, "end remove w1"));
    assert!(position(&calls, "begin remove d1") > position(&calls, "end remove w1"));
    assert!(position(&calls, "begin remove d1") > position(&calls, "end remove w2"));
    let steps = world.steps();
    assert_eq!(
        &steps[3..],
        [
            "remove-image postgres",
            "remove-image web",
            "collect-garbage",
            "remove-network n1",
            "remove-volume shop_data",
        ]
    );
    assert!(report.finish().ok());
    // Without the options, images and volumes stay.
    let kept = down_plan(
        "shop",
        &observed,
        &images,
        vec![],
        vec!["shop_data".into()],
        &DownOptions::default(),
    );
    assert!(kept.images.is_empty() && kept.volumes.is_empty());
}

/// Project `shop` where `app` runs the pending image `shop-app`, `web`
/// depends on `app` and `tool` runs a pulled image; the images table.
fn with_pending_app() -> (DesiredProject, PendingImages) {
    let mut desired = project(&[("app", &[]), ("tool", &[]), ("web", &["app"])]);
    desired.containers[0].image = "shop-app".into();
    desired.containers[0].body.image = Some("shop-app".into());
    desired.pending_images = vec!["shop-app".into()];
    (desired, PendingImages::default())
}

/// Starts `plan` on `world` with the images of `registration` pending; the
/// apply's task and its report.
fn start_pending(
    world: &Arc<Recording>,
    desired: &DesiredProject,
    plan: Plan,
    registration: &Registration,
    observed: Vec<Observed>,
    client: bool,
) -> (tokio::task::JoinHandle<()>, Arc<Report>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let report = Arc::new(Report::new("shop", Progress::new(tx)));
    let pending = Arc::new(Pending {
        table: Arc::clone(&registration.table),
        observed,
    });
    let w: Arc<dyn World> = Arc::clone(world) as Arc<dyn World>;
    let (desired, r) = (desired.clone(), Arc::clone(&report));
    let task = tokio::spawn(async move {
        // The client keeps reading unless it is said to have left.
        let _rx = client.then_some(rx);
        execute_with(&w, &desired, plan, Some(pending), &r).await;
    });
    (task, report)
}

/// Gives the apply's tasks turns until `call` is recorded.
async fn until_called(world: &Recording, call: &str) {
    for _ in 0..1000 {
        if world.steps().iter().any(|c| c == call) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{call} never happened: {:?}", world.steps());
}

#[tokio::test]
async fn a_container_waits_for_its_pending_image_and_the_others_do_not() {
    let world = Arc::new(Recording::default());
    let (desired, images) = with_pending_app();
    let reg = images.open("shop", &desired.pending_images);
    let plan = shop_plan(
        ["shop-app-1", "shop-tool-1", "shop-web-1"]
            .into_iter()
            .map(create)
            .collect(),
        vec![],
    );
    let (task, report) = start_pending(&world, &desired, plan, &reg, vec![], true);
    until_called(&world, "start shop-tool-1").await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    let steps = world.steps();
    assert!(
        !steps
            .iter()
            .any(|c| c.contains("shop-app-1") || c.contains("shop-web-1")),
        "{steps:?}"
    );
    images
        .report(
            "shop",
            &reg.id,
            "shop-app",
            Some("sha256:0123456789abcdef".into()),
            None,
        )
        .unwrap();
    task.await.unwrap();
    let s = report.finish();
    assert!(s.ok(), "{s:?}");
    assert_eq!(s.done_of(ActionKind::Create), 3);
    // Run by ID, and its dependant after it.
    assert_eq!(
        world.image_of("shop-app-1").unwrap(),
        "sha256:0123456789abcdef"
    );
    let calls = world.calls();
    assert!(position(&calls, "create shop-web-1") > position(&calls, "end start shop-app-1"));
}

#[tokio::test]
async fn a_failed_build_fails_its_container_and_dependants_only() {
    let world = Arc::new(Recording::default());
    let (desired, images) = with_pending_app();
    let reg = images.open("shop", &desired.pending_images);
    let plan = shop_plan(
        ["shop-app-1", "shop-tool-1", "shop-web-1"]
            .into_iter()
            .map(create)
            .collect(),
        vec![],
    );
    images
        .report(
            "shop",
            &reg.id,
            "shop-app",
            None,
            Some("RUN false: exit status 1".into()),
        )
        .unwrap();
    let (task, report) = start_pending(&world, &desired, plan, &reg, vec![], true);
    task.await.unwrap();
    let s = report.finish();
    assert_eq!(failure(&s, "shop-app"), "build: RUN false: exit status 1");
    assert_eq!(
        failure(&s, "shop-app-1"),
        "not started: image shop-app could not be built: RUN false: exit status 1"
    );
    assert_eq!(
        failure(&s, "shop-web-1"),
        "not started: dependency chain web -> app failed: image shop-app could not be built: RUN false: exit status 1"
    );
    assert_eq!(
        world.steps(),
        vec!["create shop-tool-1", "start shop-tool-1"]
    );
}

#[tokio::test]
async fn a_kept_container_is_recreated_only_when_its_built_image_changed() {
    for (built, recreated) in [("sha256:old", false), ("sha256:new", true)] {
        let world = Arc::new(Recording::default());
        world.exists("c1");
        let (desired, images) = with_pending_app();
        let reg = images.open("shop", &desired.pending_images);
        let app = &desired.containers[0];
        let mut l = HashMap::new();
        l.insert(labels::PROJECT.to_string(), "shop".to_string());
        l.insert(labels::NAME.to_string(), "app".to_string());
        l.insert(labels::REPLICA.to_string(), "1".to_string());
        l.insert(labels::CONFIG_HASH.to_string(), app.config_hash.clone());
        l.insert(
            labels::FIELDS.to_string(),
            app.projection.field_digests().to_label(),
        );
        l.insert(labels::IMAGE_DIGEST.to_string(), "sha256:old".to_string());
        let observed = vec![Observed {
            id: "c1".into(),
            name: "shop-app-1".into(),
            labels: l,
            running: true,
            completed: false,
            networks: Vec::new(),
            volumes: Vec::new(),
        }];
        let mut keep = action(
            ActionKind::Keep,
            ObjectKind::Container,
            "shop-app-1",
            Some("c1"),
        );
        keep.service = Some("app".into());
        let plan = shop_plan(vec![keep], vec![]);
        images
            .report("shop", &reg.id, "shop-app", Some(built.into()), None)
            .unwrap();
        let (task, report) = start_pending(&world, &desired, plan, &reg, observed, true);
        task.await.unwrap();
        let s = report.finish();
        assert!(s.ok(), "{s:?}");
        if recreated {
            assert_eq!(s.done_of(ActionKind::Recreate), 1);
            assert_eq!(
                world.steps(),
                vec![
                    "create shop-app-1-servin-new",
                    "remove c1",
                    "rename shop-app-1-servin-new shop-app-1",
                    "start shop-app-1",
                ]
            );
            assert_eq!(world.image_of("shop-app-1-servin-new").unwrap(), built);
        } else {
            assert_eq!(s.done_of(ActionKind::Keep), 1);
            assert!(world.steps().is_empty(), "{:?}", world.steps());
        }
    }
}

#[tokio::test]
async fn the_waits_end_when_the_client_leaves() {
    let world = Arc::new(Recording::default());
    let (desired, images) = with_pending_app();
    let reg = images.open("shop", &desired.pending_images);
    let plan = shop_plan(vec![create("shop-app-1"), create("shop-tool-1")], vec![]);
    let (task, report) = start_pending(&world, &desired, plan, &reg, vec![], false);
    task.await.unwrap();
    let s = report.finish();
    assert_eq!(
        failure(&s, "shop-app-1"),
        "not started: image shop-app could not be built: the client building it left before it was reported"
    );
    assert_eq!(
        world.steps(),
        vec!["create shop-tool-1", "start shop-tool-1"]
    );
}
