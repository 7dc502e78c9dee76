//! Many byte streams over one: the channel between servin on the host and
//! the engine in its VM.
//!
//! A virtio-serial port is one byte stream, but the host needs many: one per
//! API connection, one per connection to a published port, one for control.
//! This crate carries them as framed streams ([`frame`]), each opened by
//! name (`OPEN target`), half-closable (`EOF`) and resettable (`CLOSE`).
//!
//! **Flow control.** Every stream has its own credit: a sender may have at
//! most [`WINDOW`] bytes unconsumed at the receiver, which grants more as its
//! reader consumes them. The task that reads the shared byte stream therefore
//! never waits for any one stream's reader, so a slow reader stalls only its
//! own stream.
//!
//! **Sessions and reconnects.** QEMU's chardev socket lets the host end
//! disconnect and connect again while the guest keeps its port open, and
//! bytes of the old connection may still be in flight either way. So a
//! session starts with a `SYNC` frame carrying a nonce from the client (the
//! host), which the server (the guest) scans for, answers with the same
//! nonce, and treats as "every stream before this is gone". The client
//! discards what it reads until that answer. A server that reads a frame
//! that makes no sense resets its streams and scans for the next `SYNC`; the
//! client sends a frame's worth of zeros before each `SYNC` so that a server
//! still inside a frame of the old connection gets there, and resends both
//! every [`SYNC_RETRY`] until answered.
//!
//! Either side may open streams (the client's ids are odd, the server's
//! even); in servin only the host opens them.

pub mod datagram;
pub mod frame;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use self::frame::{Frame, HEADER_LEN, Kind, MAX_PAYLOAD, NONCE_LEN};

/// Bytes a stream's sender may have in flight before the receiver consumes
/// them.
pub const WINDOW: u32 = 256 * 1024;
/// How often a client repeats an unanswered `SYNC`.
pub const SYNC_RETRY: Duration = Duration::from_secs(2);

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the other end refused stream {target:?}: {message}")]
    Refused { target: String, message: String },
    #[error("the channel closed before stream {target:?} opened")]
    Closed { target: String },
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("channel: {0}")]
    Io(#[from] io::Error),
    #[error("channel: the other end did not answer within {0:?}")]
    Timeout(Duration),
}

enum Event {
    Data(Bytes),
    Eof,
    Reset,
}

struct StreamShared {
    id: u32,
    events: mpsc::UnboundedSender<Event>,
    credit: Semaphore,
}

impl StreamShared {
    fn reset(&self) {
        let _ = self.events.send(Event::Reset);
        self.credit.close();
    }
}

struct State {
    out: Option<mpsc::UnboundedSender<Frame>>,
    streams: HashMap<u32, Arc<StreamShared>>,
    opening: HashMap<u32, oneshot::Sender<Result<(), String>>>,
    next_id: u32,
    incoming: Option<mpsc::UnboundedSender<Incoming>>,
}

struct Shared {
    state: Mutex<State>,
    closed: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a frame of a stream that is still live (not reset meanwhile).
    fn send_on(&self, stream: &Arc<StreamShared>, frame: Frame) -> io::Result<()> {
        let state = self.lock();
        let live = state
            .streams
            .get(&stream.id)
            .is_some_and(|s| Arc::ptr_eq(s, stream));
        match (&state.out, live) {
            (Some(out), true) => out.send(frame).map_err(|_| reset_error()),
            _ => Err(reset_error()),
        }
    }

    /// Resets every stream and every open in progress (a new session, or a
    /// broken one).
    fn reset_all(state: &mut State) {
        for (_, s) in state.streams.drain() {
            s.reset();
        }
        state.opening.clear();
    }

    fn close(&self) {
        let mut state = self.lock();
        state.out = None;
        state.incoming = None;
        Self::reset_all(&mut state);
        drop(state);
        self.closed.send_replace(true);
    }
}

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "channel stream reset")
}

/// Registers a new stream with id `id` and makes its handle.
fn new_stream(shared: &Arc<Shared>, state: &mut State, id: u32) -> MuxStream {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream = Arc::new(StreamShared {
        id,
        events: tx,
        credit: Semaphore::new(WINDOW as usize),
    });
    state.streams.insert(id, Arc::clone(&stream));
    let guard = Arc::new(Guard {
        shared: Arc::clone(shared),
        stream: Arc::clone(&stream),
    });
    MuxStream {
        reader: MuxReader {
            shared: Arc::clone(shared),
            stream: Arc::clone(&stream),
            events: rx,
            unacked: 0,
            done: false,
            _guard: Arc::clone(&guard),
        },
        writer: MuxWriter {
            shared: Arc::clone(shared),
            stream,
            eof_sent: false,
            _guard: guard,
        },
    }
}

