//! Docker's multiplexed stream framing: without a TTY, `attach`, `exec
//! start` and `logs` carry output in frames of an 8-byte header (the
//! stream: 1 stdout, 2 stderr; three zeros; the payload length as a
//! big-endian u32) followed by the payload.
//!
//! The engine encodes ([`frame`]), the CLI decodes ([`Demux`]); the
//! engine's monitor speaks the same header on its attach socket
//! ([`header`], [`payload_len`]) with kinds of its own.

/// The stream number of standard output.
pub const STDOUT: u8 = 1;
/// The stream number of standard error.
pub const STDERR: u8 = 2;
/// The length of a frame header.
pub const HEADER_LEN: usize = 8;

/// The header of a frame of `kind` carrying `len` bytes. A payload longer
/// than a u32 cannot be framed; callers split long writes, and the length
/// saturates rather than wrapping so a bad caller produces a frame the
/// reader refuses instead of a misaligned stream.
pub fn header(kind: u8, len: usize) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [kind, 0, 0, 0, a, b, c, d]
}

/// The payload length a header announces.
pub fn payload_len(header: &[u8; HEADER_LEN]) -> usize {
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    // usize is at least 32 bits on every target the project builds for.
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// One whole frame: the header, then `data`.
pub fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    out.extend_from_slice(&header(kind, data.len()));
    out.extend_from_slice(data);
    out
}

/// Splits a multiplexed stream that arrives in arbitrary chunks back into
/// its frames.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feeds bytes; calls `each(stream, data)` for every complete frame
    /// (stream 1 is stdout, 2 stderr). A partial frame waits for the next
    /// feed.
    pub fn feed(&mut self, data: &[u8], mut each: impl FnMut(u8, &[u8])) {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        while let Some(head) = self
            .buf
            .get(at..at + HEADER_LEN)
            .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
        {
            let Some(end) = (at + HEADER_LEN)
                .checked_add(payload_len(head))
                .filter(|end| *end <= self.buf.len())
            else {
                break;
            };
            each(head[0], &self.buf[at + HEADER_LEN..end]);
            at = end;
        }
        self.buf.drain(..at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_like_docker() {
        assert_eq!(frame(STDERR, b"hi"), [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(header(5, 258), [5, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(payload_len(&header(1, 70_000)), 70_000);
    }

    #[test]
    fn demultiplexes_split_frames() {
        let mut d = Demux::default();
        let mut got: Vec<(u8, Vec<u8>)> = Vec::new();
        let data = [
            1u8, 0, 0, 0, 0, 0, 0, 2, b'h', b'i', 2, 0, 0, 0, 0, 0, 0, 1, b'!',
        ];
        d.feed(&data[..5], |s, b| got.push((s, b.to_vec())));
        assert!(got.is_empty());
        d.feed(&data[5..], |s, b| got.push((s, b.to_vec())));
        assert_eq!(got, vec![(1, b"hi".to_vec()), (2, b"!".to_vec())]);
    }

    #[test]
    fn round_trips_every_split() {
        let mut stream = frame(STDOUT, b"out");
        stream.extend(frame(STDERR, b""));
        stream.extend(frame(STDERR, &[7; 300]));
        for cut in 0..=stream.len() {
            let mut d = Demux::default();
            let mut got: Vec<(u8, Vec<u8>)> = Vec::new();
            d.feed(&stream[..cut], |s, b| got.push((s, b.to_vec())));
            d.feed(&stream[cut..], |s, b| got.push((s, b.to_vec())));
            assert_eq!(
                got,
                vec![(1, b"out".to_vec()), (2, vec![]), (2, vec![7; 300])],
                "cut at {cut}"
            );
        }
    }
}
