//! Published ports through the kernel's fast path, for real: connections
//! to 127.0.0.1 and to the host's own address rewritten to the container
//! (nftables maps or an iptables chain), the container seeing its gateway
//! as the peer, other networks and the container itself reaching the port
//! through the host's address, UDP, the rules going with the container and
//! after an engine crash, and `SERVIN_PORT_FORWARD=userland`.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use servin_testkit::probe::{curl_retried, host_address};
use support::{EngineGuard, IMAGE};

fn engine(firewall: &str, forward: &str) -> EngineGuard {
    EngineGuard::with_image(
        IMAGE,
        &[
            ("SERVIN_FIREWALL", firewall),
            ("SERVIN_PORT_FORWARD", forward),
        ],
    )
}

/// A busybox httpd on port 80 whose `/cgi-bin/peer` answers `NAME` and
/// the client's address (IPv4, without httpd's `[::ffff:...]`) and port as
/// it sees them.
fn peer_server(name: &str) -> String {
    format!(
        "mkdir -p /www/cgi-bin && {{ echo '#!/bin/sh'; echo 'echo Content-Type: text/plain'; echo echo; echo 'a=${{REMOTE_ADDR#*:ffff:}}; echo {name} ${{a%]}} $REMOTE_PORT'; }} > /www/cgi-bin/peer && chmod +x /www/cgi-bin/peer && exec httpd -f -p 80 -h /www"
    )
}

