//! The QEMU command line of the VM, and the choice of accelerator.
//!
//! The kernel boots directly through its PVH entry (`-kernel vmlinux`,
//! `-initrd initramfs`) on a `q35` machine with no default devices: a
//! virtio-blk data disk, the read-only system disk (see `boot`), virtio-net on QEMU's user-mode network (no root,
//! no TAP; the host is 10.0.2.2, its DNS proxy 10.0.2.3), a virtio-serial
//! port named `servin.channel` on a unix socket QEMU listens on (the
//! host-guest channel), the serial console into a log file, and optionally
//! a QMP socket (for `system_powerdown`, which the guest's init answers by
//! shutting down cleanly), and one virtio-9p device per shared host folder
//! (`-fsdev local,security_model=none`: QEMU reads and writes the folder
//! as the user it runs as; mount tag `servin<N>`, see
//! [`servin_values::share`]). `-no-reboot` makes a guest reboot or kernel
//! panic (`panic=-1`) end QEMU.
//!
//! QEMU creates its sockets with the process umask, so it is started
//! through `sh -c 'umask 0177; exec qemu ...'`: the sockets are 0600 from
//! the moment they exist, and the shell's pid is QEMU's.
//!
//! The kernel command line follows `shared/notes/vm.md`: a known TSC rate
//! (`tsc_early_khz`, the host's) because under emulation the kernel
//! sometimes fails to calibrate its clock; `servin.epoch` gives the guest
//! the host's time before anything else can.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use servin_values::share::{Shares, mount_tag};

use super::boot::BootFiles;

/// How the guest's CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
    /// QEMU's software emulation (TCG).
    Tcg,
}

impl Accel {
    /// QEMU's name for it (`-accel NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg (emulation)",
        })
    }
}

/// The QEMU binary: `SERVIN_QEMU` when set, else `qemu-system-x86_64`.
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("SERVIN_QEMU")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

/// qboot, the minimal firmware QEMU ships (`qemu-system-data` in Debian),
/// beside the QEMU binary `qemu` (its `../share/qemu/`) or in
/// `/usr/share/qemu`. It hands a PVH kernel over in a few milliseconds,
/// where QEMU's default SeaBIOS took about a quarter of a second more under
/// emulation; QEMU still gives the guest its ACPI tables.
pub fn find_qboot(qemu: &Path) -> Option<PathBuf> {
    let beside = qemu
        .parent()
        .and_then(Path::parent)
        .map(|prefix| prefix.join("share/qemu/qboot.rom"));
    beside
        .into_iter()
        .chain([PathBuf::from("/usr/share/qemu/qboot.rom")])
        .find(|p| p.is_file())
}

/// The port name of the host-guest channel, as the guest sees it
/// (`/dev/virtio-ports/servin.channel`).
pub const CHANNEL_PORT: &str = "servin.channel";

/// A QEMU command for the VM.
#[derive(Debug, Clone)]
pub struct QemuCommand {
    /// The QEMU binary.
    pub binary: PathBuf,
    /// The kernel, initramfs and system disk.
    pub boot: BootFiles,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// The raw data disk image (`/dev/vda` in the guest).
    pub disk: PathBuf,
    /// The unix socket QEMU listens on for the `servin.channel` port.
    pub channel: PathBuf,
    /// Where the serial console is written (truncated at start).
    pub console_log: PathBuf,
    /// A QMP socket QEMU listens on, if wanted.
    pub qmp: Option<PathBuf>,
    /// A file QEMU writes its pid to, if wanted.
    pub pidfile: Option<PathBuf>,
    /// The accelerator.
    pub accel: Accel,
    /// The guest's clock at boot, in Unix seconds (the host's now when
    /// not set).
    pub epoch: Option<u64>,
    /// The host's TSC rate in kHz (read from `/proc/cpuinfo` when not set).
    pub tsc_khz: Option<u64>,
    /// The host folders shared into the guest (and the ones skipped), on
    /// the kernel command line for the guest's init.
    pub shares: Shares,
    /// The firmware (`-bios`); QEMU's default (SeaBIOS) when `None`.
    pub firmware: Option<PathBuf>,
}

