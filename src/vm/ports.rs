//! Published ports on the host: the engine in the VM publishes a
//! container's port on the guest's address; the supervisor opens the same
//! address and port on the host and forwards each TCP connection over the
//! channel to the guest's `127.0.0.1:PORT`, and each UDP peer's datagrams
//! over a channel stream of its own (framed, see
//! [`servin_mux::datagram`]) to a UDP socket the guest connects there.
//!
//! The supervisor follows the engine's container events (start, die, ...)
//! and after each one compares the ports the running containers publish
//! ([`published`], pure) with the listeners it has, opening and closing the
//! difference ([`Forwarder::apply`]).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::channel::{self, Session};

/// A published port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A port to forward: protocol, and address and port on the host.
pub type Published = (Proto, SocketAddr);

/// How long a UDP peer may stay quiet (both ways) before its stream to the
/// guest is closed; Docker's proxy keeps a UDP peer 90 seconds too.
const UDP_IDLE: Duration = Duration::from_secs(90);

/// The ports the running containers publish, from `GET
/// /containers/json`: protocol, address and port on the host. An IPv6
/// wildcard next to the IPv4 one for the same port and protocol is one
/// listener (the IPv4 one).
pub fn published(containers: &serde_json::Value) -> BTreeSet<Published> {
    let mut out = BTreeSet::new();
    let mut v6 = Vec::new();
    for c in containers.as_array().into_iter().flatten() {
        if c.get("State").and_then(|s| s.as_str()) != Some("running") {
            continue;
        }
        for p in c
            .get("Ports")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            let proto = match p.get("Type").and_then(|t| t.as_str()).unwrap_or("tcp") {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            let Some(port) = p
                .get("PublicPort")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
            else {
                continue;
            };
            let ip = p
                .get("IP")
                .and_then(|i| i.as_str())
                .filter(|i| !i.is_empty())
                .and_then(|i| i.parse::<IpAddr>().ok())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let addr = SocketAddr::new(ip, port);
            if ip.is_ipv6() && ip.is_unspecified() {
                v6.push((proto, addr));
            } else {
                out.insert((proto, addr));
            }
        }
    }
    for (proto, addr) in v6 {
        let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
        if !out.contains(&(proto, v4)) {
            out.insert((proto, addr));
        }
    }
    out
}

/// The host listeners of the published ports.
#[derive(Default)]
pub struct Forwarder {
    listeners: HashMap<Published, JoinHandle<()>>,
}

impl Forwarder {
    /// Opens listeners for new ports and closes those of ports gone.
    pub fn apply(&mut self, wanted: &BTreeSet<Published>, session: &Session) {
        self.listeners.retain(|(proto, addr), task| {
            let keep = wanted.contains(&(*proto, *addr)) && !task.is_finished();
            if !keep {
                task.abort();
                channel::log(&format!(
                    "port {addr}/{}: closed on the host",
                    proto.as_str()
                ));
            }
            keep
        });
        for &(proto, addr) in wanted {
            if self.listeners.contains_key(&(proto, addr)) {
                continue;
            }
            let task = match proto {
                Proto::Tcp => {
                    bind_tcp(addr).map(|l| tokio::spawn(forward_tcp(l, addr, session.clone())))
                }
                Proto::Udp => {
                    bind_udp(addr).map(|s| tokio::spawn(forward_udp(s, addr, session.clone())))
                }
            };
            match task {
                Ok(task) => {
                    channel::log(&format!(
                        "port {addr}/{}: forwarded from the host",
                        proto.as_str()
                    ));
                    self.listeners.insert((proto, addr), task);
                }
                Err(e) => channel::log(&format!(
                    "port {addr}/{}: cannot listen on the host: {e}",
                    proto.as_str()
                )),
            }
        }
    }

    /// Closes every listener.
    pub fn clear(&mut self) {
        self.apply(&BTreeSet::new(), &watch_none());
    }
}

/// Each connection to `listener` as a stream to the guest's
/// `127.0.0.1:PORT`.
async fn forward_tcp(listener: TcpListener, addr: SocketAddr, session: Session) {
    let target = format!("tcp:127.0.0.1:{}", addr.port());
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let _ = conn.set_nodelay(true);
        let session = session.clone();
        let target = target.clone();
        tokio::spawn(async move {
            match channel::open(&session, &target).await {
                Ok(stream) => {
                    let _ = stream.bridge(conn).await;
                }
                Err(e) => channel::log(&format!("{target}: {e}")),
            }
        });
    }
}

/// The peers of one UDP port: what each one sent, waiting for its stream.
type Peers = Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>>;

