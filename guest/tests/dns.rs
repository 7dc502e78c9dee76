//! The embedded DNS server, over real UDP and TCP sockets on loopback: local
//! answers, case, AAAA, live updates, forwarding to an upstream the test
//! runs (a second server), NXDOMAIN and SERVFAIL, and stopping.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use servin_guest::network::dns::{DnsConfig, DnsServer, NameSource, name_matches};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A name and its addresses.
type Entry = (String, Vec<IpAddr>);

/// Names per server address, changeable while the server runs.
#[derive(Default)]
struct Names(Mutex<HashMap<Ipv4Addr, Vec<Entry>>>);

impl Names {
    fn set<A: Into<IpAddr> + Copy>(&self, server: Ipv4Addr, name: &str, addrs: &[A]) {
        let mut map = self.0.lock().unwrap();
        let entries = map.entry(server).or_default();
        entries.retain(|(n, _)| n != name);
        entries.push((
            name.to_string(),
            addrs.iter().map(|a| (*a).into()).collect(),
        ));
    }
}

impl NameSource for Names {
    fn lookup(&self, server: Ipv4Addr, name: &str) -> Option<Vec<IpAddr>> {
        let map = self.0.lock().unwrap();
        map.get(&server)?
            .iter()
            .find(|(n, _)| name_matches(name, n))
            .map(|(_, a)| a.clone())
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn config(upstreams: Vec<SocketAddr>) -> DnsConfig {
    DnsConfig {
        port: 0,
        upstreams,
        upstream_timeout: Duration::from_millis(300),
    }
}

fn query_bytes(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    message.to_vec().unwrap()
}

async fn ask_udp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(&query_bytes(4242, name, rtype)).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf))
        .await
        .expect("no DNS answer within 10 s")
        .unwrap();
    let message = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(message.metadata.id, 4242);
    message
}

async fn ask_tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let query = query_bytes(77, name, rtype);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).await.unwrap();
    let read = async {
        let n = stream.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(n)];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no DNS answer over TCP within 10 s");
    let message = Message::from_vec(&buf).unwrap();
    assert_eq!(message.metadata.id, 77);
    message
}

fn addresses6(message: &Message) -> Vec<Ipv6Addr> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn answers_aaaa_with_the_ipv6_addresses_and_a_with_the_ipv4_ones() {
    let names = Arc::new(Names::default());
    let v6: Ipv6Addr = "fd00:89::2".parse().unwrap();
    names.set(
        ip("127.0.10.9"),
        "web",
        &[IpAddr::V4(ip("10.89.0.2")), IpAddr::V6(v6)],
    );
    names.set(ip("127.0.10.9"), "old", &[ip("10.89.0.3")]);
    let server = DnsServer::new(names.clone(), config(vec![]));
    let at = server.listen(ip("127.0.10.9")).await.unwrap();
    let answer = ask_udp(at, "web", RecordType::AAAA).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses6(&answer), vec![v6]);
    assert!(addresses(&answer).is_empty());
    let answer = ask_tcp(at, "web", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("10.89.0.2")]);
    assert!(addresses6(&answer).is_empty());
    // An IPv4-only name: AAAA says it exists, with no address.
    let answer = ask_udp(at, "old", RecordType::AAAA).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
    server.shutdown().await;
}

fn addresses(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn answers_names_per_network_in_any_case() {
    let names = Arc::new(Names::default());
    names.set(ip("127.0.10.1"), "web", &[ip("10.89.0.2")]);
    names.set(
        ip("127.0.10.1"),
        "db.proj",
        &[ip("10.89.0.3"), ip("10.89.0.4")],
    );
    names.set(ip("127.0.10.2"), "web", &[ip("10.89.1.9")]);
    let server = DnsServer::new(names.clone(), config(vec![]));
    let one = server.listen(ip("127.0.10.1")).await.unwrap();
    let two = server.listen(ip("127.0.10.2")).await.unwrap();

    let answer = ask_udp(one, "web", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert_eq!(addresses(&answer), vec![ip("10.89.0.2")]);

    let answer = ask_udp(one, "WeB.", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("10.89.0.2")]);
    // The name is echoed as asked.
    assert_eq!(answer.answers[0].name.to_string(), "WeB.");
    let answer = ask_udp(one, "DB.Proj.", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("10.89.0.3"), ip("10.89.0.4")]);
    let answer = ask_tcp(one, "db.proj", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("10.89.0.3"), ip("10.89.0.4")]);

    // The other network's server sees its own names only.
    let answer = ask_udp(two, "web", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("10.89.1.9")]);
    let answer = ask_udp(two, "db.proj", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);

    // AAAA for our names: empty NOERROR, so clients use the A answer.
    let answer = ask_udp(one, "web", RecordType::AAAA).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
    server.shutdown().await;
    assert!(server.listening().is_empty());
}

