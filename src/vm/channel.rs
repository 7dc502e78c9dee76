//! The host end of the channel: one session with the guest's
//! `servin-guest channel` at a time over QEMU's chardev socket, and the
//! host sockets whose connections travel over it.
//!
//! - `engine.sock`: each connection becomes an `engine` stream.
//! - `control.sock`: each connection becomes a `control` stream.
//! - published ports: see [`super::ports`].
//!
//! When the session ends (the guest's channel restarted, or QEMU is gone)
//! connections wait for the next one for a short while, then fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use servin_mux::{Mux, MuxStream};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// How long a new session has to answer before the connection is made again.
const SESSION_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a host connection waits for a session to be up.
const WAIT_FOR_SESSION: Duration = Duration::from_secs(30);

/// The current session, if one is up.
pub type Session = watch::Receiver<Option<Mux>>;

/// Connects to QEMU's chardev socket and keeps a session up while `alive`
/// says the VM runs; publishes each session in `tx`.
pub async fn keep_session(channel: PathBuf, tx: watch::Sender<Option<Mux>>) {
    loop {
        let conn = match UnixStream::connect(&channel).await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (r, w) = conn.into_split();
        match Mux::client(r, w, SESSION_TIMEOUT).await {
            Ok((mux, _)) => {
                tx.send_replace(Some(mux.clone()));
                mux.closed().await;
                tx.send_replace(None);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits for a session and opens a stream to `target` on it.
pub async fn open(session: &Session, target: &str) -> std::io::Result<MuxStream> {
    let mut session = session.clone();
    let mux = tokio::time::timeout(WAIT_FOR_SESSION, session.wait_for(Option::is_some))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the VM's channel is not up (see `servin vm logs`)",
            )
        })?
        .map_err(|_| std::io::Error::other("the supervisor is stopping"))?
        .clone();
    let Some(mux) = mux else {
        return Err(std::io::Error::other("no session"));
    };
    mux.open(target).await.map_err(std::io::Error::other)
}

/// Binds a unix socket only the user can open (0600), replacing a stale one.
pub fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The umask makes the socket 0600 from its first instant; chmod would
    // leave a window.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let listener = UnixListener::bind(path);
    rustix::process::umask(old);
    listener
}

/// Serves a host socket: each connection becomes a stream to `target`.
pub async fn serve_socket(listener: UnixListener, session: Session, target: &'static str) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let session = session.clone();
        tokio::spawn(async move {
            match open(&session, target).await {
                Ok(stream) => {
                    let _ = stream.bridge(conn).await;
                }
                // The client sees its connection close; the log says why.
                Err(e) => log(&format!("{target} connection: {e}")),
            }
        });
    }
}

/// One line in the supervisor's log (its stderr).
pub fn log(message: &str) {
    use std::io::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "[{}.{:03}] {message}",
        now.as_secs(),
        now.subsec_millis()
    );
}

/// An HTTP/1.1 connection to the engine over a stream of the session.
pub async fn engine_connection(
    session: &Session,
) -> std::io::Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = open(session, "engine").await?;
    let (mine, theirs) = UnixStream::pair()?;
    tokio::spawn(async move {
        let _ = stream.bridge(theirs).await;
    });
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(mine))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// An HTTP/1.1 request to the engine over a stream of the session; returns
/// the response (its body may be a long stream, as `/events` is).
pub async fn engine_get(
    session: &Session,
    path: &str,
) -> std::io::Result<hyper::Response<hyper::body::Incoming>> {
    let mut sender = engine_connection(session).await?;
    send_get(&mut sender, path).await
}

/// A GET on an open connection.
pub async fn send_get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> std::io::Result<hyper::Response<hyper::body::Incoming>> {
    let req = Request::get(path)
        .header("Host", "servin")
        .body(Empty::<Bytes>::new())
        .map_err(std::io::Error::other)?;
    sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)
}

/// A whole JSON answer of the engine.
pub async fn engine_json(session: &Session, path: &str) -> std::io::Result<serde_json::Value> {
    json_answer(engine_get(session, path).await?, path).await
}

/// The JSON body of the engine's answer to `GET path`; an error status is an
/// error naming the call.
pub async fn json_answer(
    resp: hyper::Response<hyper::body::Incoming>,
    path: &str,
) -> std::io::Result<serde_json::Value> {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    if !status.is_success() {
        return Err(std::io::Error::other(format!(
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// Sends control commands and returns their answer lines.
pub async fn control(session: &Session, commands: &[String]) -> std::io::Result<Vec<String>> {
    let stream = open(session, "control").await?;
    let (mut r, mut w) = stream.into_split();
    let mut text = commands.join("\n");
    text.push('\n');
    w.write(text.as_bytes()).await?;
    w.shutdown().await?;
    let answer = r.read_to_end().await?;
    Ok(String::from_utf8_lossy(&answer)
        .lines()
        .map(str::to_string)
        .collect())
}
