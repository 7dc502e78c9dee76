//! The kernel modules networks need, while the VM's init still loads them.
//!
//! In the VM, the guest's init loads the modules of bridges, veth pairs
//! and nftables while the engine starts (under emulation they took about
//! half a second of the boot), and names in [`ENV`] the file it writes
//! when they are in: empty, or the error that stopped it. The engine waits
//! for that file only before it first touches a bridge, a veth pair or the
//! firewall. Natively the variable is unset and nothing waits.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::error::NetworkError;
use crate::error::Result;

/// The variable naming the file the init writes once the modules are in.
pub const ENV: &str = "SERVIN_KERNEL_MODULES";

/// How long the engine waits for them before it gives up on a network.
const WAIT: Duration = Duration::from_secs(60);

fn marker() -> Option<&'static Path> {
    static MARKER: OnceLock<Option<PathBuf>> = OnceLock::new();
    MARKER
        .get_or_init(|| {
            std::env::var_os(ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .as_deref()
}

/// What the marker says: `None` while it is not there.
fn read(path: &Path) -> Option<Result<()>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Some(Ok(())),
        Ok(text) => Some(Err(
            NetworkError::KernelModules(text.trim().to_string()).into()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(NetworkError::KernelModules(format!(
            "cannot read {}: {e}",
            path.display()
        ))
        .into())),
    }
}

fn timed_out() -> crate::error::Error {
    NetworkError::KernelModules(format!(
        "they were not loaded within {} s of the engine's first network (see `servin vm logs`)",
        WAIT.as_secs()
    ))
    .into()
}

/// Whether the modules are still being loaded: then the kernel has no
/// nftables yet, so no firewall rule of an earlier engine run can exist.
pub fn pending() -> bool {
    marker().is_some_and(|p| read(p).is_none())
}

/// Waits until the modules are in; an error when loading them failed or
/// took longer than a minute.
pub async fn ready() -> Result<()> {
    let Some(path) = marker() else {
        return Ok(());
    };
    let began = Instant::now();
    loop {
        if let Some(r) = read(path) {
            return r;
        }
        if began.elapsed() > WAIT {
            return Err(timed_out());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`ready`] without waiting (for callers outside the async runtime,
/// which must not sleep on its thread): an error while the modules are
/// still loading, or when loading them failed.
pub fn loaded_now() -> Result<()> {
    let Some(path) = marker() else {
        return Ok(());
    };
    read(path).unwrap_or_else(|| {
        Err(NetworkError::KernelModules("they are still being loaded".to_string()).into())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_marker_says_done_or_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modules.done");
        assert!(read(&path).is_none());
        std::fs::write(&path, "").unwrap();
        assert!(read(&path).unwrap().is_ok());
        std::fs::write(&path, "load module /lib/modules/x/bridge.ko: ENOENT\n").unwrap();
        let e = read(&path).unwrap().unwrap_err();
        assert!(e.to_string().contains("bridge.ko: ENOENT"), "{e}");
        assert!(e.to_string().contains("kernel modules"), "{e}");
    }
}
