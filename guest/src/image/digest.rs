//! sha256 digests. Every digest that came from outside is validated here
//! before it names a file in the store.

use sha2::{Digest as _, Sha256};

use crate::error::{ImageError, Result};

/// Checks that `digest` is `sha256:` followed by 64 lower-case hex digits and
/// returns the hex part.
pub fn hex_of(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| ImageError::UnsupportedDigest(digest.to_string()))?;
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(hex)
    } else {
        Err(ImageError::InvalidDigest(digest.to_string()).into())
    }
}

/// A streaming sha256 hasher that also counts bytes.
#[derive(Default, Clone)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest, as `sha256:<hex>`.
    pub fn finish(self) -> String {
        let bytes = self.inner.finalize();
        let mut out = String::with_capacity(71);
        out.push_str("sha256:");
        for b in bytes.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The digest of a byte slice.
pub fn of(data: &[u8]) -> String {
    let mut h = Hasher::default();
    h.update(data);
    h.finish()
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::default(),
        }
    }

    /// Returns the hasher state.
    pub fn into_hasher(self) -> Hasher {
        self.hasher
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(read) = buf.get(..n) {
            self.hasher.update(read);
        }
        Ok(n)
    }
}

/// The chain IDs of a list of diff IDs, as the OCI image spec defines them.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(prev) => of(format!("{prev} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn digest_of_empty_input() {
        assert_eq!(
            of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn refuses_digests_that_could_name_other_files() {
        assert!(hex_of("sha256:../../etc/passwd").is_err());
        assert!(hex_of("md5:abc").is_err());
        assert!(hex_of(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(hex_of(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }

    #[test]
    fn chain_id_of_one_layer_is_its_diff_id() {
        let d = vec![of(b"a"), of(b"b")];
        let c = chain_ids(&d);
        assert_eq!(c[0], d[0]);
        assert_eq!(c[1], of(format!("{} {}", d[0], d[1]).as_bytes()));
    }
}
