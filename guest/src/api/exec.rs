//! The exec stream pump: a started exec process's stdio carried over the
//! `/exec/{id}/start` connection.
//!
//! Docker's client either upgrades the connection (`Upgrade: tcp`) and
//! gets one two-way stream, or reads the output as a streamed response
//! body (then nothing goes to the process's stdin). With `Detach` it gets
//! nothing: the output is still read to its end, so the process never
//! blocks on a full pipe, and its exit is recorded. Without a terminal the
//! output carries Docker's 8-byte frame headers naming stdout or stderr;
//! with one it is raw.

use bytes::Bytes;
use hyper::Response;
use hyper::upgrade::OnUpgrade;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::routes::{Body, streaming};
use super::stream::{self, MULTIPLEXED, RAW, StreamKind, frame};
use crate::monitor::exec::ExecProcess;

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A started exec process and what its client asked for.
pub struct Exec<F> {
    /// The process.
    pub process: ExecProcess,
    /// Whether it runs on a terminal (raw output, no frames).
    pub tty: bool,
    /// Whether the client's input goes to its stdin.
    pub stdin: bool,
    /// The detach sequence, on a terminal (see [`super::detach`]).
    pub detach_keys: Option<Vec<u8>>,
    /// Called with its exit code once it has exited.
    pub finish: F,
}

impl<F: FnOnce(i32) + Send + 'static> Exec<F> {
    /// Runs it without a client: its output is read and dropped.
    pub fn detach(self) {
        let Self {
            mut process,
            finish,
            ..
        } = self;
        tokio::spawn(async move {
            let io = process.take_io();
            drop(io.stdin);
            let drain = |r: Option<Reader>| async move {
                if let Some(mut r) = r {
                    let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
                }
            };
            tokio::join!(drain(Some(io.stdout)), drain(io.stderr));
            let code = process.wait().await.unwrap_or(-1);
            finish(code);
        });
    }

    /// Carries its stdio over the connection once `upgrade` completes, or,
    /// without one, its output as the response body.
    pub fn serve(self, upgrade: Option<OnUpgrade>) -> Response<Body> {
        let tty = self.tty;
        if let Some(on_upgrade) = upgrade {
            return stream::hijack(on_upgrade, tty, move |io| async move {
                let (rd, wr) = tokio::io::split(io);
                self.pump(Box::new(wr), Some(Box::new(rd))).await;
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let forward = async move {
                let mut client = client;
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                                break;
                            }
                        }
                    }
                }
            };
            tokio::join!(self.pump(Box::new(server), None), forward);
        });
        streaming(if tty { RAW } else { MULTIPLEXED }, rx)
    }

    /// Copies `input` to the process's stdin and its output, framed, to
    /// `out` until it ends; then waits for its exit.
    async fn pump(self, mut out: Writer, input: Option<Reader>) {
        let Self {
            mut process,
            tty,
            stdin: want_stdin,
            detach_keys,
            finish,
        } = self;
        let io = process.take_io();
        let detached = std::sync::Arc::new(tokio::sync::Notify::new());
        let on_detach = std::sync::Arc::clone(&detached);
        let stdin_task = match (io.stdin, input) {
            (Some(mut stdin), Some(mut input)) if want_stdin => Some(tokio::spawn(async move {
                let mut escape = detach_keys.map(super::detach::EscapeFilter::new);
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    let n = match input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let (pass, detach) = match escape.as_mut() {
                        Some(f) => f.feed(&buf[..n]),
                        None => (buf[..n].to_vec(), false),
                    };
                    if !pass.is_empty() && stdin.write_all(&pass).await.is_err() {
                        return;
                    }
                    if detach {
                        // The session ends; the process runs on with its
                        // stdin open, as with Docker.
                        on_detach.notify_one();
                        return;
                    }
                }
                let _ = stdin.shutdown().await;
            })),
            _ => None,
        };
        let (otx, mut orx) = mpsc::channel::<Bytes>(64);
        let read_into = |mut r: Reader, kind: StreamKind, tx: mpsc::Sender<Bytes>| async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(frame(kind, &buf[..n], tty)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        let out_task = tokio::spawn(read_into(io.stdout, StreamKind::Stdout, otx.clone()));
        let err_task = io
            .stderr
            .map(|e| tokio::spawn(read_into(e, StreamKind::Stderr, otx.clone())));
        drop(otx);
        let mut client_gone = false;
        loop {
            let b = tokio::select! {
                b = orx.recv() => b,
                () = detached.notified(), if !client_gone => {
                    client_gone = true;
                    let _ = out.flush().await;
                    let _ = out.shutdown().await;
                    continue;
                }
            };
            let Some(b) = b else { break };
            // After a detach the output is still read, and dropped, so the
            // process never blocks on a full pipe.
            if !client_gone && out.write_all(&b).await.is_err() {
                client_gone = true;
            }
        }
        let _ = out_task.await;
        if let Some(t) = err_task {
            let _ = t.await;
        }
        let code = process.wait().await.unwrap_or(-1);
        finish(code);
        let _ = out.flush().await;
        let _ = out.shutdown().await;
        if let Some(t) = stdin_task {
            t.abort();
        }
    }
}
