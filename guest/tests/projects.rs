//! The reconciler's plan against a real engine: containers made with the
//! project labels, then `POST /servin/v1/projects/{name}/plan`; and applies
//! that wait for images still being built, reported on
//! `POST /servin/v1/projects/{name}/applies/{apply}/images`.
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

/// An apply streamed as it runs: its events arrive on `lines`.
struct Streamed {
    apply: String,
    /// The connection, to leave early.
    socket: std::os::unix::net::UnixStream,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    reader: std::thread::JoinHandle<()>,
}

/// Starts `POST .../apply` of `d` and reads its answer's head; the events
/// are read on a thread of their own as they come.
fn start_apply(e: &EngineGuard, d: &DesiredProject) -> Streamed {
    use std::io::{BufRead, BufReader, Read, Write};
    let body = serde_json::to_vec(d).unwrap();
    let mut stream = std::os::unix::net::UnixStream::connect(e.socket()).unwrap();
    write!(
        stream,
        "POST {} HTTP/1.1\r\nHost: engine\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        servin_proto::apply_path(&d.name),
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let socket = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut apply = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if line.starts_with("HTTP/1.1") {
            assert!(line.contains(" 200 "), "{line}\n{}", e.log());
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case(servin_proto::APPLY_ID_HEADER)
        {
            apply = Some(v.trim().to_string());
        }
    }
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        // Chunked: a hex size line, the data, CRLF; the data holds JSON lines.
        let mut pending = Vec::new();
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                return;
            }
            let mut data = vec![0; n + 2];
            reader.read_exact(&mut data).unwrap();
            pending.extend_from_slice(&data[..n]);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                let _ = tx.send(serde_json::from_slice(&line).unwrap());
            }
        }
    });
    Streamed {
        apply: apply.expect("the apply names itself when it waits for images"),
        socket,
        lines,
        reader,
    }
}

impl Streamed {
    /// Reads events until one read so far matches `want`; every event read
    /// so far.
    fn until(
        &self,
        seen: &mut Vec<serde_json::Value>,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        while !seen.iter().any(&want) {
            let v = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no such event in {seen:?}"));
            seen.push(v);
        }
        seen.clone()
    }
}

fn report_image(
    e: &EngineGuard,
    apply: &str,
    v: serde_json::Value,
) -> servin_testkit::http::Response {
    e.api(
        "POST",
        &servin_proto::built_image_path("shop", apply),
        &[("Content-Type", "application/json")],
        v.to_string().as_bytes(),
    )
}

fn step_is(v: &serde_json::Value, name: &str, status: &str) -> bool {
    v["type"] == "step" && v["name"] == name && v["status"] == status
}

