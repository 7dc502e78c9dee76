//! `servin up` and `servin down` against a real engine: a project of a
//! test-built busybox image comes up, converges, changes, and goes away.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use servin_testkit::cleanup::mounts_below;
use servin_testkit::probe::free_port;
use support::Run;
use support::network_project;
use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/up:1";

fn sandbox() -> Env {
    Env::with_image(IMAGE)
}

/// A project: `db` becomes healthy once it wrote its marker; `web`
/// depends on it being healthy; `db` keeps its data in volume `data`.
fn project(web_level: Option<&str>) -> String {
    let mut f = format!(
        r#"[project]
name = "demo"

[volumes.data]

[containers.db]
image = "{IMAGE}"
command = ["sh", "-c", "sleep 1; echo ok > /data/ready; sleep 300"]
volumes = ["data:/data"]
stop_timeout = "1s"
healthcheck = {{ cmd = "cat /data/ready", interval = "1s", retries = 60 }}
"#
    );
    if let Some(level) = web_level {
        f.push_str(&format!(
            r#"
[containers.web]
image = "{IMAGE}"
command = ["sleep", "300"]
env = {{ LEVEL = "{level}" }}
stop_timeout = "1s"
depends_on = {{ db = "healthy" }}
"#
        ));
    }
    f
}

fn write_project(s: &Sandbox, text: &str) -> String {
    s.write_project("demo", text).to_str().unwrap().to_string()
}

