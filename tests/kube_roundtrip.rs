//! The round trip of issue 18: `servin kube generate` of a three-container
//! project (a volume, a secret, a `healthy` dependency), then `servin kube
//! play` of that output on a fresh engine serves the same page on the same
//! port, with the dependency order kept.

#![allow(clippy::unwrap_used)]

mod support;

use servin_testkit::probe::free_port;
use support::sandbox::Env;

const IMAGE: &str = "test/kube-trip:1";

fn project(port: u16, store_port: u16) -> String {
    format!(
        r#"[project]
name = "trip"

[images.box]
ref = "{IMAGE}"

[volumes.data]

[secrets.token]
file = "./token.txt"

# The store: ready (healthy) once it wrote its data into the volume.
[containers.store]
image = "box"
command = ["sh", "-c", "busybox date +%s%N > /data/stamp && exec busybox httpd -f -p {store_port} -h /data"]
volumes = ["data:/data"]
expose = [{store_port}]
healthcheck = {{ cmd = "busybox test -f /data/stamp", interval = "1s", timeout = "1s", retries = 30 }}

# The web page: the secret and the store's answer, served on {port}.
[containers.web]
image = "box"
command = ["sh", "-c", "busybox mkdir -p /www && busybox cat /run/secrets/token > /www/index.html && busybox wget -q -O - http://store:{store_port}/stamp > /www/stamp && exec busybox httpd -f -p {port} -h /www"]
secrets = ["token"]
ports = ["{port}:{port}"]
depends_on = {{ store = "healthy" }}

[containers.idle]
image = "box"
command = ["sleep", "300"]
"#
    )
}

/// The body of `GET PATH` on 127.0.0.1:`port`, once it answers 200 with
/// `want` in it (polled while the server starts).
fn get_until(port: u16, path: &str, want: &str) -> Option<String> {
    let answer = support::http_get_until(port, path, want);
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.lines()
        .next()
        .is_some_and(|status| status.contains(" 200 "))
        .then(|| body.to_string())
}

/// When the container `name` started (RFC 3339 with nanoseconds sort as
/// text).
fn started_at(s: &support::sandbox::Sandbox, name: &str) -> String {
    s.inspect(name)["State"]["StartedAt"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn generate_then_play_serves_the_same_page_in_the_same_order() {
    let port = free_port();
    // (`kube play --publish` publishes every Service port: one of its own.)
    let store_port = free_port();
    // The project, up on one engine: what it serves.
    let first = Env::with_image(IMAGE);
    let file = first.write_project("trip", &project(port, store_port));
    let dir = file.parent().unwrap().to_path_buf();
    std::fs::write(dir.join("token.txt"), "token-42\n").unwrap();
    first.ok_in(&dir, &["up", "-d"]);
    let page = get_until(port, "/index.html", "token-42").unwrap_or_else(|| {
        panic!(
            "the project serves no page\n{}",
            first.run_in(&dir, &["logs"]).transcript()
        )
    });
    assert_eq!(page, "token-42\n");
    let yaml = first.ok_in(&dir, &["kube", "generate"]);
    first.ok_in(&dir, &["down", "--volumes"]);
    drop(first);

    // Its Kubernetes YAML, played on a fresh engine.
    let second = Env::with_image(IMAGE);
    // The healthy dependency waits with busybox (generate's wait image).
    second.ok(&["tag", IMAGE, "busybox:1.36"]);
    let kube = second.dir.path().join("trip.yaml");
    std::fs::write(&kube, &yaml).unwrap();
    second.ok(&["kube", "play", kube.to_str().unwrap(), "--publish"]);
    let page = get_until(port, "/index.html", "token-42").expect("the played YAML serves the page");
    assert_eq!(page, "token-42\n");
    // The web container asked the store, which was up first.
    let stamp = get_until(port, "/stamp", " 200 ").unwrap();
    assert!(!stamp.trim().is_empty(), "no stamp from the store");
    // Containers are named as `up` names them (the init container apart).
    let (store, web) = ("trip-store-1", "trip-web-1");
    assert!(
        started_at(&second, store) < started_at(&second, web),
        "web started before the store it depends on"
    );
    second.ok(&[
        "kube",
        "play",
        kube.to_str().unwrap(),
        "--down",
        "--volumes",
    ]);
}