#[test]
fn containers_wait_for_their_own_pending_image_only() {
    let e = EngineGuard::start();
    e.load_container_image(IMAGE);
    let image_id = e
        .docker_ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .trim()
        .to_string();
    let service = |name: &str, image: &str, deps: &[&str]| {
        let mut c = desired(name, 1, projection(name, "x"), deps);
        for d in &mut c.depends_on {
            d.condition = Condition::Started;
        }
        c.image = image.into();
        c.body.cmd = Some(vec!["sleep".into(), "300".into()]);
        c.body.host_config = Some(bollard_stubs::models::HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        });
        c
    };
    let d = DesiredProject {
        name: "shop".into(),
        containers: vec![
            service("after", IMAGE, &["slow"]),
            service("broken", "shop-broken", &[]),
            service("fast", IMAGE, &[]),
            service("slow", "shop-slow", &[]),
        ],
        pending_images: vec!["shop-broken".into(), "shop-slow".into()],
        ..Default::default()
    };
    let s = start_apply(&e, &d);
    let mut events = Vec::new();
    // The container whose image is here starts while the others wait.
    let seen = s.until(&mut events, |v| step_is(v, "shop-fast-1", "done"));
    assert!(
        seen.iter()
            .any(|v| step_is(v, "shop-slow", "working") && v["message"] == "building"),
        "{seen:?}"
    );
    let seen = s.until(&mut events, |v| {
        step_is(v, "shop-slow-1", "working")
            && v["message"] == "waiting for image shop-slow (building)"
    });
    assert!(
        !seen
            .iter()
            .any(|v| v["name"] == "shop-after-1" && v["status"] != "working")
    );
    for name in ["shop-slow-1", "shop-broken-1", "shop-after-1"] {
        assert_ne!(
            e.docker(&["inspect", name]).status.code(),
            Some(0),
            "{name} exists"
        );
    }

    // Bad reports are refused with what is wrong.
    let r = report_image(&e, "1-1", json!({"reference": "shop-slow", "id": image_id}));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.text()
            .contains("project shop has no apply 1-1 waiting for built images"),
        "{}",
        r.text()
    );
    let r = report_image(
        &e,
        &s.apply,
        json!({"reference": "shop-db", "id": image_id}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.text().contains("waits for no image shop-db"),
        "{}",
        r.text()
    );
    let r = report_image(&e, &s.apply, json!({"reference": "shop-slow"}));
    assert_eq!(r.status, 400, "{}", r.text());

    let r = report_image(
        &e,
        &s.apply,
        json!({"reference": "shop-slow", "id": image_id}),
    );
    assert_eq!(r.status, 204, "{}\n{}", r.text(), e.log());
    let r = report_image(
        &e,
        &s.apply,
        json!({"reference": "shop-slow", "id": image_id}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let r = report_image(
        &e,
        &s.apply,
        json!({"reference": "shop-broken", "error": "step 2/2 RUN false: exit status 1"}),
    );
    assert_eq!(r.status, 204, "{}", r.text());

    let seen = s.until(&mut events, |v| v["type"] == "summary");
    let summary = seen.last().unwrap();
    let failed: Vec<(String, String)> = summary["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        failed.len(),
        2,
        "only the broken image and its container fail: {failed:?}"
    );
    assert!(failed.contains(&(
        "shop-broken".to_string(),
        "build: step 2/2 RUN false: exit status 1".to_string()
    )));
    assert!(
        failed.contains(&(
            "shop-broken-1".to_string(),
            "not started: image shop-broken could not be built: step 2/2 RUN false: exit status 1"
                .to_string()
        ))
    );
    s.reader.join().unwrap();

    // The slow one runs the reported image, by ID, started after the fast one.
    let slow = e.inspect_container("shop-slow-1");
    assert_eq!(slow["Image"], image_id.as_str());
    assert_eq!(slow["State"]["Running"], true);
    let started = |name: &str| {
        let v = e.inspect_container(name);
        chrono::DateTime::parse_from_rfc3339(v["State"]["StartedAt"].as_str().unwrap()).unwrap()
    };
    assert!(started("shop-fast-1") < started("shop-slow-1"));
    assert!(started("shop-slow-1") <= started("shop-after-1"));
    // The apply is over: its table is gone.
    let r = report_image(
        &e,
        &s.apply,
        json!({"reference": "shop-broken", "id": image_id}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn an_apply_whose_client_leaves_stops_waiting_for_its_images() {
    let e = EngineGuard::start();
    e.load_container_image(IMAGE);
    let mut c = desired("slow", 1, projection("slow", "x"), &[]);
    c.image = "shop-slow".into();
    let d = DesiredProject {
        name: "shop".into(),
        containers: vec![c],
        pending_images: vec!["shop-slow".into()],
        ..Default::default()
    };
    let s = start_apply(&e, &d);
    let mut events = Vec::new();
    s.until(&mut events, |v| {
        step_is(v, "shop-slow-1", "working")
            && v["message"] == "waiting for image shop-slow (building)"
    });
    s.socket.shutdown(std::net::Shutdown::Both).unwrap();
    s.reader.join().unwrap();
    // The apply ends (its table with it) although nothing was reported.
    servin_testkit::wait::eventually("the apply ends once its client left", || {
        report_image(
            &e,
            &s.apply,
            json!({"reference": "shop-slow", "id": "sha256:00"}),
        )
        .status
            == 404
    });
    assert_ne!(e.docker(&["inspect", "shop-slow-1"]).status.code(), Some(0));
}