/// Which end of the channel: the client starts sessions (the host), the
/// server answers them (the guest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// A handle on a session; cheap to clone.
#[derive(Clone)]
pub struct Mux {
    shared: Arc<Shared>,
}

/// Streams the other end opens.
pub struct Acceptor {
    rx: mpsc::UnboundedReceiver<Incoming>,
}

impl Acceptor {
    /// The next stream the other end opens; `None` once the session ended.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }
}

/// A stream the other end asked to open: accept or refuse it.
pub struct Incoming {
    target: String,
    stream: Option<MuxStream>,
}

impl Incoming {
    /// The target the other end named.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Answers `OPEN_OK`; data flows.
    pub fn accept(mut self) -> Option<MuxStream> {
        let stream = self.stream.take()?;
        stream
            .writer
            .shared
            .send_on(
                &stream.writer.stream,
                Frame::empty(Kind::OpenOk, stream.writer.stream.id),
            )
            .ok()?;
        Some(stream)
    }

    /// Answers `OPEN_ERR` with a message for the other end.
    pub fn refuse(mut self, message: &str) {
        self.refuse_inner(message);
    }

    fn refuse_inner(&mut self, message: &str) {
        if let Some(stream) = self.stream.take() {
            let shared = Arc::clone(&stream.writer.shared);
            let id = stream.writer.stream.id;
            let mut state = shared.lock();
            if let Some(s) = state.streams.remove(&id) {
                s.reset();
                if let Some(out) = &state.out {
                    let _ = out.send(Frame::new(Kind::OpenErr, id, message.as_bytes().to_vec()));
                }
            }
            drop(state);
            // Its handles find the stream gone and send nothing.
            drop(stream);
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.refuse_inner("not accepted");
    }
}

fn nonce() -> [u8; NONCE_LEN] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = now ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    n.to_be_bytes()
}

