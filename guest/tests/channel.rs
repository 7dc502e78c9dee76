//! `servin-guest channel` against a real engine: the channel runs as a
//! process on a unix socket (in a VM it is a virtio-serial port), the test
//! is the host end.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use servin_mux::{Mux, MuxStream, OpenError};
use support::EngineGuard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

const TIMEOUT: Duration = Duration::from_secs(20);

struct Channel {
    child: Child,
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_channel(port: &std::path::Path, engine: &std::path::Path, init_pid: u32) -> Channel {
    let exe = std::env::var_os("SERVIN_TEST_ENGINE")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_servin-guest").into());
    let child = Command::new(exe)
        .arg("channel")
        .arg(format!("unix:{}", port.display()))
        .arg(engine)
        .env("SERVIN_CHANNEL_INIT_PID", init_pid.to_string())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Channel { child }
}

async fn session(listener: &UnixListener) -> Mux {
    let (conn, _) = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .expect("the channel did not connect")
        .unwrap();
    let (r, w) = conn.into_split();
    Mux::client(r, w, TIMEOUT).await.unwrap().0
}

/// Sends `request` and reads the answer to its end; `half_close` ends the
/// request with EOF (an HTTP server may close at once on EOF, as the
/// engine's does, so HTTP requests keep their side open).
async fn exchange(stream: MuxStream, request: &[u8], half_close: bool) -> String {
    let (mut r, mut w) = stream.into_split();
    w.write(request).await.unwrap();
    if half_close {
        w.shutdown().await.unwrap();
    }
    let bytes = tokio::time::timeout(TIMEOUT, r.read_to_end())
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn ping_engine(mux: &Mux) -> String {
    let stream = mux.open("engine").await.unwrap();
    exchange(
        stream,
        b"GET /_ping HTTP/1.0\r\nHost: servin\r\n\r\n",
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_serves_engine_tcp_and_control_and_survives_reconnects() {
    let engine = EngineGuard::start();
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("port.sock");
    let listener = UnixListener::bind(&port).unwrap();
    let mut init = Command::new("sleep").arg("60").spawn().unwrap();
    let _channel = start_channel(&port, &engine.socket(), init.id());

    let mux = session(&listener).await;
    let reply = ping_engine(&mux).await;
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
    assert!(reply.ends_with("OK"), "{reply}");

    // A TCP service inside "the guest".
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = tcp.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                conn.read_to_end(&mut buf).await.unwrap();
                buf.reverse();
                conn.write_all(&buf).await.unwrap();
            });
        }
    });
    let stream = mux
        .open(&format!("tcp:127.0.0.1:{tcp_port}"))
        .await
        .unwrap();
    assert_eq!(exchange(stream, b"abc", true).await, "cba");

    // Refusals name what failed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    match mux.open(&format!("tcp:127.0.0.1:{closed_port}")).await {
        Err(OpenError::Refused { message, .. }) => assert!(
            message.starts_with(&format!("connect to 127.0.0.1:{closed_port} in the VM: ")),
            "{message}"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a closed port"),
    }
    match mux.open("ssh").await {
        Err(OpenError::Refused { message, .. }) => assert_eq!(
            message,
            "unknown target \"ssh\": want engine, control, tcp:ADDR:PORT or udp:ADDR:PORT"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened an unknown target"),
    }

    // Control commands, one answer line each.
    let stream = mux.open("control").await.unwrap();
    let answers = exchange(stream, b"ping\nsettime soon\nuptime\nfly\n", true).await;
    let lines: Vec<&str> = answers.lines().collect();
    assert_eq!(lines[0], "ok pong");
    assert_eq!(
        lines[1],
        "error: settime: \"soon\" is not SECS[.NANOS] since the epoch"
    );
    assert!(lines[2].starts_with("ok "), "{answers}");
    assert!(lines[2][3..].parse::<f64>().unwrap() > 0.0);
    assert_eq!(
        lines[3],
        "error: unknown command \"fly\": want ping, settime, uptime or poweroff"
    );

    // The host end goes away and comes back: a new session works.
    let held = mux.open("control").await.unwrap();
    mux.shutdown();
    let mux = session(&listener).await;
    let reply = ping_engine(&mux).await;
    assert!(reply.ends_with("OK"), "second session: {reply:?}");
    let (mut held_r, _held_w) = held.into_split();
    assert!(
        held_r.read().await.is_err(),
        "a stream outlived its session"
    );

    // poweroff signals init.
    let stream = mux.open("control").await.unwrap();
    assert_eq!(exchange(stream, b"poweroff\n", true).await, "ok\n");
    let status = tokio::task::spawn_blocking(move || init.wait().unwrap())
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "init got {status:?}");
}