/// Each peer's datagrams to `socket` over a stream of its own to the
/// guest's `127.0.0.1:PORT`, and the answers back to that peer.
async fn forward_udp(socket: UdpSocket, addr: SocketAddr, session: Session) {
    let socket = Arc::new(socket);
    let target = format!("udp:127.0.0.1:{}", addr.port());
    let peers: Peers = Arc::default();
    // The peers' tasks end with this one (a closed port): they hold the
    // socket too.
    let mut tasks = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; servin_mux::datagram::MAX_DATAGRAM];
    loop {
        while tasks.try_join_next().is_some() {}
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let datagram = buf[..n].to_vec();
        let mut map = peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = map.get(&peer)
            && tx.send(datagram.clone()).is_ok()
        {
            continue;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(datagram);
        map.insert(peer, tx);
        drop(map);
        tasks.spawn(udp_peer(
            Arc::clone(&socket),
            peer,
            rx,
            session.clone(),
            target.clone(),
            Arc::clone(&peers),
        ));
    }
}

/// One UDP peer's stream to the guest, until both ways have been quiet
/// for [`UDP_IDLE`] or the stream ends.
async fn udp_peer(
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    mut from_peer: mpsc::UnboundedReceiver<Vec<u8>>,
    session: Session,
    target: String,
    peers: Peers,
) {
    use servin_mux::datagram::{self, Deframer};
    match channel::open(&session, &target).await {
        Ok(stream) => {
            let (mut reader, mut writer) = stream.into_split();
            let mut frames = Deframer::default();
            loop {
                tokio::select! {
                    d = from_peer.recv() => {
                        let Some(d) = d else { break };
                        let Some(framed) = datagram::frame(&d) else { continue };
                        if writer.write(&framed).await.is_err() {
                            break;
                        }
                    }
                    chunk = reader.read() => {
                        let Ok(Some(chunk)) = chunk else { break };
                        frames.push(&chunk);
                        while let Some(d) = frames.next_datagram() {
                            let _ = socket.send_to(&d, peer).await;
                        }
                    }
                    () = tokio::time::sleep(UDP_IDLE) => break,
                }
            }
        }
        Err(e) => channel::log(&format!("{target}: {e}")),
    }
    peers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&peer);
}

fn watch_none() -> Session {
    tokio::sync::watch::channel(None).1
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Follows the engine's container events for as long as the session lasts,
/// keeping the host listeners in step.
pub async fn follow(session: Session) {
    let mut forwarder = Forwarder::default();
    let mut conn = None;
    let filters = r#"{"type":["container"]}"#;
    let events_path = format!("/events?filters={}", percent_encode(filters));
    loop {
        // Subscribe first, then list: no change falls between the two.
        let events = match channel::engine_get(&session, &events_path).await {
            Ok(r) => r,
            Err(_) => {
                if session.borrow().is_none() {
                    forwarder.clear();
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        refresh(&session, &mut forwarder, &mut conn).await;
        let mut body = events.into_body();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if frame.data_ref().is_some() {
                refresh(&session, &mut forwarder, &mut conn).await;
            }
        }
        // The stream ended: the session went away, or the engine restarted.
        if session.borrow().is_none() {
            forwarder.clear();
        }
    }
}

/// Lists the containers on a kept-open connection (a new channel stream and
/// handshake per event would be most of the delay), reconnecting when it
/// broke.
async fn refresh(session: &Session, forwarder: &mut Forwarder, conn: &mut Option<Connection>) {
    for _ in 0..2 {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            *conn = channel::engine_connection(session).await.ok();
        }
        let Some(c) = conn.as_mut() else { break };
        if c.ready().await.is_err() {
            *conn = None;
            continue;
        }
        match list(c).await {
            Ok(list) => return forwarder.apply(&published(&list), session),
            Err(e) => {
                channel::log(&format!("list containers for their ports: {e}"));
                *conn = None;
            }
        }
    }
}

type Connection = hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>;

async fn list(conn: &mut Connection) -> std::io::Result<serde_json::Value> {
    let resp = channel::send_get(conn, "/containers/json").await?;
    channel::json_answer(resp, "/containers/json").await
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn published_ports_of_running_containers() {
        let list = serde_json::json!([
            {"State": "running", "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "127.0.0.1", "PrivatePort": 81, "PublicPort": 8081, "Type": "tcp"},
                {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
                {"PrivatePort": 9000, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 90, "PublicPort": 9090, "Type": "tcp"}
            ]},
            {"State": "exited", "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 7070, "Type": "tcp"}
            ]}
        ]);
        let got: Vec<String> = published(&list)
            .iter()
            .map(|(p, a)| format!("{a}/{}", p.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                "0.0.0.0:8080/tcp",
                "127.0.0.1:8081/tcp",
                "[::]:9090/tcp",
                "0.0.0.0:5353/udp"
            ]
        );
        assert!(published(&serde_json::json!({"message": "x"})).is_empty());
    }

    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(
            percent_encode(r#"{"type":["container"]}"#),
            "%7B%22type%22%3A%5B%22container%22%5D%7D"
        );
    }
}
