//! The engine's embedded DNS server: service discovery for networks.
//!
//! Containers on a network use the network's gateway address as their
//! nameserver. [`DnsServer`] listens there (UDP and TCP) and answers `A`
//! and `AAAA` queries for the names a [`NameSource`] knows (container
//! names, aliases, project-scoped names; `AAAA` with the IPv6 addresses of
//! containers on IPv6 networks), asked afresh for every query: nothing is cached,
//! so a recreated container's new address is served at once. Every other
//! query is forwarded, as it came, to the upstream resolvers (the host's,
//! see [`upstreams_from_resolv_conf`]); when none answers the client gets
//! `SERVFAIL` within the configured timeout.
//!
//! The wire format, request handling and the UDP/TCP framing are
//! `hickory-server`'s; this module only decides the answers. Everything runs
//! as tasks on the caller's tokio runtime (the engine's `current_thread`
//! one): the name lookups are synchronous and must be quick, forwarding is
//! asynchronous.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::error::{Error, Result};

/// The standard DNS port.
pub const DNS_PORT: u16 = 53;

/// How long one upstream resolver may take before the next is tried.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an idle TCP client connection is kept.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The largest DNS message over UDP we accept from an upstream.
const MAX_UDP_MESSAGE: usize = 65_535;

/// Where the names the server answers for come from: the engine's live
/// state of networks and containers.
pub trait NameSource: Send + Sync + 'static {
    /// The addresses of `name` on the network served at `server` (the local
    /// address the query arrived on, which identifies the network), IPv4
    /// and IPv6 (`A` queries get the former, `AAAA` ones the latter), or
    /// `None` when the name is not one of that network's (the query is then
    /// forwarded upstream). `Some(vec![])` answers "exists, no address".
    ///
    /// `name` comes lower-cased and without the trailing dot; compare with
    /// [`name_matches`] (case-insensitive, trailing dot optional). Called
    /// for every query on the engine's runtime: it must not block.
    fn lookup(&self, server: Ipv4Addr, name: &str) -> Option<Vec<IpAddr>>;

    /// [`NameSource::lookup`] for a query sent by `client`: a source may
    /// also answer for the other networks the client is on (as Docker's
    /// server does). By default, `lookup`.
    fn lookup_from(&self, server: Ipv4Addr, client: IpAddr, name: &str) -> Option<Vec<IpAddr>> {
        let _ = client;
        self.lookup(server, name)
    }
}

/// Whether a queried name and a registered name are the same DNS name:
/// ASCII case-insensitive, with or without a trailing dot on either.
pub fn name_matches(query: &str, name: &str) -> bool {
    let query = query.strip_suffix('.').unwrap_or(query);
    let name = name.strip_suffix('.').unwrap_or(name);
    !query.is_empty() && query.eq_ignore_ascii_case(name)
}

/// How a [`DnsServer`] listens and forwards.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The port to listen on, UDP and TCP; [`DNS_PORT`] in the engine, `0`
    /// for any free port (tests).
    pub port: u16,
    /// The resolvers queries for other names are forwarded to, in order.
    pub upstreams: Vec<SocketAddr>,
    /// How long each upstream may take to answer.
    pub upstream_timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            port: DNS_PORT,
            upstreams: Vec::new(),
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
        }
    }
}

/// The embedded DNS server: one set of names ([`NameSource`]), listening on
/// any number of local addresses (one per network gateway), each started
/// and stopped at runtime.
pub struct DnsServer {
    shared: Arc<Shared>,
    listeners: Mutex<HashMap<Ipv4Addr, Listening>>,
}

/// What every listening address's handler shares.
struct Shared {
    source: Arc<dyn NameSource>,
    upstreams: RwLock<Vec<SocketAddr>>,
    timeout: Duration,
    port: u16,
}

/// One listening address: its hickory server and the port it got.
struct Listening {
    server: Server<Handler>,
    port: u16,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("listening", &self.listening())
            .field("upstreams", &self.upstreams())
            .finish()
    }
}

