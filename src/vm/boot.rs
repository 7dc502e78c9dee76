//! The files QEMU boots: an uncompressed `vmlinux` taken from the host's
//! kernel, a small initramfs and a read-only system disk, both built by
//! servin without root.
//!
//! The system disk holds everything the guest runs, with no distribution
//! inside: `servin-guest` (PID 1 in its init mode, see
//! `servin_guest::init`), the OCI runtime, the static init for containers,
//! the tools the engine and its init run (`mkfs.ext4`, `e2fsck`, `nft`,
//! busybox for `ps` and a shell), each dynamic program's shared libraries
//! and loader at their host paths, and the kernel modules the engine needs
//! with `/etc/servin/modules` listing in load order those loaded before the
//! engine starts and `/etc/servin/modules.later` those loaded while it
//! starts ([`modules::BOOT`], [`modules::LATER`], [`system`]).
//!
//! The initramfs only reaches it: busybox, the modules of
//! [`modules::EARLY`] and a shell script as `/init` ([`STAGE1`]) that loads
//! them, mounts the system disk read-only under a tmpfs overlay and hands
//! the machine to `servin-guest init` there. It is not compressed: under
//! emulation, copying is cheaper than decompressing, and it is small.
//!
//! | file in the boot folder | what |
//! |---|---|
//! | `vmlinux` | the kernel, booted through its PVH entry |
//! | `initramfs` | the newc cpio archive above |
//! | `system.img` | the ext4 image above, attached read-only |
//! | `manifest.json` | kernel version and the fingerprints (path, size, mtime) of every input |
//!
//! The files are reused while the inputs' fingerprints are unchanged;
//! the manifest is written last, so an interrupted build is redone. A
//! running VM keeps the files it started with open: a rebuild replaces
//! them by renaming.

mod cpio;
pub mod kernel;
pub mod libs;
pub mod modules;
pub mod system;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::cpio::Cpio;
use crate::vm::VmError;

/// The CA certificate bundle of Debian's `ca-certificates`, copied into the
/// system disk when the host has it (the engine's TLS clients read it
/// there).
const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Changes whenever what goes into the image changes, so images built by
/// an older servin are rebuilt.
const FORMAT: u32 = 5;

