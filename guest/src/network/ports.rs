//! Published ports: host sockets forwarded to a container's address.
//!
//! Bindings come from the CLI's `-p [IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]`
//! ([`parse_port_spec`]) or Docker's `HostConfig.PortBindings` /
//! `ExposedPorts` ([`bindings_from_port_map`], [`parse_exposed`]).
//! [`publish`] binds every host socket first (all or nothing: on a failure
//! the ones already bound are released) and then forwards in userland, the
//! same way on a bare host and in a VM:
//! - TCP: accept, connect to `target:port`, and move the bytes both ways
//!   with splice(2) through a pipe, so they are never copied into user
//!   space (measured against a copy through 256 KiB buffers: the same or
//!   better throughput, and half the cost of a fresh connection, which no
//!   longer allocates buffers); a half-close is passed on.
//! - UDP: one connected session socket per client address, closed after
//!   [`UDP_IDLE_TIMEOUT`] without traffic.
//!
//! The forwarding runs on its own thread (a dedicated tokio runtime), so the
//! data copying never competes with the engine's single-threaded API
//! runtime. Dropping the [`Published`] closes the listeners and the live
//! connections; when the drop returns the host ports can be bound again.
//!
//! The engine also forwards IPv4 published ports in the kernel (see
//! [`crate::network::firewall`]): connections then never reach these
//! sockets, which still hold the host ports and serve what the kernel does
//! not catch (IPv6, and every port with `SERVIN_PORT_FORWARD=userland` or
//! in a VM).
//!
//! A host port already taken gives an error naming the address, the port
//! and, when it can be found, the process holding it ([`port_holder`], from
//! `/proc/net/{tcp,udp}{,6}` and the processes' descriptors).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak, mpsc};
use std::time::Duration;

use bollard_stubs::models::{PortBinding as DockerPortBinding, PortMap};
use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{Error, NetworkError, Result};

/// How long a UDP session without traffic either way is kept.
pub const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The pipe between the two sockets of a TCP connection's direction.
const PIPE_SIZE: usize = 1024 * 1024;

/// How long connecting to the container may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long dropping a [`Published`] waits for the forwarder to close it.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            other => Err(NetworkError::UnsupportedProtocol(other.to_string()).into()),
        }
    }
}

/// The host port of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// Any free port, chosen when published.
    Random,
    /// This port.
    Port(u16),
    /// The first free port of this inclusive range.
    Range(u16, u16),
}

/// One container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    /// The host address to listen on; `None` for all (IPv4 `0.0.0.0`, and
    /// IPv6 `::` where the host has it).
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: HostPort,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

fn bad(spec: &str, why: &str) -> Error {
    Error::from(NetworkError::InvalidPortSpec {
        spec: spec.to_string(),
        why: why.to_string(),
    })
}

/// Parses `N` or `N-M` (1..=65535, N ≤ M).
fn parse_range(spec: &str, text: &str) -> Result<(u16, u16)> {
    let port = |t: &str| match t.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad(spec, &format!("{t:?} is not a port (1-65535)"))),
        Ok(p) => Ok(p),
    };
    match text.split_once('-') {
        None => port(text).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(bad(spec, &format!("range {text:?} runs backwards")));
            }
            Ok((a, b))
        }
    }
}

/// Splits `PORT[/PROTO]`, TCP by default.
fn split_protocol<'a>(spec: &str, text: &'a str) -> Result<(&'a str, Protocol)> {
    match text.rsplit_once('/') {
        None => Ok((text, Protocol::Tcp)),
        Some((port, proto)) => Ok((
            port,
            proto
                .parse()
                .map_err(|_| bad(spec, "protocol must be tcp or udp"))?,
        )),
    }
}

