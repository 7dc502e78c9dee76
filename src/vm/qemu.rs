//! The QEMU command line of the VM, and the choice of accelerator.
//!
//! The kernel boots directly through its PVH entry (`-kernel vmlinux`,
//! `-initrd initramfs`) on a `q35` machine with no default devices: a
//! virtio-blk data disk, virtio-net on QEMU's user-mode network (no root,
//! no TAP; the host is 10.0.2.2, its DNS proxy 10.0.2.3), a virtio-serial
//! port named `servin.channel` on a unix socket QEMU listens on (the
//! host-guest channel), the serial console into a log file, and optionally
//! a QMP socket (for `system_powerdown`, which the guest's init answers by
//! shutting down cleanly). `-no-reboot` makes a guest reboot or kernel
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

/// The port name of the host-guest channel, as the guest sees it
/// (`/dev/virtio-ports/servin.channel`).
pub const CHANNEL_PORT: &str = "servin.channel";

/// A QEMU command for the VM.
#[derive(Debug, Clone)]
pub struct QemuCommand {
    /// The QEMU binary.
    pub binary: PathBuf,
    /// The kernel and initramfs.
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
        let mut line = String::from(
            "console=ttyS0 quiet tsc=reliable no_timer_check noreplace-smp lpj=5000000 mitigations=off panic=-1 random.trust_cpu=on",
        );
        if let Some(khz) = self.tsc_khz.or_else(host_tsc_khz) {
            line.push_str(&format!(" tsc_early_khz={khz}"));
        }
        line.push_str(&format!(" servin.epoch={epoch}"));
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
        push(&["-m", &format!("{}M", self.memory_mib)]);
        match self.accel {
            // A smaller translation cache keeps the idle footprint down.
            Accel::Tcg => push(&["-accel", "tcg,tb-size=32", "-cpu", "max"]),
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
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
        a.extend(
            [
                "-device",
                "virtio-blk-pci,drive=data",
                "-netdev",
                "user,id=net0",
                "-device",
                "virtio-net-pci,netdev=net0",
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

/// KVM when `/dev/kvm` opens and a probe guest really runs under it;
/// else TCG.
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

/// The probe's exit code: `isa-debug-exit` ends QEMU with `(value << 1) | 1`.
const PROBE_EXIT: i32 = 3;

/// A 64 KiB firmware whose reset vector writes 1 to port 0xf4 (QEMU's
/// `isa-debug-exit`, which ends QEMU with [`PROBE_EXIT`]): proof that the
/// guest's first instruction ran.
fn probe_firmware() -> Vec<u8> {
    let mut rom = vec![0xf4u8; 64 * 1024]; // hlt
    // mov al, 1; out 0xf4, al; hlt
    let code = [0xb0, 0x01, 0xe6, 0xf4, 0xf4];
    let at = rom.len() - 16;
    rom[at..at + code.len()].copy_from_slice(&code);
    rom
}

/// Whether a guest's first instructions run under `accel` within 10 s.
pub fn probe_runs(qemu: &Path, accel: Accel) -> bool {
    let rom = std::env::temp_dir().join(format!("servin-accel-probe-{}.rom", std::process::id()));
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
                    Ok(None) if began.elapsed() < Duration::from_secs(10) => {
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
    use super::*;

    fn command() -> QemuCommand {
        let boot = BootFiles {
            vmlinux: "/vm/boot/vmlinux".into(),
            initramfs: "/vm/boot/initramfs".into(),
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
    fn the_probe_firmware_jumps_nowhere_but_out() {
        let rom = probe_firmware();
        assert_eq!(rom.len(), 65536);
        assert_eq!(
            &rom[65536 - 16..65536 - 11],
            &[0xb0, 0x01, 0xe6, 0xf4, 0xf4]
        );
    }
}
