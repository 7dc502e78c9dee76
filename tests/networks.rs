//! `servin network ...` and `servin run --network` against a real engine
//! started by servin itself: bridges, veths and firewall rules on the host.

#![allow(clippy::unwrap_used)]

mod support;

use servin_testkit::cleanup::mounts_below;
use servin_testkit::probe::{curl, get_with_nc};
use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/cli-net:1";

/// An HTTP GET from a fresh container on `network`; the response, if any.
fn fetch(s: &Sandbox, network: &str, host: &str) -> Option<String> {
    let r = s.run(&[
        "run",
        "--rm",
        "--network",
        network,
        IMAGE,
        "sh",
        "-c",
        &get_with_nc(host, 80),
    ]);
    (r.code == 0 && !r.stdout.is_empty()).then_some(r.stdout)
}

#[test]
fn network_commands_and_traffic() {
    let s = Env::with_image(IMAGE);
    s.ok(&["network", "create", "--label", "tier=web", "apps"]);
    s.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.233.4.0/24",
        "quiet",
    ]);
    let ls = s.ok(&["network", "ls"]);
    assert!(ls.contains("apps") && ls.contains("10.233.4.0/24"), "{ls}");
    s.ok(&[
        "run",
        "-d",
        "--name",
        "site",
        "--network",
        "apps",
        "--network-alias",
        "www",
        IMAGE,
        "sh",
        "-c",
        "busybox mkdir -p /www && echo hi > /www/index.html && exec busybox httpd -f -p 80 -h /www",
    ]);
    let inspect = s.ok(&["network", "inspect", "apps"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Labels"]["tier"], "web");
    let site = v[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(site["Name"], "site");
    let ip = site["IPv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut got = None;
    for _ in 0..20 {
        got = fetch(&s, "apps", &ip);
        if got.is_some() {
            break;
        }
    }
    assert!(
        got.as_deref().is_some_and(|t| t.ends_with("hi\n")),
        "{got:?}"
    );
    assert_eq!(
        fetch(&s, "quiet", &ip),
        None,
        "another network reached site"
    );
    let r = s.run(&["network", "rm", "apps"]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("site");
    let r = s.run(&["run", "--rm", "--network", "nowhere", IMAGE, "true"]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("nowhere not found");
    s.ok(&["network", "connect", "--alias", "q", "quiet", "site"]);
    let ifs = s.ok(&["exec", "site", "ls", "/sys/class/net"]);
    assert!(ifs.contains("eth1"), "{ifs}");
    s.ok(&["network", "disconnect", "quiet", "site"]);
    s.ok(&["rm", "-f", "site"]);
    // apps, quiet and the default network, which `network ls` shows
    // (and so makes), as Docker's is always there.
    let made = s.net_objects();
    assert_eq!(made.bridges.len(), 3, "{made:?}");
    let pruned = s.ok(&["network", "prune"]);
    assert!(
        pruned.contains("apps") && pruned.contains("quiet"),
        "{pruned}"
    );
    assert_eq!(s.net_objects().bridges.len(), 1, "only the default stays");
    let root = s.root();
    drop(s);
    let left = made.leftovers_settled();
    assert!(left.is_empty(), "left on the host: {left:?}");
    assert!(mounts_below(&root).is_empty());
}

#[test]
fn names_and_published_ports_from_the_cli() {
    let s = Env::with_image(IMAGE);
    s.ok(&["network", "create", "shop"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("127.0.0.1:{port}:80");
    s.ok(&[
        "run",
        "-d",
        "--name",
        "store",
        "--network",
        "shop",
        "--network-alias",
        "www",
        "-p",
        &spec,
        "--expose",
        "9000/udp",
        IMAGE,
        "sh",
        "-c",
        "busybox mkdir -p /www && echo hi > /www/index.html && exec busybox httpd -f -p 80 -h /www",
    ]);
    for name in ["store", "www"] {
        let mut got = None;
        for _ in 0..10 {
            got = fetch(&s, "shop", name);
            if got.is_some() {
                break;
            }
        }
        assert!(
            got.as_deref().is_some_and(|t| t.ends_with("hi\n")),
            "by {name}: {got:?}"
        );
    }
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("hi\n")
    );
    let shown = s.ok(&["port", "store"]);
    assert_eq!(shown.trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    let shown = s.ok(&["port", "store", "80"]);
    assert_eq!(shown.trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    let r = s.run(&["port", "store", "81"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let ps = s.ok(&["ps"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{port}->80/tcp, 9000/udp")),
        "{ps}"
    );
    let r = s.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080:80",
        IMAGE,
        "true",
    ]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("\"none\"");
    let r = s.run(&["create", "-p", "80:80:80:80", IMAGE, "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.assert_stderr_has("--publish");
    s.ok(&["stop", "-t", "1", "store"]);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the port is still held after stop"
    );
    s.ok(&["rm", "store"]);
    let made = s.net_objects();
    s.ok(&["network", "rm", "shop"]);
    let left = made.leftovers_settled();
    assert!(left.is_empty(), "left on the host: {left:?}");
    let root = s.root();
    drop(s);
    assert!(mounts_below(&root).is_empty());
}

#[test]
fn ipv6_network_from_the_cli() {
    let s = Env::with_image(IMAGE);
    let help = s.ok(&["network", "create", "--help"]);
    assert!(help.contains("--ipv6"), "{help}");
    s.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.233.6.0/24",
        "--subnet",
        "fd5e:7a11:5::/64",
        "--gateway",
        "fd5e:7a11:5::fe",
        "six",
    ]);
    let r = s.run(&["network", "create", "--subnet", "fd5e:7a11:6::/64", "nov6"]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("--ipv6");
    s.ok(&[
        "run",
        "-d",
        "--name",
        "box6",
        "--network",
        "six",
        IMAGE,
        "sleep",
        "600",
    ]);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["network", "inspect", "six"])).unwrap();
    assert_eq!(v[0]["EnableIPv6"], true);
    assert_eq!(
        v[0]["IPAM"]["Config"],
        serde_json::json!([
            {"Subnet": "10.233.6.0/24", "Gateway": "10.233.6.1"},
            {"Subnet": "fd5e:7a11:5::/64", "Gateway": "fd5e:7a11:5::fe"},
        ])
    );
    let box6 = v[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(box6["IPv6Address"], "fd5e:7a11:5::1/64");
    s.ok(&["rm", "-f", "box6"]);
    let made = s.net_objects();
    s.ok(&["network", "rm", "six"]);
    let left = made.leftovers_settled();
    assert!(left.is_empty(), "left on the host: {left:?}");
    let root = s.root();
    drop(s);
    assert!(mounts_below(&root).is_empty());
}