/// Parses one CLI port specification,
/// `[IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/tcp|udp]`, into one binding
/// per container port, with the parser `servin run -p` uses
/// ([`servin_values::parse_publish`]). An IPv6 host address is written in
/// brackets (`[::1]:8080:80`). With a container range, a host range of the
/// same length maps one to one; with one container port, a host range means
/// "the first free port of it"; no host port means a random one.
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortBinding>> {
    let (parsed, host_range) =
        servin_values::parse_publish(spec.trim()).map_err(|why| bad(spec, &why))?;
    let protocol = match parsed.protocol {
        servin_values::Protocol::Tcp => Protocol::Tcp,
        servin_values::Protocol::Udp => Protocol::Udp,
        servin_values::Protocol::Sctp => return Err(bad(spec, "protocol must be tcp or udp")),
    };
    let host_port = |port: Option<u16>| match (host_range, port) {
        (Some(range), _) => HostPort::Range(range.start, range.end),
        (None, Some(port)) => HostPort::Port(port),
        (None, None) => HostPort::Random,
    };
    Ok(parsed
        .expand()
        .into_iter()
        .map(|port| PortBinding {
            host_ip: port.host_ip,
            host_port: host_port(port.published),
            container_port: port.target,
            protocol,
        })
        .collect())
}

/// Parses a Docker port key, `80/tcp`, `53/udp` or `80` (TCP), into the
/// container ports it names (a key may be a range, `8000-8010/tcp`).
pub fn parse_port_key(key: &str) -> Result<Vec<(u16, Protocol)>> {
    let (port, protocol) = split_protocol(key, key.trim())?;
    let (start, end) = parse_range(key, port)?;
    Ok((start..=end).map(|p| (p, protocol)).collect())
}

/// The container ports of Docker's `ExposedPorts` (`["80/tcp", ...]`),
/// sorted and without duplicates.
pub fn parse_exposed(exposed: &[String]) -> Result<Vec<(u16, Protocol)>> {
    let mut ports = Vec::new();
    for key in exposed {
        ports.extend(parse_port_key(key)?);
    }
    ports.sort();
    ports.dedup();
    Ok(ports)
}

/// Random-host-port bindings on all addresses for every exposed port
/// (`docker run -P`).
pub fn publish_all_bindings(exposed: &[(u16, Protocol)]) -> Vec<PortBinding> {
    exposed
        .iter()
        .map(|&(container_port, protocol)| PortBinding {
            host_ip: None,
            host_port: HostPort::Random,
            container_port,
            protocol,
        })
        .collect()
}

/// The bindings of Docker's `HostConfig.PortBindings`
/// (`{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`). An empty or
/// missing `HostPort` is a random port, `"8000-8010"` the first free one of
/// the range; an empty `HostIp` is all addresses. Sorted by container port.
pub fn bindings_from_port_map(map: &PortMap) -> Result<Vec<PortBinding>> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let ports = parse_port_key(key)?;
        let Some(list) = map.get(key).and_then(Option::as_ref) else {
            continue;
        };
        for (container_port, protocol) in &ports {
            for binding in list {
                let host_ip = match binding.host_ip.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(ip) => Some(
                        ip.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<IpAddr>()
                            .map_err(|_| {
                                bad(key, &format!("HostIp {ip:?} is not an IP address"))
                            })?,
                    ),
                };
                let host_port = match binding.host_port.as_deref().map(str::trim) {
                    None | Some("") => HostPort::Random,
                    Some(text) => match parse_range(key, text)? {
                        (a, b) if a == b => HostPort::Port(a),
                        (a, b) if ports.len() == 1 => HostPort::Range(a, b),
                        _ => return Err(bad(key, "a host port range needs one container port")),
                    },
                };
                out.push(PortBinding {
                    host_ip,
                    host_port,
                    container_port: *container_port,
                    protocol: *protocol,
                });
            }
        }
    }
    Ok(out)
}

/// One host socket of a [`Published`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    /// The host address and port listened on (the chosen port when random).
    pub host: SocketAddr,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// Docker's `NetworkSettings.Ports` for published ports:
