//! Hijacked connections and Docker's stream framing.
//!
//! `attach` and `exec start` take over the HTTP connection (`Upgrade: tcp`,
//! answered `101 UPGRADED`) and then carry raw bytes: the container's
//! output, and its input in the other direction. Without a TTY, output is
//! multiplexed: each chunk is preceded by 8 bytes, the stream (1 stdout,
//! 2 stderr), three zeros and the length as a big-endian u32, written by
//! the framing the CLI reads with ([`servin_values::stream`]).

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::routes::{Body, empty};

/// The content type of a multiplexed stream.
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
/// The content type of a raw (TTY) stream.
pub const RAW: &str = "application/vnd.docker.raw-stream";

/// Which stream a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Frames `data` Docker's way, or passes it through raw when `tty`.
pub fn frame(kind: StreamKind, data: &[u8], tty: bool) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(data);
    }
    let stream = match kind {
        StreamKind::Stdout => servin_values::stream::STDOUT,
        StreamKind::Stderr => servin_values::stream::STDERR,
    };
    Bytes::from(servin_values::stream::frame(stream, data))
}

/// Whether the client asked to take over the connection.
pub fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

/// The connection after the upgrade.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// Answers `101 UPGRADED` and hands the connection to `then` once hyper
/// has switched it over. `on_upgrade` comes from `hyper::upgrade::on(req)`.
pub fn hijack<F, Fut>(on_upgrade: hyper::upgrade::OnUpgrade, tty: bool, then: F) -> Response<Body>
where
    F: FnOnce(Hijacked) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => then(TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if tty { RAW } else { MULTIPLEXED }),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_like_docker() {
        let f = frame(StreamKind::Stderr, b"hi", false);
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(&frame(StreamKind::Stdout, b"hi", true)[..], b"hi");
    }
}
