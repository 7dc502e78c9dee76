//! Networks for real: bridges, veths, namespaces and firewall rules on the
//! host, traffic between containers and out to the host, with the docker
//! CLI against the engine's socket. Both firewall backends.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use servin_testkit::probe::host_address;
use support::{EngineGuard, IMAGE, httpd};

/// A tiny HTTP server on the host's address; stops on drop.
struct HostServer {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl HostServer {
    fn start() -> Self {
        let l = TcpListener::bind((host_address(), 0)).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = s
                            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\negress-ok\n");
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Self { addr, stop }
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An HTTP GET from a fresh container on `network` to `host:port`; the
/// response, or `None` when nothing answered.
fn fetch(e: &EngineGuard, network: &str, addr: &str) -> Option<String> {
    e.http_get(network, addr, 1)
}

fn traffic(firewall: &str) {
    let e = EngineGuard::with_firewall(firewall);
    let server = HostServer::start();
    e.docker_ok(&["network", "create", "front"]);
    e.docker_ok(&["network", "create", "other"]);
    e.docker_ok(&["network", "create", "--internal", "sealed"]);
    e.run_detached(
        "web",
        &[
            "--network",
            "front",
            "--network-alias",
            "www",
            "--add-host",
            "hostside:host-gateway",
        ],
        &["sh", "-c", &httpd("hello")],
    );
    let ip = e.ip_on("web", "front");
    assert!(ip.parse::<Ipv4Addr>().is_ok(), "web's address: {ip:?}");
    let url = format!("{ip}:80");
    // The server may need a moment to listen.
    let got = e.http_get("front", &url, 20);
    assert!(
        got.as_deref()
            .is_some_and(|t| t.ends_with("\r\n\r\nhello\n")),
        "same network, by address: {got:?}; engine log:\n{}",
        e.log()
    );
    assert_eq!(
        fetch(&e, "other", &url),
        None,
        "another network reached web"
    );
    assert_eq!(
        fetch(&e, "sealed", &url),
        None,
        "an internal network reached web"
    );
    let host_url = server.addr.clone();
    let got = fetch(&e, "front", &host_url);
    assert!(
        got.as_deref().is_some_and(|t| t.ends_with("egress-ok\n")),
        "egress from a normal network: {got:?}"
    );
    assert_eq!(
        fetch(&e, "sealed", &host_url),
        None,
        "egress from an internal network"
    );
    // Aliases and addresses are reported like Docker's.
    let inspect = e.docker_ok(&["inspect", "web"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let net = &v[0]["NetworkSettings"]["Networks"]["front"];
    assert_eq!(net["Aliases"], serde_json::json!(["www"]));
    assert_eq!(net["IPAddress"], ip.as_str());
    assert_eq!(v[0]["NetworkSettings"]["IPAddress"], ip.as_str());
    let hosts = e.docker_ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&ip), "/etc/hosts: {hosts}");
    let gw = net["Gateway"].as_str().unwrap().to_string();
    assert!(
        hosts.contains(&format!("{gw}\thostside")),
        "/etc/hosts: {hosts}"
    );
    let resolv = e.docker_ok(&["exec", "web", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains(&format!("nameserver {gw}")), "{resolv}");
    e.docker_ok(&["rm", "-f", "web"]);
    e.docker_ok(&["network", "rm", "front", "other", "sealed"]);
    support::finish_network_test(e);
}

#[test]
fn traffic_and_isolation_with_nftables() {
    traffic("nft");
}

#[test]
fn traffic_and_isolation_with_iptables() {
    traffic("iptables");
}

#[test]
fn addresses_survive_an_engine_restart_and_are_released() {
    let mut e = EngineGuard::with_firewall("nft");
    e.docker_ok(&["network", "create", "--subnet", "10.231.7.0/24", "keep"]);
    e.run_detached("ka", &["--network", "keep"], &["sleep", "600"]);
    let a = e.ip_on("ka", "keep");
    assert_eq!(a, "10.231.7.2");
    e.kill();
    e.spawn();
    e.run_detached("kb", &["--network", "keep"], &["sleep", "600"]);
    assert_eq!(
        e.ip_on("kb", "keep"),
        "10.231.7.3",
        "a's address was handed out again"
    );
    assert_eq!(e.ip_on("ka", "keep"), a);
    let ifs = e.docker_ok(&["exec", "ka", "ls", "/sys/class/net"]);
    assert!(ifs.contains("eth0"), "a lost its interface: {ifs}");
    e.docker_ok(&["rm", "-f", "ka"]);
    e.run_detached("kc", &["--network", "keep"], &["sleep", "600"]);
    assert_eq!(
        e.ip_on("kc", "keep"),
        "10.231.7.2",
        "a's address was not released"
    );
    // Stopping releases too.
    e.docker_ok(&["stop", "-t", "0", "kc"]);
    let v: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["network", "inspect", "keep"])).unwrap();
    let containers = v[0]["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    e.docker_ok(&["rm", "-f", "kb", "kc"]);
    e.docker_ok(&["network", "rm", "keep"]);
    support::finish_network_test(e);
}

#[test]
fn network_commands_connect_and_bad_input() {
    let e = EngineGuard::with_firewall("nft");
    let id = e.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.232.9.0/24",
        "--gateway",
        "10.232.9.254",
        "--label",
        "team=a",
        "back",
    ]);
    let ls = e.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(ls.contains("back bridge"), "{ls}");
    let v: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["network", "inspect", "back"])).unwrap();
    assert_eq!(v[0]["Id"], id.trim());
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.232.9.0/24");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.232.9.254");
    assert_eq!(v[0]["Labels"]["team"], "a");
    let err = e.docker_err(&["network", "create", "back"]);
    assert!(err.contains("already exists"), "{err}");
    let err = e.docker_err(&["network", "create", "--subnet", "10.232.9.128/25", "clash"]);
    assert!(err.contains("overlaps"), "{err}");
    let err = e.docker_err(&["run", "--rm", "--network", "nowhere", IMAGE, "true"]);
    assert!(err.contains("nowhere not found"), "{err}");
    // The default network: made on first use, host resolvers kept.
    e.run_detached("box", &[], &["sleep", "600"]);
    let ifs = e.docker_ok(&["exec", "box", "ls", "/sys/class/net"]);
    assert!(ifs.contains("eth0") && !ifs.contains("eth1"), "{ifs}");
    e.docker_ok(&["network", "connect", "--alias", "db", "back", "box"]);
    let ifs = e.docker_ok(&["exec", "box", "ls", "/sys/class/net"]);
    assert!(ifs.contains("eth1"), "connect did not add eth1: {ifs}");
    assert_eq!(e.ip_on("box", "back"), "10.232.9.1");
    let err = e.docker_err(&["network", "rm", "back"]);
    assert!(
        err.contains("box"),
        "the error should name the container: {err}"
    );
    e.docker_ok(&["network", "disconnect", "back", "box"]);
    let ifs = e.docker_ok(&["exec", "box", "ls", "/sys/class/net"]);
    assert!(!ifs.contains("eth1"), "disconnect left eth1: {ifs}");
    // `none` keeps loopback only.
    let ifs = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(ifs.trim(), "lo");
    e.docker_ok(&["rm", "-f", "box"]);
    let pruned = e.docker_ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("back"), "{pruned}");
    let ls = e.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["bridge", "host", "none"]);
    let err = e.docker_err(&["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined"), "{err}");
    support::finish_with_the_default_network(e, 2);
}

