//! The wire format: every frame is a 9-byte header (kind, stream id, payload
//! length, big-endian) and its payload.
//!
//! | kind | payload | meaning |
//! |---|---|---|
//! | `OPEN` | target, UTF-8 | open a stream to a named target |
//! | `OPEN_OK` | — | the target answered; data may flow |
//! | `OPEN_ERR` | message, UTF-8 | the target could not be reached; the stream is gone |
//! | `DATA` | bytes | never more than the sender's credit for the stream |
//! | `CREDIT` | u32 | the receiver consumed this many bytes: send that many more |
//! | `EOF` | — | the sender will send no more on this stream (half-close) |
//! | `CLOSE` | — | the sender dropped the stream: reset it |
//! | `SYNC` | 8-byte nonce | start of a session (see the crate docs) |

use bytes::Bytes;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 9;
/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 32 * 1024;
/// The stream id a `SYNC` frame carries: "SERV", so that its header is an
/// unlikely pattern to find by chance when scanning a byte stream.
pub const SYNC_ID: u32 = 0x5345_5256;
/// Bytes of a `SYNC` frame's nonce.
pub const NONCE_LEN: usize = 8;

/// What a frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Open = 1,
    OpenOk = 2,
    OpenErr = 3,
    Data = 4,
    Eof = 5,
    Close = 6,
    Credit = 7,
    Sync = 0x53,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Open,
            2 => Self::OpenOk,
            3 => Self::OpenErr,
            4 => Self::Data,
            5 => Self::Eof,
            6 => Self::Close,
            7 => Self::Credit,
            0x53 => Self::Sync,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub id: u32,
    pub payload: Bytes,
}

/// A header that cannot start a frame: the byte stream is out of step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadHeader {
    #[error("unknown frame kind {0:#04x}")]
    Kind(u8),
    #[error("frame payload of {0} bytes is over the limit of {MAX_PAYLOAD}")]
    TooLong(usize),
    #[error("SYNC frame with stream id {0:#010x} or length {1}")]
    Sync(u32, usize),
}

impl Frame {
    pub fn new(kind: Kind, id: u32, payload: impl Into<Bytes>) -> Self {
        Self {
            kind,
            id,
            payload: payload.into(),
        }
    }

    pub fn empty(kind: Kind, id: u32) -> Self {
        Self::new(kind, id, Bytes::new())
    }

    pub fn credit(id: u32, bytes: u32) -> Self {
        Self::new(Kind::Credit, id, bytes.to_be_bytes().to_vec())
    }

    pub fn sync(nonce: [u8; NONCE_LEN]) -> Self {
        Self::new(Kind::Sync, SYNC_ID, nonce.to_vec())
    }

    /// Appends the frame's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        out.extend_from_slice(&self.id.to_be_bytes());
        // Payloads are built by this crate and never over MAX_PAYLOAD.
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// The credit a `CREDIT` frame grants (0 for a malformed one).
    pub fn credit_bytes(&self) -> u32 {
        <[u8; 4]>::try_from(&self.payload[..]).map_or(0, u32::from_be_bytes)
    }
}

/// The header of a `SYNC` frame, the pattern a receiver scans for.
pub fn sync_header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = Kind::Sync as u8;
    h[1..5].copy_from_slice(&SYNC_ID.to_be_bytes());
    h[5..9].copy_from_slice(&(NONCE_LEN as u32).to_be_bytes());
    h
}

/// Reads a header: the frame's kind, stream id and payload length.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(Kind, u32, usize), BadHeader> {
    let kind = Kind::from_byte(h[0]).ok_or(BadHeader::Kind(h[0]))?;
    let id = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(BadHeader::TooLong(len));
    }
    if kind == Kind::Sync && (id != SYNC_ID || len != NONCE_LEN) {
        return Err(BadHeader::Sync(id, len));
    }
    Ok((kind, id, len))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        for frame in [
            Frame::new(Kind::Open, 1, &b"engine"[..]),
            Frame::empty(Kind::OpenOk, 1),
            Frame::new(Kind::Data, 0xdead_beef, vec![7u8; MAX_PAYLOAD]),
            Frame::credit(3, 65536),
            Frame::sync(*b"12345678"),
        ] {
            let mut out = Vec::new();
            frame.encode(&mut out);
            let header: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().unwrap();
            let (kind, id, len) = parse_header(&header).unwrap();
            assert_eq!((kind, id, len), (frame.kind, frame.id, frame.payload.len()));
            assert_eq!(&out[HEADER_LEN..], &frame.payload[..]);
        }
        assert_eq!(Frame::credit(3, 65536).credit_bytes(), 65536);
        assert_eq!(Frame::empty(Kind::Credit, 3).credit_bytes(), 0);
    }

    #[test]
    fn sync_header_is_the_encoded_one() {
        let mut out = Vec::new();
        Frame::sync([0; NONCE_LEN]).encode(&mut out);
        assert_eq!(&out[..HEADER_LEN], &sync_header());
    }

    #[test]
    fn bad_headers() {
        let mut h = [0u8; HEADER_LEN];
        h[0] = 99;
        assert_eq!(parse_header(&h), Err(BadHeader::Kind(99)));
        h[0] = Kind::Data as u8;
        h[5..9].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_be_bytes());
        assert_eq!(parse_header(&h), Err(BadHeader::TooLong(MAX_PAYLOAD + 1)));
        h[0] = Kind::Sync as u8;
        h[5..9].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(parse_header(&h), Err(BadHeader::Sync(0, 8)));
    }
}