/// The project's containers: name to (ID, state).
fn containers(s: &Sandbox, project: &str) -> Vec<(String, String, String)> {
    let out = s.ok(&["ps", "-a", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut list: Vec<(String, String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["Labels"]["servin.project"] == project)
        .map(|c| {
            let name = c["Names"][0].as_str().unwrap().trim_start_matches('/');
            (
                name.to_string(),
                c["Id"].as_str().unwrap().to_string(),
                c["State"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    list.sort();
    list
}

fn up(s: &Sandbox, file: &str) -> Run {
    s.run(&["up", "-d", "-f", file])
}

fn up_ok(s: &Sandbox, file: &str) -> String {
    let r = up(s, file);
    assert_eq!(
        r.code, 0,
        "up failed\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r.stderr
}

#[test]
fn up_converges_changes_exactly_what_changed_and_down_leaves_nothing() {
    let s = sandbox();
    let file = write_project(&s, &project(Some("info")));

    // Cold: everything is made; web starts after db is healthy.
    let out = up_ok(&s, &file);
    assert!(out.contains("2 created"), "{out}");
    let first = containers(&s, "demo");
    let names: Vec<&str> = first.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, vec!["demo-db-1", "demo-web-1"]);
    assert!(first.iter().all(|c| c.2 == "running"), "{first:?}");
    let db = s.inspect("demo-db-1");
    let web = s.inspect("demo-web-1");
    let healthy_at = db["State"]["Health"]["Log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ExitCode"] == 0)
        .map(|l| l["End"].as_str().unwrap().to_string())
        .expect("db passed a health check");
    let web_started = web["State"]["StartedAt"].as_str().unwrap().to_string();
    assert_eq!(
        healthy_at.len(),
        web_started.len(),
        "{healthy_at} {web_started}"
    );
    assert!(
        web_started > healthy_at,
        "web started at {web_started}, before db was healthy at {healthy_at}"
    );
    let networks = s.ok(&["network", "ls", "--format", "json"]);
    assert!(networks.contains("demo_default"), "{networks}");
    let volumes = s.ok(&["volume", "ls", "--format", "json"]);
    assert!(volumes.contains("demo_data"), "{volumes}");

    // Again: nothing changes.
    let out = up_ok(&s, &file);
    assert!(out.contains("2 unchanged"), "{out}");
    assert!(
        !out.contains("created") && !out.contains("recreated"),
        "{out}"
    );
    assert_eq!(containers(&s, "demo"), first);

    // web's env changes: exactly web is recreated, db is kept.
    let file = write_project(&s, &project(Some("debug")));
    let out = up_ok(&s, &file);
    assert!(out.contains("1 recreated, 1 unchanged"), "{out}");
    let second = containers(&s, "demo");
    assert_eq!(second[0], first[0], "db untouched");
    assert_eq!(second[1].0, "demo-web-1");
    assert_ne!(second[1].1, first[1].1, "web is a new container");
    assert_eq!(second[1].2, "running");
    let env = s.inspect("demo-web-1")["Config"]["Env"].to_string();
    assert!(env.contains("LEVEL=debug"), "{env}");
    assert_eq!(second.len(), 2, "no temporary container left: {second:?}");

    // A changed volume definition is refused, never applied silently.
    let relabelled = project(Some("debug")).replace(
        "[volumes.data]",
        "[volumes.data]\nlabels = { tier = \"db\" }",
    );
    let file = write_project(&s, &relabelled);
    let r = up(&s, &file);
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("up never replaces a volume");
    assert_eq!(containers(&s, "demo"), second);

    // web leaves the file: the next up removes it.
    let file = write_project(&s, &project(None));
    let out = up_ok(&s, &file);
    assert!(out.contains("1 unchanged, 1 removed"), "{out}");
    let third = containers(&s, "demo");
    assert_eq!(third, vec![first[0].clone()]);

    // down by name, without the file: nothing of the project is left.
    let out = s.ok(&["down", "-p", "demo", "--volumes"]);
    let _ = out;
    assert!(containers(&s, "demo").is_empty());
    let networks = s.ok(&["network", "ls", "--format", "json"]);
    assert!(!networks.contains("demo_"), "{networks}");
    let volumes = s.ok(&["volume", "ls", "--format", "json"]);
    assert!(!volumes.contains("demo_data"), "{volumes}");
    let mounts = mounts_below(&s.root().join("containers"));
    assert!(mounts.is_empty(), "{mounts:?}");
}

#[test]
fn a_failed_dependency_fails_its_chain_and_other_branches_go_on() {
    let s = sandbox();
    let text = format!(
        r#"[project]
name = "chain"

[containers.job]
image = "{IMAGE}"
command = ["sh", "-c", "exit 3"]

[containers.after]
image = "{IMAGE}"
command = ["sleep", "300"]
depends_on = {{ job = "completed" }}

[containers.last]
image = "{IMAGE}"
command = ["sleep", "300"]
depends_on = ["after"]

[containers.solo]
image = "{IMAGE}"
command = ["sleep", "300"]
stop_timeout = "1s"
"#
    );
    let file = write_project(&s, &text);
    let r = up(&s, &file);
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("job did not become completed: chain-job-1 exited with status 3");
    r.assert_stderr_has("dependency chain last -> after -> job failed");
    let list = containers(&s, "chain");
    let state = |n: &str| list.iter().find(|c| c.0 == n).map(|c| c.2.clone());
    assert_eq!(state("chain-solo-1").as_deref(), Some("running"));
    assert_eq!(state("chain-after-1"), None, "after was never created");
    assert_eq!(state("chain-last-1"), None);
    s.ok(&["down", "-f", &file, "-t", "0"]);
    assert!(containers(&s, "chain").is_empty());
}

#[test]
fn a_leftover_of_an_interrupted_recreate_is_cleaned_and_up_converges() {
    let s = sandbox();
    let file = write_project(&s, &project(Some("info")));
    up_ok(&s, &file);
    let before = containers(&s, "demo");
    // As a recreate killed between making the new container and renaming
    // it leaves things: a stopped copy under the temporary name.
    let web = s.inspect("demo-web-1");
    let mut args = vec![
        "create".to_string(),
        "--name".into(),
        format!("demo-web-1{}", servin_proto::TEMPORARY_SUFFIX),
    ];
    for (k, v) in web["Config"]["Labels"].as_object().unwrap() {
        args.push("--label".into());
        args.push(format!("{k}={}", v.as_str().unwrap()));
    }
    args.extend([IMAGE.to_string(), "sleep".into(), "300".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.ok(&args);
    assert_eq!(containers(&s, "demo").len(), 3);

    let out = up_ok(&s, &file);
    assert!(out.contains("left by an interrupted apply"), "{out}");
    assert_eq!(containers(&s, "demo"), before);
    s.ok(&["down", "-p", "demo", "--volumes"]);
}

#[test]
fn up_and_down_help_say_what_they_do() {
    let s = Sandbox::new();
    let out = s.ok(&["up", "--help"]);
    assert!(
        out.contains("--dry-run")
            && out.contains("depends_on")
            && out.contains("--recreate-volumes"),
        "{out}"
    );
    let out = s.ok(&["down", "--help"]);
    assert!(out.contains("--volumes") && out.contains("labels"), "{out}");
}

#[test]
fn an_external_volume_must_exist() {
    let s = sandbox();
    let text = format!(
        r#"[project]
name = "ext"

[volumes.shared]
external = true

[containers.app]
image = "{IMAGE}"
command = ["sleep", "300"]
volumes = ["shared:/data"]
"#
    );
    let file = write_project(&s, &text);
    let r = up(&s, &file);
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("is external (made outside the project) but does not exist");
    assert!(containers(&s, "ext").is_empty());

    // Once it exists, it is used as it is, and down leaves it.
    s.ok(&["volume", "create", "shared"]);
    up_ok(&s, &file);
    assert_eq!(containers(&s, "ext")[0].2, "running");
    s.ok(&["down", "-p", "ext", "--volumes", "--rmi", "all"]);
    assert!(containers(&s, "ext").is_empty());
    let volumes = s.ok(&["volume", "ls", "--format", "json"]);
    assert!(volumes.contains("\"shared\""), "{volumes}");
    let images = s.ok(&["images"]);
    assert!(!images.contains("test/up"), "{images}");
}

/// Reads `child`'s stderr until a line contains `needle`; returns what was
/// read.
fn read_until(stderr: &mut impl std::io::BufRead, needle: &str) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains(needle) {
            break;
        }
        line.clear();
    }
    assert!(seen.contains(needle), "no {needle:?} in:\n{seen}");
    seen
}

#[test]
fn a_second_up_of_the_project_waits_for_the_first() {
    use std::io::BufReader;
    use std::process::Stdio;
    let s = sandbox();
    // db is healthy only once the test says so.
    let text = project(Some("info")).replace("sleep 1; echo ok > /data/ready; ", "");
    let file = write_project(&s, &text);
    s.ok(&["ps"]);
    let spawn = || {
        s.command(&["up", "-d", "-f", &file])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn();
    let mut first_err = BufReader::new(first.stderr.take().unwrap());
    read_until(&mut first_err, "waiting for db to become healthy");
    let mut second = spawn();
    let mut second_err = BufReader::new(second.stderr.take().unwrap());
    read_until(&mut second_err, "waiting for another apply or down");
    // The first still holds the project: nothing of the second happened.
    assert_eq!(containers(&s, "demo").len(), 1);

    s.ok(&["exec", "demo-db-1", "sh", "-c", "echo ok > /data/ready"]);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut first_err, &mut rest).unwrap();
    assert!(first.wait().unwrap().success(), "{rest}");
    assert!(rest.contains("2 created"), "{rest}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut second_err, &mut rest).unwrap();
    assert!(second.wait().unwrap().success(), "{rest}");
    assert!(rest.contains("2 unchanged"), "{rest}");
    let list = containers(&s, "demo");
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|c| c.2 == "running"), "{list:?}");
    s.ok(&["down", "-p", "demo", "--volumes"]);
}

#[test]
fn up_converges_after_the_engine_is_killed_in_the_middle() {
    let s = sandbox();
    let file = write_project(&s, &project(Some("info")));
    // db is made and started; web waits for it to become healthy.
    let r = up_killed_after(&s, &file, "waiting for db to become healthy");
    assert_ne!(r.code, 0, "the interrupted up fails: {}", r.stderr);

    // Run again (the engine starts anew): it converges, nothing doubled.
    up_ok(&s, &file);
    let list = containers(&s, "demo");
    let names: Vec<&str> = list.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, vec!["demo-db-1", "demo-web-1"], "{list:?}");
    assert!(list.iter().all(|c| c.2 == "running"), "{list:?}");
    unchanged_then_down(&s, &file, "demo", &[], "");
}

/// Runs `up -d` of `file` and kills the engine as soon as the up's output
/// holds `needle`: how the up ended and all it printed.
fn up_killed_after(s: &Sandbox, file: &str, needle: &str) -> Run {
    use std::io::{BufReader, Read as _};
    use std::process::Stdio;
    s.ok(&["ps"]);
    let mut child = s
        .command(&["up", "-d", "-f", file])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = read_until(&mut stderr, needle);
    let pids = s.engine_pids();
    assert!(!pids.is_empty());
    for pid in pids {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    stderr.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: seen,
    }
}

/// A second `up` of `file` changes nothing, and `down --volumes` (with
/// `down_flags`) of `project` then leaves no container; `seen` is added to
/// the messages.
fn unchanged_then_down(s: &Sandbox, file: &str, project: &str, down_flags: &[&str], seen: &str) {
    let out = up_ok(s, file);
    assert!(out.contains("2 unchanged"), "{out}\n{seen}");
    let mut down = vec!["down", "-p", project, "--volumes"];
    down.extend_from_slice(down_flags);
    s.ok(&down);
    assert!(containers(s, project).is_empty());
}

#[test]
fn up_without_detach_prints_the_output_until_ctrl_c_stops_the_containers() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let s = sandbox();
    let text = format!(
        r#"[project]
name = "att"

[containers.alpha]
image = "{IMAGE}"
command = ["sh", "-c", "echo hello from alpha; echo oops >&2; sleep 300"]
stop_timeout = "1s"

[containers.beta]
image = "{IMAGE}"
command = ["sh", "-c", "echo hello from beta; sleep 300"]
stop_timeout = "1s"
"#
    );
    let file = write_project(&s, &text);
    let mut child = s
        .command(&["up", "-f", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let mut line = String::new();
    while seen.len() < 3 && out.read_line(&mut line).unwrap() > 0 {
        seen.push(line.trim_end().to_string());
        line.clear();
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "att-alpha-1 | hello from alpha",
            "att-alpha-1 | oops",
            "att-beta-1  | hello from beta",
        ]
    );
    let running = containers(&s, "att");
    assert!(running.iter().all(|c| c.2 == "running"), "{running:?}");

    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let r = Sandbox::output(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("stopping the containers");
    let stopped = containers(&s, "att");
    assert_eq!(stopped.len(), 2);
    assert!(stopped.iter().all(|c| c.2 == "exited"), "{stopped:?}");
    s.ok(&["down", "-p", "att"]);
}

#[test]
fn up_of_some_services_and_a_failed_recreate_keeps_the_old_container() {
    let s = sandbox();
    let mut text = project(Some("info"));
    text.push_str(&format!(
        r#"
[containers.tool]
image = "{IMAGE}"
command = ["sleep", "300"]
stop_timeout = "1s"
"#
    ));
    let file = write_project(&s, &text);

    // Only web, and db because web depends on it.
    let r = s.run(&["up", "-d", "-f", &file, "web"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<String> = containers(&s, "demo").into_iter().map(|c| c.0).collect();
    assert_eq!(names, vec!["demo-db-1", "demo-web-1"]);
    let r = s.run(&["up", "-d", "-f", &file, "nosuch"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.assert_stderr_has("no service nosuch");

    // web's image cannot be had: the old web keeps running.
    let before = containers(&s, "demo");
    let broken = text.replacen(
        &format!("image = \"{IMAGE}\"\ncommand = [\"sleep\", \"300\"]\nenv"),
        "image = \"127.0.0.1:1/none:1\"\ncommand = [\"sleep\", \"300\"]\nenv",
        1,
    );
    assert_ne!(broken, text);
    let file = write_project(&s, &broken);
    let r = up(&s, &file);
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("127.0.0.1:1/none:1");
    let after = containers(&s, "demo");
    let web = |l: &[(String, String, String)]| l.iter().find(|c| c.0 == "demo-web-1").cloned();
    assert_eq!(web(&after), web(&before), "the old web still runs");
    assert_eq!(
        after
            .iter()
            .find(|c| c.0 == "demo-tool-1")
            .map(|c| c.2.as_str()),
        Some("running"),
        "an independent service went on"
    );
    s.ok(&["down", "-p", "demo", "--volumes"]);
}

#[test]
fn replicas_come_and_go_with_the_count() {
    let s = sandbox();
    let text = |n: u32| {
        format!(
            r#"[project]
name = "rep"

[containers.worker]
image = "{IMAGE}"
command = ["sleep", "300"]
stop_timeout = "1s"
replicas = {n}
"#
        )
    };
    let file = write_project(&s, &text(3));
    let out = up_ok(&s, &file);
    assert!(out.contains("3 created"), "{out}");
    let names: Vec<String> = containers(&s, "rep").into_iter().map(|c| c.0).collect();
    assert_eq!(names, vec!["rep-worker-1", "rep-worker-2", "rep-worker-3"]);

    let file = write_project(&s, &text(1));
    let out = up_ok(&s, &file);
    assert!(out.contains("1 unchanged, 2 removed"), "{out}");
    let names: Vec<String> = containers(&s, "rep").into_iter().map(|c| c.0).collect();
    assert_eq!(names, vec!["rep-worker-1"]);
    s.ok(&["down", "-p", "rep", "-t", "0"]);
    assert!(containers(&s, "rep").is_empty());
}

#[test]
fn a_project_serves_http_on_a_published_port_and_reaches_services_by_name() {
    let s = sandbox();
    let port = free_port();
    let text = format!(
        r#"[project]
name = "site"

[volumes.www]

[containers.files]
image = "{IMAGE}"
command = ["sh", "-c", "mkdir -p /www && echo hello from the volume > /www/index.html && exec busybox httpd -f -p 80 -h /www"]
volumes = ["www:/www"]
stop_timeout = "1s"

[containers.front]
image = "{IMAGE}"
command = ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
volumes = ["www:/www:ro"]
ports = ["127.0.0.1:{port}:80"]
stop_timeout = "1s"
depends_on = ["files"]
"#
    );
    let file = write_project(&s, &text);
    up_ok(&s, &file);

    // One service reaches another by its name.
    let mut fetched = String::new();
    for _ in 0..50 {
        let r = s.run(&[
            "exec",
            "site-front-1",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://files/",
        ]);
        if r.code == 0 {
            fetched = r.stdout;
            break;
        }
        // httpd may not listen yet: "started" means its process runs.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(fetched.trim(), "hello from the volume");

    // The host reaches the published port.
    let body = support::http_get_until(port, "/", "hello");
    assert!(body.contains("hello from the volume"), "{body}");
    s.ok(&["down", "-p", "site", "--volumes", "-t", "0"]);
    assert!(containers(&s, "site").is_empty());
}

#[test]
fn a_changed_volume_is_refused_unless_recreate_volumes_is_given() {
    let s = sandbox();
    let file = write_project(&s, &project(Some("info")));
    up_ok(&s, &file);
    s.ok(&["exec", "demo-db-1", "sh", "-c", "echo old > /data/kept"]);
    let before = containers(&s, "demo");

    let changed = project(Some("info")).replace(
        "[volumes.data]\n",
        "[volumes.data]\nlabels = { tier = \"gold\" }\n",
    );
    assert_ne!(changed, project(Some("info")));
    let file = write_project(&s, &changed);
    let r = up(&s, &file);
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("--recreate-volumes");
    // Nothing changed: same containers, the data is still there.
    assert_eq!(containers(&s, "demo"), before);
    s.ok(&["exec", "demo-db-1", "cat", "/data/kept"]);

    let r = s.run(&["up", "-d", "--recreate-volumes", "-f", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = containers(&s, "demo");
    let names: Vec<&str> = after.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, vec!["demo-db-1", "demo-web-1"], "{after:?}");
    assert!(after.iter().all(|c| c.2 == "running"), "{after:?}");
    assert_ne!(after[0].1, before[0].1, "db was recreated");
    // The volume is new: the old data is gone.
    let r = s.run(&["exec", "demo-db-1", "cat", "/data/kept"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let out = up_ok(&s, &file);
    assert!(out.contains("2 unchanged"), "{out}");
    s.ok(&["down", "-p", "demo", "--volumes"]);
}

/// After `up` converged: one running container per service with the
/// right names, no leftover of a recreate, every network's addresses
/// held by existing containers only, no mount of a container gone.
fn assert_converged(s: &Sandbox, seen: &str) {
    let list = containers(s, "demo");
    let names: Vec<&str> = list.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, vec!["demo-db-1", "demo-web-1"], "{list:?}\n{seen}");
    assert!(list.iter().all(|c| c.2 == "running"), "{list:?}\n{seen}");
    let all: Value = serde_json::from_str(&s.ok(&["ps", "-a", "--format", "json"])).unwrap();
    let ids: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "no other container: {all}");
    let running: Vec<&str> = list.iter().map(|c| c.1.as_str()).collect();
    let mut project_addresses = 0;
    for entry in std::fs::read_dir(s.root().join("networks")).unwrap() {
        let path = entry.unwrap().path().join("network.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let net: Value = serde_json::from_str(&text).unwrap();
        let endpoints = net["endpoints"].as_object().cloned().unwrap_or_default();
        let mut addresses: Vec<&str> = Vec::new();
        for (id, e) in &endpoints {
            assert!(
                running.contains(&id.as_str()),
                "{}: address {} of container {id}, which does not run\n{seen}",
                path.display(),
                e["ipv4"]
            );
            addresses.push(e["ipv4"].as_str().unwrap());
        }
        let count = addresses.len();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), count, "{}: {text}", path.display());
        if net["labels"]["servin.project"] == "demo" {
            project_addresses += count;
        }
    }
    assert_eq!(project_addresses, 2, "one address per running container");
    let mounts = mounts_below(&s.root());
    assert!(!mounts.is_empty(), "the running containers' mounts");
    for m in mounts {
        assert!(
            ids.iter().any(|id| m.contains(id.as_str())),
            "stray mount {m}\n{seen}"
        );
    }
}

#[test]
fn up_converges_after_the_engine_is_killed_at_several_points() {
    for needle in [
        "network demo_default: created",
        "container demo-db-1: created and started",
        "waiting for db to become healthy",
    ] {
        let s = sandbox();
        let file = write_project(&s, &project(Some("info")));
        let killed = up_killed_after(&s, &file, needle);
        let seen = format!("killed after {needle:?}:\n{}", killed.stderr);

        let again = s.run(&["up", "-d", "-f", &file]);
        assert_eq!(again.code, 0, "{seen}\nup again: {}", again.stderr);
        let seen = format!("{seen}\nup again:\n{}", again.stderr);
        assert_converged(&s, &seen);
        unchanged_then_down(&s, &file, "demo", &[], &seen);
    }
}

#[test]
fn a_changed_network_is_replaced_with_its_containers_only_with_recreate_volumes() {
    let s = sandbox();
    let text = |tier: &str| network_project(IMAGE, tier);
    let file = write_project(&s, &text("one"));
    up_ok(&s, &file);
    let before = containers(&s, "nets");
    let net = |s: &Sandbox| -> Value {
        let v: Value = serde_json::from_str(&s.ok(&["network", "inspect", "nets_back"])).unwrap();
        v[0].clone()
    };
    let net_before = net(&s);

    let file = write_project(&s, &text("two"));
    let r = up(&s, &file);
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("--recreate-volumes");
    assert_eq!(containers(&s, "nets"), before);

    let r = s.run(&["up", "-d", "--recreate-volumes", "-f", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = containers(&s, "nets");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].0, "nets-app-1");
    assert_eq!(after[0].2, "running");
    assert_ne!(after[0].1, before[0].1, "app was recreated");
    let net_after = net(&s);
    assert_ne!(net_after["Id"], net_before["Id"], "{net_after}");
    assert_eq!(net_after["Labels"]["tier"], "two", "{net_after}");
    s.ok(&["down", "-p", "nets"]);
}

/// `examples/hello` as shipped (its image is the test image under the name
/// the example uses; its host port moved to a free one, so the test never
/// fights another program for 8080): it comes up, answers over HTTP from
/// the data in its volume, one service reaches the other by name, a second
/// `up` changes nothing and `down --volumes` leaves nothing.
#[test]
fn the_hello_example_comes_up_serves_its_page_and_goes_away() {
    let s = sandbox();
    s.ok(&["tag", IMAGE, "servin/hello:1"]);
    let port = free_port();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/hello/servin.toml"
    ))
    .unwrap();
    assert!(shipped.contains("127.0.0.1:8080:80"), "{shipped}");
    let file = write_project(
        &s,
        &shipped.replace("127.0.0.1:8080:80", &format!("127.0.0.1:{port}:80")),
    );
    up_ok(&s, &file);
    let names: Vec<String> = containers(&s, "hello").into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["hello-files-1", "hello-front-1"]);

    let body = support::http_get_until(port, "/", "hello from servin");
    assert!(body.contains("hello from servin"), "{body}");
    let fetched = s.ok(&[
        "exec",
        "hello-front-1",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "http://files/",
    ]);
    assert_eq!(fetched.trim(), "hello from servin");

    unchanged_then_down(&s, &file, "hello", &["-t", "0"], "");
    let volumes = s.ok(&["volume", "ls", "-q"]);
    assert!(!volumes.contains("hello_www"), "{volumes}");
}

#[test]
fn a_short_bind_to_a_missing_folder_is_made_at_up_and_the_long_form_is_refused() {
    let s = sandbox();
    let file = write_project(
        &s,
        &format!(
            r#"[project]
name = "binds"

[containers.app]
image = "{IMAGE}"
command = ["sh", "-c", "echo made > /site/f; sleep 300"]
volumes = ["./site:/site"]
stop_timeout = "1s"
"#
        ),
    );
    let dir = std::path::Path::new(&file).parent().unwrap().to_path_buf();
    s.ok(&["validate", "-f", &file]);
    assert!(!dir.join("site").exists(), "validate makes nothing");
    up_ok(&s, &file);
    let made = dir.join("site/f");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !made.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never came",
            made.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "made\n");
    s.ok(&["down", "-f", &file]);
    // The long form wants the folder to exist.
    let long = write_project(
        &s,
        &format!(
            r#"[project]
name = "binds"

[containers.app]
image = "{IMAGE}"
volumes = [{{ type = "bind", source = "./elsewhere", target = "/x" }}]
"#
        ),
    );
    let r = s.run(&["validate", "-f", &long]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("bind-mount source `./elsewhere` does not exist");
}
