//! Probing what the tests publish and serve: a free port on the host, the
//! host's own address, an HTTP GET from the host with `curl` (retried while
//! a server starts), and the shell line that makes the same GET from inside
//! a container.

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::process::Command;
use std::time::Duration;

/// A loopback TCP port free right now (it can be taken again before the
/// caller binds it: callers that start a server on it retry).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The host's own non-loopback IPv4 address: the one its default route
/// uses (found by routing a UDP socket, which sends nothing).
pub fn host_address() -> Ipv4Addr {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("192.0.2.200:9").unwrap();
    match s.local_addr().unwrap().ip() {
        IpAddr::V4(a) if !a.is_loopback() => a,
        other => panic!("no usable host address: {other}"),
    }
}

/// `curl -s -m 3 url` from the host, tried up to 20 times 100 ms apart
/// while the server starts: the body, or `None` when nothing answered.
pub fn curl(url: &str) -> Option<String> {
    curl_retried(&["-s", "-m", "3"], url, 20)
}

/// `curl <args> url` from the host, tried up to `tries` times 100 ms apart
/// until it succeeds: the body, or `None` when it never did.
pub fn curl_retried(args: &[&str], url: &str, tries: usize) -> Option<String> {
    for _ in 0..tries {
        let out = Command::new("curl").args(args).arg(url).output().unwrap();
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A shell line for a busybox container that sends `GET /` to `host:port`
/// and prints the raw response (busybox `nc`: its `wget` crashes when
/// built static).
pub fn get_with_nc(host: &str, port: impl std::fmt::Display) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {host} {port}")
}