impl Mux {
    /// Starts a client session over a byte stream: sends `SYNC`, skips what
    /// the other end sent before its answer, and then serves frames in the
    /// background. Gives up after `timeout` without an answer.
    pub async fn client<R, W>(
        reader: R,
        writer: W,
        timeout: Duration,
    ) -> Result<(Mux, Acceptor), SessionError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let mut writer = BufWriter::with_capacity(64 * 1024, writer);
        let nonce = nonce();
        let mut sync = Vec::new();
        Frame::sync(nonce).encode(&mut sync);
        // Zeros first: they complete any frame a server is still reading
        // from an earlier connection, and then fail to parse as a header,
        // which sends the server scanning for the SYNC.
        let mut pad_and_sync = vec![0u8; MAX_PAYLOAD + HEADER_LEN];
        pad_and_sync.extend_from_slice(&sync);
        let handshake = async {
            let mut window: Vec<u8> = Vec::with_capacity(sync.len());
            let mut retry = tokio::time::interval(SYNC_RETRY);
            loop {
                tokio::select! {
                    _ = retry.tick() => {
                        writer.write_all(&pad_and_sync).await?;
                        writer.flush().await?;
                    }
                    b = reader.read_u8() => {
                        if window.len() == sync.len() {
                            window.remove(0);
                        }
                        window.push(b?);
                        if window == sync {
                            return Ok::<(), io::Error>(());
                        }
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, handshake).await {
            Ok(r) => r?,
            Err(_) => return Err(SessionError::Timeout(timeout)),
        }
        Ok(Self::start(Role::Client, reader, writer, false))
    }

    /// Serves a byte stream as the server end: scans for the client's
    /// `SYNC`, answers it, and serves frames in the background until the
    /// byte stream ends ([`Mux::closed`]).
    pub fn server<R, W>(reader: R, writer: W) -> (Mux, Acceptor)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let reader = BufReader::with_capacity(64 * 1024, reader);
        let writer = BufWriter::with_capacity(64 * 1024, writer);
        Self::start(Role::Server, reader, writer, true)
    }

    fn start<R, W>(role: Role, reader: R, writer: W, scan_first: bool) -> (Mux, Acceptor)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out: Some(out_tx),
                streams: HashMap::new(),
                opening: HashMap::new(),
                next_id: if role == Role::Client { 1 } else { 2 },
                incoming: Some(in_tx),
            }),
            closed: watch::Sender::new(false),
        });
        tokio::spawn(write_loop(Arc::clone(&shared), writer, out_rx));
        let reading = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut closed = reading.closed.subscribe();
            // A session shut down on this side stops reading too, so the
            // byte stream is dropped whole.
            tokio::select! {
                () = read_loop(Arc::clone(&reading), role, reader, scan_first) => {}
                _ = closed.wait_for(|c| *c) => {}
            }
        });
        (Mux { shared }, Acceptor { rx: in_rx })
    }

    /// Opens a stream to `target` and waits for the other end's answer.
    pub async fn open(&self, target: &str) -> Result<MuxStream, OpenError> {
        let (tx, rx) = oneshot::channel();
        let stream = {
            let mut state = self.shared.lock();
            if state.out.is_none() {
                return Err(OpenError::Closed {
                    target: target.to_string(),
                });
            }
            let id = state.next_id;
            state.next_id = state.next_id.wrapping_add(2);
            let stream = new_stream(&self.shared, &mut state, id);
            state.opening.insert(id, tx);
            if let Some(out) = &state.out {
                let _ = out.send(Frame::new(Kind::Open, id, target.as_bytes().to_vec()));
            }
            stream
        };
        match rx.await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(message)) => Err(OpenError::Refused {
                target: target.to_string(),
                message,
            }),
            Err(_) => Err(OpenError::Closed {
                target: target.to_string(),
            }),
        }
    }

    /// Whether the byte stream has ended.
    pub fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }

    /// Waits until the byte stream ends (read error, end of file, or a
    /// failed write); every stream is reset by then.
    pub async fn closed(&self) {
        let mut rx = self.shared.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Ends the session: every stream is reset, the byte stream is left.
    pub fn shutdown(&self) {
        self.shared.close();
    }

    /// Streams open now.
    pub fn stream_count(&self) -> usize {
        self.shared.lock().streams.len()
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut writer: W,
    mut frames: mpsc::UnboundedReceiver<Frame>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(frame) = frames.recv().await {
        buf.clear();
        frame.encode(&mut buf);
        // Batch what is queued already into one write.
        while buf.len() < 64 * 1024 {
            match frames.try_recv() {
                Ok(f) => f.encode(&mut buf),
                Err(_) => break,
            }
        }
        if writer.write_all(&buf).await.is_err() || writer.flush().await.is_err() {
            break;
        }
    }
    shared.close();
}

async fn read_loop<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    role: Role,
    mut reader: R,
    mut scanning: bool,
) {
    let sync_header = frame::sync_header();
    let mut header = [0u8; HEADER_LEN];
    loop {
        if scanning {
            // Skip bytes up to the next SYNC header.
            let mut window = [0u8; HEADER_LEN];
            let mut filled = 0usize;
            loop {
                let Ok(b) = reader.read_u8().await else {
                    shared.close();
                    return;
                };
                if filled < HEADER_LEN {
                    window[filled] = b;
                    filled += 1;
                } else {
                    window.copy_within(1.., 0);
                    window[HEADER_LEN - 1] = b;
                }
                if filled == HEADER_LEN && window == sync_header {
                    break;
                }
            }
            header = window;
            scanning = false;
        } else if reader.read_exact(&mut header).await.is_err() {
            shared.close();
            return;
        }
        let (kind, id, len) = match frame::parse_header(&header) {
            Ok(h) => h,
            Err(_) if role == Role::Server => {
                Shared::reset_all(&mut shared.lock());
                scanning = true;
                continue;
            }
            Err(_) => {
                shared.close();
                return;
            }
        };
        let mut payload = vec![0u8; len];
        if reader.read_exact(&mut payload).await.is_err() {
            shared.close();
            return;
        }
        dispatch(&shared, role, Frame::new(kind, id, payload));
    }
}

fn dispatch(shared: &Arc<Shared>, role: Role, frame: Frame) {
    let mut state = shared.lock();
    let id = frame.id;
    match frame.kind {
        Kind::Sync => {
            // A client ignores a repeated answer; a server starts over.
            if role == Role::Server {
                Shared::reset_all(&mut state);
                if let Some(out) = &state.out {
                    let _ = out.send(frame);
                }
            }
        }
        Kind::Open => {
            if state.streams.contains_key(&id) || state.incoming.is_none() {
                if let Some(out) = &state.out {
                    let _ = out.send(Frame::new(
                        Kind::OpenErr,
                        id,
                        &b"stream id in use or not accepting streams"[..],
                    ));
                }
                return;
            }
            let target = String::from_utf8_lossy(&frame.payload).into_owned();
            let stream = new_stream(shared, &mut state, id);
            let incoming = Incoming {
                target,
                stream: Some(stream),
            };
            let sent = state.incoming.as_ref().map(|tx| tx.send(incoming));
            drop(state);
            // An acceptor that is gone refuses it by dropping it.
            drop(sent);
        }
        Kind::OpenOk => {
            if let Some(tx) = state.opening.remove(&id) {
                let _ = tx.send(Ok(()));
            }
        }
        Kind::OpenErr => {
            if let Some(s) = state.streams.remove(&id) {
                s.reset();
            }
            if let Some(tx) = state.opening.remove(&id) {
                let _ = tx.send(Err(String::from_utf8_lossy(&frame.payload).into_owned()));
            }
        }
        Kind::Data => {
            if let Some(s) = state.streams.get(&id) {
                let _ = s.events.send(Event::Data(frame.payload));
            }
        }
        Kind::Eof => {
            if let Some(s) = state.streams.get(&id) {
                let _ = s.events.send(Event::Eof);
            }
        }
        Kind::Credit => {
            if let Some(s) = state.streams.get(&id) {
                s.credit.add_permits(frame.credit_bytes() as usize);
            }
        }
        Kind::Close => {
            if let Some(s) = state.streams.remove(&id) {
                s.reset();
            }
            state.opening.remove(&id);
        }
    }
}