/// `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}]}`, plus `null`
/// for exposed ports that are not published.
pub fn port_map(published: &[PublishedPort], exposed: &[(u16, Protocol)]) -> PortMap {
    let mut map = PortMap::new();
    for (port, protocol) in exposed {
        map.insert(format!("{port}/{protocol}"), None);
    }
    for p in published {
        let entry = map
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert(None)
            .get_or_insert_with(Vec::new);
        entry.push(DockerPortBinding {
            host_ip: Some(p.host.ip().to_string()),
            host_port: Some(p.host.port().to_string()),
        });
    }
    map
}

/// A set of published ports, forwarding while it lives. Dropping it closes
/// the host sockets and the connections through them.
pub struct Published {
    ports: Vec<PublishedPort>,
    target: Ipv4Addr,
    tasks: Vec<JoinHandle<()>>,
    closed: Option<mpsc::Receiver<()>>,
}

impl fmt::Debug for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Published")
            .field("ports", &self.ports)
            .field("target", &self.target)
            .finish()
    }
}

impl Published {
    /// The host sockets, in the order of the bindings.
    pub fn ports(&self) -> &[PublishedPort] {
        &self.ports
    }

    /// The container address forwarded to.
    pub fn target(&self) -> Ipv4Addr {
        self.target
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // Each task's sockets and a sender go together when the forwarder
        // drops the task; all senders gone means all sockets are closed.
        if let Some(closed) = self.closed.take() {
            let _ = closed.recv_timeout(CLOSE_WAIT);
        }
    }
}

/// A listening socket and the sender that tells [`Published::drop`] it is
/// gone. Fields drop in order: the socket first.
struct Guard<S> {
    socket: S,
    _closed: mpsc::Sender<()>,
}

/// The forwarder's runtime, on its own thread, started on first use.
fn forwarder() -> Result<Handle> {
    static FORWARDER: Mutex<Option<Handle>> = Mutex::new(None);
    let mut slot = FORWARDER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime {
            context: "port forwarder: start".into(),
            message: e.to_string(),
        })?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("servin-ports".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| Error::Runtime {
            context: "port forwarder: start thread".into(),
            message: e.to_string(),
        })?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// A bound host socket, not yet handed to the forwarder.
struct Bound {
    fd: OwnedFd,
    port: PublishedPort,
}

/// Creates, binds (and for TCP, listens on) one host socket. IPv6 sockets
/// are IPv6-only so that `::` and `0.0.0.0` are two sockets.
fn bind_socket(addr: SocketAddr, protocol: Protocol) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let kind = match protocol {
        Protocol::Tcp => SocketType::STREAM,
        Protocol::Udp => SocketType::DGRAM,
    };
    let fd = rustix::net::socket_with(
        family,
        kind,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    if protocol == Protocol::Tcp {
        sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    if protocol == Protocol::Tcp {
        rustix::net::listen(&fd, 1024)?;
    }
    Ok(fd)
}

/// The error for a host socket that could not be bound.
fn bind_error(addr: SocketAddr, protocol: Protocol, error: io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::AddrInUse => {
            let holder = port_holder(addr, protocol)
                .map(|h| format!(" by {h}"))
                .unwrap_or_default();
            Error::from(NetworkError::PortInUse {
                binding: format!("{addr}/{protocol}"),
                holder,
            })
        }
        io::ErrorKind::AddrNotAvailable => Error::from(NetworkError::NoSuchHostAddress(format!(
            "{addr}/{protocol}"
        ))),
        _ => Error::Runtime {
            context: format!("publish {addr}/{protocol}: listen"),
            message: error.to_string(),
        },
    }
}