fn output(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port free for both TCP and UDP on every address right now.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// `curl` from the host, from `local_port` when given: the body, or
/// `None` when nothing answered (or only with an HTTP error).
fn curl(url: &str, local_port: Option<u16>) -> Option<String> {
    let port = local_port.map(|p| p.to_string());
    let mut args = vec!["-s", "-f", "-m", "3"];
    if let Some(p) = &port {
        args.extend(["--local-port", p]);
    }
    curl_retried(&args, url, 30)
}

/// `GET /cgi-bin/peer` from inside `container` to `host:port` (busybox
/// `nc`): the body when it answered, else its last error.
fn get_in(e: &EngineGuard, container: &str, host: &str, port: u16) -> String {
    let script = format!("printf 'GET /cgi-bin/peer HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}");
    let mut last = String::new();
    for _ in 0..10 {
        let out = e.docker(&["exec", container, "sh", "-c", &script]);
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        if let Some((_, body)) = text.split_once("\n\n") {
            return body.to_string();
        }
        last = format!(
            "no answer ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

/// The kernel's forwarding of published ports of every network the engine
/// made: nftables map elements (`tcp . 127.0.0.1 . 8080 : 10.1.2.3 . 80`)
/// or iptables DNAT rules.
fn kernel_rules(e: &EngineGuard, firewall: &str) -> Vec<String> {
    let mut out = Vec::new();
    for bridge in e.net_objects().bridges {
        let tag = bridge.trim_start_matches("sv-");
        if firewall == "nft" {
            for map in ["dnat_ports", "dnat_any"] {
                let listed = output(
                    "nft",
                    &["list", "map", "inet", &format!("servin-{tag}"), map],
                );
                let Some(start) = listed.find("elements = {") else {
                    continue;
                };
                let rest = &listed[start + "elements = {".len()..];
                let body = &rest[..rest.find('}').unwrap_or(rest.len())];
                out.extend(
                    body.split(',')
                        .map(|el| el.split_whitespace().collect::<Vec<_>>().join(" "))
                        .filter(|el| !el.is_empty()),
                );
            }
        } else {
            let saved = output("iptables-save", &["-t", "nat"]);
            let prefix = format!("-A SERVIN-{tag}-DNAT ");
            out.extend(
                saved
                    .lines()
                    .filter(|l| l.starts_with(&prefix))
                    .map(String::from),
            );
        }
    }
    out
}

/// Whether `rules` forward host port `port` of `protocol`.
fn forwards(rules: &[String], firewall: &str, protocol: &str, port: u16) -> bool {
    rules.iter().any(|r| {
        if firewall == "nft" {
            r.starts_with(&format!("{protocol} . ")) && r.contains(&format!(" . {port} : "))
        } else {
            r.contains(&format!("-p {protocol} ")) && r.contains(&format!("--dport {port} "))
        }
    })
}

fn gateway_of(e: &EngineGuard, container: &str, network: &str) -> String {
    let f = format!("{{{{(index .NetworkSettings.Networks \"{network}\").Gateway}}}}");
    e.docker_ok(&["inspect", "-f", &f, container])
        .trim()
        .to_string()
}

fn pid_of(e: &EngineGuard, container: &str) -> String {
    e.docker_ok(&["inspect", "-f", "{{.State.Pid}}", container])
        .trim()
        .to_string()
}

/// A UDP echo server in a container's network namespace (a python process
/// of the test's, entered with nsenter), answering `peer ADDRESS PORT`;
/// killed on drop.
struct UdpPeer(Child);

impl UdpPeer {
    fn start(pid: &str, port: u16) -> Self {
        let script = format!(
            "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', {port}))\nprint('ready', flush=True)\nwhile True:\n    data, peer = s.recvfrom(2048)\n    s.sendto(('peer %s %d ' % peer).encode() + data, peer)\n"
        );
        let mut child = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["python3", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Self(child)
    }
}

impl Drop for UdpPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One datagram to `to` from `from` and its answer.
fn udp_ask(from: (Ipv4Addr, u16), to: (Ipv4Addr, u16), text: &str) -> Option<String> {
    let s = UdpSocket::bind(from).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..10 {
        s.send_to(text.as_bytes(), to).unwrap();
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    None
}

/// A port on which nothing listens now, for a client's own end.
fn client_port() -> u16 {
    free_port()
}

fn kernel_path(firewall: &str, third: u8) {
    let mut e = engine(firewall, "kernel");
    let host = host_address();
    e.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.234.{third}.0/24"),
        "pubnet",
    ]);
    e.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.234.{}.0/24", third + 1),
        "othernet",
    ]);
    let (any, local, udp) = (free_port(), free_port(), free_port());
    e.run_detached(
        "web",
        &[
            "--network",
            "pubnet",
            "-p",
            &format!("{any}:80"),
            "-p",
            &format!("127.0.0.1:{local}:80"),
            "-p",
            &format!("{udp}:7000/udp"),
        ],
        &["sh", "-c", &peer_server("web")],
    );
    let rules = kernel_rules(&e, firewall);
    assert!(
        forwards(&rules, firewall, "tcp", any)
            && forwards(&rules, firewall, "tcp", local)
            && forwards(&rules, firewall, "udp", udp),
        "kernel rules: {rules:?}\nengine log:\n{}",
        e.log()
    );
    let gw = gateway_of(&e, "web", "pubnet");
    // Through 127.0.0.1 and the host's address: the container sees its
    // gateway, and the client's own port (the kernel rewrote the
    // connection; the userland forwarder would connect from a port of its
    // own).
    for (addr, port) in [
        ("127.0.0.1", local),
        ("127.0.0.1", any),
        (&*host.to_string(), any),
    ] {
        let from = client_port();
        let got = curl(&format!("http://{addr}:{port}/cgi-bin/peer"), Some(from));
        assert_eq!(
            got,
            Some(format!("web {gw} {from}\n")),
            "{addr}:{port}; engine log:\n{}",
            e.log()
        );
    }
    // Bound on 127.0.0.1 only: not on the host's other addresses.
    assert!(
        TcpStream::connect_timeout(&(host, local).into(), Duration::from_secs(2)).is_err(),
        "{host}:{local} answered"
    );
    // UDP, through 127.0.0.1 and the host's address.
    let echo = UdpPeer::start(&pid_of(&e, "web"), 7000);
    for addr in [Ipv4Addr::LOCALHOST, host] {
        let from = client_port();
        let got = udp_ask((addr, from), (addr, udp), "ping");
        assert_eq!(
            got,
            Some(format!("peer {gw} {from} ping")),
            "udp via {addr}"
        );
    }
    drop(echo);
    // From a container on another network, through the host's address,
    // and from the container itself (hairpin).
    e.run_detached("other", &["--network", "othernet"], &["sleep", "600"]);
    let host_text = host.to_string();
    let got = get_in(&e, "other", &host_text, any);
    assert!(got.starts_with("web "), "from another network: {got:?}");
    let got = get_in(&e, "web", &host_text, any);
    assert_eq!(
        got.split_whitespace().nth(1),
        Some(gw.as_str()),
        "hairpin: {got:?}"
    );
    // And through its own gateway, as the userland forwarder allowed.
    let got = get_in(&e, "web", &gw, any);
    assert!(got.starts_with("web "), "through the gateway: {got:?}");
    // An internal network: its published port answers the host and other
    // networks; its containers reach published ports only on their
    // gateway, as with the userland forwarder.
    e.docker_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &format!("10.234.{}.0/24", third + 2),
        "intnet",
    ]);
    let internal = free_port();
    e.run_detached(
        "int",
        &["--network", "intnet", "-p", &format!("{internal}:80")],
        &["sh", "-c", &peer_server("int")],
    );
    let int_gw = gateway_of(&e, "int", "intnet");
    let from = client_port();
    assert_eq!(
        curl(
            &format!("http://127.0.0.1:{internal}/cgi-bin/peer"),
            Some(from)
        ),
        Some(format!("int {int_gw} {from}\n"))
    );
    let got = get_in(&e, "other", &host_text, internal);
    assert!(
        got.starts_with("int "),
        "internal from another network: {got:?}"
    );
    let got = get_in(&e, "int", &int_gw, any);
    assert!(
        got.starts_with("web "),
        "from internal through its gateway: {got:?}"
    );
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} {any}");
    let out = e.docker(&["exec", "int", "sh", "-c", &script]);
    assert!(
        out.stdout.is_empty(),
        "an internal container reached the host's address: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    e.docker_ok(&["rm", "-f", "int"]);
    e.docker_ok(&["network", "rm", "intnet"]);
    // The bridge routes loopback addresses now; still, a container
    // sending to 127.0.0.0/8 through its gateway reaches nothing of the
    // host's.
    let guarded = TcpListener::bind("127.0.0.5:0").unwrap();
    let guarded_port = guarded.local_addr().unwrap().port();
    let pid = pid_of(&e, "web");
    let script = format!(
        "ip route del table local local 127.0.0.0/8 dev lo && sysctl -q -w net.ipv4.conf.eth0.route_localnet=1 && ip route add 127.0.0.5/32 via {gw} dev eth0 && exec python3 -c 'import socket; socket.create_connection((\"127.0.0.5\", {guarded_port}), timeout=2)'"
    );
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("timed out"),
        "a container reached the host's 127.0.0.5: {err}"
    );
    drop(guarded);

    // Engine killed; a second container dies meanwhile: after the restart
    // the running container's ports are forwarded again and the dead
    // one's are not.
    let gone = free_port();
    e.run_detached(
        "gone",
        &["--network", "pubnet", "-p", &format!("{gone}:80")],
        &["sh", "-c", &peer_server("gone")],
    );
    assert!(forwards(&kernel_rules(&e, firewall), firewall, "tcp", gone));
    let gone_pid = pid_of(&e, "gone");
    e.kill();
    let status = Command::new("kill")
        .args(["-9", &gone_pid])
        .status()
        .unwrap();
    assert!(status.success());
    e.spawn();
    for _ in 0..100 {
        if forwards(&kernel_rules(&e, firewall), firewall, "tcp", any) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let from = client_port();
    assert_eq!(
        curl(&format!("http://127.0.0.1:{any}/cgi-bin/peer"), Some(from)),
        Some(format!("web {gw} {from}\n")),
        "after a restart; engine log:\n{}",
        e.log()
    );
    let rules = kernel_rules(&e, firewall);
    assert!(forwards(&rules, firewall, "tcp", any), "{rules:?}");
    assert!(
        !forwards(&rules, firewall, "tcp", gone),
        "the dead container's port is still forwarded: {rules:?}"
    );
    // Its port is the host's again: a listener there gets the connection.
    let listener = TcpListener::bind(("0.0.0.0", gone)).unwrap();
    let client = TcpStream::connect(("127.0.0.1", gone)).unwrap();
    listener.set_nonblocking(false).unwrap();
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    drop((client, listener));

    // Stopped: nothing forwards any more and the ports are free.
    e.docker_ok(&["stop", "-t", "1", "web"]);
    let rules = kernel_rules(&e, firewall);
    assert!(rules.is_empty(), "left after stop: {rules:?}");
    let listener = TcpListener::bind(("0.0.0.0", any)).unwrap();
    let client = TcpStream::connect(("127.0.0.1", any)).unwrap();
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    drop((client, listener));
    assert!(UdpSocket::bind(("0.0.0.0", udp)).is_ok());
    e.docker_ok(&["rm", "-f", "web", "other", "gone"]);
    e.docker_ok(&["network", "rm", "pubnet", "othernet"]);
    support::finish_network_test(e);
}

