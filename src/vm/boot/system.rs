//! The system disk: a read-only ext4 image holding the guest's programs,
//! their libraries, the kernel modules and `/etc`, made without root by
//! `mkfs.ext4 -d` from a folder staged here.
//!
//! The guest reads it through a read-only virtio-blk disk, under a tmpfs
//! overlay (`init` in the initramfs mounts both), so only the pages the
//! guest reads take memory, and QEMU maps none of it: an initramfs holding
//! the same files would be kept whole three times over (QEMU's mapping of
//! the file, the guest's copy of the archive while it unpacks, the
//! unpacked files in the guest's memory).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::vm::VmError;

/// The serial number the system disk carries, by which `init` finds it.
pub const SERIAL: &str = "servin-system";

/// A folder being filled with the system disk's tree: guest paths are
/// absolute and land below `root`.
pub struct Staging {
    root: PathBuf,
    bytes: u64,
    entries: u64,
}

fn named(path: &Path) -> impl Fn(std::io::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Staging {
    /// An empty tree at `root` (anything there before is removed).
    pub fn new(root: &Path) -> std::io::Result<Self> {
        match std::fs::remove_dir_all(root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(named(root)(e)),
            _ => {}
        }
        std::fs::create_dir_all(root).map_err(named(root))?;
        Ok(Self {
            root: root.to_path_buf(),
            bytes: 0,
            entries: 1,
        })
    }

    fn host(&self, guest: &str) -> PathBuf {
        self.root.join(guest.trim_start_matches('/'))
    }

    fn parent_of(&mut self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent()
            && !parent.is_dir()
        {
            std::fs::create_dir_all(parent).map_err(named(parent))?;
            self.entries += parent.components().count() as u64;
        }
        Ok(())
    }

    /// A folder with mode `mode`.
    pub fn dir(&mut self, guest: &str, mode: u32) -> std::io::Result<()> {
        let path = self.host(guest);
        self.parent_of(&path)?;
        if !path.is_dir() {
            std::fs::create_dir(&path).map_err(named(&path))?;
            self.entries += 1;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(named(&path))
    }

    /// A copy of the host file `host` (links followed), with its mode.
    pub fn file(&mut self, guest: &str, host: &Path) -> std::io::Result<()> {
        let path = self.host(guest);
        self.parent_of(&path)?;
        let n = std::fs::copy(host, &path).map_err(named(host))?;
        self.bytes += n;
        self.entries += 1;
        Ok(())
    }

    /// A file holding `bytes`, with mode `mode`.
    pub fn bytes(&mut self, guest: &str, mode: u32, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.host(guest);
        self.parent_of(&path)?;
        let mut f = File::create(&path).map_err(named(&path))?;
        f.write_all(bytes).map_err(named(&path))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(named(&path))?;
        self.bytes += bytes.len() as u64;
        self.entries += 1;
        Ok(())
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, guest: &str, target: &str) -> std::io::Result<()> {
        let path = self.host(guest);
        self.parent_of(&path)?;
        std::os::unix::fs::symlink(target, &path).map_err(named(&path))?;
        self.entries += 1;
        Ok(())
    }

    /// Makes the ext4 image `dest` of the tree with `mkfs` (the host's
    /// `mkfs.ext4`), then removes the tree. The image is sized to the
    /// tree with some room (blocks, inodes), has no journal (it is never
    /// written) and root as the owner of its top folder; the files keep
    /// the owner who built them, which the guest does not look at.
    pub fn make_image(self, mkfs: &Path, dest: &Path) -> Result<(), VmError> {
        let mib = (self.bytes + self.bytes / 4 + self.entries * 4096) / (1 << 20) + 16;
        let inodes = self.entries * 2 + 256;
        let tmp = dest.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let out = Command::new(mkfs)
            .args(["-q", "-F", "-L", SERIAL, "-b", "4096", "-m", "0"])
            .args(["-O", "^has_journal", "-E", "root_owner=0:0"])
            .arg("-N")
            .arg(inodes.to_string())
            .arg("-d")
            .arg(&self.root)
            .arg(&tmp)
            .arg(format!("{mib}M"))
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
        let failed = |message: String| {
            let _ = std::fs::remove_file(&tmp);
            Err(VmError::Invalid(format!(
                "make the VM's system disk {} with {}: {message}",
                dest.display(),
                mkfs.display()
            )))
        };
        match out {
            Err(e) => return failed(e.to_string()),
            Ok(o) if !o.status.success() => {
                return failed(format!(
                    "{}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Ok(_) => {}
        }
        if let Err(e) = File::open(&tmp).and_then(|f| f.sync_all()) {
            return failed(e.to_string());
        }
        std::fs::rename(&tmp, dest).map_err(VmError::file(dest))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_tree_is_staged_with_modes_links_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("prog");
        std::fs::write(&src, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("tree");
        let mut s = Staging::new(&root).unwrap();
        s.dir("/tmp", 0o1777).unwrap();
        s.file("/usr/bin/prog", &src).unwrap();
        s.symlink("/bin/sh", "busybox").unwrap();
        s.bytes("/etc/hosts", 0o644, b"127.0.0.1 localhost\n")
            .unwrap();
        let mode = |p: &str| {
            std::fs::symlink_metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(mode("usr/bin/prog"), 0o755);
        assert_eq!(mode("etc/hosts"), 0o644);
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(s.bytes, 10 + 20);
        assert!(s.entries >= 8, "{}", s.entries);
    }
}