/// The files to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The uncompressed kernel (`-kernel`).
    pub vmlinux: PathBuf,
    /// The initramfs (`-initrd`).
    pub initramfs: PathBuf,
    /// The system disk, attached read-only.
    pub system: PathBuf,
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
    /// The digest of the first stage's script, so a servin whose script
    /// differs builds the initramfs again.
    #[serde(default)]
    stage1: String,
    kernel_version: String,
    modules: Vec<String>,
    #[serde(default)]
    later: Vec<String>,
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
    /// Module files relative to the modules folder, in load order: those
    /// the guest loads before the engine starts (not the initramfs's).
    modules: Vec<String>,
    /// Those it loads while the engine starts.
    later: Vec<String>,
    /// The same for the initramfs's modules.
    early: Vec<String>,
    mkfs: PathBuf,
    busybox: PathBuf,
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
        let order = |wanted: &[&str]| {
            modules::load_order(wanted, &dep, &builtin, &kernel.version, &kernel.modules)
        };
        let early = order(modules::EARLY)?;
        // Each list without what an earlier one loaded: the kernel would
        // read the whole file again only to find it loaded.
        let modules: Vec<String> = order(modules::BOOT)?
            .into_iter()
            .filter(|m| !early.contains(m))
            .collect();
        let later: Vec<String> = order(modules::LATER)?
            .into_iter()
            .filter(|m| !early.contains(m) && !modules.contains(m))
            .collect();
        let tool = |guest: &str| {
            tools
                .iter()
                .find(|(g, _)| *g == guest)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| VmError::Invalid(format!("no {guest} among the guest's tools")))
        };
        let mkfs = tool("/usr/sbin/mkfs.ext4")?;
        let busybox = tool("/bin/busybox")?;
        Ok(Self {
            kernel,
            engine,
            tools,
            modules,
            later,
            early,
            mkfs,
            busybox,
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
        if let Ok(certs) = Input::of(Path::new(CA_CERTIFICATES)) {
            inputs.push(certs);
        }
        Ok(Manifest {
            format: FORMAT,
            stage1: {
                use sha2::Digest as _;
                sha2::Sha256::digest(STAGE1.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            },
            kernel_version: self.kernel.version.clone(),
            modules: self.modules.clone(),
            later: self.later.clone(),
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
        system: boot_dir.join("system.img"),
        kernel_version: manifest.kernel_version.clone(),
    };
    let manifest_path = boot_dir.join("manifest.json");
    let current = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok());
    if current.as_ref() == Some(&manifest)
        && files.vmlinux.is_file()
        && files.initramfs.is_file()
        && files.system.is_file()
    {
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
    build_system(&sources, boot_dir, &files.system)?;
    build_initramfs(&sources, &files.initramfs)?;
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

/// The system disk's tree, staged in `boot_dir` and made into `dest`.
fn build_system(sources: &Sources, boot_dir: &Path, dest: &Path) -> Result<(), VmError> {
    let stripped = stripped_engine(&sources.engine, boot_dir);
    let engine = stripped.as_deref().unwrap_or(&sources.engine);
    let mut programs = vec![engine.to_path_buf()];
    programs.extend(sources.tools.iter().map(|(_, p)| p.clone()));
    let libraries = libs::closure(&programs, libs::LIBRARY_DIRS)?;
    let modules_dir = &sources.kernel.modules;
    let guest_modules = format!("/lib/modules/{}", sources.kernel.version);
    let staged = boot_dir.join("system.d");
    let result = (|| -> std::io::Result<system::Staging> {
        let mut t = system::Staging::new(&staged)?;
        for dir in ["/proc", "/sys", "/dev", "/run", "/root", "/var/lib/servin"] {
            t.dir(dir, 0o755)?;
        }
        t.dir("/tmp", 0o1777)?;
        t.file("/usr/bin/servin-guest", engine)?;
        for (guest, host) in &sources.tools {
            t.file(guest, host)?;
        }
        for applet in APPLETS {
            t.symlink(&format!("/bin/{applet}"), "busybox")?;
        }
        for lib in &libraries {
            t.file(&lib.to_string_lossy(), lib)?;
        }
        for (list, modules) in [
            ("/etc/servin/modules", &sources.modules),
            ("/etc/servin/modules.later", &sources.later),
        ] {
            let mut order = String::new();
            for module in modules {
                let guest = format!("{guest_modules}/{module}");
                let host = modules_dir.join(module);
                let data = std::fs::read(&host).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", host.display()))
                })?;
                // A compressed module's signature is inside the compressed
                // bytes: such a module is kept whole.
                t.bytes(&guest, 0o644, modules::unsigned(&data))?;
                order.push_str(&guest);
                order.push('\n');
            }
            t.bytes(list, 0o644, order.as_bytes())?;
        }
        t.bytes("/etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")?;
        t.bytes("/etc/group", 0o644, b"root:x:0:\n")?;
        t.bytes("/etc/nsswitch.conf", 0o644, b"hosts: files dns\n")?;
        t.bytes(
            "/etc/hosts",
            0o644,
            b"127.0.0.1 localhost servin-vm\n::1 localhost\n",
        )?;
        // Written by the guest's init at boot (into the overlay's tmpfs).
        t.bytes("/etc/resolv.conf", 0o644, b"")?;
        let mke2fs = Path::new("/etc/mke2fs.conf");
        if mke2fs.is_file() {
            t.file("/etc/mke2fs.conf", mke2fs)?;
        }
        // The host's CA certificates, for pulls from HTTPS registries.
        let certs = Path::new(CA_CERTIFICATES);
        if certs.is_file() {
            t.file(CA_CERTIFICATES, certs)?;
        }
        Ok(t)
    })();
    if let Some(p) = &stripped {
        let _ = std::fs::remove_file(p);
    }
    match result {
        Ok(t) => t.make_image(&sources.mkfs, dest),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staged);
            Err(VmError::file(&staged)(e))
        }
    }
}

