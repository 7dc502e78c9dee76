//! VM mode: the engine in a small Linux VM that servin runs by itself, as
//! the user, with no root.
//!
//! - [`boot`]: the kernel, initramfs and system disk the VM boots, built from the host's.
//! - [`qemu`]: QEMU's command line and the accelerator probe.
//! - [`error`]: what can go wrong preparing the boot files.
//! - [`paths`]: the VM folder and its files.
//! - [`settings`]: the mode (`SERVIN_MODE`, `~/.config/servin/config.toml`)
//!   and the VM's size (`vm-config.json`).
//! - [`machine`]: the [`machine::Machine`] trait and its QEMU backend.
//! - [`launch`]: the checks and the QEMU command of a start.
//! - [`supervisor`]: the detached host process that owns QEMU while it runs.
//! - [`channel`]: the host end of the virtio-serial channel and the host
//!   sockets carried over it.
//! - [`ports`]: published ports answered on the host.
//! - [`clock`]: the guest's clock kept in step with the host's.

pub mod boot;
pub mod channel;
pub mod clock;
pub mod error;
pub mod launch;
pub mod machine;
pub mod paths;
pub mod ports;
pub mod qemu;
pub mod settings;
pub mod supervisor;

use std::path::{Path, PathBuf};

pub use self::error::VmError;
pub use self::machine::{Machine, QemuMachine};
pub use self::paths::VmPaths;
pub use self::settings::{Mode, SettingsError, VmConfig};

/// What can go wrong running the VM.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("the VM is already running (supervisor pid {pid})")]
    AlreadyRunning { pid: u32 },
    #[error("cannot start {what}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("{}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Engine(#[from] crate::client::Error),
    #[error(
        "the VM stopped while starting ({status}); the supervisor's log:\n{log}\nthe console's last lines:\n{console}\nhelp: `servin vm logs` shows the whole console; `servin doctor` checks what the VM needs"
    )]
    SupervisorExited {
        status: String,
        log: String,
        console: String,
    },
    #[error(
        "the VM's engine did not answer within {secs}s; the console's last lines:\n{console}\nhelp: `servin vm logs` shows the whole console; `servin vm stop` and `servin vm start` try again"
    )]
    StartTimeout { secs: u64, console: String },
    #[error("no folder for the VM: set HOME or SERVIN_VM_DIR")]
    NoVmDir,
    #[error("the VM is not running\nhelp: `servin vm start` starts it")]
    NotRunning,
    #[error(transparent)]
    Boot(#[from] VmError),
    #[error("{0}")]
    Invalid(String),
}

impl MachineError {
    /// A closure turning an I/O error on `path` into [`MachineError::File`].
    pub fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| Self::File { path, source }
    }
}

/// The VM of this user (`SERVIN_VM_DIR`, else `~/.servin/vm`).
pub fn machine() -> Result<QemuMachine, MachineError> {
    let paths = VmPaths::from_env().ok_or(MachineError::NoVmDir)?;
    QemuMachine::new(paths)
}

static PROGRESS: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Sets how progress lines of a VM started on first use are shown (the
/// binary's printer); unset, they are not shown.
pub fn set_progress(f: fn(&str)) {
    let _ = PROGRESS.set(f);
}

/// Shows a progress line through the printer set with [`set_progress`].
pub fn progress(line: &str) {
    if let Some(f) = PROGRESS.get() {
        f(line);
    }
}
