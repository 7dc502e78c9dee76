#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::*;
use crate::project::normal::{Condition, MountKind};

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: site
data:
  index.html: "hello from the configmap\n"
  LEVEL: info
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  password: c2VjcmV0
stringData:
  user: admin
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  labels: {tier: db}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      affinity: {}
      terminationGracePeriodSeconds: 2
      initContainers:
        - name: prep
          image: busybox:1.36
          command: [sh, -c, "echo ready > /work/ready"]
          volumeMounts: [{name: work, mountPath: /work}]
      containers:
        - name: web
          image: busybox:1.36
          args: [httpd, -f, -p, "8080"]
          ports: [{containerPort: 8080, name: http}]
          envFrom: [{configMapRef: {name: site}}]
          env:
            - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
          volumeMounts:
            - {name: site, mountPath: /www, readOnly: true}
            - {name: work, mountPath: /work}
            - {name: data, mountPath: /data}
          readinessProbe:
            httpGet: {path: healthz, port: http}
            periodSeconds: 2
          livenessProbe:
            exec: {command: [true]}
          securityContext:
            runAsUser: 1000
            runAsGroup: 1000
            capabilities: {add: [NET_ADMIN], drop: [all]}
          resources:
            limits: {memory: 128Mi, cpu: 500m}
      volumes:
        - {name: site, configMap: {name: site, items: [{key: index.html, path: index.html}]}}
        - {name: work, emptyDir: {}}
        - {name: data, persistentVolumeClaim: {claimName: data}}
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
"#;

fn options(publish: bool) -> Options {
    Options {
        project: "app".into(),
        files_dir: PathBuf::from("/files"),
        publish,
    }
}

fn play(text: &str, publish: bool) -> Result<Played, PlayError> {
    project(&parse(text)?, &options(publish))
}

