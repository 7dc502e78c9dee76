//! The data disk (`/dev/vda`), which holds `/var/lib/servin`: formatted
//! when blank, checked with `e2fsck -p` before it is mounted unless its
//! superblock says it is clean (a repair after a killed VM), and refused
//! with a clear message when it holds something else or cannot be
//! repaired.

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
    /// Cleanly unmounted last time: not checked (see [`needs_check`]).
    pub clean: bool,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn u16_at(head: &[u8], at: usize) -> u16 {
    head.get(1024 + at..1026 + at)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(head: &[u8], at: usize) -> u32 {
    head.get(1024 + at..1028 + at)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether `e2fsck -p` has anything to do on the ext4 file system whose
/// first MiB is `head`, from its superblock (at byte 1024), as `e2fsck`
/// itself decides a file system is clean: unmounted cleanly (`s_state`
/// valid, no errors), no journal to replay (`needs_recovery`, set while
/// mounted: a killed VM leaves it), no orphan inodes or recorded errors,
/// and neither its mount count nor its check interval is due. Running
/// `e2fsck` only to hear "clean" cost a program start under emulation at
/// every boot.
pub fn needs_check(head: &[u8], now: u64) -> bool {
    const VALID: u16 = 1;
    const ERRORS: u16 = 2;
    const RECOVER: u32 = 4;
    let state = u16_at(head, 0x3a);
    let mounts = u16_at(head, 0x34);
    let max_mounts = u16_at(head, 0x36) as i16;
    let last_check = u64::from(u32_at(head, 0x40));
    let interval = u64::from(u32_at(head, 0x44));
    let incompat = u32_at(head, 0x60);
    let last_orphan = u32_at(head, 0xe8);
    let error_count = u32_at(head, 0x194);
    head.len() < 2048
        || state & VALID == 0
        || state & ERRORS != 0
        || incompat & RECOVER != 0
        || last_orphan != 0
        || error_count != 0
        || (max_mounts > 0 && i32::from(mounts) >= i32::from(max_mounts))
        || (interval > 0 && now >= last_check + interval)
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
        clean: false,
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
        Found::Ext4 if !needs_check(&head, now()) => prepared.clean = true,
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
    fn a_cleanly_unmounted_file_system_needs_no_check() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img)
            .status()
            .unwrap();
        assert!(made.success());
        let mut head = std::fs::read(&img).unwrap();
        head.truncate(1 << 20);
        let now = 2_000_000_000;
        assert_eq!(classify(&head), Found::Ext4);
        assert!(!needs_check(&head, now));

        let set = |at: usize, bytes: &[u8]| {
            let mut h = head.clone();
            h[1024 + at..1024 + at + bytes.len()].copy_from_slice(bytes);
            h
        };
        // Mounted when the VM died: the journal wants replaying.
        let mut incompat = head[1024 + 0x60];
        incompat |= 4;
        assert!(needs_check(&set(0x60, &[incompat]), now));
        // Not marked valid, or errors recorded.
        assert!(needs_check(&set(0x3a, &[0, 0]), now));
        assert!(needs_check(&set(0x3a, &[3, 0]), now));
        assert!(needs_check(&set(0x194, &[1, 0, 0, 0]), now));
        // Orphans to clean up.
        assert!(needs_check(&set(0xe8, &[12, 0, 0, 0]), now));
        // A mount count or a check interval that is due.
        let due = set(0x34, &[20, 0]);
        let mut due = due;
        due[1024 + 0x36..1024 + 0x38].copy_from_slice(&20i16.to_le_bytes());
        assert!(needs_check(&due, now));
        let mut interval = set(0x40, &[0, 0, 0, 0]);
        interval[1024 + 0x44..1024 + 0x48].copy_from_slice(&86_400u32.to_le_bytes());
        assert!(needs_check(&interval, now));
        // Too short to hold a superblock.
        assert!(needs_check(&head[..1500], now));
    }

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
