//! The real Python Docker clients against the engine: docker-compose 1.29.2
//! (v1), docker-py 6.1.3 and testcontainers 4.8.2, from the virtualenv that
//! `.ci/install-packages` makes at [`VENV`] with the versions pinned in
//! `.ci/python-clients.txt`. Each test has its own engine (and so its own
//! socket and state) and removes what the client made, even when it fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{EngineGuard, IMAGE};

/// Where `.ci/install-packages` puts the clients.
const VENV: &str = "/opt/servin-test-venv";

/// A program of the virtualenv; the test fails, saying how to install it,
/// when it is missing.
fn venv_bin(name: &str) -> PathBuf {
    let p = Path::new(VENV).join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/install-packages` (as root) to make the Python clients' \
         virtualenv at {VENV}",
        p.display()
    );
    p
}

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

fn text(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs one of the Python scripts of `tests/python` with the venv's python
/// against `e`; fails the test (with the engine's log) unless it succeeds
/// and printed `ok STEP` for each of `steps`.
fn python(e: &EngineGuard, script: &str, steps: &[&str], prefix: &str) {
    let out = Command::new(venv_bin("python"))
        .arg(python_dir().join(script))
        .args(steps)
        .env("DOCKER_HOST", format!("unix://{}", e.socket().display()))
        .env("IMAGE", IMAGE)
        .env("PREFIX", prefix)
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env("HOME", e.home())
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && steps
                .iter()
                .all(|s| said.lines().any(|l| l == format!("ok {s}"))),
        "{script} {steps:?} failed\n{}\nengine log:\n{}",
        text(&out),
        e.log()
    );
}

/// Removes every container of the engine on drop (a failed script may
/// leave some).
struct RemoveContainers<'a>(&'a EngineGuard);

impl Drop for RemoveContainers<'_> {
    fn drop(&mut self) {
        let ids = self.0.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.0.docker(&["rm", "-f", id]);
        }
    }
}

#[test]
fn docker_py_runs_containers() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    python(
        &e,
        "docker_py.py",
        &[
            "run_foreground",
            "run_detached",
            "rename",
            "label_filters",
            "events",
        ],
        "dpy",
    );
}

/// The container calls beyond run: archives both ways, stats (one sample
/// and streamed), top, pause/unpause and update.
#[test]
fn docker_py_copies_measures_pauses_and_updates() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    python(
        &e,
        "docker_py.py",
        &["archive", "stats", "top", "pause", "update"],
        "dpx",
    );
}

#[test]
fn docker_py_lists_images_volumes_and_networks() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    python(
        &e,
        "docker_py.py",
        &["images", "volumes", "networks"],
        "dpy",
    );
    let left = e.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(left.trim(), "", "volumes left: {left}");
    let left = e.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!left.contains("dpy-net"), "networks left: {left}");
}

#[test]
fn testcontainers_starts_a_container_and_reads_its_logs() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    python(&e, "testcontainers_box.py", &["testcontainers"], "tc");
    assert_eq!(e.docker_ok(&["ps", "-aq"]).trim(), "");
}

/// A docker-compose v1 project in its own folder, with its own project
/// name, against one engine; `down -v` on drop.
struct Compose<'a> {
    e: &'a EngineGuard,
    dir: tempfile::TempDir,
    project: String,
}

impl<'a> Compose<'a> {
    fn new(e: &'a EngineGuard, project: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("servin-compose-")
            .tempdir()
            .unwrap();
        // Unique per test process: compose's names are derived from it.
        let project = format!("{project}{}", std::process::id());
        Self { e, dir, project }
    }

    fn write(&self, yaml: &str) {
        std::fs::write(self.dir.path().join("docker-compose.yml"), yaml).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(venv_bin("docker-compose"))
            .current_dir(self.dir.path())
            .arg("-p")
            .arg(&self.project)
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.e.socket().display()),
            )
            .env("HOME", self.e.home())
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            // docker-py 6 negotiates the engine's API version (1.47), whose
            // image inspect has no ContainerConfig (Docker 26 dropped it
            // from 1.45 on), and compose 1.29.2 reads it to recreate: with
            // Docker 26 and later it needs an older version, as here.
            .env("COMPOSE_API_VERSION", "1.44")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `docker-compose ARGS`; fails the test unless it succeeds;
    /// returns stdout and stderr (compose reports progress on stderr).
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed\n{}\nengine log:\n{}",
            text(&out),
            self.e.log()
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The name compose gives replica `n` of `service`.
    fn name(&self, service: &str, n: u32) -> String {
        format!("{}_{service}_{n}", self.project)
    }

    /// The ID of replica `n` of `service`.
    fn id(&self, service: &str, n: u32) -> String {
        self.e
            .docker_ok(&["inspect", "-f", "{{.Id}}", &self.name(service, n)])
            .trim()
            .to_string()
    }

    /// Names of the project's containers, sorted.
    fn containers(&self) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.project);
        let out = self
            .e
            .docker_ok(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }
}

impl Drop for Compose<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--remove-orphans", "-t", "1"]);
    }
}

fn compose_file(web_text: &str) -> String {
    format!(
        r#"version: "2.4"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "{}"]
    labels:
      role: front
  worker:
    image: {IMAGE}
    command: ["sh", "-c", "echo worker-started; exec sleep 3600"]
    volumes:
      - data:/data
    stop_grace_period: 1s
volumes:
  data: {{}}
"#,
        support::httpd(web_text)
    )
}

#[test]
fn docker_compose_v1_up_ps_exec_logs_recreate_scale_down() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let c = Compose::new(&e, "pyc");
    c.write(&compose_file("one"));
    let (web, worker) = (c.name("web", 1), c.name("worker", 1));

    // up -d: both services, each once.
    let (_, err) = c.ok(&["up", "-d"]);
    assert!(err.contains(&format!("Creating {web}")), "{err}");
    assert_eq!(c.containers(), vec![web.clone(), worker.clone()]);

    // ps: each container once, running.
    let (out, _) = c.ok(&["ps"]);
    for name in [&web, &worker] {
        let rows: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(name.as_str()))
            .collect();
        assert_eq!(rows.len(), 1, "{name} in ps:\n{out}");
        assert!(rows[0].contains(" Up"), "{name} is not up in ps:\n{out}");
    }

    // exec in the web service's container, and only there.
    let (out, _) = c.ok(&["exec", "-T", "web", "cat", "/www/index.html"]);
    assert_eq!(out, "one\n");
    let (out, _) = c.ok(&["exec", "-T", "worker", "hostname"]);
    assert_eq!(out.trim(), &c.id("worker", 1)[..12]);

    // logs: the worker's line, prefixed with its service and number.
    let (out, _) = c.ok(&["logs", "--no-color"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("worker_1 ") && l.ends_with("| worker-started")),
        "{out}"
    );

    // A second up with nothing changed keeps both containers.
    let (web_id, worker_id) = (c.id("web", 1), c.id("worker", 1));
    let (_, err) = c.ok(&["up", "-d"]);
    assert!(err.contains(&format!("{web} is up-to-date")), "{err}");
    assert!(err.contains(&format!("{worker} is up-to-date")), "{err}");
    assert_eq!(
        (c.id("web", 1), c.id("worker", 1)),
        (web_id.clone(), worker_id.clone())
    );

    // A changed service is recreated, and only it.
    c.write(&compose_file("two"));
    let (_, err) = c.ok(&["up", "-d"]);
    assert!(err.contains(&format!("Recreating {web}")), "{err}");
    assert!(err.contains(&format!("{worker} is up-to-date")), "{err}");
    assert_ne!(c.id("web", 1), web_id);
    assert_eq!(c.id("worker", 1), worker_id);
    assert_eq!(c.containers(), vec![web.clone(), worker.clone()]);
    let (out, _) = c.ok(&["exec", "-T", "web", "cat", "/www/index.html"]);
    assert_eq!(out, "two\n");

    // Scale: a second worker numbered 2, the first kept.
    let (_, err) = c.ok(&["up", "-d", "--scale", "worker=2"]);
    assert!(
        err.contains(&format!("Creating {}", c.name("worker", 2))),
        "{err}"
    );
    assert_eq!(c.id("worker", 1), worker_id);
    assert_eq!(
        c.containers(),
        vec![web.clone(), worker.clone(), c.name("worker", 2)]
    );
    let (out, _) = c.ok(&["ps", "-q", "worker"]);
    assert_eq!(out.lines().count(), 2, "{out}");

    // down -v: nothing left of the project.
    c.ok(&["down", "-v", "-t", "1"]);
    assert_eq!(c.containers(), Vec::<String>::new());
    let nets = e.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(&c.project), "networks left: {nets}");
    let vols = e.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.trim(), "", "volumes left: {vols}");
}

/// `docker-compose up` in the foreground, as CI scripts run a test job:
/// attached to every service's output, it stops the project when the job
/// exits and exits with the job's status.
#[test]
fn docker_compose_v1_up_exits_with_the_job() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let c = Compose::new(&e, "pycjob");
    c.write(&format!(
        r#"version: "2.4"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "{}"]
    stop_grace_period: 1s
  job:
    image: {IMAGE}
    command: ["sh", "-c", "sleep 1; echo job-done; exit 3"]
    depends_on: [web]
"#,
        support::httpd("up")
    ));
    let out = c.run(&["up", "--no-color", "--exit-code-from", "job"]);
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{said}\nengine log:\n{}",
        e.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("job_1 ") && l.ends_with("| job-done")),
        "{said}"
    );
    // Every container of the project was stopped, none removed.
    let label = format!("label=com.docker.compose.project={}", c.project);
    let states = e.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &label,
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    let mut states: Vec<&str> = states.lines().collect();
    states.sort();
    assert_eq!(
        states,
        vec![
            format!("{} exited", c.name("job", 1)),
            format!("{} exited", c.name("web", 1)),
        ],
        "{said}"
    );
}

// What these clients found, each checked on its own against Docker's
// answer.

/// Compose recreates a service by renaming its old container, stopped or
/// running (`POST /containers/{id}/rename`); Docker renames in any state.
#[test]
fn a_container_is_renamed_in_any_state() {
    // The guard's drop removes the containers; the test restarts the engine.
    let mut e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&["network", "create", "rn-net"]);
    let id = e
        .run_detached("rn-old", &["--network", "rn-net"], &["sleep", "300"])
        .trim()
        .to_string();
    let t0 = now_secs() - 1;

    // Running: renamed, and its endpoint on the network too.
    let r = e.api(
        "POST",
        "/v1.47/containers/rn-old/rename?name=rn-new",
        &[],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(e.inspect_container(&id)["Name"], "/rn-new");
    assert_eq!(e.inspect_container("rn-new")["State"]["Running"], true);
    let r = e.api("GET", "/v1.47/containers/rn-old/json", &[], b"");
    assert_eq!(r.status, 404, "the old name still answers");
    let net = e.docker_ok(&["network", "inspect", "rn-net"]);
    let net: serde_json::Value = serde_json::from_str(&net).unwrap();
    assert_eq!(net[0]["Containers"][&id]["Name"], "rn-new", "{net}");
    // The old name is free again.
    e.docker_ok(&["create", "--name", "rn-old", IMAGE, "true"]);

    // Docker's refusals: the name in use (409), the same name or none (400).
    let r = e.api(
        "POST",
        "/v1.47/containers/rn-new/rename?name=rn-old",
        &[],
        b"",
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("already in use"), "{}", r.text());
    let r = e.api(
        "POST",
        "/v1.47/containers/rn-new/rename?name=rn-new",
        &[],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = e.api("POST", "/v1.47/containers/rn-new/rename", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = e.api(
        "POST",
        "/v1.47/containers/rn-new/rename?name=bad%20name",
        &[],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // Stopped, through the docker CLI; the event names the old name.
    e.docker_ok(&["stop", "-t", "1", "rn-new"]);
    e.docker_ok(&["rename", "rn-new", "rn-stopped"]);
    let out = e.docker_ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &(now_secs() + 1).to_string(),
        "--filter",
        "event=rename",
        "--format",
        "{{.Actor.Attributes.oldName}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(out, "/rn-old rn-new\n/rn-new rn-stopped\n");

    // The name is on disk: an engine that starts again finds it.
    e.kill();
    e.spawn();
    assert_eq!(e.inspect_container(&id)["Name"], "/rn-stopped");
    e.docker_ok(&["start", "rn-stopped"]);
    e.docker_ok(&["rm", "-f", "rn-stopped", "rn-old"]);
    e.docker_ok(&["network", "rm", "rn-net"]);
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// docker-py's and Compose v1's event readers use the fields API versions
/// before 1.52 keep on container events: `status`, `id`, `from`.
#[test]
fn container_events_keep_status_id_and_from() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let since = now_secs() - 1;
    let id = e.docker_ok(&["create", "--name", "ev", IMAGE, "true"]);
    let id = id.trim();
    e.docker_ok(&["network", "create", "ev-net"]);
    let r = e.api(
        "GET",
        &format!("/v1.47/events?since={since}&until={}", now_secs() + 1),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let events: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let create = events
        .iter()
        .find(|v| v["Type"] == "container" && v["Action"] == "create")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(create["status"], "create");
    assert_eq!(create["id"], id);
    assert_eq!(create["from"], IMAGE);
    assert_eq!(create["Actor"]["ID"], id);
    let net = events
        .iter()
        .find(|v| v["Type"] == "network")
        .unwrap_or_else(|| panic!("{events:?}"));
    let net = net.as_object().unwrap();
    for key in ["status", "id", "from"] {
        assert!(!net.contains_key(key), "a network event has {key}: {net:?}");
    }
    e.docker_ok(&["network", "rm", "ev-net"]);
}

/// Compose v1 reads an image's `ContainerConfig` when it recreates a
/// container; Docker sends it to API versions before 1.45 only.
#[test]
fn image_inspect_has_container_config_before_api_1_45() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let get = |version: &str| -> serde_json::Value {
        let r = e.api("GET", &format!("{version}/images/{IMAGE}/json"), &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    };
    for version in ["/v1.38", "/v1.44"] {
        let v = get(version);
        let cc = v["ContainerConfig"]
            .as_object()
            .unwrap_or_else(|| panic!("{v}"));
        assert!(
            cc.contains_key("Volumes") && cc["Volumes"].is_null(),
            "{cc:?}"
        );
        assert_eq!(cc["Hostname"], "");
        assert_eq!(cc["Tty"], false);
        assert_eq!(v["Container"], "");
        assert!(v["Config"].is_object(), "{v}");
    }
    for version in ["/v1.45", "/v1.47", ""] {
        let v = get(version);
        let o = v.as_object().unwrap();
        assert!(
            !o.contains_key("ContainerConfig") && !o.contains_key("Container"),
            "{version}: {v}"
        );
        assert!(v["Config"].is_object(), "{v}");
    }
}