fn messages(p: &Played) -> Vec<String> {
    p.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn a_deployment_with_its_configmap_secret_claim_init_container_and_service() {
    let p = play(APP, false).unwrap();
    let names: Vec<&String> = p.project.containers.keys().collect();
    assert_eq!(names, ["web", "web-init-prep"]);
    let web = &p.project.containers["web"];
    assert_eq!(web.image, "docker.io/library/busybox:1.36");
    assert_eq!(web.replicas, 2);
    assert_eq!(web.entrypoint, None);
    assert_eq!(
        web.command.as_deref().unwrap(),
        ["httpd", "-f", "-p", "8080"]
    );
    assert_eq!(web.env["LEVEL"], "info");
    assert_eq!(web.env["PASSWORD"], "secret");
    assert_eq!(web.user.as_deref(), Some("1000:1000"));
    assert_eq!(web.cap_add, ["NET_ADMIN"]);
    assert_eq!(web.cap_drop, ["ALL"]);
    assert_eq!(web.resources.memory, Some(128 * 1024 * 1024));
    assert_eq!(web.resources.cpus, Some(0.5));
    assert_eq!(web.restart.as_deref(), Some("always"));
    assert_eq!(web.stop_timeout.as_deref(), Some("2s"));
    assert_eq!(web.labels["app"], "web");
    assert_eq!(web.expose, ["8080/tcp"]);
    assert!(web.ports.is_empty(), "published only with --publish");
    assert_eq!(web.networks["default"].aliases, ["frontend"]);
    assert_eq!(
        web.depends_on.get("web-init-prep"),
        Some(&Condition::Completed)
    );
    let h = web.healthcheck.as_ref().unwrap();
    assert_eq!(
        h.cmd,
        [
            "CMD",
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1:8080/healthz"
        ]
    );
    assert_eq!(h.interval.as_deref(), Some("2s"));
    let mounts: Vec<(MountKind, &str, &str, Option<bool>)> = web
        .volumes
        .iter()
        .map(|m| {
            (
                m.kind,
                m.source.as_deref().unwrap(),
                m.target.as_str(),
                m.read_only,
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            (MountKind::Bind, "/files/web/site", "/www", Some(true)),
            (MountKind::Volume, "web-work", "/work", Some(false)),
            (MountKind::Volume, "data", "/data", Some(false)),
        ]
    );
    assert_eq!(p.run_once.iter().collect::<Vec<_>>(), ["web-init-prep"]);
    let init = &p.project.containers["web-init-prep"];
    assert_eq!(init.replicas, 1);
    assert_eq!(init.restart.as_deref(), Some("no"));
    assert!(init.networks["default"].aliases.is_empty());
    assert_eq!(init.entrypoint.as_deref().unwrap()[0], "sh");
    assert_eq!(
        init.command.as_deref(),
        Some(&[][..]),
        "command drops the image's args"
    );

    let volumes: Vec<&String> = p.project.volumes.keys().collect();
    assert_eq!(volumes, ["data", "web-work"]);
    assert_eq!(p.project.volumes["data"].labels["tier"], "db");
    assert_eq!(p.project.networks.keys().collect::<Vec<_>>(), ["default"]);
    assert_eq!(
        p.files,
        [map::File {
            path: Path::new("web/site/index.html").into(),
            data: b"hello from the configmap\n".to_vec(),
        }]
    );
    assert_eq!(
        messages(&p),
        [
            "deployment web: spec.template.spec.affinity is not supported; skipped",
            "ingress web: kind Ingress is not supported; skipped",
            "deployment web: spec.template.spec.containers[0].livenessProbe: one probe becomes the healthcheck (readiness, else liveness, else startup); skipped",
            "service frontend: spec.ports[0]: port 80 reaches web at its port 8080 by name (no port mapping inside the network)",
        ]
    );
}

#[test]
fn the_same_file_gives_the_same_project_and_desired_hashes() {
    use crate::project::desired::{DesiredOptions, desired};
    let a = desired(
        &play(APP, false).unwrap().project,
        &DesiredOptions::default(),
    )
    .unwrap();
    let b = desired(
        &play(APP, false).unwrap().project,
        &DesiredOptions::default(),
    )
    .unwrap();
    let hashes = |d: &servin_proto::DesiredProject| {
        d.containers
            .iter()
            .map(|c| (c.name.clone(), c.config_hash.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(hashes(&a), hashes(&b));
    assert_eq!(
        a.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["app-web-1", "app-web-2", "app-web-init-prep-1"]
    );
}

#[test]
fn publish_maps_service_ports_to_the_target_port() {
    let text = APP.replace("replicas: 2", "replicas: 1");
    let p = play(&text, true).unwrap();
    let port = &p.project.containers["web"].ports[0];
    assert_eq!((port.target, port.published), (8080, Some(80)));
    // With several replicas the port cannot be published: said, not done.
    let p = play(APP, true).unwrap();
    assert!(p.project.containers["web"].ports.is_empty());
    assert!(
        messages(&p)
            .iter()
            .any(|m| m.contains("--publish cannot publish port 80 of web: it has 2 replicas"))
    );
}

#[test]
fn a_pod_of_several_containers_and_its_restart_policy() {
    let text = r#"
apiVersion: v1
kind: Pod
metadata: {name: job, labels: {app: job}}
spec:
  restartPolicy: Never
  containers:
    - {name: a, image: busybox, command: [sleep, "1"], ports: [{containerPort: 53, protocol: UDP, hostPort: 5353}]}
    - {name: b, image: busybox, tty: true, stdin: true}
"#;
    let p = play(text, false).unwrap();
    let a = &p.project.containers["job-a"];
    assert_eq!(a.restart.as_deref(), Some("no"));
    assert_eq!(a.ports[0].published, Some(5353));
    assert_eq!(a.ports[0].protocol, Protocol::Udp);
    let b = &p.project.containers["job-b"];
    assert!(b.tty);
    assert_eq!(b.stdin_open, Some(true));
    assert_eq!(b.command, None);
    assert!(messages(&p)[0].contains("do not share localhost"));
}

use crate::project::normal::Protocol;

fn error(text: &str) -> String {
    play(text, false).unwrap_err().to_string()
}

#[test]
fn bad_input_names_the_document_and_field() {
    assert_eq!(
        error("name: web\nimage: nginx\n"),
        "document 1: apiVersion: is missing: this is not a Kubernetes object (it needs apiVersion and kind)"
    );
    assert_eq!(
        error("- a\n- b\n"),
        "document 1: is a list, not a Kubernetes object (a mapping with apiVersion and kind)"
    );
    assert_eq!(
        error("apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: []}\n"),
        "document 1 (Pod): metadata.name: is missing: every object needs a name"
    );
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: 'not base64!'}\n";
    let e = error(&format!("---\n{secret}"));
    assert!(
        e.starts_with("document 1 (Secret s): data.password: does not decode as base64"),
        "{e}"
    );
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {selector: {app: db}, ports: [{port: 5432}]}\n";
    assert_eq!(
        error(&format!(
            "{}---\n{svc}",
            APP.split("---\napiVersion: v1\nkind: Service")
                .next()
                .unwrap()
        )),
        "document 5 (Service db): spec.selector: selects no Pod, Deployment or StatefulSet of the file (no pod has the labels app=db)"
    );
    let e = error(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  replicas: three\n  template: {spec: {containers: []}}\n",
    );
    assert!(
        e.starts_with("document 1 (Deployment w): spec.replicas: invalid type"),
        "{e}"
    );
    let e = error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - {name: c, image: busybox, envFrom: [{configMapRef: {name: nope}}]}\n",
    );
    assert_eq!(
        e,
        "document 1 (Pod p): spec.containers[0].envFrom[0].configMapRef.name: names ConfigMap nope, which the file does not define"
    );
    let e = error(&APP.replace(
        "ports: [{containerPort: 8080, name: http}]",
        "ports: [{containerPort: 8080, name: http, hostPort: 8080}]",
    ));
    assert_eq!(
        e,
        "document 4 (Deployment web): spec.template.spec.containers[0].ports[0].hostPort: cannot be published by 2 replicas (one host port each)"
    );
    let e = error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: 'Bad Image'}]}\n",
    );
    assert!(
        e.starts_with("document 1 (Pod p): spec.containers[0].image:"),
        "{e}"
    );
}

