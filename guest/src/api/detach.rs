//! Detach keys: the key sequence that, typed into an attached or exec'd
//! terminal, ends the client's session and leaves the process running
//! (Docker's `ctrl-p,ctrl-q` unless the client names others with
//! `detachKeys`). As with Docker, they apply to input on a terminal only;
//! without one every byte goes to the process.

/// Docker's default sequence: ctrl-p then ctrl-q.
pub const DEFAULT_KEYS: &[u8] = &[0x10, 0x11];

/// Parses Docker's `detachKeys` (`ctrl-p,ctrl-q`, `ctrl-x,y`, `a,b`):
/// comma-separated keys, each one character, `ctrl-` with one of `@`,
/// `a`-`z`, `[`, `\`, `]`, `^`, `_`, or `DEL`.
pub fn parse_keys(text: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("Invalid detach keys ({text}) provided");
    let mut out = Vec::new();
    for key in text.split(',') {
        let bytes = key.as_bytes();
        let code = match (bytes, key.strip_prefix("ctrl-")) {
            ([one], _) => *one,
            (_, Some(c)) => match c.as_bytes() {
                [b'@'] => 0,
                [l @ b'a'..=b'z'] => l - b'a' + 1,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad()),
            },
            _ if key == "DEL" => 127,
            _ => return Err(bad()),
        };
        out.push(code);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Watches input for the detach sequence, holding back a partial match
/// until it is complete (detach) or broken (the held bytes go on).
#[derive(Debug, Clone)]
pub struct EscapeFilter {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeFilter {
    /// A filter for `keys` (never empty: see [`parse_keys`]).
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// Takes the next piece of input: the bytes to pass on, and whether
    /// the sequence is now complete (the bytes after it are dropped, as the
    /// session ends there).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // A broken partial match: what was held goes on, and this byte
            // may start the sequence again.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_parse_as_docker_takes_them() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_KEYS);
        assert_eq!(parse_keys("ctrl-x,y").unwrap(), [24, b'y']);
        assert_eq!(parse_keys("ctrl-@,ctrl-[,DEL").unwrap(), [0, 27, 127]);
        assert_eq!(parse_keys("a").unwrap(), [b'a']);
        assert_eq!(
            parse_keys("ctrl-pp").unwrap_err(),
            "Invalid detach keys (ctrl-pp) provided"
        );
        assert!(parse_keys("").is_err());
        assert!(parse_keys("ab").is_err());
    }

    #[test]
    fn the_sequence_detaches_across_reads_and_partial_matches_pass_on() {
        let mut f = EscapeFilter::new(DEFAULT_KEYS.to_vec());
        assert_eq!(f.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        assert_eq!(f.feed(&[b'a', 0x10]), (b"a".to_vec(), false));
        assert_eq!(f.feed(&[0x11, b'z']), (Vec::new(), true));
        // Broken: ctrl-p then x goes on whole.
        let mut f = EscapeFilter::new(DEFAULT_KEYS.to_vec());
        assert_eq!(f.feed(&[0x10, b'x']), (vec![0x10, b'x'], false));
        // ctrl-p ctrl-p ctrl-q: the first goes on, the rest detaches.
        let mut f = EscapeFilter::new(DEFAULT_KEYS.to_vec());
        assert_eq!(f.feed(&[0x10, 0x10, 0x11]), (vec![0x10], true));
        let mut f = EscapeFilter::new(vec![b'q']);
        assert_eq!(f.feed(b"abqc"), (b"ab".to_vec(), true));
    }
}
