//! What can go wrong preparing and starting the VM.
//!
//! Messages name their subject (a path, a tool, a kernel version) and end
//! with a `help:` line when there is something the user can do.

use std::path::PathBuf;

/// An error of VM mode.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(
        "no Linux kernel for the VM: {searched}\nhelp: install Debian's kernel (apt install linux-image-amd64), or set SERVIN_VM_KERNEL to a bzImage or vmlinux whose modules are in /lib/modules/<version>"
    )]
    NoKernel { searched: String },
    #[error(
        "the VM kernel {} (version {version}) has no modules in {}\nhelp: install its modules (apt install linux-image-{version}), or point SERVIN_VM_KERNEL at a kernel whose modules are installed",
        .kernel.display(), .modules.display()
    )]
    NoModules {
        kernel: PathBuf,
        version: String,
        modules: PathBuf,
    },
    #[error("the VM kernel {}: {message}", .kernel.display())]
    BadKernel { kernel: PathBuf, message: String },
    #[error(
        "kernel module {module} for the VM is neither in {} nor built into kernel {version}\nhelp: use a kernel built with it (Debian's linux-image-amd64 has it)",
        .modules.display()
    )]
    MissingModule {
        module: String,
        version: String,
        modules: PathBuf,
    },
    #[error(
        "{tool} is not installed, and the VM image needs it\nhelp: install it (apt install {package})"
    )]
    MissingTool { tool: String, package: &'static str },
    #[error(
        "no engine binary to put in the VM image: set SERVIN_ENGINE, or put servin-guest next to servin or on PATH"
    )]
    NoEngineBinary,
    #[error("{}: {message}", .binary.display())]
    BadBinary { binary: PathBuf, message: String },
    #[error(
        "{} needs the shared library {library}, which is in none of {searched}",
        .binary.display()
    )]
    MissingLibrary {
        binary: PathBuf,
        library: String,
        searched: String,
    },
    #[error("{}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl VmError {
    /// A closure turning an I/O error on `path` into [`VmError::File`].
    pub fn file(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| Self::File { path, source }
    }
}