impl QemuCommand {
    /// A command with defaults for what is not given: 2 CPUs, 2 GiB, TCG,
    /// no QMP socket and no pid file.
    pub fn new(boot: BootFiles, disk: &Path, channel: &Path, console_log: &Path) -> Self {
        Self {
            binary: qemu_binary(),
            boot,
            cpus: 2,
            memory_mib: 2048,
            disk: disk.to_path_buf(),
            channel: channel.to_path_buf(),
            console_log: console_log.to_path_buf(),
            qmp: None,
            pidfile: None,
            accel: Accel::Tcg,
            epoch: None,
            tsc_khz: None,
            shares: Shares::default(),
            firmware: None,
        }
    }

    /// The kernel command line.
    pub fn kernel_cmdline(&self) -> String {
        let epoch = self.epoch.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        // Besides the clock's settings: no self-tests of the kernel's
        // crypto algorithms (a tenth of the kernel's boot under
        // emulation; the guest trusts its host's kernel package), no
        // probing of ACPI's PnP devices or of three more serial ports
        // (the console is ttyS0; nothing else is there); and none of the
        // built-in start-up calls the guest has no use for, each 20-110 ms
        // under emulation: the key derivation's self-test, the kernel's
        // built-in certificates (only for checking module signatures,
        // which servin removes), the PS/2 controller and mouse device
        // (nothing types into the VM), KSM's daemon and the RTC driver
        // (the clock is set from the host).
        let mut line = String::from(
            "console=ttyS0 quiet tsc=reliable no_timer_check noreplace-smp lpj=5000000 mitigations=off panic=-1 random.trust_cpu=on cryptomgr.notests pnpacpi=off 8250.nr_uarts=1 initcall_blacklist=crypto_kdf108_init,load_system_certificate_list,i8042_init,mousedev_init,ksm_init,cmos_init",
        );
        if let Some(khz) = self.tsc_khz.or_else(host_tsc_khz) {
            line.push_str(&format!(" tsc_early_khz={khz}"));
        }
        line.push_str(&format!(" servin.epoch={epoch}"));
        line.push_str(&self.shares.to_cmdline());
        line
    }