/// Docker's pre-defined networks are always there: `bridge` (made when
/// first listed), `host` and `none`, listed, inspected with their
/// containers, filtered as built-in, and never removed or connected to.
#[test]
fn the_predefined_networks_are_always_listed() {
    let e = EngineGuard::with_firewall("nft");
    // A listing that cannot show the default network does not make it.
    let by_label = e.docker_ok(&["network", "ls", "-q", "--filter", "label=x"]);
    assert_eq!(by_label.trim(), "");
    assert!(e.net_objects().bridges.is_empty());
    let ls = e.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    let mut rows: Vec<&str> = ls.lines().collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        ["bridge bridge local", "host host local", "none null local"]
    );
    let custom = e.docker_ok(&["network", "ls", "-q", "--filter", "type=custom"]);
    assert_eq!(custom.trim(), "");
    let null = e.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "driver=null",
    ]);
    assert_eq!(null.trim(), "none");
    let dangling = e.docker_ok(&["network", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.trim(), "");

    let id = e.run_detached("hostbox", &["--network", "host"], &["sleep", "300"]);
    let v: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["network", "inspect", "host", "none"])).unwrap();
    assert_eq!(v[0]["Name"], "host");
    assert_eq!(v[0]["Driver"], "host");
    assert_eq!(v[0]["IPAM"]["Config"], serde_json::json!([]));
    assert_eq!(v[0]["Containers"][id.trim()]["Name"], "hostbox", "{}", v[0]);
    assert_eq!(v[1]["Name"], "none");
    assert_eq!(v[1]["Driver"], "null");
    assert_eq!(v[1]["Containers"], serde_json::json!({}));
    // By ID and by a prefix of it, as for any network.
    let host_id = v[0]["Id"].as_str().unwrap().to_string();
    let by_id = e.docker_ok(&["network", "inspect", "-f", "{{.Name}}", &host_id[..12]]);
    assert_eq!(by_id.trim(), "host");
    let c = e.inspect_container("hostbox");
    assert_eq!(
        c["NetworkSettings"]["Networks"]["host"]["NetworkID"],
        host_id
    );

    for (args, what) in [
        (vec!["network", "rm", "host"], "cannot be removed"),
        (vec!["network", "rm", "none"], "cannot be removed"),
        (
            vec!["network", "connect", "none", "hostbox"],
            "cannot be connected to",
        ),
        (
            vec!["network", "disconnect", "host", "hostbox"],
            "cannot be disconnected from",
        ),
        (vec!["network", "create", "host"], "pre-defined"),
    ] {
        let err = e.docker_err(&args);
        assert!(err.contains(what), "{args:?}: {err}");
    }
    e.docker_ok(&["rm", "-f", "hostbox"]);
    support::finish_with_the_default_network(e, 1);
}