/// Binds the sockets of one binding: the given address, or `0.0.0.0` plus,
/// when the host has IPv6, `::` on the same port.
fn bind_binding(binding: &PortBinding, out: &mut Vec<Bound>) -> Result<()> {
    let primary: IpAddr = binding.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let candidates: Vec<u16> = match binding.host_port {
        HostPort::Random => vec![0],
        HostPort::Port(p) => vec![p],
        HostPort::Range(a, b) => (a..=b).collect(),
    };
    let mut last = None;
    for port in candidates {
        let addr = SocketAddr::new(primary, port);
        match bind_socket(addr, binding.protocol) {
            Ok(fd) => {
                let local = rustix::net::getsockname(&fd)
                    .ok()
                    .and_then(|a| SocketAddr::try_from(a).ok())
                    .unwrap_or(addr);
                out.push(Bound {
                    fd,
                    port: PublishedPort {
                        host: local,
                        container_port: binding.container_port,
                        protocol: binding.protocol,
                    },
                });
                if binding.host_ip.is_none() {
                    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), local.port());
                    match bind_socket(v6, binding.protocol) {
                        Ok(fd) => out.push(Bound {
                            fd,
                            port: PublishedPort {
                                host: v6,
                                container_port: binding.container_port,
                                protocol: binding.protocol,
                            },
                        }),
                        Err(error) => {
                            tracing::debug!(%v6, %error, "publish: no IPv6 socket");
                        }
                    }
                }
                return Ok(());
            }
            Err(error) => last = Some((addr, error)),
        }
    }
    if let (HostPort::Range(a, b), Some((_, error))) = (binding.host_port, &last)
        && a != b
        && error.kind() == io::ErrorKind::AddrInUse
    {
        let ip = SocketAddr::new(primary, 0).to_string();
        let ip = ip.strip_suffix(":0").unwrap_or(&ip);
        return Err(NetworkError::RangeInUse(format!("{ip}:{a}-{b}/{}", binding.protocol)).into());
    }
    let (addr, error) = last.unwrap_or_else(|| {
        (
            SocketAddr::new(primary, 0),
            io::Error::from(io::ErrorKind::AddrInUse),
        )
    });
    Err(bind_error(addr, binding.protocol, error))
}

/// How published ports forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOptions {
    /// How long a UDP client's session is kept without traffic either way.
    pub udp_idle: Duration,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            udp_idle: UDP_IDLE_TIMEOUT,
        }
    }
}

/// Publishes `bindings`, forwarding to `target` (the container's address).
/// Every host socket is bound before anything is forwarded; if one fails,
/// those already bound are closed and the error names the address, port
/// and, for a port in use, its holder.
pub fn publish(bindings: &[PortBinding], target: Ipv4Addr) -> Result<Published> {
    publish_with(bindings, target, PublishOptions::default())
}

/// [`publish`] with other [`PublishOptions`].
pub fn publish_with(
    bindings: &[PortBinding],
    target: Ipv4Addr,
    options: PublishOptions,
) -> Result<Published> {
    let mut bound = Vec::new();
    for binding in bindings {
        // On error `bound` drops here, closing the sockets bound so far.
        bind_binding(binding, &mut bound)?;
    }
    let handle = forwarder()?;
    let _entered = handle.enter();
    let (closed_tx, closed_rx) = mpsc::channel();
    let mut ports = Vec::with_capacity(bound.len());
    let mut tasks = Vec::with_capacity(bound.len());
    let mut sockets = Vec::with_capacity(bound.len());
    for Bound { fd, port } in bound {
        let to = SocketAddr::from((target, port.container_port));
        let socket = match port.protocol {
            Protocol::Tcp => {
                TcpListener::from_std(std::net::TcpListener::from(fd)).map(Socket::Tcp)
            }
            Protocol::Udp => {
                UdpSocket::from_std(std::net::UdpSocket::from(fd)).map(|s| Socket::Udp(Arc::new(s)))
            }
        }
        .map_err(|e| Error::Runtime {
            context: format!("publish {}/{}: register", port.host, port.protocol),
            message: e.to_string(),
        })?;
        sockets.push((socket, to));
        ports.push(port);
    }
    for (socket, to) in sockets {
        let task = match socket {
            Socket::Tcp(listener) => handle.spawn(serve_tcp(
                Guard {
                    socket: listener,
                    _closed: closed_tx.clone(),
                },
                to,
            )),
            Socket::Udp(socket) => handle.spawn(serve_udp(
                Guard {
                    socket,
                    _closed: closed_tx.clone(),
                },
                to,
                options.udp_idle,
            )),
        };
        tasks.push(task);
    }
    drop(closed_tx);
    Ok(Published {
        ports,
        target,
        tasks,
        closed: Some(closed_rx),
    })
}

