//! The host folders shared into the VM: each `servin.share=PATH` of the
//! kernel command line is a virtio-9p device (mount tag `servin<N>`)
//! mounted at the same PATH in the guest, so a bind source written for
//! the host names the same files here.
//!
//! Mount options: `trans=virtio,version=9p2000.L` (the Linux dialect:
//! owners, modes, symlinks, xattrs), `msize=512000` (the kernel's 8 KiB
//! default costs a round trip per 8 KiB; 512000 is the most its virtio
//! transport carries), and `cache=mmap`: no data or attributes cached, so
//! a change made on the host is seen by the next read in the guest (the
//! dev loop edits on the host), while files can still be mapped shared
//! and writable (SQLite's shared memory; `cache=none` refuses that).
//! `cache=loose` walks a warm tree faster but makes no attempt at
//! coherence with the host and writes far slower; see
//! `bench/vm-share.sh` and BENCHMARKS.md.
//!
//! A share that fails to mount is said on the console and left out: the
//! engine then refuses binds from it with its clear message.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::mount::{MountFlags, mount};
use servin_values::share::{Shares, mount_tag};

use super::say;

/// The 9p mount options but the cache mode (see the module's doc);
/// 512000 bytes is the most the kernel's virtio transport carries.
pub const OPTIONS: &str = "trans=virtio,version=9p2000.L,msize=512000";
/// The cache mode unless `servin.share_cache=` (for measuring) says
/// otherwise.
pub const CACHE: &str = "mmap";

/// How long a share's device may take to appear after its module loads.
const DEVICE_WAIT: Duration = Duration::from_secs(5);

/// Mounts the shares the command line names; returns the mounted ones.
pub async fn mount_all(shares: &Shares) -> Vec<PathBuf> {
    for folder in &shares.unshared {
        say(&format!(
            "{} is not shared: it is not a folder on the host (shares in vm-config.json)",
            folder.display()
        ));
    }
    let options = format!(
        "{OPTIONS},cache={}",
        shares.cache.as_deref().unwrap_or(CACHE)
    );
    let mut mounted = Vec::new();
    for (i, folder) in shares.shared.iter().enumerate() {
        match mount_one(&mount_tag(i), folder, &options).await {
            Ok(()) => mounted.push(folder.clone()),
            Err(e) => say(&format!(
                "error: host folder {}: {e}; not shared",
                folder.display()
            )),
        }
    }
    if !mounted.is_empty() {
        say(&format!(
            "shared host folders: {}",
            mounted
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    mounted
}

async fn mount_one(tag: &str, folder: &Path, options: &str) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("create {}: {e}", folder.display()))?;
    let began = Instant::now();
    loop {
        let data = std::ffi::CString::new(options).map_err(|e| e.to_string())?;
        match mount(tag, folder, "9p", MountFlags::empty(), data.as_c_str()) {
            Ok(()) => return Ok(()),
            // The device is not probed yet (the tag is unknown).
            Err(rustix::io::Errno::NOENT) if began.elapsed() < DEVICE_WAIT => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(format!("mount 9p tag {tag} ({options}): {e}")),
        }
    }
}
