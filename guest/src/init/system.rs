//! The guest's base system: a root that containers can pivot away from,
//! the kernel's file systems, cgroups, modules, the clock and the
//! `/dev/virtio-ports` names udev would make.

use std::ffi::CStr;
use std::path::Path;
use std::time::Duration;

use rustix::mount::{MountFlags, mount};

/// A step's failure, said on the console.
pub type Result<T> = std::result::Result<T, String>;

fn failed(what: &str, path: &str) -> impl FnOnce(rustix::io::Errno) -> String {
    let text = format!("{what} {path}");
    move |e| format!("{text}: {e}")
}

/// The kernel's file systems, as a container host needs them.
pub fn mount_base() -> Result<()> {
    let nosuid_nodev_noexec = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let mounts: &[(&str, &str, &str, MountFlags, &CStr)] = &[
        ("proc", "/proc", "proc", nosuid_nodev_noexec, c""),
        ("sysfs", "/sys", "sysfs", nosuid_nodev_noexec, c""),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MountFlags::NOSUID,
            c"mode=0755",
        ),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            c"gid=5,mode=0620,ptmxmode=0666",
        ),
        (
            "shm",
            "/dev/shm",
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=1777",
        ),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=0755",
        ),
        (
            "tmpfs",
            "/tmp",
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=1777",
        ),
        (
            "cgroup2",
            "/sys/fs/cgroup",
            "cgroup2",
            nosuid_nodev_noexec,
            c"nsdelegate",
        ),
    ];
    for (source, target, fstype, flags, data) in mounts {
        std::fs::create_dir_all(target).map_err(|e| format!("create {target}: {e}"))?;
        mount(*source, *target, *fstype, *flags, *data).map_err(failed("mount", target))?;
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        if std::fs::symlink_metadata(link).is_err() {
            std::os::unix::fs::symlink(target, link)
                .map_err(|e| format!("link {link} to {target}: {e}"))?;
        }
    }
    enable_controllers()
}

/// Hands every cgroup controller the kernel has to the root's children,
/// where runc makes the containers' cgroups.
fn enable_controllers() -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    let available = std::fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|e| format!("read /sys/fs/cgroup/cgroup.controllers: {e}"))?;
    let wanted: Vec<String> = available
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    std::fs::write(root.join("cgroup.subtree_control"), wanted.join(" "))
        .map_err(|e| format!("enable the cgroup controllers {}: {e}", wanted.join(" ")))
}

/// Writes dirty pages out within about a second instead of the kernel's
/// 30 s: the data disk is a file on the host, whose page cache outlives a
/// killed QEMU, so a VM killed (or a host put to sleep and the VM lost)
/// loses at most the last second or two of writes that nobody synced
/// (the data disk's journal commits every second too, see `disk`).
pub fn tune_writeback() -> Result<()> {
    for (path, value) in [
        ("/proc/sys/vm/dirty_expire_centisecs", "100"),
        ("/proc/sys/vm/dirty_writeback_centisecs", "100"),
    ] {
        std::fs::write(path, value).map_err(|e| format!("write {path}: {e}"))?;
    }
    Ok(())
}

/// Drops the clean page cache and reclaimable slab (best effort: a
/// kernel without `drop_caches` keeps them).
pub fn drop_caches() {
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// The value of `servin.epoch=` on a kernel command line.
pub fn epoch_of(cmdline: &str) -> Option<i64> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("servin.epoch="))
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
}

/// Sets the clock from `servin.epoch` (the host's time when QEMU was
/// started), if the command line has it and the clock is behind it.
pub fn set_clock(cmdline: &str) -> Result<()> {
    let Some(epoch) = epoch_of(cmdline) else {
        return Ok(());
    };
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    if now.tv_sec >= epoch {
        return Ok(());
    }
    rustix::time::clock_settime(
        rustix::time::ClockId::Realtime,
        rustix::time::Timespec {
            tv_sec: epoch,
            tv_nsec: 0,
        },
    )
    .map_err(|e| format!("set the clock to {epoch}: {e}"))
}

/// Loads the modules listed (in load order) in `list`, a file of paths;
/// one the kernel has already is fine.
pub fn load_modules(list: &Path) -> Result<usize> {
    let text = match std::fs::read_to_string(list) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("read {}: {e}", list.display())),
    };
    let mut loaded = 0;
    for path in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let file = std::fs::File::open(path).map_err(|e| format!("open module {path}: {e}"))?;
        // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses .ko.xz/.zst.
        let flags = if path.ends_with(".ko") { 0 } else { 4 };
        match rustix::system::finit_module(&file, c"", flags) {
            Ok(()) => loaded += 1,
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("load module {path}: {e}")),
        }
    }
    Ok(loaded)
}

/// Waits up to `timeout` for `path` to exist (devices appear as their
/// drivers probe them, after the module is loaded).
pub async fn wait_for(path: &Path, timeout: Duration) -> bool {
    let began = std::time::Instant::now();
    loop {
        if path.exists() {
            return true;
        }
        if began.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `/dev/virtio-ports/<name>` links to each virtio-serial port's device,
/// as udev names them.
pub fn link_virtio_ports() -> Result<usize> {
    let Ok(entries) = std::fs::read_dir("/sys/class/virtio-ports") else {
        return Ok(0);
    };
    let dir = Path::new("/dev/virtio-ports");
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut made = 0;
    for entry in entries.flatten() {
        let Ok(name) = std::fs::read_to_string(entry.path().join("name")) else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let device = format!("/dev/{}", entry.file_name().to_string_lossy());
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&device, &link)
            .map_err(|e| format!("link {} to {device}: {e}", link.display()))?;
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_epoch_comes_from_the_command_line() {
        assert_eq!(
            epoch_of("console=ttyS0 quiet servin.epoch=1765000000 panic=-1"),
            Some(1_765_000_000)
        );
        assert_eq!(epoch_of("console=ttyS0"), None);
        assert_eq!(epoch_of("servin.epoch=soon"), None);
        assert_eq!(epoch_of("servin.epoch=0"), None);
    }
}