/// A host socket registered with the forwarder's runtime.
enum Socket {
    Tcp(TcpListener),
    Udp(Arc<UdpSocket>),
}

/// Accepts connections and forwards each to `target`.
async fn serve_tcp(guard: Guard<TcpListener>, target: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = guard.socket.accept().await;
        while connections.try_join_next().is_some() {}
        let client = match accepted {
            Ok((client, _)) => client,
            Err(error) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::debug!(%target, %error, "publish: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        connections.spawn(async move {
            let upstream =
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
                    Ok(Ok(upstream)) => upstream,
                    Ok(Err(error)) => {
                        tracing::debug!(%target, %error, "publish: connect failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%target, "publish: connect timed out");
                        return;
                    }
                };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let result = tokio::try_join!(
                splice_one_way(&client, &upstream),
                splice_one_way(&upstream, &client)
            );
            if let Err(error) = result {
                tracing::debug!(%target, %error, "publish: connection ended");
            }
        });
    }
}

/// Moves bytes from `from` to `to` through a pipe with splice(2), so they
/// never pass through user space; passes the end of the stream on as a
/// write shutdown. Returns the bytes moved.
async fn splice_one_way(from: &TcpStream, to: &TcpStream) -> io::Result<u64> {
    let (pipe_out, pipe_in) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
    let size = rustix::pipe::fcntl_setpipe_size(&pipe_in, PIPE_SIZE).unwrap_or(64 * 1024);
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    let mut total = 0u64;
    loop {
        // The pipe is empty here: all of it is free for the socket's data.
        let read = from.try_io(Interest::READABLE, || {
            Ok(rustix::pipe::splice(
                from, None, &pipe_in, None, size, flags,
            )?)
        });
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                from.readable().await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            let written = to.try_io(Interest::WRITABLE, || {
                Ok(rustix::pipe::splice(
                    &pipe_out, None, to, None, left, flags,
                )?)
            });
            match written {
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => to.writable().await?,
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
        // A busy connection must not starve the others on this thread (the
        // socket calls above bypass tokio's cooperative budget).
        tokio::task::yield_now().await;
    }
    rustix::net::shutdown(to, rustix::net::Shutdown::Write)?;
    Ok(total)
}

/// One UDP client's session: the connected socket towards the target and
/// the count of datagrams the client sent (activity for the idle timeout).
struct Session {
    upstream: Arc<UdpSocket>,
    sent: Arc<AtomicU64>,
}

/// Receives datagrams and forwards each client's through its own session
/// socket; replies go back from the host socket to the client.
async fn serve_udp(guard: Guard<Arc<UdpSocket>>, target: SocketAddr, idle: Duration) {
    let host = Arc::downgrade(&guard.socket);
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut ended: JoinSet<SocketAddr> = JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            received = guard.socket.recv_from(&mut buf) => {
                let (n, client) = match received {
                    Ok(got) => got,
                    Err(error) => {
                        tracing::debug!(%target, %error, "publish: udp receive failed");
                        continue;
                    }
                };
                let session = match sessions.entry(client) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => match open_session(target).await {
                        Ok(upstream) => {
                            let session = Session {
                                upstream: Arc::new(upstream),
                                sent: Arc::default(),
                            };
                            ended.spawn(relay_replies(
                                session.upstream.clone(),
                                session.sent.clone(),
                                host.clone(),
                                client,
                                idle,
                            ));
                            entry.insert(session)
                        }
                        Err(error) => {
                            tracing::debug!(%target, %error, "publish: udp session failed");
                            continue;
                        }
                    },
                };
                session.sent.fetch_add(1, Ordering::Relaxed);
                // A refused send (nothing listening yet) drops the datagram, as UDP may.
                let _ = session.upstream.send(&buf[..n]).await;
            }
            Some(done) = ended.join_next() => {
                if let Ok(client) = done {
                    sessions.remove(&client);
                }
            }
        }
    }
}

