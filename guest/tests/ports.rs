//! Published ports over loopback: the "container" is an echo server the test
//! runs on a 127.0.x.1 address; the forwarder listens on another.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use servin_guest::error::{Error, NetworkError};
use servin_guest::network::ports::{
    HostPort, PortBinding, Protocol, PublishOptions, parse_port_spec, port_holder, publish,
    publish_with,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const LIMIT: Duration = Duration::from_secs(20);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A TCP echo server on `addr` (port 0: any); returns its address.
async fn tcp_echo(addr: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    local
}

/// A UDP echo server on `addr`; returns its address.
async fn udp_echo(addr: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind(addr).await.unwrap();
    let local = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    local
}

fn binding(
    host: &str,
    host_port: HostPort,
    container_port: u16,
    protocol: Protocol,
) -> PortBinding {
    PortBinding {
        host_ip: Some(host.parse().unwrap()),
        host_port,
        container_port,
        protocol,
    }
}

/// Sends `data` through a TCP connection to `addr`, half-closes, and
/// returns everything read back until EOF.
async fn tcp_round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let run = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut r, mut w) = stream.into_split();
        let data = data.to_vec();
        let writer = tokio::spawn(async move {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        back
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .expect("TCP echo timed out")
}

async fn udp_round_trip(socket: &UdpSocket, to: SocketAddr, data: &[u8]) -> Vec<u8> {
    socket.send_to(data, to).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(LIMIT, socket.recv_from(&mut buf))
        .await
        .expect("UDP echo timed out")
        .unwrap();
    assert_eq!(from, to, "the reply comes from the published port");
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn tcp_echo_through_the_forwarder() {
    let echo = tcp_echo("127.0.20.1:0".parse().unwrap()).await;
    let published = publish(
        &[binding(
            "127.0.20.2",
            HostPort::Random,
            echo.port(),
            Protocol::Tcp,
        )],
        ip("127.0.20.1"),
    )
    .unwrap();
    assert_eq!(published.target(), ip("127.0.20.1"));
    let port = published.ports()[0];
    assert_eq!(port.host.ip(), "127.0.20.2".parse::<IpAddr>().unwrap());
    assert_ne!(port.host.port(), 0, "the chosen port is reported");
    assert_eq!(port.container_port, echo.port());

    assert_eq!(tcp_round_trip(port.host, b"hello").await, b"hello");
    // A large transfer, several connections at once.
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (a, b) = tokio::join!(
        tcp_round_trip(port.host, &data),
        tcp_round_trip(port.host, &data)
    );
    assert!(a == data && b == data, "large echo differs");
    // Only the given host address listens.
    assert!(
        TcpStream::connect(("127.0.20.3", port.host.port()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn udp_echo_through_the_forwarder() {
    let echo = udp_echo("127.0.24.1:0".parse().unwrap()).await;
    let published = publish(
        &[binding(
            "127.0.24.2",
            HostPort::Random,
            echo.port(),
            Protocol::Udp,
        )],
        ip("127.0.24.1"),
    )
    .unwrap();
    let host = published.ports()[0].host;
    let one = UdpSocket::bind("127.0.24.3:0").await.unwrap();
    let two = UdpSocket::bind("127.0.24.4:0").await.unwrap();
    for i in 0..20u8 {
        assert_eq!(udp_round_trip(&one, host, &[i; 100]).await, vec![i; 100]);
        assert_eq!(udp_round_trip(&two, host, &[i; 1000]).await, vec![i; 1000]);
    }
    let big = vec![7u8; 60_000];
    assert_eq!(udp_round_trip(&one, host, &big).await, big);
}

/// Two echo servers on consecutive ports of `addr`.
async fn consecutive_echoes(addr: Ipv4Addr) -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind((addr, 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        if port == u16::MAX {
            continue;
        }
        if std::net::TcpListener::bind((addr, port + 1)).is_ok() {
            drop(first);
            tcp_echo((addr, port).into()).await;
            tcp_echo((addr, port + 1).into()).await;
            return port;
        }
    }
    panic!("no two consecutive free ports on {addr}");
}

#[tokio::test]
async fn port_ranges() {
    let target = ip("127.0.21.1");
    let c = consecutive_echoes(target).await;
    // Host range one to one with the container range (retrying when
    // another process takes the second host port between probe and publish).
    let mut found = None;
    for _ in 0..20 {
        let probe = std::net::TcpListener::bind("127.0.21.2:0").unwrap();
        let h = probe.local_addr().unwrap().port();
        drop(probe);
        if h == u16::MAX {
            continue;
        }
        let spec = format!("127.0.21.2:{h}-{}:{c}-{}", h + 1, c + 1);
        let bindings = parse_port_spec(&spec).unwrap();
        match publish(&bindings, target) {
            Ok(published) => {
                found = Some((h, published));
                break;
            }
            Err(Error::Network(NetworkError::PortInUse { .. } | NetworkError::RangeInUse(_))) => {
                continue;
            }
            Err(other) => panic!("publish {spec}: {other}"),
        }
    }
    let (h, published) = found.expect("no two consecutive free host ports");
    let hosts: Vec<u16> = published.ports().iter().map(|p| p.host.port()).collect();
    assert_eq!(hosts, vec![h, h + 1]);
    for p in published.ports() {
        assert_eq!(tcp_round_trip(p.host, b"range").await, b"range");
    }
    drop(published);

    // A host range for one container port takes the first free one.
    let busy = std::net::TcpListener::bind("127.0.21.3:0").unwrap();
    let first = busy.local_addr().unwrap().port();
    let last = first.saturating_add(20);
    let published = publish(
        &[binding(
            "127.0.21.3",
            HostPort::Range(first, last),
            c,
            Protocol::Tcp,
        )],
        target,
    )
    .unwrap();
    let chosen = published.ports()[0].host.port();
    assert!(
        chosen > first && chosen <= last,
        "{chosen} not in ({first}, {last}]"
    );
    assert_eq!(
        tcp_round_trip(published.ports()[0].host, b"first free").await,
        b"first free"
    );
    // A range with no free port says so.
    let message = publish(
        &[binding(
            "127.0.21.3",
            HostPort::Range(first, first),
            c,
            Protocol::Tcp,
        )],
        target,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains(&format!("127.0.21.3:{first}/tcp")),
        "{message}"
    );
    if chosen == first + 1 {
        // Both ports are held now: by `busy` and by `published`.
        let message = publish(
            &[binding(
                "127.0.21.3",
                HostPort::Range(first, chosen),
                c,
                Protocol::Tcp,
            )],
            target,
        )
        .unwrap_err()
        .to_string();
        assert!(
            message.contains(&format!("127.0.21.3:{first}-{chosen}/tcp: every host port")),
            "{message}"
        );
    }
}

#[tokio::test]
async fn all_addresses_binding() {
    let echo = tcp_echo("127.0.25.1:0".parse().unwrap()).await;
    let published = publish(
        &[PortBinding {
            host_ip: None,
            host_port: HostPort::Random,
            container_port: echo.port(),
            protocol: Protocol::Tcp,
        }],
        ip("127.0.25.1"),
    )
    .unwrap();
    let v4 = published.ports()[0].host;
    assert_eq!(v4.ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        tcp_round_trip((Ipv4Addr::LOCALHOST, v4.port()).into(), b"any").await,
        b"any"
    );
    // Where the host has IPv6, `::` is published on the same port.
    if let Some(v6) = published.ports().get(1) {
        assert!(v6.host.is_ipv6());
        assert_eq!(v6.host.port(), v4.port());
        assert_eq!(
            tcp_round_trip(
                (std::net::Ipv6Addr::LOCALHOST, v6.host.port()).into(),
                b"six"
            )
            .await,
            b"six"
        );
    }
}

#[tokio::test]
async fn port_in_use_names_the_holder_and_binds_nothing() {
    let holder = std::net::TcpListener::bind("127.0.23.1:0").unwrap();
    let taken = holder.local_addr().unwrap();
    // A free port on another address, which must be released again.
    let free = {
        let probe = std::net::TcpListener::bind("127.0.23.2:0").unwrap();
        probe.local_addr().unwrap()
    };
    let error = publish(
        &[
            binding("127.0.23.2", HostPort::Port(free.port()), 80, Protocol::Tcp),
            binding(
                "127.0.23.1",
                HostPort::Port(taken.port()),
                80,
                Protocol::Tcp,
            ),
        ],
        ip("127.0.23.9"),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::Network(NetworkError::PortInUse { .. })),
        "{message}"
    );
    assert!(message.contains(&taken.to_string()), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    std::net::TcpListener::bind(free).expect("the port bound before the failure is released");

    let udp = std::net::UdpSocket::bind("127.0.23.3:0").unwrap();
    let taken = udp.local_addr().unwrap();
    let message = publish(
        &[binding(
            "127.0.23.3",
            HostPort::Port(taken.port()),
            53,
            Protocol::Udp,
        )],
        ip("127.0.23.9"),
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains(&format!("{taken}/udp")), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
}

#[tokio::test]
async fn dropping_frees_the_port_and_closes_connections() {
    let echo = tcp_echo("127.0.26.1:0".parse().unwrap()).await;
    let uecho = udp_echo("127.0.26.1:0".parse().unwrap()).await;
    let published = publish(
        &[
            binding("127.0.26.2", HostPort::Random, echo.port(), Protocol::Tcp),
            binding("127.0.26.2", HostPort::Random, uecho.port(), Protocol::Udp),
        ],
        ip("127.0.26.1"),
    )
    .unwrap();
    let tcp = published.ports()[0].host;
    let udp = published.ports()[1].host;
    let mut live = TcpStream::connect(tcp).await.unwrap();
    live.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    live.read_exact(&mut buf).await.unwrap();
    let client = UdpSocket::bind("127.0.26.3:0").await.unwrap();
    assert_eq!(udp_round_trip(&client, udp, b"u").await, b"u");

    drop(published);
    std::net::TcpListener::bind(tcp).expect("TCP host port still held after drop");
    std::net::UdpSocket::bind(udp).expect("UDP host port still held after drop");
    // The live connection is closed: reading ends (EOF or reset).
    let mut rest = Vec::new();
    let end = tokio::time::timeout(LIMIT, live.read_to_end(&mut rest))
        .await
        .expect("the live connection stayed open");
    assert!(end.is_err() || rest.is_empty());
}

/// A UDP server that answers each datagram with the sender's port.
async fn udp_port_echo(addr: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind(addr).await.unwrap();
    let local = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((_, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&from.port().to_be_bytes(), from).await;
        }
    });
    local
}

#[tokio::test]
async fn udp_sessions_per_client_end_when_idle() {
    let echo = udp_port_echo("127.0.27.1:0".parse().unwrap()).await;
    let published = publish_with(
        &[binding(
            "127.0.27.2",
            HostPort::Random,
            echo.port(),
            Protocol::Udp,
        )],
        ip("127.0.27.1"),
        PublishOptions {
            udp_idle: Duration::from_millis(200),
        },
    )
    .unwrap();
    let host = published.ports()[0].host;
    let one = UdpSocket::bind("127.0.27.3:0").await.unwrap();
    let two = UdpSocket::bind("127.0.27.4:0").await.unwrap();
    let first = udp_round_trip(&one, host, b"a").await;
    // The same client keeps its session while it talks...
    assert_eq!(udp_round_trip(&one, host, b"b").await, first);
    // ...another client gets its own...
    assert_ne!(udp_round_trip(&two, host, b"c").await, first);
    // ...and after the idle time the session socket is closed (no socket
    // of this process holds its port any more) and a new one serves.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let old = SocketAddr::from((
        Ipv4Addr::UNSPECIFIED,
        u16::from_be_bytes([first[0], first[1]]),
    ));
    if let Some(holder) = port_holder(old, Protocol::Udp) {
        assert_ne!(
            holder.pid,
            std::process::id(),
            "the idle session is still open"
        );
    }
    assert_eq!(udp_round_trip(&one, host, b"d").await.len(), 2);
}
