//! Benchmark of name resolution against the engine's DNS server.
//!
//! ```text
//! cargo run --release -p servin-guest --example dns_bench -- [QUERIES] [OPTIONS]
//!   --listen IP          run a DnsServer in this process on IP (default 127.0.78.1)
//!   --server IP:PORT     ask that server instead (no server in this process)
//!   --name NAME          the name asked (default `web`, the in-process server's one name)
//!   --client-netns PATH  ask from inside that network namespace (/run/netns/NAME,
//!                        /proc/PID/ns/net), as a container does
//! ```
//!
//! The in-process server answers `web` with 10.89.0.2 and runs on a
//! current_thread runtime as in the engine; the client is another thread.
//! Each query is one UDP `A` question and its answer, one at a time; prints
//! the median and p99 round trip and fails if an answer has no address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use servin_guest::network::dns::{DnsConfig, DnsServer, NameSource, name_matches};

type Failure = Box<dyn std::error::Error>;

/// One name, as a network with one container would have.
struct OneName;

impl NameSource for OneName {
    fn lookup(&self, _server: Ipv4Addr, name: &str) -> Option<Vec<IpAddr>> {
        name_matches(name, "web").then(|| vec![IpAddr::V4(Ipv4Addr::new(10, 89, 0, 2))])
    }
}

fn main() -> Result<(), Failure> {
    let mut queries = 10_000usize;
    let mut listen = Ipv4Addr::new(127, 0, 78, 1);
    let mut target: Option<SocketAddr> = None;
    let mut name = "web".to_string();
    let mut netns: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = value()?.parse()?,
            "--server" => target = Some(value()?.parse()?),
            "--name" => name = value()?,
            "--client-netns" => netns = Some(value()?),
            other => queries = other.parse()?,
        }
    }

    let (server, _thread) = match target {
        Some(server) => (server, None),
        None => {
            let (tx, rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    let server = DnsServer::new(
                        Arc::new(OneName),
                        DnsConfig {
                            port: 0,
                            ..DnsConfig::default()
                        },
                    );
                    let addr = server.listen(listen).await.map_err(|e| e.to_string())?;
                    let _ = tx.send(addr);
                    std::future::pending::<()>().await;
                    Ok(())
                })
            });
            (rx.recv_timeout(Duration::from_secs(10))?, Some(thread))
        }
    };
    let client = std::thread::spawn(move || -> Result<Vec<Duration>, String> {
        if let Some(netns) = &netns {
            let file = std::fs::File::open(netns).map_err(|e| format!("open {netns}: {e}"))?;
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| format!("enter {netns}: {e}"))?;
        }
        ask(server, &name, queries).map_err(|e| e.to_string())
    });
    let mut samples = client.join().map_err(|_| "the client thread panicked")??;
    samples.sort();
    if samples.is_empty() {
        return Err("no queries measured: give QUERIES of 1 or more".into());
    }
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!("name resolution at {server} ({queries} UDP A queries, one at a time)");
    println!("  median {:6.1} µs  p99 {:6.1} µs", at(0.5), at(0.99));
    Ok(())
}

/// Asks `name` `queries` times (after a tenth more as warm-up); the round
/// trips.
fn ask(server: SocketAddr, name: &str, queries: usize) -> Result<Vec<Duration>, Failure> {
    let socket = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut query = Message::new(0, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    let mut buf = vec![0u8; 4096];
    let mut samples = Vec::with_capacity(queries);
    for i in 0..queries + queries / 10 {
        let id = (i % 65_536) as u16;
        query.metadata.id = id;
        let bytes = query.to_vec()?;
        let start = Instant::now();
        socket.send(&bytes)?;
        let answer = loop {
            let n = socket.recv(&mut buf)?;
            let answer = Message::from_vec(&buf[..n])?;
            if answer.metadata.id == id {
                break answer;
            }
        };
        let elapsed = start.elapsed();
        if answer.answers.is_empty() {
            return Err(format!(
                "{name}: no address in the answer ({})",
                answer.metadata.response_code
            )
            .into());
        }
        if i >= queries / 10 {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}
