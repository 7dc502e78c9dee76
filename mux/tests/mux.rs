//! The multiplexer over in-memory byte streams: both ends are real
//! sessions; only the byte stream between them is a pipe.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use servin_mux::{Acceptor, Mux, OpenError};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn pair() -> (Mux, Mux, Acceptor) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let (server, acceptor) = Mux::server(br, bw);
    let (client, _) = Mux::client(ar, aw, TIMEOUT).await.unwrap();
    (client, server, acceptor)
}

/// Serves every stream: `echo` copies back, `sink` never reads, anything
/// else is refused.
fn serve(mut acceptor: Acceptor) {
    tokio::spawn(async move {
        let mut sinks = Vec::new();
        while let Some(incoming) = acceptor.next().await {
            match incoming.target() {
                "echo" => {
                    let stream = incoming.accept().unwrap();
                    tokio::spawn(async move {
                        let (mut r, mut w) = stream.into_split();
                        while let Some(data) = r.read().await.unwrap() {
                            w.write(&data).await.unwrap();
                        }
                        w.shutdown().await.unwrap();
                    });
                }
                "sink" => sinks.push(incoming.accept().unwrap()),
                other => {
                    let message = format!("no target {other}");
                    incoming.refuse(&message);
                }
            }
        }
    });
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_refusal() {
    let (client, _server, acceptor) = pair().await;
    serve(acceptor);
    let (mut r, mut w) = client.open("echo").await.unwrap().into_split();
    w.write(b"hello").await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(r.read_to_end().await.unwrap(), b"hello");
    match client.open("nowhere").await {
        Err(OpenError::Refused { target, message }) => {
            assert_eq!(target, "nowhere");
            assert_eq!(message, "no target nowhere");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a refused target"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transfer_both_ways() {
    let (client, _server, acceptor) = pair().await;
    serve(acceptor);
    let data = pattern(20 * 1024 * 1024, 7);
    let (mut r, mut w) = client.open("echo").await.unwrap().into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in sent.chunks(100_000) {
            w.write(chunk).await.unwrap();
        }
        w.shutdown().await.unwrap();
    });
    let back = tokio::time::timeout(TIMEOUT * 3, r.read_to_end())
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_nobody_reads_does_not_stall_another() {
    let (client, _server, acceptor) = pair().await;
    serve(acceptor);
    let (_sink_r, mut sink_w) = client.open("sink").await.unwrap().into_split();
    // Far more than the window: the writer waits for credit that never comes.
    let stuck = tokio::spawn(async move {
        sink_w.write(&vec![1u8; 4 * 1024 * 1024]).await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stuck.is_finished(), "wrote past the receiver's window");
    for round in 0..20u8 {
        let (mut r, mut w) = client.open("echo").await.unwrap().into_split();
        let msg = pattern(300_000, round);
        let began = Instant::now();
        let sender = {
            let msg = msg.clone();
            tokio::spawn(async move {
                w.write(&msg).await.unwrap();
                w.shutdown().await.unwrap();
            })
        };
        let back = tokio::time::timeout(TIMEOUT, r.read_to_end())
            .await
            .expect("echo stalled behind the unread stream")
            .unwrap();
        sender.await.unwrap();
        assert!(back == msg);
        assert!(began.elapsed() < TIMEOUT);
    }
    stuck.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_parallel_streams() {
    let (client, server, acceptor) = pair().await;
    serve(acceptor);
    let mut tasks = Vec::new();
    for i in 0..300u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = client.open("echo").await.unwrap().into_split();
            let msg = pattern(10_000 + i as usize * 97, i as u8);
            w.write(&msg).await.unwrap();
            w.shutdown().await.unwrap();
            assert!(r.read_to_end().await.unwrap() == msg, "stream {i}");
        }));
    }
    for t in tasks {
        tokio::time::timeout(TIMEOUT, t).await.unwrap().unwrap();
    }
    // Every stream was closed on both ends.
    let began = Instant::now();
    while (client.stream_count(), server.stream_count()) != (0, 0) {
        assert!(began.elapsed() < TIMEOUT, "streams left open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_byte_stream_resets_streams() {
    let (client, server, acceptor) = pair().await;
    serve(acceptor);
    let (mut r, _w) = client.open("sink").await.unwrap().into_split();
    server.shutdown();
    // The server's writer ends; the client sees the byte stream close.
    drop(server);
    let err = tokio::time::timeout(TIMEOUT, r.read()).await.unwrap();
    assert!(err.is_err(), "read after reset: {err:?}");
    tokio::time::timeout(TIMEOUT, client.closed())
        .await
        .unwrap();
    assert!(matches!(
        client.open("echo").await,
        Err(OpenError::Closed { .. })
    ));
}

/// Stands in for QEMU's chardev socket: one long-lived guest-side byte
/// stream, host connections that come and go.
fn port_relay(port: DuplexStream) -> mpsc::UnboundedSender<DuplexStream> {
    let (tx, mut rx) = mpsc::unbounded_channel::<DuplexStream>();
    tokio::spawn(async move {
        let (mut port_r, mut port_w) = tokio::io::split(port);
        let mut current: Option<DuplexStream> = None;
        let mut buf = vec![0u8; 16 * 1024];
        let mut buf2 = vec![0u8; 16 * 1024];
        loop {
            match current.as_mut() {
                None => match rx.recv().await {
                    Some(c) => current = Some(c),
                    None => return,
                },
                Some(conn) => {
                    tokio::select! {
                        next = rx.recv() => match next {
                            Some(c) => current = Some(c),
                            None => return,
                        },
                        n = port_r.read(&mut buf) => {
                            let n = n.unwrap();
                            if n == 0 { return; }
                            // Bytes written while the host reconnects may be lost.
                            if conn.write_all(&buf[..n]).await.is_err() { current = None; }
                        }
                        n = conn.read(&mut buf2) => {
                            match n {
                                Ok(0) | Err(_) => current = None,
                                Ok(n) => port_w.write_all(&buf2[..n]).await.unwrap(),
                            }
                        }
                    }
                }
            }
        }
    });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_end_reconnects() {
    let (port_host, port_guest) = tokio::io::duplex(64 * 1024);
    let (gr, gw) = tokio::io::split(port_guest);
    let (server, acceptor) = Mux::server(gr, gw);
    serve(acceptor);
    let relay = port_relay(port_host);

    // First connection: a session with a stream in the middle of a transfer.
    let (mine, theirs) = tokio::io::duplex(64 * 1024);
    relay.send(theirs).unwrap();
    let (cr, cw) = tokio::io::split(mine);
    let (first, _) = Mux::client(cr, cw, TIMEOUT).await.unwrap();
    let (mut old_r, mut old_w) = first.open("sink").await.unwrap().into_split();
    old_w.write(&[5u8; 1000]).await.unwrap();
    assert_eq!(server.stream_count(), 1);

    // A connection that dies in the middle of a frame.
    let (mut raw, theirs) = tokio::io::duplex(64 * 1024);
    relay.send(theirs).unwrap();
    raw.write_all(&[4, 0, 0, 0, 9, 0, 0, 0x10, 0, 1, 2, 3])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(raw);

    // A new connection: a new session; the old streams are gone.
    let (mine, theirs) = tokio::io::duplex(64 * 1024);
    relay.send(theirs).unwrap();
    let (cr, cw) = tokio::io::split(mine);
    let (second, _) = Mux::client(cr, cw, TIMEOUT).await.unwrap();
    let (mut r, mut w) = second.open("echo").await.unwrap().into_split();
    w.write(b"again").await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(r.read_to_end().await.unwrap(), b"again");
    // The old stream (held open by the sink) is gone on the server.
    let began = Instant::now();
    while server.stream_count() != 0 {
        assert!(began.elapsed() < TIMEOUT, "old stream kept on the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The first client's session is dead: its connection went away.
    tokio::time::timeout(TIMEOUT, first.closed()).await.unwrap();
    assert!(old_r.read().await.is_err());
}
