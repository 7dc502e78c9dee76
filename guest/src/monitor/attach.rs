//! Attaching to a container through its monitor's `DIR/attach.sock`.
//!
//! Both directions carry frames: `[kind u8][0, 0, 0][len u32 big-endian][payload]`,
//! the header of Docker's multiplexed streams ([`servin_values::stream`]).
//! The monitor sends kind 1 (stdout bytes), 2 (stderr bytes) and 3 (exit:
//! the [`ExitRecord`] as JSON, the last frame). A client sends kind 0 (stdin
//! bytes), 4 (close stdin) and 5 (resize: rows then columns, u16
//! big-endian).
//!
//! A client gets the output produced while it is connected; one connected
//! before [`Created::start`](super::Created::start) gets all of it. Stdin
//! frames reach the container only when it has `open_stdin`. A close frame
//! closes the container's stdin (without a tty; a terminal cannot be
//! half-closed, so with one it is ignored); with `stdin_once`, a client that
//! wrote stdin and disconnects without a close frame closes it too.

use std::path::Path;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::{ATTACH_SOCKET, ExitRecord, SocketPath};
use crate::error::{Error, Result};

pub(crate) const KIND_STDIN: u8 = 0;
pub(crate) const KIND_STDOUT: u8 = 1;
pub(crate) const KIND_STDERR: u8 = 2;
pub(crate) const KIND_EXIT: u8 = 3;
pub(crate) const KIND_CLOSE: u8 = 4;
pub(crate) const KIND_RESIZE: u8 = 5;

/// The largest payload accepted in either direction.
pub(crate) const MAX_PAYLOAD: usize = 1024 * 1024;

/// The largest stdin frame a client sends; longer writes are split.
const STDIN_CHUNK: usize = 64 * 1024;

/// A frame from the monitor.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Bytes the container wrote to stdout (all output with a tty).
    Stdout(Bytes),
    /// Bytes the container wrote to stderr.
    Stderr(Bytes),
    /// The container exited; no frame follows.
    Exit(ExitRecord),
}

/// Encodes one frame.
pub(crate) fn encode(kind: u8, payload: &[u8]) -> Bytes {
    Bytes::from(servin_values::stream::frame(kind, payload))
}

/// Reads one frame; `None` at a clean end of stream (or one cut inside a
/// frame: the peer went away either way).
pub(crate) async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Option<(u8, Bytes)>> {
    let mut header = [0u8; servin_values::stream::HEADER_LEN];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = servin_values::stream::payload_len(&header);
    if len > MAX_PAYLOAD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("attach frame of {len} bytes is over the {MAX_PAYLOAD}-byte limit"),
        ));
    }
    let mut payload = vec![0u8; len];
    match reader.read_exact(&mut payload).await {
        Ok(_) => Ok(Some((header[0], Bytes::from(payload)))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Connects to the attach socket of the monitor of `dir`.
pub async fn connect(dir: &Path) -> Result<(AttachReader, AttachWriter)> {
    let socket = dir.join(ATTACH_SOCKET);
    let path = SocketPath::new(dir, ATTACH_SOCKET)?;
    let stream = UnixStream::connect(path.path())
        .await
        .map_err(Error::io("connect to", &socket))?;
    let (read, write) = stream.into_split();
    Ok((
        AttachReader {
            inner: read,
            socket: socket.clone(),
        },
        AttachWriter {
            inner: write,
            socket,
        },
    ))
}

/// The output half of an attach connection.
pub struct AttachReader {
    inner: OwnedReadHalf,
    socket: std::path::PathBuf,
}

impl AttachReader {
    /// The next frame; `None` once the monitor is gone (after an
    /// [`Frame::Exit`], or because it died).
    pub async fn next(&mut self) -> Result<Option<Frame>> {
        loop {
            let Some((kind, payload)) = read_frame(&mut self.inner)
                .await
                .map_err(Error::io("read from", &self.socket))?
            else {
                return Ok(None);
            };
            return Ok(Some(match kind {
                KIND_STDOUT => Frame::Stdout(payload),
                KIND_STDERR => Frame::Stderr(payload),
                KIND_EXIT => Frame::Exit(serde_json::from_slice(&payload).map_err(Error::json(
                    format!("exit frame from {}", self.socket.display()),
                ))?),
                // Kinds this engine does not know are skipped.
                _ => continue,
            }));
        }
    }
}

/// The input half of an attach connection.
pub struct AttachWriter {
    inner: OwnedWriteHalf,
    socket: std::path::PathBuf,
}

impl AttachWriter {
    async fn send(&mut self, kind: u8, payload: &[u8]) -> Result<()> {
        self.inner
            .write_all(&encode(kind, payload))
            .await
            .map_err(Error::io("write to", &self.socket))
    }

    /// Sends bytes to the container's stdin.
    pub async fn stdin(&mut self, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(STDIN_CHUNK) {
            self.send(KIND_STDIN, chunk).await?;
        }
        Ok(())
    }

    /// Closes the container's stdin (see the module docs for when it
    /// applies).
    pub async fn close_stdin(&mut self) -> Result<()> {
        self.send(KIND_CLOSE, &[]).await
    }

    /// Resizes the container's terminal (ignored without a tty).
    pub async fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        let mut payload = [0u8; 4];
        payload[..2].copy_from_slice(&rows.to_be_bytes());
        payload[2..].copy_from_slice(&cols.to_be_bytes());
        self.send(KIND_RESIZE, &payload).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode(KIND_STDOUT, b"hello"));
        wire.extend_from_slice(&encode(KIND_RESIZE, &[0, 24, 0, 80]));
        wire.extend_from_slice(&encode(KIND_CLOSE, b""));
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 5]);
        let mut reader = wire.as_slice();
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some((KIND_STDOUT, Bytes::from_static(b"hello")))
        );
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some((KIND_RESIZE, Bytes::from_static(&[0, 24, 0, 80])))
        );
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some((KIND_CLOSE, Bytes::new()))
        );
        assert_eq!(read_frame(&mut reader).await.unwrap(), None);
        let mut cut = &encode(KIND_STDOUT, b"hello")[..10];
        assert_eq!(read_frame(&mut cut).await.unwrap(), None);
        let huge = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut &huge[..]).await.is_err());
    }
}
