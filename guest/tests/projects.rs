//! The reconciler's plan against a real engine: containers made with the
//! project labels, then `POST /servin/v1/projects/{name}/plan`.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use servin_proto::{
    ActionKind, Condition, Dependency, DesiredContainer, DesiredProject, Plan, Projection, labels,
};
use support::{EngineGuard, IMAGE};

fn projection(service: &str, env: &str) -> Projection {
    let mut p = Projection::new(1);
    p.set("image", json!(IMAGE));
    p.set("command", json!(["sleep", "300"]));
    p.set("env", json!({ "SERVICE": service, "LEVEL": env }));
    p
}

fn desired(service: &str, replica: u32, p: Projection, deps: &[&str]) -> DesiredContainer {
    DesiredContainer {
        service: service.into(),
        replica,
        name: labels::container_name("shop", service, replica),
        image: IMAGE.into(),
        image_digest: None,
        depends_on: deps
            .iter()
            .map(|d| Dependency {
                service: d.to_string(),
                condition: Condition::Healthy,
            })
            .collect(),
        config_hash: p.hash(),
        projection: p,
        body: Default::default(),
    }
}

/// Creates (and, when `run`, starts) a container of `project` labelled as
/// made from `p`; returns its ID.
fn make(
    e: &EngineGuard,
    project: &str,
    service: &str,
    replica: u32,
    p: &Projection,
    run: bool,
) -> String {
    let name = labels::container_name(project, service, replica);
    let label = |k: &str, v: &str| format!("{k}={v}");
    let args = [
        "create".to_string(),
        "--name".into(),
        name,
        "--label".into(),
        label(labels::PROJECT, project),
        "--label".into(),
        label(labels::NAME, service),
        "--label".into(),
        label(labels::REPLICA, &replica.to_string()),
        "--label".into(),
        label(labels::CONFIG_HASH, &p.hash()),
        "--label".into(),
        label(labels::FIELDS, &p.field_digests().to_label()),
        IMAGE.into(),
        "sleep".into(),
        "300".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = e.docker_ok(&args).trim().to_string();
    if run {
        e.docker_ok(&["start", &id]);
    }
    id
}

fn post_plan(e: &EngineGuard, name: &str, d: &DesiredProject) -> servin_testkit::http::Response {
    let body = serde_json::to_vec(d).unwrap();
    e.api(
        "POST",
        &servin_proto::plan_path(name),
        &[("Content-Type", "application/json")],
        &body,
    )
}

#[test]
fn the_plan_names_each_action_and_changes_nothing() {
    let e = EngineGuard::start();
    e.load_container_image(IMAGE);
    let db = make(&e, "shop", "db", 1, &projection("db", "info"), true);
    let cache = make(&e, "shop", "cache", 1, &projection("cache", "info"), false);
    let web = make(&e, "shop", "web", 1, &projection("web", "info"), true);
    let web2 = make(&e, "shop", "web", 2, &projection("web", "info"), true);
    let old = make(&e, "shop", "old", 1, &projection("old", "info"), false);
    let other = make(&e, "other", "web", 1, &projection("web", "info"), true);
    let before = e.docker_ok(&["ps", "-a", "--format", "{{.ID}} {{.Status}}"]);

    let d = DesiredProject {
        name: "shop".into(),
        containers: vec![
            desired("db", 1, projection("db", "info"), &[]),
            desired("cache", 1, projection("cache", "info"), &[]),
            desired("web", 1, projection("web", "debug"), &["db", "cache"]),
            desired("job", 1, projection("job", "info"), &["db"]),
        ],
        ..Default::default()
    };
    let r = post_plan(&e, "shop", &d);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), e.log());
    let plan: Plan = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(plan.project, "shop");
    let got: Vec<(ActionKind, &str, Option<&str>, &str)> = plan
        .actions
        .iter()
        .map(|a| (a.kind, a.name.as_str(), a.id.as_deref(), a.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                ActionKind::Start,
                "shop-cache-1",
                Some(cache.as_str()),
                "stopped"
            ),
            (
                ActionKind::Keep,
                "shop-db-1",
                Some(db.as_str()),
                "up to date"
            ),
            (ActionKind::Create, "shop-job-1", None, "missing"),
            (
                ActionKind::Recreate,
                "shop-web-1",
                Some(web.as_str()),
                "config changed: env"
            ),
            (
                ActionKind::Remove,
                "shop-old-1",
                Some(old.as_str()),
                "orphan: service old is no longer in the project"
            ),
            (
                ActionKind::Remove,
                "shop-web-2",
                Some(web2.as_str()),
                "surplus replica 2 of web (replicas = 1)"
            ),
        ]
    );
    assert_eq!(plan.actions[3].changed, vec!["env"]);
    assert!(
        plan.actions
            .iter()
            .all(|a| a.id.as_deref() != Some(other.as_str()))
    );

    // Planning changed nothing.
    let after = e.docker_ok(&["ps", "-a", "--format", "{{.ID}} {{.Status}}"]);
    let ids = |s: &str| {
        let mut v: Vec<String> = s
            .lines()
            .filter_map(|l| l.split(' ').next())
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&before), ids(&after));
    assert_eq!(
        before.lines().filter(|l| l.contains("Up")).count(),
        after.lines().filter(|l| l.contains("Up")).count()
    );
}

#[test]
fn a_bad_desired_state_is_refused_with_the_reason() {
    let e = EngineGuard::start();
    let cyclic = DesiredProject {
        name: "loop".into(),
        containers: vec![
            {
                let mut c = desired("a", 1, projection("a", "x"), &["b"]);
                c.name = labels::container_name("loop", "a", 1);
                c
            },
            {
                let mut c = desired("b", 1, projection("b", "x"), &["a"]);
                c.name = labels::container_name("loop", "b", 1);
                c
            },
        ],
        ..Default::default()
    };
    let r = post_plan(&e, "loop", &cyclic);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("cycle: a -> b -> a"), "{}", r.text());

    let r = post_plan(&e, "elsewhere", &cyclic);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("is for project \\\"loop\\\""),
        "{}",
        r.text()
    );

    let r = e.api("POST", &servin_proto::plan_path("loop"), &[], b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid desired state"), "{}", r.text());
}
