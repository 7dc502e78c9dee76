//! Benchmark of published ports: a TCP server on one loopback address (the
//! "container"), the forwarder on another, and the same client against
//! both in the same run.
//!
//! ```text
//! cargo run --release -p servin-guest --example ports_bench -- [MIB] [ROUND_TRIPS] [NETNS TARGET_IP]
//! ```
//!
//! With NETNS (a path such as `/run/netns/NAME`) and TARGET_IP, the servers
//! run inside that network namespace on TARGET_IP, as a container's would
//! (reached over a veth), and "direct" means connecting to TARGET_IP from
//! the host; the forwarder still listens on 127.0.77.2. `bench/ports.sh`
//! sets such a namespace up.
//!
//! Prints, for a direct connection and through the forwarder:
//! - throughput of a one-way bulk transfer of MIB MiB (default 2048), best of
//!   3 alternating runs, and the ratio forwarded / direct;
//! - the median and p99 round trip of ROUND_TRIPS (default 20000) 64-byte
//!   request/response exchanges on one connection, and the added median;
//! - the median of connect + one exchange + close (a request on a fresh
//!   connection), 2000 times.
//!
//! With two more arguments SINK_FWD and ECHO_FWD (host:port), the servers
//! listen on TARGET_IP ports 5001 (sink) and 5002 (echo) in NETNS and the
//! forwarded runs go through those addresses instead of a forwarder of the
//! bench's own: `bench/net.sh` points them at a real container's namespace
//! and the ports the engine published for it (`-p 5001 -p 5002`).
//!
//! The servers and clients are plain blocking threads; the forwarder runs
//! on its own thread as in the engine.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use servin_guest::network::ports::{HostPort, PortBinding, Protocol, publish};

const TARGET: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 2);
const MESSAGE: usize = 64;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2048);
    let trips: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);

    let (netns_arg, ip_arg) = (args.next(), args.next());
    let external: Option<(SocketAddr, SocketAddr)> = match (args.next(), args.next()) {
        (Some(sink), Some(echo)) => Some((sink.parse()?, echo.parse()?)),
        _ => None,
    };
    let (sink_port, echo_port) = if external.is_some() {
        (5001, 5002)
    } else {
        (0, 0)
    };
    let (target, sink, echo) = match (netns_arg, ip_arg) {
        (Some(netns), Some(ip)) => {
            let ip: Ipv4Addr = ip.parse()?;
            let file = std::fs::File::open(&netns)?;
            // The listeners are created in a thread that entered the
            // namespace; they stay there whichever thread serves them.
            let (sink, echo) = std::thread::spawn(move || -> Result<_, String> {
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&file),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| format!("enter {netns}: {e}"))?;
                let sink = serve(ip, sink_port, sink_connection).map_err(|e| e.to_string())?;
                let echo = serve(ip, echo_port, echo_connection).map_err(|e| e.to_string())?;
                Ok((sink, echo))
            })
            .join()
            .map_err(|_| "the namespace thread panicked")??;
            println!("servers on {ip} in a network namespace, over a veth");
            (ip, sink, echo)
        }
        _ => (
            TARGET,
            serve(TARGET, 0, sink_connection)?,
            serve(TARGET, 0, echo_connection)?,
        ),
    };
    let (published, sink_fwd, echo_fwd) = match external {
        Some((sink_fwd, echo_fwd)) => {
            println!("forwarded through {sink_fwd} and {echo_fwd} (published by the engine)");
            (None, sink_fwd, echo_fwd)
        }
        None => {
            let published = publish(&[binding(sink.port()), binding(echo.port())], target)?;
            let (s, e) = (published.ports()[0].host, published.ports()[1].host);
            (Some(published), s, e)
        }
    };

    // Warm up both paths.
    bulk(sink, 64)?;
    bulk(sink_fwd, 64)?;

    let mut direct = Vec::new();
    let mut forwarded = Vec::new();
    for _ in 0..3 {
        direct.push(bulk(sink, mib)?);
        forwarded.push(bulk(sink_fwd, mib)?);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (d, f) = (best(&direct), best(&forwarded));
    println!("throughput ({mib} MiB one way, best of 3)");
    println!("  direct      {:8.0} MiB/s", d);
    println!("  forwarded   {:8.0} MiB/s", f);
    println!("  ratio       {:8.2}x", f / d);

    let d = round_trips(echo, trips)?;
    let f = round_trips(echo_fwd, trips)?;
    println!("request latency ({trips} x {MESSAGE}-byte round trips, one connection)");
    println!("  direct      median {:6.1} µs  p99 {:6.1} µs", d.0, d.1);
    println!("  forwarded   median {:6.1} µs  p99 {:6.1} µs", f.0, f.1);
    println!("  added       median {:6.1} µs", f.0 - d.0);

    let d = fresh_connections(echo, 2000)?;
    let f = fresh_connections(echo_fwd, 2000)?;
    println!("request on a fresh connection (connect, {MESSAGE}-byte exchange, close; 2000 times)");
    println!("  direct      median {:6.1} µs", d);
    println!("  forwarded   median {:6.1} µs", f);
    println!("  added       median {:6.1} µs", f - d);
    drop(published);
    Ok(())
}

fn binding(container_port: u16) -> PortBinding {
    PortBinding {
        host_ip: Some(HOST.into()),
        host_port: HostPort::Random,
        container_port,
        protocol: Protocol::Tcp,
    }
}

/// A server on `addr` (`port` 0: any) handling each connection on its own thread.
fn serve(addr: Ipv4Addr, port: u16, handle: fn(TcpStream)) -> Result<SocketAddr, Failure> {
    let listener = TcpListener::bind((addr, port))?;
    let local = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || handle(stream));
        }
    });
    Ok(local)
}

/// Reads until EOF, then answers one byte.
fn sink_connection(mut stream: TcpStream) {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return,
        }
    }
    let _ = stream.write_all(b"k");
}

/// Answers each MESSAGE-byte request with the same bytes.
fn echo_connection(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; MESSAGE];
    while stream.read_exact(&mut buf).is_ok() {
        if stream.write_all(&buf).is_err() {
            return;
        }
    }
}

/// Sends `mib` MiB, half-closes, waits for the server's byte; MiB/s.
fn bulk(addr: SocketAddr, mib: usize) -> Result<f64, Failure> {
    let chunk = vec![0x5au8; 1 << 20];
    let mut stream = TcpStream::connect(addr)?;
    let start = Instant::now();
    for _ in 0..mib {
        stream.write_all(&chunk)?;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack)?;
    Ok(mib as f64 / start.elapsed().as_secs_f64())
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Median and p99 of `n` round trips on one connection, in µs.
fn round_trips(addr: SocketAddr, n: usize) -> Result<(f64, f64), Failure> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let request = [7u8; MESSAGE];
    let mut reply = [0u8; MESSAGE];
    for _ in 0..n / 10 {
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        samples.push(start.elapsed());
    }
    Ok((
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    ))
}

/// Median of connect + one exchange + close, in µs.
fn fresh_connections(addr: SocketAddr, n: usize) -> Result<f64, Failure> {
    let request = [7u8; MESSAGE];
    let mut reply = [0u8; MESSAGE];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        drop(stream);
        samples.push(start.elapsed());
    }
    Ok(percentile(&mut samples, 0.5))
}
