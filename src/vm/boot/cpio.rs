//! A writer of the "newc" cpio archives the kernel unpacks as its
//! initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex
//! fields), the path and a NUL padded to 4 bytes, then the data padded to 4
//! bytes; `TRAILER!!!` ends the archive. Parent folders are written before
//! their contents, owners are root and times are zero, so the same inputs
//! give the same bytes. Device nodes are written as entries, so building an
//! initramfs needs no root.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};

/// A newc archive being written to `W`.
pub struct Cpio<W: Write> {
    out: W,
    ino: u32,
    dirs: BTreeSet<String>,
    written: u64,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl<W: Write> Cpio<W> {
    /// An empty archive.
    pub fn new(out: W) -> Self {
        Self {
            out,
            ino: 0,
            dirs: BTreeSet::new(),
            written: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }

    fn header(&mut self, path: &str, mode: u32, size: u32, rdev: (u32, u32)) -> io::Result<()> {
        self.ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let name_size = path.len() as u32 + 1;
        let fields = [
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name_size, 0,
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(path.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }

    /// Writes the folders above `path` that are not written yet.
    fn parents(&mut self, path: &str) -> io::Result<()> {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let dir = &path[..at + i];
            at += i + 1;
            if !dir.is_empty() && !self.dirs.contains(dir) {
                let dir = dir.to_string();
                self.header(&dir, S_IFDIR | 0o755, 0, (0, 0))?;
                self.dirs.insert(dir);
            }
        }
        Ok(())
    }

    fn entry_name(path: &str) -> io::Result<&str> {
        let name = path.trim_start_matches('/');
        if name.is_empty() || name.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path:?} is not a path for an archive entry"),
            ));
        }
        Ok(name)
    }

    /// A folder (and its parents), mode `perm`.
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        let name = Self::entry_name(path)?;
        self.parents(name)?;
        if self.dirs.insert(name.to_string()) {
            self.header(name, S_IFDIR | (perm & 0o7777), 0, (0, 0))?;
        }
        Ok(())
    }

    /// A regular file of `size` bytes read from `data`.
    pub fn file(&mut self, path: &str, perm: u32, size: u64, data: impl Read) -> io::Result<()> {
        let name = Self::entry_name(path)?;
        let size32 = u32::try_from(size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: {size} bytes is more than a newc archive holds"),
            )
        })?;
        self.parents(name)?;
        self.header(name, S_IFREG | (perm & 0o7777), size32, (0, 0))?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: {copied} bytes where {size} were expected"),
            ));
        }
        self.written += size;
        self.pad()
    }

    /// A regular file holding `bytes`.
    pub fn bytes(&mut self, path: &str, perm: u32, bytes: &[u8]) -> io::Result<()> {
        self.file(path, perm, bytes.len() as u64, bytes)
    }

    /// A character device node.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        let name = Self::entry_name(path)?;
        self.parents(name)?;
        self.header(name, S_IFCHR | (perm & 0o7777), 0, (major, minor))
    }

    /// Ends the archive and gives the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 0, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The entries of a newc archive: (name, mode, data).
    fn entries(mut a: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let total = a.len();
        loop {
            assert_eq!(&a[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&a[6 + i * 8..14 + i * 8]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, name_size) = (field(1), field(6) as usize, field(11) as usize);
            let name = std::str::from_utf8(&a[110..110 + name_size - 1])
                .unwrap()
                .to_string();
            let mut at = 110 + name_size;
            at += (4 - (total - a.len() + at) % 4) % 4;
            let data = a[at..at + size].to_vec();
            at += size;
            at += (4 - (total - a.len() + at) % 4) % 4;
            a = &a[at..];
            if name == "TRAILER!!!" {
                assert!(a.is_empty());
                return out;
            }
            out.push((name, mode, data));
        }
    }

    #[test]
    fn parents_come_first_and_data_is_padded() {
        let mut c = Cpio::new(Vec::new());
        c.bytes("/usr/bin/x", 0o755, b"hello").unwrap();
        c.bytes("/init", 0o755, b"#!/bin/sh\n").unwrap();
        c.dir("/usr", 0o755).unwrap();
        c.char_device("/dev/console", 0o600, 5, 1).unwrap();
        let out = c.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        let e = entries(&out);
        let names: Vec<&str> = e.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["usr", "usr/bin", "usr/bin/x", "init", "dev", "dev/console"]
        );
        assert_eq!(e[2].1, 0o100755);
        assert_eq!(e[2].2, b"hello");
        assert_eq!(e[3].1, 0o100755);
        assert_eq!(e[3].2, b"#!/bin/sh\n");
        assert_eq!(e[5].1, 0o020600);
    }

    #[test]
    fn bad_paths_and_short_reads_are_refused() {
        let mut c = Cpio::new(Vec::new());
        assert!(c.bytes("/a/../b", 0o644, b"").is_err());
        assert!(c.bytes("/", 0o644, b"").is_err());
        let e = c.file("/short", 0o644, 10, &b"abc"[..]).unwrap_err();
        assert!(e.to_string().contains("3 bytes where 10"), "{e}");
    }
}
