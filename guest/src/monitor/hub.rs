//! Inside the monitor: the container's output on its way to the log and
//! the attach clients, and the clients' input on its way to the container.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ExitRecord;
use super::attach::{
    self, KIND_CLOSE, KIND_EXIT, KIND_RESIZE, KIND_STDERR, KIND_STDIN, KIND_STDOUT,
};
use super::logs::{LogStream, LogWriter};
use super::pty::PtyMaster;
use super::supervise::note;

/// How long attach clients get to take their last frames.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// Frames queued for one attach client; one that falls further behind is
/// disconnected rather than stalling the container's output.
const CLIENT_QUEUE: usize = 256;
/// The read size for the container's output.
const READ_SIZE: usize = 16 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The container's output on its way to the log and the attach clients.
pub(crate) struct Hub {
    log: Mutex<LogWriter>,
    log_failing: AtomicBool,
    clients: Mutex<Vec<mpsc::Sender<Bytes>>>,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

impl Hub {
    /// A hub logging with `log`, with no clients yet.
    pub(crate) fn new(log: LogWriter) -> Self {
        Self {
            log: Mutex::new(log),
            log_failing: AtomicBool::new(false),
            clients: Mutex::new(Vec::new()),
            writers: Mutex::new(Vec::new()),
        }
    }

    fn log_result(&self, result: std::io::Result<()>) {
        match result {
            Ok(()) => {
                if self.log_failing.swap(false, Ordering::Relaxed) {
                    note("writing the log works again");
                }
            }
            Err(e) => {
                if !self.log_failing.swap(true, Ordering::Relaxed) {
                    note(&format!(
                        "write the log: {e}; output is lost until it works again"
                    ));
                }
            }
        }
    }

    fn output(&self, stream: LogStream, data: &[u8]) {
        let result = lock(&self.log).append(stream, data);
        self.log_result(result);
        let kind = match stream {
            LogStream::Stdout => KIND_STDOUT,
            LogStream::Stderr => KIND_STDERR,
        };
        let frame = attach::encode(kind, data);
        lock(&self.clients).retain(|client| match client.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                note("an attach client fell too far behind; disconnecting it");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    pub(crate) fn end(&self, stream: LogStream) {
        let result = lock(&self.log).flush(stream);
        self.log_result(result);
    }

    pub(crate) fn add_client(
        &self,
        stream: UnixStream,
        stdin: mpsc::Sender<StdinMessage>,
        stdin_once: bool,
    ) {
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        lock(&self.clients).push(tx);
        let writer = tokio::spawn(client_writer(write, rx));
        let mut writers = lock(&self.writers);
        writers.retain(|w| !w.is_finished());
        writers.push(writer);
        tokio::spawn(client_reader(read, stdin, stdin_once));
    }

    /// Sends the exit frame to every client and lets them take it.
    pub(crate) async fn finish(&self, record: &ExitRecord) {
        let payload = serde_json::to_vec(record).unwrap_or_default();
        let frame = attach::encode(KIND_EXIT, &payload);
        let clients = std::mem::take(&mut *lock(&self.clients));
        let writers = std::mem::take(&mut *lock(&self.writers));
        let delivered = tokio::time::timeout(FLUSH_TIMEOUT, async {
            for client in clients {
                let _ = client.send(frame.clone()).await;
            }
            for writer in writers {
                let _ = writer.await;
            }
        })
        .await;
        if delivered.is_err() {
            note("some attach clients did not take the exit frame in time");
        }
    }
}

async fn client_writer(mut write: tokio::net::unix::OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(frame) = rx.recv().await {
        if write.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// What attach clients ask of the container's stdin, in order.
pub(crate) enum StdinMessage {
    Data(Bytes),
    Close,
    Resize(u16, u16),
}

async fn client_reader(
    mut read: tokio::net::unix::OwnedReadHalf,
    stdin: mpsc::Sender<StdinMessage>,
    stdin_once: bool,
) {
    let mut wrote = false;
    let mut closed = false;
    loop {
        let message = match attach::read_frame(&mut read).await {
            Ok(Some((KIND_STDIN, data))) => {
                wrote = true;
                StdinMessage::Data(data)
            }
            Ok(Some((KIND_CLOSE, _))) => {
                closed = true;
                StdinMessage::Close
            }
            Ok(Some((KIND_RESIZE, size))) if size.len() == 4 => StdinMessage::Resize(
                u16::from_be_bytes([size[0], size[1]]),
                u16::from_be_bytes([size[2], size[3]]),
            ),
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => {
                note(&format!("read from an attach client: {e}"));
                break;
            }
        };
        if stdin.send(message).await.is_err() {
            return;
        }
    }
    if stdin_once && wrote && !closed {
        let _ = stdin.send(StdinMessage::Close).await;
    }
}

pub(crate) async fn stdin_writer(
    mut rx: mpsc::Receiver<StdinMessage>,
    mut sink: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pty: Option<PtyMaster>,
) {
    while let Some(message) = rx.recv().await {
        match message {
            StdinMessage::Data(data) => {
                if let Some(writer) = sink.as_mut()
                    && let Err(e) = writer.write_all(&data).await
                {
                    note(&format!("write to the container's stdin: {e}; closing it"));
                    sink = None;
                }
            }
            // A terminal cannot be half-closed: only pipes are.
            StdinMessage::Close if pty.is_none() => sink = None,
            StdinMessage::Close => {}
            StdinMessage::Resize(rows, cols) => {
                if let Some(pty) = &pty
                    && let Err(e) = pty.resize(rows, cols)
                {
                    note(&format!("resize the terminal to {rows}x{cols}: {e}"));
                }
            }
        }
    }
}

pub(crate) async fn pump(
    mut reader: Box<dyn AsyncRead + Send + Unpin>,
    stream: LogStream,
    hub: Arc<Hub>,
) {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => hub.output(stream, &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                note(&format!("read the container's {}: {e}", stream.as_str()));
                break;
            }
        }
    }
    hub.end(stream);
}