#[test]
fn published_ports_take_the_kernel_path_with_nftables() {
    kernel_path("nft", 20);
}

#[test]
fn published_ports_take_the_kernel_path_with_iptables() {
    kernel_path("iptables", 30);
}

#[test]
fn userland_forwarding_stays_when_asked_for() {
    let e = engine("nft", "userland");
    e.docker_ok(&["network", "create", "--subnet", "10.234.40.0/24", "usernet"]);
    let port = free_port();
    e.run_detached(
        "web",
        &["--network", "usernet", "-p", &format!("{port}:80")],
        &["sh", "-c", &peer_server("web")],
    );
    let gw = gateway_of(&e, "web", "usernet");
    for addr in ["127.0.0.1".to_string(), host_address().to_string()] {
        let got = curl(&format!("http://{addr}:{port}/cgi-bin/peer"), None).unwrap_or_default();
        assert!(
            got.starts_with(&format!("web {gw} ")),
            "{addr}: {got:?}; engine log:\n{}",
            e.log()
        );
    }
    let rules = kernel_rules(&e, "nft");
    assert!(rules.is_empty(), "the kernel forwards: {rules:?}");
    for bridge in e.net_objects().bridges {
        let table = output(
            "nft",
            &["list", "table", "inet", &bridge.replace("sv-", "servin-")],
        );
        assert!(table.contains("chain forward"), "{table}");
        assert!(!table.contains("dnat ip to"), "{table}");
    }
    e.docker_ok(&["rm", "-f", "web"]);
    assert!(TcpListener::bind(("0.0.0.0", port)).is_ok());
    e.docker_ok(&["network", "rm", "usernet"]);
    support::finish_network_test(e);
}