impl DnsServer {
    /// A server answering from `source`, not yet listening anywhere.
    pub fn new(source: Arc<dyn NameSource>, config: DnsConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                source,
                upstreams: RwLock::new(config.upstreams),
                timeout: config.upstream_timeout,
                port: config.port,
            }),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    /// Starts answering on `addr` (UDP and TCP, the configured port) and
    /// returns the address listened on. Listening again on the same address
    /// is a no-op. Must be called on a tokio runtime: the server's tasks are
    /// spawned on it.
    pub async fn listen(&self, addr: Ipv4Addr) -> Result<SocketAddr> {
        if let Some(listening) = self.lock().get(&addr) {
            return Ok(SocketAddr::from((addr, listening.port)));
        }
        let (udp, tcp) = bind_pair(addr, self.shared.port).await?;
        let port = udp
            .local_addr()
            .map_err(|e| socket_error("dns server", (addr, self.shared.port), "read address", e))?
            .port();
        let mut server = Server::new(Handler {
            shared: self.shared.clone(),
            local: addr,
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, 16);
        let mut listeners = self.lock();
        if let Some(existing) = listeners.get(&addr) {
            // Another caller won the race; ours is dropped with its sockets.
            server.shutdown_token().cancel();
            return Ok(SocketAddr::from((addr, existing.port)));
        }
        listeners.insert(addr, Listening { server, port });
        tracing::debug!(%addr, port, "dns server listening");
        Ok(SocketAddr::from((addr, port)))
    }

    /// Stops answering on `addr`; when this returns, its UDP and TCP ports
    /// are closed and can be bound again. Unknown addresses are a no-op.
    pub async fn stop_listening(&self, addr: Ipv4Addr) {
        let listening = self.lock().remove(&addr);
        if let Some(mut listening) = listening
            && let Err(error) = listening.server.shutdown_gracefully().await
        {
            tracing::debug!(%addr, %error, "dns server stopped");
        }
    }

    /// Stops answering on every address.
    pub async fn shutdown(&self) {
        for addr in self.listening() {
            self.stop_listening(addr).await;
        }
    }

    /// The addresses answered on, in no particular order.
    pub fn listening(&self) -> Vec<Ipv4Addr> {
        self.lock().keys().copied().collect()
    }

    /// Replaces the upstream resolvers; takes effect for the next query.
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *self
            .shared
            .upstreams
            .write()
            .unwrap_or_else(PoisonError::into_inner) = upstreams;
    }

    /// The upstream resolvers queries are forwarded to.
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.shared.upstreams()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ipv4Addr, Listening>> {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    fn upstreams(&self) -> Vec<SocketAddr> {
        self.upstreams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Binds UDP and TCP on the same `addr:port`. With port 0 the TCP socket
/// takes the port the UDP one got, retrying when that one is taken for TCP.
async fn bind_pair(addr: Ipv4Addr, port: u16) -> Result<(UdpSocket, TcpListener)> {
    let attempts = if port == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind((addr, port))
            .await
            .map_err(|e| socket_error("dns server", (addr, port), "listen (udp)", e))?;
        let got = udp
            .local_addr()
            .map_err(|e| socket_error("dns server", (addr, port), "read address", e))?
            .port();
        match TcpListener::bind((addr, got)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(socket_error("dns server", (addr, got), "listen (tcp)", e)),
        }
    }
    let error = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse));
    Err(socket_error(
        "dns server",
        (addr, port),
        "listen (tcp)",
        error,
    ))
}

/// An error about a socket at `addr`, naming the subject and the step.
/// A port in use names its holder when it can be found.
fn socket_error(subject: &str, addr: impl Into<SocketAddr>, step: &str, error: io::Error) -> Error {
    let addr = addr.into();
    let mut message = error.to_string();
    if error.kind() == io::ErrorKind::AddrInUse {
        let protocol = if step.contains("udp") {
            crate::network::ports::Protocol::Udp
        } else {
            crate::network::ports::Protocol::Tcp
        };
        if let Some(holder) = crate::network::ports::port_holder(addr, protocol) {
            message = format!("{message} (held by {holder})");
        }
    }
    Error::Runtime {
        context: format!("{subject} {addr}: {step}"),
        message,
    }
}

/// The request handler of one listening address.
struct Handler {
    shared: Arc<Shared>,
    local: Ipv4Addr,
}

/// What to answer a query with.
enum Answer {
    /// Our name: these addresses (none for other record types).
    Local(Vec<Record>),
    /// Not ours: the upstream's response.
    Forwarded(Message),
    /// An error code and nothing else.
    Error(ResponseCode),
}