/// The first stage, `/init` of the initramfs: loads the modules listed in
/// `/etc/servin/early-modules`, finds the system disk by its serial,
/// mounts it read-only with a tmpfs overlay on top as the new root and
/// starts `servin-guest init` there. Any failure is said on the console
/// the way `servin-guest init` says its own, and powers off.
pub const STAGE1: &str = r#"#!/bin/busybox sh
# servin's VM, stage 1 (written by servin): reach the system disk and
# hand over to servin-guest's init on it.
b=/bin/busybox
fail() { echo "servin-guest: error: $*"; $b poweroff -f; }
$b mount -t proc proc /proc || fail "mount /proc in the initramfs"
$b mount -t sysfs sysfs /sys || fail "mount /sys in the initramfs"
$b mount -t devtmpfs -o mode=0755 devtmpfs /dev || fail "mount /dev in the initramfs"
echo "servin-guest: stage 1 started at $($b cut -d' ' -f1 /proc/uptime) s"
while read -r m; do
  [ -n "$m" ] && { $b insmod "$m" || fail "load the module $m"; }
done < /etc/servin/early-modules
echo "servin-guest: stage 1 modules loaded at $($b cut -d' ' -f1 /proc/uptime) s"
dev=
i=0
while [ -z "$dev" ]; do
  for s in /sys/block/vd*/serial; do
    [ -f "$s" ] && [ "$($b cat "$s")" = "@SERIAL@" ] && { d=${s%/serial}; dev=/dev/${d##*/}; }
  done
  [ -n "$dev" ] && break
  i=$((i + 1))
  [ $i -le 1000 ] || fail "no system disk: no virtio disk with serial @SERIAL@ appeared in 10 s"
  $b usleep 10000
done
$b mkdir -p /lower /rw /sysroot
$b mount -t ext4 -o ro $dev /lower || fail "mount the system disk $dev"
$b mount -t tmpfs -o mode=0755 rw /rw || fail "mount the tmpfs of the root overlay"
$b mkdir /rw/upper /rw/work
$b mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work root /sysroot || fail "mount the root overlay"
echo "servin-guest: system disk $dev mounted at $($b cut -d' ' -f1 /proc/uptime) s"
$b umount -l /proc /sys /dev
exec $b switch_root /sysroot /usr/bin/servin-guest init
"#;

/// The initramfs: busybox, the early modules (decompressed: busybox's
/// `insmod` reads plain modules) and [`STAGE1`].
fn build_initramfs(sources: &Sources, dest: &Path) -> Result<(), VmError> {
    let modules_dir = &sources.kernel.modules;
    let guest_modules = format!("/lib/modules/{}", sources.kernel.version);
    let mut early = Vec::new();
    for module in &sources.early {
        let host = modules_dir.join(module);
        let data = std::fs::read(&host).map_err(VmError::file(&host))?;
        let (name, data) = if let Some(stem) = module.strip_suffix(".ko.xz") {
            let plain = kernel::unxz(&data).map_err(|e| {
                VmError::Invalid(format!("decompress the module {}: {e}", host.display()))
            })?;
            (format!("{stem}.ko"), plain)
        } else if module.ends_with(".ko") {
            (module.clone(), data)
        } else {
            return Err(VmError::Invalid(format!(
                "the module {} is compressed in a way servin's initramfs cannot load (plain and .xz modules can be)",
                host.display()
            )));
        };
        let data = modules::unsigned(&data).to_vec();
        early.push((format!("{guest_modules}/{name}"), data));
    }
    let script = STAGE1.replace("@SERIAL@", system::SERIAL);
    write_atomic(dest, |out| {
        let mut c = Cpio::new(out);
        for dir in ["/proc", "/sys", "/dev"] {
            c.dir(dir, 0o755)?;
        }
        c.char_device("/dev/console", 0o600, 5, 1)?;
        c.char_device("/dev/null", 0o666, 1, 3)?;
        add_file(&mut c, "/bin/busybox", &sources.busybox)?;
        c.bytes("/init", 0o755, script.as_bytes())?;
        let mut order = String::new();
        for (guest, data) in &early {
            c.bytes(guest, 0o644, data)?;
            order.push_str(guest);
            order.push('\n');
        }
        c.bytes("/etc/servin/early-modules", 0o644, order.as_bytes())?;
        c.finish()?;
        Ok(())
    })
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
