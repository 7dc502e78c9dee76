//! The files QEMU boots: an uncompressed `vmlinux` taken from the host's
//! kernel, and an initramfs servin builds itself.
//!
//! The initramfs holds everything the guest runs, with no distribution
//! inside: `servin-guest` as `/init` (PID 1 in its init mode, see
//! `servin_guest::init`), the OCI runtime, the static init for containers,
//! the tools the engine and its init run (`mkfs.ext4`, `e2fsck`, `nft`,
//! busybox for `ps` and a shell), each dynamic program's shared libraries
//! and loader at their host paths, and the kernel modules the engine needs
//! with `/etc/servin/modules` listing them in load order. The archive is
//! not compressed: under emulation, copying is cheaper than decompressing.
//!
//! | file in the boot folder | what |
//! |---|---|
//! | `vmlinux` | the kernel, booted through its PVH entry |
//! | `initramfs` | the newc cpio archive above |
//! | `manifest.json` | kernel version and the fingerprints (path, size, mtime) of every input |
//!
//! Both files are reused while the inputs' fingerprints are unchanged;
//! the manifest is written last, so an interrupted build is redone.

mod cpio;
pub mod kernel;
pub mod libs;
pub mod modules;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::cpio::Cpio;
use crate::vm::VmError;

/// Changes whenever what goes into the image changes, so images built by
/// an older servin are rebuilt.
const FORMAT: u32 = 2;

/// The files to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The uncompressed kernel (`-kernel`).
    pub vmlinux: PathBuf,
    /// The initramfs (`-initrd`).
    pub initramfs: PathBuf,
    /// The kernel's release (`uname -r` in the guest).
    pub kernel_version: String,
}

/// A program of the guest image: where it goes, and where it is found on
/// the host.
struct Tool {
    guest: &'static str,
    /// Host names (or absolute paths) to look for, in order.
    names: &'static [&'static str],
    package: &'static str,
}

/// The programs besides the engine. Their guest paths are where the
/// engine looks: the runtime and firewall tools on `PATH`, the static
/// init at `/usr/bin/tini-static`.
const TOOLS: &[Tool] = &[
    Tool {
        guest: "/usr/bin/runc",
        names: &["runc"],
        package: "runc",
    },
    Tool {
        guest: "/usr/bin/tini-static",
        names: &[
            "/usr/bin/tini-static",
            "/usr/local/bin/tini-static",
            "/sbin/tini-static",
        ],
        package: "tini",
    },
    Tool {
        guest: "/usr/sbin/mkfs.ext4",
        names: &["mkfs.ext4"],
        package: "e2fsprogs",
    },
    Tool {
        guest: "/usr/sbin/e2fsck",
        names: &["e2fsck"],
        package: "e2fsprogs",
    },
    Tool {
        guest: "/usr/sbin/nft",
        names: &["nft"],
        package: "nftables",
    },
    Tool {
        guest: "/bin/busybox",
        names: &["busybox"],
        package: "busybox-static",
    },
];

/// Busybox applets linked in `/bin`: `ps` for `top`, and a few tools for
/// looking around the guest.
const APPLETS: &[&str] = &[
    "sh", "ps", "ls", "cat", "mount", "umount", "ip", "sleep", "dmesg", "df", "free", "uname",
];

/// Host folders searched for tools besides `PATH` (which often lacks the
/// sbin folders for an ordinary user).
const TOOL_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(TOOL_DIRS.iter().map(PathBuf::from));
    names.iter().find_map(|name| {
        if name.starts_with('/') {
            Some(PathBuf::from(name)).filter(|p| p.is_file())
        } else {
            dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
        }
    })
}

/// What the image is built from, with each input's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    kernel_version: String,
    modules: Vec<String>,
    inputs: Vec<Input>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Input {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
}

