//! Where VM mode keeps its files: `$SERVIN_VM_DIR`, else `~/.servin/vm/`.
//!
//! | file | what |
//! |---|---|
//! | `vm-config.json` | cpus, memory, disk size ([`super::settings::VmConfig`]) |
//! | `vm-disk.img` | the sparse data disk, `/var/lib/servin` in the guest |
//! | `boot/` | the kernel, initramfs and system disk servin built, reused while their inputs are unchanged |
//! | `vm-state/qemu.pid`, `supervisor.pid` | the running VM's processes |
//! | `vm-state/console.log` | the guest's console |
//! | `vm-state/channel.sock` | QEMU's end of the virtio-serial channel (0600) |
//! | `vm-state/engine.sock` | the engine's API on the host, what servin and docker use (0600) |
//! | `vm-state/control.sock` | the guest's control commands (clock, power off) (0600) |
//! | `vm-state/machine.json` | how the running VM was started (accelerator, kernel, start time) |
//! | `vm-state/supervisor.log` | the host supervisor's own messages |

use std::path::{Path, PathBuf};

/// The files of one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPaths {
    pub dir: PathBuf,
}

impl VmPaths {
    /// `$SERVIN_VM_DIR`, else `$HOME/.servin/vm`; `None` with neither.
    pub fn from_env() -> Option<Self> {
        Self::from_values(
            std::env::var_os("SERVIN_VM_DIR").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    pub fn from_values(vm_dir: Option<PathBuf>, home: Option<PathBuf>) -> Option<Self> {
        let dir = vm_dir.filter(|d| !d.as_os_str().is_empty()).or_else(|| {
            home.filter(|h| !h.as_os_str().is_empty())
                .map(|h| h.join(".servin").join("vm"))
        })?;
        Some(Self { dir })
    }

    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("vm-config.json")
    }
    pub fn disk(&self) -> PathBuf {
        self.dir.join("vm-disk.img")
    }
    pub fn boot(&self) -> PathBuf {
        self.dir.join("boot")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("vm-state")
    }
    pub fn qemu_pid(&self) -> PathBuf {
        self.state().join("qemu.pid")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.state().join("supervisor.pid")
    }
    pub fn supervisor_lock(&self) -> PathBuf {
        self.state().join("supervisor.lock")
    }
    pub fn start_lock(&self) -> PathBuf {
        self.dir.join("start.lock")
    }
    pub fn console_log(&self) -> PathBuf {
        self.state().join("console.log")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.state().join("supervisor.log")
    }
    pub fn channel(&self) -> PathBuf {
        self.state().join("channel.sock")
    }
    pub fn engine_socket(&self) -> PathBuf {
        self.state().join("engine.sock")
    }
    pub fn control_socket(&self) -> PathBuf {
        self.state().join("control.sock")
    }
    pub fn machine_json(&self) -> PathBuf {
        self.state().join("machine.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_from_the_environment() {
        let p = VmPaths::from_values(Some("/t/vm".into()), Some("/home/u".into()));
        assert_eq!(p.map(|p| p.dir), Some(PathBuf::from("/t/vm")));
        let p = VmPaths::from_values(Some("".into()), Some("/home/u".into()));
        assert_eq!(p.map(|p| p.dir), Some(PathBuf::from("/home/u/.servin/vm")));
        assert_eq!(VmPaths::from_values(None, None), None);
        let p = VmPaths::new(Path::new("/v"));
        assert_eq!(p.engine_socket(), PathBuf::from("/v/vm-state/engine.sock"));
    }
}
