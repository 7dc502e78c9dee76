//! `servin plan` against a real engine: containers carrying the project
//! labels, then the plan after the file changed; a changed network,
//! refused, or replaced with its containers under `--recreate-volumes`.

#![allow(clippy::unwrap_used)]

mod support;

use servin::project::desired::{DesiredOptions, desired};
use servin::project::{LoadOptions, load};
use servin_proto::{ActionKind, DesiredContainer, ObjectKind, Plan};
use support::network_project;
use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/cli:1";

fn project_file(app_level: &str) -> String {
    format!(
        r#"[project]
name = "demo"

[containers.app]
image = "{IMAGE}"
command = ["sleep", "300"]
env = {{ LEVEL = "{app_level}" }}

[containers.worker]
image = "{IMAGE}"
command = ["sleep", "300"]
depends_on = ["app"]
"#
    )
}

/// `servin create` with the labels the desired state gives `c`.
fn create_labelled(s: &Sandbox, c: &DesiredContainer) -> String {
    let mut args = vec!["create".to_string(), "--name".into(), c.name.clone()];
    let mut labels: Vec<_> = c.body.labels.clone().unwrap().into_iter().collect();
    labels.sort();
    for (k, v) in labels {
        args.push("--label".into());
        args.push(format!("{k}={v}"));
    }
    args.extend([IMAGE.to_string(), "sleep".into(), "300".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.ok(&args).trim().to_string()
}

#[test]
fn plan_shows_each_action_and_changes_nothing() {
    let s = Env::with_image(IMAGE);
    let file = s.write_project("demo", &project_file("info"));
    let file_arg = file.to_str().unwrap().to_string();

    // Nothing exists yet: everything is created.
    let out = s.ok(&["plan", "-f", &file_arg, "--format", "json"]);
    let plan: Plan = serde_json::from_str(&out).unwrap();
    let kinds: Vec<_> = plan
        .actions
        .iter()
        .map(|a| (a.kind, a.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ActionKind::Create, "demo-app-1"),
            (ActionKind::Create, "demo-worker-1")
        ]
    );

    // Containers as the file of now would make them; an orphan beside.
    let loaded = load(&file, &LoadOptions::default()).unwrap().unwrap();
    let d = desired(&loaded.project, &DesiredOptions::default()).unwrap();
    let app = create_labelled(&s, &d.containers[0]);
    s.ok(&["start", &app]);
    create_labelled(&s, &d.containers[1]);
    let mut old = d.containers[1].clone();
    old.name = "demo-old-1".into();
    let labels = old.body.labels.as_mut().unwrap();
    labels.insert(servin_proto::labels::NAME.into(), "old".into());
    create_labelled(&s, &old);

    // The app's env changes in the file.
    s.write_project("demo", &project_file("debug"));
    let before = s.ok(&["ps", "-a", "--format", "json"]);
    let out = s.ok(&["plan", "-f", &file_arg]);
    insta::assert_snapshot!(out, @r"
    ACTION     CONTAINER       SERVICE   REASON
    recreate   demo-app-1      app       config changed: env
    start      demo-worker-1   worker    stopped
    remove     demo-old-1      old       orphan: service old is no longer in the project

    ACTION   OBJECT    NAME           REASON
    create   network   demo_default   missing
    ");
    let plan: Plan =
        serde_json::from_str(&s.ok(&["plan", "-f", &file_arg, "--format", "json"])).unwrap();
    assert_eq!(plan.actions[0].changed, vec!["env"]);
    assert_eq!(plan.actions[0].id.as_deref(), Some(app.as_str()));

    // Planning changed nothing.
    let after = s.ok(&["ps", "-a", "--format", "json"]);
    let states = |json: &str| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let mut states: Vec<(String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["Id"].to_string(), c["State"].to_string()))
            .collect();
        states.sort();
        states
    };
    assert_eq!(states(&before), states(&after));
}

#[test]
fn a_changed_network_is_refused_or_replaced_with_its_containers() {
    let s = Env::with_image(IMAGE);
    let file = s.write_project("nets", &network_project(IMAGE, "one"));
    let file_arg = file.to_str().unwrap().to_string();
    s.ok(&["up", "-d", "-f", &file_arg]);
    let plan: Plan =
        serde_json::from_str(&s.ok(&["plan", "-f", &file_arg, "--format", "json"])).unwrap();
    assert!(plan.is_noop(), "{plan:?}");

    s.write_project("nets", &network_project(IMAGE, "two"));
    // Without the flag: the refusal `up` would fail with, the container kept.
    let out = s.ok(&["plan", "-f", &file_arg]);
    assert!(
        out.contains("keep     nets-app-1   app       up to date"),
        "{out}"
    );
    assert!(
        out.contains("refuse   network   nets_back   its definition changed")
            && out.contains("--recreate-volumes"),
        "{out}"
    );
    // With it: the network replaced, its container recreated with it.
    let plan: Plan = serde_json::from_str(&s.ok(&[
        "plan",
        "-f",
        &file_arg,
        "--recreate-volumes",
        "--format",
        "json",
    ]))
    .unwrap();
    let resources: Vec<_> = plan
        .resources
        .iter()
        .map(|a| (a.kind, a.object, a.name.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        resources,
        vec![(
            ActionKind::Recreate,
            ObjectKind::Network,
            "nets_back",
            "definition changed"
        )]
    );
    let actions: Vec<_> = plan
        .actions
        .iter()
        .map(|a| (a.kind, a.name.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![(
            ActionKind::Recreate,
            "nets-app-1",
            "network nets_back is replaced"
        )]
    );
    // `up --dry-run` plans the same.
    let dry: Plan = serde_json::from_str(&s.ok(&[
        "up",
        "--dry-run",
        "--recreate-volumes",
        "-f",
        &file_arg,
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(dry, plan);
    s.ok(&["down", "-p", "nets"]);
}

#[test]
fn plan_help_says_what_it_does() {
    let s = Sandbox::new();
    let out = s.ok(&["plan", "--help"]);
    assert!(out.contains("changing nothing"), "{out}");
    assert!(out.contains("--format json"), "{out}");
    assert!(out.contains("--profile"), "{out}");
    assert!(out.contains("--recreate-volumes"), "{out}");
}
