//! Pseudo-terminals made by the runtime: receiving the master over a
//! console socket (`--console-socket`) and using it from tokio.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Receives the pty master the runtime sends (SCM_RIGHTS) on a connected
/// console socket. `Ok(None)`: no message is there yet (non-blocking
/// socket); an error: the peer sent something else or went away.
pub(crate) fn receive_master(socket: impl AsFd) -> std::io::Result<Option<OwnedFd>> {
    // The runtime sends the terminal's name along with the descriptor.
    let mut name = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut name)];
    match rustix::net::recvmsg(&socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
        Ok(_) => {}
        Err(rustix::io::Errno::AGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let mut master = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                master.get_or_insert(fd);
            }
        }
    }
    master.map(Some).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the console socket peer sent no file descriptor",
        )
    })
}

/// Opens a new pseudo-terminal: (master, slave), the slave in raw mode
/// (bytes pass through unchanged, nothing echoes) and not a controlling
/// terminal of this process.
pub(crate) fn open_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::OpenptFlags;
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
    let mut termios = rustix::termios::tcgetattr(&slave)?;
    termios.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &termios)?;
    Ok((master, slave))
}

/// Sets a terminal's size (which signals SIGWINCH to its foreground
/// process group).
pub(crate) fn set_size(master: impl AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master, size).map_err(Into::into)
}

/// Clears `ONLCR` on a terminal: with output processing on (as `runc exec`
/// turns it on for its own terminal), `\n` is no longer written as `\r\n`.
pub(crate) fn clear_onlcr(fd: impl AsFd) -> std::io::Result<()> {
    let mut termios = rustix::termios::tcgetattr(&fd)?;
    termios
        .output_modes
        .remove(rustix::termios::OutputModes::ONLCR);
    rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &termios)?;
    Ok(())
}

/// A terminal's output with every `\n` not already after a `\r` written
/// as `\r\n`, as a terminal with `ONLCR` writes it.
///
/// `runc exec -t` relays the container's terminal to its own: it clears
/// `ONLCR` on the container's terminal once it holds it and turns output
/// processing on in its own. What the process wrote before that arrives as
/// `\r\n`, what it wrote after as `\n`, and which is which depends on
/// timing. With `ONLCR` off on the runtime's terminal ([`clear_onlcr`]),
/// this makes the output the same every time: Docker's.
pub(crate) struct Onlcr<R> {
    inner: R,
    /// The last byte given out was `\r`.
    after_cr: bool,
    /// Translated bytes that did not fit the caller's buffer.
    pending: Vec<u8>,
}

impl<R> Onlcr<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            after_cr: false,
            pending: Vec::new(),
        }
    }

    /// Translates `data` into `out`.
    fn translate(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            if b == b'\n' && !self.after_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.after_cr = b == b'\r';
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Onlcr<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() {
            // At most half the room: a translation at most doubles it.
            let room = buf.remaining().div_ceil(2).max(1);
            let mut raw = vec![0u8; room];
            let mut raw_buf = ReadBuf::new(&mut raw);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut raw_buf))?;
            let data = raw_buf.filled().to_vec();
            if data.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let mut out = Vec::with_capacity(data.len() * 2);
            self.translate(&data, &mut out);
            self.pending = out;
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}

/// A pty master made non-blocking and registered with tokio. Clones share
/// the descriptor: one may read while another writes.
#[derive(Clone)]
pub(crate) struct PtyMaster {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl PtyMaster {
    /// Wraps `fd`; needs a tokio runtime.
    pub(crate) fn new(fd: OwnedFd) -> std::io::Result<Self> {
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        // `AsyncFd::new` is deprecated because a generic `T` could swap its
        // descriptor while registered; an `OwnedFd` cannot, and the
        // replacement (`register`) is `unsafe`, which the workspace denies.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(Self { fd: Arc::new(fd) })
    }

    /// Sets the terminal's size.
    pub(crate) fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        set_size(self.fd.get_ref(), rows, cols)
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut *unfilled).map_err(Into::into))
            {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Every slave descriptor is closed: the end of the output.
                Ok(Err(e)) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(Into::into)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// A terminal has no half-close: nothing to do.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn lone_newlines_become_crlf_once_across_reads() {
        let input: &[u8] = b"a\nb\r\nc\r\r\n\n";
        let mut out = Vec::new();
        // Reads of one byte at a time: the state crosses reads.
        let mut r = Onlcr::new(tokio::io::BufReader::with_capacity(1, input));
        let mut byte = [0u8; 1];
        loop {
            let n = r.read(&mut byte).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&byte[..n]);
        }
        assert_eq!(out, b"a\r\nb\r\nc\r\r\n\r\n");
        let mut all = Vec::new();
        Onlcr::new(input).read_to_end(&mut all).await.unwrap();
        assert_eq!(all, out);
    }

    #[tokio::test]
    async fn a_pty_reads_writes_resizes_and_ends_with_its_slave() {
        let (master, slave) = open_pair().unwrap();
        let slave = std::fs::File::from(slave);
        let mut pty = PtyMaster::new(master).unwrap();
        pty.resize(33, 101).unwrap();
        let size = rustix::termios::tcgetwinsize(&slave).unwrap();
        assert_eq!((size.ws_row, size.ws_col), (33, 101));
        pty.write_all(b"in").await.unwrap();
        let mut got = [0u8; 2];
        std::io::Read::read_exact(&mut &slave, &mut got).unwrap();
        assert_eq!(&got, b"in");
        std::io::Write::write_all(&mut &slave, b"out").unwrap();
        drop(slave);
        let mut out = Vec::new();
        pty.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"out");
    }
}
