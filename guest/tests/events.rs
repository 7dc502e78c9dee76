//! Volume and image events on `GET /events`, for real: volumes made and
//! removed by the API, by containers and by prune; images pulled from a
//! local registry, tagged, pushed, saved, loaded and removed; each read
//! back through Docker's filters.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use servin_testkit::image;
use servin_testkit::registry::RegistryGuard;
use support::{EngineGuard, IMAGE};

fn query(json: &str) -> String {
    form_urlencoded::byte_serialize(json.as_bytes()).collect()
}

/// The events so far that pass `filters` (a JSON filter object).
fn events(e: &EngineGuard, filters: &str) -> Vec<Value> {
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let r = e.api(
        "GET",
        &format!(
            "/v1.47/events?since=1&until={until:.3}&filters={}",
            query(filters)
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    String::from_utf8_lossy(&r.body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(action, actor ID)` of each event.
fn actions(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["Action"].as_str().unwrap().to_string(),
                e["Actor"]["ID"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn attr<'a>(event: &'a Value, key: &str) -> &'a str {
    event["Actor"]["Attributes"][key]
        .as_str()
        .unwrap_or_else(|| {
            panic!("no attribute {key} in {event}");
        })
}

#[test]
fn volume_events_cover_create_mount_unmount_and_destroy() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&["volume", "create", "--label", "team=a", "named"]);
    e.docker_ok(&[
        "run",
        "--name",
        "user",
        "-v",
        "named:/data:ro",
        "-v",
        "/anon",
        "-v",
        "implicit:/imp",
        IMAGE,
        "true",
    ]);
    let c = e.inspect_container("user");
    let id = c["Id"].as_str().unwrap().to_string();
    let anon = c["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();

    let all = events(&e, r#"{"type":["volume"]}"#);
    let seen = actions(&all);
    for (action, name) in [
        ("create", "named"),
        ("create", anon.as_str()),
        ("create", "implicit"),
        ("mount", "named"),
        ("mount", anon.as_str()),
        ("unmount", "named"),
    ] {
        assert!(
            seen.contains(&(action.to_string(), name.to_string())),
            "{action} {name} missing from {seen:?}"
        );
    }
    assert!(all.iter().all(|ev| ev["Type"] == "volume"
        && attr(ev, "driver") == "local"
        && ev["scope"] == "local"));
    let created = &events(&e, r#"{"volume":["named"],"event":["create"]}"#);
    assert_eq!(actions(created), [("create".into(), "named".into())]);
    assert_eq!(attr(&created[0], "team"), "a");

    let mounts = events(&e, r#"{"volume":["named"],"event":["mount"]}"#);
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let m = &mounts[0];
    assert_eq!(attr(m, "container"), id);
    assert_eq!(attr(m, "destination"), "/data");
    assert_eq!(attr(m, "read/write"), "false");
    assert_eq!(attr(m, "propagation"), "");
    let m = &events(&e, &format!(r#"{{"volume":["{anon}"],"event":["mount"]}}"#))[0];
    assert_eq!(attr(m, "read/write"), "true");
    assert_eq!(attr(m, "destination"), "/anon");
    let unmounts = events(&e, r#"{"volume":["named"],"event":["unmount"]}"#);
    assert_eq!(attr(&unmounts[0], "container"), id);
    // The volume's labels are attributes too: the label filter finds them.
    let labelled = actions(&events(&e, r#"{"type":["volume"],"label":["team=a"]}"#));
    assert_eq!(
        labelled,
        [
            ("create".into(), "named".into()),
            ("mount".into(), "named".into()),
            ("unmount".into(), "named".into())
        ]
    );

    // rm -v takes the anonymous volume, volume rm and prune the others.
    e.docker_ok(&["rm", "-v", "user"]);
    e.docker_ok(&["volume", "rm", "named"]);
    e.docker_ok(&["volume", "prune", "-a", "-f"]);
    let destroyed = actions(&events(&e, r#"{"type":["volume"],"event":["destroy"]}"#));
    let mut names: Vec<&str> = destroyed.iter().map(|(_, n)| n.as_str()).collect();
    names.sort();
    let mut want = vec![anon.as_str(), "implicit", "named"];
    want.sort();
    assert_eq!(names, want);
    // Volume filters pass no container or network event.
    assert!(
        events(&e, r#"{"volume":["named"]}"#)
            .iter()
            .all(|ev| ev["Type"] == "volume")
    );
}

#[test]
fn image_events_cover_pull_tag_push_save_load_untag_and_delete() {
    let registry = RegistryGuard::start();
    let e = EngineGuard::start();
    let img = image::one_file("hello", b"hi", "amd64");
    registry.push("ev/img", "v1", &img);
    let name = format!("{}/ev/img:v1", registry.addr());
    e.docker_ok(&["pull", &name]);
    let id = e
        .docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name])
        .trim()
        .to_string();

    let pulls = events(&e, r#"{"type":["image"],"event":["pull"]}"#);
    assert_eq!(actions(&pulls), [("pull".to_string(), name.clone())]);
    assert_eq!(attr(&pulls[0], "name"), name);
    assert_eq!(attr(&pulls[0], "test"), "amd64", "the image's labels");
    assert_eq!(pulls[0]["status"], "pull", "the older fields");
    assert_eq!(pulls[0]["id"], name.as_str());

    let pushed = format!("{}/ev/pushed:v2", registry.addr());
    e.docker_ok(&["tag", &name, &pushed]);
    e.docker_ok(&["push", &pushed]);
    let tags = events(&e, r#"{"type":["image"],"event":["tag"]}"#);
    assert_eq!(actions(&tags), [("tag".to_string(), id.clone())]);
    assert_eq!(attr(&tags[0], "name"), pushed);
    assert_eq!(attr(&tags[0], "test"), "amd64");
    let pushes = events(&e, r#"{"event":["push"]}"#);
    assert_eq!(actions(&pushes), [("push".to_string(), pushed.clone())]);

    let tar = e.dir.path().join("img.tar");
    e.docker_ok(&["save", "-o", tar.to_str().unwrap(), &name]);
    assert_eq!(
        actions(&events(&e, r#"{"event":["save"]}"#)),
        [("save".to_string(), id.clone())]
    );

    // One tag goes: untag only. The last: untag (tag and digest) and delete.
    e.docker_ok(&["rmi", &pushed]);
    e.docker_ok(&["rmi", &name]);
    let removal = actions(&events(
        &e,
        r#"{"type":["image"],"event":["untag","delete"]}"#,
    ));
    assert!(removal.iter().all(|(_, actor)| *actor == id), "{removal:?}");
    assert_eq!(
        removal.iter().filter(|(a, _)| a == "delete").count(),
        1,
        "{removal:?}"
    );
    assert_eq!(removal.last().unwrap().0, "delete", "{removal:?}");
    assert!(removal.iter().filter(|(a, _)| a == "untag").count() >= 2);

    e.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    let loads = events(&e, r#"{"event":["load"]}"#);
    assert_eq!(actions(&loads), [("load".to_string(), id.clone())]);
    assert_eq!(attr(&loads[0], "name"), id);

    // The image filter: by name, by name without the tag (a pull's actor
    // is its name), by ID (a tag's actor is the ID); the label filter on
    // the image's labels.
    let repo = format!("{}/ev/img", registry.addr());
    let short = &id[..19];
    for f in [id.as_str(), short] {
        let got = actions(&events(
            &e,
            &format!(r#"{{"image":["{f}"],"event":["tag"]}}"#),
        ));
        assert_eq!(got, [("tag".to_string(), id.clone())], "filter {f}");
    }
    for f in [name.as_str(), repo.as_str()] {
        let got = actions(&events(
            &e,
            &format!(r#"{{"image":["{f}"],"event":["pull"]}}"#),
        ));
        assert_eq!(got, [("pull".to_string(), name.clone())], "filter {f}");
    }
    assert_eq!(
        events(&e, r#"{"type":["image"],"label":["test=amd64"]}"#).len(),
        events(&e, r#"{"type":["image"]}"#).len()
    );
    assert!(events(&e, r#"{"type":["image"],"label":["test=arm64"]}"#).is_empty());
    assert!(events(&e, r#"{"type":["volume","network"],"event":["pull"]}"#).is_empty());
}