impl Input {
    fn of(path: &Path) -> Result<Self, VmError> {
        let meta = std::fs::metadata(path).map_err(VmError::file(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

/// Everything that goes into the image, found on the host.
struct Sources {
    kernel: kernel::Kernel,
    engine: PathBuf,
    /// (guest path, host path)
    tools: Vec<(&'static str, PathBuf)>,
    /// Module files relative to the modules folder, in load order.
    modules: Vec<String>,
}

impl Sources {
    fn find(engine: &Path) -> Result<Self, VmError> {
        let kernel = kernel::find()?;
        let engine = engine.to_path_buf();
        if !engine.is_file() {
            return Err(VmError::BadBinary {
                binary: engine,
                message: "no such engine binary".to_string(),
            });
        }
        let mut tools = Vec::new();
        for tool in TOOLS {
            let path = find_tool(tool.names).ok_or_else(|| VmError::MissingTool {
                tool: tool.names[0].trim_start_matches("/usr/bin/").to_string(),
                package: tool.package,
            })?;
            tools.push((tool.guest, path));
        }
        let read = |name: &str| {
            let path = kernel.modules.join(name);
            std::fs::read_to_string(&path).map_err(VmError::file(&path))
        };
        let dep = read("modules.dep")?;
        let builtin = read("modules.builtin").unwrap_or_default();
        let modules = modules::load_order(
            modules::WANTED,
            &dep,
            &builtin,
            &kernel.version,
            &kernel.modules,
        )?;
        Ok(Self {
            kernel,
            engine,
            tools,
            modules,
        })
    }

    fn manifest(&self) -> Result<Manifest, VmError> {
        let mut inputs = vec![
            Input::of(&self.kernel.image)?,
            Input::of(&self.kernel.modules.join("modules.dep"))?,
            Input::of(&self.engine)?,
        ];
        for (_, path) in &self.tools {
            inputs.push(Input::of(path)?);
        }
        Ok(Manifest {
            format: FORMAT,
            kernel_version: self.kernel.version.clone(),
            modules: self.modules.clone(),
            inputs,
        })
    }
}

/// Makes sure `boot_dir` (the VM folder's `boot/`) holds a `vmlinux` and an
/// `initramfs` built from the host's current kernel, engine and tools, and
/// says where they are. Quick when nothing changed since the last call;
/// safe to call from two processes at once (the second waits). The
/// engine is the one the CLI would start natively
/// (`client::start::engine_binary`).
pub fn prepare_boot(boot_dir: &Path) -> Result<BootFiles, VmError> {
    let engine = crate::client::start::engine_binary().ok_or(VmError::NoEngineBinary)?;
    prepare_boot_with(boot_dir, &engine)
}

/// [`prepare_boot`] with the engine binary `engine`.
pub fn prepare_boot_with(boot_dir: &Path, engine: &Path) -> Result<BootFiles, VmError> {
    std::fs::create_dir_all(boot_dir).map_err(VmError::file(boot_dir))?;
    let lock_path = boot_dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(VmError::file(&lock_path))?;
    lock.lock().map_err(VmError::file(&lock_path))?;
    let sources = Sources::find(engine)?;
    let manifest = sources.manifest()?;
    let files = BootFiles {
        vmlinux: boot_dir.join("vmlinux"),
        initramfs: boot_dir.join("initramfs"),
        kernel_version: manifest.kernel_version.clone(),
    };
    let manifest_path = boot_dir.join("manifest.json");
    let current = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok());
    if current.as_ref() == Some(&manifest) && files.vmlinux.is_file() && files.initramfs.is_file() {
        return Ok(files);
    }
    match std::fs::remove_file(&manifest_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(VmError::file(&manifest_path)(e));
        }
        _ => {}
    }
    let image =
        std::fs::read(&sources.kernel.image).map_err(VmError::file(&sources.kernel.image))?;
    let vmlinux = kernel::vmlinux(&image, &sources.kernel.image)?;
    write_atomic(&files.vmlinux, |f| f.write_all(&vmlinux))?;
    drop(vmlinux);
    build_initramfs(&sources, boot_dir, &files.initramfs)?;
    let mut text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| VmError::Invalid(format!("encode the boot manifest: {e}")))?;
    text.push(b'\n');
    write_atomic(&manifest_path, |f| f.write_all(&text))?;
    Ok(files)
}

/// Writes `path` through a temporary file renamed over it.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), VmError> {
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp).map_err(VmError::file(&tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let done = write(&mut out)
        .and_then(|()| out.flush())
        .and_then(|()| out.get_ref().sync_all());
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(VmError::file(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(VmError::file(path))
}

/// The engine without its debug information (a debug build is mostly
/// that) and its symbol table (several MiB the guest never reads: the
/// kernel copies every byte of the initramfs under emulation), through
/// `strip` when the host has it; else the binary as it is.
fn stripped_engine(engine: &Path, boot_dir: &Path) -> Option<PathBuf> {
    let strip = find_tool(&["strip"])?;
    let out = boot_dir.join("servin-guest.stripped");
    let ok = std::process::Command::new(strip)
        .arg("--strip-all")
        .arg("-o")
        .arg(&out)
        .arg(engine)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(out)
    } else {
        let _ = std::fs::remove_file(&out);
        None
    }
}

fn build_initramfs(sources: &Sources, boot_dir: &Path, dest: &Path) -> Result<(), VmError> {
    let stripped = stripped_engine(&sources.engine, boot_dir);
    let engine = stripped.as_deref().unwrap_or(&sources.engine);
    let mut programs = vec![engine.to_path_buf()];
    programs.extend(sources.tools.iter().map(|(_, p)| p.clone()));
    let libraries = libs::closure(&programs, libs::LIBRARY_DIRS)?;
    let modules_dir = &sources.kernel.modules;
    let guest_modules = format!("/lib/modules/{}", sources.kernel.version);
    let result = write_atomic(dest, |out| {
        let mut c = Cpio::new(out);
        for dir in ["/proc", "/sys", "/dev", "/run", "/root", "/var/lib/servin"] {
            c.dir(dir, 0o755)?;
        }
        c.dir("/tmp", 0o1777)?;
        c.char_device("/dev/console", 0o600, 5, 1)?;
        c.char_device("/dev/null", 0o666, 1, 3)?;
        add_file(&mut c, "/usr/bin/servin-guest", engine)?;
        c.symlink("/init", "/usr/bin/servin-guest")?;
        for (guest, host) in &sources.tools {
            add_file(&mut c, guest, host)?;
        }
        for applet in APPLETS {
            c.symlink(&format!("/bin/{applet}"), "busybox")?;
        }
        for lib in &libraries {
            add_file(&mut c, &lib.to_string_lossy(), lib)?;
        }
        let mut order = String::new();
        for module in &sources.modules {
            let guest = format!("{guest_modules}/{module}");
            add_file(&mut c, &guest, &modules_dir.join(module))?;
            order.push_str(&guest);
            order.push('\n');
        }
        c.bytes("/etc/servin/modules", 0o644, order.as_bytes())?;
        c.bytes("/etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")?;
        c.bytes("/etc/group", 0o644, b"root:x:0:\n")?;
        c.bytes("/etc/nsswitch.conf", 0o644, b"hosts: files dns\n")?;
        c.bytes(
            "/etc/hosts",
            0o644,
            b"127.0.0.1 localhost servin-vm\n::1 localhost\n",
        )?;
        let mke2fs = Path::new("/etc/mke2fs.conf");
        if mke2fs.is_file() {
            add_file(&mut c, "/etc/mke2fs.conf", mke2fs)?;
        }
        c.finish()?;
        Ok(())
    });
    if let Some(p) = &stripped {
        let _ = std::fs::remove_file(p);
    }
    result
}

/// Adds the host file `host` (symbolic links followed) at `guest`, with its
/// permission bits.
fn add_file(c: &mut Cpio<impl Write>, guest: &str, host: &Path) -> std::io::Result<()> {
    let file = File::open(host).map_err(|e| named(host, e))?;
    let meta = file.metadata().map_err(|e| named(host, e))?;
    c.file(guest, meta.permissions().mode(), meta.len(), file)
        .map_err(|e| named(host, e))
}

/// `e` with `path` in its message (the archive's own errors are on the
/// initramfs file).
fn named(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
