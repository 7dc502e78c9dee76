//! The small binary encoding shared by the index cache and
//! [`ContextIndex::encode`](crate::ContextIndex::encode): little-endian
//! integers, strings as a `u32` length and UTF-8 bytes. Reading checks every
//! length against what is left, so a truncated or hostile input is an error,
//! never a panic or a huge allocation.

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A string as its length then its bytes. Strings longer than 4 GiB
    /// do not occur (paths and link targets); they are cut at the length
    /// written, which decoding then reads back consistently.
    pub(crate) fn str(&mut self, s: &str) {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.buf.extend_from_slice(&s.as_bytes()[..len as usize]);
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends inside a value.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// The input does not start with the expected format marker.
    #[error("unknown format (expected {0})")]
    Magic(&'static str),
    /// A string is not UTF-8.
    #[error("a string at byte {0} is not UTF-8")]
    Utf8(usize),
    /// A value is out of range.
    #[error("bad value at byte {at}: {what}")]
    Value {
        /// Offset of the value.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
}

/// Reads values back from a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated(self.pos));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u32()? as usize;
        let at = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::Utf8(at))
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Each byte's value as a lower-case hex digit, or `0xff`.
const NIBBLES: [u8; 256] = {
    let mut t = [0xff_u8; 256];
    let mut i = 0;
    while i < 16 {
        t[HEX_DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Appends the lower-case hex of `bytes` to `out`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(b & 0xf)]));
    }
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// The 32 bytes of a `sha256:<64 lower-case hex>` digest, or `None` when
/// the text is not one. Large contexts have tens of thousands of these:
/// a table lookup per digit.
pub fn parse_digest(digest: &str) -> Option<[u8; 32]> {
    let hex = digest.strip_prefix("sha256:")?;
    parse_hex32(hex)
}

/// The 32 bytes of 64 lower-case hex digits.
pub(crate) fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0xf);
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// `sha256:<hex>` of 32 digest bytes.
pub fn format_digest(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(7 + bytes.len() * 2);
    s.push_str("sha256:");
    push_hex(&mut s, bytes);
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::default();
        w.u8(7);
        w.u32(1 << 20);
        w.u64(u64::MAX);
        w.i64(-5);
        w.str("päth/x");
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 1 << 20);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.str().unwrap(), "päth/x");
        assert_eq!(r.remaining(), 0);
        let cut = &w.buf[..w.buf.len() - 1];
        let mut r = Reader::new(cut);
        r.take(21).unwrap();
        assert!(matches!(r.str(), Err(DecodeError::Truncated(_))));
    }

    #[test]
    fn digests_parse_only_in_canonical_form() {
        let hex64 = "ab".repeat(32);
        let bytes = parse_digest(&format!("sha256:{hex64}")).unwrap();
        assert_eq!(format_digest(&bytes), format!("sha256:{hex64}"));
        assert!(parse_digest(&hex64).is_none());
        assert!(parse_digest(&format!("sha256:{}", "AB".repeat(32))).is_none());
        assert!(parse_digest("sha256:abc").is_none());
        assert!(parse_hex32(&"zz".repeat(32)).is_none());
    }
}