/// `--ip-range` gives containers addresses from that part of the subnet;
/// `--attachable` is kept and reported; settings servin's bridge networks
/// do not have are refused, naming them, with nothing made.
#[test]
fn ip_ranges_are_honoured_and_unsupported_settings_refused() {
    let e = EngineGuard::with_firewall("nft");
    e.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.232.17.0/24",
        "--ip-range",
        "10.232.17.128/25",
        "--attachable",
        "ranged",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["network", "inspect", "ranged"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["IPRange"], "10.232.17.128/25");
    assert_eq!(v[0]["Attachable"], true);
    e.run_detached("ranged-a", &["--network", "ranged"], &["sleep", "300"]);
    assert_eq!(e.ip_on("ranged-a", "ranged"), "10.232.17.128");
    // A fixed address outside the range but inside the subnet is allowed.
    e.run_detached(
        "ranged-b",
        &["--network", "ranged", "--ip", "10.232.17.9"],
        &["sleep", "300"],
    );
    assert_eq!(e.ip_on("ranged-b", "ranged"), "10.232.17.9");
    // (The docker CLI checks this one itself: through the API.)
    let body = serde_json::json!({
        "Name": "refused",
        "IPAM": {"Config": [{"Subnet": "10.232.18.0/24", "IPRange": "10.232.19.0/25"}]},
    });
    let r = e.api(
        "POST",
        "/v1.47/networks/create",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not inside the subnet"), "{}", r.text());
    for (args, what) in [
        (
            vec![
                "--subnet",
                "10.232.18.0/24",
                "--aux-address",
                "a=10.232.18.5",
            ],
            "auxiliary addresses",
        ),
        (vec!["--ipam-driver", "other"], "IPAM driver \"other\""),
        (vec!["--ipam-opt", "k=v"], "IPAM driver options"),
        (vec!["--config-only"], "config-only"),
        (vec!["--scope", "swarm"], "scope \"swarm\""),
    ] {
        let mut all = vec!["network", "create"];
        all.extend(args.iter().copied());
        all.push("refused");
        let err = e.docker_err(&all);
        assert!(err.contains(what), "{args:?}: {err}");
    }
    let ls = e.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains("refused"), "{ls}");
    e.docker_ok(&["rm", "-f", "ranged-a", "ranged-b"]);
    e.docker_ok(&["network", "rm", "ranged"]);
    support::finish_with_the_default_network(e, 2);
}
