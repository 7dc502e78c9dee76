//! `/proc/self/mountinfo`, the kernel's table of mounts: which mount
//! points lie below a folder (the engine unmounts them on a reset, the CLI
//! checks none is left before it deletes the state root).

use std::path::{Path, PathBuf};

/// The mount points of `mountinfo` (the file's text) at or below `dir`,
/// in mount order (a mount's children after it).
pub fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// A mountinfo field with its octal escapes (`\040` for a space) decoded.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_below_a_folder_with_escapes_decoded() {
        let info = "\
22 1 0:21 / /proc rw - proc proc rw
90 22 0:50 / /tmp/a\\040b/root/containers/x/rootfs rw - overlay overlay rw
91 22 0:51 / /tmp/a\\040b/rootless rw - tmpfs tmpfs rw
92 22 0:52 / /tmp/a\\040b/root rw - tmpfs tmpfs rw
";
        let found = mounts_below(info, Path::new("/tmp/a b/root"));
        assert_eq!(
            found,
            [
                PathBuf::from("/tmp/a b/root/containers/x/rootfs"),
                PathBuf::from("/tmp/a b/root")
            ]
        );
        assert_eq!(unescape("a\\134b\\0"), "a\\b\\0");
        assert_eq!(unescape("x\\777"), "x\\777");
    }
}