impl Handler {
    /// Decides the answer to `request`.
    async fn answer(&self, request: &Request) -> Answer {
        if request.metadata.op_code != OpCode::Query {
            return Answer::Error(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Answer::Error(ResponseCode::FormErr);
        };
        let query = info.query;
        if query.query_class() == DNSClass::IN {
            let name = query.name().to_string();
            let name = name.strip_suffix('.').unwrap_or(&name);
            if let Some(addresses) = self
                .shared
                .source
                .lookup_from(self.local, info.src.ip(), name)
            {
                let (v4, v6) = match query.query_type() {
                    RecordType::A => (true, false),
                    RecordType::AAAA => (false, true),
                    RecordType::ANY => (true, true),
                    _ => (false, false),
                };
                let records = addresses
                    .into_iter()
                    .filter_map(|ip| match ip {
                        IpAddr::V4(ip) if v4 => Some(RData::A(A(ip))),
                        IpAddr::V6(ip) if v6 => Some(RData::AAAA(AAAA(ip))),
                        _ => None,
                    })
                    .map(|data| Record::from_rdata(query.original().name().clone(), 0, data))
                    .collect();
                return Answer::Local(records);
            }
        }
        let tcp = request.protocol() == hickory_server::net::xfer::Protocol::Tcp;
        match self
            .forward(request.as_slice(), request.metadata.id, tcp)
            .await
        {
            Some(message) => Answer::Forwarded(message),
            None => Answer::Error(ResponseCode::ServFail),
        }
    }

    /// Sends the raw query to each upstream in turn; the first well-formed
    /// response with the query's ID wins.
    async fn forward(&self, query: &[u8], id: u16, tcp: bool) -> Option<Message> {
        let upstreams = self.shared.upstreams();
        if upstreams.is_empty() {
            return Some(nxdomain_placeholder(id));
        }
        for upstream in upstreams {
            let attempt = async {
                if tcp {
                    exchange_tcp(upstream, query).await
                } else {
                    exchange_udp(upstream, query, id).await
                }
            };
            match tokio::time::timeout(self.shared.timeout, attempt).await {
                Ok(Ok(bytes)) => match Message::from_vec(&bytes) {
                    Ok(message)
                        if message.metadata.id == id
                            && message.metadata.message_type == MessageType::Response =>
                    {
                        return Some(message);
                    }
                    Ok(_) => tracing::debug!(%upstream, "dns upstream: mismatched response"),
                    Err(error) => tracing::debug!(%upstream, %error, "dns upstream: bad response"),
                },
                Ok(Err(error)) => tracing::debug!(%upstream, %error, "dns upstream failed"),
                Err(_) => tracing::debug!(%upstream, "dns upstream timed out"),
            }
        }
        None
    }
}

/// With no upstream configured, a name that is not ours does not exist.
fn nxdomain_placeholder(id: u16) -> Message {
    let mut message = Message::new(id, MessageType::Response, OpCode::Query);
    message.metadata.response_code = ResponseCode::NXDomain;
    message.metadata.recursion_available = true;
    message
}

/// One query over UDP; skips datagrams with another ID.
async fn exchange_udp(upstream: SocketAddr, query: &[u8], id: u16) -> io::Result<Vec<u8>> {
    let any: SocketAddr = match upstream.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP_MESSAGE];
    loop {
        let n = socket.recv(&mut buf).await?;
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// One query over TCP (two-byte length prefix, RFC 1035 4.2.2).
async fn exchange_tcp(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let length = u16::try_from(query.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    let mut stream = TcpStream::connect(upstream).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let length = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(length)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let answer = self.answer(request).await;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        // A client that speaks EDNS gets an OPT record back, and answers up
        // to the size it can take over UDP.
        let edns = request.edns.as_ref().map(|client| {
            let mut edns = Edns::new();
            edns.set_max_payload(client.max_payload().max(512));
            edns
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let result = match &answer {
            Answer::Local(records) => {
                metadata.authoritative = true;
                let response = builder.build(metadata, records.iter(), [], [], []);
                response_handle.send_response(response).await
            }
            Answer::Forwarded(message) => {
                let mut metadata = message.metadata;
                metadata.id = request.metadata.id;
                let response = builder.build(
                    metadata,
                    message.answers.iter(),
                    message.authorities.iter(),
                    [],
                    message.additionals.iter(),
                );
                response_handle.send_response(response).await
            }
            Answer::Error(code) => {
                let response = builder.error_msg(&request.metadata, *code);
                response_handle.send_response(response).await
            }
        };
        match result {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "dns server: sending a response failed");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}

/// The nameservers of a resolv.conf text, port 53, skipping loopback ones
/// (127.0.0.0/8, ::1: they are the host's stub resolvers and unreachable
/// from the places the engine forwards for). Scoped IPv6 addresses
/// (`fe80::1%eth0`) are skipped too.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if ip.is_loopback() || ip.is_unspecified() {
            continue;
        }
        let server = SocketAddr::new(ip, DNS_PORT);
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    servers
}

/// The upstream resolvers from a resolv.conf file (normally
/// `/etc/resolv.conf`), as [`parse_resolv_conf`] reads them.
pub fn upstreams_from_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    Ok(parse_resolv_conf(&text))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_match_ignoring_case_and_trailing_dot() {
        assert!(name_matches("web", "web"));
        assert!(name_matches("WEB.", "web"));
        assert!(name_matches("web", "Web."));
        assert!(name_matches("db.myproj", "DB.MyProj"));
        assert!(!name_matches("web", "web2"));
        assert!(!name_matches("", ""));
        assert!(!name_matches(".", "."));
    }

    #[test]
    fn resolv_conf_skips_loopback_and_junk() {
        let text = "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n\
                    nameserver ::1\nnameserver 2001:db8::1\nnameserver fe80::1%eth0\n\
                    nameserver\nnameserver bogus\nnameserver 10.0.0.2\noptions ndots:0\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::1]:53".parse().unwrap(),
            ]
        );
    }
}