    /// QEMU's arguments.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |args: &[&str]| a.extend(args.iter().map(OsString::from));
        push(&[
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ]);
        push(&["-M", "q35", "-smp", &self.cpus.max(1).to_string()]);
        // PCIe's native hotplug instead of ACPI's: the tables then hold no
        // hotplug methods per slot, which the guest's ACPI interpreter
        // spent about a third of its start on under emulation. Nothing is
        // hotplugged.
        push(&[
            "-global",
            "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
        ]);
        push(&["-m", &format!("{}M", self.memory_mib)]);
        match self.accel {
            // A smaller translation cache keeps the idle footprint down.
            Accel::Tcg => push(&["-accel", "tcg,tb-size=32", "-cpu", "max"]),
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        }
        if let Some(firmware) = &self.firmware {
            a.push("-bios".into());
            a.push(firmware.clone().into());
        }
        a.push("-kernel".into());
        a.push(self.boot.vmlinux.clone().into());
        a.push("-initrd".into());
        a.push(self.boot.initramfs.clone().into());
        a.push("-append".into());
        a.push(self.kernel_cmdline().into());
        // The data disk; discards reach the image file so it stays sparse.
        a.push("-drive".into());
        a.push(option(
            "file=",
            &self.disk,
            ",if=none,id=data,format=raw,discard=unmap,detect-zeroes=unmap",
        ));
        a.extend(["-device", "virtio-blk-pci,drive=data"].map(OsString::from));
        // The system disk, read-only (after the data disk, so that one is
        // the guest's `/dev/vda`); the initramfs finds it by its serial.
        a.push("-drive".into());
        a.push(option(
            "file=",
            &self.boot.system,
            ",if=none,id=system,format=raw,readonly=on",
        ));
        a.push("-device".into());
        a.push(
            format!(
                "virtio-blk-pci,drive=system,serial={}",
                crate::vm::boot::system::SERIAL
            )
            .into(),
        );
        a.extend(
            [
                "-netdev",
                "user,id=net0",
                "-device",
                "virtio-net-pci,netdev=net0",
                // Free page reporting: memory the guest frees (the
                // boot's caches it drops) goes back to
                // the host instead of staying in QEMU's resident set.
                "-device",
                "virtio-balloon-pci,free-page-reporting=on",
                "-device",
                "virtio-serial-pci,id=vser",
                "-chardev",
            ]
            .map(OsString::from),
        );
        a.push(option(
            "socket,id=channel,server=on,wait=off,path=",
            &self.channel,
            "",
        ));
        a.push("-device".into());
        a.push(format!("virtserialport,bus=vser.0,chardev=channel,name={CHANNEL_PORT}").into());
        a.push("-chardev".into());
        a.push(option("file,id=console,path=", &self.console_log, ""));
        a.extend(["-serial", "chardev:console"].map(OsString::from));
        for (i, share) in self.shares.shared.iter().enumerate() {
            // `multidevs=remap`: a share spanning several host file
            // systems (a home with a mount inside) keeps inode numbers
            // unique in the guest.
            a.push("-fsdev".into());
            a.push(option(
                &format!("local,id=share{i},path="),
                share,
                ",security_model=none,multidevs=remap",
            ));
            a.push("-device".into());
            a.push(format!("virtio-9p-pci,fsdev=share{i},mount_tag={}", mount_tag(i)).into());
        }
        if let Some(qmp) = &self.qmp {
            a.push("-qmp".into());
            a.push(option("unix:", qmp, ",server=on,wait=off"));
        }
        if let Some(pidfile) = &self.pidfile {
            a.push("-pidfile".into());
            a.push(pidfile.clone().into());
        }
        a
    }

    /// The command that starts QEMU with a 0177 umask, its stdin closed
    /// (its own messages go to the caller's stdout and stderr).
    pub fn command(&self) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg("umask 0177 && exec \"$0\" \"$@\"")
            .arg(&self.binary)
            .args(self.args())
            .stdin(Stdio::null());
        c
    }
}

/// `prefix`, `path` with its commas doubled (QEMU's escape), `suffix`.
fn option(prefix: &str, path: &Path, suffix: &str) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path.to_string_lossy().replace(',', ",,"));
    s.push(suffix);
    s
}

/// The host's TSC rate in kHz, from `/proc/cpuinfo`'s `cpu MHz`.
fn host_tsc_khz() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = text
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    (mhz > 0.0).then(|| (mhz * 1000.0).round() as u64)
}

/// KVM when `/dev/kvm` opens and a probe guest really runs under it
/// (up to [`PROBE_TIMEOUT`] when KVM cannot run it); else TCG.
pub fn probe_accelerator() -> Accel {
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm_opens && probe_runs(&qemu_binary(), Accel::Kvm) {
        Accel::Kvm
    } else {
        Accel::Tcg
    }
}