/// A socket connected to `target` for one client.
async fn open_session(target: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    socket.connect(target).await?;
    Ok(socket)
}

/// Sends the target's replies back to `client` until the session has been
/// idle for `idle`; returns the client's address.
async fn relay_replies(
    upstream: Arc<UdpSocket>,
    sent: Arc<AtomicU64>,
    host: Weak<UdpSocket>,
    client: SocketAddr,
    idle: Duration,
) -> SocketAddr {
    let mut buf = vec![0u8; 65_536];
    let mut seen = sent.load(Ordering::Relaxed);
    loop {
        match tokio::time::timeout(idle, upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                // The host socket is only borrowed for a non-blocking send, so
                // closing the listener is never held up by a session.
                let Some(host) = host.upgrade() else {
                    return client;
                };
                let _ = host.try_send_to(&buf[..n], client);
            }
            Ok(Err(error)) => {
                // ICMP port unreachable from the target: keep the session.
                tracing::debug!(%client, %error, "publish: udp reply failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                let now = sent.load(Ordering::Relaxed);
                if now == seen {
                    return client;
                }
                seen = now;
            }
        }
    }
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process ID.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub name: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {} (pid {})", self.name, self.pid)
    }
}

/// Which process holds the socket bound to `addr` (or to a wildcard
/// address on its port), from `/proc/net/*` and `/proc/*/fd`. `None` when
/// no socket matches or its owner is not visible.
pub fn port_holder(addr: SocketAddr, protocol: Protocol) -> Option<Holder> {
    let files: &[&str] = match protocol {
        Protocol::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
        Protocol::Udp => &["/proc/net/udp", "/proc/net/udp6"],
    };
    let mut inodes = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        inodes.extend(socket_inodes(&text, addr, protocol));
    }
    // Listening sockets first: they are the usual holders of a TCP port.
    inodes.sort_by_key(|&(listening, _)| !listening);
    inodes.into_iter().find_map(|(_, inode)| inode_owner(inode))
}

/// The inodes of sockets in a `/proc/net/{tcp,udp}{,6}` table bound to
/// `addr`'s port on a conflicting address, each with whether it listens.
fn socket_inodes(table: &str, addr: SocketAddr, protocol: Protocol) -> Vec<(bool, u64)> {
    let mut found = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9))
        else {
            continue;
        };
        let Some(local) = parse_proc_address(local) else {
            continue;
        };
        let Ok(inode) = inode.parse::<u64>() else {
            continue;
        };
        if inode == 0 || local.port() != addr.port() {
            continue;
        }
        let local_ip = canonical(local.ip());
        let wanted = canonical(addr.ip());
        if local_ip == wanted || local_ip.is_unspecified() || wanted.is_unspecified() {
            let listening = protocol == Protocol::Udp || *state == "0A";
            found.push((listening, inode));
        }
    }
    found
}

