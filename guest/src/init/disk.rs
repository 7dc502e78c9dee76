//! The data disk (`/dev/vda`), which holds `/var/lib/servin`: formatted
//! when blank, checked with `e2fsck -p` before every mount (quick when
//! clean, a repair after a killed VM), and refused with a clear message
//! when it holds something else or cannot be repaired.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use super::system::Result;

/// What the first MiB of a disk says about it.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// All zeros: never formatted.
    Blank,
    /// An ext2/3/4 superblock.
    Ext4,
    /// Something else (or a damaged superblock).
    Other,
}

/// Looks at the start of a disk: the ext superblock's magic 0xEF53 is at
/// byte 1080.
pub fn classify(head: &[u8]) -> Found {
    if head.get(1080..1082) == Some(&[0x53, 0xef]) {
        Found::Ext4
    } else if head.iter().all(|&b| b == 0) {
        Found::Blank
    } else {
        Found::Other
    }
}

/// What happened to the disk, for the console.
#[derive(Debug)]
pub struct Prepared {
    pub formatted: bool,
    pub repaired: bool,
}

const RESET_HELP: &str = "help: `servin vm reset` wipes the data disk (images, containers and volumes are lost), then `servin vm start` formats a new one";

/// Formats, checks and mounts `device` at `target`.
pub fn prepare(device: &Path, target: &Path) -> Result<Prepared> {
    let mut head = vec![0u8; 1 << 20];
    let mut file = std::fs::File::open(device)
        .map_err(|e| format!("open the data disk {}: {e}", device.display()))?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("read the data disk {}: {e}", device.display())),
        }
    }
    head.truncate(read);
    drop(file);
    let mut prepared = Prepared {
        formatted: false,
        repaired: false,
    };
    match classify(&head) {
        Found::Blank => {
            run(
                Command::new("/usr/sbin/mkfs.ext4")
                    .args(["-q", "-F", "-L", "servin-data", "-m", "0"])
                    .args(["-E", "lazy_itable_init=1,lazy_journal_init=1"])
                    .arg(device),
                "format the data disk",
            )?;
            prepared.formatted = true;
        }
        Found::Ext4 | Found::Other => {
            prepared.repaired = check(device)?;
        }
    }
    std::fs::create_dir_all(target).map_err(|e| format!("create {}: {e}", target.display()))?;
    rustix::mount::mount(
        device,
        target,
        "ext4",
        rustix::mount::MountFlags::NOATIME,
        // The journal commits every second (with `tune_writeback`, a
        // killed VM loses about a second of unsynced writes, not 30 s).
        c"commit=1",
    )
    .map_err(|e| {
        format!(
            "mount the data disk {} on {}: {e}\n{RESET_HELP}",
            device.display(),
            target.display()
        )
    })?;
    Ok(prepared)
}

/// `e2fsck -p`: whether it repaired something; an error when it could not.
fn check(device: &Path) -> Result<bool> {
    let out = Command::new("/usr/sbin/e2fsck")
        .arg("-p")
        .arg(device)
        .output()
        .map_err(|e| format!("run e2fsck on the data disk: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(false),
        // 1: errors corrected; 2: corrected, and a reboot is advised
        // (only when the file system was mounted, which it is not).
        Some(1 | 2) => Ok(true),
        code => {
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(format!(
                "the data disk {} is damaged and `e2fsck -p` could not repair it (exit {}):\n{}\n{RESET_HELP}",
                device.display(),
                code.map_or_else(|| "by a signal".to_string(), |c| c.to_string()),
                tail.join("\n")
            ))
        }
    }
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let out = command
        .output()
        .map_err(|e| format!("{what}: run {:?}: {e}", command.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what}: {:?} failed ({}): {}",
        command.get_program(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// How full the file system at `path` is, in percent.
pub fn percent_used(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    let total = s.f_blocks;
    (total > 0).then(|| (total - s.f_bavail.min(total)) * 100 / total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_disk_is_blank_ext4_or_something_else() {
        let mut head = vec![0u8; 4096];
        assert_eq!(classify(&head), Found::Blank);
        assert_eq!(classify(&[]), Found::Blank);
        head[1080] = 0x53;
        head[1081] = 0xef;
        assert_eq!(classify(&head), Found::Ext4);
        head[1081] = 0;
        assert_eq!(classify(&head), Found::Other);
    }
}
