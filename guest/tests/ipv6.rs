//! IPv6 networks for real: a network made through the API with an IPv6
//! subnet beside its IPv4 one, and one given a unique local subnet; their
//! bridges, containers' addresses and routes, AAAA answers of the engine's
//! DNS server, isolation and egress over IPv6, inspect output, refusals,
//! an engine restart, and removal leaving nothing behind. Both firewall
//! backends; the docker CLI's `--ipv6`, `--subnet` and `--ip6`.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::io::{Read, Write};
use std::net::{Ipv6Addr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use servin_testkit::probe;
use support::{EngineGuard, IMAGE, httpd};

/// The host's first global IPv6 address outside servin's bridges, if it
/// has one (from `/proc/net/if_inet6`: address, index, prefix, scope 00).
fn host_ipv6() -> Option<Ipv6Addr> {
    let text = std::fs::read_to_string("/proc/net/if_inet6").ok()?;
    text.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let (addr, scope, dev) = (cols.first()?, cols.get(3)?, cols.get(5)?);
        if *scope != "00" || dev.starts_with("sv") || *dev == "lo" {
            return None;
        }
        u128::from_str_radix(addr, 16).ok().map(Ipv6Addr::from)
    })
}

/// A tiny TCP server on `addr` answering `egress6-ok`; stops on drop.
struct HostServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HostServer {
    fn start(addr: Ipv6Addr) -> Self {
        let l = TcpListener::bind((addr, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
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
                        let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\negress6-ok\n");
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn post_json(e: &EngineGuard, path: &str, body: &serde_json::Value) -> (u16, String) {
    let r = e.api(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (r.status, r.text())
}

fn inspect_network(e: &EngineGuard, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["network", "inspect", name])).unwrap();
    v[0].clone()
}

/// The IPv6 addresses of `dev` on the host, as `ip` prints them.
fn ipv6_of_link(dev: &str) -> String {
    let out = Command::new("ip")
        .args(["-6", "-o", "addr", "show", "dev", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A GET of `[addr]:80` (or `name:80` resolved with an AAAA query to the
/// engine's DNS server) from a fresh container on `network`, retried while
/// the server starts.
fn get6(e: &EngineGuard, network: &str, target: &str, tries: usize) -> Option<String> {
    let script = if target.contains(':') {
        probe::get_with_nc(target, 80)
    } else {
        format!(
            "a=$(nslookup -type=AAAA {target} | grep -o 'fd[0-9a-f]*:[0-9a-f:]*' | head -n 1) && test -n \"$a\" && {}",
            probe::get_with_nc("$a", 80)
        )
    };
    (0..tries).find_map(|_| e.run_on(network, IMAGE, &script))
}

fn ipv6_end_to_end(firewall: &str, net: u16) {
    let e = EngineGuard::with_firewall(firewall);
    let subnet = format!("fd5e:7a11:{net:x}::/64");
    let gw = format!("fd5e:7a11:{net:x}::1");
    let v4 = format!("10.236.{net}.0/24");
    // Through the API, as docker-py and compose send it.
    let (status, text) = post_json(
        &e,
        "/v1.47/networks/create",
        &serde_json::json!({
            "Name": "six",
            "EnableIPv6": true,
            "IPAM": {"Config": [{"Subnet": v4}, {"Subnet": subnet}]},
        }),
    );
    assert_eq!(status, 201, "{text}");
    let (status, text) = post_json(
        &e,
        "/v1.47/networks/create",
        &serde_json::json!({"Name": "auto", "EnableIPv6": true}),
    );
    assert_eq!(status, 201, "{text}");
    // Refusals, each naming what is wrong.
    for (body, want_status, want) in [
        (
            serde_json::json!({"Name": "bad", "EnableIPv6": true,
                "IPAM": {"Config": [{"Subnet": format!("fd5e:7a11:{net:x}::5/64")}]}}),
            400,
            format!("fd5e:7a11:{net:x}::5 has host bits set: did you mean {subnet}?"),
        ),
        (
            serde_json::json!({"Name": "bad", "EnableIPv6": true,
                "IPAM": {"Config": [{"Subnet": format!("fd5e:7a11:{net:x}::/48")}]}}),
            409,
            format!("overlaps {subnet}"),
        ),
        (
            serde_json::json!({"Name": "bad",
                "IPAM": {"Config": [{"Subnet": "fd5e:7a12::/64"}]}}),
            400,
            "IPv6 subnet fd5e:7a12::/64 given but IPv6 is not enabled".to_string(),
        ),
        (
            serde_json::json!({"Name": "bad", "EnableIPv6": true,
                "IPAM": {"Config": [{"Subnet": "fd5e:7a12::/64", "Gateway": "fd5e:7a13::1"}]}}),
            400,
            "invalid gateway fd5e:7a13::1".to_string(),
        ),
    ] {
        let (status, text) = post_json(&e, "/v1.47/networks/create", &body);
        assert_eq!(status, want_status, "{body}: {text}");
        assert!(text.contains(&want), "{body}: {text}");
    }

    let six = inspect_network(&e, "six");
    assert_eq!(six["EnableIPv6"], true);
    assert_eq!(six["IPAM"]["Config"][0]["Subnet"], v4.as_str());
    assert_eq!(six["IPAM"]["Config"][1]["Subnet"], subnet.as_str());
    assert_eq!(six["IPAM"]["Config"][1]["Gateway"], gw.as_str());
    let auto = inspect_network(&e, "auto");
    let auto_subnet = auto["IPAM"]["Config"][1]["Subnet"].as_str().unwrap();
    assert!(
        auto_subnet.starts_with("fd") && auto_subnet.ends_with("::/64"),
        "{auto}"
    );
    let bridge = format!("sv-{}", &six["Id"].as_str().unwrap()[..10]);
    let on_bridge = ipv6_of_link(&bridge);
    assert!(
        on_bridge.contains(&format!("{gw}/64")),
        "bridge {bridge}: {on_bridge}"
    );

    e.run_detached(
        "web",
        &["--network", "six", "--network-alias", "www"],
        &["sh", "-c", &httpd("hello6")],
    );
    e.run_detached(
        "pinned",
        &[
            "--network",
            "six",
            "--ip6",
            &format!("fd5e:7a11:{net:x}::99"),
        ],
        &["sleep", "600"],
    );
    let web = e.inspect_container("web");
    let id = web["Id"].as_str().unwrap().to_string();
    let n = &web["NetworkSettings"]["Networks"]["six"];
    let addr = format!("fd5e:7a11:{net:x}::2");
    assert_eq!(n["GlobalIPv6Address"], addr.as_str(), "{n}");
    assert_eq!(n["GlobalIPv6PrefixLen"], 64);
    assert_eq!(n["IPv6Gateway"], gw.as_str());
    assert_eq!(web["NetworkSettings"]["GlobalIPv6Address"], addr.as_str());
    assert_eq!(web["NetworkSettings"]["IPv6Gateway"], gw.as_str());
    let pinned = e.inspect_container("pinned");
    assert_eq!(
        pinned["NetworkSettings"]["Networks"]["six"]["GlobalIPv6Address"],
        format!("fd5e:7a11:{net:x}::99")
    );
    assert_eq!(
        pinned["NetworkSettings"]["Networks"]["six"]["IPAMConfig"]["IPv6Address"],
        format!("fd5e:7a11:{net:x}::99")
    );
    let six = inspect_network(&e, "six");
    assert_eq!(
        six["Containers"][&id]["IPv6Address"],
        format!("{addr}/64"),
        "{six}"
    );
    // Inside: the address, the IPv6 default route, resolv.conf unchanged.
    let ifs = e.docker_ok(&["exec", "web", "cat", "/proc/net/if_inet6"]);
    let hex: String = addr
        .parse::<Ipv6Addr>()
        .unwrap()
        .octets()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(ifs.contains(&format!("{hex} ")), "{ifs}");
    let routes = e.docker_ok(&["exec", "web", "cat", "/proc/net/ipv6_route"]);
    let gw_hex: String = gw
        .parse::<Ipv6Addr>()
        .unwrap()
        .octets()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with(&format!("{} 00 ", "0".repeat(32))) && l.contains(&gw_hex)),
        "no IPv6 default route via {gw}: {routes}"
    );
    let resolv = e.docker_ok(&["exec", "web", "cat", "/etc/resolv.conf"]);
    let gw4 = n["Gateway"].as_str().unwrap();
    assert!(resolv.contains(&format!("nameserver {gw4}")), "{resolv}");
    let hosts = e.docker_ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&addr), "/etc/hosts: {hosts}");

    // Over IPv6: by address, by name and alias (AAAA from the engine).
    let got = get6(&e, "six", &addr, 20);
    assert!(
        got.as_deref().is_some_and(|t| t.ends_with("hello6\n")),
        "by address: {got:?}; engine log:\n{}",
        e.log()
    );
    for name in ["web", "www"] {
        let got = get6(&e, "six", name, 3);
        assert!(
            got.as_deref().is_some_and(|t| t.ends_with("hello6\n")),
            "by name {name}: {got:?}"
        );
    }
    // (A few tries each: a lookup may time out on a loaded machine.)
    let pinned = format!("fd5e:7a11:{net:x}::99");
    let aaaa = (0..5)
        .map(|_| e.run_on("six", IMAGE, "nslookup -type=AAAA pinned"))
        .find(|t| t.as_deref().is_some_and(|t| t.contains(&pinned)));
    assert!(aaaa.is_some(), "no AAAA {pinned} for pinned");
    let ip4 = n["IPAddress"].as_str().unwrap();
    let a = (0..5)
        .map(|_| e.run_on("six", IMAGE, "nslookup -type=A web"))
        .find(|t| t.as_deref().is_some_and(|t| t.contains(ip4)));
    assert!(a.is_some(), "no A {ip4} for web");
    // Another IPv6 network does not reach it.
    assert_eq!(get6(&e, "auto", &addr, 1), None, "auto reached web");
    // Out through the host over IPv6; not from an internal network.
    e.docker_ok(&["network", "create", "--internal", "--ipv6", "sealed6"]);
    assert_eq!(get6(&e, "sealed6", &addr, 1), None, "sealed6 reached web");
    if let Some(host) = host_ipv6() {
        let server = HostServer::start(host);
        let script = probe::get_with_nc(&host.to_string(), server.port);
        let got = e.run_on("six", IMAGE, &script);
        assert!(
            got.as_deref().is_some_and(|t| t.ends_with("egress6-ok\n")),
            "egress to {host}: {got:?}"
        );
        assert_eq!(
            e.run_on("sealed6", IMAGE, &script),
            None,
            "an internal network reached {host}"
        );
    }
    // The firewall holds IPv6 rules for it.
    let tag = &bridge[3..];
    if firewall == "iptables" {
        let saved =
            String::from_utf8_lossy(&Command::new("ip6tables-save").output().unwrap().stdout)
                .into_owned();
        assert!(
            saved.contains(&format!(
                "-A SERVIN-{tag}-NAT -s {subnet} ! -o {bridge} -j MASQUERADE"
            )),
            "{saved}"
        );
    } else {
        let table = Command::new("nft")
            .args(["list", "table", "inet", &format!("servin-{tag}")])
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&table.stdout);
        assert!(table.contains(&format!("ip6 saddr {subnet}")), "{table}");
    }
    // Addresses asked for are checked as Docker checks them.
    let err = e.docker_err(&[
        "run",
        "--rm",
        "--network",
        "six",
        "--ip6",
        &format!("fd5e:7a11:{net:x}::99"),
        IMAGE,
        "true",
    ]);
    assert!(err.contains("already in use"), "{err}");
    let err = e.docker_err(&[
        "run",
        "--rm",
        "--network",
        "six",
        "--ip6",
        "fd5e:7a14::9",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("invalid address fd5e:7a14::9"), "{err}");
    // Refused at create, as Docker refuses it, on a network without IPv6.
    e.docker_ok(&["network", "create", "four"]);
    let err = e.docker_err(&[
        "create",
        "--network",
        "four",
        "--ip6",
        "fd5e:7a14::9",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("the network has no IPv6"), "{err}");

    e.docker_ok(&["rm", "-f", "web", "pinned"]);
    e.docker_ok(&["network", "rm", "six", "auto", "sealed6", "four"]);
    assert!(ipv6_of_link(&bridge).is_empty());
    support::finish_network_test(e);
}

#[test]
fn ipv6_network_with_nftables() {
    ipv6_end_to_end("nft", 1);
}

#[test]
fn ipv6_network_with_iptables() {
    ipv6_end_to_end("iptables", 2);
}

/// The docker CLI's own flags; the network outlives an engine restart and
/// its bridge is made again with its IPv6 gateway.
#[test]
fn docker_cli_ipv6_network_survives_a_restart() {
    let mut e = EngineGuard::with_firewall("nft");
    // A fixed IPv4 subnet outside the engines' automatic pool: while this
    // engine is down with its bridge deleted, another test's engine must
    // not take the same subnet (it once did, and held the gateway's DNS
    // port).
    e.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.231.57.0/24",
        "--gateway",
        "10.231.57.1",
        "--subnet",
        "fd5e:7a11:3::/64",
        "--gateway",
        "fd5e:7a11:3::fe",
        "cli6",
    ]);
    let err = e.docker_err(&["network", "create", "--subnet", "fd5e:7a11:4::/64", "nov6"]);
    assert!(err.contains("--ipv6"), "{err}");
    let v = inspect_network(&e, "cli6");
    assert_eq!(v["EnableIPv6"], true);
    assert_eq!(v["IPAM"]["Config"][1]["Subnet"], "fd5e:7a11:3::/64");
    assert_eq!(v["IPAM"]["Config"][1]["Gateway"], "fd5e:7a11:3::fe");
    let bridge = format!("sv-{}", &v["Id"].as_str().unwrap()[..10]);
    e.run_detached("one", &["--network", "cli6"], &["sleep", "600"]);
    let f = "{{(index .NetworkSettings.Networks \"cli6\").GlobalIPv6Address}}";
    assert_eq!(
        e.docker_ok(&["inspect", "-f", f, "one"]).trim(),
        "fd5e:7a11:3::1"
    );
    // The engine goes, and so does the bridge (as after a host reboot).
    e.kill();
    Command::new("ip")
        .args(["link", "del", &bridge])
        .status()
        .unwrap();
    e.spawn();
    let v = inspect_network(&e, "cli6");
    assert_eq!(v["EnableIPv6"], true, "{v}");
    e.run_detached("two", &["--network", "cli6"], &["sleep", "600"]);
    assert!(
        ipv6_of_link(&bridge).contains("fd5e:7a11:3::fe/64"),
        "{}",
        ipv6_of_link(&bridge)
    );
    let two = e.docker_ok(&["inspect", "-f", f, "two"]);
    assert_eq!(two.trim(), "fd5e:7a11:3::2", "one's address was handed out");
    // A few tries: on a loaded machine the first lookup may time out
    // while the restarted engine takes up the network again.
    let got = (0..10).find_map(|_| {
        e.run_on(
            "cli6",
            IMAGE,
            "nslookup -type=AAAA two | grep -o 'fd5e:7a11:3::2'",
        )
    });
    assert_eq!(
        got.as_deref().map(str::trim),
        Some("fd5e:7a11:3::2"),
        "{}",
        e.log()
    );
    e.docker_ok(&["rm", "-f", "one", "two"]);
    e.docker_ok(&["network", "rm", "cli6"]);
    support::finish_network_test(e);
}
