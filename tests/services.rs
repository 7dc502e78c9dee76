//! Services as arguments of `exec`, `stop`, `start` and `restart`, against
//! a real engine: in a project folder a service stands for its containers,
//! and container names keep working.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/services:1";

fn state(s: &Sandbox, name: &str) -> String {
    s.inspect(name)["State"]["Status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn started_at(s: &Sandbox, name: &str) -> String {
    s.inspect(name)["State"]["StartedAt"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn services_stand_for_their_containers_in_a_project_folder() {
    let s = Env::with_image(IMAGE);
    let file = s.write_project(
        "svc",
        &format!(
            r#"[project]
name = "svc"

[containers.web]
image = "{IMAGE}"
command = ["sleep", "300"]
replicas = 2
stop_timeout = "1s"

[containers.db]
image = "{IMAGE}"
command = ["sh", "-c", "echo $$ROLE > /role; sleep 300"]
env = {{ ROLE = "database" }}
stop_timeout = "1s"
"#
        ),
    );
    let dir = file.parent().unwrap().to_path_buf();
    s.ok_in(&dir, &["up", "-d"]);

    // ps in the folder: only the project's containers, by service.
    s.ok(&["run", "-d", "--name", "other", IMAGE, "sleep", "300"]);
    let table = s.ok_in(&dir, &["ps"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("SERVICE"), "{table}");
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(names, ["svc-db-1", "svc-web-1", "svc-web-2"], "{table}");
    let json: Value = serde_json::from_str(&s.ok_in(&dir, &["ps", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3, "{json}");
    let global = s.ok_in(&dir, &["ps", "--global"]);
    assert!(
        global.contains("other") && !global.contains("SERVICE"),
        "{global}"
    );
    let outside = s.ok(&["ps"]);
    assert!(
        outside.contains("other") && outside.contains("svc-web-1"),
        "{outside}"
    );
    let by_name = s.ok(&["-p", "svc", "ps"]);
    assert!(
        !by_name.contains("other") && by_name.contains("svc-db-1"),
        "{by_name}"
    );
    s.ok(&["rm", "-f", "other"]);

    // exec SERVICE: runs in the service's first replica.
    let out = s.ok_in(&dir, &["exec", "db", "cat", "/role"]);
    assert_eq!(out.trim(), "database");
    let out = s.ok_in(&dir, &["exec", "web", "hostname"]);
    let v: Value = serde_json::from_str(&s.ok(&["inspect", "svc-web-1"])).unwrap();
    assert_eq!(out.trim(), v[0]["Config"]["Hostname"].as_str().unwrap());

    // stop SERVICE: every replica, and nothing else.
    let out = s.ok_in(&dir, &["stop", "web"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["svc-web-1", "svc-web-2"]);
    assert_eq!(state(&s, "svc-web-1"), "exited");
    assert_eq!(state(&s, "svc-web-2"), "exited");
    assert_eq!(state(&s, "svc-db-1"), "running");

    // start SERVICE.
    s.ok_in(&dir, &["start", "web"]);
    assert_eq!(state(&s, "svc-web-1"), "running");
    assert_eq!(state(&s, "svc-web-2"), "running");

    // restart SERVICE: db starts again, the webs are untouched.
    let web_before = started_at(&s, "svc-web-1");
    let db_before = started_at(&s, "svc-db-1");
    let out = s.ok_in(&dir, &["restart", "db"]);
    assert_eq!(out.trim(), "svc-db-1");
    assert_eq!(state(&s, "svc-db-1"), "running");
    assert_ne!(started_at(&s, "svc-db-1"), db_before);
    assert_eq!(started_at(&s, "svc-web-1"), web_before);

    // Container names still work in the folder.
    s.ok_in(&dir, &["stop", "svc-web-2"]);
    assert_eq!(state(&s, "svc-web-2"), "exited");
    assert_eq!(state(&s, "svc-web-1"), "running");

    // Mixing a service with a container is a usage error naming it.
    let mixed = s.run_in(&dir, &["stop", "web", "svc-db-1"]);
    assert_eq!(mixed.code, 2, "{}", mixed.stderr);
    assert!(
        mixed
            .stderr
            .contains("svc-db-1 is no service of project svc"),
        "{}",
        mixed.stderr
    );
    assert_eq!(state(&s, "svc-web-1"), "running", "nothing was stopped");

    // Outside the folder, `web` is a container name again; `-p` brings the
    // project back without its file.
    let outside = s.run(&["stop", "web"]);
    assert_ne!(outside.code, 0);
    outside.assert_stderr_has("web");
    let out = s.ok(&["-p", "svc", "exec", "db", "cat", "/role"]);
    assert_eq!(out.trim(), "database");

    s.ok_in(&dir, &["down"]);
}

#[test]
fn project_logs_interleave_the_services_in_time_order() {
    let s = Env::with_image(IMAGE);
    // zeta writes first; alpha only starts once zeta completed, so time
    // order is not name order.
    let file = s.write_project(
        "logs",
        &format!(
            r#"[project]
name = "lg"

[containers.zeta]
image = "{IMAGE}"
command = ["sh", "-c", "echo z-one; echo z-err >&2"]

[containers.alpha]
image = "{IMAGE}"
command = ["sh", "-c", "echo a-two"]
depends_on = {{ zeta = "completed" }}

[containers.multi]
image = "{IMAGE}"
command = ["sh", "-c", "echo m-$$HOSTNAME"]
replicas = 2
profiles = ["extra"]
"#
        ),
    );
    let dir = file.parent().unwrap().to_path_buf();
    s.ok_in(&dir, &["up", "-d"]);
    s.ok(&["wait", "lg-alpha-1"]);

    let r = s.run_in(&dir, &["logs"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines, ["zeta  | z-one", "alpha | a-two"], "{}", r.stdout);
    assert_eq!(r.stderr.trim(), "zeta  | z-err");

    // -f ends once every container stopped, with each line once.
    let r = s.run_in(&dir, &["logs", "-f"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);

    // Named services only; -t keeps each line's time.
    let r = s.run_in(&dir, &["logs", "-t", "alpha"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r.stdout.trim();
    assert!(
        line.starts_with("alpha | 20") && line.ends_with(" a-two"),
        "{line}"
    );

    // A container name still gives that container's log alone, unprefixed.
    assert_eq!(
        s.run_in(&dir, &["logs", "lg-zeta-1"]).stdout.trim(),
        "z-one"
    );

    // Replicas are told apart by their number.
    s.ok_in(&dir, &["up", "-d", "--profile", "extra"]);
    s.ok(&["wait", "lg-multi-1", "lg-multi-2"]);
    let r = s.run_in(&dir, &["logs", "multi"]);
    let mut lines: Vec<&str> = r
        .stdout
        .lines()
        .map(|l| &l[..l.find('|').unwrap() + 1])
        .collect();
    lines.sort();
    assert_eq!(lines, ["multi-1 |", "multi-2 |"], "{}", r.stdout);

    // Outside a project, logs wants one container.
    let r = s.run(&["logs"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    s.ok_in(&dir, &["down"]);
}
