//! `servin kube play` against a real engine: Kubernetes YAML of the usual
//! shapes comes up in order, serves its ConfigMap, converges, changes, and
//! goes away; bad files apply nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use servin_testkit::probe::free_port;
use support::Run;
use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/kube:1";

/// A ConfigMap served by a Deployment whose init container writes a stamp
/// it reads first; a PVC keeps what it read; a Service names it; a client
/// Deployment reaches it by the Service's name. `level` changes the web
/// Deployment.
fn app(port: u16, level: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: site
data:
  index.html: "hello from the configmap"
  GREETING: hi
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  password: c2VjcmV0
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      initContainers:
        - name: prep
          image: {IMAGE}
          command: [sh, -c, "echo prepared > /work/stamp"]
          volumeMounts: [{{name: work, mountPath: /work}}]
      containers:
        - name: web
          image: {IMAGE}
          command: [sh, -c]
          args: ["cat /work/stamp > /data/seen && exec busybox httpd -f -p 8080 -h /www"]
          env:
            - {{name: LEVEL, value: "{level}"}}
            - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
          envFrom: [{{configMapRef: {{name: site}}}}]
          ports: [{{containerPort: 8080, name: http}}]
          readinessProbe:
            exec: {{command: [cat, /data/seen]}}
            periodSeconds: 1
          volumeMounts:
            - {{name: site, mountPath: /www}}
            - {{name: work, mountPath: /work}}
            - {{name: data, mountPath: /data}}
      volumes:
        - {{name: site, configMap: {{name: site}}}}
        - {{name: work, emptyDir: {{}}}}
        - {{name: data, persistentVolumeClaim: {{claimName: data}}}}
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
spec:
  selector: {{app: web}}
  ports: [{{port: {port}, targetPort: http}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: client
spec:
  replicas: 2
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata:
      labels: {{app: client}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: client
          image: {IMAGE}
          command: [sleep, "300"]
"#
    )
}

fn write(s: &Sandbox, name: &str, text: &str) -> PathBuf {
    let dir = s.dir.path().join("kube");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

fn play(s: &Sandbox, file: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["kube", "play", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    s.run(&args)
}

fn play_ok(s: &Sandbox, file: &Path, extra: &[&str]) -> String {
    let r = play(s, file, extra);
    assert_eq!(r.code, 0, "kube play failed\n{}", r.transcript());
    r.stderr
}

/// The containers of `project`: (name, ID, state), sorted.
fn containers(s: &Sandbox, project: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(&s.ok(&["ps", "-a", "--format", "json"])).unwrap();
    let mut list: Vec<(String, String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["Labels"]["servin.project"] == project)
        .map(|c| {
            (
                c["Names"][0]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('/')
                    .to_string(),
                c["Id"].as_str().unwrap().to_string(),
                c["State"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    list.sort();
    list
}

/// Names of the networks or volumes (`what`) whose name starts with `prefix`.
fn objects(s: &Sandbox, what: &str, prefix: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&s.ok(&[what, "ls", "--format", "json"])).unwrap();
    let list = match &v {
        Value::Array(a) => a.clone(),
        // `volume ls` answers as the Docker API does: {"Volumes": [...]}.
        _ => v["Volumes"].as_array().cloned().unwrap_or_default(),
    };
    let mut names: Vec<String> = list
        .iter()
        .filter_map(|o| o["Name"].as_str())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn play_runs_the_usual_shapes_converges_recreates_what_changed_and_down_leaves_nothing() {
    let s = Env::with_image(IMAGE);
    let port = free_port();
    let file = write(&s, "my_app.yaml", &app(port, "info"));

    let out = play_ok(&s, &file, &["--publish"]);
    assert!(out.contains("project my-app: 4 created"), "{out}");
    let first = containers(&s, "my-app");
    let names: Vec<&str> = first.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "my-app-client-1",
            "my-app-client-2",
            "my-app-web-1",
            "my-app-web-init-prep-1"
        ]
    );
    let state = |n: &str| {
        first
            .iter()
            .find(|c| c.0 == n)
            .map(|c| c.2.clone())
            .unwrap()
    };
    assert_eq!(state("my-app-web-1"), "running");
    assert_eq!(state("my-app-web-init-prep-1"), "exited");

    // The init container finished before the main one started, and the
    // main one read what it wrote.
    let init = s.inspect("my-app-web-init-prep-1");
    let web = s.inspect("my-app-web-1");
    assert_eq!(init["State"]["ExitCode"], 0);
    let finished = init["State"]["FinishedAt"].as_str().unwrap().to_string();
    let started = web["State"]["StartedAt"].as_str().unwrap().to_string();
    assert!(
        finished <= started,
        "init finished {finished}, web started {started}"
    );
    let seen = s.ok(&["exec", "my-app-web-1", "cat", "/data/seen"]);
    assert_eq!(seen.trim(), "prepared");

    // ConfigMap and Secret values are env; its file is served.
    let env = web["Config"]["Env"].as_array().unwrap();
    for want in ["GREETING=hi", "PASSWORD=secret", "LEVEL=info"] {
        assert!(env.iter().any(|e| e == want), "{want} in {env:?}");
    }
    let body = support::http_get_until(port, "/index.html", "hello from the configmap");
    assert!(body.contains("hello from the configmap"), "{body}");
    let files = file.parent().unwrap().join(".servin-kube/my-app/web/site");
    assert_eq!(
        std::fs::read_to_string(files.join("index.html")).unwrap(),
        "hello from the configmap"
    );

    // The Service's name reaches the web container from another one.
    let mut fetched = String::new();
    for _ in 0..50 {
        let r = s.run(&[
            "exec",
            "my-app-client-2",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://frontend:8080/index.html",
        ]);
        if r.code == 0 {
            fetched = r.stdout;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(fetched, "hello from the configmap");

    // A second play changes nothing.
    let out = play_ok(&s, &file, &["--publish"]);
    assert!(out.contains("project my-app: 4 unchanged"), "{out}");
    assert!(!out.contains("created"), "{out}");
    assert_eq!(containers(&s, "my-app"), first);

    // A changed Deployment recreates its containers, and only those.
    std::fs::write(&file, app(port, "debug")).unwrap();
    let out = play_ok(&s, &file, &["--publish"]);
    assert!(out.contains("1 recreated"), "{out}");
    let second = containers(&s, "my-app");
    let id = |list: &[(String, String, String)], n: &str| {
        list.iter().find(|c| c.0 == n).unwrap().1.clone()
    };
    assert_ne!(id(&first, "my-app-web-1"), id(&second, "my-app-web-1"));
    for n in [
        "my-app-client-1",
        "my-app-client-2",
        "my-app-web-init-prep-1",
    ] {
        assert_eq!(id(&first, n), id(&second, n), "{n} kept");
    }
    let body = support::http_get_until(port, "/index.html", "hello from the configmap");
    assert!(body.contains("hello from the configmap"), "{body}");

    // Down keeps the volumes unless asked, as `servin down` does.
    s.ok(&["kube", "play", file.to_str().unwrap(), "--down"]);
    assert!(containers(&s, "my-app").is_empty());
    assert!(objects(&s, "network", "my-app_").is_empty());
    assert_eq!(
        objects(&s, "volume", "my-app_"),
        ["my-app_data", "my-app_web-work"]
    );
    assert!(!file.parent().unwrap().join(".servin-kube").exists());
    play_ok(&s, &file, &[]);
    s.ok(&[
        "kube",
        "play",
        file.to_str().unwrap(),
        "--down",
        "--volumes",
    ]);
    assert!(containers(&s, "my-app").is_empty());
    assert!(objects(&s, "network", "my-app_").is_empty());
    assert!(objects(&s, "volume", "my-app_").is_empty());
    assert!(!file.parent().unwrap().join(".servin-kube").exists());
}

#[test]
fn bad_files_name_the_document_and_field_and_apply_nothing() {
    let s = Env::new();
    let good = app(free_port(), "info");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "compose.yaml",
            format!("{good}---\nservices:\n  web:\n    image: nginx\n"),
            "document 7: apiVersion: is missing: this is not a Kubernetes object",
        ),
        (
            "unknown.yaml",
            format!("{good}---\napiVersion: v1\nkind: Widget\n"),
            "document 7 (Widget): metadata.name: is missing",
        ),
        (
            "nothing.yaml",
            format!(
                "{good}---\napiVersion: v1\nkind: Service\nmetadata: {{name: db}}\nspec: {{selector: {{app: db}}, ports: [{{port: 5432}}]}}\n"
            ),
            "document 7 (Service db): spec.selector: selects no Pod, Deployment or StatefulSet of the file",
        ),
        (
            "secret.yaml",
            good.replace("c2VjcmV0", "\"not base64!\""),
            "document 2 (Secret creds): data.password: does not decode as base64",
        ),
    ];
    for (name, text, want) in cases {
        let file = write(&s, name, &text);
        let r = play(&s, &file, &[]);
        assert_eq!(r.code, 1, "{name}\n{}", r.transcript());
        r.assert_stderr_has(want);
        r.assert_stderr_has("nothing was applied");
        let project = name.trim_end_matches(".yaml");
        assert!(containers(&s, project).is_empty(), "{name}");
        assert!(objects(&s, "network", &format!("{project}_")).is_empty());
        assert!(objects(&s, "volume", &format!("{project}_")).is_empty());
        assert!(
            !file.parent().unwrap().join(".servin-kube").exists(),
            "{name}"
        );
    }

    // An unknown kind with a name is skipped with a warning, not an error.
    let file = write(
        &s,
        "skip.yaml",
        "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n",
    );
    let r = play(&s, &file, &[]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    r.assert_stderr_has("warning: widget w: kind Widget is not supported; skipped");
    r.assert_stderr_has("project skip: nothing to do");
}

#[test]
fn kube_play_help_says_what_it_does() {
    let s = Sandbox::new();
    let out = s.ok(&["kube", "play", "--help"]);
    for want in [
        "--publish",
        "--down",
        "--volumes",
        ".servin-kube",
        "init containers",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
}