/// IPv4-mapped IPv6 addresses as IPv4; `::` as `0.0.0.0` too, for matching.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Parses `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the
/// address words are in the kernel's byte order, the port in plain hex.
fn parse_proc_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |chunk: &str| u32::from_str_radix(chunk, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, out) in bytes.chunks_mut(4).enumerate() {
                out.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The process with a descriptor on socket `inode`.
fn inode_owner(inode: u64) -> Option<Holder> {
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == wanted.as_str()) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some(Holder { pid, name });
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortBinding {
        let mut all = parse_port_spec(spec).unwrap();
        assert_eq!(all.len(), 1, "{spec}");
        all.remove(0)
    }

    #[test]
    fn port_specs() {
        assert_eq!(
            one("80"),
            PortBinding {
                host_ip: None,
                host_port: HostPort::Random,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(one("8080:80").host_port, HostPort::Port(8080));
        assert_eq!(one("53:53/udp").protocol, Protocol::Udp);
        assert_eq!(one("53:53/UDP").protocol, Protocol::Udp);
        let b = one("127.0.0.1:8080:80/tcp");
        assert_eq!(b.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(b.host_port, HostPort::Port(8080));
        let b = one("127.0.0.1::80");
        assert_eq!(b.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(b.host_port, HostPort::Random);
        let b = one("[::1]:8080:80");
        assert_eq!(b.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(one("8000-8010:80").host_port, HostPort::Range(8000, 8010));

        let all = parse_port_spec("9000-9002:80-82/udp").unwrap();
        assert_eq!(
            all.iter()
                .map(|b| (b.host_port, b.container_port))
                .collect::<Vec<_>>(),
            vec![
                (HostPort::Port(9000), 80),
                (HostPort::Port(9001), 81),
                (HostPort::Port(9002), 82)
            ]
        );
        let all = parse_port_spec("80-81").unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|b| b.host_port == HostPort::Random));

        for bad in [
            "",
            "0",
            "70000",
            "80/sctp",
            "a:80",
            "1.2.3.4:5:6:7",
            "9000-9001:80-82",
            "81-80",
            "8080:80-81",
            "[::1:80",
            "8080:",
            "host:8080:80",
        ] {
            assert!(parse_port_spec(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn docker_shapes() {
        assert_eq!(
            parse_exposed(&[
                "80/tcp".into(),
                "53/udp".into(),
                "80".into(),
                "90-91/tcp".into()
            ])
            .unwrap(),
            vec![
                (53, Protocol::Udp),
                (80, Protocol::Tcp),
                (90, Protocol::Tcp),
                (91, Protocol::Tcp)
            ]
        );
        let map: PortMap = serde_json::from_str(
            r#"{"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": ""}],
                "53/udp": [{"HostPort": "5300-5310"}], "443/tcp": null, "22/tcp": []}"#,
        )
        .unwrap();
        let bindings = bindings_from_port_map(&map).unwrap();
        assert_eq!(
            bindings,
            vec![
                PortBinding {
                    host_ip: None,
                    host_port: HostPort::Range(5300, 5310),
                    container_port: 53,
                    protocol: Protocol::Udp
                },
                PortBinding {
                    host_ip: None,
                    host_port: HostPort::Port(8080),
                    container_port: 80,
                    protocol: Protocol::Tcp
                },
                PortBinding {
                    host_ip: Some("::1".parse().unwrap()),
                    host_port: HostPort::Random,
                    container_port: 80,
                    protocol: Protocol::Tcp
                },
            ]
        );
        let bad: PortMap =
            serde_json::from_str(r#"{"80/tcp": [{"HostIp": "nope", "HostPort": "1"}]}"#).unwrap();
        assert!(bindings_from_port_map(&bad).is_err());

        let published = [PublishedPort {
            host: "0.0.0.0:32768".parse().unwrap(),
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        let map = port_map(&published, &[(80, Protocol::Tcp), (53, Protocol::Udp)]);
        assert_eq!(
            serde_json::to_value(&map).unwrap(),
            serde_json::json!({
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
                "53/udp": null
            })
        );
    }

    #[test]
    fn proc_net_addresses() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:1F90 0100007F:9C40 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000\n";
        if cfg!(target_endian = "little") {
            assert_eq!(
                parse_proc_address("0100007F:1F90"),
                Some("127.0.0.1:8080".parse().unwrap())
            );
            assert_eq!(
                parse_proc_address("00000000000000000000000001000000:0035"),
                Some("[::1]:53".parse().unwrap())
            );
            assert_eq!(
                socket_inodes(table, "127.0.0.1:8080".parse().unwrap(), Protocol::Tcp),
                vec![(true, 4242)]
            );
            assert_eq!(
                socket_inodes(table, "10.0.0.1:80".parse().unwrap(), Protocol::Tcp),
                vec![(true, 77)]
            );
            assert!(socket_inodes(table, "10.0.0.1:81".parse().unwrap(), Protocol::Tcp).is_empty());
        }
        assert_eq!(parse_proc_address("zz:1"), None);
        assert_eq!(parse_proc_address("0100007F"), None);
    }
}
