//! Datagrams over a stream: each one as its length (2 bytes, big-endian)
//! followed by its bytes. UDP ports published in VM mode travel this way
//! over a channel stream, one stream per host peer.

/// The largest datagram a frame holds (UDP's own limit is below it).
pub const MAX_DATAGRAM: usize = u16::MAX as usize;

/// `datagram` framed; `None` when it is larger than [`MAX_DATAGRAM`].
pub fn frame(datagram: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(datagram.len()).ok()?;
    let mut out = Vec::with_capacity(2 + datagram.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(datagram);
    Some(out)
}

/// Cuts a stream's bytes, received in chunks of any size, back into the
/// datagrams [`frame`] made.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    at: usize,
}

impl Deframer {
    /// Takes the next chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole datagram, if one has arrived.
    pub fn next_datagram(&mut self) -> Option<Vec<u8>> {
        let rest = &self.buf[self.at..];
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let datagram = rest.get(2..2 + len)?.to_vec();
        self.at += 2 + len;
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        Some(datagram)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn datagrams_survive_any_chunking() {
        let datagrams: Vec<Vec<u8>> =
            vec![b"one".to_vec(), Vec::new(), vec![7u8; 1000], b"x".to_vec()];
        let stream: Vec<u8> = datagrams.iter().flat_map(|d| frame(d).unwrap()).collect();
        for size in [1, 2, 3, 7, 500, stream.len()] {
            let mut d = Deframer::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(size) {
                d.push(chunk);
                while let Some(x) = d.next_datagram() {
                    got.push(x);
                }
            }
            assert_eq!(got, datagrams, "chunks of {size}");
        }
        assert!(frame(&vec![0u8; MAX_DATAGRAM + 1]).is_none());
        assert_eq!(
            frame(&vec![0u8; MAX_DATAGRAM]).unwrap().len(),
            MAX_DATAGRAM + 2
        );
    }
}