/// Dropping both halves of a stream sends `CLOSE` (unless the stream was
/// reset already).
struct Guard {
    shared: Arc<Shared>,
    stream: Arc<StreamShared>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let live = state
            .streams
            .get(&self.stream.id)
            .is_some_and(|s| Arc::ptr_eq(s, &self.stream));
        if live {
            state.streams.remove(&self.stream.id);
            if let Some(out) = &state.out {
                let _ = out.send(Frame::empty(Kind::Close, self.stream.id));
            }
        }
    }
}

/// One stream of a session.
pub struct MuxStream {
    reader: MuxReader,
    writer: MuxWriter,
}

impl MuxStream {
    /// The stream's two halves; the stream closes when both are dropped.
    pub fn into_split(self) -> (MuxReader, MuxWriter) {
        (self.reader, self.writer)
    }

    /// Copies between this stream and `io` both ways until both directions
    /// have ended, passing half-closes on.
    pub async fn bridge<T>(self, io: T) -> io::Result<()>
    where
        T: AsyncRead + AsyncWrite,
    {
        let (mut reader, mut writer) = self.into_split();
        let (mut io_read, mut io_write) = tokio::io::split(io);
        let up = async {
            let mut buf = vec![0u8; MAX_PAYLOAD];
            loop {
                let n = io_read.read(&mut buf).await?;
                if n == 0 {
                    writer.shutdown().await?;
                    return Ok::<(), io::Error>(());
                }
                writer.write(&buf[..n]).await?;
            }
        };
        let down = async {
            while let Some(data) = reader.read().await? {
                io_write.write_all(&data).await?;
            }
            io_write.shutdown().await?;
            Ok::<(), io::Error>(())
        };
        tokio::try_join!(up, down).map(|_| ())
    }
}

/// The receiving half of a stream.
pub struct MuxReader {
    shared: Arc<Shared>,
    stream: Arc<StreamShared>,
    events: mpsc::UnboundedReceiver<Event>,
    unacked: u32,
    done: bool,
    _guard: Arc<Guard>,
}

impl MuxReader {
    /// The next bytes; `None` after the other end's `EOF`; an error if the
    /// stream was reset.
    pub async fn read(&mut self) -> io::Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        match self.events.recv().await {
            Some(Event::Data(data)) => {
                self.unacked = self.unacked.saturating_add(data.len() as u32);
                if self.unacked >= WINDOW / 4 {
                    let grant = std::mem::take(&mut self.unacked);
                    let _ = self
                        .shared
                        .send_on(&self.stream, Frame::credit(self.stream.id, grant));
                }
                Ok(Some(data))
            }
            Some(Event::Eof) => {
                self.done = true;
                Ok(None)
            }
            Some(Event::Reset) | None => Err(reset_error()),
        }
    }

    /// Reads everything up to the other end's `EOF`.
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(data) = self.read().await? {
            all.extend_from_slice(&data);
        }
        Ok(all)
    }
}

/// The sending half of a stream.
pub struct MuxWriter {
    shared: Arc<Shared>,
    stream: Arc<StreamShared>,
    eof_sent: bool,
    _guard: Arc<Guard>,
}

impl MuxWriter {
    /// Sends all of `data`, waiting for credit as needed.
    pub async fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.eof_sent {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "channel stream already half-closed",
            ));
        }
        while !data.is_empty() {
            let want = data.len().min(MAX_PAYLOAD);
            let available = self.stream.credit.available_permits();
            let n = want.min(available.max(1));
            let permit = self
                .stream
                .credit
                .acquire_many(n as u32)
                .await
                .map_err(|_| reset_error())?;
            permit.forget();
            let (chunk, rest) = data.split_at(n);
            self.shared.send_on(
                &self.stream,
                Frame::new(Kind::Data, self.stream.id, chunk.to_vec()),
            )?;
            data = rest;
        }
        Ok(())
    }

    /// Half-closes: the other end reads to its end; it may still send.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        if self.eof_sent {
            return Ok(());
        }
        self.eof_sent = true;
        self.shared
            .send_on(&self.stream, Frame::empty(Kind::Eof, self.stream.id))
    }
}

impl Drop for MuxWriter {
    fn drop(&mut self) {
        if !self.eof_sent {
            let _ = self
                .shared
                .send_on(&self.stream, Frame::empty(Kind::Eof, self.stream.id));
        }
    }
}
