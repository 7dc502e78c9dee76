//! Service discovery and published ports for real: the engine's DNS server
//! on the networks' gateways answering containers' lookups by name, alias,
//! short ID and service name, and host ports forwarded to containers, with
//! the docker CLI against the engine's socket.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpListener;

use servin_testkit::probe::{curl, free_port};
use support::{EngineGuard, IMAGE, httpd};

/// An HTTP GET to `host` port 80 from a fresh container on `network`, the
/// name resolved through the container's resolv.conf; retried a few times
/// while the server starts.
fn fetch(e: &EngineGuard, network: &str, host: &str) -> Option<String> {
    e.http_get(network, &format!("{host}:80"), 10)
}

fn discovery(firewall: &str, third: u8) {
    let e = EngineGuard::with_firewall(firewall);
    let subnet = format!("10.233.{third}.0/24");
    let fixed = format!("10.233.{third}.77");
    e.docker_ok(&["network", "create", "--subnet", &subnet, "front"]);
    e.docker_ok(&["network", "create", "other"]);
    let id = e.run_detached(
        "web",
        &[
            "--network",
            "front",
            "--network-alias",
            "www",
            "--label",
            "servin.project=demo",
            "--label",
            "servin.name=site",
        ],
        &["sh", "-c", &httpd("first")],
    );
    let short = &id.trim()[..12];
    for name in ["web", "www", "site", short] {
        let got = fetch(&e, "front", name);
        assert!(
            got.as_deref()
                .is_some_and(|t| t.ends_with("\r\n\r\nfirst\n")),
            "fetch by {name}: {got:?}; engine log:\n{}",
            e.log()
        );
    }
    let ip = e.ip_on("web", "front");
    let looked = e.run_on("front", IMAGE, "nslookup web");
    assert!(
        looked.as_deref().is_some_and(|t| t.contains(&ip)),
        "nslookup web: {looked:?} (web is {ip})"
    );
    // The DNS server's per-query logs are filtered out.
    assert!(
        !e.log().contains("qflags:"),
        "per-query DNS logs in the engine log"
    );
    // Another network neither resolves nor reaches it.
    assert_eq!(
        fetch(&e, "other", "web"),
        None,
        "another network reached web"
    );
    assert_eq!(
        e.run_on("other", IMAGE, "nslookup web >/dev/null && echo found"),
        None
    );
    // A container on both networks finds names on either (its resolver is
    // its first network's gateway).
    e.run_detached("db", &["--network", "other"], &["sh", "-c", &httpd("db")]);
    e.run_detached("both", &["--network", "front"], &["sleep", "600"]);
    e.docker_ok(&["network", "connect", "other", "both"]);
    let mut got = None;
    for _ in 0..10 {
        let out = e.docker(&[
            "exec",
            "both",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 3 db 80",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && !text.is_empty() {
            got = Some(text);
            break;
        }
    }
    assert!(
        got.as_deref().is_some_and(|t| t.ends_with("\r\n\r\ndb\n")),
        "db from a container on both networks: {got:?}"
    );
    assert_eq!(
        e.run_on("front", IMAGE, "nslookup db >/dev/null && echo found"),
        None
    );
    e.docker_ok(&["rm", "-f", "db", "both"]);
    // A recreated container's new address is served at once.
    e.docker_ok(&["rm", "-f", "web"]);
    e.run_detached(
        "web",
        &["--network", "front", "--ip", &fixed],
        &["sh", "-c", &httpd("second")],
    );
    let got = fetch(&e, "front", "web");
    assert!(
        got.as_deref()
            .is_some_and(|t| t.ends_with("\r\n\r\nsecond\n")),
        "the recreated web: {got:?}"
    );
    let looked = e.run_on("front", IMAGE, "nslookup web");
    assert!(
        looked.as_deref().is_some_and(|t| t.contains(&fixed)),
        "nslookup of the recreated web: {looked:?}"
    );
    // The old alias went with the old container.
    assert_eq!(
        e.run_on("front", IMAGE, "nslookup www >/dev/null && echo found"),
        None
    );
    e.docker_ok(&["rm", "-f", "web"]);
    e.docker_ok(&["network", "rm", "front", "other"]);
    support::finish_network_test(e);
}

#[test]
fn names_resolve_within_a_network_with_nftables() {
    discovery("nft", 41);
}

#[test]
fn names_resolve_within_a_network_with_iptables() {
    discovery("iptables", 42);
}

#[test]
fn published_ports_answer_from_the_host_and_are_released() {
    let mut e = EngineGuard::with_firewall("nft");
    // The default network would outlive the test's containers: a network
    // of its own, removed at the end.
    e.docker_ok(&["network", "create", "pubnet"]);
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    e.run_detached(
        "pub",
        &["--network", "pubnet", "-p", &spec, "--expose", "9000/udp"],
        &["sh", "-c", &httpd("published")],
    );
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(
        curl(&url).as_deref(),
        Some("published\n"),
        "engine log:\n{}",
        e.log()
    );
    let shown = e.docker_ok(&["port", "pub"]);
    assert!(
        shown.contains(&format!("80/tcp -> 127.0.0.1:{port}")),
        "docker port: {shown}"
    );
    let ps = e.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{port}->80/tcp")) && ps.contains("9000/udp"),
        "docker ps: {ps}"
    );
    let v: serde_json::Value = serde_json::from_str(&e.docker_ok(&["inspect", "pub"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(
        v[0]["NetworkSettings"]["Ports"]["9000/udp"],
        serde_json::Value::Null
    );
    assert_eq!(
        v[0]["HostConfig"]["PortBindings"]["80/tcp"][0]["HostIp"],
        "127.0.0.1"
    );
    // The same host port again: refused, naming the container holding it,
    // with nothing left of the second container's start.
    let err = e.docker_err(&[
        "run",
        "-d",
        "--name",
        "clash",
        "--network",
        "pubnet",
        "-p",
        &spec,
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        err.contains(&port.to_string()) && err.contains("by container pub"),
        "port in use: {err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["network", "inspect", "pubnet"])).unwrap();
    let on = v[0]["Containers"].as_object().unwrap();
    assert_eq!(on.len(), 1, "the failed start kept its address: {on:?}");
    let state = e.docker_ok(&["inspect", "-f", "{{.State.Status}}", "clash"]);
    assert_eq!(state.trim(), "created");
    e.docker_ok(&["rm", "-f", "clash"]);
    // A port held by another process: its holder is named.
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let err = e.docker_err(&[
        "run",
        "-d",
        "--name",
        "held",
        "--network",
        "pubnet",
        "-p",
        &format!("127.0.0.1:{held}:80"),
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        err.contains(&held.to_string()) && err.contains("pid"),
        "port in use: {err}"
    );
    drop(holder);
    e.docker_ok(&["rm", "-f", "held"]);
    // Bad specifications and `none` are refused at create.
    let bad = format!(
        r#"{{"Image":"{IMAGE}","HostConfig":{{"PortBindings":{{"80/tcp":[{{"HostPort":"99999"}}]}}}}}}"#
    );
    let r = e.api(
        "POST",
        "/containers/create",
        &[("Content-Type", "application/json")],
        bad.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("99999"), "{}", r.text());
    let bad = format!(r#"{{"Image":"{IMAGE}","ExposedPorts":{{"eighty/tcp":{{}}}}}}"#);
    let r = e.api(
        "POST",
        "/containers/create",
        &[("Content-Type", "application/json")],
        bad.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let err = e.docker_err(&[
        "create",
        "--network",
        "none",
        "-p",
        "8080:80",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("none"), "{err}");
    // `host` shares the host's ports: published ports are ignored, with
    // Docker's warning.
    let out = e.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-p",
        "1:80",
        IMAGE,
        "true",
    ]);
    assert!(out.status.success());
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("discarded"), "{warned}");
    // After an engine restart the running container's port is published
    // again.
    e.kill();
    e.spawn();
    assert_eq!(
        curl(&url).as_deref(),
        Some("published\n"),
        "after a restart; engine log:\n{}",
        e.log()
    );
    // Names are served again too.
    let got = fetch(&e, "pubnet", "pub");
    assert!(
        got.as_deref()
            .is_some_and(|t| t.ends_with("\r\n\r\npublished\n")),
        "by name after a restart: {got:?}"
    );
    // Stopped: the port is free at once.
    e.docker_ok(&["stop", "-t", "1", "pub"]);
    let rebound = TcpListener::bind(("127.0.0.1", port));
    assert!(
        rebound.is_ok(),
        "the port is still held after stop: {rebound:?}"
    );
    drop(rebound);
    let v: serde_json::Value = serde_json::from_str(&e.docker_ok(&["inspect", "pub"])).unwrap();
    assert_eq!(v[0]["NetworkSettings"]["Ports"], serde_json::json!({}));
    // -P: every exposed port on a random host port.
    e.docker_ok(&["start", "pub"]);
    e.run_detached(
        "all",
        &["--network", "pubnet", "-P", "--expose", "80"],
        &["sh", "-c", &httpd("all")],
    );
    let shown = e.docker_ok(&["port", "all", "80/tcp"]);
    let random = shown
        .lines()
        .find_map(|l| l.strip_prefix("0.0.0.0:"))
        .unwrap_or_else(|| panic!("docker port all 80/tcp: {shown}"))
        .trim()
        .to_string();
    assert_eq!(
        curl(&format!("http://127.0.0.1:{random}/")).as_deref(),
        Some("all\n")
    );
    assert_eq!(curl(&url).as_deref(), Some("published\n"), "after a start");
    e.docker_ok(&["rm", "-f", "pub", "all"]);
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    e.docker_ok(&["network", "rm", "pubnet"]);
    support::finish_network_test(e);
}

#[test]
fn ports_publish_on_the_default_network() {
    let e = EngineGuard::with_firewall("iptables");
    let port = free_port();
    e.run_detached(
        "plain",
        &["-p", &format!("127.0.0.1:{port}:80/tcp")],
        &["sh", "-c", &httpd("plain")],
    );
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("plain\n"),
        "engine log:\n{}",
        e.log()
    );
    // The default network has no name service: the host's resolvers stay.
    let gw = e.docker_ok(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", "plain"]);
    let resolv = e.docker_ok(&["exec", "plain", "cat", "/etc/resolv.conf"]);
    assert!(
        !resolv.contains(&format!("nameserver {}", gw.trim())),
        "{resolv}"
    );
    let gw: std::net::Ipv4Addr = gw.trim().parse().unwrap();
    assert!(
        std::net::TcpStream::connect((gw, 53)).is_err(),
        "a DNS server listens on the default network's gateway"
    );
    e.docker_ok(&["rm", "-f", "plain"]);
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    support::finish_with_the_default_network(e, 1);
}