#[tokio::test]
async fn serves_the_live_address() {
    let names = Arc::new(Names::default());
    let at = ip("127.0.11.1");
    names.set(at, "app", &[ip("10.89.2.2")]);
    let server = DnsServer::new(names.clone(), config(vec![]));
    let addr = server.listen(at).await.unwrap();
    assert_eq!(
        addresses(&ask_udp(addr, "app", RecordType::A).await),
        vec![ip("10.89.2.2")]
    );
    names.set(at, "app", &[ip("10.89.2.7")]);
    let answer = ask_udp(addr, "app", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("10.89.2.7")]);
    assert_eq!(answer.answers[0].ttl, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn forwards_other_names_upstream() {
    // The upstream: a second server that knows example.org and nothing else.
    let upstream_names = Arc::new(Names::default());
    let up_at = ip("127.0.12.9");
    upstream_names.set(up_at, "example.org", &[ip("192.0.2.7")]);
    let upstream = DnsServer::new(upstream_names, config(vec![]));
    let up = upstream.listen(up_at).await.unwrap();

    let names = Arc::new(Names::default());
    let at = ip("127.0.12.1");
    names.set(at, "web", &[ip("10.89.3.2")]);
    let server = DnsServer::new(names, config(vec![up]));
    let addr = server.listen(at).await.unwrap();

    let answer = ask_udp(addr, "Example.org", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&answer), vec![ip("192.0.2.7")]);
    let answer = ask_tcp(addr, "example.org.", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("192.0.2.7")]);
    let answer = ask_udp(addr, "nothing.example.org", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(answer.answers.is_empty());
    // Our own names are still answered here, not upstream.
    assert_eq!(
        addresses(&ask_udp(addr, "web", RecordType::A).await),
        vec![ip("10.89.3.2")]
    );
    server.shutdown().await;
    upstream.shutdown().await;
}

#[tokio::test]
async fn unreachable_upstreams_give_servfail() {
    // One upstream refuses (nothing listens: ICMP port unreachable), one is
    // a black hole (a socket that never answers).
    let closed = {
        let socket = std::net::UdpSocket::bind("127.0.13.9:0").unwrap();
        socket.local_addr().unwrap()
    };
    let hole = std::net::UdpSocket::bind("127.0.13.8:0").unwrap();
    let names = Arc::new(Names::default());
    let at = ip("127.0.13.1");
    let server = DnsServer::new(names, config(vec![closed, hole.local_addr().unwrap()]));
    let addr = server.listen(at).await.unwrap();
    let answer = ask_udp(addr, "example.net", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    let answer = ask_tcp(addr, "example.net", RecordType::MX).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);

    // Upstreams can be replaced at runtime; none means NXDOMAIN.
    server.set_upstreams(vec![]);
    let answer = ask_udp(addr, "example.net", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    server.shutdown().await;
}

#[tokio::test]
async fn stop_listening_frees_the_port() {
    let names = Arc::new(Names::default());
    let at = ip("127.0.14.1");
    names.set(at, "web", &[ip("10.89.4.2")]);
    let server = DnsServer::new(names, config(vec![]));
    let addr = server.listen(at).await.unwrap();
    // Listening twice on one address keeps the first.
    assert_eq!(server.listen(at).await.unwrap(), addr);
    // A TCP client connection is open while the server stops.
    let _client = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        addresses(&ask_udp(addr, "web", RecordType::A).await),
        vec![ip("10.89.4.2")]
    );
    server.stop_listening(at).await;
    assert!(server.listening().is_empty());
    let udp = std::net::UdpSocket::bind(addr).expect("UDP port still held after stop");
    let tcp = std::net::TcpListener::bind(addr).expect("TCP port still held after stop");
    drop((udp, tcp));
    // And the server can listen there again.
    let names = Arc::new(Names::default());
    names.set(at, "web", &[ip("10.89.4.3")]);
    let again = DnsServer::new(
        names,
        DnsConfig {
            port: addr.port(),
            ..config(vec![])
        },
    );
    assert_eq!(again.listen(at).await.unwrap(), addr);
    assert_eq!(
        addresses(&ask_udp(addr, "web", RecordType::A).await),
        vec![ip("10.89.4.3")]
    );
    again.shutdown().await;
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_fit_over_tcp() {
    let names = Arc::new(Names::default());
    let at = ip("127.0.15.1");
    let many: Vec<Ipv4Addr> = (1..=100).map(|i| Ipv4Addr::new(10, 89, 5, i)).collect();
    names.set(at, "replicas", &many);
    let server = DnsServer::new(names, config(vec![]));
    let addr = server.listen(at).await.unwrap();
    let answer = ask_udp(addr, "replicas", RecordType::A).await;
    assert!(
        answer.metadata.truncation,
        "100 addresses do not fit 512 bytes"
    );
    assert!(answer.answers.len() < 100);
    let answer = ask_tcp(addr, "replicas", RecordType::A).await;
    assert!(!answer.metadata.truncation);
    assert_eq!(addresses(&answer), many);
    server.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_names_its_holder() {
    let taken = std::net::UdpSocket::bind("127.0.16.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let server = DnsServer::new(
        Arc::new(Names::default()),
        DnsConfig {
            port,
            ..config(vec![])
        },
    );
    let message = server
        .listen(ip("127.0.16.1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains(&format!("127.0.16.1:{port}")), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(server.listening().is_empty());
}
