//! Benchmark of name resolution against the engine's DNS server.
//!
//! ```text
//! cargo run --release -p servin-guest --example dns_bench -- [QUERIES] [SERVER NAME]
//! ```
//!
//! Without SERVER, runs a [`DnsServer`] in this process on 127.0.78.1
//! (a name source with one name, `web`) on a current_thread runtime as in
//! the engine, and asks it from another thread. With `SERVER` (`IP:PORT`)
//! and `NAME`, asks that server instead, e.g. from inside a container's
//! network namespace: `nsenter -t PID -n dns_bench 5000 10.89.0.1:53 web`.
//!
//! Each query is one UDP `A` question and its answer, one at a time;
//! prints the median and p99 round trip and checks every answer has an
//! address.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use servin_guest::dns::{DnsConfig, DnsServer, NameSource, name_matches};

type Failure = Box<dyn std::error::Error>;

/// One name, as a network with one container would have.
struct OneName;

impl NameSource for OneName {
    fn lookup(&self, _server: Ipv4Addr, name: &str) -> Option<Vec<Ipv4Addr>> {
        name_matches(name, "web").then(|| vec![Ipv4Addr::new(10, 89, 0, 2)])
    }
}

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let queries: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let target = args.next();
    let name = args.next().unwrap_or_else(|| "web".into());

    let (server, _runtime) = match target {
        Some(server) => (server.parse::<SocketAddr>()?, None),
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
                    let addr = server
                        .listen(Ipv4Addr::new(127, 0, 78, 1))
                        .await
                        .map_err(|e| e.to_string())?;
                    let _ = tx.send(addr);
                    std::future::pending::<()>().await;
                    Ok(())
                })
            });
            (rx.recv_timeout(Duration::from_secs(10))?, Some(thread))
        }
    };

    let socket = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut query = Message::new(0, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(&name)?, RecordType::A));
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
    samples.sort();
    if samples.is_empty() {
        return Err("no queries measured: give QUERIES of 1 or more".into());
    }
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!("name resolution of {name} at {server} ({queries} UDP A queries, one at a time)");
    println!("  median {:6.1} µs  p99 {:6.1} µs", at(0.5), at(0.99));
    Ok(())
}
