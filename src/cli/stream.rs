//! Attached streams: the container's (or exec's) output to this terminal,
//! this terminal's input to it, raw mode and resizes with a TTY, signals
//! forwarded without one.

use std::io::{IsTerminal, Read, Write};

use bytes::Bytes;
use servin::client::containers::{Demux, Hijacked, wait_code};
use servin::client::{Engine, Error, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ui::Failed;

/// What to attach to.
pub struct Attach {
    /// The container.
    pub id: String,
    /// Whether it has a terminal.
    pub tty: bool,
    /// Whether to send this terminal's input.
    pub stdin: bool,
    /// Whether to start it once attached.
    pub start: bool,
    /// The `wait` condition giving the exit code, asked before the start.
    pub wait_condition: Option<&'static str>,
}

/// Why attaching failed.
pub enum AttachError {
    /// The start failed (the caller maps its message to an exit code).
    Start(Error),
    /// Anything else.
    Other(Error),
}

/// Puts the terminal in raw mode while alive.
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        Self { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                orig,
            );
        }
    }
}

/// This terminal's size (rows, columns), when stdout is one.
fn size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Checks `-i -t` has a terminal to read, as docker does.
pub fn check_tty(tty: bool, stdin: bool) -> Result<(), Failed> {
    if tty && stdin && !std::io::stdin().is_terminal() {
        return Err(Failed::Usage(
            "the input device is not a TTY: drop -t, or run from a terminal".to_string(),
        ));
    }
    Ok(())
}

/// Reads this process's stdin on a thread of its own (a blocked read must
/// not keep the process alive), sending chunks and then `None` at its end.
fn stdin_reader() -> tokio::sync::mpsc::UnboundedReceiver<Option<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(n) => {
                    if tx.send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Copies between the hijacked connection and this terminal until the
/// output ends. `resize` is the API path prefix for resizes (`h`/`w` are
/// appended); `kill` the one for forwarded signals.
async fn pump(
    engine: &Engine,
    conn: Hijacked,
    tty: bool,
    stdin: bool,
    resize: Option<String>,
    kill: Option<String>,
) -> Result<(), Error> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut input = stdin.then(stdin_reader);
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let send_resize = |path: &Option<String>| {
        let call = path
            .as_ref()
            .zip(size())
            .map(|(p, (rows, cols))| format!("{p}h={rows}&w={cols}"));
        async move {
            if let Some(call) = call {
                let _ = engine.post_later(&call, "resize").await;
            }
        }
    };
    if tty {
        send_resize(&resize).await;
    }
    let mut demux = Demux::default();
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if tty {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                } else {
                    demux.feed(&buf[..n], |stream, data| {
                        if stream == 2 {
                            let _ = err.write_all(data);
                            let _ = err.flush();
                        } else {
                            let _ = out.write_all(data);
                            let _ = out.flush();
                        }
                    });
                }
            }
            chunk = async { match input.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                match chunk.flatten() {
                    Some(data) => {
                        if wr.write_all(&data).await.is_err() {
                            input = None;
                        }
                    }
                    None => {
                        let _ = wr.shutdown().await;
                        input = None;
                    }
                }
            }
            _ = async { match winch.as_mut() { Some(s) if tty => s.recv().await, _ => std::future::pending().await } } => {
                send_resize(&resize).await;
            }
            _ = async { match sigint.as_mut() { Some(s) if !tty => s.recv().await, _ => std::future::pending().await } } => {
                if let Some(k) = &kill {
                    let _ = engine.post_later(&format!("{k}INT"), "forward SIGINT").await;
                }
            }
            _ = async { match sigterm.as_mut() { Some(s) if !tty => s.recv().await, _ => std::future::pending().await } } => {
                if let Some(k) = &kill {
                    let _ = engine.post_later(&format!("{k}TERM"), "forward SIGTERM").await;
                }
            }
        }
    }
    Ok(())
}

/// Attaches to a container (starting it when asked) until its output ends;
/// returns its exit code.
pub fn attach(engine: &Engine, opts: &Attach) -> Result<i64, AttachError> {
    let id = encode(&opts.id);
    let _raw = (opts.tty && opts.stdin && std::io::stdin().is_terminal()).then(RawMode::enter);
    let result = engine.block_on(async {
        let wait = match opts.wait_condition {
            Some(c) => Some(
                engine
                    .post_later(&format!("/containers/{id}/wait?condition={c}"), "wait")
                    .await
                    .map_err(AttachError::Other)?,
            ),
            None => None,
        };
        let stdin_q = if opts.stdin { "&stdin=1" } else { "" };
        let conn = engine
            .hijack(
                &format!("/containers/{id}/attach?stream=1&stdout=1&stderr=1{stdin_q}"),
                Bytes::new(),
                "attach",
            )
            .await
            .map_err(AttachError::Other)?;
        if opts.start {
            engine
                .start_async(&opts.id)
                .await
                .map_err(AttachError::Start)?;
        }
        pump(
            engine,
            conn,
            opts.tty,
            opts.stdin,
            Some(format!("/containers/{id}/resize?")),
            Some(format!("/containers/{id}/kill?signal=")),
        )
        .await
        .map_err(AttachError::Other)?;
        match wait {
            Some(resp) => wait_code(resp, "wait")
                .await
                .map(Some)
                .map_err(AttachError::Other),
            None => Ok(None),
        }
    });
    match result? {
        Some(code) => Ok(code),
        None => engine
            .inspect_container(&opts.id)
            .map(|c| c.state.and_then(|s| s.exit_code).unwrap_or(0))
            .map_err(AttachError::Other),
    }
}

/// Starts an exec instance attached to this terminal; returns its exit code.
pub fn exec(engine: &Engine, exec_id: &str, tty: bool, stdin: bool) -> Result<i64, Error> {
    let id = encode(exec_id);
    let _raw = (tty && stdin && std::io::stdin().is_terminal()).then(RawMode::enter);
    let body = serde_json::json!({ "Detach": false, "Tty": tty }).to_string();
    engine.block_on(async {
        let conn = engine
            .hijack(
                &format!("/exec/{id}/start"),
                Bytes::from(body),
                "start the exec",
            )
            .await?;
        pump(
            engine,
            conn,
            tty,
            stdin,
            Some(format!("/exec/{id}/resize?")),
            None,
        )
        .await
    })?;
    drop(_raw);
    let info = engine.exec_inspect(exec_id)?;
    Ok(info.exit_code.unwrap_or(0))
}
