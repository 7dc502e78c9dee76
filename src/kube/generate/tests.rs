#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::json;

use super::*;
use crate::project::{LoadOptions, load_str};

fn project(toml: &str) -> Project {
    let options = LoadOptions {
        project_name: Some("demo".into()),
        env: [("TOKEN".to_string(), "t0k".to_string())].into(),
    };
    match load_str(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("servin.toml"),
        toml,
        &options,
    ) {
        Ok(l) => l.project,
        Err(f) => panic!("{:?}", f.problems),
    }
}

fn find<'a>(g: &'a Generated, kind: &str, name: &str) -> &'a Value {
    &g.objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
        .body
}

fn warnings(g: &Generated) -> String {
    g.warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_container_becomes_a_deployment_with_its_fields() {
    let p = project(
        r#"
[containers.web]
image = "nginx:1.27"
entrypoint = ["/bin/entry"]
command = ["serve", "--port", "80"]
workdir = "/srv"
user = "101:102"
ports = ["80"]
replicas = 3
labels = { team = "web", "bad key!" = "x" }
cap_add = ["cap_net_admin"]
cap_drop = ["ALL"]
read_only = true
resources = { memory = "512m", cpus = 1.5 }
healthcheck = { cmd = "curl -f localhost", interval = "10s", timeout = "2s", retries = 4, start_period = "30s" }
"#,
    );
    let g = generate(&p, &Options::default()).unwrap();
    let d = find(&g, "Deployment", "web");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["labels"]["team"], "web");
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/part-of"], "demo");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "docker.io/library/nginx:1.27");
    assert_eq!(c["command"], json!(["/bin/entry"]));
    assert_eq!(c["args"], json!(["serve", "--port", "80"]));
    assert_eq!(c["workingDir"], "/srv");
    assert_eq!(
        c["ports"],
        json!([{ "containerPort": 80, "protocol": "TCP" }])
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"], 101);
    assert_eq!(sc["runAsGroup"], 102);
    assert_eq!(sc["capabilities"]["add"], json!(["NET_ADMIN"]));
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(
        c["resources"]["limits"],
        json!({ "memory": "512Mi", "cpu": "1500m" })
    );
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
    let live = &c["livenessProbe"];
    assert_eq!(
        live["exec"]["command"],
        json!(["sh", "-c", "curl -f localhost"])
    );
    assert_eq!(live["periodSeconds"], 10);
    assert_eq!(live["timeoutSeconds"], 2);
    assert_eq!(live["failureThreshold"], 4);
    assert_eq!(c["readinessProbe"], *live);
    // 30s of start period at 10s a check, then the retries.
    assert_eq!(c["startupProbe"]["failureThreshold"], 7);
    let w = warnings(&g);
    assert!(w.contains("container web: label bad key!"), "{w}");
}

#[test]
fn a_named_user_and_unmapped_keys_are_warned_about() {
    let p = project(
        r#"
[containers.app]
image = "busybox"
user = "postgres"
privileged = true
volumes = ["/srv/data:/data", "/cache"]
restart = "on-failure:3"
ulimits = { nofile = 1024 }
workspace = { source = ".", target = "/app" }
"#,
    );
    let g = generate(&p, &Options::default()).unwrap();
    let w = warnings(&g);
    for part in [
        "container app: user postgres is not carried",
        "privileged is carried as securityContext.privileged",
        "bind mount /srv/data:/data is not carried (a host folder); left out",
        "anonymous volume at /cache becomes an emptyDir",
        "restart on-failure:3 is not carried",
        "ulimits.nofile is not carried",
        ":/app is not carried (a host folder kept in sync)",
    ] {
        assert!(w.contains(part), "{part} not in:\n{w}");
    }
    let c = &find(&g, "Deployment", "app")["spec"]["template"]["spec"]["containers"][0];
    assert!(c["securityContext"].get("runAsUser").is_none());
    assert_eq!(c["securityContext"]["privileged"], true);
}

#[test]
fn an_owned_volume_makes_a_statefulset_and_a_shared_one_read_write_many() {
    let p = project(
        r#"
[volumes.data]
[volumes.www]
labels = { "servin.size" = "20Gi" }

[containers.db]
image = "postgres:16"
volumes = ["data:/var/lib/postgresql/data"]

[containers.a]
image = "busybox"
ports = ["80"]
volumes = ["www:/www"]

[containers.b]
image = "busybox"
volumes = ["www:/www:ro"]

[volumes.cache]
[containers.c]
image = "busybox"
replicas = 2
volumes = ["cache:/cache"]
"#,
    );
    let g = generate(&p, &Options::default()).unwrap();
    let s = find(&g, "StatefulSet", "db");
    assert_eq!(s["spec"]["serviceName"], "db");
    assert!(
        s["metadata"]["annotations"]["servin.dev/why-statefulset"]
            .as_str()
            .unwrap()
            .contains("alone mounts volume data")
    );
    // The StatefulSet's Service: headless, as db has no port.
    assert_eq!(find(&g, "Service", "db")["spec"]["clusterIP"], "None");
    let data = find(&g, "PersistentVolumeClaim", "data");
    assert_eq!(data["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(data["spec"]["resources"]["requests"]["storage"], "1Gi");
    let www = find(&g, "PersistentVolumeClaim", "www");
    assert_eq!(www["spec"]["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(www["spec"]["resources"]["requests"]["storage"], "20Gi");
    find(&g, "Deployment", "a");
    // Two replicas share their volume: no owner, a Deployment.
    find(&g, "Deployment", "c");
    let cache = find(&g, "PersistentVolumeClaim", "cache");
    assert_eq!(cache["spec"]["accessModes"], json!(["ReadWriteMany"]));
    let b = find(&g, "Deployment", "b");
    let m = &b["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0];
    assert_eq!(m["readOnly"], true);
    assert!(
        g.objects
            .iter()
            .find(|o| o.name == "data")
            .unwrap()
            .comment
            .as_deref()
            .unwrap()
            .contains("1Gi, the default")
    );
}

#[test]
fn dependencies_env_and_secrets() {
    let p = project(
        r#"
[secrets.token]
environment = "TOKEN"

[containers.db]
image = "postgres:16"
expose = [5432]
healthcheck = { cmd = "pg_isready" }

[containers.cache]
image = "redis:7"

[containers.job]
image = "busybox"
command = ["true"]
healthcheck = { cmd = "true" }

[containers.app]
image = "busybox"
env = { A = "1", "not a key" = "2" }
secrets = ["token"]
depends_on = { db = "healthy", cache = "started", job = "healthy" }
"#,
    );
    let mut options = Options::default();
    let sel = selected(&p, &options).unwrap();
    options.secrets = read_secrets(&p, &sel, &[("TOKEN".into(), "t0k".into())].into()).unwrap();
    let g = generate(&p, &options).unwrap();
    let app = &find(&g, "Deployment", "app")["spec"]["template"]["spec"];
    let inits = app["initContainers"].as_array().unwrap();
    assert_eq!(inits.len(), 2);
    assert_eq!(inits[0]["name"], "wait-for-db");
    assert_eq!(inits[0]["image"], WAIT_IMAGE);
    assert!(
        inits[0]["command"][2]
            .as_str()
            .unwrap()
            .contains("nc -z -w 2 db 5432")
    );
    assert!(
        inits[1]["command"][2]
            .as_str()
            .unwrap()
            .contains("nslookup job")
    );
    // job has no port: a headless Service gives it a name to wait for.
    assert_eq!(find(&g, "Service", "job")["spec"]["clusterIP"], "None");
    assert!(warnings(&g).contains("depends_on cache (started) is not carried"));
    let c = &app["containers"][0];
    assert_eq!(c["envFrom"][0]["configMapRef"]["name"], "app-env");
    assert_eq!(c["env"], json!([{ "name": "not a key", "value": "2" }]));
    assert_eq!(
        find(&g, "ConfigMap", "app-env")["data"],
        json!({ "A": "1" })
    );
    assert_eq!(find(&g, "Secret", "token")["data"]["token"], "dDBr");
    assert_eq!(
        c["volumeMounts"][0],
        json!({ "name": "secret-token", "mountPath": "/run/secrets/token", "subPath": "token", "readOnly": true })
    );

    // --no-secrets: the Secret left out and named, the mount kept.
    options.no_secrets = true;
    let g = generate(&p, &options).unwrap();
    assert!(!g.objects.iter().any(|o| o.kind == "Secret"));
    assert!(warnings(&g).contains("secret token: left out (--no-secrets)"));
}

#[test]
fn images_by_lock_digest_and_built_images_need_a_registry() {
    let p = project(
        r#"
[images.app]
build = { context = "examples/web-db-cache/app" }

[containers.app]
image = "app"

[containers.db]
image = "postgres:16"
"#,
    );
    let digest = format!("sha256:{}", "a".repeat(64));
    let mut options = Options::default();
    options
        .locked
        .insert("docker.io/library/postgres:16".into(), digest.clone());
    let e = generate(&p, &options).unwrap_err().to_string();
    assert!(
        e.contains("image app is built") && e.contains("--registry"),
        "{e}"
    );
    options
        .built
        .insert("app".into(), format!("reg.example/team/demo-app@{digest}"));
    let g = generate(&p, &options).unwrap();
    let image =
        |n| find(&g, "Deployment", n)["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_eq!(image("db"), format!("docker.io/library/postgres@{digest}"));
    assert_eq!(image("app"), format!("reg.example/team/demo-app@{digest}"));
    // Only the containers named.
    options.containers = vec!["db".into()];
    options.built.clear();
    let g = generate(&p, &options).unwrap();
    assert!(!g.objects.iter().any(|o| o.name == "app"));
    options.containers = vec!["nope".into()];
    assert!(
        generate(&p, &options)
            .unwrap_err()
            .to_string()
            .contains("no container nope")
    );
}

#[test]
fn networks_become_policies_and_exposed_ports_public_services() {
    let p = project(
        r#"
[networks.front]
[networks.back]
internal = true

[containers.web]
image = "nginx"
ports = ["127.0.0.1:8080:80", "30080:81"]
networks = ["front"]

[containers.db]
image = "postgres"
expose = [5432]
networks = { back = { aliases = ["database"] } }
"#,
    );
    let options = Options {
        expose: Expose::NodePort,
        ..Options::default()
    };
    let g = generate(&p, &options).unwrap();
    let back = find(&g, "NetworkPolicy", "network-back");
    let member = json!({ "app.kubernetes.io/part-of": "demo", "servin.dev/network-back": "true" });
    assert_eq!(back["spec"]["podSelector"]["matchLabels"], member);
    assert_eq!(
        back["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
        member
    );
    assert_eq!(
        back["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"],
        member
    );
    assert_eq!(
        find(&g, "NetworkPolicy", "network-front")["spec"]["egress"],
        json!([{}])
    );
    let labels = &find(&g, "Deployment", "db")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["servin.dev/network-back"], "true");
    assert!(labels.get("servin.dev/network-front").is_none());
    // The alias is a Service too.
    assert_eq!(
        find(&g, "Service", "database")["spec"]["selector"]["app.kubernetes.io/name"],
        "db"
    );
    let public = find(&g, "Service", "web-public");
    assert_eq!(public["spec"]["type"], "NodePort");
    assert_eq!(
        public["spec"]["ports"],
        json!([
            { "name": "tcp-8080", "port": 8080, "targetPort": 80, "protocol": "TCP" },
            { "name": "tcp-30080", "port": 30080, "targetPort": 81, "protocol": "TCP", "nodePort": 30080 },
        ])
    );
    assert_eq!(find(&g, "Service", "web")["spec"]["type"], "ClusterIP");
    find(&g, "NetworkPolicy", "published-web");
    let w = warnings(&g);
    assert!(
        w.contains("the host address 127.0.0.1 is not carried"),
        "{w}"
    );
    assert!(w.contains("outside the node port range"), "{w}");
}

#[test]
fn output_is_stable_and_ordered() {
    let text = r#"
[volumes.v]
[containers.b]
image = "busybox"
ports = ["80"]
volumes = ["v:/v"]
env = { X = "1" }
[containers.a]
image = "busybox"
"#;
    let one = render_yaml(
        &generate(&project(text), &Options::default())
            .unwrap()
            .objects,
    );
    let two = render_yaml(
        &generate(&project(text), &Options::default())
            .unwrap()
            .objects,
    );
    assert_eq!(one, two);
    let g = generate(&project(text), &Options::default()).unwrap();
    let kinds: Vec<(&str, &str)> = g
        .objects
        .iter()
        .map(|o| (o.kind, o.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("NetworkPolicy", "network-default"),
            ("ConfigMap", "b-env"),
            ("PersistentVolumeClaim", "v"),
            ("Service", "b"),
            ("StatefulSet", "b"),
            ("Deployment", "a"),
        ]
    );
    assert_eq!(g.objects[4].file_name(), "statefulset-b.yaml");
}

#[test]
fn quantities_and_label_checks() {
    assert_eq!(pod::quantity_bytes(512 * 1024 * 1024), "512Mi");
    assert_eq!(pod::quantity_bytes(2 * 1024 * 1024 * 1024), "2Gi");
    assert_eq!(pod::quantity_bytes(1000), "1000");
    assert!(is_label_key("app.kubernetes.io/name"));
    assert!(is_label_key("servin.size"));
    assert!(!is_label_key("a b"));
    assert!(!is_label_key("Upper.Case/x"));
    assert!(is_label_value(""));
    assert!(!is_label_value("-x"));
    assert!(!is_label_value(&"x".repeat(64)));
}