#[test]
fn quantities() {
    assert_eq!(map::quantity("128Mi"), Some(134_217_728.0));
    assert_eq!(map::quantity("1G"), Some(1e9));
    assert_eq!(map::quantity("250m"), Some(0.25));
    assert_eq!(map::quantity("2"), Some(2.0));
    assert_eq!(map::quantity("lots"), None);
}

#[test]
fn files_are_written_pruned_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(files::FOLDER).join("app");
    let f = |p: &str, d: &str| map::File {
        path: p.into(),
        data: d.as_bytes().to_vec(),
    };
    let dirs = [PathBuf::from("web/site"), PathBuf::from("web/empty")]
        .into_iter()
        .collect();
    files::write(
        &dir,
        &dirs,
        &[f("web/site/a", "1"), f("web/site/sub/b", "2")],
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("web/site/sub/b")).unwrap(),
        "2"
    );
    assert!(dir.join("web/empty").is_dir());
    let only = [PathBuf::from("web/site")].into_iter().collect();
    files::write(&dir, &only, &[f("web/site/a", "3")]).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("web/site/a")).unwrap(),
        "3"
    );
    assert!(!dir.join("web/site/sub").exists());
    assert!(!dir.join("web/empty").exists());
    assert!(tmp.path().join(files::FOLDER).join(".gitignore").is_file());
    assert!(files::remove(&dir).unwrap());
    assert!(!tmp.path().join(files::FOLDER).exists());
}
