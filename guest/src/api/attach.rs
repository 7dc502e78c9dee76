//! The attach stream pump: a container's output (and input) carried over
//! the `/containers/{id}/attach` connection.
//!
//! The container's monitor owns its stdio; attaching connects to the
//! monitor's attach socket, which sends output frames and takes input. An
//! upgraded connection (`Upgrade: tcp`) carries both ways; a plain one gets
//! the output as a streamed response body. Without a terminal the output
//! carries Docker's 8-byte frame headers naming stdout or stderr; with one
//! it is raw. The stream ends when the container's process exits. With
//! Docker's `logs=1` the container's log is sent first; with `stream=0`
//! nothing live follows it.

use std::future::Future;

use bytes::Bytes;
use hyper::Response;
use hyper::upgrade::OnUpgrade;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::routes::{Body, streaming};
use super::stream::{self, MULTIPLEXED, RAW, StreamKind, frame};
use crate::error::Result;
use crate::monitor::attach::{AttachReader, AttachWriter, Frame};

/// What an attach client asked for.
#[derive(Debug, Clone)]
pub struct Attach {
    /// Whether the container runs on a terminal (raw output, no frames).
    pub tty: bool,
    /// Whether the client's input goes to the container's stdin.
    pub stdin: bool,
    /// Whether it gets the container's stdout.
    pub stdout: bool,
    /// Whether it gets the container's stderr.
    pub stderr: bool,
    /// Whether the container's stdin closes when this client's input ends.
    pub stdin_once: bool,
    /// The detach sequence, on a terminal (see [`super::detach`]).
    pub detach_keys: Option<Vec<u8>>,
}

impl Attach {
    /// Carries the stream once `connect` reaches the monitor: both ways
    /// over the connection when `upgrade` is given (it completes first),
    /// else the output as the response body.
    ///
    /// `history` (the container's log, framed, for Docker's `logs=1`) goes
    /// out first; without `connect` (Docker's `stream=0`) the stream ends
    /// after it.
    pub fn serve<C>(
        self,
        history: Vec<Bytes>,
        connect: Option<C>,
        upgrade: Option<OnUpgrade>,
    ) -> Response<Body>
    where
        C: Future<Output = Result<(AttachReader, AttachWriter)>> + Send + 'static,
    {
        let tty = self.tty;
        let Some(on_upgrade) = upgrade else {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                for bytes in history {
                    if tx.send(bytes).is_err() {
                        return;
                    }
                }
                let Some(connect) = connect else {
                    return;
                };
                let Ok((mut reader, _writer)) = connect.await else {
                    return;
                };
                while let Ok(Some(f)) = reader.next().await {
                    let bytes = match self.output(f) {
                        Output::Send(b) => b,
                        Output::Skip => continue,
                        Output::End => break,
                    };
                    if tx.send(bytes).is_err() {
                        break;
                    }
                }
            });
            return streaming(if tty { RAW } else { MULTIPLEXED }, rx);
        };
        stream::hijack(on_upgrade, tty, move |io| async move {
            let (mut rd, mut wr) = tokio::io::split(io);
            for bytes in &history {
                if wr.write_all(bytes).await.is_err() {
                    return;
                }
            }
            let Some(connect) = connect else {
                let _ = wr.flush().await;
                let _ = wr.shutdown().await;
                return;
            };
            let (mut reader, mut writer) = match connect.await {
                Ok(c) => c,
                Err(e) => {
                    let _ = wr
                        .write_all(&frame(
                            StreamKind::Stderr,
                            format!("{}\n", e.full_message()).as_bytes(),
                            self.tty,
                        ))
                        .await;
                    let _ = wr.shutdown().await;
                    return;
                }
            };
            let detached = std::sync::Arc::new(tokio::sync::Notify::new());
            let on_detach = std::sync::Arc::clone(&detached);
            let (want_stdin, stdin_once) = (self.stdin, self.stdin_once);
            let mut escape = self
                .detach_keys
                .clone()
                .map(super::detach::EscapeFilter::new);
            let input = tokio::spawn(async move {
                if !want_stdin {
                    return;
                }
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let (pass, detach) = match escape.as_mut() {
                                Some(f) => f.feed(&buf[..n]),
                                None => (buf[..n].to_vec(), false),
                            };
                            if !pass.is_empty() && writer.stdin(&pass).await.is_err() {
                                return;
                            }
                            if detach {
                                // The session ends; the container's stdin
                                // stays open, as with Docker.
                                on_detach.notify_one();
                                return;
                            }
                        }
                    }
                }
                if stdin_once {
                    let _ = writer.close_stdin().await;
                }
            });
            loop {
                let next = tokio::select! {
                    f = reader.next() => f,
                    () = detached.notified() => break,
                };
                let Ok(Some(f)) = next else { break };
                let bytes = match self.output(f) {
                    Output::Send(b) => b,
                    Output::Skip => continue,
                    Output::End => break,
                };
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = wr.flush().await;
            let _ = wr.shutdown().await;
            input.abort();
        })
    }

    /// What the client gets of a monitor frame.
    fn output(&self, f: Frame) -> Output {
        match f {
            Frame::Stdout(b) if self.stdout => {
                Output::Send(frame(StreamKind::Stdout, &b, self.tty))
            }
            Frame::Stderr(b) if self.stderr => {
                Output::Send(frame(StreamKind::Stderr, &b, self.tty))
            }
            Frame::Exit(_) => Output::End,
            _ => Output::Skip,
        }
    }
}

/// A monitor frame as the client sees it.
enum Output {
    /// These bytes.
    Send(Bytes),
    /// Nothing: a stream it did not ask for.
    Skip,
    /// The end: the container's process exited.
    End,
}
