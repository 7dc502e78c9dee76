//! Attached streams: the container's (or exec's) output to this terminal,
//! this terminal's input to it, raw mode and resizes with a TTY, signals
//! forwarded without one.

use std::io::{IsTerminal, Read, Write};

use bollard_stubs::models::ExecStartConfig;
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
pub fn size() -> Option<(u16, u16)> {
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

/// The signals `run` and `start -a` pass on to a container without a
/// terminal, as Docker's signal proxy does.
const FORWARDED: [(i32, &str); 6] = [
    (2, "INT"),
    (15, "TERM"),
    (1, "HUP"),
    (3, "QUIT"),
    (10, "USR1"),
    (12, "USR2"),
];

/// The signals that end an attachment whose terminal is in raw mode, so the
/// terminal is restored before servin exits.
const ENDING: [(i32, &str); 3] = [(2, "INT"), (15, "TERM"), (1, "HUP")];

/// Listens for `signals`, sending each one's number and name as it comes.
/// Only the listed signals are caught; the others keep their default
/// action.
fn catch(
    signals: &[(i32, &'static str)],
) -> tokio::sync::mpsc::UnboundedReceiver<(i32, &'static str)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for &(num, name) in signals {
        let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(num))
        else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send((num, name)).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// How the copying ended.
enum Ended {
    /// The output ended (the process exited or the stream closed).
    Output,
    /// A signal arrived while the terminal was raw; its number.
    Signal(i32),
}

/// The signals an attachment catches: those it forwards (`forward`), else
/// those that end a raw terminal's session (`raw`), else none. Called on
/// the runtime before the terminal goes raw, so no signal finds it raw and
/// uncaught.
fn signals_for(
    forward: bool,
    raw: bool,
) -> Option<tokio::sync::mpsc::UnboundedReceiver<(i32, &'static str)>> {
    if forward {
        Some(catch(&FORWARDED))
    } else if raw {
        Some(catch(&ENDING))
    } else {
        None
    }
}

/// What [`pump`] does besides copying.
struct Pump {
    /// Whether the stream is a terminal's (raw bytes, not frames).
    tty: bool,
    /// Whether to send this process's input.
    stdin: bool,
    /// The caught signals (from [`signals_for`]).
    signals: Option<tokio::sync::mpsc::UnboundedReceiver<(i32, &'static str)>>,
    /// The API path prefix for resizes (`h`/`w` are appended).
    resize: Option<String>,
    /// The API path prefix for forwarding the caught signals (the name is
    /// appended); without it a caught signal ends the copy.
    forward: Option<String>,
}

/// Copies between the hijacked connection and this terminal until the
/// output ends, or a signal ends a raw terminal's session.
async fn pump(engine: &Engine, conn: Hijacked, how: Pump) -> Result<Ended, Error> {
    let Pump {
        tty,
        stdin,
        mut signals,
        resize,
        forward,
    } = how;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut input = stdin.then(stdin_reader);
    let mut winch = if tty {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
    } else {
        None
    };
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
            _ = async { match winch.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                send_resize(&resize).await;
            }
            sig = async { match signals.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                let Some((num, name)) = sig else {
                    signals = None;
                    continue;
                };
                match &forward {
                    Some(k) => {
                        let _ = engine.post_later(&format!("{k}{name}"), "forward a signal").await;
                    }
                    None => return Ok(Ended::Signal(num)),
                }
            }
        }
    }
    Ok(Ended::Output)
}

/// The exit status of a process killed by signal `num`, as shells report it.
fn killed_by(num: i32) -> i64 {
    128 + i64::from(num)
}

/// Attaches to a container (starting it when asked) until its output ends;
/// returns its exit code. A signal that ends a raw terminal's session
/// returns `128 + signal` at once, leaving the container running.
pub fn attach(engine: &Engine, opts: &Attach) -> Result<i64, AttachError> {
    let id = encode(&opts.id);
    let raw = opts.tty && opts.stdin && std::io::stdin().is_terminal();
    let result = engine.block_on(async {
        let signals = signals_for(!opts.tty, raw);
        let _raw = raw.then(RawMode::enter);
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
        let how = Pump {
            tty: opts.tty,
            stdin: opts.stdin,
            signals,
            resize: Some(format!("/containers/{id}/resize?")),
            forward: (!opts.tty).then(|| format!("/containers/{id}/kill?signal=")),
        };
        if let Ended::Signal(num) = pump(engine, conn, how).await.map_err(AttachError::Other)? {
            return Ok(Some(killed_by(num)));
        }
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

/// Starts an exec instance attached to this terminal; returns its exit code
/// (or `128 + signal` when a signal ended a raw terminal's session).
pub fn exec(engine: &Engine, exec_id: &str, tty: bool, stdin: bool) -> Result<i64, Error> {
    let id = encode(exec_id);
    let raw = tty && stdin && std::io::stdin().is_terminal();
    let start = ExecStartConfig {
        detach: Some(false),
        tty: Some(tty),
        console_size: tty
            .then(size)
            .flatten()
            .map(|(rows, cols)| vec![usize::from(rows), usize::from(cols)]),
    };
    let body = serde_json::to_vec(&start).map_err(|source| Error::Decode {
        step: "start the exec".to_string(),
        source,
    })?;
    let ended = engine.block_on(async {
        let signals = signals_for(false, raw);
        let _raw = raw.then(RawMode::enter);
        let conn = engine
            .hijack(
                &format!("/exec/{id}/start"),
                Bytes::from(body),
                "start the exec",
            )
            .await?;
        let how = Pump {
            tty,
            stdin,
            signals,
            resize: Some(format!("/exec/{id}/resize?")),
            forward: None,
        };
        pump(engine, conn, how).await
    })?;
    if let Ended::Signal(num) = ended {
        return Ok(killed_by(num));
    }
    let info = engine.exec_inspect(exec_id)?;
    Ok(info.exit_code.unwrap_or(0))
}