/// [`probe_accelerator`] remembered in the file `cache` while the host
/// has not rebooted and the QEMU binary is unchanged: the probe costs up
/// to [`PROBE_TIMEOUT`] on a host whose `/dev/kvm` opens but cannot run a
/// guest, and its answer does not change between two starts. No probe
/// and no cache when `/dev/kvm` does not open.
pub fn probe_accelerator_cached(cache: &Path) -> Accel {
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !kvm_opens {
        return Accel::Tcg;
    }
    let qemu = crate::vm::launch::find_qemu().unwrap_or_else(qemu_binary);
    let Some(key) = probe_key(&qemu) else {
        return probe_accelerator();
    };
    if let Some(accel) = std::fs::read_to_string(cache)
        .ok()
        .and_then(|text| cached_probe(&text, &key))
    {
        return accel;
    }
    let accel = if probe_runs(&qemu, Accel::Kvm) {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    // Best effort: a cache that cannot be written only means probing again.
    let tmp = cache.with_extension("tmp");
    if std::fs::write(&tmp, format!("{key}\n{}\n", accel.as_str())).is_ok() {
        let _ = std::fs::rename(&tmp, cache);
    }
    accel
}

/// What the probe's answer depends on: this boot of the host, and the
/// QEMU binary (path, size, modification time).
fn probe_key(qemu: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let meta = std::fs::metadata(qemu).ok()?;
    Some(format!(
        "boot {} qemu {} {} {}.{}",
        boot_id.trim(),
        qemu.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// The accelerator in a cache file's `text` when its key is `key`.
fn cached_probe(text: &str, key: &str) -> Option<Accel> {
    let (first, rest) = text.split_once('\n')?;
    if first != key {
        return None;
    }
    match rest.trim() {
        "kvm" => Some(Accel::Kvm),
        "tcg" => Some(Accel::Tcg),
        _ => None,
    }
}

/// The probe's exit code: `isa-debug-exit` ends QEMU with
/// `(value << 1) | 1`.
const PROBE_EXIT: i32 = 3;

/// The probe's code, at the start of a 64 KiB firmware (mapped at
/// 0xffff0000) whose reset vector jumps to it. It does what a kernel's
/// entry must: real mode to protected mode, page tables (identity-mapped
/// low 2 MiB and top 2 MiB, 2 MiB pages at 0x1000-0x4fff of RAM), PAE,
/// long mode, and a 64-bit instruction writing 1 to `isa-debug-exit`.
/// Going only as far as real mode is not enough: some hosts (nested
/// virtualisation among them) run a guest's real-mode code under KVM and
/// hang it on the way to long mode. Assembled with GNU as from:
///
/// ```text
///     .set BASE, 0xFFFF0000
///     .code16
/// start: cli
///     lgdtl %cs:(gdt_desc - start)
///     movl %cr0, %eax ; orl $1, %eax ; movl %eax, %cr0
///     ljmpl $0x08, $(BASE + pm32 - start)
///     .code32
/// pm32: movw $0x10, %ax ; movw %ax, %ds ; movw %ax, %es ; movw %ax, %ss
///     movl $0x1000, %edi ; movl $0x1000, %ecx ; xorl %eax, %eax ; rep stosl
///     movl $0x2003, 0x1000 ; movl $0x3003, 0x2000 ; movl $0x4003, 0x2018
///     movl $0x83, 0x3000 ; movl $0xFFE00083, 0x4000 + 511 * 8
///     movl %cr4, %eax ; orl $0x20, %eax ; movl %eax, %cr4
///     movl $0x1000, %eax ; movl %eax, %cr3
///     movl $0xC0000080, %ecx ; rdmsr ; orl $0x100, %eax ; wrmsr
///     movl %cr0, %eax ; orl $0x80000000, %eax ; movl %eax, %cr0
///     ljmpl $0x18, $(BASE + lm64 - start)
///     .code64
/// lm64: movb $1, %al ; outb %al, $0xf4 ; hlt
///     .p2align 3
/// gdt: .quad 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF, 0x00AF9A000000FFFF
/// gdt_desc: .word 31 ; .long BASE + gdt - start
///     .org 0xFFF0
///     .code16
///     jmp start
/// ```
const PROBE_CODE: &[u8] = &[
    0xfa, 0x2e, 0x66, 0x0f, 0x01, 0x16, 0xc0, 0x00, 0x0f, 0x20, 0xc0, 0x66, 0x83, 0xc8, 0x01, 0x0f,
    0x22, 0xc0, 0x66, 0xea, 0x1a, 0x00, 0xff, 0xff, 0x08, 0x00, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8,
    0x8e, 0xc0, 0x8e, 0xd0, 0xbf, 0x00, 0x10, 0x00, 0x00, 0xb9, 0x00, 0x10, 0x00, 0x00, 0x31, 0xc0,
    0xf3, 0xab, 0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x20,
    0x00, 0x00, 0x03, 0x30, 0x00, 0x00, 0xc7, 0x05, 0x18, 0x20, 0x00, 0x00, 0x03, 0x40, 0x00, 0x00,
    0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, 0xc7, 0x05, 0xf8, 0x4f, 0x00, 0x00,
    0x83, 0x00, 0xe0, 0xff, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x10,
    0x00, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00,
    0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x95,
    0x00, 0xff, 0xff, 0x18, 0x00, 0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0x8d, 0xb4, 0x00, 0x00, 0x66, 0x90,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00,
    0x1f, 0x00, 0xa0, 0x00, 0xff, 0xff,
];

/// The firmware: [`PROBE_CODE`], `hlt` everywhere else, and the reset
/// vector's `jmp start` (a near jump that wraps to offset 0).
fn probe_firmware() -> Vec<u8> {
    let mut rom = vec![0xf4u8; 64 * 1024];
    rom[..PROBE_CODE.len()].copy_from_slice(PROBE_CODE);
    let at = rom.len() - 16;
    rom[at..at + 3].copy_from_slice(&[0xe9, 0x0d, 0x00]);
    rom
}

/// How long the probe guest has: under KVM it ends in well under a
/// second; a host whose KVM cannot run it hangs it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the probe guest reaches long mode and ends QEMU under `accel`
/// within [`PROBE_TIMEOUT`].
pub fn probe_runs(qemu: &Path, accel: Accel) -> bool {
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rom =
        std::env::temp_dir().join(format!("servin-accel-probe-{}-{n}.rom", std::process::id()));
    if std::fs::write(&rom, probe_firmware()).is_err() {
        return false;
    }
    let child = Command::new(qemu)
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-M",
            "q35",
        ])
        .args(["-accel", accel.as_str(), "-m", "64M"])
        .arg("-bios")
        .arg(&rom)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let ran = match child {
        Ok(mut child) => {
            let began = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => break status.code() == Some(PROBE_EXIT),
                    Ok(None) if began.elapsed() < PROBE_TIMEOUT => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break false;
                    }
                }
            }
        }
        Err(_) => false,
    };
    let _ = std::fs::remove_file(&rom);
    ran
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn command() -> QemuCommand {
        let boot = BootFiles {
            vmlinux: "/vm/boot/vmlinux".into(),
            initramfs: "/vm/boot/initramfs".into(),
            system: "/vm/boot/system.img".into(),
            kernel_version: "6.1.0-57-amd64".into(),
        };
        let mut q = QemuCommand::new(
            boot,
            Path::new("/vm/vm-disk.img"),
            Path::new("/vm/vm-state/channel.sock"),
            Path::new("/vm,odd/console.log"),
        );
        q.epoch = Some(1_700_000_000);
        q.tsc_khz = Some(2_600_000);
        q
    }

    #[test]
    fn the_command_line_has_the_devices_and_the_clock() {
        let q = command();
        let args: Vec<String> = q
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        let after = |flag: &str| -> Vec<&str> {
            args.windows(2)
                .filter(|w| w[0] == flag)
                .map(|w| w[1].as_str())
                .collect()
        };
        assert_eq!(after("-kernel"), ["/vm/boot/vmlinux"]);
        assert_eq!(after("-initrd"), ["/vm/boot/initramfs"]);
        assert_eq!(after("-accel"), ["tcg,tb-size=32"]);
        assert!(after("-drive")[0].starts_with("file=/vm/vm-disk.img,if=none"));
        assert_eq!(
            after("-drive")[1],
            "file=/vm/boot/system.img,if=none,id=system,format=raw,readonly=on"
        );
        let devices = after("-device");
        let data = devices
            .iter()
            .position(|d| *d == "virtio-blk-pci,drive=data");
        let system = devices
            .iter()
            .position(|d| *d == "virtio-blk-pci,drive=system,serial=servin-system");
        assert!(data.is_some() && system > data, "{devices:?}");
        assert!(
            after("-chardev")
                .contains(&"socket,id=channel,server=on,wait=off,path=/vm/vm-state/channel.sock")
        );
        assert!(after("-chardev").contains(&"file,id=console,path=/vm,,odd/console.log"));
        assert!(
            after("-device")
                .contains(&"virtserialport,bus=vser.0,chardev=channel,name=servin.channel")
        );
        assert!(args.contains(&"-no-reboot".to_string()));
        let cmdline = after("-append")[0];
        assert!(cmdline.contains("tsc_early_khz=2600000"), "{cmdline}");
        assert!(cmdline.ends_with("servin.epoch=1700000000"), "{cmdline}");
        assert!(!args.iter().any(|a| a == "-fsdev"));
        assert!(after("-bios").is_empty());
        assert!(cmdline.contains("cryptomgr.notests"), "{cmdline}");
        assert_eq!(
            after("-global"),
            ["ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
        );
    }

    #[test]
    fn qboot_is_the_firmware_when_qemu_ships_it() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin/qemu-system-x86_64");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "").unwrap();
        let rom = dir.path().join("share/qemu/qboot.rom");
        std::fs::create_dir_all(rom.parent().unwrap()).unwrap();
        std::fs::write(&rom, "").unwrap();
        assert_eq!(find_qboot(&bin), Some(rom.clone()));
        let mut q = command();
        q.firmware = Some(rom.clone());
        let args: Vec<String> = q
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        let at = args.iter().position(|a| a == "-bios").unwrap();
        assert_eq!(args[at + 1], rom.to_string_lossy());
    }

    #[test]
    fn each_share_is_a_9p_device_named_on_the_command_line() {
        let mut q = command();
        q.shares = Shares {
            shared: vec!["/home/u".into(), "/tmp/a,b c".into()],
            unshared: vec!["/media/gone".into()],
            config: Some("/home/u/.servin/vm/vm-config.json".into()),
            cache: None,
        };
        let args: Vec<String> = q
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        let after = |flag: &str| -> Vec<&str> {
            args.windows(2)
                .filter(|w| w[0] == flag)
                .map(|w| w[1].as_str())
                .collect()
        };
        assert_eq!(
            after("-fsdev"),
            [
                "local,id=share0,path=/home/u,security_model=none,multidevs=remap",
                "local,id=share1,path=/tmp/a,,b c,security_model=none,multidevs=remap"
            ]
        );
        let devices = after("-device");
        assert!(devices.contains(&"virtio-9p-pci,fsdev=share0,mount_tag=servin0"));
        assert!(devices.contains(&"virtio-9p-pci,fsdev=share1,mount_tag=servin1"));
        let cmdline = after("-append")[0];
        assert!(
            cmdline.ends_with(" servin.share=/home/u servin.share=/tmp/a,b%20c servin.unshared=/media/gone servin.config=/home/u/.servin/vm/vm-config.json"),
            "{cmdline}"
        );
    }

    #[test]
    fn qemu_runs_under_a_umask_of_0177() {
        let c = command().command();
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(c.get_program(), "/bin/sh");
        assert!(args[1].starts_with("umask 0177 && exec"));
        assert_eq!(args[2], "qemu-system-x86_64");
    }

    #[test]
    fn a_cached_probe_answers_only_for_its_own_key() {
        let key = "boot 1234 qemu /usr/bin/qemu-system-x86_64 100 5.6";
        assert_eq!(
            cached_probe(&format!("{key}\nkvm\n"), key),
            Some(Accel::Kvm)
        );
        assert_eq!(
            cached_probe(&format!("{key}\ntcg\n"), key),
            Some(Accel::Tcg)
        );
        assert_eq!(cached_probe("boot 99 qemu x 1 2.3\nkvm\n", key), None);
        assert_eq!(cached_probe(&format!("{key}\nhvf\n"), key), None);
        assert_eq!(cached_probe(key, key), None);
        assert_eq!(cached_probe("", key), None);
    }

    #[test]
    fn the_probe_firmware_starts_at_the_reset_vector() {
        let rom = probe_firmware();
        assert_eq!(rom.len(), 65536);
        assert_eq!(&rom[..2], &[0xfa, 0x2e]); // cli; cs:
        assert_eq!(&rom[0xfff0..0xfff3], &[0xe9, 0x0d, 0x00]); // jmp 0
    }
}
